package recsys

import (
	"fmt"
	"math"
)

// VectorIndex answers cosine nearest-neighbour queries over factor
// vectors by brute force: one gemv over the whole set, which for 100K
// 64-dimensional vectors takes about a millisecond and needs no tuning.
type VectorIndex struct {
	Dim  int
	N    int
	unit []float32 // L2-normalised copies; zero vectors stay zero
}

// NewVectorIndex copies and normalises n = len(vectors)/dim vectors.
func NewVectorIndex(vectors []float32, dim int) (*VectorIndex, error) {
	if dim < 1 || len(vectors)%dim != 0 {
		return nil, fmt.Errorf("%w: %d values is not a multiple of dim %d", ErrBadInput, len(vectors), dim)
	}
	v := &VectorIndex{Dim: dim, N: len(vectors) / dim, unit: make([]float32, len(vectors))}
	copy(v.unit, vectors)
	for i := range v.N {
		row := v.unit[i*dim : (i+1)*dim]
		if n := math.Sqrt(float64(dot(row, row))); n > 0 {
			for f := range row {
				row[f] = float32(float64(row[f]) / n)
			}
		}
	}
	return v, nil
}

// ItemIndex indexes an ALS model's item factors (similar releases).
func (m *ALSModel) ItemIndex() (*VectorIndex, error) { return NewVectorIndex(m.ItemFactors, m.Factors) }

// UserIndex indexes an ALS model's user factors (recommended collectors).
func (m *ALSModel) UserIndex() (*VectorIndex, error) { return NewVectorIndex(m.UserFactors, m.Factors) }

// Similar returns the n vectors most similar to vector id (itself
// excluded), by cosine.
func (v *VectorIndex) Similar(id int32, n int, exclude Exclusion) ([]Scored, error) {
	if id < 0 || int(id) >= v.N {
		return nil, fmt.Errorf("%w: id %d outside %d vectors", ErrBadInput, id, v.N)
	}
	q := v.unit[int(id)*v.Dim : (int(id)+1)*v.Dim]
	scores := make([]float32, v.N)
	gemvLarge(v.unit, v.N, v.Dim, q, scores)
	scores[id] = float32(math.NaN()) // never return the query itself
	return TopN(scores, n, exclude), nil
}

// Nearest returns the n vectors most similar to q by cosine, e.g. the
// collectors closest to a folded-in user vector.
func (v *VectorIndex) Nearest(q []float32, n int, exclude Exclusion) ([]Scored, error) {
	if len(q) != v.Dim {
		return nil, fmt.Errorf("%w: query has %d dims, index %d", ErrBadInput, len(q), v.Dim)
	}
	scores := make([]float32, v.N)
	gemvLarge(v.unit, v.N, v.Dim, q, scores)
	if qn := math.Sqrt(float64(dot(q, q))); qn > 0 {
		for i := range scores {
			scores[i] = float32(float64(scores[i]) / qn)
		}
	}
	return TopN(scores, n, exclude), nil
}

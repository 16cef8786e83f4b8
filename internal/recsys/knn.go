package recsys

import (
	"fmt"
	"math"
)

// KNNConfig parameterises item-kNN with cosine similarity.
type KNNConfig struct {
	// K is the number of neighbours kept per item.
	K int `json:"k"`
	// Shrink is added to the cosine denominator, damping similarities
	// that rest on a handful of co-occurrences.
	Shrink  float64 `json:"shrink"`
	Workers int     `json:"-"`
}

// DefaultKNNConfig returns the defaults tuned on ml-latest-small and
// hetrec2011-lastfm-2k (see eval/TUNING.md).
func DefaultKNNConfig() KNNConfig { return KNNConfig{K: 20, Shrink: 10} }

// ItemKNN keeps the top-K cosine neighbours of every item: item i's are
// Neighbors[Indptr[i]:Indptr[i+1]], best first, with Sims alongside.
type ItemKNN struct {
	Items      int       `json:"items"`
	Indptr     []int     `json:"-"`
	Neighbors  []int32   `json:"-"`
	Sims       []float32 `json:"-"`
	ItemCounts []int     `json:"-"`
}

// TrainItemKNN computes cosine similarities between item columns,
// Σ_u w_ui·w_uj / (‖w_i‖·‖w_j‖ + shrink), from co-occurrences only.
func TrainItemKNN(ui *CSR, cfg KNNConfig) (*ItemKNN, error) {
	if err := ui.Validate(); err != nil {
		return nil, fmt.Errorf("knn input: %w", err)
	}
	if cfg.K < 1 || cfg.Shrink < 0 || math.IsNaN(cfg.Shrink) {
		return nil, fmt.Errorf("%w: knn k %d, shrink %v", ErrBadInput, cfg.K, cfg.Shrink)
	}
	iu := ui.Transpose()
	norms := make([]float64, ui.Cols)
	for i := range ui.Cols {
		_, ws := iu.Row(i)
		for _, w := range ws {
			norms[i] += float64(w) * float64(w)
		}
		norms[i] = math.Sqrt(norms[i])
	}
	nw := workers(cfg.Workers)
	type scratch struct {
		acc     []float64
		seen    []bool
		touched []int32
		scores  []float32
	}
	sc := make([]scratch, nw)
	for w := range sc {
		sc[w] = scratch{acc: make([]float64, ui.Cols), seen: make([]bool, ui.Cols)}
	}
	lists := make([][]Scored, ui.Cols)
	parallelChunks(ui.Cols, 64, nw, func(w, lo, hi int) {
		s := &sc[w]
		for i := lo; i < hi; i++ {
			s.touched = s.touched[:0]
			users, wi := iu.Row(i)
			for k, u := range users {
				items, wu := ui.Row(int(u))
				for l, j := range items {
					if int(j) == i {
						continue
					}
					if !s.seen[j] {
						s.seen[j] = true
						s.touched = append(s.touched, j)
					}
					s.acc[j] += float64(wi[k]) * float64(wu[l])
				}
			}
			s.scores = s.scores[:0]
			for _, j := range s.touched {
				s.scores = append(s.scores, float32(s.acc[j]/(norms[i]*norms[j]+cfg.Shrink)))
			}
			top := TopN(s.scores, cfg.K, Exclusion{})
			for t := range top {
				top[t].Item = s.touched[top[t].Item]
			}
			// TopN broke ties by position in touched; order equal
			// similarities by item id like every other list.
			sortScored(top)
			lists[i] = top
			for _, j := range s.touched {
				s.acc[j] = 0
				s.seen[j] = false
			}
		}
	})
	m := &ItemKNN{Items: ui.Cols, Indptr: make([]int, ui.Cols+1), ItemCounts: ui.ColCounts()}
	for i, l := range lists {
		m.Indptr[i+1] = m.Indptr[i] + len(l)
		for _, s := range l {
			m.Neighbors = append(m.Neighbors, s.Item)
			m.Sims = append(m.Sims, s.Score)
		}
	}
	return m, nil
}

// NumItems implements Scorer.
func (m *ItemKNN) NumItems() int { return m.Items }

// Known implements Scorer.
func (m *ItemKNN) Known(history []int32) int { return countKnown(history, m.ItemCounts) }

// ScoreHistory implements Scorer: score_j = Σ_{i ∈ history} sim(i, j)
// over each history item's neighbour list.
func (m *ItemKNN) ScoreHistory(history []int32, dst []float32) error {
	if len(dst) < m.Items {
		return fmt.Errorf("%w: dst %d < %d items", ErrBadInput, len(dst), m.Items)
	}
	clear(dst[:m.Items])
	for _, i := range history {
		if i < 0 || int(i) >= m.Items {
			continue
		}
		for k := m.Indptr[i]; k < m.Indptr[i+1]; k++ {
			dst[m.Neighbors[k]] += m.Sims[k]
		}
	}
	return nil
}

// SimilarItems returns up to n of item's neighbours, most similar first.
func (m *ItemKNN) SimilarItems(item int32, n int) []Scored {
	if item < 0 || int(item) >= m.Items || n <= 0 {
		return nil
	}
	lo, hi := m.Indptr[item], m.Indptr[item+1]
	hi = min(hi, lo+n)
	out := make([]Scored, 0, hi-lo)
	for k := lo; k < hi; k++ {
		out = append(out, Scored{Item: m.Neighbors[k], Score: m.Sims[k]})
	}
	return out
}

package recsys

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// UserVector returns user u's trained factors (shared, do not modify).
func (m *ALSModel) UserVector(u int) []float32 {
	return m.UserFactors[u*m.Factors : (u+1)*m.Factors]
}

// ItemVector returns item i's factors (shared, do not modify).
func (m *ALSModel) ItemVector(i int) []float32 {
	return m.ItemFactors[i*m.Factors : (i+1)*m.Factors]
}

// FoldIn computes a user vector from item factors alone — the "recalculate
// user on the fly" step for a collector whose history changed since
// training, or who was never trained. It solves the user's normal
// equations exactly,
//
//	(YᵀY + λI + Σ_i α·w_i·y_i y_iᵀ) x = Σ_i (1 + α·w_i) y_i,
//
// which is the fixed point the training's CG steps converge to. weights
// may be nil (all 1). Items outside the model are ignored; with no known
// item the result is the zero vector.
func (m *ALSModel) FoldIn(items []int32, weights []float32) ([]float32, error) {
	if weights != nil && len(weights) != len(items) {
		return nil, fmt.Errorf("%w: %d items but %d weights", ErrBadInput, len(items), len(weights))
	}
	k := m.Factors
	if m.itemGram == nil {
		// A model assembled by hand (e.g. decoded factors): build the Gram
		// matrix on first use would mutate shared state, so compute it
		// locally instead.
		g := gram64(m.ItemFactors, m.Items, k, 1)
		addDiag(g, k, m.Regularization)
		return m.foldIn(g, items, weights)
	}
	return m.foldIn(m.itemGram, items, weights)
}

func (m *ALSModel) foldIn(gram []float64, items []int32, weights []float32) ([]float32, error) {
	k := m.Factors
	a := make([]float64, k*k)
	copy(a, gram)
	b := make([]float64, k)
	y64 := make([]float64, k)
	for n, i := range items {
		if i < 0 || int(i) >= m.Items {
			continue
		}
		w := 1.0
		if weights != nil {
			w = float64(weights[n])
		}
		y := m.ItemFactors[int(i)*k : (int(i)+1)*k]
		for f, v := range y {
			y64[f] = float64(v)
		}
		c := m.Alpha * w
		for f := range k {
			b[f] += (1 + c) * y64[f]
			cf := c * y64[f]
			if cf == 0 {
				continue
			}
			row := a[f*k : (f+1)*k]
			// Upper triangle only: SymDense reads nothing else.
			for g := f; g < k; g++ {
				row[g] += cf * y64[g]
			}
		}
	}
	var chol mat.Cholesky
	if ok := chol.Factorize(mat.NewSymDense(k, a)); !ok {
		return nil, fmt.Errorf("%w: fold-in system is not positive definite (regularization %v)", ErrBadInput, m.Regularization)
	}
	var x mat.VecDense
	if err := chol.SolveVecTo(&x, mat.NewVecDense(k, b)); err != nil {
		return nil, fmt.Errorf("fold-in solve: %w", err)
	}
	out := make([]float32, k)
	for f := range out {
		out[f] = float32(x.AtVec(f))
	}
	return out, nil
}

// ScoreVector writes the predicted preference x·y_i of every item into dst
// (len ≥ Items).
func (m *ALSModel) ScoreVector(x []float32, dst []float32) error {
	if len(x) != m.Factors || len(dst) < m.Items {
		return fmt.Errorf("%w: vector %d (want %d), dst %d (want ≥ %d)", ErrBadInput, len(x), m.Factors, len(dst), m.Items)
	}
	gemvLarge(m.ItemFactors, m.Items, m.Factors, x, dst)
	return nil
}

// NumItems implements Scorer.
func (m *ALSModel) NumItems() int { return m.Items }

// Known implements Scorer: items with at least one training interaction.
func (m *ALSModel) Known(history []int32) int { return countKnown(history, m.ItemCounts) }

// ScoreHistory implements Scorer by folding the history in.
func (m *ALSModel) ScoreHistory(history []int32, dst []float32) error {
	x, err := m.FoldIn(history, nil)
	if err != nil {
		return err
	}
	return m.ScoreVector(x, dst)
}

// Recommend folds in a history and returns the top n items not excluded.
func (m *ALSModel) Recommend(history []int32, weights []float32, n int, exclude Exclusion) ([]Scored, error) {
	x, err := m.FoldIn(history, weights)
	if err != nil {
		return nil, err
	}
	scores := make([]float32, m.Items)
	if err := m.ScoreVector(x, scores); err != nil {
		return nil, err
	}
	return TopN(scores, n, exclude), nil
}

// countKnown counts history items with a positive count.
func countKnown(history []int32, counts []int) int {
	n := 0
	for _, i := range history {
		if i >= 0 && int(i) < len(counts) && counts[i] > 0 {
			n++
		}
	}
	return n
}

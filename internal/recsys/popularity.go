package recsys

import (
	"cmp"
	"fmt"
	"slices"
)

// Popularity ranks items by their number of interactions: the answer for a
// collector with no usable history.
type Popularity struct {
	Counts []int `json:"-"`
	order  []int32
}

// TrainPopularity counts interactions per item.
func TrainPopularity(ui *CSR) (*Popularity, error) {
	if err := ui.Validate(); err != nil {
		return nil, fmt.Errorf("popularity input: %w", err)
	}
	counts := ui.ColCounts()
	order := make([]int32, len(counts))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(counts[b], counts[a]) })
	return &Popularity{Counts: counts, order: order}, nil
}

// NumItems implements Scorer.
func (p *Popularity) NumItems() int { return len(p.Counts) }

// Known implements Scorer; popularity needs no history, so the cascade
// should give it MinKnown 0.
func (p *Popularity) Known(history []int32) int { return countKnown(history, p.Counts) }

// ScoreHistory implements Scorer: the score is the interaction count.
func (p *Popularity) ScoreHistory(_ []int32, dst []float32) error {
	if len(dst) < len(p.Counts) {
		return fmt.Errorf("%w: dst %d < %d items", ErrBadInput, len(dst), len(p.Counts))
	}
	for i, c := range p.Counts {
		dst[i] = float32(c)
	}
	return nil
}

// Top returns the n most popular items not excluded, walking the
// precomputed order (O(n + excluded) rather than a scan).
func (p *Popularity) Top(n int, exclude Exclusion) []Scored {
	out := make([]Scored, 0, max(min(n, len(p.order)), 0))
	for _, i := range p.order {
		if len(out) >= n {
			break
		}
		if !exclude.Has(i) {
			out = append(out, Scored{Item: i, Score: float32(p.Counts[i])})
		}
	}
	return out
}

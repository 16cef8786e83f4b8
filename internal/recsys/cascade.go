package recsys

import (
	"errors"
	"fmt"
	"math"
)

// CascadeLevel is one model in a Cascade.
type CascadeLevel struct {
	// Name is reported back as the level that answered ("als", "genre"…).
	Name  string
	Model Scorer
	// MinKnown is how many history items the model must know before it
	// may answer: ALS/EASE need a few to say anything personal, popularity
	// needs none (0).
	MinKnown int
}

// Cascade serves each request from the first level able to answer, e.g.
// ALS or EASE for collectors with enough known history, then genre
// affinity, then popularity for cold collectors or unknown records.
type Cascade struct {
	Levels []CascadeLevel
}

// Recommendation is a cascade answer.
type Recommendation struct {
	// Level names the model that answered.
	Level string   `json:"level"`
	Items []Scored `json:"items"`
	// Filled counts trailing items taken from lower levels because the
	// answering model could score fewer than n candidates (EASE only
	// scores its support items).
	Filled int `json:"filled"`
}

// ErrNoLevel is returned when no level can answer (a cascade without a
// MinKnown-0 level and a history it does not know).
var ErrNoLevel = errors.New("recsys: no cascade level can answer")

// Recommend returns up to n items for a collector with the given history,
// never returning an excluded item or a history item.
func (c *Cascade) Recommend(history []int32, n int, exclude Exclusion) (Recommendation, error) {
	if n <= 0 {
		return Recommendation{}, fmt.Errorf("%w: n = %d", ErrBadInput, n)
	}
	ex := NewExclusion(exclude.sorted, history)
	var rec Recommendation
	for _, lvl := range c.Levels {
		want := n - len(rec.Items)
		if want <= 0 {
			break
		}
		if lvl.Model == nil || lvl.Model.Known(history) < lvl.MinKnown {
			continue
		}
		scores := make([]float32, lvl.Model.NumItems())
		if err := lvl.Model.ScoreHistory(history, scores); err != nil {
			return Recommendation{}, fmt.Errorf("cascade level %s: %w", lvl.Name, err)
		}
		got := 0
		for _, s := range TopN(scores, want, ex) {
			if math.IsInf(float64(s.Score), -1) {
				break // sorted: the rest cannot be scored either
			}
			rec.Items = append(rec.Items, s)
			got++
		}
		if got == 0 {
			continue
		}
		if rec.Level == "" {
			rec.Level = lvl.Name
		} else {
			rec.Filled += got
		}
		// Lower levels fill the remainder without repeating items.
		ex = NewExclusion(ex.sorted, itemsOf(rec.Items))
	}
	if rec.Level == "" {
		return Recommendation{}, ErrNoLevel
	}
	return rec, nil
}

func itemsOf(s []Scored) []int32 {
	out := make([]int32, len(s))
	for i, x := range s {
		out[i] = x.Item
	}
	return out
}

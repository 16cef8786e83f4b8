package recsys

import "math"

// Scorer is what the cascade and the evaluation need from a model: score
// every item for a user described only by their history.
type Scorer interface {
	// NumItems is the size of dst that ScoreHistory fills.
	NumItems() int
	// Known counts history items the model learnt something about; the
	// cascade uses it to decide whether the model can answer.
	Known(history []int32) int
	// ScoreHistory writes one score per item into dst[:NumItems()];
	// higher is better, and items the model cannot score get -Inf.
	ScoreHistory(history []int32, dst []float32) error
}

func negInf() float32 { return float32(math.Inf(-1)) }

func fill(dst []float32, v float32) {
	for i := range dst {
		dst[i] = v
	}
}

package eval

import (
	"math"
	"slices"
)

// K is the cut-off of every reported metric.
const K = 10

// UserMetrics are one user's figures at cut-off K.
type UserMetrics struct {
	Precision, Recall, NDCG float64
}

// Score computes P@k, R@k and NDCG@k for a ranked list (best first) and
// the user's test items (sorted ascending). Gains are binary; the ideal
// DCG places min(|test|, k) hits at the top. P@k divides by k even when
// fewer than k items were ranked, as the protocol specifies.
func Score(ranked []int32, test []int32, k int) UserMetrics {
	if len(test) == 0 || k <= 0 {
		return UserMetrics{}
	}
	hits := 0
	var dcg float64
	for r, item := range ranked[:min(k, len(ranked))] {
		if _, ok := slices.BinarySearch(test, item); ok {
			hits++
			dcg += 1 / math.Log2(float64(r)+2)
		}
	}
	var idcg float64
	for r := range min(len(test), k) {
		idcg += 1 / math.Log2(float64(r)+2)
	}
	return UserMetrics{
		Precision: float64(hits) / float64(k),
		Recall:    float64(hits) / float64(len(test)),
		NDCG:      dcg / idcg,
	}
}

// Stat is a mean and sample standard deviation over seeds.
type Stat struct {
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
}

// NewStat summarises per-seed values (SD uses n−1; 0 for one value).
func NewStat(xs []float64) Stat {
	if len(xs) == 0 {
		return Stat{}
	}
	var s Stat
	for _, x := range xs {
		s.Mean += x
	}
	s.Mean /= float64(len(xs))
	if len(xs) > 1 {
		var v float64
		for _, x := range xs {
			v += (x - s.Mean) * (x - s.Mean)
		}
		s.SD = math.Sqrt(v / float64(len(xs)-1))
	}
	return s
}

package eval

import (
	"math"
	"testing"

	"github.com/cratestream/cratestream/internal/recsys"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestScore(t *testing.T) {
	l2 := math.Log2
	tests := []struct {
		name   string
		ranked []int32
		test   []int32
		want   UserMetrics
	}{
		{"two hits of three", []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, []int32{2, 5, 20},
			UserMetrics{0.2, 2.0 / 3, (1/l2(3) + 1/l2(6)) / (1 + 1/l2(3) + 1/l2(4))}},
		{"single test item at the top", []int32{7, 1, 2}, []int32{7}, UserMetrics{0.1, 1, 1}},
		{"single test item at rank 10", []int32{0, 1, 2, 3, 4, 5, 6, 8, 9, 7}, []int32{7}, UserMetrics{0.1, 1, 1 / l2(11)}},
		{"more than ten test items, all hits", []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
			[]int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, UserMetrics{1, 10.0 / 12, 1}},
		{"no hits", []int32{1, 2, 3}, []int32{4, 5}, UserMetrics{0, 0, 0}},
		{"hit beyond the cut-off ignored", []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 42}, []int32{42}, UserMetrics{0, 0, 0}},
		{"no test items", []int32{1}, nil, UserMetrics{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Score(tt.ranked, tt.test, K)
			if !near(got.Precision, tt.want.Precision) || !near(got.Recall, tt.want.Recall) || !near(got.NDCG, tt.want.NDCG) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestScoreWithTies ranks tied scores the way the evaluation does (score
// descending, then item index) and checks the resulting metrics.
func TestScoreWithTies(t *testing.T) {
	scores := []float32{0.5, 0.5, 0.9, 0.5, 0.5}
	top := recsys.TopN(scores, K, recsys.NewExclusion([]int32{0}))
	ranked := make([]int32, len(top))
	for i, s := range top {
		ranked[i] = s.Item
	}
	// 2 (0.9) first, then tied 1, 3, 4 by index; 0 is a training item.
	if want := []int32{2, 1, 3, 4}; len(ranked) != 4 || ranked[1] != 1 || ranked[2] != 3 {
		t.Fatalf("ranked %v, want %v", ranked, want)
	}
	got := Score(ranked, []int32{3, 4}, K)
	wantNDCG := (1/math.Log2(4) + 1/math.Log2(5)) / (1 + 1/math.Log2(3))
	if !near(got.Precision, 0.2) || !near(got.Recall, 1) || !near(got.NDCG, wantNDCG) {
		t.Fatalf("got %+v, want P 0.2, R 1, NDCG %v", got, wantNDCG)
	}
}

func TestNewStat(t *testing.T) {
	s := NewStat([]float64{1, 2, 3, 4})
	if !near(s.Mean, 2.5) || !near(s.SD, math.Sqrt(5.0/3)) {
		t.Fatalf("%+v", s)
	}
	if s := NewStat([]float64{0.3}); s.Mean != 0.3 || s.SD != 0 {
		t.Fatalf("one value: %+v", s)
	}
	if s := NewStat(nil); s != (Stat{}) {
		t.Fatalf("none: %+v", s)
	}
}

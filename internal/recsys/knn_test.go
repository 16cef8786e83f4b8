package recsys

import (
	"math"
	"slices"
	"testing"
)

// Users {0,1}, {0,1,2}, {1,2}: cos(0,1) = 2/√6, cos(0,2) = 1/2,
// cos(1,2) = 2/√6.
func TestItemKNNCosine(t *testing.T) {
	m := binaryRows(t, 4, [][]int32{{0, 1}, {0, 1, 2}, {1, 2}})
	c := float32(2 / math.Sqrt(6))
	tests := []struct {
		name string
		cfg  KNNConfig
		item int32
		want []Scored
	}{
		{"all neighbours", KNNConfig{K: 5}, 0, []Scored{{1, c}, {2, 0.5}}},
		{"ties by id", KNNConfig{K: 5}, 1, []Scored{{0, c}, {2, c}}},
		{"top-1", KNNConfig{K: 1}, 2, []Scored{{1, c}}},
		{"shrink", KNNConfig{K: 5, Shrink: 1}, 0, []Scored{{1, float32(2 / (math.Sqrt(6) + 1))}, {2, 1.0 / 3}}},
		{"unseen item", KNNConfig{K: 5}, 3, []Scored{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model, err := TrainItemKNN(m, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := model.SimilarItems(tt.item, 10)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k := range got {
				if got[k].Item != tt.want[k].Item || math.Abs(float64(got[k].Score-tt.want[k].Score)) > 1e-6 {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
	model, err := TrainItemKNN(m, KNNConfig{K: 5})
	if err != nil {
		t.Fatal(err)
	}
	scores := make([]float32, 4)
	if err := model.ScoreHistory([]int32{0, 2}, scores); err != nil {
		t.Fatal(err)
	}
	want := []float32{0.5, 2 * c, 0.5, 0}
	for i := range want {
		if math.Abs(float64(scores[i]-want[i])) > 1e-6 {
			t.Fatalf("scores %v, want %v", scores, want)
		}
	}
	recs := TopN(scores, 2, NewExclusion([]int32{0, 2}))
	if !slices.Equal(itemsOf(recs), []int32{1, 3}) {
		t.Fatalf("recommendations %v", recs)
	}
}

func TestItemKNNDeterministic(t *testing.T) {
	m := randomCSR(t, 9, 200, 150, 0.05)
	a, err := TrainItemKNN(m, KNNConfig{K: 10, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := TrainItemKNN(m, KNNConfig{K: 10, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Neighbors, b.Neighbors) || !slices.Equal(a.Sims, b.Sims) {
		t.Fatal("worker count changed the neighbours")
	}
	if _, err := TrainItemKNN(m, KNNConfig{K: 0}); err == nil {
		t.Fatal("k = 0 accepted")
	}
}

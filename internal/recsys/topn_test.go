package recsys

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestTopN(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name    string
		scores  []float32
		n       int
		exclude []int32
		want    []int32
	}{
		{"ordered", []float32{0.1, 0.9, 0.5, 0.7}, 3, nil, []int32{1, 3, 2}},
		{"ties by id", []float32{0.5, 0.9, 0.5, 0.5}, 3, nil, []int32{1, 0, 2}},
		{"tie at the boundary keeps lower id", []float32{0.5, 0.5, 0.5}, 1, nil, []int32{0}},
		{"excludes owned", []float32{0.1, 0.9, 0.5, 0.7}, 2, []int32{1, 3}, []int32{2, 0}},
		{"skips NaN", []float32{nan, 0.2, nan}, 3, nil, []int32{1}},
		{"n beyond items", []float32{0.3, 0.4}, 5, nil, []int32{1, 0}},
		{"n zero", []float32{0.3}, 0, nil, nil},
		{"negative infinity still ranks last", []float32{float32(math.Inf(-1)), -1}, 2, nil, []int32{1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := itemsOfScored(TopN(tt.scores, tt.n, NewExclusion(tt.exclude)))
			if !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTopNMatchesFullSort checks the heap against a full sort on random
// scores with many ties.
func TestTopNMatchesFullSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for trial := range 50 {
		scores := make([]float32, 500)
		for i := range scores {
			scores[i] = float32(rng.IntN(40)) // heavy ties
		}
		var ex []int32
		for range 30 {
			ex = append(ex, int32(rng.IntN(len(scores))))
		}
		exclusion := NewExclusion(ex)
		var all []Scored
		for i, s := range scores {
			if !exclusion.Has(int32(i)) {
				all = append(all, Scored{Item: int32(i), Score: s})
			}
		}
		sortScored(all)
		n := 1 + trial*3
		got := TopN(scores, n, exclusion)
		if !slices.Equal(got, all[:n]) {
			t.Fatalf("trial %d: got %v, want %v", trial, got, all[:n])
		}
	}
}

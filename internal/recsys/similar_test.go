package recsys

import (
	"context"
	"math"
	"slices"
	"testing"
)

func TestVectorIndex(t *testing.T) {
	vecs := []float32{
		1, 0, // 0
		2, 0.1, // 1: almost 0's direction, larger norm
		0, 1, // 2
		-1, 0, // 3
		0, 0, // 4: zero vector
	}
	idx, err := NewVectorIndex(vecs, 2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := idx.Similar(0, 3, Exclusion{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(itemsOf(got), []int32{1, 2, 4}) {
		t.Fatalf("similar to 0: %v", got)
	}
	if math.Abs(float64(got[0].Score)-2/math.Sqrt(4.01)) > 1e-6 {
		t.Fatalf("cosine %v", got[0].Score)
	}
	near, err := idx.Nearest([]float32{0, -3}, 2, NewExclusion([]int32{4}))
	if err != nil {
		t.Fatal(err)
	}
	if near[0].Item != 0 && near[0].Item != 3 || math.Abs(float64(near[0].Score)) > 1e-6 {
		t.Fatalf("nearest to (0,-3): %v", near)
	}
	if _, err := idx.Similar(7, 1, Exclusion{}); err == nil {
		t.Fatal("out-of-range id accepted")
	}
	if _, err := NewVectorIndex([]float32{1, 2, 3}, 2); err == nil {
		t.Fatal("ragged vectors accepted")
	}
}

func TestALSSimilarUsersAndItems(t *testing.T) {
	// Two disjoint taste groups: users 0–9 own items 0–9, users 10–19 own
	// items 10–19. Neighbours must stay within the group.
	var rows [][]int32
	for u := range 20 {
		base := int32(u / 10 * 10)
		rows = append(rows, []int32{base + int32(u%10), base + int32((u+1)%10), base + int32((u+3)%10)})
	}
	m := binaryRows(t, 20, rows)
	cfg := smallALSConfig()
	cfg.Iterations = 20
	model, err := TrainALS(context.Background(), m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	users, err := model.UserIndex()
	if err != nil {
		t.Fatal(err)
	}
	items, err := model.ItemIndex()
	if err != nil {
		t.Fatal(err)
	}
	for id := range int32(20) {
		su, err := users.Similar(id, 3, Exclusion{})
		if err != nil {
			t.Fatal(err)
		}
		si, err := items.Similar(id, 3, Exclusion{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range append(su, si...) {
			if s.Item/10 != id/10 || s.Item == id {
				t.Fatalf("%d: neighbour %d crosses groups or is itself (users %v, items %v)", id, s.Item, su, si)
			}
		}
	}
}

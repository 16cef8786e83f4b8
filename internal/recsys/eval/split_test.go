package eval

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func syntheticDataset(t *testing.T, users, perUser int) *Dataset {
	t.Helper()
	var b strings.Builder
	for u := range users {
		for k := range perUser {
			fmt.Fprintf(&b, "u%d,i%d\n", u, (u*7+k*3)%(users+perUser))
		}
	}
	ds, err := Read(strings.NewReader(b.String()), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestSplit(t *testing.T) {
	ds := syntheticDataset(t, 50, 10)
	n := len(ds.Interactions)
	a, err := NewSplit(ds, 1, 0.8)
	if err != nil {
		t.Fatal(err)
	}
	if a.Train.NNZ() != 400 {
		t.Fatalf("train %d of %d", a.Train.NNZ(), n)
	}
	seen := map[[2]int32]bool{}
	testCount := 0
	for u := range a.Train.Rows {
		items, _ := a.Train.Row(u)
		for _, i := range items {
			seen[[2]int32{int32(u), i}] = true
		}
		for _, i := range a.Test[u] {
			if seen[[2]int32{int32(u), i}] {
				t.Fatalf("pair (%d,%d) in train and test", u, i)
			}
			testCount++
		}
		if !slices.IsSorted(a.Test[u]) {
			t.Fatal("test items unsorted")
		}
	}
	if testCount != n-400 {
		t.Fatalf("test %d, want %d", testCount, n-400)
	}
	b, _ := NewSplit(ds, 1, 0.8)
	c, _ := NewSplit(ds, 2, 0.8)
	if !slices.Equal(a.Train.Indices, b.Train.Indices) {
		t.Fatal("same seed, different split")
	}
	if slices.Equal(a.Train.Indices, c.Train.Indices) {
		t.Fatal("different seeds, same split")
	}
	for _, f := range []float64{0, 1, -0.5} {
		if _, err := NewSplit(ds, 1, f); err == nil {
			t.Fatalf("fraction %v accepted", f)
		}
	}
}

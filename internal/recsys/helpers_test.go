package recsys

import (
	"math/rand/v2"
	"testing"
)

// randomCSR builds a reproducible users×items matrix with about density
// share of entries set, weights in [1, 5].
func randomCSR(t testing.TB, seed uint64, users, items int, density float64) *CSR {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	var entries []Entry
	for u := range users {
		for i := range items {
			if rng.Float64() < density {
				entries = append(entries, Entry{Row: int32(u), Col: int32(i), Weight: float32(1 + rng.IntN(5))})
			}
		}
	}
	m, err := NewCSR(users, items, entries)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustCSR(t testing.TB, rows, cols int, entries []Entry) *CSR {
	t.Helper()
	m, err := NewCSR(rows, cols, entries)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// binaryRows builds a binary matrix from per-row item lists.
func binaryRows(t testing.TB, cols int, rows [][]int32) *CSR {
	t.Helper()
	var entries []Entry
	for u, items := range rows {
		for _, i := range items {
			entries = append(entries, Entry{Row: int32(u), Col: i, Weight: 1})
		}
	}
	return mustCSR(t, len(rows), cols, entries)
}

func itemsOfScored(s []Scored) []int32 { return itemsOf(s) }

package recsys

import (
	"container/heap"
	"math"
	"slices"
)

// Scored is an item with its score.
type Scored struct {
	Item  int32   `json:"item"`
	Score float32 `json:"score"`
}

// better orders by score descending, then item id ascending, so that ties
// rank deterministically (the evaluation relies on this).
func better(a, b Scored) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.Item < b.Item
}

// minHeap keeps the worst of the current top-n at the root.
type minHeap []Scored

func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return better(h[j], h[i]) }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(Scored)) }
func (h *minHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Exclusion is a set of items never to recommend (what the collector
// already owns or has on the wantlist). The zero value excludes nothing.
type Exclusion struct {
	sorted []int32
}

// NewExclusion builds an exclusion set from item ids in any order.
func NewExclusion(items ...[]int32) Exclusion {
	var all []int32
	for _, s := range items {
		all = append(all, s...)
	}
	slices.Sort(all)
	return Exclusion{sorted: slices.Compact(all)}
}

// Has reports whether item is excluded.
func (e Exclusion) Has(item int32) bool {
	_, ok := slices.BinarySearch(e.sorted, item)
	return ok
}

// Len is the number of distinct excluded items.
func (e Exclusion) Len() int { return len(e.sorted) }

// TopN returns the n best-scoring items, best first, skipping excluded
// items and NaN scores. It is a bounded min-heap scan, O(items·log n): the
// exclusion set is only consulted for items that would enter the heap, so
// a large collection costs little.
func TopN(scores []float32, n int, exclude Exclusion) []Scored {
	if n <= 0 {
		return nil
	}
	h := make(minHeap, 0, n)
	for i, s := range scores {
		if math.IsNaN(float64(s)) {
			continue
		}
		c := Scored{Item: int32(i), Score: s}
		if len(h) == n && !better(c, h[0]) {
			continue
		}
		if exclude.Has(c.Item) {
			continue
		}
		if len(h) < n {
			heap.Push(&h, c)
			continue
		}
		h[0] = c
		heap.Fix(&h, 0)
	}
	out := []Scored(h)
	sortScored(out)
	return out
}

// sortScored sorts best first (score descending, item ascending).
func sortScored(s []Scored) {
	slices.SortFunc(s, func(a, b Scored) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
}

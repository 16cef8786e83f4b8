// Package cartbuilder is the cart builder: it joins each cart request with
// the user's candidates (co-partitioned by user), makes sure the candidate
// releases' listings are fresh — asking the scraper fleet for the stale ones
// and waiting, under a deadline kept in the store, for their scrape-done
// events and for the listing table to catch up with the offsets they carry —
// then solves the exact cart problem over the global listing table and
// emits the top carts to carts.v1, exactly once per request id.
package cartbuilder

import (
	"cmp"
	"container/heap"
	"fmt"
	"hash/fnv"
	"math"
	"slices"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// MaxCandidates bounds the releases of one cart problem, as the original
// tool did.
const MaxCandidates = 200

// Select picks the candidates of a request (the seed's rule):
//
//   - at most MaxCandidates releases;
//   - ratio 0 takes recommendations only, 1 the wantlist only; in between
//     the top round((1-ratio)·200) recommendations plus a random subset of
//     the wantlist, seeded by the request id so that a retry selects the
//     same;
//   - a wantlist item scores the lowest selected recommendation score, or 1
//     when the cart is wantlist-only (or there is no recommendation).
//
// A release that is both recommended and wanted counts once, as wanted.
//
// The wantlist subset is the wanted releases of smallest rank, a hash of
// the release id seeded by the request id: a uniformly random subset that
// does not depend on the wantlist's order, found in one pass with a bounded
// heap, so a wantlist of 100,000 releases costs a millisecond, not a sort
// and a shuffle of the whole list.
func Select(c *pb.Candidates, ratio float64, requestID string) []*pb.CartCandidate {
	ratio = math.Max(0, math.Min(1, ratio))
	nRec := int(math.Round((1 - ratio) * MaxCandidates))
	useWant := ratio > 0
	var recs []*pb.Candidate
	nWant := 0
	for _, cd := range c.GetCandidates() {
		switch cd.Source {
		case pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST:
			nWant++
		case pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION:
			recs = append(recs, cd)
		}
	}
	if nWant == 0 {
		useWant = false
	}
	// Recommended releases that are also wanted count as wanted (only
	// when the wantlist is used at all).
	var wantedRec map[int64]bool
	if useWant && nRec > 0 && len(recs) > 0 {
		recSet := make(map[int64]bool, len(recs))
		for _, r := range recs {
			recSet[r.ReleaseId] = true
		}
		wantedRec = map[int64]bool{}
		for _, cd := range c.GetCandidates() {
			if cd.Source == pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST && recSet[cd.ReleaseId] {
				wantedRec[cd.ReleaseId] = true
			}
		}
	}
	var out []*pb.CartCandidate
	low := 0.0
	for _, r := range recs {
		if len(out) >= nRec {
			break
		}
		if wantedRec[r.ReleaseId] {
			continue // counted as wanted below
		}
		out = append(out, &pb.CartCandidate{ReleaseId: r.ReleaseId, Score: r.Score, Source: "recommendation"})
		low = r.Score
	}
	if !useWant || len(out) >= MaxCandidates {
		return out
	}
	score := low
	if len(out) == 0 || ratio == 1 {
		score = 1
	}
	for _, id := range sampleWanted(c.GetCandidates(), MaxCandidates-len(out), requestID) {
		out = append(out, &pb.CartCandidate{ReleaseId: id, Score: score, Source: "wantlist"})
	}
	return out
}

// sampleWanted returns up to k distinct wanted releases: those of smallest
// rank(seed, id), in rank order.
func sampleWanted(cands []*pb.Candidate, k int, requestID string) []int64 {
	if k <= 0 {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte(requestID))
	seed := h.Sum64()
	rank := func(id int64) uint64 {
		// splitmix64's finalizer of the seeded id.
		x := seed + uint64(id)*0x9e3779b97f4a7c15
		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
		x = (x ^ (x >> 27)) * 0x94d049bb133111eb
		return x ^ (x >> 31)
	}
	// top holds the k smallest so far, largest on top; in holds its ids (a
	// duplicate has the same rank, so it is either in top or ranks above
	// its maximum and is rejected).
	top := &rankHeap{}
	in := make(map[int64]bool, k)
	for _, cd := range cands {
		if cd.Source != pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST {
			continue
		}
		it := ranked{rank(cd.ReleaseId), cd.ReleaseId}
		if top.Len() == k && !it.less(top.a[0]) || in[it.id] {
			continue
		}
		if top.Len() < k {
			heap.Push(top, it)
		} else {
			delete(in, top.a[0].id)
			top.a[0] = it
			heap.Fix(top, 0)
		}
		in[it.id] = true
	}
	slices.SortFunc(top.a, func(a, b ranked) int { return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.id, b.id)) })
	out := make([]int64, len(top.a))
	for i, it := range top.a {
		out[i] = it.id
	}
	return out
}

type ranked struct {
	rank uint64
	id   int64
}

func (a ranked) less(b ranked) bool { return a.rank < b.rank || (a.rank == b.rank && a.id < b.id) }

// rankHeap is a max-heap (container/heap) of ranked items.
type rankHeap struct{ a []ranked }

func (h *rankHeap) Len() int           { return len(h.a) }
func (h *rankHeap) Less(i, j int) bool { return h.a[j].less(h.a[i]) }
func (h *rankHeap) Swap(i, j int)      { h.a[i], h.a[j] = h.a[j], h.a[i] }
func (h *rankHeap) Push(x any)         { h.a = append(h.a, x.(ranked)) }
func (h *rankHeap) Pop() any {
	x := h.a[len(h.a)-1]
	h.a = h.a[:len(h.a)-1]
	return x
}

// validate checks a request's criteria; the error names the field.
func validate(r *pb.CartRequest) error {
	c := r.GetCriteria()
	switch {
	case r.RequestId == "":
		return fmt.Errorf("request_id is empty")
	case r.UserId == "":
		return fmt.Errorf("user_id is empty")
	case c == nil:
		return fmt.Errorf("criteria missing")
	case c.Budget == nil || c.Budget.Currency == "":
		return fmt.Errorf("criteria.budget: missing amount or currency")
	case c.Budget.AmountMinor < 0:
		return fmt.Errorf("criteria.budget: %d is negative", c.Budget.AmountMinor)
	case c.MinQty < 0:
		return fmt.Errorf("criteria.min_qty: %d is negative", c.MinQty)
	case !(c.WantlistRatio >= 0 && c.WantlistRatio <= 1): // NaN too
		return fmt.Errorf("criteria.wantlist_ratio: %v outside 0..1", c.WantlistRatio)
	case !(c.MinSellerRating >= 0 && c.MinSellerRating <= 100):
		return fmt.Errorf("criteria.min_seller_rating: %v outside 0..100", c.MinSellerRating)
	case c.TopN < 0 || c.TopN > 100:
		return fmt.Errorf("criteria.top_n: %d outside 0..100", c.TopN)
	case c.Objective != "" && c.Objective != "seed" && c.Objective != "sum":
		return fmt.Errorf("criteria.objective: %q (want seed or sum)", c.Objective)
	case c.MinMedia < 0 || c.MinMedia > pb.MediaGrade_MEDIA_GRADE_POOR:
		return fmt.Errorf("criteria.min_media: %v is not a grade", c.MinMedia)
	}
	return nil
}

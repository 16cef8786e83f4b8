// Package cartbuilder is the cart builder: it joins each cart request with
// the user's candidates (co-partitioned by user), makes sure the candidate
// releases' listings are fresh — asking the scraper fleet for the stale ones
// and waiting, under a deadline kept in the store, for their scrape-done
// events and for the listing table to catch up with the offsets they carry —
// then solves the exact cart problem over the global listing table and
// emits the top carts to carts.v1, exactly once per request id.
package cartbuilder

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"

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
func Select(c *pb.Candidates, ratio float64, requestID string) []*pb.CartCandidate {
	ratio = math.Max(0, math.Min(1, ratio))
	var recs []*pb.Candidate
	wanted := map[int64]bool{}
	var want []int64
	for _, cd := range c.GetCandidates() {
		switch cd.Source {
		case pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST:
			if !wanted[cd.ReleaseId] {
				wanted[cd.ReleaseId] = true
				want = append(want, cd.ReleaseId)
			}
		case pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION:
			recs = append(recs, cd)
		}
	}
	nRec := int(math.Round((1 - ratio) * MaxCandidates))
	if ratio == 0 {
		want = nil
	}
	var out []*pb.CartCandidate
	low := 0.0
	for _, r := range recs {
		if len(out) >= nRec {
			break
		}
		if wanted[r.ReleaseId] {
			continue
		}
		out = append(out, &pb.CartCandidate{ReleaseId: r.ReleaseId, Score: r.Score, Source: "recommendation"})
		low = r.Score
	}
	if len(want) > 0 {
		h := fnv.New64a()
		h.Write([]byte(requestID))
		rng := rand.New(rand.NewPCG(h.Sum64(), 0x5eed))
		sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
		rng.Shuffle(len(want), func(i, j int) { want[i], want[j] = want[j], want[i] })
		score := low
		if len(out) == 0 || ratio == 1 {
			score = 1
		}
		for _, id := range want {
			if len(out) >= MaxCandidates {
				break
			}
			out = append(out, &pb.CartCandidate{ReleaseId: id, Score: score, Source: "wantlist"})
		}
	}
	return out
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
	case c.WantlistRatio < 0 || c.WantlistRatio > 1:
		return fmt.Errorf("criteria.wantlist_ratio: %v outside 0..1", c.WantlistRatio)
	case c.MinSellerRating < 0 || c.MinSellerRating > 100:
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

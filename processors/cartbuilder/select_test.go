package cartbuilder

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// cands builds a Candidates value: recs recommendations scored 1.0, 0.99,
// ... (best first, as the recommend processor writes them) with release ids
// from recBase, then the wantlist ids.
func cands(recs int, recBase int64, want ...int64) *pb.Candidates {
	c := &pb.Candidates{UserId: "u"}
	for i := 0; i < recs; i++ {
		c.Candidates = append(c.Candidates, &pb.Candidate{ReleaseId: recBase + int64(i), Score: 1 - float64(i)/1000,
			Source: pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION})
	}
	for _, id := range want {
		c.Candidates = append(c.Candidates, &pb.Candidate{ReleaseId: id, Score: 0.5, Source: pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST})
	}
	return c
}

func ids(from int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = from + int64(i)
	}
	return out
}

func bySource(sel []*pb.CartCandidate) (recs, wants []*pb.CartCandidate) {
	for _, cd := range sel {
		switch cd.Source {
		case "recommendation":
			recs = append(recs, cd)
		case "wantlist":
			wants = append(wants, cd)
		}
	}
	return recs, wants
}

func TestSelect(t *testing.T) {
	const rb = 1_000_000 // recommendation ids; wantlist ids are small
	tests := []struct {
		name      string
		c         *pb.Candidates
		ratio     float64
		wantRecs  int
		wantWants int
		// wantScore is the score of every wantlist item (when any).
		wantScore float64
	}{
		{name: "no candidates", c: nil, ratio: 0.5},
		{name: "empty", c: &pb.Candidates{}, ratio: 1},
		{name: "recommendations only", c: cands(300, rb, ids(1, 50)...), ratio: 0, wantRecs: 200},
		{name: "recommendations only, few", c: cands(20, rb, ids(1, 50)...), ratio: 0, wantRecs: 20},
		{name: "wantlist only", c: cands(300, rb, ids(1, 500)...), ratio: 1, wantWants: 200, wantScore: 1},
		{name: "wantlist only, few", c: cands(300, rb, ids(1, 30)...), ratio: 1, wantWants: 30, wantScore: 1},
		{name: "wantlist only, no wantlist", c: cands(300, rb), ratio: 1},
		// round((1-0.25)*200) = 150 recommendations, the rest wanted; a
		// wanted item scores the lowest selected recommendation (the
		// 150th: 1 - 149/1000).
		{name: "quarter", c: cands(300, rb, ids(1, 500)...), ratio: 0.25, wantRecs: 150, wantWants: 50, wantScore: 1 - 149.0/1000},
		{name: "half", c: cands(300, rb, ids(1, 500)...), ratio: 0.5, wantRecs: 100, wantWants: 100, wantScore: 1 - 99.0/1000},
		// Fewer recommendations than their share: the wantlist fills up.
		{name: "half, few recommendations", c: cands(10, rb, ids(1, 500)...), ratio: 0.5, wantRecs: 10, wantWants: 190, wantScore: 1 - 9.0/1000},
		// Fewer wanted items than their share: no padding with more
		// recommendations (the seed's rule).
		{name: "half, small wantlist", c: cands(300, rb, ids(1, 7)...), ratio: 0.5, wantRecs: 100, wantWants: 7, wantScore: 1 - 99.0/1000},
		{name: "half, no recommendations", c: cands(0, rb, ids(1, 500)...), ratio: 0.5, wantWants: 200, wantScore: 1},
		{name: "almost wantlist only", c: cands(300, rb, ids(1, 500)...), ratio: 0.999, wantWants: 200, wantScore: 1},
		{name: "ratio below 0 clamps", c: cands(300, rb, ids(1, 50)...), ratio: -3, wantRecs: 200},
		{name: "ratio above 1 clamps", c: cands(300, rb, ids(1, 500)...), ratio: 7, wantWants: 200, wantScore: 1},
		{name: "duplicate wantlist entries count once", c: cands(0, rb, 5, 5, 6, 6, 6, 7), ratio: 1, wantWants: 3, wantScore: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := proto.Clone(tc.c)
			sel := Select(tc.c, tc.ratio, "req-1")
			if len(sel) > MaxCandidates {
				t.Fatalf("%d candidates, more than %d", len(sel), MaxCandidates)
			}
			recs, wants := bySource(sel)
			if len(recs) != tc.wantRecs || len(wants) != tc.wantWants || len(recs)+len(wants) != len(sel) {
				t.Fatalf("got %d recommendations and %d wanted of %d, want %d and %d", len(recs), len(wants), len(sel), tc.wantRecs, tc.wantWants)
			}
			// The top recommendations, in order, with their scores.
			for i, r := range recs {
				if r.ReleaseId != rb+int64(i) || r.Score != 1-float64(i)/1000 {
					t.Fatalf("recommendation %d = %v", i, r)
				}
			}
			seen := map[int64]bool{}
			for _, cd := range sel {
				if seen[cd.ReleaseId] {
					t.Fatalf("release %d selected twice", cd.ReleaseId)
				}
				seen[cd.ReleaseId] = true
			}
			for _, w := range wants {
				if w.Score != tc.wantScore {
					t.Fatalf("wanted %d scores %v, want %v", w.ReleaseId, w.Score, tc.wantScore)
				}
				if w.ReleaseId >= rb {
					t.Fatalf("wanted item %d is not in the wantlist", w.ReleaseId)
				}
			}
			if !proto.Equal(before, tc.c) {
				t.Fatal("Select modified its input")
			}
		})
	}
}

// A release both recommended and wanted counts once, as wanted; with
// recommendations only it stays as the recommendation it is.
func TestSelectOverlap(t *testing.T) {
	c := cands(5, 100, 101, 103, 900)
	sel := Select(c, 1, "r")
	if got := releaseIDs(sel); !slices.Equal(sortedCopy(got), []int64{101, 103, 900}) {
		t.Fatalf("wantlist only: %v", got)
	}
	sel = Select(c, 0.5, "r")
	recs, wants := bySource(sel)
	if got := releaseIDs(recs); !slices.Equal(got, []int64{100, 102, 104}) {
		t.Fatalf("half: recommendations %v (the wanted 101 and 103 count as wanted)", got)
	}
	if got := sortedCopy(releaseIDs(wants)); !slices.Equal(got, []int64{101, 103, 900}) {
		t.Fatalf("half: wanted %v", got)
	}
	// Recommendations only: the wantlist is not used, so a wanted release
	// that the model recommends is kept as a recommendation, not lost.
	sel = Select(c, 0, "r")
	if got := releaseIDs(sel); !slices.Equal(got, []int64{100, 101, 102, 103, 104}) {
		t.Fatalf("recommendations only: %v", got)
	}
}

func releaseIDs(sel []*pb.CartCandidate) []int64 {
	out := make([]int64, len(sel))
	for i, cd := range sel {
		out[i] = cd.ReleaseId
	}
	return out
}

func sortedCopy(s []int64) []int64 {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// The wantlist subset is seeded by the request id: the same id selects the
// same subset (whatever the wantlist's order), another id may differ.
func TestSelectSeededByRequestID(t *testing.T) {
	want := ids(1, 1000)
	c := cands(300, 1_000_000, want...)
	a := releaseIDs(Select(c, 0.5, "request-a"))
	if again := releaseIDs(Select(c, 0.5, "request-a")); !slices.Equal(a, again) {
		t.Fatal("the same request id selected another subset")
	}
	// The same wantlist in another order (a newer candidates record):
	// still the same subset.
	rev := slices.Clone(want)
	slices.Reverse(rev)
	if got := releaseIDs(Select(cands(300, 1_000_000, rev...), 0.5, "request-a")); !slices.Equal(a, got) {
		t.Fatal("the wantlist's order changed the subset of a request id")
	}
	differ := 0
	for i := 0; i < 10; i++ {
		b := releaseIDs(Select(c, 0.5, fmt.Sprintf("request-%d", i)))
		if !slices.Equal(sortedCopy(a[100:]), sortedCopy(b[100:])) {
			differ++
		}
	}
	// 100 of 1000 items: two ids choosing the same subset is
	// astronomically unlikely; ten in a row means no seeding by id.
	if differ == 0 {
		t.Fatal("ten other request ids all selected the same wantlist subset")
	}
}

func TestSelectHugeWantlist(t *testing.T) {
	c := cands(500, 1_000_000_000, ids(1, 100_000)...)
	for _, ratio := range []float64{0, 0.3, 1} {
		start := time.Now()
		sel := Select(c, ratio, "huge")
		t.Logf("ratio %v: %d candidates in %s", ratio, len(sel), time.Since(start))
		if len(sel) != MaxCandidates {
			t.Fatalf("ratio %v: %d candidates", ratio, len(sel))
		}
	}
}

func BenchmarkSelectHugeWantlist(b *testing.B) {
	c := cands(500, 1_000_000_000, ids(1, 100_000)...)
	for b.Loop() {
		Select(c, 0.5, "huge")
	}
}

func TestValidate(t *testing.T) {
	ok := func() *pb.CartRequest {
		return &pb.CartRequest{RequestId: "r", UserId: "u", Criteria: &pb.CartCriteria{Budget: &pb.Money{AmountMinor: 1000, Currency: "EUR"}}}
	}
	if err := validate(ok()); err != nil {
		t.Fatalf("valid request: %v", err)
	}
	zero := ok()
	zero.Criteria.Budget.AmountMinor = 0
	if err := validate(zero); err != nil {
		t.Fatalf("a zero budget is valid (it finds nothing): %v", err)
	}
	for _, tc := range []struct {
		field string
		mod   func(r *pb.CartRequest)
	}{
		{"criteria missing", func(r *pb.CartRequest) { r.Criteria = nil }},
		{"criteria.budget", func(r *pb.CartRequest) { r.Criteria.Budget = nil }},
		{"criteria.budget", func(r *pb.CartRequest) { r.Criteria.Budget.Currency = "" }},
		{"criteria.budget", func(r *pb.CartRequest) { r.Criteria.Budget.AmountMinor = -1 }},
		{"criteria.min_qty", func(r *pb.CartRequest) { r.Criteria.MinQty = -2 }},
		{"criteria.wantlist_ratio", func(r *pb.CartRequest) { r.Criteria.WantlistRatio = 1.5 }},
		{"criteria.min_seller_rating", func(r *pb.CartRequest) { r.Criteria.MinSellerRating = 101 }},
		{"criteria.top_n", func(r *pb.CartRequest) { r.Criteria.TopN = 1000 }},
		{"criteria.objective", func(r *pb.CartRequest) { r.Criteria.Objective = "cheapest" }},
		{"criteria.min_media", func(r *pb.CartRequest) { r.Criteria.MinMedia = 42 }},
	} {
		r := ok()
		tc.mod(r)
		err := validate(r)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: validate = %v", tc.field, err)
		}
	}
}

// newTables returns the processor's global tables, empty and never run:
// tests fill them with inject, without Kafka.
func newTables() *Tables {
	gc := stream.GlobalConfig{Logger: quietLogger()}
	return NewTables(stream.NewGlobalTable(topics.Listings(), gc), stream.NewGlobalTable(topics.Sellers(), gc),
		stream.NewGlobalTable(topics.ReleaseStats(), gc), stream.NewGlobalTable(topics.FxRates(), gc))
}

// inject puts a row into g as if read from topic, at the next offset of
// its partition (what streamtest.Global does, for tests without a tester).
func inject[K comparable, V any](t testing.TB, g *stream.GlobalTable[K, V], topic stream.Topic[K, V], key K, value V) {
	t.Helper()
	kb, err := topic.Key.Append(nil, key)
	if err != nil {
		t.Fatal(err)
	}
	p := stream.PartitionFor(kb, int32(topic.Partitions))
	g.Inject(p, g.Positions()[p], key, value, false)
}

func eur(cents int64) *pb.Money { return &pb.Money{AmountMinor: cents, Currency: "EUR"} }

// fxRates are the rates every test gets (units per EUR). SEK's is
// malformed: it must leave SEK out, not fail every request.
var fxRates = map[string]string{"USD": "1.1", "GBP": "0.85", "JPY": "160", "SEK": "11,2"}

// fxRows are fxRates as rows of fx-rates.v1.
func fxRows() []*pb.FxRate {
	var out []*pb.FxRate
	for cur, r := range fxRates {
		out = append(out, &pb.FxRate{Currency: cur, UnitsPerEur: r, Date: "2026-11-20"})
	}
	return out
}

func injectFX(t testing.TB, tb *Tables) {
	for _, r := range fxRows() {
		inject(t, tb.FX, topics.FxRates(), r.Currency, r)
	}
}

func TestAffordable(t *testing.T) {
	tb := newTables()
	injectFX(t, tb)
	stats := map[int64]*pb.ReleaseStats{
		1: {ReleaseId: 1, ListingCount: 4, MedianPrice: eur(1000)},
		2: {ReleaseId: 2, ListingCount: 4, MedianPrice: eur(5000)},
		// 3 has no stats; 4 has stats without a median (no listings):
		// neither is known to be unaffordable.
		4: {ReleaseId: 4},
		5: {ReleaseId: 5, ListingCount: 1, MedianPrice: eur(2000)},
		// A median not in EUR is not compared: 6 is always kept.
		6: {ReleaseId: 6, ListingCount: 1, MedianPrice: &pb.Money{AmountMinor: 999999, Currency: "USD"}},
	}
	for id, st := range stats {
		inject(t, tb.Stats, topics.ReleaseStats(), id, st)
	}

	all := []*pb.CartCandidate{{ReleaseId: 1}, {ReleaseId: 2}, {ReleaseId: 3}, {ReleaseId: 4}, {ReleaseId: 5}, {ReleaseId: 6}}
	for _, tc := range []struct {
		budget *pb.Money
		want   []int64
	}{
		{eur(100000), []int64{1, 2, 3, 4, 5, 6}},
		{eur(2000), []int64{1, 3, 4, 5, 6}}, // a median equal to the budget is affordable
		{eur(1999), []int64{1, 3, 4, 6}},
		{eur(999), []int64{3, 4, 6}},
		{eur(0), []int64{3, 4, 6}}, // zero budget: everything priced is dropped
		// 2000 USD cents = 18.18 EUR at 1.1: 1 fits, 5 (20 EUR) does not.
		{&pb.Money{AmountMinor: 2000, Currency: "USD"}, []int64{1, 3, 4, 6}},
		// 1000 USD cents = 9.09 EUR: not even 1.
		{&pb.Money{AmountMinor: 1000, Currency: "USD"}, []int64{3, 4, 6}},
		// 5500 USD cents = 50 EUR exactly: 2 (median 50 EUR) fits.
		{&pb.Money{AmountMinor: 5500, Currency: "USD"}, []int64{1, 2, 3, 4, 5, 6}},
		// JPY has no minor unit: 2000 JPY = 12.50 EUR at 160.
		{&pb.Money{AmountMinor: 2000, Currency: "JPY"}, []int64{1, 3, 4, 6}},
		{&pb.Money{AmountMinor: 1000, Currency: "JPY"}, []int64{3, 4, 6}},
		// 17 GBP = 20 EUR at 0.85.
		{&pb.Money{AmountMinor: 1700, Currency: "GBP"}, []int64{1, 3, 4, 5, 6}},
		// Unknown currency: nothing can be judged; the request fails
		// elsewhere with a clear error.
		{&pb.Money{AmountMinor: 1, Currency: "XYZ"}, []int64{1, 2, 3, 4, 5, 6}},
	} {
		got := releaseIDs(affordable(all, tc.budget, tb))
		if !slices.Equal(got, tc.want) {
			t.Errorf("budget %v: kept %v, want %v", tc.budget, got, tc.want)
		}
	}
	if len(all) != 6 || all[1].ReleaseId != 2 {
		t.Fatal("affordable modified its input")
	}
}

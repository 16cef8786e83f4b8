package cartbuilder

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/cartopt"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/stream/streamtest"
	"github.com/cratestream/cratestream/internal/testutil"
	"github.com/cratestream/cratestream/internal/testutil/proctest"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

func quietLogger() *slog.Logger { return proctest.Logger() }

// Release groups of the fixture.
var (
	freshReleases   = []int64{101, 102, 103, 104, 105} // fresh, 3 listings each, median 11 EUR
	staleReleases   = []int64{201, 202, 203, 204}      // never scraped
	pricyReleases   = []int64{301, 302, 303}           // fresh, median 1000 EUR
	noShipReleases  = []int64{401, 402, 403}           // fresh, no listing ships
	nanRelease      = int64(501)                       // stale, recommended with a NaN score
	sentinelRelease = int64(601)                       // stale
)

func listing(release int64, i int, price int64, ship pb.ShippingState) *pb.Listing {
	seller, from := "s1", "NL"
	if i%2 == 1 {
		seller, from = "s2", "DE"
	}
	l := &pb.Listing{ListingId: release*10 + int64(i), ReleaseId: release, Seller: seller, Price: eur(price),
		ShippingState: ship, Media: pb.MediaGrade_MEDIA_GRADE_NEAR_MINT, Sleeve: pb.SleeveGrade_SLEEVE_GRADE_VERY_GOOD_PLUS,
		ShipsFrom: from, Available: true}
	if ship == pb.ShippingState_SHIPPING_STATE_PRICED {
		l.Shipping = eur(400)
	}
	return l
}

// fixture is the reference data and the candidates every cart test starts
// from, whether in memory or on Kafka.
type fixture struct {
	sellers    []*pb.Seller
	listings   []*pb.Listing
	stats      []*pb.ReleaseStats
	candidates []*pb.Candidates
	fresh      []int64 // releases scraped a moment ago
}

func newFixture() *fixture {
	f := &fixture{
		sellers: []*pb.Seller{{Username: "s1", RatingPercent: 99.5, HasRating: true, ShipsFrom: "NL"},
			{Username: "s2", RatingPercent: 97, HasRating: true, ShipsFrom: "DE"}},
		fresh: slices.Concat(freshReleases, pricyReleases, noShipReleases),
	}
	addListings := func(releases []int64, price int64, ship pb.ShippingState, median int64) {
		for _, r := range releases {
			for i := 0; i < 3; i++ {
				l := listing(r, i, price+int64(i)*300, ship)
				if i == 2 && ship == pb.ShippingState_SHIPPING_STATE_UNAVAILABLE {
					l.ShippingState = pb.ShippingState_SHIPPING_STATE_UNSPECIFIED
				}
				f.listings = append(f.listings, l)
			}
			if median > 0 {
				f.stats = append(f.stats, &pb.ReleaseStats{ReleaseId: r, ListingCount: 3, MedianPrice: eur(median)})
			}
		}
	}
	addListings(freshReleases, 800, pb.ShippingState_SHIPPING_STATE_PRICED, 1100)
	addListings(staleReleases, 800, pb.ShippingState_SHIPPING_STATE_PRICED, 0)
	addListings(pricyReleases, 100000, pb.ShippingState_SHIPPING_STATE_PRICED, 100300)
	addListings(noShipReleases, 800, pb.ShippingState_SHIPPING_STATE_UNAVAILABLE, 0)
	addListings([]int64{nanRelease, sentinelRelease}, 800, pb.ShippingState_SHIPPING_STATE_PRICED, 0)

	candidates := func(user string, recs []int64, score float64, want []int64) {
		c := &pb.Candidates{UserId: user}
		for i, id := range recs {
			c.Candidates = append(c.Candidates, &pb.Candidate{ReleaseId: id, Score: score - float64(i)/10,
				Source: pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION})
		}
		for _, id := range want {
			c.Candidates = append(c.Candidates, &pb.Candidate{ReleaseId: id, Score: 0, Source: pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST})
		}
		f.candidates = append(f.candidates, c)
	}
	candidates("fresh-user", freshReleases, 0.9, nil)
	candidates("stale-user", nil, 0, staleReleases)
	candidates("pricy-user", pricyReleases, 0.9, nil)
	candidates("noship-user", nil, 0, noShipReleases)
	candidates("nan-user", []int64{nanRelease}, math.NaN(), nil)
	candidates("sentinel-user", nil, 0, []int64{sentinelRelease})
	return f
}

// markFresh records the fixture's fresh releases as scraped at.
func (f *fixture) markFresh(t testing.TB, rds *redis.Store, at time.Time) {
	t.Helper()
	for _, r := range f.fresh {
		if err := rds.MarkScraped(context.Background(), r, at); err != nil {
			t.Fatal(err)
		}
	}
}

func criteria(budget *pb.Money, ratio float64) *pb.CartCriteria {
	return &pb.CartCriteria{Budget: budget, MinQty: 1, WantlistRatio: ratio, TopN: 5}
}

func newRequest(id, user string, c *pb.CartCriteria, at time.Time) *pb.CartRequest {
	return &pb.CartRequest{EventId: "req:" + id, EventTimeMs: at.UnixMilli(), RequestId: id, UserId: user, Criteria: c}
}

// deadline is how long the in-memory tests' requests wait for scrapes.
const deadline = time.Minute

// cartEnv is the cart builder in memory: the fixture's tables, candidates
// and freshness, a real Redis under a key prefix of its own, and as many
// tasks as the user topics have partitions (every task sees a scrape-done;
// only the request's own acts on it).
type cartEnv struct {
	t      *testing.T
	tt     *streamtest.Tester
	rds    *redis.Store
	tables *Tables
}

func newCartEnv(t *testing.T, redisAddr string) *cartEnv {
	t.Helper()
	f := newFixture()
	tb := newTables()
	injectFX(t, tb)
	for _, s := range f.sellers {
		inject(t, tb.Sellers, topics.Sellers(), s.Username, s)
	}
	for _, l := range f.listings {
		inject(t, tb.Listings, topics.Listings(), l.ListingId, l)
	}
	for _, st := range f.stats {
		inject(t, tb.Stats, topics.ReleaseStats(), st.ReleaseId, st)
	}
	rds, err := redis.Open(context.Background(), redis.Options{Addr: redisAddr, Prefix: "cs:" + t.Name() + ":"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rds.Close() })
	p, err := New(Options{Tables: tb, Redis: rds, Deadline: deadline, Logger: quietLogger(), MaxNodes: 10_000_000})
	if err != nil {
		t.Fatal(err)
	}
	e := &cartEnv{t: t, tt: streamtest.New(t, p, streamtest.Partitions(topics.UserPartitions)), rds: rds, tables: tb}
	for _, c := range f.candidates {
		streamtest.Send(e.tt, topics.UserCandidates(), c.UserId, c)
	}
	f.markFresh(t, rds, e.tt.Now())
	return e
}

func (e *cartEnv) request(id, user string, c *pb.CartCriteria) *pb.CartRequest {
	e.t.Helper()
	req := newRequest(id, user, c, e.tt.Now())
	streamtest.Send(e.tt, topics.CartRequests(), user, req)
	return proto.Clone(req).(*pb.CartRequest)
}

// scrapeDone broadcasts the scrape-done of release; errText marks it
// failed, offsets are the listings.v1 end offsets it reports.
func (e *cartEnv) scrapeDone(release int64, errText string, offsets ...*pb.PartitionOffset) {
	e.t.Helper()
	streamtest.Broadcast(e.tt, topics.ScrapeDone(), release, &pb.ScrapeDone{EventId: "done:" + stringID(release), ReleaseId: release,
		ListingsFound: 3, ScrapedAtMs: e.tt.Now().UnixMilli(), Error: errText, ListingEndOffsets: offsets})
}

// results returns every CartResult so far by request id, each checked to
// be keyed by its user.
func (e *cartEnv) results() map[string][]*pb.CartResult {
	e.t.Helper()
	out := map[string][]*pb.CartResult{}
	for _, o := range streamtest.All(e.tt, topics.Carts()) {
		if o.Key != o.Value.UserId {
			e.t.Errorf("result of %s keyed %q, user %q", o.Value.RequestId, o.Key, o.Value.UserId)
		}
		out[o.Value.RequestId] = append(out[o.Value.RequestId], o.Value)
	}
	return out
}

// result returns the one CartResult of request id; none, or more than
// one, fails the test.
func (e *cartEnv) result(id string) *pb.CartResult {
	e.t.Helper()
	rs := e.results()[id]
	if len(rs) != 1 {
		e.t.Fatalf("%d CartResults for %s, want exactly one: %v", len(rs), id, rs)
	}
	return rs[0]
}

// statuses returns request id's statuses on request-status.v1, one line
// each ("stage done/total", then "finished" and "error" when they are),
// and checks that Redis holds the last one: what the frontend polls.
func (e *cartEnv) statuses(id string) []string {
	e.t.Helper()
	var out []string
	var last *pb.RequestStatus
	for _, o := range streamtest.All(e.tt, topics.RequestStatus()) {
		st := o.Value
		if o.Key != id {
			continue
		}
		line := fmt.Sprintf("%s %d/%d", st.Stage, st.Done, st.Total)
		if st.Finished {
			line += " finished"
		}
		if st.Error != "" {
			line += " error"
		}
		if st.Kind != pb.RequestKind_REQUEST_KIND_CART || st.RequestId != id {
			e.t.Errorf("status of %s: %v", id, st)
		}
		out = append(out, line)
		last = st
	}
	stored, ok, err := e.rds.Status(context.Background(), id)
	if err != nil || ok != (last != nil) || last != nil && !proto.Equal(stored, last) {
		e.t.Errorf("status of %s in Redis: %v, %v, %v; last published %v", id, stored, ok, err, last)
	}
	return out
}

// messages are the messages of request id's statuses, in order.
func (e *cartEnv) messages(id string) []string {
	var out []string
	for _, o := range streamtest.All(e.tt, topics.RequestStatus()) {
		if o.Key == id {
			out = append(out, o.Value.Message)
		}
	}
	return out
}

// scrapeRequests returns the releases asked for per request id, sorted,
// each request checked to be keyed by its release and asked for
// staleness.
func (e *cartEnv) scrapeRequests() map[string][]int64 {
	e.t.Helper()
	out := map[string][]int64{}
	for _, o := range streamtest.All(e.tt, topics.ScrapeRequests()) {
		sr := o.Value
		if o.Key != sr.ReleaseId || sr.Reason != "stale" {
			e.t.Errorf("scrape request %v keyed %d", sr, o.Key)
		}
		out[sr.RequestId] = append(out[sr.RequestId], sr.ReleaseId)
	}
	for id, rs := range out {
		out[id] = sortedCopy(rs)
	}
	return out
}

// settled checks that request id, answered, stays answered once: it is
// completed (a replay of it changes nothing) and left no pending state (a
// late scrape-done of one of releases builds nothing), across a restart.
// The stores cannot be read directly: they are keyed by request id in the
// user's task, and streamtest.Get looks in the key's.
func (e *cartEnv) settled(id string, req *pb.CartRequest, releases []int64) {
	e.t.Helper()
	statuses := e.statuses(id)
	e.tt.Restart()
	streamtest.Send(e.tt, topics.CartRequests(), req.UserId, req)
	for _, r := range releases {
		e.scrapeDone(r, "")
	}
	e.tt.Advance(2 * deadline)
	e.result(id)
	if got := e.statuses(id); !slices.Equal(got, statuses) {
		e.t.Errorf("%s: a replay and late scrape-dones added statuses: %v, then %v", id, statuses, got)
	}
}

func checkCarts(t *testing.T, res *pb.CartResult, budget int64, allowed []int64) {
	t.Helper()
	if res.Error != "" || len(res.Carts) == 0 {
		t.Fatalf("%s: error %q, %d carts", res.RequestId, res.Error, len(res.Carts))
	}
	for _, c := range res.Carts {
		sum := int64(0)
		for _, it := range c.Items {
			if !slices.Contains(allowed, it.ReleaseId) {
				t.Errorf("%s: cart %d holds release %d", res.RequestId, c.Rank, it.ReleaseId)
			}
			sum += it.Price.AmountMinor
		}
		if c.Total.AmountMinor > budget || c.Total.AmountMinor != c.Subtotal.AmountMinor+c.Shipping.AmountMinor || sum != c.Subtotal.AmountMinor {
			t.Errorf("%s: cart %d: items %d, subtotal %v, shipping %v, total %v (budget %d)", res.RequestId, c.Rank, sum, c.Subtotal, c.Shipping, c.Total, budget)
		}
	}
}

func stringID(v int64) string { return strconv.FormatInt(v, 10) }

// Each kind of request, from its request to its deadline: the scrapes it
// asks for, its statuses, its one result, and no state left behind.
func TestRequests(t *testing.T) {
	addr := testutil.Redis(t)
	xyz := criteria(&pb.Money{AmountMinor: 5000, Currency: "XYZ"}, 0.5)
	badGrade := criteria(eur(5000), 0)
	badGrade.MinMedia = 42
	tests := []struct {
		name     string
		user     string
		criteria *pb.CartCriteria
		scrapes  []int64
		before   []string // statuses before the deadline
		after    []string // statuses the deadline adds
		err      string   // in the result's error; "" wants carts
		message  string   // in the last status's message
		check    func(t *testing.T, res *pb.CartResult)
	}{
		{name: "all fresh: carts at once, without scraping", user: "fresh-user", criteria: criteria(eur(5000), 0),
			before: []string{"done 0/0 finished"}, message: "carts from 15 listings",
			check: func(t *testing.T, res *pb.CartResult) {
				checkCarts(t, res, 5000, freshReleases)
				if len(res.StaleReleases) != 0 || res.Candidates != 5 || res.ListingsConsidered != 15 {
					t.Fatalf("stale %v, candidates %d, listings %d", res.StaleReleases, res.Candidates, res.ListingsConsidered)
				}
				for _, c := range res.Carts {
					for _, it := range c.Items {
						if it.Source != "recommendation" || it.Url == "" || it.CartUrl == "" || it.Seller == "" || it.SellerRating == 0 {
							t.Fatalf("item %v", it)
						}
					}
				}
			}},
		// 55.00 USD at 1.1 per EUR: the carts are priced in USD.
		{name: "a budget in another currency", user: "fresh-user", criteria: criteria(&pb.Money{AmountMinor: 5500, Currency: "USD"}, 0),
			before: []string{"done 0/0 finished"},
			check: func(t *testing.T, res *pb.CartResult) {
				checkCarts(t, res, 5500, freshReleases)
				if cur := res.Carts[0].Total.Currency; cur != "USD" {
					t.Errorf("total in %s, want USD", cur)
				}
			}},
		{name: "all stale: scrape requests, then at the deadline what is fresh", user: "stale-user", criteria: criteria(eur(50000), 1),
			scrapes: staleReleases, before: []string{"scraping 0/4"}, after: []string{"done 4/4 finished error"},
			err: "no cart fits", message: "(4 releases still stale at the deadline)",
			check: func(t *testing.T, res *pb.CartResult) {
				if !slices.Equal(res.StaleReleases, staleReleases) || len(res.Carts) != 0 || res.ListingsConsidered != 0 {
					t.Fatalf("result at the deadline: %v", res)
				}
			}},
		{name: "nothing affordable", user: "pricy-user", criteria: criteria(eur(10000), 0),
			before: []string{"failed 0/0 finished error"}, err: "no candidate releases", message: "no carts: no candidate releases"},
		{name: "zero budget", user: "fresh-user", criteria: criteria(eur(0), 0),
			before: []string{"failed 0/0 finished error"}, err: "no candidate releases"},
		// An unknown budget currency fails at once: no scraping for a
		// request that cannot be solved.
		{name: "unknown budget currency, fresh candidates", user: "fresh-user", criteria: xyz,
			before: []string{"failed 0/0 finished error"}, err: `criteria.budget: currency "XYZ" has no exchange rate`},
		{name: "unknown budget currency, stale candidates", user: "stale-user", criteria: xyz,
			before: []string{"failed 0/0 finished error"}, err: `criteria.budget: currency "XYZ" has no exchange rate`},
		{name: "a budget in a currency whose rate is malformed", user: "fresh-user", criteria: criteria(&pb.Money{AmountMinor: 5000, Currency: "SEK"}, 0),
			before: []string{"failed 0/0 finished error"}, err: `criteria.budget: currency "SEK" has no exchange rate`},
		{name: "unknown grade", user: "fresh-user", criteria: badGrade,
			before: []string{"failed 0/0 finished error"}, err: "criteria.min_media"},
		{name: "every listing shipping-unavailable", user: "noship-user", criteria: criteria(eur(50000), 1),
			before: []string{"done 0/0 finished error"}, err: "no cart fits",
			check: func(t *testing.T, res *pb.CartResult) {
				if len(res.StaleReleases) != 0 {
					t.Errorf("stale %v", res.StaleReleases)
				}
			}},
		{name: "a build that fails at the deadline", user: "nan-user", criteria: criteria(eur(50000), 0),
			scrapes: []int64{nanRelease}, before: []string{"scraping 0/1"}, after: []string{"failed 0/0 finished error"},
			err: "score of 501", message: "no carts: score of 501"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newCartEnv(t, addr)
			req := e.request("r", tc.user, tc.criteria)
			if got := e.statuses("r"); !slices.Equal(got, tc.before) {
				t.Fatalf("statuses %v, want %v", got, tc.before)
			}
			if tc.after != nil {
				if n := len(e.results()["r"]); n != 0 {
					t.Fatalf("%d results before the deadline", n)
				}
				e.tt.Advance(deadline - time.Millisecond)
				if n := len(e.results()["r"]); n != 0 {
					t.Fatalf("%d results a millisecond before the deadline", n)
				}
			}
			e.tt.Advance(deadline)
			if got, want := e.statuses("r"), slices.Concat(tc.before, tc.after); !slices.Equal(got, want) {
				t.Fatalf("statuses after the deadline %v, want %v", got, want)
			}
			res := e.result("r")
			if tc.err == "" && res.Error != "" || !strings.Contains(res.Error, tc.err) {
				t.Errorf("result error %q, want %q", res.Error, tc.err)
			}
			if tc.err != "" && len(res.Carts) != 0 {
				t.Errorf("%d carts with error %q", len(res.Carts), res.Error)
			}
			msgs := e.messages("r")
			if last := msgs[len(msgs)-1]; !strings.Contains(last, tc.message) {
				t.Errorf("last status message %q, want %q in it", last, tc.message)
			}
			if want := fmt.Sprintf("scraping 0/%d releases", len(tc.scrapes)); tc.scrapes != nil && msgs[0] != want {
				t.Errorf("first status message %q, want %q", msgs[0], want)
			}
			want := map[string][]int64{}
			if tc.scrapes != nil {
				want["r"] = tc.scrapes
			}
			if got := e.scrapeRequests(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("scrape requests %v, want %v", got, want)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
			e.settled("r", req, tc.scrapes)
		})
	}
}

// The joins with scrape-done: progress per scraped release, a failed
// scrape leaving its release stale, carts as soon as all are in (and no
// second result at the deadline), and a build that waits for the listing
// table to reach the offsets the scrapes report.
func TestScrapeDone(t *testing.T) {
	addr := testutil.Redis(t)
	stale := criteria(eur(50000), 1)

	t.Run("progress, a failed scrape, the rest at the deadline", func(t *testing.T) {
		e := newCartEnv(t, addr)
		req := e.request("r", "stale-user", stale)
		steps := []struct {
			name string
			do   func()
			adds []string // statuses the step adds
		}{
			{"201 scraped", func() { e.scrapeDone(201, "") }, []string{"scraping 1/4"}},
			{"202 failed", func() { e.scrapeDone(202, "HTTP 429") }, nil},
			{"a release nobody waits for", func() { e.scrapeDone(999, "") }, nil},
			{"201 again", func() { e.scrapeDone(201, "") }, nil},
			{"203 and 204 scraped", func() { e.scrapeDone(203, ""); e.scrapeDone(204, "") }, []string{"scraping 2/4", "scraping 3/4"}},
			{"the deadline", func() { e.tt.Advance(deadline) }, []string{"done 4/4 finished"}},
		}
		want := []string{"scraping 0/4"}
		for _, s := range steps {
			s.do()
			want = append(want, s.adds...)
			if got := e.statuses("r"); !slices.Equal(got, want) {
				t.Fatalf("after %s: statuses %v, want %v", s.name, got, want)
			}
		}
		res := e.result("r")
		checkCarts(t, res, 50000, []int64{201, 203, 204})
		if !slices.Equal(res.StaleReleases, []int64{202}) || res.ListingsConsidered != 9 {
			t.Errorf("stale %v, %d listings, want [202] and 9", res.StaleReleases, res.ListingsConsidered)
		}
		if msgs := e.messages("r"); !strings.HasSuffix(msgs[len(msgs)-1], "(1 releases still stale at the deadline)") {
			t.Errorf("messages %q", msgs)
		}
		e.settled("r", req, staleReleases)
	})

	t.Run("all scraped before the deadline", func(t *testing.T) {
		e := newCartEnv(t, addr)
		req := e.request("r", "stale-user", stale)
		for _, r := range staleReleases {
			e.scrapeDone(r, "")
		}
		want := []string{"scraping 0/4", "scraping 1/4", "scraping 2/4", "scraping 3/4", "done 4/4 finished"}
		if got := e.statuses("r"); !slices.Equal(got, want) {
			t.Fatalf("statuses %v, want %v", got, want)
		}
		res := e.result("r")
		checkCarts(t, res, 50000, staleReleases)
		if len(res.StaleReleases) != 0 || res.ListingsConsidered != 12 {
			t.Errorf("stale %v, %d listings", res.StaleReleases, res.ListingsConsidered)
		}
		e.tt.Advance(deadline) // its deadline was canceled
		e.result("r")
		if got := e.statuses("r"); !slices.Equal(got, want) {
			t.Errorf("statuses after the deadline %v", got)
		}
		e.settled("r", req, staleReleases)
	})

	t.Run("the listing table catches up with the scrape", func(t *testing.T) {
		e := newCartEnv(t, addr)
		req := e.request("r", "sentinel-user", stale)
		// The scraper found a fourth listing and reports where listings.v1
		// ends after it; the table has not read it yet.
		l := listing(sentinelRelease, 3, 700, pb.ShippingState_SHIPPING_STATE_PRICED)
		key, _ := topics.Listings().Key.Append(nil, l.ListingId)
		p := stream.PartitionFor(key, int32(topics.Listings().Partitions))
		end := e.tables.Listings.Positions()[p] + 1
		e.scrapeDone(sentinelRelease, "", &pb.PartitionOffset{Partition: p, Offset: end})
		e.tt.Advance(100 * time.Millisecond) // the check polls every 20ms
		want := []string{"scraping 0/1", "scraping 1/1"}
		if got := e.statuses("r"); !slices.Equal(got, want) || len(e.results()["r"]) != 0 {
			t.Fatalf("before the table reached the scrape: statuses %v, results %v", got, e.results()["r"])
		}
		inject(t, e.tables.Listings, topics.Listings(), l.ListingId, l)
		e.tt.Advance(20 * time.Millisecond)
		if got := e.statuses("r"); !slices.Equal(got, append(want, "done 1/1 finished")) {
			t.Fatalf("statuses %v", got)
		}
		res := e.result("r")
		checkCarts(t, res, 50000, []int64{sentinelRelease})
		if len(res.StaleReleases) != 0 || res.ListingsConsidered != 4 {
			t.Errorf("stale %v, %d listings, want the scraped fourth too", res.StaleReleases, res.ListingsConsidered)
		}
		e.settled("r", req, []int64{sentinelRelease})
	})
}

// A request id gets exactly one CartResult, whether it is replayed, the
// instance restarts while it waits or after it is answered, or a
// scrape-done arrives after it was built or failed.
func TestExactlyOneResultPerRequest(t *testing.T) {
	e := newCartEnv(t, testutil.Redis(t))
	reqs := map[string]*pb.CartRequest{
		"fresh": e.request("fresh", "fresh-user", criteria(eur(5000), 0)),
		"stale": e.request("stale", "stale-user", criteria(eur(50000), 1)),
		"nan":   e.request("nan", "nan-user", criteria(eur(50000), 0)),
	}
	replay := func(ids ...string) {
		for _, id := range ids {
			streamtest.Send(e.tt, topics.CartRequests(), reqs[id].UserId, reqs[id])
		}
	}
	replay("fresh", "stale") // a producer's retry; stale is waiting
	e.tt.Restart()
	replay("stale")
	e.scrapeDone(201, "")
	e.tt.Restart()
	e.tt.Advance(deadline) // the deadlines survived the restarts
	// Late: every scrape-done, after "stale" was built and "nan" failed.
	for _, r := range append(slices.Clone(staleReleases), nanRelease) {
		e.scrapeDone(r, "")
	}
	e.tt.Restart()
	e.tt.Advance(2 * deadline)
	replay("fresh", "stale", "nan")

	for id, want := range map[string][]string{
		"fresh": {"done 0/0 finished"},
		"stale": {"scraping 0/4", "scraping 1/4", "done 4/4 finished"},
		"nan":   {"scraping 0/1", "failed 0/0 finished error"},
	} {
		e.result(id)
		if got := e.statuses(id); !slices.Equal(got, want) {
			t.Errorf("statuses of %s: %v, want %v", id, got, want)
		}
	}
	if res := e.result("stale"); !slices.Equal(res.StaleReleases, []int64{202, 203, 204}) {
		t.Errorf("stale's result: stale %v, want [202 203 204]", res.StaleReleases)
	}
	// Each stale release was asked for once.
	want := map[string][]int64{"stale": staleReleases, "nan": {nanRelease}}
	if got := e.scrapeRequests(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("scrape requests %v, want %v", got, want)
	}
}

// Freshness is judged on the handler's clock: a release scraped 24h ago
// is stale.
func TestFreshnessFollowsTheClock(t *testing.T) {
	e := newCartEnv(t, testutil.Redis(t))
	e.tt.Advance(24*time.Hour - time.Millisecond)
	e.request("still-fresh", "fresh-user", criteria(eur(5000), 0))
	e.tt.Advance(time.Millisecond)
	e.request("stale-now", "fresh-user", criteria(eur(5000), 0))
	if got := e.statuses("still-fresh"); !slices.Equal(got, []string{"done 0/0 finished"}) {
		t.Errorf("a release scraped 24h-1ms ago: %v", got)
	}
	if got := e.scrapeRequests(); fmt.Sprint(got) != fmt.Sprint(map[string][]int64{"stale-now": freshReleases}) {
		t.Errorf("scrape requests %v, want the five releases scraped 24h ago", got)
	}
}

// The candidates the builder mirrors follow user-candidates.v1: a newer
// record replaces them, a tombstone removes them.
func TestCandidatesFollowTheirTopic(t *testing.T) {
	e := newCartEnv(t, testutil.Redis(t))
	cands := topics.UserCandidates()
	streamtest.Send(e.tt, cands, "fresh-user", &pb.Candidates{UserId: "fresh-user", Candidates: []*pb.Candidate{
		{ReleaseId: 102, Score: 1, Source: pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION}}})
	e.request("replaced", "fresh-user", criteria(eur(5000), 0))
	if res := e.result("replaced"); res.Candidates != 1 || res.ListingsConsidered != 3 {
		t.Errorf("with the newer candidates: %d candidates, %d listings, want 1 and 3", res.Candidates, res.ListingsConsidered)
	}
	streamtest.SendTombstone(e.tt, cands, "fresh-user")
	e.request("removed", "fresh-user", criteria(eur(5000), 0))
	if res := e.result("removed"); !strings.Contains(res.Error, "no candidate releases") {
		t.Errorf("without candidates: %v", res)
	}
}

// Requests that are bad input go to the dead-letter topic, without a
// result or a status.
func TestBadRequestsAreDeadLettered(t *testing.T) {
	addr := testutil.Redis(t)
	requests := topics.CartRequests()
	tests := []struct {
		name   string
		send   func(tt *streamtest.Tester)
		class  string
		reason string
	}{
		{"tombstone", func(tt *streamtest.Tester) { streamtest.SendTombstone(tt, requests, "fresh-user") },
			"invalid", "tombstone on cart-requests"},
		{"under another user's key", func(tt *streamtest.Tester) {
			streamtest.Send(tt, requests, "fresh-user", newRequest("r", "stale-user", criteria(eur(5000), 0), tt.Now()))
		}, "invalid", `of user "stale-user" arrived under key "fresh-user"`},
		{"without a request id", func(tt *streamtest.Tester) {
			streamtest.Send(tt, requests, "fresh-user", newRequest("", "fresh-user", criteria(eur(5000), 0), tt.Now()))
		}, "invalid", "without request_id"},
		{"undecodable", func(tt *streamtest.Tester) {
			if err := tt.SendRaw(requests.Name, []byte("fresh-user"), []byte{0xff, 0xff}); err != nil {
				t.Fatal(err)
			}
		}, "decode", "decode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newCartEnv(t, addr)
			tc.send(e.tt)
			dls := e.tt.DeadLetters()
			if len(dls) != 1 || dls[0].ReasonClass != tc.class || !strings.Contains(dls[0].Reason, tc.reason) || dls[0].Topic != requests.Name {
				t.Fatalf("dead letters %v, want one of class %s for %q", dls, tc.class, tc.reason)
			}
			if n := e.tt.Count(topics.Carts().Name) + e.tt.Count(topics.RequestStatus().Name); n != 0 {
				t.Errorf("%d results and statuses for a bad request", n)
			}
		})
	}
}

// On Kafka: the inputs co-partitioned by user, the global tables read
// from their topics, a scrape-done broadcast carrying real listings.v1
// offsets the table must reach, and the carts committed once per request.
func TestProcessorOnKafka(t *testing.T) {
	c := proctest.Start(t)
	rds, err := redis.Open(context.Background(), redis.Options{Addr: testutil.Redis(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rds.Close() })
	f := newFixture()
	var recs []*kgo.Record
	for _, r := range fxRows() {
		recs = append(recs, proctest.Record(t, topics.FxRates(), r.Currency, r))
	}
	for _, s := range f.sellers {
		recs = append(recs, proctest.Record(t, topics.Sellers(), s.Username, s))
	}
	for _, l := range f.listings {
		recs = append(recs, proctest.Record(t, topics.Listings(), l.ListingId, l))
	}
	for _, st := range f.stats {
		recs = append(recs, proctest.Record(t, topics.ReleaseStats(), st.ReleaseId, st))
	}
	for _, cs := range f.candidates {
		recs = append(recs, proctest.Record(t, topics.UserCandidates(), cs.UserId, cs))
	}
	c.Produce(recs...)
	f.markFresh(t, rds, time.Now())

	gc := stream.GlobalConfig{Brokers: c.Addrs(), ClientOpts: proctest.ClientOpts(), Logger: quietLogger(), ReadCommitted: true}
	tb := NewTables(stream.NewGlobalTable(topics.Listings(), gc), stream.NewGlobalTable(topics.Sellers(), gc),
		stream.NewGlobalTable(topics.ReleaseStats(), gc), stream.NewGlobalTable(topics.FxRates(), gc))
	p, err := New(Options{Tables: tb, Redis: rds, Logger: quietLogger(), MaxNodes: 10_000_000})
	if err != nil {
		t.Fatal(err)
	}
	r := c.Run(p, stream.Config{CommitInterval: CommitInterval})
	// Requests and candidates are separate inputs: the candidates must be
	// in the store before the requests come.
	proctest.WaitFor(t, "the candidates handled and committed", func() bool { return r.Stats().Processed == int64(len(f.candidates)) && r.Idle() })
	finished := func(id string) bool {
		st, _, _ := rds.Status(context.Background(), id)
		return st.GetFinished() && r.Idle()
	}

	c.Produce(proctest.Record(t, topics.CartRequests(), "fresh-user", newRequest("fresh", "fresh-user", criteria(eur(5000), 0), time.Now())),
		proctest.Record(t, topics.CartRequests(), "sentinel-user", newRequest("sentinel", "sentinel-user", criteria(eur(50000), 1), time.Now())))
	proctest.WaitFor(t, "the fresh request answered and the sentinel scraping", func() bool {
		st, _, _ := rds.Status(context.Background(), "sentinel")
		return finished("fresh") && st.GetStage() == "scraping"
	})
	// The scraper writes a fourth listing of 601, then its scrape-done with
	// where listings.v1 ends after it.
	l := listing(sentinelRelease, 3, 700, pb.ShippingState_SHIPPING_STATE_PRICED)
	res, err := c.Client.ProduceSync(context.Background(), proctest.Record(t, topics.Listings(), l.ListingId, l)).First()
	if err != nil {
		t.Fatal(err)
	}
	c.Produce(proctest.Record(t, topics.ScrapeDone(), sentinelRelease, &pb.ScrapeDone{EventId: "done:601", ReleaseId: sentinelRelease,
		ScrapedAtMs: time.Now().UnixMilli(), ListingEndOffsets: []*pb.PartitionOffset{{Partition: res.Partition, Offset: res.Offset + 1}}}))
	proctest.WaitFor(t, "the sentinel answered", func() bool { return finished("sentinel") })

	results := map[string][]*pb.CartResult{}
	for _, m := range proctest.Read(c, topics.Carts()) {
		if m.Key != m.Value.UserId {
			t.Errorf("result of %s keyed %q", m.Value.RequestId, m.Key)
		}
		results[m.Value.RequestId] = append(results[m.Value.RequestId], m.Value)
	}
	if len(results) != 2 || len(results["fresh"]) != 1 || len(results["sentinel"]) != 1 {
		t.Fatalf("results %v, want one for fresh and one for sentinel", results)
	}
	checkCarts(t, results["fresh"][0], 5000, freshReleases)
	if s := results["sentinel"][0]; len(s.StaleReleases) != 0 || s.ListingsConsidered != 4 {
		t.Errorf("sentinel: stale %v, %d listings, want the scraped fourth too", s.StaleReleases, s.ListingsConsidered)
	}
	var asked []string
	for _, m := range proctest.Read(c, topics.ScrapeRequests()) {
		asked = append(asked, fmt.Sprintf("%s:%d", m.Value.RequestId, m.Value.ReleaseId))
	}
	if !slices.Equal(asked, []string{"sentinel:601"}) {
		t.Errorf("scrape requests %v, want sentinel:601 only", asked)
	}
}

// BenchmarkCartRequest is the in-process work of one request with fresh
// listings on a 200 releases x 20 listings market (the 200 x 20
// problem): selection, the affordability filter, the problem from the
// global tables, the exact solve (top 20 carts) and the result. The
// request id changes every iteration, so the wantlist subset does too.
func BenchmarkCartRequest(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 11))
	tb := newTables()
	injectFX(b, tb)
	countries := []string{"NL", "DE", "FR", "GB", "US", "SE", "JP"}
	currencies := []string{"EUR", "EUR", "EUR", "GBP", "USD", "EUR", "JPY"}
	const sellers, releases, perRelease = 150, 200, 20
	for s := 0; s < sellers; s++ {
		name := "seller-" + strconv.Itoa(s)
		inject(b, tb.Sellers, topics.Sellers(), name, &pb.Seller{Username: name, SellerId: int64(s + 1),
			RatingPercent: 90 + rng.Float64()*10, HasRating: true, ShipsFrom: countries[s%len(countries)]})
	}
	var cands []*pb.CartCandidate
	c := &pb.Candidates{UserId: "u"}
	lid := int64(1_000_000)
	for i := 0; i < releases; i++ {
		rel := int64(10_000 + i)
		var prices []int64
		for j := 0; j < perRelease; j++ {
			s := rng.IntN(sellers)
			cur := currencies[s%len(currencies)]
			cents := int64(300 + rng.IntN(4000))
			price := &pb.Money{AmountMinor: cents, Currency: cur}
			if cur == "JPY" {
				price.AmountMinor = cents * 160 / 100
			}
			prices = append(prices, cents)
			inject(b, tb.Listings, topics.Listings(), lid, &pb.Listing{ListingId: lid, ReleaseId: rel, Seller: "seller-" + strconv.Itoa(s),
				SellerId: int64(s + 1), Price: price, ShippingState: pb.ShippingState_SHIPPING_STATE_PRICED,
				Shipping: &pb.Money{AmountMinor: price.AmountMinor / 4, Currency: cur}, Media: pb.MediaGrade(1 + rng.IntN(5)),
				Sleeve: pb.SleeveGrade(1 + rng.IntN(5)), ShipsFrom: countries[s%len(countries)], Available: true})
			lid++
		}
		slices.Sort(prices)
		inject(b, tb.Stats, topics.ReleaseStats(), rel, &pb.ReleaseStats{ReleaseId: rel, MedianPrice: eur(prices[len(prices)/2])})
		src := pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION
		if i >= releases*7/10 {
			src = pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST
		}
		c.Candidates = append(c.Candidates, &pb.Candidate{ReleaseId: rel, Score: 1 - float64(i)/releases, Source: src})
	}
	req := &pb.CartRequest{UserId: "u", Criteria: &pb.CartCriteria{Budget: eur(15000), MinQty: 1, WantlistRatio: 0.3, TopN: 20}}
	all := func(int64) bool { return true }
	i := 0
	for b.Loop() {
		i++
		req.RequestId = "req-" + strconv.Itoa(i)
		cands = affordable(Select(c, req.Criteria.WantlistRatio, req.RequestId), req.Criteria.Budget, tb)
		prob, listings, err := tb.problem(req, cands, all)
		if err != nil {
			b.Fatal(err)
		}
		res, err := cartopt.Solve(prob, cartopt.Options{MaxNodes: 50_000_000})
		if err != nil {
			b.Fatal(err)
		}
		conv, err := cartopt.NewConverter(prob.Rates, prob.Criteria.Currency)
		if err != nil {
			b.Fatal(err)
		}
		if carts := result(res, cands, listings, tb.Sellers, conv); len(carts) == 0 {
			b.Fatal("no carts")
		}
	}
}

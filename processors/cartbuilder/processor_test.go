package cartbuilder

import (
	"context"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/cartopt"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/testutil"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

func quietLogger() *slog.Logger {
	if os.Getenv("CRATESTREAM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Release groups of the fixture.
var (
	freshReleases   = []int64{101, 102, 103, 104, 105} // fresh, 3 listings each, median 11 EUR
	staleReleases   = []int64{201, 202, 203, 204}      // never scraped
	pricyReleases   = []int64{301, 302, 303}           // fresh, median 1000 EUR
	noShipReleases  = []int64{401, 402, 403}           // fresh, no listing ships
	nanRelease      = int64(501)                       // stale, recommended with a NaN score
	sentinelRelease = int64(601)                       // stale
)

// procEnv is the real processor on an embedded cluster and a real Redis.
type procEnv struct {
	t       *testing.T
	ctx     context.Context
	brokers []string
	cl      *kgo.Client
	rds     *redis.Store
	tables  *Tables
	results *kgo.Client
	scrapes *kgo.Client
	seen    map[string][]*pb.CartResult
	scraped map[string][]int64 // request id -> releases asked for
}

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

func newProcEnv(t *testing.T, deadline time.Duration) *procEnv {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	brokers, cl := newCluster(t)
	rds, err := redis.Open(ctx, redis.Options{Addr: testutil.Redis(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rds.Close() })
	e := &procEnv{t: t, ctx: ctx, brokers: brokers, cl: cl, rds: rds, seen: map[string][]*pb.CartResult{}, scraped: map[string][]int64{}}

	recs := fxRecords(t)
	for _, s := range []*pb.Seller{{Username: "s1", RatingPercent: 99.5, HasRating: true, ShipsFrom: "NL"},
		{Username: "s2", RatingPercent: 97, HasRating: true, ShipsFrom: "DE"}} {
		recs = append(recs, record(t, topics.Sellers(), s.Username, s))
	}
	addListings := func(releases []int64, price int64, ship pb.ShippingState, median int64) {
		for _, r := range releases {
			for i := 0; i < 3; i++ {
				l := listing(r, i, price+int64(i)*300, ship)
				if i == 2 && ship == pb.ShippingState_SHIPPING_STATE_UNAVAILABLE {
					l.ShippingState = pb.ShippingState_SHIPPING_STATE_UNSPECIFIED
				}
				recs = append(recs, record(t, topics.Listings(), l.ListingId, l))
			}
			if median > 0 {
				recs = append(recs, record(t, topics.ReleaseStats(), r, &pb.ReleaseStats{ReleaseId: r, ListingCount: 3, MedianPrice: eur(median)}))
			}
		}
	}
	addListings(freshReleases, 800, pb.ShippingState_SHIPPING_STATE_PRICED, 1100)
	addListings(staleReleases, 800, pb.ShippingState_SHIPPING_STATE_PRICED, 0)
	addListings(pricyReleases, 100000, pb.ShippingState_SHIPPING_STATE_PRICED, 100300)
	addListings(noShipReleases, 800, pb.ShippingState_SHIPPING_STATE_UNAVAILABLE, 0)
	addListings([]int64{nanRelease, sentinelRelease}, 800, pb.ShippingState_SHIPPING_STATE_PRICED, 0)

	candidates := func(user string, recsIDs []int64, score float64, want []int64) {
		c := &pb.Candidates{UserId: user}
		for i, id := range recsIDs {
			c.Candidates = append(c.Candidates, &pb.Candidate{ReleaseId: id, Score: score - float64(i)/10,
				Source: pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION})
		}
		for _, id := range want {
			c.Candidates = append(c.Candidates, &pb.Candidate{ReleaseId: id, Score: 0, Source: pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST})
		}
		recs = append(recs, record(t, topics.UserCandidates(), user, c))
	}
	candidates("fresh-user", freshReleases, 0.9, nil)
	candidates("stale-user", nil, 0, staleReleases)
	candidates("pricy-user", pricyReleases, 0.9, nil)
	candidates("noship-user", nil, 0, noShipReleases)
	candidates("nan-user", []int64{nanRelease}, math.NaN(), nil)
	candidates("sentinel-user", nil, 0, []int64{sentinelRelease})
	produceAll(t, cl, recs...)

	// Fresh releases: the scraper's freshness key, through its API.
	now := time.Now()
	for _, r := range slices.Concat(freshReleases, pricyReleases, noShipReleases) {
		if err := rds.MarkScraped(ctx, r, now); err != nil {
			t.Fatal(err)
		}
	}

	e.tables = testTables(t, brokers, false)
	p, err := New(Options{Tables: e.tables, Redis: rds, Deadline: deadline, Logger: quietLogger(), MaxNodes: 10_000_000})
	if err != nil {
		t.Fatal(err)
	}
	r, err := stream.NewRunner(p, stream.Config{Brokers: brokers, InstanceID: "cartbuilder-test", StateDir: t.TempDir(),
		CommitInterval: 20 * time.Millisecond, Logger: quietLogger(), Metrics: prometheus.NewRegistry(),
		ClientOpts: []kgo.Opt{kgo.MetadataMinAge(100 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	t.Cleanup(func() {
		rcancel()
		if err := <-done; err != nil {
			t.Errorf("runner: %v", err)
		}
	})
	for !r.Ready() {
		select {
		case err := <-done:
			t.Fatalf("runner stopped: %v", err)
		case <-ctx.Done():
			t.Fatal("runner never ready")
		case <-time.After(5 * time.Millisecond):
		}
	}
	// Requests and candidates are separate inputs: wait until the
	// candidates are in the store before asking.
	e.waitConsumed(topics.UserCandidates().Name)

	consumer := func(topic string) *kgo.Client {
		c, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond), kgo.MetadataMinAge(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	e.results, e.scrapes = consumer(topics.Carts().Name), consumer(topics.ScrapeRequests().Name)
	return e
}

// waitConsumed waits until the processor's group has committed every
// record of topic.
func (e *procEnv) waitConsumed(topic string) {
	adm := kadm.NewClient(e.cl)
	ends, err := adm.ListEndOffsets(e.ctx, topic)
	if err != nil {
		e.t.Fatal(err)
	}
	for {
		committed, err := adm.FetchOffsets(e.ctx, Name)
		if err == nil {
			done := true
			ends.Each(func(o kadm.ListedOffset) {
				if c, ok := committed.Lookup(o.Topic, o.Partition); o.Offset > 0 && (!ok || c.At < o.Offset) {
					done = false
				}
			})
			if done {
				return
			}
		}
		if e.ctx.Err() != nil {
			e.t.Fatalf("%s never consumed", topic)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *procEnv) request(id, user string, c *pb.CartCriteria, times int) {
	e.t.Helper()
	req := &pb.CartRequest{EventId: "req:" + id, EventTimeMs: time.Now().UnixMilli(), RequestId: id, UserId: user, Criteria: c}
	var recs []*kgo.Record
	for range times {
		recs = append(recs, record(e.t, topics.CartRequests(), user, req))
	}
	produceAll(e.t, e.cl, recs...)
}

func criteria(budget *pb.Money, ratio float64) *pb.CartCriteria {
	return &pb.CartCriteria{Budget: budget, MinQty: 1, WantlistRatio: ratio, TopN: 5}
}

// result waits for the CartResult of request id.
func (e *procEnv) result(id string) *pb.CartResult {
	e.t.Helper()
	for len(e.seen[id]) == 0 {
		if e.ctx.Err() != nil {
			st, _, _ := e.rds.Status(context.Background(), id)
			e.t.Fatalf("no CartResult for %s (status %v)", id, st)
		}
		pctx, cancel := context.WithTimeout(e.ctx, 200*time.Millisecond)
		e.results.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			var res pb.CartResult
			if err := proto.Unmarshal(r.Value, &res); err != nil {
				e.t.Fatalf("carts.v1 record: %v", err)
			}
			if string(r.Key) != res.UserId {
				e.t.Errorf("result of %s keyed %q, user %q", res.RequestId, r.Key, res.UserId)
			}
			e.seen[res.RequestId] = append(e.seen[res.RequestId], &res)
		})
		cancel()
	}
	return e.seen[id][0]
}

// scrapeRequests waits until the scrape requests of request id name n
// releases.
func (e *procEnv) scrapeRequests(id string, n int) []int64 {
	e.t.Helper()
	for len(e.scraped[id]) < n {
		if e.ctx.Err() != nil {
			e.t.Fatalf("scrape requests of %s: %v, want %d", id, e.scraped[id], n)
		}
		pctx, cancel := context.WithTimeout(e.ctx, 200*time.Millisecond)
		e.scrapes.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			var sr pb.ScrapeRequest
			if err := proto.Unmarshal(r.Value, &sr); err != nil {
				e.t.Fatalf("scrape-requests.v1 record: %v", err)
			}
			if string(r.Key) != stringID(sr.ReleaseId) || sr.Reason != "stale" {
				e.t.Errorf("scrape request %v keyed %q", &sr, r.Key)
			}
			e.scraped[sr.RequestId] = append(e.scraped[sr.RequestId], sr.ReleaseId)
		})
		cancel()
	}
	return sortedCopy(e.scraped[id])
}

// allScrapeRequests reads every committed record of scrape-requests.v1
// up to its last stable offset: the scrape requests per request id.
func (e *procEnv) allScrapeRequests() map[string][]int64 {
	e.t.Helper()
	topic := topics.ScrapeRequests().Name
	lso, err := kadm.NewClient(e.cl).ListCommittedOffsets(e.ctx, topic)
	if err != nil {
		e.t.Fatal(err)
	}
	// Control records are kept so that the position is known even when a
	// partition ends with a transaction marker.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords(), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	next := map[int32]int64{}
	behind := func() bool {
		b := false
		lso.Each(func(o kadm.ListedOffset) {
			if next[o.Partition] < o.Offset {
				b = true
			}
		})
		return b
	}
	out := map[string][]int64{}
	for behind() {
		if e.ctx.Err() != nil {
			e.t.Fatalf("reading %s: at %v of %v", topic, next, lso)
		}
		pctx, cancel := context.WithTimeout(e.ctx, 200*time.Millisecond)
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if r.Attrs.IsControl() {
				return
			}
			var sr pb.ScrapeRequest
			if err := proto.Unmarshal(r.Value, &sr); err != nil {
				e.t.Fatalf("%s record: %v", topic, err)
			}
			out[sr.RequestId] = append(out[sr.RequestId], sr.ReleaseId)
		})
		cancel()
	}
	return out
}

func stringID(v int64) string {
	b, _ := stream.Int64Codec{}.Append(nil, v)
	return string(b)
}

// statuses subscribes to a request's status channel in Redis: every
// status the processor stores is published there, in order.
type statuses struct {
	e   *procEnv
	ch  <-chan *pb.RequestStatus
	all []*pb.RequestStatus
}

func (e *procEnv) subscribe(id string) *statuses {
	sub := e.rds.Client().Subscribe(e.ctx, "cs:statusch:"+id)
	e.t.Cleanup(func() { sub.Close() })
	if _, err := sub.Receive(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	ch := make(chan *pb.RequestStatus, 100)
	go func() {
		for m := range sub.Channel() {
			var st pb.RequestStatus
			if protojson.Unmarshal([]byte(m.Payload), &st) == nil {
				ch <- &st
			}
		}
	}()
	return &statuses{e: e, ch: ch}
}

// next waits for the next status.
func (s *statuses) next() *pb.RequestStatus {
	s.e.t.Helper()
	select {
	case st := <-s.ch:
		s.all = append(s.all, st)
		return st
	case <-s.e.ctx.Done():
		s.e.t.Fatalf("statuses so far: %v", s.all)
		return nil
	}
}

// final waits for the finished status.
func (s *statuses) final() *pb.RequestStatus {
	s.e.t.Helper()
	for {
		if st := s.next(); st.Finished {
			return st
		}
	}
}

// checkStored checks the status kept in Redis, what the frontend polls.
func (e *procEnv) checkStored(id, stage string, wantErr bool) *pb.RequestStatus {
	e.t.Helper()
	st, ok, err := e.rds.Status(e.ctx, id)
	if err != nil || !ok {
		e.t.Fatalf("status of %s: %v %v", id, ok, err)
	}
	if st.Stage != stage || !st.Finished || (st.Error != "") != wantErr || st.Kind != pb.RequestKind_REQUEST_KIND_CART {
		e.t.Fatalf("status of %s = %v, want stage %s, finished, error %v", id, st, stage, wantErr)
	}
	return st
}

func (e *procEnv) checkCarts(res *pb.CartResult, budget int64, allowed []int64) {
	e.t.Helper()
	if res.Error != "" || len(res.Carts) == 0 {
		e.t.Fatalf("%s: error %q, %d carts", res.RequestId, res.Error, len(res.Carts))
	}
	for _, c := range res.Carts {
		sum, ship := int64(0), int64(0)
		for _, it := range c.Items {
			if !slices.Contains(allowed, it.ReleaseId) {
				e.t.Errorf("%s: cart %d holds release %d", res.RequestId, c.Rank, it.ReleaseId)
			}
			sum += it.Price.AmountMinor
			ship += it.Shipping.GetAmountMinor()
		}
		if c.Total.AmountMinor > budget || c.Total.AmountMinor != c.Subtotal.AmountMinor+c.Shipping.AmountMinor || sum != c.Subtotal.AmountMinor {
			e.t.Errorf("%s: cart %d: items %d, subtotal %v, shipping %v, total %v (budget %d)", res.RequestId, c.Rank, sum, c.Subtotal, c.Shipping, c.Total, budget)
		}
	}
}

// TestProcessor runs the cart builder on an embedded cluster and a real
// Redis through the criteria's edge cases, end to end through the topics.
func TestProcessor(t *testing.T) {
	e := newProcEnv(t, 2*time.Second)

	// Requests that wait for the deadline go first, so their waits overlap.
	staleStatus := e.subscribe("stale-1")
	e.request("stale-1", "stale-user", criteria(eur(50000), 1), 1)
	e.request("nan-1", "nan-user", criteria(eur(50000), 0), 1)

	t.Run("all fresh: carts without scraping", func(t *testing.T) {
		e.t = t
		st := e.subscribe("fresh-1")
		e.request("fresh-1", "fresh-user", criteria(eur(5000), 0), 1)
		res := e.result("fresh-1")
		e.checkCarts(res, 5000, freshReleases)
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
		// The only status is the final one: no scraping stage.
		if f := st.next(); f.Stage != "done" || !f.Finished || f.Total != 0 {
			t.Fatalf("first status of a fresh request: %v", f)
		}
		e.checkStored("fresh-1", "done", false)
		// (No scrape request for it: checked on the whole topic at the end.)
	})

	t.Run("all stale: scrape requests, progress, result at the deadline", func(t *testing.T) {
		e.t = t
		if got := e.scrapeRequests("stale-1", len(staleReleases)); !slices.Equal(got, staleReleases) {
			t.Fatalf("scrape requests for %v, want %v", got, staleReleases)
		}
		first := staleStatus.next()
		if first.Stage != "scraping" || first.Done != 0 || first.Total != 4 || first.Message != "scraping 0/4 releases" || first.Finished {
			t.Fatalf("first status: %v", first)
		}
		res := e.result("stale-1")
		if !slices.Equal(res.StaleReleases, staleReleases) || len(res.Carts) != 0 || res.ListingsConsidered != 0 ||
			!strings.Contains(res.Error, "no cart fits") {
			t.Fatalf("result at the deadline: %v", res)
		}
		if f := staleStatus.final(); f.Stage != "done" || !strings.Contains(f.Message, "4 releases still stale") {
			t.Fatalf("final status: %v", f)
		}
		e.checkStored("stale-1", "done", true)
	})

	t.Run("nothing affordable", func(t *testing.T) {
		e.t = t
		e.request("pricy-1", "pricy-user", criteria(eur(10000), 0), 1)
		res := e.result("pricy-1")
		if len(res.Carts) != 0 || !strings.Contains(res.Error, "no candidate releases") {
			t.Fatalf("result: %v", res)
		}
		e.checkStored("pricy-1", "failed", true)
	})

	t.Run("zero budget", func(t *testing.T) {
		e.t = t
		e.request("zero-1", "fresh-user", criteria(eur(0), 0), 1)
		res := e.result("zero-1")
		if len(res.Carts) != 0 || res.Error == "" {
			t.Fatalf("result: %v", res)
		}
		e.checkStored("zero-1", "failed", true)
	})

	t.Run("unknown currency", func(t *testing.T) {
		e.t = t
		for _, tc := range []struct{ id, user string }{{"xyz-fresh", "fresh-user"}, {"xyz-stale", "stale-user"}} {
			st := e.subscribe(tc.id)
			e.request(tc.id, tc.user, criteria(&pb.Money{AmountMinor: 5000, Currency: "XYZ"}, 0.5), 1)
			res := e.result(tc.id)
			if len(res.Carts) != 0 || !strings.Contains(res.Error, `"XYZ"`) || !strings.Contains(res.Error, "criteria.budget") {
				t.Fatalf("%s: result: %v", tc.id, res)
			}
			// It fails at once: no scraping for a request that cannot
			// be solved.
			if f := st.next(); f.Stage != "failed" || !f.Finished {
				t.Fatalf("%s: first status %v", tc.id, f)
			}
			e.checkStored(tc.id, "failed", true)
		}
	})

	t.Run("unknown grade", func(t *testing.T) {
		e.t = t
		c := criteria(eur(5000), 0)
		c.MinMedia = 42
		e.request("grade-1", "fresh-user", c, 1)
		if res := e.result("grade-1"); !strings.Contains(res.Error, "criteria.min_media") {
			t.Fatalf("result: %v", res)
		}
		e.checkStored("grade-1", "failed", true)
	})

	t.Run("every listing shipping-unavailable", func(t *testing.T) {
		e.t = t
		e.request("noship-1", "noship-user", criteria(eur(50000), 1), 1)
		res := e.result("noship-1")
		if len(res.Carts) != 0 || !strings.Contains(res.Error, "no cart fits") || len(res.StaleReleases) != 0 {
			t.Fatalf("result: %v", res)
		}
		e.checkStored("noship-1", "done", true)
	})

	t.Run("replayed request id: one result", func(t *testing.T) {
		e.t = t
		e.request("replay-1", "fresh-user", criteria(eur(5000), 0), 2)
		e.checkCarts(e.result("replay-1"), 5000, freshReleases)
		e.request("replay-1", "fresh-user", criteria(eur(5000), 0), 1)
		// Results of one user share a partition and commit in order: once
		// a later request's result is visible, a duplicate would be too.
		e.request("replay-sentinel", "fresh-user", criteria(eur(5000), 0), 1)
		e.result("replay-sentinel")
		if n := len(e.seen["replay-1"]); n != 1 {
			t.Fatalf("replay-1 answered %d times", n)
		}
	})

	// A request whose build fails at the deadline (here: a NaN
	// recommendation score) must not be built again when a late
	// scrape-done of its release arrives.
	t.Run("late scrape-done after a failed build", func(t *testing.T) {
		e.t = t
		res := e.result("nan-1")
		if !strings.Contains(res.Error, "score of 501") {
			t.Fatalf("nan-1: %v", res)
		}
		e.checkStored("nan-1", "failed", true)
		// A sentinel request waits for release 601. The scrape-done of
		// 501, then of 601, in one partition: once the sentinel's carts
		// are visible, the late scrape-done of 501 has been handled.
		e.request("sentinel-1", "sentinel-user", criteria(eur(50000), 1), 1)
		e.scrapeRequests("sentinel-1", 1)
		pcl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer pcl.Close()
		var recs []*kgo.Record
		for _, r := range []int64{nanRelease, sentinelRelease} {
			rec := record(t, topics.ScrapeDone(), r, &pb.ScrapeDone{EventId: "done:" + stringID(r), ReleaseId: r,
				RequestIds: []string{"nan-1", "sentinel-1"}, ListingsFound: 3, ScrapedAtMs: time.Now().UnixMilli()})
			rec.Partition = 0
			recs = append(recs, rec)
		}
		produceAll(t, pcl, recs...)
		sres := e.result("sentinel-1")
		e.checkCarts(sres, 50000, []int64{sentinelRelease})
		if len(sres.StaleReleases) != 0 {
			t.Fatalf("sentinel still stale: %v", sres)
		}
		if n := len(e.seen["nan-1"]); n != 1 {
			t.Fatalf("nan-1 answered %d times: %v", n, e.seen["nan-1"])
		}
		e.checkStored("nan-1", "failed", true)
	})

	// Scrape requests were asked exactly for the stale releases, once.
	e.t = t
	all := e.allScrapeRequests()
	for id, want := range map[string][]int64{"stale-1": staleReleases, "nan-1": {nanRelease}, "sentinel-1": {sentinelRelease}} {
		if got := sortedCopy(all[id]); !slices.Equal(got, want) {
			t.Errorf("scrape requests of %s: %v, want %v", id, got, want)
		}
		delete(all, id)
	}
	if len(all) != 0 {
		t.Errorf("unexpected scrape requests (fresh or failed requests must ask none): %v", all)
	}
}

// BenchmarkCartRequest is the in-process work of one request with fresh
// listings on a 200 releases x 20 listings market (the 200 x 20
// problem): selection, the affordability filter, the problem from the
// global tables, the exact solve (top 20 carts) and the result. The
// request id changes every iteration, so the wantlist subset does too.
func BenchmarkCartRequest(b *testing.B) {
	brokers, cl := newCluster(b)
	rng := rand.New(rand.NewPCG(7, 11))
	recs := fxRecords(b)
	countries := []string{"NL", "DE", "FR", "GB", "US", "SE", "JP"}
	currencies := []string{"EUR", "EUR", "EUR", "GBP", "USD", "EUR", "JPY"}
	const sellers, releases, perRelease = 150, 200, 20
	for s := 0; s < sellers; s++ {
		name := "seller-" + strconv.Itoa(s)
		recs = append(recs, record(b, topics.Sellers(), name, &pb.Seller{Username: name, SellerId: int64(s + 1),
			RatingPercent: 90 + rng.Float64()*10, HasRating: true, ShipsFrom: countries[s%len(countries)]}))
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
			recs = append(recs, record(b, topics.Listings(), lid, &pb.Listing{ListingId: lid, ReleaseId: rel, Seller: "seller-" + strconv.Itoa(s),
				SellerId: int64(s + 1), Price: price, ShippingState: pb.ShippingState_SHIPPING_STATE_PRICED,
				Shipping: &pb.Money{AmountMinor: price.AmountMinor / 4, Currency: cur}, Media: pb.MediaGrade(1 + rng.IntN(5)),
				Sleeve: pb.SleeveGrade(1 + rng.IntN(5)), ShipsFrom: countries[s%len(countries)], Available: true}))
			lid++
		}
		slices.Sort(prices)
		recs = append(recs, record(b, topics.ReleaseStats(), rel, &pb.ReleaseStats{ReleaseId: rel, MedianPrice: eur(prices[len(prices)/2])}))
		src := pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION
		if i >= releases*7/10 {
			src = pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST
		}
		c.Candidates = append(c.Candidates, &pb.Candidate{ReleaseId: rel, Score: 1 - float64(i)/releases, Source: src})
	}
	produceAll(b, cl, recs...)
	tb := testTables(b, brokers, true)
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

package scraper_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/discogs/fakemarket"
	"github.com/cratestream/cratestream/connectors/discogs/scraper"
	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/testutil"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// faulty wraps a handler and misbehaves on chosen requests.
type faulty struct {
	next http.Handler
	mu   sync.Mutex
	// plan maps the n-th request (1-based) to a fault.
	plan map[int]string
	n    int
	seen atomic.Int64
}

func (f *faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.n++
	fault := f.plan[f.n]
	f.mu.Unlock()
	f.seen.Add(1)
	switch fault {
	case "429":
		w.Header().Set("Retry-After", "1")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	case "500":
		http.Error(w, "oops", http.StatusInternalServerError)
	case "slow":
		time.Sleep(600 * time.Millisecond) // beyond the request timeout
		f.next.ServeHTTP(w, r)
	case "truncated":
		rec := httptest.NewRecorder()
		f.next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:len(body)/2])
		// Cut the connection mid-body.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
	default:
		f.next.ServeHTTP(w, r)
	}
}

type env struct {
	k      []string
	cl     *kgo.Client
	rds    *redis.Store
	market *fakemarket.Market
	clock  *atomic.Int64
	srv    *faulty
	url    string
}

func setup(t *testing.T, plan map[int]string) *env {
	t.Helper()
	ctx := context.Background()
	k := testutil.Kafka(t)
	rds, err := redis.Open(ctx, redis.Options{Addr: testutil.Redis(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rds.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if _, err := stream.CreateTopics(ctx, kadm.NewClient(cl), topics.Catalogue(), 1); err != nil {
		t.Fatal(err)
	}
	clock := &atomic.Int64{}
	clock.Store(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC).UnixMilli())
	m, err := fakemarket.New(fakemarket.Config{NumReleases: 200, Seed: 7, Clock: func() time.Time { return time.UnixMilli(clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	f := &faulty{next: m, plan: plan}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return &env{k: k.Addrs(), cl: cl, rds: rds, market: m, clock: clock, srv: f, url: srv.URL}
}

func (e *env) scraper(t *testing.T, perPage int) *scraper.Scraper {
	t.Helper()
	s, err := scraper.New(scraper.Config{
		BaseURL: e.url, Redis: e.rds, Producer: e.cl, PerPage: perPage, PerHostRate: 1000, PerHostBurst: 100,
		RequestTimeout: 300 * time.Millisecond, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    func() time.Time { return time.UnixMilli(e.clock.Load()) },
		// Retry-After: 1 would sleep a second per 429; keep tests quick
		// while still going through the wait.
		Sleep: func(ctx context.Context, d time.Duration) error {
			time.Sleep(min(d, 20*time.Millisecond))
			return ctx.Err()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// busiest returns the release with the most listings now.
func (e *env) busiest() int64 {
	at := time.UnixMilli(e.clock.Load())
	best, n := int64(0), -1
	for _, r := range e.market.Releases() {
		if c := len(e.market.Listings(r, at)); c > n {
			best, n = r, c
		}
	}
	return best
}

func ids(ls []*pb.Listing) []int64 {
	out := make([]int64, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.ListingId)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// table is a global listing table indexed by release: what the cart
// builder reads.
func (e *env) table(t *testing.T) *stream.GlobalTable[int64, *pb.Listing] {
	g := stream.NewGlobalTable(topics.Listings(), stream.GlobalConfig{Brokers: e.k, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	g.AddIndex("release", func(_ int64, l *pb.Listing) []string { return []string{strconv.FormatInt(l.ReleaseId, 10)} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return g
}

func offsets(sd *pb.ScrapeDone) map[int32]int64 {
	out := map[int32]int64{}
	for _, po := range sd.ListingEndOffsets {
		out[po.Partition] = po.Offset
	}
	return out
}

// A scrape through every kind of failure produces exactly the release's
// listings; a later scrape tombstones the sold ones; the table that waits
// for scrape-done's offsets sees exactly the market.
func TestScrapeThroughFaults(t *testing.T) {
	e := setup(t, map[int]string{1: "429", 2: "500", 3: "slow", 4: "truncated", 6: "500"})
	s := e.scraper(t, 25) // several pages per release
	rel := e.busiest()
	want := e.market.Listings(rel, time.UnixMilli(e.clock.Load()))
	if len(want) < 30 {
		t.Fatalf("busiest release has only %d listings; the test wants pagination", len(want))
	}
	ctx := context.Background()
	g := e.table(t)
	done, err := s.Scrape(ctx, rel, []string{"req-1", "req-2"})
	if err != nil {
		t.Fatal(err)
	}
	if done.Error != "" || int(done.ListingsFound) != len(want) || len(done.RequestIds) != 2 || done.ScrapedAtMs != e.clock.Load() {
		t.Fatalf("scrape-done = %v (want %d listings)", done, len(want))
	}
	if e.srv.seen.Load() < 7 {
		t.Errorf("only %d requests: faults were not retried", e.srv.seen.Load())
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := g.WaitFor(wctx, offsets(done)); err != nil {
		t.Fatal(err)
	}
	check := func(want []*pb.Listing) {
		t.Helper()
		var got []*pb.Listing
		_ = g.Find("release", strconv.FormatInt(rel, 10), func(_ int64, l *pb.Listing) bool { got = append(got, l); return true })
		if a, b := ids(got), ids(want); len(a) != len(b) || !equal(a, b) {
			t.Fatalf("listing table has %d listings of %d, the market %d", len(a), rel, len(b))
		}
		byID := map[int64]*pb.Listing{}
		for _, l := range got {
			byID[l.ListingId] = l
		}
		for _, w := range want {
			g := byID[w.ListingId]
			if g.Seller != w.Seller || !proto.Equal(g.Price, w.Price) || g.Media != w.Media || g.Sleeve != w.Sleeve ||
				g.ShipsFrom != w.ShipsFrom || g.Available != w.Available || g.ShippingState != w.ShippingState {
				t.Fatalf("listing %d scraped as %v, market has %v", w.ListingId, g, w)
			}
		}
	}
	check(want)
	fresh, err := e.rds.LastScraped(ctx, []int64{rel})
	if err != nil || fresh[rel].UnixMilli() != e.clock.Load() {
		t.Fatalf("freshness = %v, %v", fresh, err)
	}

	// Two weeks later listings have sold and new ones appeared.
	e.clock.Add((14 * 24 * time.Hour).Milliseconds())
	later := e.market.Listings(rel, time.UnixMilli(e.clock.Load()))
	done2, err := s.Scrape(ctx, rel, []string{"req-3"})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.WaitFor(wctx, offsets(done2)); err != nil {
		t.Fatal(err)
	}
	check(later)
}

func equal(a, b []int64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// A page that keeps failing fails the scrape: scrape-done carries the
// error, no listing is touched and the release stays stale.
func TestScrapeGivesUp(t *testing.T) {
	plan := map[int]string{}
	for i := 1; i <= 20; i++ {
		plan[i] = "500"
	}
	e := setup(t, plan)
	s := e.scraper(t, 250)
	rel := e.busiest()
	done, err := s.Scrape(context.Background(), rel, []string{"r"})
	if err == nil || done == nil || !strings.Contains(done.Error, "500") || len(done.ListingEndOffsets) != 0 {
		t.Fatalf("scrape = %v, %v", done, err)
	}
	if fresh, _ := e.rds.LastScraped(context.Background(), []int64{rel}); len(fresh) != 0 {
		t.Fatal("a failed scrape made the release fresh")
	}
}

// The worker answers scrape requests: one scrape per release for all its
// requests, scrape-done for each release.
func TestWorker(t *testing.T) {
	e := setup(t, nil)
	s := e.scraper(t, 250)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, scraper.WorkerConfig{Brokers: e.k}) }()
	defer func() { cancel(); <-done }()
	rels := e.market.Releases()[:3]
	var recs []*kgo.Record
	for i, r := range append(rels, rels[0]) {
		b, _ := proto.Marshal(&pb.ScrapeRequest{RequestId: "q" + strconv.Itoa(i), ReleaseId: r, Reason: "stale"})
		recs = append(recs, &kgo.Record{Topic: "scrape-requests.v1", Key: []byte(strconv.FormatInt(r, 10)), Value: b})
	}
	if err := e.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(e.k...), kgo.ConsumeTopics("scrape-done.v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	requests := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(requests) < 4 && time.Now().Before(deadline) {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		rd.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			var sd pb.ScrapeDone
			if proto.Unmarshal(r.Value, &sd) == nil {
				for _, q := range sd.RequestIds {
					requests[q] = true
				}
			}
		})
		pcancel()
	}
	if len(requests) != 4 {
		t.Fatalf("scrape-done answered %v, want 4 requests", requests)
	}
}

// The parser's fixtures also go through the scraper's fetch path.
func TestScrapeRealPage(t *testing.T) {
	page, err := os.ReadFile(filepath.Join(testutil.SharedDir(t, "fixtures", "html", "discogs_alert_2026"), "sell_release_2247646_real.html"))
	if err != nil {
		t.Fatal(err)
	}
	e := setup(t, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/sell/release/2247646" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(page)
	}))
	defer srv.Close()
	e.url = srv.URL
	done, err := e.scraper(t, 250).Scrape(context.Background(), 2247646, nil)
	if err != nil || done.ListingsFound != 2 {
		t.Fatalf("scrape of the real page = %v, %v", done, err)
	}
}

// deadLetters reads dlq.v1 until it holds n records (or 30 s pass).
func (e *env) deadLetters(t *testing.T, n int) []*pb.DeadLetter {
	t.Helper()
	rd, err := kgo.NewClient(kgo.SeedBrokers(e.k...), kgo.ConsumeTopics(topics.DeadLetters().Name))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var out []*pb.DeadLetter
	deadline := time.Now().Add(30 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		rd.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			dl, err := topics.DeadLetters().Value.Decode(r.Value)
			if err != nil {
				t.Errorf("dead letter does not decode: %v", err)
				return
			}
			if string(r.Key) != string(dl.Key) {
				t.Errorf("dead letter keyed %q holds key %q", r.Key, dl.Key)
			}
			out = append(out, dl)
		})
		cancel()
	}
	return out
}

// brokenPage is a one-listing page of release in the older markup, with
// the media grade and the price cell given.
func brokenPage(release int64, media, price string) string {
	return `<table class="mpitems"><tbody><tr data-release-id="` + strconv.FormatInt(release, 10) + `">
		<td class="item_description"><p><a href="/sell/item/42">x</a></p>
		<p class="item_condition">Media: <span>` + media + `</span> Sleeve: <span>No Cover</span></p></td>
		<td class="seller_info"><ul><li><span><a href="/seller/someone"><strong>someone</strong></a></span>
		<span><strong>99.0%</strong>, <a href="/seller/someone/feedback">1 rating</a></span></li>
		<li><span>Ships From:</span>Japan</li></ul></td>
		<td class="item_price">` + price + `<span class="item_shipping">+¥500</span></td></tr></tbody></table>`
}

// Pages the parser cannot read (broken HTML, an unknown grade, a negative
// price) fail their scrape, touch no listing, and reach dlq.v1 keyed by
// release with the page and a reason naming what is wrong; so do scrape
// requests that do not decode or name no release.
func TestInvalidInputsAreDeadLettered(t *testing.T) {
	e := setup(t, nil)
	pages := map[int64]string{
		7001: `<html><body><h1>Discogs is down for maintenance</h1><table class="other"><tr><td>`,
		7002: brokenPage(7002, "Excellent", `<span class="price">¥1,500</span>`),
		7003: brokenPage(7003, "Mint (M)", `<span class="price" data-currency="JPY" data-pricevalue="-1500">¥-1,500</span>`),
	}
	want := map[int64]string{7001: "no table.mpitems", 7002: `condition: unknown media grade "Excellent"`, 7003: "price: -1500 JPY is not positive"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/sell/release/"), 10, 64)
		page, ok := pages[id]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, page)
	}))
	defer srv.Close()
	e.url = srv.URL
	s := e.scraper(t, 250)
	ctx := context.Background()
	for rel := range pages {
		done, err := s.Scrape(ctx, rel, []string{"req"})
		if err == nil || done == nil || !strings.Contains(done.Error, want[rel]) || done.ListingsFound != 0 {
			t.Errorf("scrape of %d = %v, %v; want a failure naming %q", rel, done, err, want[rel])
		}
	}

	ctxRun, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- s.Run(ctxRun, scraper.WorkerConfig{Brokers: e.k}) }()
	defer func() { cancel(); <-stopped }()
	noRelease, _ := proto.Marshal(&pb.ScrapeRequest{RequestId: "q0", ReleaseId: 0})
	produce := []*kgo.Record{
		{Topic: topics.ScrapeRequests().Name, Key: []byte("garbage"), Value: []byte{0xff, 0xff, 0xff}},
		{Topic: topics.ScrapeRequests().Name, Key: []byte("0"), Value: noRelease},
	}
	if err := e.cl.ProduceSync(ctx, produce...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	got := map[string]*pb.DeadLetter{}
	for _, dl := range e.deadLetters(t, 5) {
		got[string(dl.Key)] = dl
	}
	if len(got) != 5 {
		t.Fatalf("%d dead letters, want 5: %v", len(got), got)
	}
	for rel, page := range pages {
		dl := got[strconv.FormatInt(rel, 10)]
		if dl == nil {
			t.Errorf("no dead letter for the page of %d", rel)
			continue
		}
		if dl.Processor != "scraper" || dl.ReasonClass != "invalid" || string(dl.Value) != page ||
			!strings.Contains(dl.Reason, want[rel]) || !strings.Contains(dl.Reason, "/sell/release/"+strconv.FormatInt(rel, 10)) {
			t.Errorf("dead letter of %d: %v", rel, dl)
		}
	}
	for key, c := range map[string]struct {
		value         []byte
		class, reason string
	}{"garbage": {[]byte{0xff, 0xff, 0xff}, "decode", "undecodable scrape request: proto:"}, "0": {noRelease, "invalid", `scrape request "q0": release id 0 is not positive`}} {
		dl := got[key]
		if dl == nil || dl.Processor != "scraper" || dl.ReasonClass != c.class || dl.Topic != topics.ScrapeRequests().Name ||
			string(dl.Value) != string(c.value) || !strings.Contains(dl.Reason, c.reason) {
			t.Errorf("dead letter of request %q: %v", key, dl)
		}
	}
	// A failed scrape leaves the release stale.
	fresh, err := e.rds.LastScraped(ctx, []int64{7001, 7002, 7003})
	if err != nil || len(fresh) != 0 {
		t.Errorf("freshness %v, %v: failed scrapes made releases fresh", fresh, err)
	}
}

package clickhouse

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/testutil"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// cluster is an embedded Kafka with the catalogue's topics and a producer.
type cluster struct {
	brokers []string
	cl      *kgo.Client
	adm     *kadm.Client
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	k := testutil.Kafka(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	c := &cluster{brokers: k.Addrs(), cl: cl, adm: kadm.NewClient(cl)}
	if _, err := stream.CreateTopics(context.Background(), c.adm, topics.Catalogue(), 1); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cluster) produce(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	if err := c.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func enc[K, V any](t *testing.T, tp stream.Topic[K, V], key K, v V, tombstone bool) *kgo.Record {
	t.Helper()
	k, err := tp.Key.Append(nil, key)
	if err != nil {
		t.Fatal(err)
	}
	r := &kgo.Record{Topic: tp.Name, Key: k}
	if !tombstone {
		if r.Value, err = tp.Value.Append(nil, v); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func listingRec(t *testing.T, id, rel int64, seller string, price int64, cur string, media pb.MediaGrade, ships string) *kgo.Record {
	return enc(t, topics.Listings(), id, &pb.Listing{
		EventId: "e" + strconv.FormatInt(id, 10), EventTimeMs: 1700000000000, ListingId: id, ReleaseId: rel, Seller: seller,
		Price: &pb.Money{AmountMinor: price, Currency: cur}, Shipping: &pb.Money{AmountMinor: 500, Currency: cur},
		ShippingState: pb.ShippingState_SHIPPING_STATE_PRICED, Media: media, Sleeve: pb.SleeveGrade(media),
		ShipsFrom: ships, Available: true, SeenAtMs: 1700000000000 + id,
	}, false)
}

func listingTombstone(t *testing.T, id int64) *kgo.Record {
	return enc[int64, *pb.Listing](t, topics.Listings(), id, nil, true)
}

// waitCommitted waits until group has committed the end offset of every
// partition of tps.
func (c *cluster) waitCommitted(t *testing.T, group string, timeout time.Duration, tps ...string) {
	t.Helper()
	ctx := context.Background()
	eventually(t, timeout, group+" to commit everything", func() bool {
		ends, err := c.adm.ListEndOffsets(ctx, tps...)
		if err != nil {
			return false
		}
		committed, err := c.adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		done := true
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset == 0 {
				return
			}
			if cm, ok := committed.Lookup(o.Topic, o.Partition); !ok || cm.At < o.Offset {
				done = false
			}
		})
		return done
	})
}

func startSink(t *testing.T, cfg Config) (stop func() error) {
	t.Helper()
	if cfg.Logger == nil && testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s, err := NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(60 * time.Second):
				runErr = errors.New("sink did not stop")
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return stop
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func ids(ls []Listing) []int64 {
	out := []int64{}
	for _, l := range ls {
		out = append(out, l.ListingID)
	}
	return out
}

var sinkTopicNames = []string{"listings.v1", "sellers.v1", "releases.v1", "release-stats.v1", "user-profiles.v1", "rec-outcomes.v1"}

func TestSinkEndToEnd(t *testing.T) {
	conn := migrated(t)
	c := newCluster(t)
	ctx := context.Background()
	q := NewQueries(conn, QueryOptions{})

	// Enrichment first: the sink loads rates and ratings before consuming.
	c.produce(t,
		enc(t, topics.FxRates(), "USD", &pb.FxRate{Currency: "USD", UnitsPerEur: "1.25", Date: "2024-01-02"}, false),
		enc(t, topics.FxRates(), "GBP", &pb.FxRate{Currency: "GBP", UnitsPerEur: "0.8", Date: "2024-01-02"}, false),
		enc(t, topics.Sellers(), "alice", &pb.Seller{Username: "alice", SellerId: 1, RatingPercent: 99.5, HasRating: true, RatingsCount: 1200, ShipsFrom: "Germany"}, false),
		enc(t, topics.Sellers(), "bob", &pb.Seller{Username: "bob", SellerId: 2, RatingPercent: 98, HasRating: true, RatingsCount: 40, ShipsFrom: "UK"}, false),
		enc(t, topics.Sellers(), "newbie", &pb.Seller{Username: "newbie", SellerId: 3}, false),
		enc(t, topics.Releases(), 100, &pb.Release{ReleaseId: 100, Title: "Unknown Pleasures", Year: 1979, Genres: []string{"Rock"}, Styles: []string{"Post-Punk"},
			Artists: []*pb.ArtistCredit{{ArtistId: 7, Name: "Joy Division"}}, Labels: []*pb.LabelCredit{{LabelId: 9, Name: "Factory", Catno: "FACT 10"}},
			Formats: []*pb.Format{{Name: "Vinyl", Qty: 1, Descriptions: []string{"LP", "Album"}}}, MasterId: 5, Country: "UK"}, false),
		enc(t, topics.Releases(), 200, &pb.Release{ReleaseId: 200, Title: "Closer", Year: 1980}, false),
		enc(t, topics.ReleaseStats(), 100, &pb.ReleaseStats{ReleaseId: 100, ListingCount: 2, MinPrice: &pb.Money{AmountMinor: 800, Currency: "EUR"},
			MedianPrice: &pb.Money{AmountMinor: 1025, Currency: "EUR"}, LastScrapedMs: 1700000000000}, false),
		enc(t, topics.UserProfiles(), "u1", &pb.UserProfile{UserId: "u1", Version: 3, Items: []*pb.ProfileItem{
			{ReleaseId: 100, Wanted: true}, {ReleaseId: 200, Wanted: true}, {ReleaseId: 300, Wanted: false, Collected: true}}}, false),
	)
	vgp, nm := pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS, pb.MediaGrade_MEDIA_GRADE_NEAR_MINT
	bad := []*kgo.Record{
		{Topic: topics.Listings().Name, Key: []byte("abc"), Value: listingRec(t, 1, 100, "alice", 1000, "USD", nm, "Germany").Value},
		{Topic: topics.Listings().Name, Key: []byte("7"), Value: []byte{0xff, 0xff, 0xff}},
		listingRec(t, 8, 100, "alice", -5, "EUR", nm, "Germany"),
	}
	c.produce(t,
		listingRec(t, 1, 100, "alice", 1000, "USD", nm, "Germany"), // 800 EUR
		listingRec(t, 1, 100, "alice", 1000, "USD", nm, "Germany"), // a producer retry
		listingRec(t, 2, 100, "bob", 1000, "GBP", vgp, "UK"),       // 1250 EUR
		listingRec(t, 3, 200, "alice", 500, "EUR", nm, "Germany"),
		listingRec(t, 4, 200, "bob", 700, "EUR", nm, "UK"),
		listingTombstone(t, 4), // gone in the same batch
		listingRec(t, 5, 200, "newbie", 300, "EUR", vgp, "France"),
	)
	c.produce(t, bad...)
	outcome := func(id, version, level string, rec, adopted int32) *kgo.Record {
		return enc(t, topics.RecOutcomes(), version, &pb.RecOutcome{EventId: id, EventTimeMs: 1700000000000, UserId: "u1",
			ModelVersion: version, Level: level, Recommended: rec, Adopted: adopted}, false)
	}
	c.produce(t,
		outcome("r1", "v2", "als", 10, 0),
		outcome("r1", "v2", "als", 10, 0), // a replay
		outcome("a1", "v2", "als", 0, 3),
		outcome("r2", "v2", "popularity", 4, 0),
		outcome("r3", "v1", "als", 5, 0),
	)

	regA := prometheus.NewRegistry()
	stopA := startSink(t, Config{Brokers: c.brokers, Conn: conn, Group: "sink-a", FlushInterval: 100 * time.Millisecond, BatchRows: 1000, Metrics: regA})
	c.waitCommitted(t, "sink-a", 30*time.Second, sinkTopicNames...)

	got, err := q.Cheapest(ctx, CheapestQuery{Releases: []int64{100, 200}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{5, 3, 1, 2}; !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("cheapest: %v, want %v", ids(got), want)
	}
	byID := map[int64]Listing{}
	for _, l := range got {
		byID[l.ListingID] = l
	}
	if l := byID[1]; l.PriceEURMinor != 800 || l.SellerRating != 99.5 || l.PriceMinor != 1000 || l.Currency != "USD" || l.ShipsFrom != "Germany" || l.ShippingMinor != 500 {
		t.Fatalf("listing 1 converted or enriched wrongly: %+v", l)
	}
	if l := byID[2]; l.PriceEURMinor != 1250 || l.SellerRating != 98 {
		t.Fatalf("listing 2: %+v", l)
	}
	if l := byID[5]; l.SellerRating != 0 {
		t.Fatalf("an unrated seller has rating 0: %+v", l)
	}
	wl, err := q.SellersForWantlist(ctx, "u1", 10)
	if err != nil {
		t.Fatal(err)
	}
	wantWL := []WantlistSeller{{"alice", 2, 1300, []int64{100, 200}}, {"newbie", 1, 300, []int64{200}}, {"bob", 1, 1250, []int64{100}}}
	if !reflect.DeepEqual(wl, wantWL) {
		t.Fatalf("wantlist sellers %+v, want %+v", wl, wantWL)
	}

	quality, err := q.RecQuality(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	wantQ := []RecQuality{{"v2", "als", 10, 3, 0.3}, {"v2", "popularity", 4, 0, 0}, {"v1", "als", 5, 0, 0}}
	if !reflect.DeepEqual(quality, wantQ) {
		t.Fatalf("rec quality %+v, want %+v", quality, wantQ)
	}
	if later, err := q.RecQuality(ctx, time.UnixMilli(1700000000000).Add(time.Hour)); err != nil || len(later) != 0 {
		t.Fatalf("rec quality since a later time: %+v %v", later, err)
	}

	// The other tables.
	var title string
	var genres, styles, artists, labels, catnos, formats, descs []string
	var year uint16
	if err := conn.QueryRow(ctx, `SELECT title, genres, styles, artists, labels, catnos, formats, format_descriptions, year FROM releases WHERE release_id = 100`).
		Scan(&title, &genres, &styles, &artists, &labels, &catnos, &formats, &descs, &year); err != nil {
		t.Fatal(err)
	}
	if title != "Unknown Pleasures" || !reflect.DeepEqual(genres, []string{"Rock"}) || !reflect.DeepEqual(styles, []string{"Post-Punk"}) ||
		!reflect.DeepEqual(artists, []string{"Joy Division"}) || !reflect.DeepEqual(labels, []string{"Factory"}) || !reflect.DeepEqual(catnos, []string{"FACT 10"}) ||
		!reflect.DeepEqual(formats, []string{"Vinyl"}) || !reflect.DeepEqual(descs, []string{"LP", "Album"}) || year != 1979 {
		t.Fatalf("release 100: %q %v %v %v %v %v %v %v %d", title, genres, styles, artists, labels, catnos, formats, descs, year)
	}
	if n := scalar[uint64](t, conn, "SELECT count(DISTINCT username) FROM sellers"); n != 3 {
		t.Fatalf("%d sellers", n)
	}
	if r := scalar[float64](t, conn, "SELECT argMax(rating_percent, version) FROM sellers WHERE username = 'alice'"); r != 99.5 {
		t.Fatalf("alice rating %v", r)
	}
	if m := scalar[int64](t, conn, "SELECT argMax(median_price_minor, version) FROM release_stats WHERE release_id = 100"); m != 1025 {
		t.Fatalf("median %d", m)
	}

	// Dead letters: two undecodable, one invalid, all from listings.v1.
	dls := readDeadLetters(t, c, 3)
	var classes []string
	for _, dl := range dls {
		if dl.Processor != Processor || dl.Topic != topics.Listings().Name || dl.Reason == "" {
			t.Fatalf("dead letter %+v", dl)
		}
		classes = append(classes, dl.ReasonClass)
	}
	sort.Strings(classes)
	if !reflect.DeepEqual(classes, []string{"decode", "decode", "invalid"}) {
		t.Fatalf("dead letter classes %v", classes)
	}
	if string(dls[0].Key) == "" && dls[0].Value == nil {
		t.Fatal("dead letters keep the original bytes")
	}
	if v := metricValue(t, regA, "cratestream_clickhouse_dlq_records_total", nil); v != 3 {
		t.Fatalf("dlq metric %v", v)
	}
	// L1 twice, L2..L5, and L4's deleted row.
	if v := metricValue(t, regA, "cratestream_clickhouse_rows_inserted_total", map[string]string{"table": "listings"}); v != 7 {
		t.Fatalf("rows inserted into listings: %v", v)
	}

	// A later batch: listing 3 is withdrawn (its release is looked up in
	// the table) and listing 2 gets cheaper.
	c.produce(t, listingTombstone(t, 3), listingRec(t, 2, 100, "bob", 500, "GBP", vgp, "UK"))
	c.waitCommitted(t, "sink-a", 30*time.Second, sinkTopicNames...)
	want := []int64{5, 2, 1}
	if got, err := q.Cheapest(ctx, CheapestQuery{Releases: []int64{100, 200}}); err != nil || !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("after the tombstone: %v %v, want %v", ids(got), err, want)
	}
	overview, err := q.MarketOverview(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dist, err := q.PriceDistribution(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if overview.Listings != 3 || dist.Listings != 2 || dist.MinEUR != 625 || dist.MaxEUR != 800 {
		t.Fatalf("overview %+v, distribution %+v", overview, dist)
	}
	if err := stopA(); err != nil {
		t.Fatalf("clean shutdown returned %v", err)
	}

	// A replay from the start (a new group) writes every row again; no
	// query may count anything twice.
	rowsBefore := scalar[uint64](t, conn, "SELECT count() FROM listings")
	stopB := startSink(t, Config{Brokers: c.brokers, Conn: conn, Group: "sink-b", FlushInterval: 100 * time.Millisecond})
	c.waitCommitted(t, "sink-b", 30*time.Second, sinkTopicNames...)
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	if after := scalar[uint64](t, conn, "SELECT count() FROM listings"); after < 2*rowsBefore-1 && after != rowsBefore {
		t.Logf("listings rows before replay %d, after %d (merges may already have collapsed some)", rowsBefore, after)
	}
	if got, err := q.Cheapest(ctx, CheapestQuery{Releases: []int64{100, 200}}); err != nil || !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("after replay: %v %v, want %v", ids(got), err, want)
	}
	overview2, _ := q.MarketOverview(ctx)
	dist2, _ := q.PriceDistribution(ctx, 100)
	wl2, _ := q.SellersForWantlist(ctx, "u1", 10)
	if !reflect.DeepEqual(overview, overview2) || !reflect.DeepEqual(dist, dist2) {
		t.Fatalf("replay changed the dashboards: %+v %+v / %+v %+v", overview, overview2, dist, dist2)
	}
	wantWL = []WantlistSeller{{"alice", 1, 800, []int64{100}}, {"newbie", 1, 300, []int64{200}}, {"bob", 1, 625, []int64{100}}}
	sort.Slice(wantWL, func(i, j int) bool { return wantWL[i].MinTotalEURMinor < wantWL[j].MinTotalEURMinor })
	if !reflect.DeepEqual(wl2, wantWL) {
		t.Fatalf("wantlist sellers after replay %+v, want %+v", wl2, wantWL)
	}
}

func readDeadLetters(t *testing.T, c *cluster, n int) []*pb.DeadLetter {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ConsumeTopics(topics.DeadLetters().Name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out []*pb.DeadLetter
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d dead letters, want %d", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			dl, err := topics.DeadLetters().Value.Decode(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, dl)
		})
	}
	return out
}

// proxy forwards TCP connections to a backend that can be swapped, so a
// restarted ClickHouse (on a new port) is reachable at the sink's address.
type proxy struct {
	ln      net.Listener
	backend atomic.Value // string
	mu      sync.Mutex
	conns   map[net.Conn]bool
}

func newProxy(t *testing.T, backend string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, conns: map[net.Conn]bool{}}
	p.backend.Store(backend)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

// cut points the proxy at a dead port and drops every connection.
func (p *proxy) cut() {
	p.backend.Store("127.0.0.1:1")
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(c)
	}
}

func (p *proxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = true
	}
}

func (p *proxy) pipe(c net.Conn) {
	defer c.Close()
	b, err := net.DialTimeout("tcp", p.backend.Load().(string), time.Second)
	if err != nil {
		return
	}
	defer b.Close()
	p.track(c, b)
	done := make(chan struct{}, 2)
	go func() { io.Copy(b, c); done <- struct{}{} }() //nolint:errcheck
	go func() { io.Copy(c, b); done <- struct{}{} }() //nolint:errcheck
	<-done
}

// ClickHouse goes away mid-stream and comes back (a new server on the same
// data directory): the sink pauses, retries, and loses nothing.
func TestSinkSurvivesClickHouseOutage(t *testing.T) {
	requireClickHouse(t)
	ctx := context.Background()
	dir := t.TempDir()
	ch1, err := embedded.StartClickHouse(ctx, embedded.ClickHouseOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ch1.Close)
	px := newProxy(t, ch1.Addr)
	conn := connect(t, px.addr())
	if _, err := Migrate(ctx, conn); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	produceRange := func(from, to int64) {
		var recs []*kgo.Record
		for id := from; id <= to; id++ {
			recs = append(recs, listingRec(t, id, 1+id%50, "s"+strconv.FormatInt(id%7, 10), 100+id, "EUR", pb.MediaGrade_MEDIA_GRADE_NEAR_MINT, "Germany"))
		}
		c.produce(t, recs...)
	}
	reg := prometheus.NewRegistry()
	startSink(t, Config{Brokers: c.brokers, Conn: conn, Group: "outage", BatchRows: 500, FlushInterval: 100 * time.Millisecond,
		InsertTimeout: 3 * time.Second, RetryMin: 50 * time.Millisecond, RetryMax: 400 * time.Millisecond, Metrics: reg})
	live := func() uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count(DISTINCT listing_id) FROM listings").Scan(&n); err != nil {
			return 0
		}
		return n
	}

	produceRange(1, 1000)
	c.waitCommitted(t, "outage", 30*time.Second, topics.Listings().Name)
	if n := live(); n != 1000 {
		t.Fatalf("%d listings before the outage", n)
	}

	// The network goes first (a server with clients connected takes 10s
	// to stop), then the server.
	px.cut()
	ch1.Close()
	produceRange(1001, 3000)
	eventually(t, 30*time.Second, "the sink to pause and retry", func() bool {
		return metricValue(t, reg, "cratestream_clickhouse_sink_paused", nil) == 1 &&
			metricValue(t, reg, "cratestream_clickhouse_insert_retries_total", nil) >= 2
	})
	// Nothing is committed while ClickHouse is down.
	ends, _ := c.adm.ListEndOffsets(ctx, topics.Listings().Name)
	committed, _ := c.adm.FetchOffsets(ctx, "outage")
	var behind int64
	ends.Each(func(o kadm.ListedOffset) {
		cm, _ := committed.Lookup(o.Topic, o.Partition)
		behind += o.Offset - cm.At
	})
	if behind == 0 {
		t.Fatal("offsets were committed while inserts failed")
	}

	ch2, err := embedded.StartClickHouse(ctx, embedded.ClickHouseOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ch2.Close)
	px.backend.Store(ch2.Addr)
	c.waitCommitted(t, "outage", 60*time.Second, topics.Listings().Name)
	if n := live(); n != 3000 {
		t.Fatalf("%d listings after the outage, want 3000", n)
	}
	if metricValue(t, reg, "cratestream_clickhouse_sink_paused", nil) != 0 {
		t.Fatal("fetching still paused")
	}
	if metricValue(t, reg, "cratestream_clickhouse_insert_failures_total", nil) == 0 {
		t.Fatal("no failure counted")
	}
	px.cut() // lets ch2 stop at once
}

// A second member joins mid-stream and the first leaves: every partition
// changes hands twice, and every listing still arrives exactly once in the
// queries.
func TestSinkRebalance(t *testing.T) {
	conn := migrated(t)
	c := newCluster(t)
	produce := func(from, to int64) {
		var recs []*kgo.Record
		for id := from; id <= to; id++ {
			recs = append(recs, listingRec(t, id, 1+id%40, "s", 100+id, "EUR", pb.MediaGrade_MEDIA_GRADE_MINT, "Germany"))
		}
		c.produce(t, recs...)
	}
	cfg := Config{Brokers: c.brokers, Conn: conn, Group: "pair", BatchRows: 300, FlushInterval: 50 * time.Millisecond}
	produce(1, 2000)
	stopA := startSink(t, cfg)
	time.Sleep(300 * time.Millisecond) // mid-stream
	stopB := startSink(t, cfg)
	produce(2001, 4000)
	time.Sleep(300 * time.Millisecond)
	if err := stopA(); err != nil {
		t.Fatalf("first member: %v", err)
	}
	produce(4001, 5000)
	c.waitCommitted(t, "pair", 60*time.Second, topics.Listings().Name)
	if err := stopB(); err != nil {
		t.Fatalf("second member: %v", err)
	}
	if n := scalar[uint64](t, conn, "SELECT count(DISTINCT listing_id) FROM listings"); n != 5000 {
		t.Fatalf("%d listings, want 5000", n)
	}
	o, err := NewQueries(conn, QueryOptions{}).MarketOverview(context.Background())
	if err != nil || o.Listings != 5000 {
		t.Fatalf("overview %+v, %v", o, err)
	}
}

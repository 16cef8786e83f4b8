package clickhouse

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// benchServer is the ClickHouse a benchmark runs on: a private server in a
// temporary directory, or an existing one (ClickHouseAddr) in a database
// of its own that is dropped afterwards, so a benchmark never writes into
// real tables.
type benchServer struct {
	conn   Conn
	dir    string
	server *embedded.ClickHouse
	admin  Conn
	db     string
}

const benchServerConfig = `<?xml version="1.0"?>
<yandex>
    <uncompressed_cache_size>2147483648</uncompressed_cache_size>
</yandex>
`

func startBenchServer(ctx context.Context, addr string) (*benchServer, error) {
	bs := &benchServer{}
	if addr == "" {
		dir, err := os.MkdirTemp("", "cratestream-chbench-")
		if err != nil {
			return nil, err
		}
		bs.dir = dir
		// The private server gets the block cache production servers
		// have (current releases ship 8 GiB in their config), merged
		// from config.d into the config StartClickHouse writes.
		if err := os.MkdirAll(filepath.Join(dir, "config.d"), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "config.d", "cratestream-bench.xml"), []byte(benchServerConfig), 0o644); err != nil {
			return nil, err
		}
		srv, err := embedded.StartClickHouse(ctx, embedded.ClickHouseOptions{Dir: dir})
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		bs.server = srv
		addr = srv.Addr
	} else {
		admin, err := Open(ctx, ConnOptions{Addr: []string{addr}})
		if err != nil {
			return nil, err
		}
		bs.admin = admin
		bs.db = "cratestream_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
		if err := admin.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+bs.db); err != nil {
			admin.Close()
			return nil, fmt.Errorf("create bench database: %w", err)
		}
	}
	conn, err := Open(ctx, ConnOptions{Addr: []string{addr}, Database: bs.db})
	if err != nil {
		bs.close()
		return nil, err
	}
	bs.conn = conn
	if _, err := Migrate(ctx, conn); err != nil {
		bs.close()
		return nil, err
	}
	return bs, nil
}

func (bs *benchServer) close() {
	if bs.conn != nil {
		bs.conn.Close()
	}
	if bs.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_ = bs.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+bs.db)
		cancel()
		bs.admin.Close()
	}
	if bs.server != nil {
		bs.server.Close()
	}
	if bs.dir != "" {
		os.RemoveAll(bs.dir)
	}
}

// SinkBenchConfig sizes BenchSinkThroughput.
type SinkBenchConfig struct {
	// Listings preloaded into listings.v1; default 1,000,000.
	Listings int
	// Partitions of listings.v1; default 12 (the catalogue's).
	Partitions int
	// BatchRows of the sink; default 100,000.
	BatchRows int
	// ClickHouseAddr, when set, runs on that server in a temporary
	// database; default a private clickhouse-server.
	ClickHouseAddr string
	Seed           uint64
	// Progress receives human progress lines; nil discards.
	Progress io.Writer
	Logger   *slog.Logger
	// CPUProfile, when set, receives a CPU profile of the measured phase
	// (the drain, not the preloading).
	CPUProfile io.Writer
}

// SinkBenchResult is what BenchSinkThroughput measured.
type SinkBenchResult struct {
	Rows int
	// Elapsed runs from the first record the sink polled to the commit of
	// the last offset (group join and fx/seller loading excluded).
	Elapsed    time.Duration
	RowsPerSec float64
}

// BenchSinkThroughput preloads cfg.Listings listings into listings.v1 of
// an embedded 3-broker cluster, then runs the sink until every offset is
// committed, and checks ClickHouse holds every row.
func BenchSinkThroughput(ctx context.Context, cfg SinkBenchConfig) (SinkBenchResult, error) {
	if cfg.Listings <= 0 {
		cfg.Listings = 1_000_000
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = int(topics.Listings().Partitions)
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 100_000
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var res SinkBenchResult
	bs, err := startBenchServer(ctx, cfg.ClickHouseAddr)
	if err != nil {
		return res, err
	}
	defer bs.close()
	k, err := embedded.StartKafka(embedded.KafkaOptions{Brokers: 3, CleanerInterval: time.Hour})
	if err != nil {
		return res, err
	}
	defer k.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(500_000))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	specs := topics.Catalogue()
	for i := range specs {
		if specs[i].Name == topics.Listings().Name {
			specs[i].Partitions = int32(cfg.Partitions)
		}
	}
	if _, err := stream.CreateTopics(ctx, adm, specs, 1); err != nil {
		return res, err
	}

	fmt.Fprintf(cfg.Progress, "clickhouse sink: preloading %d listings into %d partitions\n", cfg.Listings, cfg.Partitions)
	g := newMarketGen(cfg.Seed, cfg.Listings)
	var recs []*kgo.Record
	for cur, rate := range g.rateText {
		b, _ := proto.Marshal(&pb.FxRate{Currency: cur, UnitsPerEur: rate})
		recs = append(recs, &kgo.Record{Topic: topics.FxRates().Name, Key: []byte(cur), Value: b})
	}
	for i := 0; i < g.sellers; i++ {
		b, _ := proto.Marshal(&pb.Seller{Username: g.sellerName(i), SellerId: int64(i + 1), RatingPercent: float64(g.ratings[i]), HasRating: true})
		recs = append(recs, &kgo.Record{Topic: topics.Sellers().Name, Key: []byte(g.sellerName(i)), Value: b})
	}
	if err := produceAll(ctx, cl, recs); err != nil {
		return res, err
	}
	const chunk = 200_000
	for start := 0; start < cfg.Listings; start += chunk {
		recs = recs[:0]
		for i := start; i < min(cfg.Listings, start+chunk); i++ {
			l := g.listing(i)
			b, _ := proto.Marshal(l)
			recs = append(recs, &kgo.Record{Topic: topics.Listings().Name, Key: strconv.AppendInt(nil, l.ListingId, 10), Value: b})
		}
		if err := produceAll(ctx, cl, recs); err != nil {
			return res, err
		}
	}
	recs = nil

	fmt.Fprintf(cfg.Progress, "clickhouse sink: draining with %d-row batches\n", cfg.BatchRows)
	s, err := NewSink(Config{Brokers: k.Addrs(), Conn: bs.conn, Group: "bench", BatchRows: cfg.BatchRows,
		Metrics: prometheus.NewRegistry(), Logger: cfg.Logger})
	if err != nil {
		return res, err
	}
	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return res, err
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	err = waitGroupCommitted(ctx, adm, "bench", done, topics.Listings().Name)
	end := time.Now()
	if cfg.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return res, err
	}
	cancel()
	if err := <-done; err != nil {
		return res, err
	}
	var n uint64
	if err := bs.conn.QueryRow(ctx, "SELECT count() FROM listings").Scan(&n); err != nil {
		return res, err
	}
	if n != uint64(cfg.Listings) {
		return res, fmt.Errorf("clickhouse holds %d listings, want %d", n, cfg.Listings)
	}
	res.Rows = cfg.Listings
	res.Elapsed = end.Sub(s.firstPoll())
	res.RowsPerSec = float64(res.Rows) / res.Elapsed.Seconds()
	return res, nil
}

func produceAll(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	var wg sync.WaitGroup
	var first atomic.Pointer[error]
	wg.Add(len(recs))
	for _, r := range recs {
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				first.CompareAndSwap(nil, &err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return nil
}

func waitGroupCommitted(ctx context.Context, adm *kadm.Client, group string, done <-chan error, tps ...string) error {
	ends, err := adm.ListEndOffsets(ctx, tps...)
	if err != nil {
		return err
	}
	for {
		committed, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			all := true
			ends.Each(func(o kadm.ListedOffset) {
				if c, ok := committed.Lookup(o.Topic, o.Partition); o.Offset > 0 && (!ok || c.At < o.Offset) {
					all = false
				}
			})
			if all {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-done:
			return fmt.Errorf("sink stopped early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// SearchBenchConfig sizes BenchSearch.
type SearchBenchConfig struct {
	// Listings inserted directly (PrepareBatch); default 10,000,000.
	Listings int
	// Queries measured (after 10 warm-up queries); default 200.
	Queries int
	// QueryReleases per query, drawn by popularity; default 500.
	QueryReleases int
	// The filters: default VG+ or better, at most 20.00 EUR, seller rated
	// 99.0% or more, cheapest 100.
	MinGrade         uint8
	MaxPriceEURMinor int64
	MinSellerRating  float64
	Limit            int
	// MaxThreads is sent as max_threads (QueryOptions.MaxThreads);
	// default the machine's CPUs, since the benchmark's server is local.
	// Negative keeps the server's default.
	MaxThreads int
	// MergeWait bounds the wait for background merges after loading;
	// default 2 minutes.
	MergeWait      time.Duration
	ClickHouseAddr string
	Seed           uint64
	Progress       io.Writer
}

// SearchBenchResult is what BenchSearch measured. The queries run twice on
// the same release sets: on the table as loaded (once background merges
// went quiet) and after OPTIMIZE TABLE ... FINAL, the merged steady state.
// Parts matter because each big part costs every searched release a
// granule read.
type SearchBenchResult struct {
	Listings, Queries int
	// P50, P99 and Max are on the merged table (one part).
	P50, P99, Max time.Duration
	// LoadedP50 and LoadedP99 are on the table as loaded, with
	// LoadedParts active parts.
	LoadedP50, LoadedP99 time.Duration
	LoadedParts          uint64
	// RowsPerQuery is the mean number of rows of the searched releases.
	RowsPerQuery float64
	// LoadRowsPerSec is the direct insert rate of the setup.
	LoadRowsPerSec float64
}

// BenchSearch loads cfg.Listings listings with power-law listings per
// release and measures Cheapest over QueryReleases releases drawn by
// popularity.
func BenchSearch(ctx context.Context, cfg SearchBenchConfig) (SearchBenchResult, error) {
	if cfg.Listings <= 0 {
		cfg.Listings = 10_000_000
	}
	if cfg.Queries <= 0 {
		cfg.Queries = 200
	}
	if cfg.QueryReleases <= 0 {
		cfg.QueryReleases = 500
	}
	if cfg.MinGrade == 0 {
		cfg.MinGrade = uint8(pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS)
	}
	if cfg.MaxPriceEURMinor == 0 {
		cfg.MaxPriceEURMinor = 2000
	}
	if cfg.MinSellerRating == 0 {
		cfg.MinSellerRating = 99
	}
	if cfg.Limit == 0 {
		cfg.Limit = 100
	}
	if cfg.MaxThreads == 0 {
		cfg.MaxThreads = runtime.NumCPU()
	}
	if cfg.MergeWait == 0 {
		cfg.MergeWait = 2 * time.Minute
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	res := SearchBenchResult{Listings: cfg.Listings, Queries: cfg.Queries}
	bs, err := startBenchServer(ctx, cfg.ClickHouseAddr)
	if err != nil {
		return res, err
	}
	defer bs.close()

	fmt.Fprintf(cfg.Progress, "clickhouse search: loading %d listings\n", cfg.Listings)
	g := newMarketGen(cfg.Seed, cfg.Listings)
	start := time.Now()
	const batch = 200_000
	rows := make([]ListingRow, 0, batch)
	for i := 0; i < cfg.Listings; i++ {
		rows = append(rows, g.row(i))
		if len(rows) == batch || i == cfg.Listings-1 {
			if err := InsertListings(ctx, bs.conn, rows); err != nil {
				return res, err
			}
			rows = rows[:0]
		}
	}
	res.LoadRowsPerSec = float64(cfg.Listings) / time.Since(start).Seconds()
	fmt.Fprintf(cfg.Progress, "clickhouse search: loaded at %.0f rows/s; waiting for merges\n", res.LoadRowsPerSec)
	res.LoadedParts = waitMerges(ctx, bs.conn, cfg.MergeWait)
	q := NewQueries(bs.conn, QueryOptions{Timeout: 30 * time.Second, MaxThreads: cfg.MaxThreads})
	fmt.Fprintf(cfg.Progress, "clickhouse search: %d queries on %d parts\n", cfg.Queries, res.LoadedParts)
	loaded, _, err := searchRounds(ctx, q, g, cfg)
	if err != nil {
		return res, err
	}
	res.LoadedP50, res.LoadedP99 = percentile(loaded, 0.5), percentile(loaded, 0.99)
	fmt.Fprintf(cfg.Progress, "clickhouse search: p50 %v p99 %v; OPTIMIZE TABLE listings FINAL\n", res.LoadedP50, res.LoadedP99)
	octx, cancel := withLimit(ctx, 30*time.Minute)
	err = bs.conn.Exec(octx, "OPTIMIZE TABLE listings FINAL")
	cancel()
	if err != nil {
		return res, fmt.Errorf("optimize: %w", err)
	}
	waitMerges(ctx, bs.conn, cfg.MergeWait)
	merged, scanned, err := searchRounds(ctx, q, g, cfg)
	if err != nil {
		return res, err
	}
	res.P50, res.P99, res.Max = percentile(merged, 0.5), percentile(merged, 0.99), merged[len(merged)-1]
	res.RowsPerQuery = scanned
	return res, nil
}

// searchRounds runs 10 warm-up queries and cfg.Queries measured ones, the
// release sets drawn from cfg.Seed, and returns the sorted latencies and
// the mean rows of the searched releases.
func searchRounds(ctx context.Context, q *Queries, g *marketGen, cfg SearchBenchConfig) ([]time.Duration, float64, error) {
	rng := rand.New(rand.NewPCG(cfg.Seed, 99))
	var lat []time.Duration
	var scanned float64
	for i := 0; i < cfg.Queries+10; i++ {
		rels := g.popularReleases(rng, cfg.QueryReleases)
		cq := CheapestQuery{Releases: rels, MinGrade: cfg.MinGrade, MinSellerRating: cfg.MinSellerRating,
			MaxPriceEURMinor: cfg.MaxPriceEURMinor, Limit: cfg.Limit}
		t0 := time.Now()
		if _, err := q.Cheapest(ctx, cq); err != nil {
			return nil, 0, err
		}
		if i >= 10 {
			lat = append(lat, time.Since(t0))
			for _, r := range rels {
				scanned += float64(g.count[r-1])
			}
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, scanned / float64(len(lat)), nil
}

// percentile of sorted latencies (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(float64(len(sorted))*p)) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// waitMerges waits until no merge of the listings table has run for five
// seconds (or limit passes) and returns the number of active parts.
func waitMerges(ctx context.Context, conn Conn, limit time.Duration) uint64 {
	deadline := time.Now().Add(limit)
	quiet := time.Now()
	var parts, merges uint64
	for {
		_ = conn.QueryRow(ctx, "SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'listings' AND active").Scan(&parts)
		_ = conn.QueryRow(ctx, "SELECT count() FROM system.merges WHERE database = currentDatabase() AND table = 'listings'").Scan(&merges)
		if merges > 0 {
			quiet = time.Now()
		}
		if time.Since(quiet) >= 5*time.Second || time.Now().After(deadline) || ctx.Err() != nil {
			return parts
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// marketGen generates a deterministic marketplace: releases whose listing
// counts follow a power law (Pareto, alpha 1.3, capped at 10,000: most
// releases have one or two listings, popular ones thousands), 50,000
// sellers with skewed ratings, prices log-normal around 15 EUR.
type marketGen struct {
	seed     uint64
	release  []int32 // release of listing i (1-based ids), shuffled
	count    []int32 // listings of release r+1
	sellers  int
	ratings  []float32
	rates    map[string]fxRate
	rateText map[string]string // units per EUR
	releases int
	// countries and currencies are drawn with repeats for skew.
	countries, currencies []string
}

func newMarketGen(seed uint64, listings int) *marketGen {
	rng := rand.New(rand.NewPCG(seed, 1))
	g := &marketGen{seed: seed, sellers: 50_000, rates: map[string]fxRate{},
		rateText: map[string]string{"USD": "1.0843", "GBP": "0.8571", "JPY": "161.44"},
		countries: []string{"Germany", "US", "UK", "France", "Netherlands", "Japan", "Italy", "Spain", "Belgium", "Canada",
			"Sweden", "Poland", "Australia", "Austria", "Switzerland", "Denmark", "Czech Republic", "Ireland", "Portugal", "Greece"},
		currencies: []string{"EUR", "EUR", "EUR", "EUR", "EUR", "EUR", "USD", "USD", "GBP", "JPY"},
	}
	for total := 0; total < listings; {
		c := int(math.Floor(math.Pow(1-rng.Float64(), -1/1.3)))
		c = min(c, 10_000, listings-total)
		g.count = append(g.count, int32(c))
		total += c
	}
	g.releases = len(g.count)
	g.release = make([]int32, 0, listings)
	for r, c := range g.count {
		for j := int32(0); j < c; j++ {
			g.release = append(g.release, int32(r+1))
		}
	}
	rng.Shuffle(len(g.release), func(i, j int) { g.release[i], g.release[j] = g.release[j], g.release[i] })
	g.ratings = make([]float32, g.sellers)
	for i := range g.ratings {
		// Most sellers are rated 98-100%, a tail lower.
		g.ratings[i] = float32(math.Round(math.Max(80, 100-rng.ExpFloat64()*1.2)*10) / 10)
	}
	for cur, text := range g.rateText {
		g.rates[cur], _ = parseRate(cur, text)
	}
	return g
}

func (g *marketGen) sellerName(i int) string { return "seller" + strconv.Itoa(i) }

// gradeAt maps a percentile to a media grade: M 5%, NM 30%, VG+ 35%,
// VG 18%, G+ 7%, G 3%, F 1%, P 1%.
func gradeAt(p int) uint8 {
	for i, upTo := range [...]int{5, 35, 70, 88, 95, 98, 99} {
		if p < upTo {
			return uint8(i + 1)
		}
	}
	return 8
}

// row returns listing i as a table row.
func (g *marketGen) row(i int) ListingRow {
	rng := rand.New(rand.NewPCG(g.seed, uint64(i)+1000))
	rel := int64(g.release[i])
	cur := g.currencies[rng.IntN(len(g.currencies))]
	eur := int64(math.Exp(math.Log(1500) + 0.8*rng.NormFloat64()))
	eur = max(eur, 50)
	price := eur
	if cur != "EUR" {
		// the price in its currency, and the EUR price it converts back to
		f, _ := strconv.ParseFloat(g.rateText[cur], 64)
		price = int64(float64(eur) * f)
		if cur == "JPY" {
			price /= 100
		}
		eur, _ = g.rates[cur].toEUR(price)
	}
	seller := rng.IntN(g.sellers)
	media := gradeAt(rng.IntN(100))
	return ListingRow{
		ListingID: int64(i) + 1, ReleaseID: rel, Seller: g.sellerName(seller), SellerID: int64(seller + 1),
		PriceMinor: price, Currency: cur, PriceEURMinor: eur, ShippingMinor: 500 + int64(rng.IntN(1500)),
		ShippingState: 1, MediaGrade: media, SleeveGrade: media, ShipsFrom: g.countries[min(len(g.countries)-1, int(rng.ExpFloat64()*4))],
		Available: rng.IntN(100) < 95, SellerRating: g.ratings[seller], SeenAt: time.Unix(1_700_000_000+int64(i%1_000_000), 0), Version: 1,
	}
}

// listing returns listing i as a listings.v1 value.
func (g *marketGen) listing(i int) *pb.Listing {
	r := g.row(i)
	return &pb.Listing{
		EventId: "bench-" + strconv.Itoa(i), EventTimeMs: r.SeenAt.UnixMilli(), ListingId: r.ListingID, ReleaseId: r.ReleaseID,
		Seller: r.Seller, SellerId: r.SellerID, Price: &pb.Money{AmountMinor: r.PriceMinor, Currency: r.Currency},
		Shipping: &pb.Money{AmountMinor: r.ShippingMinor, Currency: r.Currency}, ShippingState: pb.ShippingState(r.ShippingState),
		Media: pb.MediaGrade(r.MediaGrade), Sleeve: pb.SleeveGrade(r.SleeveGrade), ShipsFrom: r.ShipsFrom, Available: r.Available,
		SeenAtMs: r.SeenAt.UnixMilli(), Source: "bench",
	}
}

// popularReleases draws n distinct releases with probability proportional
// to their listings (a listing drawn at random, its release taken).
func (g *marketGen) popularReleases(rng *rand.Rand, n int) []int64 {
	seen := map[int32]bool{}
	out := make([]int64, 0, n)
	for tries := 0; len(out) < n && tries < 50*n; tries++ {
		r := g.release[rng.IntN(len(g.release))]
		if !seen[r] {
			seen[r] = true
			out = append(out, int64(r))
		}
	}
	return out
}

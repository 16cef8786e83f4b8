package cli

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/discogs/fakemarket"
	"github.com/cratestream/cratestream/connectors/ecb"
	"github.com/cratestream/cratestream/connectors/gateway"
	"github.com/cratestream/cratestream/internal/demodata"
	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/gen"
	"github.com/cratestream/cratestream/internal/money"
	"github.com/cratestream/cratestream/internal/ops"
	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

func demoCommand() command {
	c := command{
		name:    "demo",
		summary: "run the whole pipeline on the embedded stack with generated traffic",
		usage: `Usage: cratestream demo [flags]

Starts the embedded stack in --data-dir: a 3-broker in-process Kafka (franz-go
kfake, persisted), Redis (redis-server child process, or in-process miniredis
when redis-server is not installed) and ClickHouse (clickhouse-server child
process when installed). Creates the topics, runs every processor in this
process, generates collector traffic at --rate events/s (a --bad-rate share of
it invalid, to show the dead-letter topic) and prints progress every
--progress. Ctrl-C stops cleanly; a second run reuses the data directory.

The ops server (--http) serves /metrics, /healthz and /readyz; the gateway
(--web) serves the web UI and its API, with a printed one-time link that logs
in as a generated collector.`,
	}
	c.run = func(ctx context.Context, env *Env, args []string) error {
		fs := newFlags(env, c)
		dataDir := fs.String("data-dir", ".demo", "where the embedded stack keeps its data")
		httpAddr := fs.String("http", "127.0.0.1:8080", "ops listen address (/metrics, /healthz, /readyz)")
		webAddr := fs.String("web", "127.0.0.1:8081", "web UI and API (gateway) listen address; empty: no gateway")
		rate := fs.Int("rate", 500, "generated interactions per second")
		users := fs.Int("users", 5000, "generated collectors")
		releases := fs.Int("releases", 0, "releases in a generated catalogue (0: the ~1000 real releases shipped with the demo)")
		badRate := fs.Float64("bad-rate", 0.002, "share of generated interactions that are invalid")
		every := fs.Duration("progress", 2*time.Second, "progress interval")
		duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
		brokers := fs.String("brokers", "", "use this Kafka cluster instead of the embedded one")
		redisAddr := fs.String("redis", "", "use this Redis (host:port) instead of starting one")
		chAddr := fs.String("clickhouse", "", "use this ClickHouse (native host:port) instead of starting one")
		if err := parse(fs, args); err != nil {
			return err
		}
		if *duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *duration)
			defer cancel()
		}
		return runDemo(ctx, env, demoOptions{
			dataDir: *dataDir, httpAddr: *httpAddr, webAddr: *webAddr, rate: *rate, users: *users,
			releases: *releases, badRate: *badRate, every: *every,
			brokers: *brokers, redis: *redisAddr, clickhouse: *chAddr,
		})
	}
	return c
}

type demoOptions struct {
	brokers, redis, clickhouse string
	dataDir, httpAddr, webAddr string
	rate, users, releases      int
	releaseIDs                 []int64 // the catalogue; 1..releases when generated
	genres                     int
	badRate                    float64
	every                      time.Duration
}

func runDemo(ctx context.Context, env *Env, o demoOptions) error {
	out := env.Stdout
	dir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cratestream demo: embedded stack in %s\n", dir)
	var brokers []string
	if o.brokers != "" {
		if brokers, err = splitBrokers(o.brokers); err != nil {
			return err
		}
		fmt.Fprintf(out, "  kafka       external cluster at %v\n", brokers)
	} else {
		k, err := embedded.StartKafka(embedded.KafkaOptions{DataDir: filepath.Join(dir, "kafka"), Logger: env.Logger})
		if err != nil {
			return err
		}
		defer k.Close()
		brokers = k.Addrs()
		fmt.Fprintf(out, "  kafka       3 in-process brokers (franz-go kfake) at %v\n", brokers)
	}

	redisAddr, chAddr := o.redis, o.clickhouse
	if o.redis != "" {
		fmt.Fprintf(out, "  redis       external at %s\n", o.redis)
	} else {
		rds, err := embedded.StartRedis(ctx, embedded.RedisOptions{Dir: filepath.Join(dir, "redis"), AllowInProcess: true})
		if err != nil {
			return err
		}
		defer rds.Close()
		redisAddr = rds.Addr
		if rds.Kind == "redis-server" {
			fmt.Fprintf(out, "  redis       redis-server at %s\n", rds.Addr)
		} else {
			fmt.Fprintf(out, "  redis       %s at %s (install redis-server for the real one: apt-get install redis-server)\n", rds.Kind, rds.Addr)
		}
	}
	if o.clickhouse != "" {
		fmt.Fprintf(out, "  clickhouse  external at %s\n", o.clickhouse)
	} else {
		ch, err := embedded.StartClickHouse(ctx, embedded.ClickHouseOptions{Dir: filepath.Join(dir, "clickhouse")})
		switch {
		case errors.Is(err, embedded.ErrClickHouseMissing):
			fmt.Fprintf(out, "  clickhouse  not installed: running without it (%v)\n", err)
		case err != nil:
			fmt.Fprintf(out, "  clickhouse  failed to start, running without it: %v\n", err)
		default:
			defer ch.Close()
			chAddr = ch.Addr
			fmt.Fprintf(out, "  clickhouse  clickhouse-server at %s\n", ch.Addr)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	created, err := stream.CreateTopics(ctx, kadm.NewClient(cl), topics.Catalogue(), -1)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  topics      %d in the catalogue, %d created now\n", len(topics.Catalogue()), len(created))
	rates := ecb.Default()
	if err := produceRates(ctx, cl, rates); err != nil {
		return err
	}
	fmt.Fprintf(out, "  fx rates    %d built-in ECB reference rates of %s\n", len(rates), rates[0].Date)

	srv := ops.NewServer()
	bound, err := srv.Listen(o.httpAddr)
	if err != nil {
		return err
	}
	if o.releases <= 0 {
		rs, err := demodata.Releases()
		if err != nil {
			return err
		}
		if err := produceReleases(ctx, cl, rs); err != nil {
			return err
		}
		for _, r := range rs {
			o.releaseIDs = append(o.releaseIDs, r.ReleaseId)
		}
		o.releases, o.genres = len(rs), demodata.Genres(rs)
		fmt.Fprintf(out, "  releases    %d real releases of the Discogs dump of 2020-08-06 (%d genres) in %s\n", len(rs), o.genres, topics.Releases().Name)
	}
	fake, err := fakemarket.New(fakemarket.Config{Releases: o.releaseIDs, NumReleases: o.releases, Seed: 1})
	if err != nil {
		return err
	}
	d := &deps{env: env, brokers: brokers, srv: srv, fake: fake, streamCf: stream.Config{
		Brokers:       brokers,
		InstanceID:    "demo",
		StateDir:      filepath.Join(dir, "state"),
		AdvertiseAddr: ops.AdvertiseAddr(bound, "127.0.0.1"),
		Logger:        env.Logger,
		Metrics:       srv.Registry,
	}}
	d.set.redis.addr, d.set.clickhouse.addr = redisAddr, chAddr
	// One process: the processors and the gateway share a fresh lookup
	// secret.
	secret := make([]byte, 24)
	if _, err := crand.Read(secret); err != nil {
		return err
	}
	d.set.lookup.value = hex.EncodeToString(secret)
	d.set.scrapeParallel = 8
	d.set.cartDeadline = 30 * time.Second
	defer d.close()
	names := demoServices()
	if chAddr != "" {
		names = append(names, "clickhouse-sink")
	}
	webLine := make(chan string, 1)
	if o.webAddr != "" {
		names = append(names, "gateway")
		d.gatewayHook = func(rc *gateway.RunConfig) {
			user := gen.UserID(1) // an active collector: a wantlist and recommendations
			rc.Listen, rc.Gateway.DemoUser = o.webAddr, user
			// No importer runs (no Discogs API): the UI says so instead
			// of queueing syncs nobody answers.
			rc.Gateway.SyncUnavailable = demoSyncUnavailable
			rc.OnListen = func(addr string, s *gateway.Server) {
				base := "http://" + ops.AdvertiseAddr(addr, "127.0.0.1")
				link, err := s.DemoLink()
				if strings.HasPrefix(link, "/") {
					link = base + link
				}
				if err != nil {
					link = err.Error()
				}
				webLine <- fmt.Sprintf("  web ui      %s/  (log in as %s: %s)", base, user, link)
			}
		}
	}
	fmt.Fprintf(out, "  services    %v (the scraper reads an in-process fake marketplace of %d releases)\n", names, o.releases)
	fmt.Fprintf(out, "  ops         http://%s/metrics  http://%s/healthz  http://%s/readyz\n", bound, bound, bound)

	var produced, bad, scrapes atomic.Int64
	carts := &demoCarts{}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return startServices(gctx, d, names) })
	g.Go(func() error { return requestScrapes(gctx, cl, o, &scrapes) })
	g.Go(func() error { return carts.run(gctx, cl, brokers, o) })
	g.Go(func() error { return generate(gctx, cl, o, &produced, &bad) })
	if o.webAddr != "" {
		select {
		case line := <-webLine:
			fmt.Fprintln(out, line)
		case <-gctx.Done():
		case <-time.After(30 * time.Second):
			fmt.Fprintln(out, "  web ui      not listening yet (see the log)")
		}
	}
	fmt.Fprintln(out, "Generating traffic; Ctrl-C stops.")
	g.Go(func() error {
		t := time.NewTicker(o.every)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
			p := produced.Load()
			line := fmt.Sprintf("progress: produced %d interactions (%.0f/s, %d invalid), %d scrape requests", p, float64(p-last)/o.every.Seconds(), bad.Load(), scrapes.Load())
			last = p
			for _, r := range d.runners() {
				st := r.Stats()
				line += fmt.Sprintf(" | %s: %d processed, %d dead-lettered, %d tasks, ready=%v",
					r.Processor().Name(), st.Processed, st.DeadLetters, st.Tasks, r.Ready())
			}
			fmt.Fprintln(out, line)
			if c := carts.summary(); c != "" {
				fmt.Fprintln(out, c)
			}
		}
	})
	err = g.Wait()
	fmt.Fprintf(out, "cratestream demo: stopped after producing %d interactions; data kept in %s\n", produced.Load(), dir)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// generate produces interactions at o.rate until ctx ends.
func generate(ctx context.Context, cl *kgo.Client, o demoOptions, produced, bad *atomic.Int64) error {
	gn := gen.NewInteractions(gen.InteractionsConfig{Seed: uint64(time.Now().UnixNano()), Users: o.users, Releases: o.releases,
		ReleaseIDs: o.releaseIDs, Genres: o.genres})
	topic := topics.Interactions().Name
	const tick = 50 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	var sent int64
	badEvery := int64(0)
	if o.badRate > 0 {
		badEvery = int64(1 / o.badRate)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		due := int64(time.Since(start).Seconds() * float64(o.rate))
		for ; sent < due; sent++ {
			ev := gn.Next(time.Now().UnixMilli())
			if badEvery > 0 && sent%badEvery == badEvery-1 {
				ev.Rating, ev.Kind = 9, 5 // a rating Discogs does not have: dead-lettered
				bad.Add(1)
			}
			b, err := proto.Marshal(ev)
			if err != nil {
				return err
			}
			cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(ev.UserId), Value: b}, func(_ *kgo.Record, err error) {
				if err == nil {
					produced.Add(1)
				}
			})
		}
	}
}

// demoServices are the services the demo runs: every processor and worker
// that needs nothing from outside.
func demoServices() []string {
	return []string{"profile", "recommend", "trainer", "market", "scraper", "cartbuilder"}
}

// requestScrapes keeps the marketplace flowing until the cart builder asks
// for scrapes itself: every few seconds it asks for a batch of releases,
// the popular ones more often.
func requestScrapes(ctx context.Context, cl *kgo.Client, o demoOptions, n *atomic.Int64) error {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	next := int64(1)
	topic := topics.ScrapeRequests().Name
	for round := 0; ; round++ {
		var recs []*kgo.Record
		ask := func(rel int64) {
			b, _ := proto.Marshal(&pb.ScrapeRequest{RequestId: fmt.Sprintf("demo-%d-%d", round, rel), ReleaseId: rel,
				Reason: "schedule", EventTimeMs: time.Now().UnixMilli(), EventId: fmt.Sprintf("demo-scrape-%d-%d", round, rel)})
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(strconv.FormatInt(rel, 10)), Value: b})
		}
		id := func(i int64) int64 { // i in 1..releases
			if len(o.releaseIDs) > 0 {
				return o.releaseIDs[i-1]
			}
			return i
		}
		for i := int64(1); i <= 10; i++ { // the head of the power law
			ask(id(i))
		}
		for i := 0; i < 20; i++ {
			ask(id(next))
			next = next%int64(o.releases) + 1
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		n.Add(int64(len(recs)))
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// demoCarts asks for a cart for a random collector every few seconds (after
// a warm-up that lets profiles and candidates form) and follows carts.v1.
type demoCarts struct {
	mu        sync.Mutex
	asked     int
	answered  int
	last      *pb.CartResult
	lastShown string
}

func (dc *demoCarts) run(ctx context.Context, cl *kgo.Client, brokers []string, o demoOptions) error {
	results, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics.Carts().Name),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return err
	}
	defer results.Close()
	go func() {
		for ctx.Err() == nil {
			results.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var res pb.CartResult
				if proto.Unmarshal(r.Value, &res) == nil {
					dc.mu.Lock()
					dc.answered++
					dc.last = &res
					dc.mu.Unlock()
				}
			})
		}
	}()
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(10 * time.Second):
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for n := 0; ; n++ {
		user := gen.UserID(rng.IntN(max(1, min(o.users, 200))))
		req := &pb.CartRequest{EventId: fmt.Sprintf("demo-cart-%d-%d", time.Now().UnixMilli(), n), EventTimeMs: time.Now().UnixMilli(),
			RequestId: fmt.Sprintf("demo-%d-%d", time.Now().Unix(), n), UserId: user,
			Criteria: &pb.CartCriteria{Budget: &pb.Money{AmountMinor: 10000, Currency: "EUR"}, MinMedia: pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS,
				MinSellerRating: 97, MinQty: 2, WantlistRatio: 0.5, TopN: 20}}
		b, err := proto.Marshal(req)
		if err != nil {
			return err
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topics.CartRequests().Name, Key: []byte(user), Value: b}).FirstErr(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		dc.mu.Lock()
		dc.asked++
		dc.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// summary describes the latest cart result once.
func (dc *demoCarts) summary() string {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.last == nil || dc.last.RequestId == dc.lastShown {
		return ""
	}
	r := dc.last
	dc.lastShown = r.RequestId
	line := fmt.Sprintf("carts: %d requested, %d answered; %s for %s: ", dc.asked, dc.answered, r.RequestId, r.UserId)
	if len(r.Carts) == 0 {
		return line + "no carts (" + r.Error + ")"
	}
	best := r.Carts[0]
	line += fmt.Sprintf("%d carts, best %d records for %s (%s) from %v", len(r.Carts), best.Quantity,
		money.Decimal(best.Total.AmountMinor, best.Total.Currency)+" "+best.Total.Currency, money.Decimal(best.Shipping.AmountMinor, best.Shipping.Currency)+" shipping", best.Sellers)
	if r.Timings != nil {
		line += fmt.Sprintf(", %d ms (%d waiting for scrapes)", r.Timings.TotalMs, r.Timings.WaitMs)
	}
	if len(r.StaleReleases) > 0 {
		line += fmt.Sprintf(", %d releases still stale", len(r.StaleReleases))
	}
	return line
}

// demoSyncUnavailable is why the demo's gateway refuses profile syncs.
const demoSyncUnavailable = "the demo has no Discogs API access: its collectors' interactions are generated"

// produceReleases writes the demo catalogue to releases.v1 (compacted and
// keyed by id: a second run rewrites the same records).
func produceReleases(ctx context.Context, cl *kgo.Client, rs []*pb.Release) error {
	t := topics.Releases()
	recs := make([]*kgo.Record, 0, len(rs))
	for _, r := range rs {
		k, err := t.Key.Append(nil, r.ReleaseId)
		if err != nil {
			return err
		}
		v, err := t.Value.Append(nil, r)
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: t.Name, Key: k, Value: v})
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

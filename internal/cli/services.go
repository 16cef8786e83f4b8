package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	chsink "github.com/cratestream/cratestream/connectors/clickhouse"
	"github.com/cratestream/cratestream/connectors/discogs/api"
	"github.com/cratestream/cratestream/connectors/discogs/fakemarket"
	"github.com/cratestream/cratestream/connectors/discogs/importer"
	"github.com/cratestream/cratestream/connectors/discogs/scraper"
	"github.com/cratestream/cratestream/connectors/gateway"
	"github.com/cratestream/cratestream/connectors/gateway/web"
	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/chaos"
	"github.com/cratestream/cratestream/internal/ops"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/processors/cartbuilder"
	"github.com/cratestream/cratestream/processors/market"
	"github.com/cratestream/cratestream/processors/profile"
	"github.com/cratestream/cratestream/processors/recommend"
	"github.com/cratestream/cratestream/schemas/topics"
)

// service is one thing `run` (and the demo) can run: a stream processor on
// the runtime, or a worker with its own loop.
type service struct {
	name    string
	summary string
	// processor services
	mode stream.Mode
	// fixedMode: the processor's guarantees need its mode; --mode may
	// not change it.
	fixedMode bool
	build     func(d *deps, mode stream.Mode) (*stream.Processor, error)
	// worker services
	run func(ctx context.Context, d *deps) error
	// hidden services are for tests (the chaos suite): runnable, but not
	// listed with the services a deployment runs.
	hidden bool
}

// settings are the flags shared by the services.
type settings struct {
	kafka          kafkaFlags
	redis          endpointFlags
	clickhouse     endpointFlags
	lookup         lookupSecret
	instance       string
	stateDir       string
	httpAddr       string
	advertiseHost  string
	mode           string
	commitEvery    time.Duration
	sessionTimeout time.Duration
	onDiskCache    int64
	marketURL      string
	userAgent      string
	scrapeRate     float64
	scrapeParallel int
	discogsAPI     string
	discogsToken   string
	fakeListen     string
	fakeReleases   int
	fakeSeed       uint64
	trainEvery     time.Duration
	trainAfter     int64
	cartDeadline   time.Duration
}

func (s *settings) register(fs *flag.FlagSet, env *Env) {
	host := hostname()
	s.kafka.register(fs, env)
	s.redis.register(fs, env, "redis", "Redis host:port; the scraper, importer, cart builder and gateway need it")
	s.clickhouse.register(fs, env, "clickhouse", "ClickHouse native host:port; the sink needs it, the gateway's dashboard uses it")
	s.lookup.register(fs, env)
	fs.StringVar(&s.instance, "instance-id", envOr(env, "CRATESTREAM_INSTANCE_ID", host), "stable id of this instance (transactional id suffix; env CRATESTREAM_INSTANCE_ID)")
	fs.StringVar(&s.stateDir, "state-dir", envOr(env, "CRATESTREAM_STATE_DIR", "data/state"), "directory of on-disk stores (env CRATESTREAM_STATE_DIR)")
	fs.StringVar(&s.httpAddr, "http", envOr(env, "CRATESTREAM_HTTP", ":9464"), "ops HTTP listen address: /metrics, /healthz, /readyz, store lookups (env CRATESTREAM_HTTP)")
	fs.StringVar(&s.advertiseHost, "advertise-host", envOr(env, "CRATESTREAM_ADVERTISE_HOST", host), "host other instances use to reach this one's ops server")
	fs.StringVar(&s.mode, "mode", "", "override the processors' delivery mode: exactly-once or at-least-once")
	fs.DurationVar(&s.commitEvery, "commit-interval", 100*time.Millisecond, "how often state and offsets commit")
	fs.DurationVar(&s.sessionTimeout, "session-timeout", 10*time.Second, "how long the group waits for a silent instance before moving its partitions (at least the brokers' group.min.session.timeout.ms, 6s by default)")
	fs.Int64Var(&s.onDiskCache, "on-disk-cache", 0, "keep stores on disk (Pebble) with this block cache in bytes; 0 keeps them in memory")
	fs.StringVar(&s.marketURL, "marketplace-url", envOr(env, "CRATESTREAM_MARKETPLACE_URL", "https://www.discogs.com"), "base URL the scraper fetches /sell/release/<id> from")
	fs.StringVar(&s.userAgent, "user-agent", envOr(env, "CRATESTREAM_USER_AGENT", "cratestream/1.0 (+https://github.com/cratestream/cratestream)"), "User-Agent of the scraper and the API client")
	fs.Float64Var(&s.scrapeRate, "scrape-rate", 1, "scraper requests per second per host")
	fs.IntVar(&s.scrapeParallel, "scrape-parallel", 4, "scraper pages in flight")
	fs.StringVar(&s.discogsAPI, "discogs-api", envOr(env, "DISCOGS_API_URL", "https://api.discogs.com"), "Discogs API base URL (env DISCOGS_API_URL)")
	fs.StringVar(&s.discogsToken, "discogs-token", env.Getenv("DISCOGS_TOKEN"), "Discogs personal access token (env DISCOGS_TOKEN)")
	fs.StringVar(&s.fakeListen, "fakemarket-listen", envOr(env, "CRATESTREAM_FAKEMARKET_LISTEN", ":8090"), "where fakemarket serves its pages")
	fs.IntVar(&s.fakeReleases, "fakemarket-releases", 2000, "releases in fakemarket's generated catalogue (1..N)")
	fs.Uint64Var(&s.fakeSeed, "fakemarket-seed", 1, "seed of fakemarket's catalogue")
	fs.DurationVar(&s.trainEvery, "train-every", time.Hour, "trainer: retrain at least this often")
	fs.Int64Var(&s.trainAfter, "train-after", 10000, "trainer: retrain once this many interactions arrived")
	fs.DurationVar(&s.cartDeadline, "cart-deadline", 60*time.Second, "cartbuilder: how long a request waits for scrapes")
}

// deps are what services share in one process.
type deps struct {
	env      *Env
	set      settings
	brokers  []string
	kopts    []kgo.Opt // every Kafka client's security options
	srv      *ops.Server
	streamCf stream.Config
	// fake, when set, is an in-process fake marketplace the scraper
	// reads instead of marketURL (the demo).
	fake *fakemarket.Market
	// gatewayHook, when set, adjusts the gateway service's configuration
	// (the demo: its listen address, demo user and startup line).
	gatewayHook func(*gateway.RunConfig)

	mu      sync.Mutex
	models  *recommend.ModelStore
	rds     *redis.Store
	kprod   *kgo.Client
	running []*stream.Runner
}

// runners are the processor instances started so far (progress output).
func (d *deps) runners() []*stream.Runner {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*stream.Runner(nil), d.running...)
}

// globalConfig is how services follow whole topics: transactional
// producers write them, so only committed records count.
func (d *deps) globalConfig() stream.GlobalConfig {
	return stream.GlobalConfig{Brokers: d.brokers, ClientOpts: d.kopts, Logger: d.logger(), ReadCommitted: true}
}

func (d *deps) logger() *slog.Logger { return d.env.Logger }

// redis connects once.
func (d *deps) redis(ctx context.Context) (*redis.Store, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rds != nil {
		return d.rds, nil
	}
	if d.set.redis.addr == "" {
		return nil, usagef("this service needs Redis: pass --redis host:port or set CRATESTREAM_REDIS")
	}
	ro, err := d.set.redis.redisOptions()
	if err != nil {
		return nil, err
	}
	r, err := redis.Open(ctx, ro)
	if err != nil {
		return nil, err
	}
	d.rds = r
	return r, nil
}

// producer is a shared plain producer for workers.
func (d *deps) producer() (*kgo.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.kprod != nil {
		return d.kprod, nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(d.brokers...), kgo.ProducerLinger(2 * time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression())}, d.kopts...)...)
	if err != nil {
		return nil, err
	}
	d.kprod = cl
	return cl, nil
}

func (d *deps) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.kprod != nil {
		d.kprod.Close()
	}
	if d.rds != nil {
		d.rds.Close()
	}
}

func services() []service {
	return []service{
		{
			name: profile.Name, summary: "interactions.v1 -> per-user profile store -> user-profiles.v1", mode: stream.ExactlyOnce,
			build: func(d *deps, mode stream.Mode) (*stream.Processor, error) {
				p, _ := profile.New(profile.Options{Mode: mode, OnDiskCacheBytes: d.set.onDiskCache})
				return p, nil
			},
		},
		{
			name: market.Name, summary: "listings.v1 (+ fx-rates.v1, scrape-done.v1) -> per-release store -> release-stats.v1", mode: stream.ExactlyOnce,
			build: func(d *deps, mode stream.Mode) (*stream.Processor, error) {
				fx := market.NewFX(d.globalConfig())
				p, _ := market.New(market.Options{Mode: mode, FX: fx})
				return p, nil
			},
		},
		{
			name: recommend.Name, summary: "user-profiles.v1 -> fold-in through the model cascade -> user-candidates.v1, rec-outcomes.v1", mode: stream.ExactlyOnce,
			build: func(d *deps, mode stream.Mode) (*stream.Processor, error) {
				models := recommend.NewModelStore(d.brokers, d.logger(), d.kopts...)
				d.mu.Lock()
				d.models = models
				d.mu.Unlock()
				genres := recommend.NewGenres(d.globalConfig())
				p, _ := recommend.New(recommend.Options{Mode: mode, Models: models, Genres: genres, Metrics: d.srv.Registry})
				return p, nil
			},
		},
		{
			name: "trainer", summary: "trains the ALS model from user-profiles.v1 every --train-every or --train-after interactions",
			run: func(ctx context.Context, d *deps) error {
				return recommend.RunTrainer(ctx, recommend.TrainConfig{Brokers: d.brokers, ClientOpts: d.kopts, Logger: d.logger()},
					recommend.ScheduleConfig{Every: d.set.trainEvery, AfterInteractions: d.set.trainAfter})
			},
		},
		{
			name: cartbuilder.Name, summary: "cart-requests.v1 + user-candidates.v1 + listing table -> scrape requests, carts.v1 (needs --redis)", mode: stream.ExactlyOnce,
			// One CartResult per request id across crashes rests on
			// the result, the status and the completion marker
			// committing together.
			fixedMode: true,
			build: func(d *deps, mode stream.Mode) (*stream.Processor, error) {
				rds, err := d.redis(context.Background())
				if err != nil {
					return nil, err
				}
				gc := d.globalConfig()
				tables := cartbuilder.NewTables(
					stream.NewGlobalTable(topics.Listings(), gc),
					stream.NewGlobalTable(topics.Sellers(), gc),
					stream.NewGlobalTable(topics.ReleaseStats(), gc),
					stream.NewGlobalTable(topics.FxRates(), gc))
				return cartbuilder.New(cartbuilder.Options{Tables: tables, Redis: rds, Deadline: d.set.cartDeadline,
					Logger: d.logger(), Metrics: d.srv.Registry, MaxNodes: 50_000_000})
			},
		},
		{
			name: "scraper", summary: "scrape-requests.v1 -> marketplace pages -> listings.v1, sellers.v1, scrape-done.v1 (needs --redis)",
			run: runScraper,
		},
		{
			name: "importer", summary: "sync-requests.v1 -> Discogs API wantlist/collection -> interactions.v1, sync-done.v1 (needs --redis)",
			run: runImporter,
		},
		{
			name: "clickhouse-sink", summary: "listings, sellers, releases, release stats and profiles -> ClickHouse (needs --clickhouse)",
			run: runSink,
		},
		{
			name: "gateway", summary: "HTTP API, SSE, Discogs login on $CRATESTREAM_GATEWAY_LISTEN (default :8080; needs --redis; see gateway.ConfigFromEnv)",
			run: runGateway,
		},
		{
			name: chaos.CounterName, summary: "chaos suite: chaos-counter-in -> a running count per key -> chaos-counter-out", mode: stream.ExactlyOnce,
			hidden: true,
			build: func(d *deps, mode stream.Mode) (*stream.Processor, error) {
				return chaos.NewCounter(mode, d.set.onDiskCache), nil
			},
		},
		{
			name: "fakemarket", summary: "an HTTP server of Discogs-format marketplace pages for a generated catalogue (--fakemarket-listen)",
			run: runFakemarket,
		},
	}
}

// serviceNames are the services a deployment runs (not the hidden ones).
func serviceNames() []string {
	var names []string
	for _, s := range services() {
		if !s.hidden {
			names = append(names, s.name)
		}
	}
	sort.Strings(names)
	return names
}

func findService(name string) (service, bool) {
	for _, s := range services() {
		if s.name == name {
			return s, true
		}
	}
	return service{}, false
}

func runScraper(ctx context.Context, d *deps) error {
	rds, err := d.redis(ctx)
	if err != nil {
		return err
	}
	prod, err := d.producer()
	if err != nil {
		return err
	}
	cfg := scraper.Config{
		BaseURL: d.set.marketURL, UserAgent: d.set.userAgent, PerHostRate: d.set.scrapeRate,
		Concurrency: d.set.scrapeParallel, Redis: rds, Producer: prod, Logger: d.logger(), Metrics: d.srv.Registry,
	}
	if d.fake != nil {
		// The demo's marketplace is in this process: serve it on a
		// loopback port so the scraper goes through real HTTP.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: d.fake, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		cfg.BaseURL = "http://" + ln.Addr().String()
		cfg.PerHostRate = 200 // our own server: no politeness needed
	}
	s, err := scraper.New(cfg)
	if err != nil {
		return err
	}
	return s.Run(ctx, scraper.WorkerConfig{Brokers: d.brokers, ClientOpts: d.kopts})
}

func runImporter(ctx context.Context, d *deps) error {
	rds, err := d.redis(ctx)
	if err != nil {
		return err
	}
	prod, err := d.producer()
	if err != nil {
		return err
	}
	client, err := api.New(api.Config{BaseURL: d.set.discogsAPI, UserAgent: d.set.userAgent, Token: d.set.discogsToken})
	if err != nil {
		return err
	}
	im, err := importer.New(importer.Config{API: client, Redis: rds, Producer: prod, Logger: d.logger(), Metrics: d.srv.Registry})
	if err != nil {
		return err
	}
	return im.Run(ctx, importer.WorkerConfig{Brokers: d.brokers, ClientOpts: d.kopts})
}

func runSink(ctx context.Context, d *deps) error {
	if d.set.clickhouse.addr == "" {
		return usagef("clickhouse-sink needs ClickHouse: pass --clickhouse host:port or set CRATESTREAM_CLICKHOUSE")
	}
	co, err := d.set.clickhouse.clickhouseOptions()
	if err != nil {
		return err
	}
	conn, err := chsink.Open(ctx, co)
	if err != nil {
		return err
	}
	defer conn.Close()
	res, err := chsink.Migrate(ctx, conn)
	if err != nil {
		return fmt.Errorf("clickhouse migrations: %w", err)
	}
	d.logger().Info("clickhouse migrated", "result", fmt.Sprintf("%+v", res))
	s, err := chsink.NewSink(chsink.Config{Brokers: d.brokers, KafkaOpts: d.kopts, Conn: conn, Metrics: d.srv.Registry, Logger: d.logger()})
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

func runGateway(ctx context.Context, d *deps) error {
	rc, err := gateway.ConfigFromEnv(d.env.Getenv)
	if err != nil {
		return usagef("%v", err)
	}
	rds, err := d.redis(ctx)
	if err != nil {
		return err
	}
	prod, err := d.producer()
	if err != nil {
		return err
	}
	rc.Brokers, rc.KafkaOpts = d.brokers, d.kopts
	if rc.LookupSecret, err = d.set.lookup.get(); err != nil {
		return err
	}
	rc.Gateway.Producer, rc.Gateway.Status, rc.Gateway.Logger = prod, rds, d.logger()
	rc.Gateway.Discogs.APIURL, rc.Gateway.Discogs.UserAgent = d.set.discogsAPI, d.set.userAgent
	rc.Gateway.UI = web.Handler()
	// The pipeline dashboard reads the processors running in this process.
	rc.Gateway.Metrics = d.srv.Registry
	if d.set.clickhouse.addr != "" {
		if rc.ClickHouse, err = d.set.clickhouse.clickhouseOptions(); err != nil {
			return err
		}
	}
	if d.gatewayHook != nil {
		d.gatewayHook(&rc)
	}
	return gateway.Run(ctx, rc)
}

func runFakemarket(ctx context.Context, d *deps) error {
	m, err := fakemarket.New(fakemarket.Config{NumReleases: d.set.fakeReleases, Seed: d.set.fakeSeed})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", d.set.fakeListen)
	if err != nil {
		return fmt.Errorf("fakemarket: %w", err)
	}
	srv := &http.Server{Handler: m, ReadHeaderTimeout: 5 * time.Second}
	d.logger().Info("fakemarket serving", "url", "http://"+ln.Addr().String()+"/sell/release/1", "releases", d.set.fakeReleases)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serviceMode is the delivery mode svc runs in with --mode override.
func serviceMode(svc service, override string) (stream.Mode, error) {
	if override == "" {
		return svc.mode, nil
	}
	m, err := stream.ParseMode(override)
	if err != nil {
		return 0, usagef("%v", err)
	}
	if svc.build != nil && svc.fixedMode && m != svc.mode {
		return 0, usagef("--mode %s: %s runs %s only (exactly one result per request rests on its transactions)", m, svc.name, svc.mode)
	}
	return m, nil
}

// startServices builds and runs the named services until ctx ends or one
// fails.
func startServices(ctx context.Context, d *deps, names []string) error {
	var runners []*stream.Runner
	var workers []service
	for _, n := range names {
		svc, ok := findService(n)
		if !ok {
			return usagef("unknown service %q (have %s)", n, strings.Join(serviceNames(), ", "))
		}
		if svc.run != nil {
			workers = append(workers, svc)
			continue
		}
		mode, err := serviceMode(svc, d.set.mode)
		if err != nil {
			return err
		}
		p, err := svc.build(d, mode)
		if err != nil {
			return err
		}
		cf := d.streamCf
		if cf.LookupSecret == "" {
			if cf.LookupSecret, err = d.set.lookup.get(); err != nil {
				return err
			}
		}
		if n == cartbuilder.Name && (cf.CommitInterval <= 0 || cf.CommitInterval > cartbuilder.CommitInterval) {
			// Its results wait for the commit: see cartbuilder.CommitInterval.
			cf.CommitInterval = cartbuilder.CommitInterval
		}
		r, err := stream.NewRunner(p, cf)
		if err != nil {
			return fmt.Errorf("processor %s: %w", n, err)
		}
		d.srv.AddRunner(r)
		runners = append(runners, r)
	}
	d.mu.Lock()
	d.running = runners
	d.mu.Unlock()
	return runAll(ctx, d.srv, runners, workers, d)
}

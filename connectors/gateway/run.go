package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	chsink "github.com/cratestream/cratestream/connectors/clickhouse"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/processors/recommend"
)

// RunConfig is a gateway service: the server, its event bridge, its store
// lookups, the copy of the model it answers similar releases from and the
// table of releases.v1 it takes titles from.
type RunConfig struct {
	// Listen is the HTTP listen address. Default ":8080".
	Listen  string
	Brokers []string
	// KafkaOpts are added to every Kafka client of the gateway (SASL, TLS).
	KafkaOpts []kgo.Opt
	Gateway   Config
	// Lookback is how far back the event bridge reads on start.
	Lookback time.Duration
	// LookupAddrs are ops addresses of recommend instances to try besides
	// the ones found through the consumer group.
	LookupAddrs []string
	// LookupSecret is the secret the processor instances share for store
	// lookups (stream.Config.LookupSecret).
	LookupSecret string
	// ClickHouse is the connection of the dashboard's queries (unless
	// Gateway.Dashboard is set); no address leaves the dashboard's
	// ClickHouse endpoints answering 503.
	ClickHouse chsink.ConnOptions
	// ReleasesWait bounds how long the event bridge waits for the release
	// table (titles) to load before it starts. Default 30s.
	ReleasesWait time.Duration
	// NoReleaseTitles: do not follow releases.v1. The table holds title,
	// artists and year of every release: on the order of 2 GB at Discogs
	// scale (~15M releases). Without it responses carry release ids only.
	NoReleaseTitles bool
	// OnListen runs once the server listens (the demo prints its link).
	OnListen func(addr string, s *Server)
}

// ConfigFromEnv reads the gateway's settings from the environment:
//
//	CRATESTREAM_GATEWAY_LISTEN   listen address (default :8080)
//	CRATESTREAM_PUBLIC_URL       base URL users reach the gateway at
//	CRATESTREAM_SESSION_SECRET   session signing key, at least 32 bytes (default: random per start)
//	CRATESTREAM_DEMO_USER        enables one-time demo login links for this user
//	CRATESTREAM_LOOKUP_ADDRS     extra recommend ops addresses, comma-separated
//	CRATESTREAM_LOOKUP_SECRET    the processors' shared store lookup secret
//	CRATESTREAM_CLICKHOUSE       ClickHouse native host:port of the dashboard
//	DISCOGS_CONSUMER_KEY, DISCOGS_CONSUMER_SECRET   the Discogs app (OAuth login)
//	DISCOGS_WEB_URL              where users authorize (default https://www.discogs.com)
//	CRATESTREAM_GATEWAY_TITLES   "off": no release titles (no copy of releases.v1 in memory)
func ConfigFromEnv(getenv func(string) string) (RunConfig, error) {
	rc := RunConfig{Listen: getenv("CRATESTREAM_GATEWAY_LISTEN")}
	if rc.Listen == "" {
		rc.Listen = ":8080"
	}
	g := &rc.Gateway
	g.PublicURL = getenv("CRATESTREAM_PUBLIC_URL")
	if sec := getenv("CRATESTREAM_SESSION_SECRET"); sec != "" {
		if len(sec) < 32 {
			return rc, errors.New("CRATESTREAM_SESSION_SECRET: want at least 32 bytes")
		}
		g.SessionSecret = []byte(sec)
	}
	g.SecureCookies = strings.HasPrefix(g.PublicURL, "https://")
	g.DemoUser = getenv("CRATESTREAM_DEMO_USER")
	if a := getenv("CRATESTREAM_CLICKHOUSE"); a != "" {
		rc.ClickHouse.Addr = []string{a}
	}
	rc.LookupSecret = getenv("CRATESTREAM_LOOKUP_SECRET")
	switch t := getenv("CRATESTREAM_GATEWAY_TITLES"); t {
	case "", "on":
	case "off":
		rc.NoReleaseTitles = true
	default:
		return rc, fmt.Errorf("CRATESTREAM_GATEWAY_TITLES: want on or off, not %q", t)
	}
	g.Discogs.ConsumerKey = getenv("DISCOGS_CONSUMER_KEY")
	g.Discogs.ConsumerSecret = getenv("DISCOGS_CONSUMER_SECRET")
	g.Discogs.WebURL = getenv("DISCOGS_WEB_URL")
	for _, a := range strings.Split(getenv("CRATESTREAM_LOOKUP_ADDRS"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			rc.LookupAddrs = append(rc.LookupAddrs, a)
		}
	}
	return rc, nil
}

// Run serves the gateway until ctx ends.
func Run(ctx context.Context, rc RunConfig) error {
	cfg := rc.Gateway
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger
	if len(cfg.SessionSecret) == 0 {
		cfg.SessionSecret = make([]byte, 32)
		if _, err := rand.Read(cfg.SessionSecret); err != nil {
			return err
		}
		log.Warn("gateway: no CRATESTREAM_SESSION_SECRET: sessions end when the gateway restarts")
	}
	if rc.Listen == "" {
		rc.Listen = ":8080"
	}
	if rc.ReleasesWait <= 0 {
		rc.ReleasesWait = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	// releasesCaught is closed once the release table has read what
	// releases.v1 held at start (or at once without a table of ours).
	releasesCaught := make(chan struct{})
	if len(rc.Brokers) > 0 && cfg.Releases == nil && !rc.NoReleaseTitles {
		tbl := stream.NewGlobalTable(ReleaseTopic(), stream.GlobalConfig{Brokers: rc.Brokers, ClientOpts: rc.KafkaOpts, Logger: log, ReadCommitted: true})
		cfg.Releases = tbl
		go func() { errc <- wrapErr("release table", tbl.Run(ctx)) }()
		go func() {
			select {
			case <-tbl.CaughtUp():
				log.Info("gateway: release titles loaded", "releases", tbl.Len())
			case <-time.After(rc.ReleasesWait):
				log.Warn("gateway: release titles still loading: early cart results show release ids only", "loaded", tbl.Len())
			case <-ctx.Done():
			}
			close(releasesCaught)
		}()
	} else {
		close(releasesCaught)
	}
	if len(rc.Brokers) > 0 {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(rc.Brokers...)}, rc.KafkaOpts...)...)
		if err != nil {
			return err
		}
		defer cl.Close()
		if cfg.Stores == nil {
			cfg.Stores = NewStoreClient(kadm.NewClient(cl), rc.LookupSecret, rc.LookupAddrs...)
		}
		if cfg.Similar == nil {
			models := recommend.NewModelStore(rc.Brokers, log, rc.KafkaOpts...)
			cfg.Similar = ModelSimilar(models)
			go func() { errc <- wrapErr("model store", models.Run(ctx)) }()
		}
	} else if cfg.Stores == nil && len(rc.LookupAddrs) > 0 {
		cfg.Stores = NewStoreClient(nil, rc.LookupSecret, rc.LookupAddrs...)
	}
	if len(rc.ClickHouse.Addr) > 0 && cfg.Dashboard == nil {
		co := rc.ClickHouse
		co.MaxOpenConns = 4
		conn, err := chsink.Open(ctx, co)
		if err != nil {
			return fmt.Errorf("gateway dashboard: %w", err)
		}
		defer conn.Close()
		cfg.Dashboard = chsink.NewQueries(conn, chsink.QueryOptions{})
	}
	s, err := New(cfg)
	if err != nil {
		return err
	}
	if len(rc.Brokers) > 0 {
		go func() {
			// Cart results are rendered as the bridge reads them: let the
			// titles load first (the bridge re-reads recent results on a
			// restart).
			<-releasesCaught
			errc <- wrapErr("event bridge", s.hub.Run(ctx, BridgeConfig{Brokers: rc.Brokers, Opts: rc.KafkaOpts, Lookback: rc.Lookback, Logger: log}))
		}()
	}
	ln, err := net.Listen("tcp", rc.Listen)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- wrapErr("http server", err)
	}()
	addr := ln.Addr().String()
	log.Info("gateway listening", "addr", addr, "public_url", cfg.PublicURL, "demo_user", cfg.DemoUser)
	if rc.OnListen != nil {
		rc.OnListen(addr, s)
	} else if cfg.DemoUser != "" {
		if link, err := s.DemoLink(); err == nil {
			if cfg.PublicURL == "" {
				link = "http://" + loopbackIfUnspecified(addr) + link
			}
			log.Info("gateway demo login (one-time link)", "user", cfg.DemoUser, "url", link)
		}
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	return first
}

func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("gateway %s: %w", what, err)
}

// loopbackIfUnspecified turns ":8080" or "[::]:8080" into a dialable
// "127.0.0.1:8080".
func loopbackIfUnspecified(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

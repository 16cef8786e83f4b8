// Package gateway is cratestream's HTTP edge: the JSON API the web UI and
// other clients use to ask for carts and profile syncs, follow their
// progress live (Server-Sent Events bridged from request-status.v1 and
// carts.v1), read recommendations and similar releases from the running
// recommend processor, and log in with Discogs (OAuth 1.0a) or, in the demo,
// through a one-time link.
//
// Every route is listed once in Routes(): the mux registers exactly that
// list and a test checks it against schemas/openapi.yaml.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// Producer is what the gateway needs of a Kafka client (a *kgo.Client).
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// StatusStore is where request statuses live (a *redis.Store).
type StatusStore interface {
	Status(ctx context.Context, request string) (*pb.RequestStatus, bool, error)
	SetStatus(ctx context.Context, st *pb.RequestStatus) error
}

// StoreReader reads a running processor's store by key (a *StoreClient).
type StoreReader interface {
	Get(ctx context.Context, processor, store string, key []byte) ([]byte, bool, error)
}

// SimilarFunc returns up to n releases most similar to release with their
// scores (recommend.Model.Similar of the current model); ErrUnknown when
// the model does not know the release, ErrUnavailable before a model.
type SimilarFunc func(release int64, n int) ([]int64, []float32, error)

var (
	// ErrUnknown is what a SimilarFunc returns for a release it cannot answer for.
	ErrUnknown = errors.New("unknown")
	// ErrUnavailable is what a SimilarFunc returns before it can answer at all.
	ErrUnavailable = errors.New("unavailable")
)

// Config configures a Server.
type Config struct {
	// PublicURL is the base URL users reach the gateway at
	// ("http://localhost:8080"): OAuth callbacks and absolute links. Empty
	// derives it from each request's Host.
	PublicURL string

	Producer Producer
	Status   StatusStore
	Stores   StoreReader
	Similar  SimilarFunc
	// Releases adds titles, artists and years to the releases of carts,
	// recommendations and similar releases (Run follows releases.v1 in a
	// global table); nil shows ids only.
	Releases ReleaseLookup

	// SessionSecret signs session tokens (at least 32 bytes; Run
	// generates one when empty, which logs everyone out on restart).
	SessionSecret []byte
	// SessionTTL is how long a session lasts. Default 7 days.
	SessionTTL time.Duration
	// SecureCookies marks the session cookie Secure (behind TLS); an https
	// PublicURL turns it on.
	SecureCookies bool

	Discogs DiscogsConfig
	// DemoUser enables the demo login: DemoLink mints one-time links that
	// log in as this user.
	DemoUser string
	// SyncUnavailable, when set, is why this deployment cannot sync
	// profiles (the demo runs no importer): the sync endpoint answers 503
	// with it and /api/v1/me reports it, so the UI can say so up front.
	SyncUnavailable string

	// RatePerSecond and RateBurst bound each user's (or, before login,
	// each client address's) requests. Defaults 10/s, burst 40.
	RatePerSecond float64
	RateBurst     int
	// MaxBodyBytes bounds request bodies. Default 64 KiB.
	MaxBodyBytes int64

	// MaxRequests bounds how many requests the event bridge remembers
	// (statuses, results, SSE backlogs). Default 5000.
	MaxRequests int
	// BacklogPerRequest bounds each request's SSE backlog. Default 256.
	BacklogPerRequest int
	// KeepAlive is the SSE comment interval. Default 15s.
	KeepAlive time.Duration
	// MaxStreamsPerUser bounds each user's open SSE streams (each holds a
	// connection, a goroutine and keeps its request in the hub). Default 16.
	MaxStreamsPerUser int

	// UI, when set, serves everything outside the API (the web UI).
	UI http.Handler

	// Dashboard answers the market and recommendation-quality endpoints
	// (a *chsink.Queries); nil makes them 503.
	Dashboard Dashboard
	// Metrics is the Prometheus registry of the processors running in this
	// process: the pipeline endpoint reads it (nil makes it 503).
	Metrics prometheus.Gatherer

	Logger *slog.Logger
	Now    func() time.Time
}

func (c *Config) defaults() {
	if c.SessionTTL <= 0 {
		c.SessionTTL = 7 * 24 * time.Hour
	}
	if c.RatePerSecond <= 0 {
		c.RatePerSecond = 10
	}
	if c.RateBurst <= 0 {
		c.RateBurst = 40
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.MaxRequests <= 0 {
		c.MaxRequests = 5000
	}
	if c.BacklogPerRequest <= 0 {
		c.BacklogPerRequest = 256
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 15 * time.Second
	}
	if c.MaxStreamsPerUser <= 0 {
		c.MaxStreamsPerUser = 16
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Discogs.defaults()
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if strings.HasPrefix(strings.ToLower(c.PublicURL), "https://") {
		c.SecureCookies = true
	}
}

// Server is the gateway.
type Server struct {
	cfg     Config
	hub     *Hub
	limiter *limiter
	auth    *authState
	mux     *http.ServeMux
	http    *http.Client
	// csrf refuses state-changing requests a browser sends from another
	// origin (a cross-site form POST carrying the session cookie).
	csrf *http.CrossOriginProtection

	pipeline pipelineState

	streamsMu sync.Mutex
	streams   map[string]int // open SSE streams per user
}

// New returns a server. Its Hub is fed by RunBridge (or, in tests, by
// Hub().Apply).
func New(cfg Config) (*Server, error) {
	cfg.defaults()
	if len(cfg.SessionSecret) < 32 {
		return nil, errors.New("gateway: SessionSecret must be at least 32 bytes")
	}
	s := &Server{
		cfg:     cfg,
		hub:     NewHub(cfg.MaxRequests, cfg.BacklogPerRequest),
		limiter: newLimiter(cfg.RatePerSecond, cfg.RateBurst, cfg.Now),
		auth:    newAuthState(),
		mux:     http.NewServeMux(),
		http:    &http.Client{Timeout: 15 * time.Second},
		csrf:    http.NewCrossOriginProtection(),
		streams: make(map[string]int),
	}
	if cfg.PublicURL != "" {
		// Behind a proxy that rewrites Host the page's origin is the public URL.
		_ = s.csrf.AddTrustedOrigin(cfg.PublicURL)
	}
	s.hub.releases = cfg.Releases
	handlers := s.handlers()
	for _, rt := range Routes() {
		h, ok := handlers[rt.key()]
		if !ok {
			return nil, fmt.Errorf("gateway: no handler for %s %s", rt.Method, rt.Path)
		}
		s.mux.Handle(rt.Method+" "+rt.Path, s.wrap(rt, h))
	}
	if len(handlers) != len(Routes()) {
		return nil, errors.New("gateway: handlers without a route")
	}
	s.mux.HandleFunc("/", s.fallback)
	return s, nil
}

// fallback answers what no route matches: 405 for a route's path with
// another method, the UI (when there is one) or a JSON 404.
func (s *Server) fallback(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pat := s.mux.Handler(r2); pat != "/" && pat != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, r.Method+" not allowed on "+r.URL.Path+" (allowed: "+strings.Join(allow, ", ")+")", "")
		return
	}
	if s.cfg.UI != nil {
		s.cfg.UI.ServeHTTP(w, r)
		return
	}
	writeError(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path, "")
}

// Hub is the server's event bridge.
func (s *Server) Hub() *Hub { return s.hub }

// ServeHTTP serves the gateway.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Route is one API route.
type Route struct {
	Method string
	// Path is a net/http pattern path, which is also the OpenAPI path
	// ("/api/v1/carts/{request_id}").
	Path    string
	Summary string
	// Public routes need no session.
	Public bool
	// NoLimit routes skip the rate limiter (health checks).
	NoLimit bool
}

func (r Route) key() string { return r.Method + " " + r.Path }

// Routes is every route the gateway serves.
func Routes() []Route {
	return []Route{
		{Method: "GET", Path: "/healthz", Summary: "liveness", Public: true, NoLimit: true},
		{Method: "GET", Path: "/auth/login", Summary: "start the Discogs OAuth 1.0a login", Public: true},
		{Method: "GET", Path: "/auth/callback", Summary: "Discogs OAuth callback: issues the session", Public: true},
		{Method: "GET", Path: "/auth/demo", Summary: "one-time demo login link", Public: true},
		{Method: "POST", Path: "/auth/logout", Summary: "clear the session cookie", Public: true},
		{Method: "GET", Path: "/api/v1/me", Summary: "the logged-in user"},
		{Method: "POST", Path: "/api/v1/carts", Summary: "ask for carts"},
		{Method: "GET", Path: "/api/v1/carts/{request_id}", Summary: "a cart request's status and result"},
		{Method: "GET", Path: "/api/v1/requests/{request_id}", Summary: "a request's status (sync or cart)"},
		{Method: "GET", Path: "/api/v1/requests/{request_id}/events", Summary: "a request's statuses and result as Server-Sent Events"},
		{Method: "POST", Path: "/api/v1/users/{username}/sync", Summary: "sync the user's Discogs wantlist and collection"},
		{Method: "GET", Path: "/api/v1/users/{username}/recommendations", Summary: "the user's recommendations"},
		{Method: "GET", Path: "/api/v1/releases/{id}/similar", Summary: "releases similar to a release"},
		{Method: "GET", Path: "/api/v1/dashboard/market", Summary: "live listings by media grade, ships-from country and currency"},
		{Method: "GET", Path: "/api/v1/dashboard/releases/{id}/prices", Summary: "price distribution of a release's live listings"},
		{Method: "GET", Path: "/api/v1/dashboard/rec-quality", Summary: "online recommendation quality by model version and cascade level"},
		{Method: "GET", Path: "/api/v1/dashboard/pipeline", Summary: "stream processors' throughput, lag and dead letters"},
	}
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, user string)

func (s *Server) handlers() map[string]handlerFunc {
	return map[string]handlerFunc{
		"GET /healthz":                                 s.healthz,
		"GET /auth/login":                              s.login,
		"GET /auth/callback":                           s.callback,
		"GET /auth/demo":                               s.demoLogin,
		"POST /auth/logout":                            s.logout,
		"GET /api/v1/me":                               s.me,
		"POST /api/v1/carts":                           s.postCart,
		"GET /api/v1/carts/{request_id}":               s.getCart,
		"GET /api/v1/requests/{request_id}":            s.getRequest,
		"GET /api/v1/requests/{request_id}/events":     s.events,
		"POST /api/v1/users/{username}/sync":           s.postSync,
		"GET /api/v1/users/{username}/recommendations": s.recommendations,
		"GET /api/v1/releases/{id}/similar":            s.similar,
		"GET /api/v1/dashboard/market":                 s.dashMarket,
		"GET /api/v1/dashboard/releases/{id}/prices":   s.dashPrices,
		"GET /api/v1/dashboard/rec-quality":            s.dashRecQuality,
		"GET /api/v1/dashboard/pipeline":               s.dashPipeline,
	}
}

// wrap adds body limits, cross-origin (CSRF) protection, authentication
// and rate limiting.
func (s *Server) wrap(rt Route, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		if err := s.csrf.Check(r); err != nil {
			writeError(w, http.StatusForbidden, "cross-origin "+r.Method+" refused: "+err.Error(), "")
			return
		}
		user, authErr := s.sessionUser(r)
		if !rt.NoLimit {
			key := "ip:" + clientIP(r)
			if user != "" {
				key = "user:" + user
			}
			if ok, retry := s.limiter.allow(key); !ok {
				secs := int(retry/time.Second) + 1
				w.Header().Set("Retry-After", fmt.Sprint(secs))
				writeError(w, http.StatusTooManyRequests, fmt.Sprintf("rate limit exceeded: retry in %ds", secs), "")
				return
			}
		}
		if !rt.Public && user == "" {
			msg := "log in first (session cookie or Authorization: Bearer <token>)"
			if authErr != nil {
				msg = authErr.Error()
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="cratestream"`)
			writeError(w, http.StatusUnauthorized, msg, "")
			return
		}
		h(w, r, user)
	})
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ string) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// baseURL is the public base URL of the gateway.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

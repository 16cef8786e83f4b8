// Package scraper is the marketplace scraper worker: it consumes
// scrape-requests.v1, fetches each release's marketplace pages over HTTP
// (per-host rate limit, bounded concurrency, timeouts, retries with backoff
// and jitter on 429/5xx honouring Retry-After), parses them, and produces the
// listings and sellers it found — and tombstones for the release's listings
// that are no longer on the page. It then records the scrape's freshness in
// Redis (the authority the cart builder checks) and emits scrape-done with
// the listings.v1 end offsets it produced, so a consumer can wait until its
// listing table has caught up with them.
package scraper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"

	"github.com/cratestream/cratestream/connectors/discogs/marketplace"
	"github.com/cratestream/cratestream/connectors/redis"
)

// Config configures a Scraper.
type Config struct {
	// BaseURL of the marketplace; default https://www.discogs.com.
	BaseURL   string
	UserAgent string
	// HTTPClient defaults to one with the RequestTimeout.
	HTTPClient *http.Client
	// RequestTimeout bounds one page fetch. Default 20s.
	RequestTimeout time.Duration
	// PerHostRate is requests per second per host (default 1) with a
	// burst of PerHostBurst (default 2).
	PerHostRate  float64
	PerHostBurst int
	// Concurrency bounds the pages in flight across releases. Default 4.
	Concurrency int
	// MaxRetries of one page on 429, 5xx, timeouts, truncated bodies.
	// Default 5.
	MaxRetries int
	// BackoffMin and BackoffMax bound the exponential backoff. Default
	// 500ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// MaxPageBytes bounds a response body. Default 16 MiB.
	MaxPageBytes int64
	// PerPage is the listings per page asked for. Default 250.
	PerPage int
	// Redis keeps freshness and each release's listing ids; required.
	Redis *redis.Store
	// Producer writes listings, sellers and scrape-done; required.
	Producer *kgo.Client
	Logger   *slog.Logger
	Metrics  prometheus.Registerer
	Now      func() time.Time
	// Sleep waits (tests make it instant); default a context-aware sleep.
	Sleep func(context.Context, time.Duration) error
}

// Scraper scrapes releases.
type Scraper struct {
	cfg      Config
	base     *url.URL
	sem      chan struct{}
	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	m        metrics
}

type metrics struct {
	pages, retries *prometheus.CounterVec
	scrapes        *prometheus.CounterVec
	listings       prometheus.Counter
	duration       prometheus.Histogram
}

// New returns a scraper.
func New(cfg Config) (*Scraper, error) {
	if cfg.Redis == nil || cfg.Producer == nil {
		return nil, errors.New("scraper: Redis and producer are required")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://www.discogs.com"
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("scraper: bad base URL %q", cfg.BaseURL)
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "cratestream-scraper/1.0 (+https://github.com/cratestream/cratestream)"
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 20 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.RequestTimeout}
	}
	if cfg.PerHostRate <= 0 {
		cfg.PerHostRate = 1
	}
	if cfg.PerHostBurst <= 0 {
		cfg.PerHostBurst = 2
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 5
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = 500 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 30 * time.Second
	}
	if cfg.MaxPageBytes <= 0 {
		cfg.MaxPageBytes = 16 << 20
	}
	if cfg.PerPage <= 0 {
		cfg.PerPage = 250
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		}
	}
	s := &Scraper{cfg: cfg, base: base, sem: make(chan struct{}, cfg.Concurrency), limiters: make(map[string]*rate.Limiter)}
	s.m = metrics{
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_scraper_pages_total", Help: "Marketplace pages fetched, by result (ok, failed).",
		}, []string{"result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_scraper_retries_total", Help: "Page fetches retried, by cause.",
		}, []string{"cause"}),
		scrapes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_scraper_scrapes_total", Help: "Release scrapes, by result (ok, failed).",
		}, []string{"result"}),
		listings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cratestream_scraper_listings_total", Help: "Listings produced (including tombstones).",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cratestream_scraper_scrape_seconds", Help: "Duration of a release scrape.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
	}
	for _, c := range []prometheus.Collector{s.m.pages, s.m.retries, s.m.scrapes, s.m.listings, s.m.duration} {
		if err := cfg.Metrics.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return s, nil
}

func (s *Scraper) limiter(host string) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.limiters[host]
	if !ok {
		l = rate.NewLimiter(rate.Limit(s.cfg.PerHostRate), s.cfg.PerHostBurst)
		s.limiters[host] = l
	}
	return l
}

// PageURL is the marketplace page of a release.
func (s *Scraper) PageURL(release int64, page int) string {
	u := s.base.JoinPath("sell", "release", strconv.FormatInt(release, 10))
	q := url.Values{"limit": {strconv.Itoa(s.cfg.PerPage)}, "sort": {"price,asc"}}
	if page > 1 {
		q.Set("page", strconv.Itoa(page))
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// errPermanent marks a fetch failure a retry cannot fix.
type errPermanent struct{ err error }

func (e *errPermanent) Error() string { return e.err.Error() }
func (e *errPermanent) Unwrap() error { return e.err }

// fetchPage gets and parses one page, retrying transient failures.
func (s *Scraper) fetchPage(ctx context.Context, release int64, page int, now time.Time) (*marketplace.Page, error) {
	target := s.PageURL(release, page)
	backoff := s.cfg.BackoffMin
	var last error
	for attempt := 0; attempt <= s.cfg.MaxRetries; attempt++ {
		if attempt > 0 {
			if err := s.cfg.Sleep(ctx, backoff); err != nil {
				return nil, err
			}
			backoff = min(2*backoff, s.cfg.BackoffMax)
		}
		p, wait, err := s.tryPage(ctx, target, release, now)
		if err == nil {
			s.m.pages.WithLabelValues("ok").Inc()
			return p, nil
		}
		last = err
		var perm *errPermanent
		if errors.As(err, &perm) || ctx.Err() != nil {
			break
		}
		if wait > 0 {
			backoff = min(wait, s.cfg.BackoffMax*4) // the server said how long
		} else {
			backoff = jitter(backoff)
		}
		s.cfg.Logger.Debug("page fetch failed; retrying", "url", target, "attempt", attempt+1, "in", backoff, "err", err)
	}
	s.m.pages.WithLabelValues("failed").Inc()
	var pe *parseError
	if errors.As(last, &pe) && ctx.Err() == nil {
		// Retrying did not help: the page itself is what the parser
		// cannot read. Keep it, with the reason, for whoever updates the
		// parser.
		s.deadLetterPage(ctx, release, page, target, pe, now)
	}
	return nil, fmt.Errorf("fetch %s: %w", target, last)
}

// parseError is a page that came whole (HTTP 200, full body) but did not
// parse: its body goes to the dead-letter topic when retries do not help.
type parseError struct {
	body []byte
	err  error
}

func (e *parseError) Error() string { return "parse: " + e.err.Error() }
func (e *parseError) Unwrap() error { return e.err }

func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d)/2+1))
}

// tryPage is one attempt; wait is the server's Retry-After, if any.
func (s *Scraper) tryPage(ctx context.Context, target string, release int64, now time.Time) (*marketplace.Page, time.Duration, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	defer func() { <-s.sem }()
	if err := s.limiter(s.base.Host).Wait(ctx); err != nil {
		return nil, 0, err
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, 0, &errPermanent{err}
	}
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	req.Header.Set("Accept", "text/html")
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		s.m.retries.WithLabelValues("network").Inc()
		return nil, 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		s.m.retries.WithLabelValues(strconv.Itoa(resp.StatusCode)).Inc()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, retryAfter(resp.Header.Get("Retry-After"), s.cfg.Now()), fmt.Errorf("HTTP %s", resp.Status)
	case resp.StatusCode == http.StatusNotFound:
		return nil, 0, &errPermanent{fmt.Errorf("release %d has no marketplace page (HTTP 404)", release)}
	case resp.StatusCode != http.StatusOK:
		return nil, 0, &errPermanent{fmt.Errorf("HTTP %s", resp.Status)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxPageBytes+1))
	if err != nil {
		// A connection cut mid-body (truncated response).
		s.m.retries.WithLabelValues("truncated").Inc()
		return nil, 0, fmt.Errorf("read body: %w", err)
	}
	if int64(len(body)) > s.cfg.MaxPageBytes {
		return nil, 0, &errPermanent{fmt.Errorf("page larger than %d bytes", s.cfg.MaxPageBytes)}
	}
	p, err := marketplace.Parse(bytesReader(body), marketplace.Options{ReleaseID: release, Now: now, Source: "scraper"})
	if err != nil {
		// Markup that does not parse may be a truncated page: retry;
		// if it persists, the error names what changed.
		s.m.retries.WithLabelValues("parse").Inc()
		return nil, 0, &parseError{body: body, err: err}
	}
	return p, 0, nil
}

func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if secs, err := strconv.Atoi(h); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Package api is a small Discogs API v2 client for what profile sync needs:
// a user's wantlist and collection (folder 0), fetched page by page with
// bounded concurrency, paced by Discogs' rate-limit headers, and mapped to
// pb.Interaction records.
//
// Authentication is either a personal access token or OAuth 1.0a
// (HMAC-SHA1 or PLAINTEXT). Every request carries the configured
// User-Agent, because Discogs rejects anonymous clients.
//
// Retries: 429 waits for Retry-After (or an exponential, jittered backoff)
// and pauses every request of the Client, since the limit is per account;
// 5xx and transport errors back off and retry the one request; other 4xx
// are returned as *APIError at once.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultBaseURL is the public Discogs API.
const DefaultBaseURL = "https://api.discogs.com"

const (
	// maxPerPage is the largest page Discogs serves for these endpoints.
	maxPerPage = 100
	// maxBody bounds what we read of one response: a full page of 100
	// collection items is ~110 KiB, so this only stops a runaway server.
	maxBody = 16 << 20
)

// Sentinel errors; an *APIError unwraps to one of them according to its
// status, so callers can use errors.Is without knowing about APIError.
var (
	// ErrNotFound: the user (or resource) does not exist (404).
	ErrNotFound = errors.New("discogs: not found")
	// ErrForbidden: the resource is private, e.g. a collection the
	// authenticated user may not see (403).
	ErrForbidden = errors.New("discogs: forbidden (private)")
	// ErrUnauthorized: the token or OAuth credentials were refused (401).
	ErrUnauthorized = errors.New("discogs: unauthorized")
	// ErrRateLimited: still 429 after all retries.
	ErrRateLimited = errors.New("discogs: rate limited")
	// ErrListChanged: the list changed while it was being fetched (its
	// declared size moved, a page went out of range, or the item count does
	// not add up). Pages already delivered are valid, but Summary.ReleaseIDs
	// may miss items that moved between pages: do not derive removals from
	// it; sync again later.
	ErrListChanged = errors.New("discogs: list changed during fetch")
)

// errTooLarge is not retried: the same page would be as large again.
var errTooLarge = fmt.Errorf("response larger than %d bytes", maxBody)

// APIError is a non-2xx answer from Discogs.
type APIError struct {
	StatusCode int
	// Message is Discogs' JSON {"message": ...} when present, else the
	// start of the body.
	Message string
	// URL is the request URL (it never carries credentials: they travel in
	// the Authorization header).
	URL string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("discogs: GET %s: HTTP %d: %s", e.URL, e.StatusCode, e.Message)
}

// Unwrap maps the status to a sentinel error.
func (e *APIError) Unwrap() error {
	switch e.StatusCode {
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusTooManyRequests:
		return ErrRateLimited
	}
	return nil
}

// Config configures a Client. Zero values get the documented defaults.
type Config struct {
	// BaseURL defaults to DefaultBaseURL; tests point it at httptest.
	BaseURL string
	// UserAgent is required: Discogs refuses requests without one.
	UserAgent string
	// Token is a personal access token. Mutually exclusive with OAuth;
	// with neither, requests are anonymous (lower limit, public data only).
	Token string
	OAuth *OAuth1
	// Concurrency bounds the requests in flight across the whole Client
	// (all calls together), retries included. Default 2.
	Concurrency int
	// PerPage is the page size, 1..100. Default 100.
	PerPage int
	// MaxRetries is how many times a 429/5xx/transport failure is retried.
	// Default 5; negative disables retries.
	MaxRetries int
	// HTTPClient defaults to a client with a 60 s timeout.
	HTTPClient *http.Client
	// Now and Sleep are the clock; tests inject fakes so that pacing and
	// backoff never sleep for real. Sleep must return ctx.Err() when ctx is
	// done first.
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
}

// Client talks to the Discogs API. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	userAgent  string
	token      string
	oauth      *OAuth1
	perPage    int
	maxRetries int
	hc         *http.Client
	now        func() time.Time
	sleep      func(context.Context, time.Duration) error
	sem        chan struct{}
	pacer      *pacer
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("discogs: base URL: %w", err)
	}
	if base.Scheme != "http" && base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("discogs: base URL %q: want http(s)://host", cfg.BaseURL)
	}
	if base.Path == "" {
		// JoinPath on a bare host would give "users/…"; the request line
		// and the OAuth base string need the leading slash.
		base.Path = "/"
	}
	if strings.TrimSpace(cfg.UserAgent) == "" {
		return nil, errors.New("discogs: a User-Agent is required")
	}
	if cfg.Token != "" && cfg.OAuth != nil {
		return nil, errors.New("discogs: set either Token or OAuth, not both")
	}
	if cfg.OAuth != nil {
		if err := cfg.OAuth.validate(); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.Concurrency < 0:
		return nil, fmt.Errorf("discogs: concurrency %d is negative", cfg.Concurrency)
	case cfg.Concurrency == 0:
		cfg.Concurrency = 2
	}
	switch {
	case cfg.PerPage < 0 || cfg.PerPage > maxPerPage:
		return nil, fmt.Errorf("discogs: per_page %d outside 1..%d", cfg.PerPage, maxPerPage)
	case cfg.PerPage == 0:
		cfg.PerPage = maxPerPage
	}
	switch {
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = 5
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	return &Client{
		base:       base,
		userAgent:  cfg.UserAgent,
		token:      cfg.Token,
		oauth:      cfg.OAuth,
		perPage:    cfg.PerPage,
		maxRetries: cfg.MaxRetries,
		hc:         cfg.HTTPClient,
		now:        cfg.Now,
		sleep:      cfg.Sleep,
		sem:        make(chan struct{}, cfg.Concurrency),
		pacer:      newPacer(),
	}, nil
}

// apiError builds the error of a non-2xx answer.
func apiError(u *url.URL, status int, body []byte) *APIError {
	e := &APIError{StatusCode: status, URL: u.Redacted()}
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &m) == nil && m.Message != "" {
		e.Message = m.Message
	} else {
		e.Message = strings.TrimSpace(string(body[:min(len(body), 200)]))
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// get performs GET u with pacing and retries and returns the body of a 2xx
// answer; any other final answer is an *APIError.
func (c *Client) get(ctx context.Context, u *url.URL) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		body, status, hdr, err := c.attempt(ctx, u)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("discogs: GET %s: %w", u.Redacted(), ctx.Err())
		}
		var wait time.Duration
		switch {
		case errors.Is(err, errTooLarge):
			return nil, err
		case err != nil:
			// Transport failure (reset, timeout): the server may be fine.
			wait = backoff(attempt)
		case status >= 200 && status < 300:
			return body, nil
		case status == http.StatusTooManyRequests:
			// The limit is per account, so every request of this Client
			// waits, not only this one; the pause is applied in attempt.
			wait = retryAfter(hdr, c.now())
			if wait < 0 {
				wait = backoff(attempt)
			}
			c.pacer.pause(c.now().Add(wait))
			wait = 0
			err = apiError(u, status, body)
		case status >= 500:
			wait = backoff(attempt)
			err = apiError(u, status, body)
		default:
			return nil, apiError(u, status, body)
		}
		if attempt >= c.maxRetries {
			return nil, fmt.Errorf("discogs: giving up after %d attempts: %w", attempt+1, err)
		}
		if wait > 0 {
			if err := c.sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("discogs: GET %s: %w", u.Redacted(), err)
			}
		}
	}
}

// attempt sends one request while holding a concurrency slot. A non-nil
// error is a transport failure; HTTP statuses are returned as is.
func (c *Client) attempt(ctx context.Context, u *url.URL) ([]byte, int, http.Header, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, nil, ctx.Err()
	}
	defer func() { <-c.sem }()

	// The slot is held while pacing: a paced request is still "ours", and
	// holding it keeps the in-flight estimate of the pacer honest.
	wait := c.pacer.reserve(c.now())
	defer c.pacer.done()
	if wait > 0 {
		if err := c.sleep(ctx, wait); err != nil {
			return nil, 0, nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, nil, err
	}
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/vnd.discogs.v2.discogs+json")
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Discogs token="+c.token)
	case c.oauth != nil:
		// Signed per attempt: a retry needs a fresh nonce and timestamp.
		h, err := c.oauth.authorization(http.MethodGet, u, nil, c.oauth.nonce(), c.now().Unix())
		if err != nil {
			return nil, 0, nil, err
		}
		req.Header.Set("Authorization", h)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, 0, nil, err
	}
	if len(body) > maxBody {
		return nil, 0, nil, fmt.Errorf("discogs: GET %s: %w", u.Redacted(), errTooLarge)
	}
	c.pacer.observe(resp.StatusCode, resp.Header)
	return body, resp.StatusCode, resp.Header, nil
}

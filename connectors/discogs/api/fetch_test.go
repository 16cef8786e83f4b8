package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

type fetchFunc func(*Client, context.Context, string, func(PageResult) error) (Summary, error)

var lists = []struct {
	name  string
	l     list
	fetch fetchFunc
	path  string
	pages int
	items int
}{
	{"wantlist", listWants, (*Client).Wantlist, "/users/brotherlogic/wants", 3, 286},
	{"collection", listCollection, (*Client).Collection, "/users/brotherlogic/collection/folders/0/releases", 32, 3104},
}

// collector records what onPage received; onPage is documented as never
// concurrent, so the mutex only guards against a regression (and -race
// would flag one).
type collector struct {
	mu    sync.Mutex
	pages []int
	items int
	evs   []*pb.Interaction
}

func (c *collector) onPage(p PageResult) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pages = append(c.pages, p.Page)
	c.items += len(p.Items)
	c.evs = append(c.evs, p.Interactions...)
	return nil
}

func TestFetchWholeLists(t *testing.T) {
	f := newFakeDiscogs(t)
	for _, tc := range lists {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newTestClient(t, f, func(cfg *Config) { cfg.Concurrency = 3 })
			var got collector
			sum, err := tc.fetch(c, context.Background(), user, got.onPage)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Pages != tc.pages || sum.Items != tc.items || sum.Fetched != tc.items || got.items != tc.items {
				t.Errorf("summary %+v, callback items %d; want %d items in %d pages", sum, got.items, tc.items, tc.pages)
			}
			slices.Sort(got.pages)
			if want := seq(1, tc.pages); !slices.Equal(got.pages, want) {
				t.Errorf("pages delivered %v, want each of 1..%d once", got.pages, tc.pages)
			}
			if !slices.Equal(sum.ReleaseIDs, f.ids[tc.l]) {
				t.Errorf("release ids: got %d, server served %d distinct", len(sum.ReleaseIDs), len(f.ids[tc.l]))
			}
			ids := map[string]bool{}
			for _, ev := range got.evs {
				if ids[ev.EventId] {
					t.Fatalf("duplicate event id %s (%v)", ev.EventId, ev)
				}
				ids[ev.EventId] = true
				if ev.UserId != user || ev.ReleaseId <= 0 || ev.EventTimeMs <= 0 {
					t.Fatalf("bad event %v", ev)
				}
			}
			if sum.Unmapped != 0 || len(got.evs) < tc.items {
				t.Errorf("%d events for %d items, %d unmapped", len(got.evs), tc.items, sum.Unmapped)
			}
			// The real headers leave 55 requests: no pacing, no retries.
			if s := clk.slept(); len(s) != 0 {
				t.Errorf("slept %v", s)
			}
		})
	}
}

// A re-sync of an unchanged list yields the very same events.
func TestResyncIsIdentical(t *testing.T) {
	f := newFakeDiscogs(t)
	c, _ := newTestClient(t, f, nil)
	var a, b collector
	if _, err := c.Collection(context.Background(), user, a.onPage); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Collection(context.Background(), user, b.onPage); err != nil {
		t.Fatal(err)
	}
	key := func(evs []*pb.Interaction) []string {
		var out []string
		for _, ev := range evs {
			out = append(out, ev.String())
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(key(a.evs), key(b.evs)) {
		t.Fatal("two syncs of the same collection produced different events")
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		fail       []int              // statuses of the first answers
		header     map[string]string  // extra headers on failures
		maxRetries int                // 0: default
		wantSleeps [][2]time.Duration // bounds of each sleep
		wantErr    error              // nil: success expected
		wantStatus int                // of the APIError when failing
	}{
		{
			name: "429 with Retry-After", fail: []int{429}, header: map[string]string{"Retry-After": "7"},
			wantSleeps: [][2]time.Duration{{7 * time.Second, 7 * time.Second}},
		},
		{
			name: "429 without Retry-After backs off", fail: []int{429},
			wantSleeps: [][2]time.Duration{{500 * time.Millisecond, time.Second}},
		},
		{
			name: "500 then success", fail: []int{500},
			wantSleeps: [][2]time.Duration{{500 * time.Millisecond, time.Second}},
		},
		{
			name: "502 and 503 back off exponentially", fail: []int{502, 503},
			wantSleeps: [][2]time.Duration{{500 * time.Millisecond, time.Second}, {time.Second, 2 * time.Second}},
		},
		{
			name: "500 until retries run out", fail: []int{500, 500, 500}, maxRetries: 2,
			wantSleeps: [][2]time.Duration{{500 * time.Millisecond, time.Second}, {time.Second, 2 * time.Second}},
			wantStatus: 500,
		},
		{
			name: "429 until retries run out", fail: []int{429, 429}, maxRetries: 1,
			header:     map[string]string{"Retry-After": "2"},
			wantSleeps: [][2]time.Duration{{2 * time.Second, 2 * time.Second}},
			wantErr:    ErrRateLimited, wantStatus: 429,
		},
		{
			name: "400 is not retried", fail: []int{400}, wantStatus: 400,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDiscogs(t)
			f.setHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
				if n >= len(tc.fail) {
					return false
				}
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				writeJSON(w, tc.fail[n], http.StatusText(tc.fail[n]))
				return true
			})
			c, clk := newTestClient(t, f, func(cfg *Config) { cfg.Concurrency = 1; cfg.MaxRetries = tc.maxRetries })
			sum, err := c.Wantlist(context.Background(), user, nil)
			if tc.wantStatus != 0 {
				var ae *APIError
				if !errors.As(err, &ae) || ae.StatusCode != tc.wantStatus {
					t.Fatalf("error %v, want APIError %d", err, tc.wantStatus)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v is not %v", err, tc.wantErr)
				}
			} else if err != nil || sum.Fetched != 286 {
				t.Fatalf("summary %+v, error %v", sum, err)
			}
			s := clk.slept()
			if len(s) != len(tc.wantSleeps) {
				t.Fatalf("slept %v, want %d sleeps", s, len(tc.wantSleeps))
			}
			for i, b := range tc.wantSleeps {
				if s[i] < b[0] || s[i] > b[1] {
					t.Errorf("sleep %d = %v, want within %v", i, s[i], b)
				}
			}
		})
	}
}

// The server reports a given remaining budget on every answer; with one
// request at a time, the gap between consecutive requests as seen by the
// server (on the fake clock) is the pacing.
func TestRateLimitPacing(t *testing.T) {
	tests := []struct {
		name, remaining string
		wantGap         time.Duration
	}{
		{"plenty left (real capture)", "55", 0},
		{"low: spread over the window", "9", rateWindow / 10},
		{"none left: wait instead of firing", "0", rateWindow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDiscogs(t)
			f.headers.Set("X-Discogs-Ratelimit-Remaining", tc.remaining)
			c, clk := newTestClient(t, f, func(cfg *Config) { cfg.Concurrency = 1 })
			if _, err := c.Wantlist(context.Background(), user, nil); err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()
			if len(reqs) != 3 {
				t.Fatalf("%d requests, want 3 (no 429 retries)", len(reqs))
			}
			for i := 1; i < len(reqs); i++ {
				if gap := reqs[i].at.Sub(reqs[i-1].at); gap != tc.wantGap {
					t.Errorf("request %d came %v after the previous one, want %v", i+1, gap, tc.wantGap)
				}
			}
			if tc.wantGap == 0 && len(clk.slept()) != 0 {
				t.Errorf("slept %v", clk.slept())
			}
		})
	}
}

// A 429 pauses every worker, not only the one that got it.
func TestRateLimit429PausesAllWorkers(t *testing.T) {
	f := newFakeDiscogs(t)
	var once sync.Once
	f.setHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
		first := false
		if r.URL.Query().Get("page") == "5" {
			once.Do(func() { first = true })
		}
		if first {
			w.Header().Set("Retry-After", "30")
			writeJSON(w, 429, "You are making requests too quickly.")
			return true
		}
		return false
	})
	c, clk := newTestClient(t, f, func(cfg *Config) { cfg.Concurrency = 1 })
	if _, err := c.Collection(context.Background(), user, nil); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	var at429 time.Time
	for i, r := range reqs {
		q, _ := url.ParseQuery(r.query)
		if q.Get("page") == "5" && at429.IsZero() {
			at429 = r.at
			if next := reqs[i+1].at; next.Sub(at429) < 30*time.Second {
				t.Fatalf("request after the 429 came %v later, want >= 30s", next.Sub(at429))
			}
		}
	}
	if at429.IsZero() || !slices.Contains(clk.slept(), 30*time.Second) {
		t.Fatalf("no 30 s pause: slept %v", clk.slept())
	}
}

func TestAuthHeaders(t *testing.T) {
	const nonce = "fixed-nonce"
	creds := OAuth1{ConsumerKey: "ckey", ConsumerSecret: "csecret", Token: "atoken", TokenSecret: "asecret", Nonce: func() string { return nonce }}
	tests := []struct {
		name   string
		edit   func(*Config)
		verify func(t *testing.T, r seenRequest, base string, ts int64)
	}{
		{"personal token", func(cfg *Config) { cfg.Token = "abc123" }, func(t *testing.T, r seenRequest, _ string, _ int64) {
			if got := r.header.Get("Authorization"); got != "Discogs token=abc123" {
				t.Errorf("Authorization %q", got)
			}
		}},
		{"anonymous", func(cfg *Config) { cfg.Token = "" }, func(t *testing.T, r seenRequest, _ string, _ int64) {
			if got := r.header.Get("Authorization"); got != "" {
				t.Errorf("Authorization %q, want none", got)
			}
		}},
		{"OAuth HMAC-SHA1", func(cfg *Config) { cfg.Token = ""; o := creds; cfg.OAuth = &o }, func(t *testing.T, r seenRequest, base string, ts int64) {
			p := parseOAuthHeader(t, r.header.Get("Authorization"))
			if p["oauth_consumer_key"] != "ckey" || p["oauth_token"] != "atoken" || p["oauth_nonce"] != nonce ||
				p["oauth_timestamp"] != strconv.FormatInt(ts, 10) || p["oauth_signature_method"] != "HMAC-SHA1" {
				t.Errorf("OAuth parameters %v", p)
			}
			// Recompute the signature from the request as the server saw
			// it, query included, as Discogs would.
			u, err := url.Parse(base + r.path + "?" + r.query)
			if err != nil {
				t.Fatal(err)
			}
			var oauth [][2]string
			for k, v := range p {
				if k != "oauth_signature" {
					oauth = append(oauth, [2]string{k, v})
				}
			}
			sbs, err := signatureBaseString("GET", u, nil, oauth)
			if err != nil {
				t.Fatal(err)
			}
			if want := hmacSHA1("csecret&asecret", sbs); p["oauth_signature"] != want {
				t.Errorf("signature %q, server computes %q over %s", p["oauth_signature"], want, sbs)
			}
		}},
		{"OAuth PLAINTEXT", func(cfg *Config) { cfg.Token = ""; o := creds; o.Method = PlainText; cfg.OAuth = &o }, func(t *testing.T, r seenRequest, _ string, _ int64) {
			p := parseOAuthHeader(t, r.header.Get("Authorization"))
			if p["oauth_signature_method"] != "PLAINTEXT" || p["oauth_signature"] != "csecret&asecret" {
				t.Errorf("OAuth parameters %v", p)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDiscogs(t)
			c, clk := newTestClient(t, f, tc.edit)
			if _, err := c.Wantlist(context.Background(), user, nil); err != nil {
				t.Fatal(err)
			}
			for _, r := range f.requests() {
				if got := r.header.Get("User-Agent"); got != "cratestream-test/1.0 +https://example.org" {
					t.Errorf("User-Agent %q", got)
				}
				tc.verify(t, r, f.srv.URL, clk.Now().Unix())
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name     string
		fetch    fetchFunc
		username string
		hook     func(w http.ResponseWriter, r *http.Request, n int) bool
		want     error
		status   int
		message  string
	}{
		{"unknown user", (*Client).Wantlist, "nobody-here", nil, ErrNotFound, 404, "The requested resource was not found."},
		{"private collection", (*Client).Collection, user, func(w http.ResponseWriter, r *http.Request, n int) bool {
			writeJSON(w, 403, "You don't have permission to access this resource.")
			return true
		}, ErrForbidden, 403, "You don't have permission to access this resource."},
		{"bad token", (*Client).Collection, user, func(w http.ResponseWriter, r *http.Request, n int) bool {
			writeJSON(w, 401, "You must authenticate to access this resource.")
			return true
		}, ErrUnauthorized, 401, "You must authenticate to access this resource."},
		{"non-JSON error body", (*Client).Wantlist, user, func(w http.ResponseWriter, r *http.Request, n int) bool {
			w.WriteHeader(404)
			w.Write([]byte("<html>gone</html>"))
			return true
		}, ErrNotFound, 404, "<html>gone</html>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDiscogs(t)
			f.setHook(tc.hook)
			c, clk := newTestClient(t, f, nil)
			called := false
			_, err := tc.fetch(c, context.Background(), tc.username, func(PageResult) error { called = true; return nil })
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || ae.Message != tc.message {
				t.Fatalf("APIError %+v, want %d %q", ae, tc.status, tc.message)
			}
			if called || len(f.requests()) != 1 || len(clk.slept()) != 0 {
				t.Errorf("callback %v, %d requests, slept %v: want one request, no retry", called, len(f.requests()), clk.slept())
			}
		})
	}
}

// A page past the end answers Discogs' "outside of valid range" error.
func TestPageOutOfRange(t *testing.T) {
	f := newFakeDiscogs(t)
	c, _ := newTestClient(t, f, nil)
	t.Run("direct", func(t *testing.T) {
		_, oor, err := c.fetchPage(context.Background(), listWants, user, 4)
		if err != nil || !oor {
			t.Fatalf("page 4: out of range %v, error %v; want the end, no error", oor, err)
		}
	})
	t.Run("list shrank during the fetch", func(t *testing.T) {
		// Page 3 vanished after page 1 declared 3 pages: the pages that
		// exist are delivered, the fetch ends, and the caller learns that
		// the id set must not be used for removals.
		f.setHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
			if r.URL.Query().Get("page") != "3" {
				return false
			}
			w.WriteHeader(404)
			w.Write(readFixture(t, "users_brotherlogic_wants_page4_out_of_range_error.json"))
			return true
		})
		var got collector
		sum, err := c.Wantlist(context.Background(), user, got.onPage)
		if !errors.Is(err, ErrListChanged) || errors.Is(err, ErrNotFound) {
			t.Fatalf("error %v, want ErrListChanged only", err)
		}
		slices.Sort(got.pages)
		if !slices.Equal(got.pages, []int{1, 2}) || sum.Fetched != 200 || sum.Items != 286 {
			t.Fatalf("pages %v, summary %+v", got.pages, sum)
		}
	})
}

func TestContextCancellation(t *testing.T) {
	t.Run("callback cancels after page 1", func(t *testing.T) {
		f := newFakeDiscogs(t)
		c, _ := newTestClient(t, f, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var pages int
		_, err := c.Collection(ctx, user, func(PageResult) error {
			pages++
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if pages >= 32 || len(f.requests()) >= 32 {
			t.Fatalf("%d pages delivered, %d requests after cancellation", pages, len(f.requests()))
		}
	})
	t.Run("callback error stops the fetch", func(t *testing.T) {
		f := newFakeDiscogs(t)
		c, _ := newTestClient(t, f, nil)
		boom := errors.New("redis is down")
		_, err := c.Collection(context.Background(), user, func(p PageResult) error {
			if p.Page != 1 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("error %v, want %v", err, boom)
		}
	})
	t.Run("cancel during a real Retry-After wait", func(t *testing.T) {
		// The default Sleep must wake up on cancellation rather than sit
		// out an hour-long Retry-After.
		f := newFakeDiscogs(t)
		f.setHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
			w.Header().Set("Retry-After", "3600")
			writeJSON(w, 429, "slow down")
			return true
		})
		c, err := New(Config{BaseURL: f.srv.URL, UserAgent: "t"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = c.Wantlist(ctx, user, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("returned after %v", d)
		}
	})
	t.Run("cancel while requests hang", func(t *testing.T) {
		f := newFakeDiscogs(t)
		release := make(chan struct{})
		defer close(release)
		f.setHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
			if r.URL.Query().Get("page") == "1" {
				return false
			}
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return true
		})
		c, _ := newTestClient(t, f, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := c.Collection(ctx, user, nil)
			done <- err
		}()
		waitFor(t, func() bool { return len(f.requests()) >= 2 })
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("fetch did not return after cancellation")
		}
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

// The bound holds for the whole client, across concurrent calls.
func TestConcurrencyBound(t *testing.T) {
	for _, limit := range []int{1, 3} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			f := newFakeDiscogs(t)
			f.hold = 3 * time.Millisecond // let requests overlap
			c, _ := newTestClient(t, f, func(cfg *Config) { cfg.Concurrency = limit })
			var wg sync.WaitGroup
			errs := make([]error, len(lists))
			for i, tc := range lists {
				wg.Go(func() { _, errs[i] = tc.fetch(c, context.Background(), user, nil) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			peak := f.maxInflight
			f.mu.Unlock()
			if peak > limit {
				t.Fatalf("%d requests in flight, limit %d", peak, limit)
			}
			if limit > 1 && peak < 2 {
				t.Fatalf("peak %d: pages were not fetched concurrently", peak)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	ok := Config{UserAgent: "ua"}
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"no user agent", func(c *Config) { c.UserAgent = " " }, false},
		{"token and OAuth", func(c *Config) {
			c.Token = "t"
			c.OAuth = &OAuth1{ConsumerKey: "a", ConsumerSecret: "b", Token: "c", TokenSecret: "d"}
		}, false},
		{"OAuth without token secret", func(c *Config) { c.OAuth = &OAuth1{ConsumerKey: "a", ConsumerSecret: "b", Token: "c"} }, false},
		{"OAuth RSA", func(c *Config) {
			c.OAuth = &OAuth1{ConsumerKey: "a", ConsumerSecret: "b", Token: "c", TokenSecret: "d", Method: "RSA-SHA1"}
		}, false},
		{"per page 101", func(c *Config) { c.PerPage = 101 }, false},
		{"negative concurrency", func(c *Config) { c.Concurrency = -1 }, false},
		{"relative base URL", func(c *Config) { c.BaseURL = "api.discogs.com" }, false},
	}
	for _, tc := range tests {
		cfg := ok
		tc.edit(&cfg)
		if _, err := New(cfg); (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	c, err := New(Config{UserAgent: "ua"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wantlist(context.Background(), "..", nil); err == nil {
		t.Error("username .. accepted")
	}
	if got := c.pageURL(listCollection, "a b/c", 2).String(); got != "https://api.discogs.com/users/a%20b%2Fc/collection/folders/0/releases?page=2&per_page=100" {
		t.Errorf("pageURL = %s", got)
	}
}

// roundTrip serves every request from a function, in memory.
type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A page 1 that declares more pages than its items fill fails the fetch
// at once: 1000 pages of nothing took 1000 requests (found by FuzzFetch),
// and a garbled count would have kept a sync busy for ever.
func TestFetchBadPagination(t *testing.T) {
	for _, body := range []string{
		`{"pagination":{"pages":1000}}`,
		`{"pagination":{"pages":3,"items":200,"per_page":100}}`,
		`{"pagination":{"pages":2000000,"items":200000000,"per_page":100}}`,
	} {
		requests := 0
		hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
			requests++
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
		})}
		c, err := New(Config{BaseURL: "https://api.discogs.test", UserAgent: "test/1.0", HTTPClient: hc, Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Wantlist(context.Background(), user, nil); !errors.Is(err, ErrBadPagination) || requests != 1 {
			t.Errorf("%s: %v after %d requests, want ErrBadPagination after 1", body, err, requests)
		}
	}
}

package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDiscogs serves the real brotherlogic responses from the fixtures.
//
// The fixtures hold page 1 and the last page of each list, not the pages in
// between. The server synthesises each missing page p from page 1: same
// items, with id, basic_information.id and instance_id shifted by
// p*1e9 (far above any real Discogs id), so that every page has distinct
// releases, and pagination.page/urls rewritten. The declared totals (286
// wants in 3 pages, 3104 copies in 32 pages) then add up exactly.
//
// Every answer carries the rate-limit headers of the real capture
// release_249504.headers.http unless a test hook says otherwise. Other
// users get the real 404 body; pages past the end get the real "outside of
// valid range" body.
type fakeDiscogs struct {
	t     *testing.T
	srv   *httptest.Server
	pages map[list]map[int][]byte
	// served release ids per list (the truth a complete fetch must match)
	ids     map[list][]int64
	headers http.Header
	now     func() time.Time // clock stamped on each request

	// hook, when set, may answer a request itself (return true).
	hook func(w http.ResponseWriter, r *http.Request, n int) bool
	// hold delays every answer, to let concurrent requests overlap.
	hold time.Duration

	mu          sync.Mutex
	reqs        []seenRequest
	inflight    int
	maxInflight int
}

type seenRequest struct {
	path, query string
	header      http.Header
	at          time.Time
}

const user = "brotherlogic"

func newFakeDiscogs(t *testing.T) *fakeDiscogs {
	t.Helper()
	f := &fakeDiscogs{
		t:       t,
		headers: realRateLimitHeaders(t),
		now:     time.Now,
	}
	f.pages, f.ids = loadedFixtures(t)
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// realRateLimitHeaders reads the X-Discogs-* headers of a real response.
func realRateLimitHeaders(t *testing.T) http.Header {
	t.Helper()
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(readFixture(t, "release_249504.headers.http"))))
	if _, err := r.ReadLine(); err != nil { // status line
		t.Fatal(err)
	}
	mh, err := r.ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for k, v := range mh {
		if strings.HasPrefix(k, "X-Discogs-Ratelimit") {
			h[k] = v
		}
	}
	if h.Get("X-Discogs-Ratelimit-Remaining") != "55" {
		t.Fatalf("unexpected rate-limit headers in fixture: %v", h)
	}
	return h
}

// fixtureCache keeps the synthesised pages for the whole test binary:
// building them is the slow part of a fake server (seconds under -race).
// Filled once, then only read.
var fixtureCache struct {
	once  sync.Once
	pages map[list]map[int][]byte
	ids   map[list][]int64
}

func loadedFixtures(t *testing.T) (map[list]map[int][]byte, map[list][]int64) {
	t.Helper()
	fixtureDir(t) // skips (or fails under CI) before the cache is touched
	fixtureCache.once.Do(func() {
		fixtureCache.pages = map[list]map[int][]byte{}
		fixtureCache.ids = map[list][]int64{}
		load(t, listWants, "users_brotherlogic_wants_page1.json", "users_brotherlogic_wants_page3_last.json")
		load(t, listCollection, "users_brotherlogic_collection_folder0_releases_page1.json", "users_brotherlogic_collection_folder0_releases_page32_last.json")
	})
	if len(fixtureCache.pages) != 2 {
		t.Fatal("fixtures failed to load in an earlier test")
	}
	return fixtureCache.pages, fixtureCache.ids
}

func load(t *testing.T, l list, firstFile, lastFile string) {
	f := &fixtureCache
	first, last := readFixture(t, firstFile), readFixture(t, lastFile)
	var decl wirePage
	if err := json.Unmarshal(first, &decl); err != nil {
		t.Fatal(err)
	}
	n := decl.Pagination.Pages
	f.pages[l] = map[int][]byte{1: first, n: last}
	for p := 2; p < n; p++ {
		f.pages[l][p] = synthesise(t, first, l, p, n)
	}
	seen := map[int64]bool{}
	for _, body := range f.pages[l] {
		var w wirePage
		if err := json.Unmarshal(body, &w); err != nil {
			t.Fatal(err)
		}
		for _, it := range append(w.Wants, w.Releases...) {
			seen[it.Basic.ID] = true
		}
	}
	for id := range seen {
		f.ids[l] = append(f.ids[l], id)
	}
	slices.Sort(f.ids[l])
}

func synthesise(t *testing.T, first []byte, l list, page, pages int) []byte {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(first))
	d.UseNumber()
	var doc map[string]any
	if err := d.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	shift := func(m map[string]any, key string) {
		if v, ok := m[key].(json.Number); ok {
			n, err := v.Int64()
			if err != nil {
				t.Fatal(err)
			}
			m[key] = n + int64(page)*1_000_000_000
		}
	}
	key := "wants"
	if l == listCollection {
		key = "releases"
	}
	for _, raw := range doc[key].([]any) {
		it := raw.(map[string]any)
		shift(it, "id")
		shift(it, "instance_id")
		shift(it["basic_information"].(map[string]any), "id")
	}
	pg := doc["pagination"].(map[string]any)
	pg["page"] = page
	urls := pg["urls"].(map[string]any)
	link := func(p int) string {
		return strings.Replace(urls["last"].(string), "page="+strconv.Itoa(pages), "page="+strconv.Itoa(p), 1)
	}
	pg["urls"] = map[string]any{"first": link(1), "prev": link(page - 1), "next": link(page + 1), "last": link(pages)}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fakeDiscogs) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, seenRequest{path: r.URL.Path, query: r.URL.RawQuery, header: r.Header.Clone(), at: f.now()})
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	hook, hold := f.hook, f.hold
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if hold > 0 {
		time.Sleep(hold)
	}
	for k, v := range f.headers {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	if hook != nil && hook(w, r, n) {
		return
	}
	var l list
	switch r.URL.Path {
	case "/users/" + user + "/wants":
		l = listWants
	case "/users/" + user + "/collection/folders/0/releases":
		l = listCollection
	default:
		w.WriteHeader(http.StatusNotFound)
		w.Write(readFixture(f.t, "release_2331612_404_not_found.json"))
		return
	}
	if pp := r.URL.Query().Get("per_page"); pp != "100" {
		http.Error(w, `{"message": "the fixtures are pages of 100"}`, http.StatusBadRequest)
		return
	}
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil {
		http.Error(w, `{"message": "bad page"}`, http.StatusBadRequest)
		return
	}
	body, ok := f.pages[l][page]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		w.Write(readFixture(f.t, "users_brotherlogic_wants_page4_out_of_range_error.json"))
		return
	}
	w.Write(body)
}

func (f *fakeDiscogs) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func (f *fakeDiscogs) setHook(h func(w http.ResponseWriter, r *http.Request, n int) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// fakeClock never sleeps: Sleep records the duration and moves time on.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.t = c.t.Add(d)
	return nil
}

func (c *fakeClock) slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

// newTestClient returns a client of f on a fake clock; edit tweaks cfg.
func newTestClient(t *testing.T, f *fakeDiscogs, edit func(*Config)) (*Client, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	f.mu.Lock()
	f.now = clk.Now
	f.mu.Unlock()
	cfg := Config{
		BaseURL:   f.srv.URL,
		UserAgent: "cratestream-test/1.0 +https://example.org",
		Token:     "test-token",
		PerPage:   100,
		Now:       clk.Now,
		Sleep:     clk.Sleep,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}

func writeJSON(w http.ResponseWriter, status int, msg string) {
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"message": %q}`, msg)
}

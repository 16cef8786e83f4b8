package fakemarket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/discogs/marketplace"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newMarket(t testing.TB, cfg Config) *Market {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = func() time.Time { return t0 }
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// busiest is the release with the most listings at t0.
func busiest(m *Market, releases []int64) int64 {
	var best int64
	most := -1
	for _, id := range releases {
		if n := len(m.Listings(id, t0)); n > most {
			best, most = id, n
		}
	}
	return best
}

// scrape fetches every page of a release like a scraper would, following
// the pagination the pages show, and checks that the page after the last
// is an empty table.
type scraped struct {
	listings []*pb.Listing
	sellers  map[string]*pb.Seller
	pages    []*marketplace.Page
}

func fetch(ctx context.Context, t *testing.T, client *http.Client, url string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func scrape(ctx context.Context, t *testing.T, client *http.Client, base string, release int64, limit int, at time.Time) scraped {
	t.Helper()
	out := scraped{sellers: map[string]*pb.Seller{}}
	for page := 1; ; page++ {
		url := fmt.Sprintf("%s/sell/release/%d?page=%d", base, release, page)
		if limit > 0 {
			url += fmt.Sprintf("&limit=%d", limit)
		}
		code, body := fetch(ctx, t, client, url)
		if code != http.StatusOK {
			t.Fatalf("%s: status %d", url, code)
		}
		p, err := marketplace.Parse(strings.NewReader(string(body)), marketplace.Options{Now: at, Source: "fakemarket"})
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if p.ReleaseID != release {
			t.Fatalf("%s: page of release %d", url, p.ReleaseID)
		}
		out.pages = append(out.pages, p)
		out.listings = append(out.listings, p.Listings...)
		for _, s := range p.Sellers {
			if prev, ok := out.sellers[s.Username]; ok && !proto.Equal(prev, s) {
				t.Errorf("%s: seller %s differs between pages: %v vs %v", url, s.Username, prev, s)
			}
			out.sellers[s.Username] = s
		}
		if len(p.Listings) == 0 {
			if p.Page != 0 || p.Pages != 0 {
				t.Errorf("%s: empty page shows pagination %d/%d", url, p.Page, p.Pages)
			}
			return out
		}
		if p.Page != page {
			t.Errorf("%s: page says it is %d", url, p.Page)
		}
		if page > p.Pages {
			t.Fatalf("%s: page %d of %d has listings", url, page, p.Pages)
		}
	}
}

// TestHandlerServesListings: scraping the handler's pages over HTTP gives
// exactly Listings and Sellers at the clock's time, for releases with none,
// one page and several pages of 250.
func TestHandlerServesListings(t *testing.T) {
	m := newMarket(t, Config{Seed: 7})
	srv := httptest.NewServer(m)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	releases := m.Releases()[:60]
	var multi int
	for _, id := range m.Releases() {
		if n := len(m.Listings(id, t0)); n > MaxLimit {
			releases = append(releases, id)
			multi++
		}
	}
	if multi == 0 {
		t.Fatal("no release with more than one page of listings: the power law lost its tail")
	}
	var empty, total int
	for _, id := range releases {
		got := scrape(ctx, t, srv.Client(), srv.URL, id, 0, t0)
		want := m.Listings(id, t0)
		total += len(want)
		if len(want) == 0 {
			empty++
		}
		if len(got.listings) != len(want) {
			t.Fatalf("release %d: scraped %d listings, market has %d", id, len(got.listings), len(want))
		}
		for i := range want {
			if !proto.Equal(got.listings[i], want[i]) {
				t.Fatalf("release %d listing %d:\nscraped %v\n market %v", id, i, got.listings[i], want[i])
			}
		}
		sellers := m.Sellers(id, t0)
		if len(got.sellers) != len(sellers) {
			t.Fatalf("release %d: scraped %d sellers, market has %d", id, len(got.sellers), len(sellers))
		}
		for _, s := range sellers {
			if !proto.Equal(got.sellers[s.Username], s) {
				t.Errorf("release %d seller %s:\nscraped %v\n market %v", id, s.Username, got.sellers[s.Username], s)
			}
		}
		if n := len(got.pages); len(want) > 0 && got.pages[0].Total != len(want) {
			t.Errorf("release %d: total %d on %d pages, want %d", id, got.pages[0].Total, n, len(want))
		}
	}
	if empty == 0 || total < 1000 {
		t.Errorf("%d releases without listings, %d listings in all: not the mix this test needs", empty, total)
	}
}

// TestHandlerPagination: with small pages every listing shows up exactly
// once, and the pages say where they are.
func TestHandlerPagination(t *testing.T) {
	m := newMarket(t, Config{Seed: 7, NumReleases: 300})
	release := busiest(m, m.Releases())
	want := m.Listings(release, t0)
	if len(want) < 100 {
		t.Fatalf("largest release has %d listings", len(want))
	}
	srv := httptest.NewServer(m)
	defer srv.Close()
	for _, limit := range []int{25, 7, MaxLimit} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			got := scrape(context.Background(), t, srv.Client(), srv.URL, release, limit, t0)
			pages := (len(want) + limit - 1) / limit
			if len(got.pages) != pages+1 { // and the empty one after
				t.Errorf("%d pages fetched, want %d and an empty one", len(got.pages), pages)
			}
			for i, p := range got.pages[:pages] {
				if p.Page != i+1 || p.Pages != pages || p.Total != len(want) {
					t.Errorf("page %d says %d/%d of %d, want %d/%d of %d", i+1, p.Page, p.Pages, p.Total, i+1, pages, len(want))
				}
			}
			seen := map[int64]int{}
			for _, l := range got.listings {
				seen[l.ListingId]++
			}
			for _, l := range want {
				if seen[l.ListingId] != 1 {
					t.Errorf("listing %d seen %d times", l.ListingId, seen[l.ListingId])
				}
			}
			if len(got.listings) != len(want) {
				t.Errorf("%d listings scraped, want %d", len(got.listings), len(want))
			}
		})
	}
}

func TestHandlerRequests(t *testing.T) {
	m := newMarket(t, Config{Seed: 3, NumReleases: 50})
	var busy int64
	for _, id := range m.Releases() {
		if len(m.Listings(id, t0)) > 3 {
			busy = id
			break
		}
	}
	n := len(m.Listings(busy, t0))
	tests := []struct {
		name, method, path string
		code               int
		listings           int // -1: not a listings page
	}{
		{"default", "GET", fmt.Sprintf("/sell/release/%d", busy), 200, n},
		{"trailing slash", "GET", fmt.Sprintf("/sell/release/%d/", busy), 200, n},
		{"junk page is page 1", "GET", fmt.Sprintf("/sell/release/%d?page=x", busy), 200, n},
		{"page 0 is page 1", "GET", fmt.Sprintf("/sell/release/%d?page=0", busy), 200, n},
		{"limit above 250 is 250", "GET", fmt.Sprintf("/sell/release/%d?limit=1000", busy), 200, n},
		{"limit 2", "GET", fmt.Sprintf("/sell/release/%d?limit=2&page=2", busy), 200, 2},
		{"past the last page", "GET", fmt.Sprintf("/sell/release/%d?page=99", busy), 200, 0},
		{"unknown release", "GET", "/sell/release/999999", 404, -1},
		{"not a release", "GET", "/sell/release/abc", 404, -1},
		{"other path", "GET", "/release/1", 404, -1},
		{"post", "POST", fmt.Sprintf("/sell/release/%d", busy), 405, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			m.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d", rec.Code, tt.code)
			}
			p, err := marketplace.Parse(rec.Body, marketplace.Options{Now: t0})
			if tt.listings < 0 {
				if !errors.Is(err, marketplace.ErrMarkup) {
					t.Errorf("parsed a %d page: %v", tt.code, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Listings) != tt.listings {
				t.Errorf("%d listings, want %d", len(p.Listings), tt.listings)
			}
		})
	}

	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest("HEAD", fmt.Sprintf("/sell/release/%d", busy), nil))
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD: status %d, %d bytes of body, length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
}

func TestDeterminism(t *testing.T) {
	a := newMarket(t, Config{Seed: 11, NumReleases: 200})
	b := newMarket(t, Config{Seed: 11, NumReleases: 200})
	other := newMarket(t, Config{Seed: 12, NumReleases: 200})
	differs := false
	for _, at := range []time.Time{t0, t0.Add(37 * time.Minute), t0.Add(90 * 24 * time.Hour)} {
		for _, id := range a.Releases() {
			la, lb := a.Listings(id, at), b.Listings(id, at)
			if len(la) != len(lb) {
				t.Fatalf("release %d at %v: %d vs %d listings", id, at, len(la), len(lb))
			}
			for i := range la {
				if !proto.Equal(la[i], lb[i]) {
					t.Fatalf("release %d at %v: %v vs %v", id, at, la[i], lb[i])
				}
			}
			if lo := other.Listings(id, at); len(lo) != len(la) || (len(lo) > 0 && !proto.Equal(lo[0], la[0])) {
				differs = true
			}
		}
	}
	if !differs {
		t.Error("another seed gives the same market")
	}
	for name := range a.byName {
		sa, _ := a.Seller(name)
		sb, ok := b.Seller(name)
		if !ok || !proto.Equal(sa, sb) {
			t.Fatalf("seller %s: %v vs %v", name, sa, sb)
		}
	}
}

// TestDynamics: an hour later some listings sold and some are new; the
// ones still there did not change; a listing is for sale during one
// interval of time only.
func TestDynamics(t *testing.T) {
	m := newMarket(t, Config{Seed: 5})
	later := t0.Add(time.Hour)
	before := map[int64]*pb.Listing{}
	after := map[int64]*pb.Listing{}
	for _, id := range m.Releases() {
		for _, l := range m.Listings(id, t0) {
			before[l.ListingId] = l
		}
		for _, l := range m.Listings(id, later) {
			after[l.ListingId] = l
		}
	}
	var gone, added, kept int
	for id, l := range before {
		a, ok := after[id]
		if !ok {
			gone++
			continue
		}
		kept++
		// Only what says when it was seen may change.
		a, l = proto.Clone(a).(*pb.Listing), proto.Clone(l).(*pb.Listing)
		a.EventId, a.EventTimeMs, a.SeenAtMs = "", 0, 0
		l.EventId, l.EventTimeMs, l.SeenAtMs = "", 0, 0
		if !proto.Equal(a, l) {
			t.Errorf("listing %d changed:\n%v\n%v", id, l, a)
		}
	}
	for id := range after {
		if before[id] == nil {
			added++
		}
	}
	t.Logf("%d listings at t, %d sold and %d new an hour later", len(before), gone, added)
	if gone == 0 || added == 0 || kept < len(before)*9/10 {
		t.Errorf("%d gone, %d added, %d kept of %d: want some churn and mostly stable", gone, added, kept, len(before))
	}

	// The busiest release, hour by hour over two days.
	busy := busiest(m, m.Releases())
	state := map[int64]int{} // 0 not seen yet, 1 live, 2 gone
	for h := range 48 {
		live := map[int64]bool{}
		for _, l := range m.Listings(busy, t0.Add(time.Duration(h)*time.Hour)) {
			live[l.ListingId] = true
			switch state[l.ListingId] {
			case 0:
				state[l.ListingId] = 1
			case 2:
				t.Fatalf("listing %d came back after it sold", l.ListingId)
			}
		}
		for id, s := range state {
			if s == 1 && !live[id] {
				state[id] = 2
			}
		}
	}
}

// TestMarketShape checks the look of the market: the power law of
// listings per release, currencies by country, grades, shipping, sellers.
func TestMarketShape(t *testing.T) {
	m := newMarket(t, Config{Seed: 1})
	country := map[string]string{}
	for _, c := range countries {
		country[c.v.name] = c.v.currency
	}
	var counts []int
	var all []*pb.Listing
	for _, id := range m.Releases() {
		ls := m.Listings(id, t0)
		counts = append(counts, len(ls))
		all = append(all, ls...)
	}
	slices.Sort(counts)
	few := 0
	for _, c := range counts {
		if c <= 3 {
			few++
		}
	}
	if few < len(counts)/2 || counts[len(counts)*95/100] < 24 || counts[len(counts)-1] <= MaxLimit {
		t.Errorf("listings per release: %d of %d with 0-3, p95 %d, max %d", few, len(counts), counts[len(counts)*95/100], counts[len(counts)-1])
	}

	share := func(f func(*pb.Listing) bool) float64 {
		n := 0
		for _, l := range all {
			if f(l) {
				n++
			}
		}
		return float64(n) / float64(len(all))
	}
	checks := []struct {
		name     string
		f        func(*pb.Listing) bool
		min, max float64
	}{
		{"VG+ or NM", func(l *pb.Listing) bool {
			return l.Media == pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS || l.Media == pb.MediaGrade_MEDIA_GRADE_NEAR_MINT
		}, 0.5, 0.8},
		{"Generic or Not Graded sleeve", func(l *pb.Listing) bool {
			return l.Sleeve == pb.SleeveGrade_SLEEVE_GRADE_GENERIC || l.Sleeve == pb.SleeveGrade_SLEEVE_GRADE_NOT_GRADED
		}, 0.02, 0.15},
		{"no sleeve grade", func(l *pb.Listing) bool { return l.Sleeve == pb.SleeveGrade_SLEEVE_GRADE_UNSPECIFIED }, 0.005, 0.05},
		{"priced shipping", func(l *pb.Listing) bool { return l.ShippingState == pb.ShippingState_SHIPPING_STATE_PRICED }, 0.7, 0.9},
		{"free shipping", func(l *pb.Listing) bool { return l.ShippingState == pb.ShippingState_SHIPPING_STATE_FREE }, 0.03, 0.2},
		{"no shipping", func(l *pb.Listing) bool { return l.ShippingState == pb.ShippingState_SHIPPING_STATE_UNAVAILABLE }, 0.03, 0.2},
		{"unavailable in country", func(l *pb.Listing) bool { return !l.Available }, 0.02, 0.15},
		{"USD", func(l *pb.Listing) bool { return l.Price.Currency == "USD" }, 0.15, 0.5},
		{"EUR", func(l *pb.Listing) bool { return l.Price.Currency == "EUR" }, 0.15, 0.5},
		{"JPY", func(l *pb.Listing) bool { return l.Price.Currency == "JPY" }, 0.02, 0.2},
		{"new seller", func(l *pb.Listing) bool { s, _ := m.Seller(l.Seller); return !s.HasRating }, 0.005, 0.1},
		{"seller rated 97% or more", func(l *pb.Listing) bool { s, _ := m.Seller(l.Seller); return s.RatingPercent >= 97 }, 0.8, 0.99},
	}
	for _, c := range checks {
		if s := share(c.f); s < c.min || s > c.max {
			t.Errorf("%s: %.3f of listings, want %.2f-%.2f", c.name, s, c.min, c.max)
		}
	}
	currencies := map[string]bool{}
	for _, l := range all {
		currencies[l.Price.Currency] = true
		if want := country[l.ShipsFrom]; l.Price.Currency != want || (l.Shipping != nil && l.Shipping.Currency != want) {
			t.Fatalf("listing %d from %s in %s (shipping %v), want %s", l.ListingId, l.ShipsFrom, l.Price.Currency, l.Shipping, want)
		}
	}
	for _, c := range []string{"USD", "EUR", "GBP", "JPY", "CAD", "AUD", "SEK", "CHF", "BRL"} {
		if !currencies[c] {
			t.Errorf("no listing in %s", c)
		}
	}

	// Prices: log-normal per release, so a release's listings spread but
	// stay within a few times of each other per grade.
	busy := busiest(m, m.Releases())
	var eurNM []int64
	for _, l := range m.Listings(busy, t0) {
		if l.Price.Currency == "EUR" && l.Media == pb.MediaGrade_MEDIA_GRADE_NEAR_MINT {
			eurNM = append(eurNM, l.Price.AmountMinor)
		}
	}
	slices.Sort(eurNM)
	if len(eurNM) < 10 {
		t.Fatalf("%d NM listings in EUR on the busiest release", len(eurNM))
	}
	lo, hi := eurNM[len(eurNM)/10], eurNM[len(eurNM)*9/10]
	if lo == hi || hi > 5*lo {
		t.Errorf("NM EUR prices of release %d: p10 %d p90 %d", busy, lo, hi)
	}

	names, ids := map[string]bool{}, map[int64]bool{}
	for _, s := range m.sellers {
		if names[s.rec.Username] || ids[s.rec.SellerId] {
			t.Fatalf("seller %v repeats a name or id", s.rec)
		}
		names[s.rec.Username], ids[s.rec.SellerId] = true, true
	}
	if len(names) != 4000 {
		t.Errorf("%d sellers, want 4000", len(names))
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Releases: []int64{1, 2, 1}},
		{Releases: []int64{0}},
		{MeanLifetime: time.Minute},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	m := newMarket(t, Config{Releases: []int64{2247646, 419069}, Sellers: 10})
	if got := m.Releases(); !slices.Equal(got, []int64{2247646, 419069}) {
		t.Errorf("releases %v", got)
	}
	if m.Listings(1, t0) != nil {
		t.Error("listings for a release outside the catalogue")
	}
	if _, ok := m.Seller("nobody"); ok {
		t.Error("unknown seller found")
	}
}

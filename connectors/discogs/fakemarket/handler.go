package fakemarket

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"

	"github.com/cratestream/cratestream/connectors/discogs/marketplace"
)

// MaxLimit is the most listings Discogs shows on one page, and the default.
const MaxLimit = 250

// ServeHTTP serves /sell/release/<id>?page=N&limit=L at the market's
// clock: the page in Discogs' markup, a 404 page for a release outside the
// catalogue, an empty table for a page past the last. Like Discogs it
// tolerates junk parameters: a bad page is page 1, a bad or too large
// limit is 250.
func (m *Market) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/sell/release/")
	id, err := strconv.ParseInt(strings.TrimSuffix(rest, "/"), 10, 64)
	if !ok || err != nil {
		notFound(w, r.URL.Path)
		return
	}
	if _, ok := m.index[id]; !ok {
		notFound(w, r.URL.Path)
		return
	}
	q := r.URL.Query()
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 || limit > MaxLimit {
		limit = MaxLimit
	}

	at := m.clock()
	all := m.Listings(id, at)
	rp := marketplace.RenderPage{ReleaseID: id, Total: len(all), Limit: limit, Country: m.country}
	if from := (page - 1) * limit; from < len(all) {
		rp.Listings = all[from:min(from+limit, len(all))]
		rp.Page = page
	}
	// Past the last page (or for a release without listings) Discogs shows
	// an empty table without pagination; so do we.
	rp.Sellers = m.sellersOf(id, rp.Listings, at)
	var buf bytes.Buffer
	if err := marketplace.Render(&buf, rp); err != nil {
		http.Error(w, fmt.Sprintf("render release %d: %v", id, err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes()) // the client went away: nothing to do
	}
}

func notFound(w http.ResponseWriter, path string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	_, _ = fmt.Fprintf(w, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Page Not Found | Discogs</title></head>
<body><div id="page_content"><h1>We couldn't find that page.</h1><p>%s</p></div></body></html>
`, html.EscapeString(path))
}

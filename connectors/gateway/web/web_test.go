package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandlerServesThePage(t *testing.T) {
	h := Handler()
	get := func(method, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w
	}
	for path, want := range map[string]struct{ ctype, body string }{
		"/":          {"text/html", `id="cart-form"`},
		"/app.js":    {"text/javascript", "EventSource"},
		"/style.css": {"text/css", ".cart"},
	} {
		w := get("GET", path)
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), want.ctype) || !strings.Contains(w.Body.String(), want.body) {
			t.Errorf("%s: %d %q %.100q", path, w.Code, w.Header().Get("Content-Type"), w.Body.String())
		}
		if w.Header().Get("Content-Security-Policy") == "" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: security headers %v", path, w.Header())
		}
	}
	if w := get("GET", "/nope.js"); w.Code != 404 {
		t.Errorf("missing asset: %d", w.Code)
	}
	if w := get("POST", "/"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
	if w := get("GET", "/index.html"); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/" {
		t.Errorf("/index.html: %d %v", w.Code, w.Header())
	}
}

// Every asset the page references is served, and the page keeps the
// criteria the API takes: a form field per criterion.
func TestPageReferencesAndCriteria(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	page := string(b)
	for _, asset := range []string{"/style.css", "/app.js"} {
		if !strings.Contains(page, `"`+asset+`"`) {
			t.Errorf("page does not reference %s", asset)
		}
		r, err := http.Get(srv.URL + asset)
		if err != nil || r.StatusCode != 200 {
			t.Errorf("%s: %v %v", asset, r, err)
		}
	}
	for _, field := range []string{"budget_amount", "budget_currency", "min_media_cond", "min_seller_rating", "min_qty",
		"countries", "wantlist_ratio", "top_n", "objective", "multi_seller"} {
		if !strings.Contains(page, `name="`+field+`"`) {
			t.Errorf("cart form has no %s field", field)
		}
	}
	for _, g := range []string{"Mint (M)", "Near Mint (NM or M-)", "Very Good Plus (VG+)", "Very Good (VG)", "Good Plus (G+)", "Good (G)", "Fair (F)", "Poor (P)"} {
		if !strings.Contains(page, ">"+g+"<") {
			t.Errorf("grade select lacks %q", g)
		}
	}
}

package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// Browsers drop tabs and newlines from URLs and read "\" as "/", and
// http.Redirect cleans "/a/../x" to "/x": none of these may turn next into
// another host.
func TestSafeNextRejectsBrowserBypasses(t *testing.T) {
	for _, next := range []string{
		"//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "/\r/evil.example",
		"/a/../\\evil.example", "/./\\evil.example", "/x\\..\\evil", "https://evil.example", "evil.example",
		"/\x00/evil.example",
	} {
		if got := safeNext(next); got != "" {
			t.Errorf("safeNext(%q) = %q, want \"\"", next, got)
		}
	}
	for _, next := range []string{"/", "/#carts", "/carts?x=1", "/a/b"} {
		if got := safeNext(next); got != next {
			t.Errorf("safeNext(%q) = %q", next, got)
		}
	}
	// End to end: the demo login's redirect stays on this host.
	e := newEnv(t, func(c *Config) { c.DemoUser = "demo" })
	for _, next := range []string{"/\t/evil.example", "/a/../\\evil.example"} {
		link, _ := e.srv.DemoLink()
		w := e.do(t, "GET", link+"&next="+url.QueryEscape(next), "", "")
		loc := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(w.Header().Get("Location"))
		if w.Code != http.StatusSeeOther || strings.HasPrefix(loc, "//") {
			t.Errorf("next %q: %d Location %q", next, w.Code, w.Header().Get("Location"))
		}
	}
}

// A request token's callback only logs in the browser that started the
// login: an attacker cannot send a victim their own callback link and log
// the victim into the attacker's account (login CSRF).
func TestDiscogsCallbackBoundToBrowser(t *testing.T) {
	d := newFakeDiscogs(t, sigHMACSHA1)
	e := newEnv(t, func(c *Config) {
		c.Discogs = DiscogsConfig{ConsumerKey: d.key, ConsumerSecret: d.secret, APIURL: d.srv.URL, WebURL: d.srv.URL}
	})
	w := e.do(t, "GET", "/auth/login", "", "")
	loc, _ := url.Parse(w.Header().Get("Location"))
	tok := loc.Query().Get("oauth_token")
	var bind *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == loginCookie {
			bind = c
		}
	}
	if bind == nil || bind.Value == "" || !bind.HttpOnly || bind.SameSite != http.SameSiteLaxMode {
		t.Fatalf("login binding cookie %+v", bind)
	}
	resp, _ := http.Get(loc.String())
	resp.Body.Close()
	cb := "/auth/callback?oauth_token=" + tok + "&oauth_verifier=v-" + tok
	// Another browser (no cookie, or someone else's) is refused, and does
	// not use up the login.
	if w := e.do(t, "GET", cb, "", ""); w.Code != http.StatusForbidden {
		t.Fatalf("callback without the binding cookie: %d %s", w.Code, w.Body)
	}
	if w := e.do(t, "GET", cb, "", "", "Cookie", loginCookie+"=0123456789abcdef0123456789abcdef"); w.Code != http.StatusForbidden {
		t.Fatalf("callback with another browser's cookie: %d %s", w.Code, w.Body)
	}
	// The browser that started it logs in.
	w = e.do(t, "GET", cb, "", "", "Cookie", loginCookie+"="+bind.Value)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("callback: %d %s", w.Code, w.Body)
	}
}

// A cross-site form POST carrying the session cookie must not queue
// anything (CSRF); the UI's same-origin fetch and bearer API clients still
// work.
func TestCrossOriginPostRefused(t *testing.T) {
	e := newEnv(t, nil)
	cookie := SessionCookie + "=" + e.alice
	for _, hdr := range [][]string{
		{"Cookie", cookie, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site", "Content-Type", "application/x-www-form-urlencoded"},
		{"Cookie", cookie, "Origin", "https://evil.example", "Content-Type", "text/plain"},
	} {
		if w := e.do(t, "POST", "/api/v1/users/alice/sync", "", "", hdr...); w.Code != http.StatusForbidden {
			t.Errorf("cross-site sync %v: %d %s", hdr, w.Code, w.Body)
		}
		if w := e.do(t, "POST", "/api/v1/carts", "", "", hdr...); w.Code != http.StatusForbidden {
			t.Errorf("cross-site cart %v: %d %s", hdr, w.Code, w.Body)
		}
	}
	e.prod.mu.Lock()
	n := len(e.prod.recs)
	e.prod.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d records produced by cross-site posts", n)
	}
	if w := e.do(t, "POST", "/api/v1/users/alice/sync", "", "{}", "Cookie", cookie, "Origin", "http://example.com", "Sec-Fetch-Site", "same-origin"); w.Code != http.StatusAccepted {
		t.Fatalf("same-origin sync: %d %s", w.Code, w.Body)
	}
	if w := e.do(t, "POST", "/api/v1/users/alice/sync", e.alice, ""); w.Code != http.StatusAccepted {
		t.Fatalf("bearer sync: %d %s", w.Code, w.Body)
	}
}

// The session cookie is Secure whenever the public URL is https, whoever
// builds the Config.
func TestSecureCookieFromHTTPSPublicURL(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DemoUser = "demo"; c.PublicURL = "https://crates.example" })
	link, _ := e.srv.DemoLink()
	w := e.do(t, "GET", strings.TrimPrefix(link, "https://crates.example"), "", "")
	c := w.Result().Cookies()
	if len(c) != 1 || !c[0].Secure {
		t.Fatalf("cookies %+v: want Secure", c)
	}
}

// Listing links reach the UI's hrefs: only absolute http(s) ones pass.
func TestResultViewKeepsWebLinksOnly(t *testing.T) {
	res := &pb.CartResult{RequestId: "cart-1", Carts: []*pb.Cart{{Items: []*pb.CartItem{
		{ListingId: 1, Url: "javascript:alert(document.cookie)", CartUrl: " JavaScript:alert(1)"},
		{ListingId: 2, Url: "data:text/html,<script>alert(1)</script>", CartUrl: "//evil.example/x"},
		{ListingId: 3, Url: "https://www.discogs.com/sell/item/3", CartUrl: "http://www.discogs.com/sell/cart/?add=3"},
	}}}}
	items := resultView(res, nil).Carts[0].Items
	for _, it := range items[:2] {
		if it.URL != "" || it.CartURL != "" {
			t.Errorf("listing %d: url %q cart_url %q, want none", it.ListingID, it.URL, it.CartURL)
		}
	}
	if items[2].URL != "https://www.discogs.com/sell/item/3" || items[2].CartURL != "http://www.discogs.com/sell/cart/?add=3" {
		t.Errorf("web links changed: %+v", items[2])
	}
}

// A user cannot hold an unbounded number of event streams open; closing
// one frees its slot.
func TestSSEStreamsPerUserBounded(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxStreamsPerUser = 2 })
	srv := httptest.NewServer(e.srv)
	t.Cleanup(srv.Close)
	if err := e.srv.Hub().Apply(statusRecord(t, 0, 1, &pb.RequestStatus{RequestId: "cart-1", UserId: "alice", Kind: pb.RequestKind_REQUEST_KIND_CART, Stage: "queued", EventTimeMs: 1})); err != nil {
		t.Fatal(err)
	}
	u := srv.URL + "/api/v1/requests/cart-1/events"
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	openSSE(t, ctx1, u, e.alice, "").next(5 * time.Second)
	openSSE(t, ctx2, u, e.alice, "").next(5 * time.Second)
	get := func() int {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer "+e.alice)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != http.StatusTooManyRequests {
		t.Fatalf("third stream: %d, want 429", code)
	}
	cancel1()
	deadline := time.Now().Add(5 * time.Second)
	for get() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("a closed stream's slot was not freed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// The signature base string and HMAC-SHA1 signature of the OAuth Core 1.0
// specification's example (Appendix A.5).
func TestOAuthSignatureVector(t *testing.T) {
	u, _ := url.Parse("http://photos.example.net/photos?file=vacation.jpg&size=original")
	params := url.Values{
		"oauth_consumer_key":     {"dpf43f3p2l4k3l03"},
		"oauth_token":            {"nnch734d00sl2jdk"},
		"oauth_signature_method": {"HMAC-SHA1"},
		"oauth_timestamp":        {"1191242096"},
		"oauth_nonce":            {"kllo9940pd9333jh"},
		"oauth_version":          {"1.0"},
	}
	wantBase := "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
	if got := signatureBase("GET", u, params); got != wantBase {
		t.Fatalf("base string\n got %s\nwant %s", got, wantBase)
	}
	sig, err := signature(sigHMACSHA1, "GET", u, params, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00")
	if err != nil || sig != "tR3+Ty81lMeYAr/Fid0kMTYa/WM=" {
		t.Fatalf("signature %q %v", sig, err)
	}
	if sig, _ := signature(sigPlain, "GET", u, params, "k&y", "s"); sig != "k%26y&s" {
		t.Fatalf("plaintext %q", sig)
	}
	// The header round-trips.
	h, _ := authorizationHeader(sigHMACSHA1, "GET", u, params, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00")
	back, err := parseAuthorization(h)
	if err != nil || back.Get("oauth_signature") != "tR3+Ty81lMeYAr/Fid0kMTYa/WM=" || back.Get("oauth_nonce") != "kllo9940pd9333jh" {
		t.Fatalf("header %s -> %v %v", h, back, err)
	}
	if got := baseURI(mustURL("HTTPS://Api.Example.COM:443/a%20b")); got != "https://api.example.com/a%20b" {
		t.Fatalf("base uri %s", got)
	}
	if got := baseURI(mustURL("http://h:8080/x")); got != "http://h:8080/x" {
		t.Fatalf("base uri %s", got)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// fakeDiscogs is an httptest stand-in of Discogs' OAuth endpoints: it
// verifies every signature with the secrets it issued.
type fakeDiscogs struct {
	t                   *testing.T
	srv                 *httptest.Server
	key, secret, method string
	username            string

	mu       sync.Mutex
	requests map[string]string // request token -> secret
	verified map[string]string // request token -> verifier (authorized)
	access   map[string]string // access token -> secret
	calls    []string
}

func newFakeDiscogs(t *testing.T, method string) *fakeDiscogs {
	f := &fakeDiscogs{t: t, key: "ck", secret: "cs&secret", method: method, username: "Alice",
		requests: map[string]string{}, verified: map[string]string{}, access: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/request_token", func(w http.ResponseWriter, r *http.Request) {
		p, ok := f.verify(w, r, "")
		if !ok {
			return
		}
		if p.Get("oauth_callback") == "" {
			http.Error(w, "no callback", 400)
			return
		}
		f.mu.Lock()
		tok := fmt.Sprintf("rt%d", len(f.requests))
		f.requests[tok] = "rts" + tok
		f.mu.Unlock()
		fmt.Fprintf(w, "oauth_token=%s&oauth_token_secret=%s&oauth_callback_confirmed=true", tok, url.QueryEscape("rts"+tok))
	})
	mux.HandleFunc("GET /oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		// The user says yes: Discogs sends them back with a verifier.
		tok := r.URL.Query().Get("oauth_token")
		f.mu.Lock()
		_, ok := f.requests[tok]
		f.verified[tok] = "v-" + tok
		f.mu.Unlock()
		if !ok {
			http.Error(w, "unknown token", 400)
			return
		}
		w.Write([]byte("authorize " + tok))
	})
	mux.HandleFunc("POST /oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		p, ok := f.verify(w, r, "request")
		if !ok {
			return
		}
		tok := p.Get("oauth_token")
		f.mu.Lock()
		v := f.verified[tok]
		delete(f.requests, tok)
		f.access["at-"+tok] = "ats/" + tok
		f.mu.Unlock()
		if v == "" || p.Get("oauth_verifier") != v {
			http.Error(w, "bad verifier", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "oauth_token=%s&oauth_token_secret=%s", "at-"+tok, url.QueryEscape("ats/"+tok))
	})
	mux.HandleFunc("GET /oauth/identity", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := f.verify(w, r, "access"); !ok {
			return
		}
		fmt.Fprintf(w, `{"id": 1, "username": %q, "resource_url": "https://api.discogs.com/users/%s", "consumer_name": "cratestream"}`, f.username, f.username)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// verify checks the request's OAuth signature; kind is the token it must
// carry: "" none, "request" or "access".
func (f *fakeDiscogs) verify(w http.ResponseWriter, r *http.Request, kind string) (url.Values, bool) {
	f.mu.Lock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	if r.UserAgent() == "" || strings.HasPrefix(r.UserAgent(), "Go-http-client") {
		http.Error(w, "Discogs wants a User-Agent", http.StatusForbidden)
		return nil, false
	}
	p, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return nil, false
	}
	if p.Get("oauth_consumer_key") != f.key || p.Get("oauth_signature_method") != f.method || p.Get("oauth_nonce") == "" || p.Get("oauth_timestamp") == "" {
		http.Error(w, "bad oauth parameters", http.StatusUnauthorized)
		return nil, false
	}
	tokSecret := ""
	f.mu.Lock()
	switch kind {
	case "request":
		tokSecret = f.requests[p.Get("oauth_token")]
	case "access":
		tokSecret = f.access[p.Get("oauth_token")]
	}
	f.mu.Unlock()
	if kind != "" && tokSecret == "" {
		http.Error(w, "unknown token", http.StatusUnauthorized)
		return nil, false
	}
	sig := p.Get("oauth_signature")
	p.Del("oauth_signature")
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	want, _ := signature(f.method, r.Method, &u, p, f.secret, tokSecret)
	if sig != want {
		f.t.Errorf("%s %s: signature %q, want %q", r.Method, r.URL.Path, sig, want)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return nil, false
	}
	return p, true
}

func TestDiscogsLogin(t *testing.T) {
	for _, method := range []string{sigHMACSHA1, sigPlain} {
		t.Run(method, func(t *testing.T) {
			d := newFakeDiscogs(t, method)
			e := newEnv(t, func(c *Config) {
				c.Discogs = DiscogsConfig{ConsumerKey: d.key, ConsumerSecret: d.secret, APIURL: d.srv.URL, WebURL: d.srv.URL + "/", SignatureMethod: method}
				c.PublicURL = "http://gw.example"
			})
			// 1. Login: a request token, and a redirect to Discogs.
			w := e.do(t, "GET", "/auth/login?next=/carts", "", "")
			if w.Code != http.StatusFound {
				t.Fatalf("login: %d %s", w.Code, w.Body)
			}
			loc, _ := url.Parse(w.Header().Get("Location"))
			if loc.Host != strings.TrimPrefix(d.srv.URL, "http://") || loc.Path != "/oauth/authorize" || loc.Query().Get("oauth_token") == "" {
				t.Fatalf("redirect to %s", loc)
			}
			tok := loc.Query().Get("oauth_token")
			browser := loginCookieOf(t, w)
			// 2. The user authorizes at Discogs.
			resp, err := http.Get(loc.String())
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("authorize: %v %v", resp, err)
			}
			resp.Body.Close()
			// 3. Discogs sends the user back.
			w = e.do(t, "GET", "/auth/callback?oauth_token="+tok+"&oauth_verifier=v-"+tok, "", "", "Cookie", browser)
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/carts" {
				t.Fatalf("callback: %d %s %s", w.Code, w.Header(), w.Body)
			}
			var cookie *http.Cookie
			for _, c := range w.Result().Cookies() {
				if c.Name == SessionCookie {
					cookie = c
				}
			}
			if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.MaxAge <= 0 {
				t.Fatalf("session cookie %+v", cookie)
			}
			if w := e.do(t, "GET", "/api/v1/me", "", "", "Cookie", SessionCookie+"="+cookie.Value); w.Code != 200 || !strings.Contains(w.Body.String(), `"user":"Alice"`) {
				t.Fatalf("me: %d %s", w.Code, w.Body)
			}
			// The request token is single-use.
			if w := e.do(t, "GET", "/auth/callback?oauth_token="+tok+"&oauth_verifier=v-"+tok, "", "", "Cookie", browser); w.Code != 400 || decodeErr(t, w).Field != "oauth_token" {
				t.Fatalf("replayed callback: %d %s", w.Code, w.Body)
			}
			want := []string{"POST /oauth/request_token", "POST /oauth/access_token", "GET /oauth/identity"}
			if strings.Join(d.calls, ",") != strings.Join(want, ",") {
				t.Fatalf("calls %v, want %v", d.calls, want)
			}
		})
	}
}

func TestDiscogsLoginJSONAndErrors(t *testing.T) {
	d := newFakeDiscogs(t, sigHMACSHA1)
	e := newEnv(t, func(c *Config) {
		c.Discogs = DiscogsConfig{ConsumerKey: d.key, ConsumerSecret: d.secret, APIURL: d.srv.URL, WebURL: d.srv.URL}
	})
	w := e.do(t, "GET", "/auth/login?next=//evil.example", "", "")
	loc, _ := url.Parse(w.Header().Get("Location"))
	tok := loc.Query().Get("oauth_token")
	browser := loginCookieOf(t, w)
	resp, _ := http.Get(loc.String())
	resp.Body.Close()
	// A wrong verifier: Discogs refuses, we say so.
	if w := e.do(t, "GET", "/auth/callback?oauth_token="+tok+"&oauth_verifier=nope", "", "", "Cookie", browser); w.Code != http.StatusBadGateway {
		t.Fatalf("bad verifier: %d %s", w.Code, w.Body)
	}
	// A fresh login answered in JSON for API clients.
	w = e.do(t, "GET", "/auth/login?next=//evil.example", "", "")
	loc, _ = url.Parse(w.Header().Get("Location"))
	tok = loc.Query().Get("oauth_token")
	browser = loginCookieOf(t, w)
	resp, _ = http.Get(loc.String())
	resp.Body.Close()
	w = e.do(t, "GET", "/auth/callback?oauth_token="+tok+"&oauth_verifier=v-"+tok, "", "", "Accept", "application/json", "Cookie", browser)
	var sess Session
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &sess) != nil || sess.User != "Alice" || sess.Token == "" {
		t.Fatalf("json callback: %d %s", w.Code, w.Body)
	}
	if w := e.do(t, "GET", "/api/v1/me", sess.Token, ""); w.Code != 200 {
		t.Fatalf("bearer from login: %d", w.Code)
	}
	tests := []struct {
		path  string
		want  int
		field string
	}{
		{"/auth/callback?oauth_verifier=x", 400, "oauth_token"},
		{"/auth/callback?oauth_token=x", 400, "oauth_verifier"},
		{"/auth/callback?oauth_token=unknown&oauth_verifier=x", 400, "oauth_token"},
		{"/auth/callback?denied=x", 403, ""},
	}
	for _, tt := range tests {
		if w := e.do(t, "GET", tt.path, "", ""); w.Code != tt.want || decodeErr(t, w).Field != tt.field {
			t.Errorf("%s: %d %s", tt.path, w.Code, w.Body)
		}
	}
	// Without a consumer key there is no Discogs login; Discogs down is a 502.
	if w := newEnv(t, nil).do(t, "GET", "/auth/login", "", ""); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("unconfigured login: %d", w.Code)
	}
	down := newEnv(t, func(c *Config) {
		c.Discogs = DiscogsConfig{ConsumerKey: "k", ConsumerSecret: "s", APIURL: "http://127.0.0.1:1"}
	})
	if w := down.do(t, "GET", "/auth/login", "", ""); w.Code != http.StatusBadGateway {
		t.Fatalf("discogs down: %d", w.Code)
	}
}

func TestDemoLink(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DemoUser = "demo"; c.PublicURL = "http://localhost:8080/" })
	link, err := e.srv.DemoLink()
	if err != nil || !strings.HasPrefix(link, "http://localhost:8080/auth/demo?token=") {
		t.Fatalf("link %q %v", link, err)
	}
	path := strings.TrimPrefix(link, "http://localhost:8080")
	w := e.do(t, "GET", path, "", "")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
		t.Fatalf("demo login: %d %s", w.Code, w.Body)
	}
	c := w.Result().Cookies()
	if len(c) != 1 || c[0].Name != SessionCookie {
		t.Fatalf("cookies %v", c)
	}
	if w := e.do(t, "GET", "/api/v1/me", c[0].Value, ""); !strings.Contains(w.Body.String(), `"user":"demo"`) {
		t.Fatalf("me: %s", w.Body)
	}
	// One time only.
	if w := e.do(t, "GET", path, "", ""); w.Code != http.StatusForbidden || decodeErr(t, w).Field != "token" {
		t.Fatalf("second use: %d %s", w.Code, w.Body)
	}
	if w := e.do(t, "GET", "/auth/demo?token=guess", "", ""); w.Code != http.StatusForbidden {
		t.Fatalf("guessed token: %d", w.Code)
	}
	// Without a demo user the route is off.
	off := newEnv(t, nil)
	if _, err := off.srv.DemoLink(); err == nil {
		t.Fatal("DemoLink without a demo user")
	}
	if w := off.do(t, "GET", path, "", ""); w.Code != http.StatusNotFound {
		t.Fatalf("demo off: %d", w.Code)
	}
	// Logout clears the cookie.
	w = e.do(t, "POST", "/auth/logout", "", "")
	if w.Code != http.StatusNoContent || len(w.Result().Cookies()) != 1 || w.Result().Cookies()[0].MaxAge >= 0 {
		t.Fatalf("logout: %d %v", w.Code, w.Result().Cookies())
	}
}

// loginCookieOf is the Cookie header value of the login binding cookie a
// /auth/login answer set.
func loginCookieOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == loginCookie {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("no %s cookie in %v", loginCookie, w.Header())
	return ""
}

// The username of /oauth/identity is a user id everywhere: only a name as
// Discogs sends it is taken (a blank one was, found by FuzzIdentity).
func TestParseIdentity(t *testing.T) {
	for body, want := range map[string]string{
		`{"id": 1, "username": "example"}`:          "example",
		`{"id": 1, "username": "J\u00fcrgen_B.-2"}`: "Jürgen_B.-2",
		`{"username": " "}`:                         "",
		`{"username": " example"}`:                  "",
		`{"username": "ex\tample"}`:                 "",
		`{"username": "ex\u0000ample"}`:             "",
		"{\"username\": \"ex\xffample\"}":           "", // two such names would be one user
		`{"username": "ex\ud800ample"}`:             "",
		`{"username": ".."}`:                        "",
		`{"username": ""}`:                          "",
		`{"username": 5}`:                           "",
	} {
		got, err := parseIdentity([]byte(body))
		if got != want || (err == nil) != (want != "") {
			t.Errorf("%s: %q, %v; want %q", body, got, err, want)
		}
	}
}

package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sessions are stateless tokens: base64url(JSON claims) "." base64url(
// HMAC-SHA256(secret, claims part)). Browsers carry them in the
// cratestream_session cookie (HttpOnly, SameSite=Lax), API clients as
// "Authorization: Bearer <token>".

// SessionCookie is the session cookie's name.
const SessionCookie = "cratestream_session"

type claims struct {
	Sub string `json:"sub"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	// Via is how the user logged in ("discogs", "demo").
	Via string `json:"via,omitempty"`
}

var b64 = base64.RawURLEncoding

// IssueSession returns a session token for user and its expiry.
func (s *Server) IssueSession(user, via string) (string, time.Time) {
	now := s.cfg.Now()
	exp := now.Add(s.cfg.SessionTTL)
	body, _ := json.Marshal(claims{Sub: user, Iat: now.Unix(), Exp: exp.Unix(), Via: via})
	p := b64.EncodeToString(body)
	return p + "." + b64.EncodeToString(s.mac(p)), exp
}

func (s *Server) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.cfg.SessionSecret)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

var errBadSession = errors.New("invalid session token: log in again")

// verifySession returns the user of a valid, unexpired token.
func (s *Server) verifySession(tok string) (string, error) {
	p, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return "", errBadSession
	}
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(p)) {
		return "", errBadSession
	}
	body, err := b64.DecodeString(p)
	if err != nil {
		return "", errBadSession
	}
	var c claims
	if err := json.Unmarshal(body, &c); err != nil || c.Sub == "" {
		return "", errBadSession
	}
	if s.cfg.Now().Unix() >= c.Exp {
		return "", errors.New("session expired: log in again")
	}
	return c.Sub, nil
}

// sessionUser is the request's user: "" without a session; an error
// explains a token that was there but is not valid.
func (s *Server) sessionUser(r *http.Request) (string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return "", errors.New("authorization header: want Bearer <session token>")
		}
		return s.verifySession(strings.TrimSpace(tok))
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		return s.verifySession(c.Value)
	}
	return "", nil
}

// Session is the body of a login answered in JSON (Accept:
// application/json): what an API client puts in its Authorization header.
type Session struct {
	User    string `json:"user"`
	Token   string `json:"token"`
	Expires string `json:"expires"`
}

// startSession sets the cookie and redirects to next, or answers with the
// token in JSON when the client asked for JSON.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, user, via, next string) {
	tok, exp := s.IssueSession(user, via)
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: tok, Path: "/", Expires: exp,
		MaxAge: int(s.cfg.SessionTTL / time.Second), HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
	s.cfg.Logger.Info("logged in", "user", user, "via", via)
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, Session{User: user, Token: tok, Expires: exp.UTC().Format(time.RFC3339)})
		return
	}
	if next == "" {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func wantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}

// safeNext keeps only local paths as post-login destinations. Browsers
// drop tabs and newlines from a Location and read "\\" as "/", and
// http.Redirect cleans "/a/../x" to "/x", so a next with control
// characters or backslashes anywhere is refused, not only "//" up front.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') {
		return ""
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f {
			return ""
		}
	}
	return next
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ string) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
	w.WriteHeader(http.StatusNoContent)
}

// DiscogsConfig configures the Discogs OAuth 1.0a login.
type DiscogsConfig struct {
	ConsumerKey    string
	ConsumerSecret string
	// APIURL serves /oauth/request_token, /oauth/access_token and
	// /oauth/identity. Default https://api.discogs.com.
	APIURL string
	// WebURL serves /oauth/authorize, where the user is sent. Default
	// https://www.discogs.com.
	WebURL    string
	UserAgent string
	// SignatureMethod is HMAC-SHA1 (default) or PLAINTEXT.
	SignatureMethod string
}

func (d *DiscogsConfig) defaults() {
	if d.APIURL == "" {
		d.APIURL = "https://api.discogs.com"
	}
	if d.WebURL == "" {
		d.WebURL = "https://www.discogs.com"
	}
	d.APIURL = strings.TrimRight(d.APIURL, "/")
	d.WebURL = strings.TrimRight(d.WebURL, "/")
	if d.UserAgent == "" {
		d.UserAgent = "cratestream/1.0 (+https://github.com/cratestream/cratestream)"
	}
	if d.SignatureMethod == "" {
		d.SignatureMethod = sigHMACSHA1
	}
}

// authState holds pending OAuth logins and unused demo links, both short-
// lived and bounded.
type authState struct {
	mu      sync.Mutex
	pending map[string]pendingLogin // by request token
	demo    map[string]time.Time    // one-time demo tokens and their expiry
}

type pendingLogin struct {
	secret string
	next   string
	// browser is the login cookie of the browser that started the login:
	// only it may finish the login.
	browser string
	expires time.Time
}

const (
	maxPending   = 10000
	loginTimeout = 15 * time.Minute
	demoLinkTTL  = 24 * time.Hour
)

func newAuthState() *authState {
	return &authState{pending: make(map[string]pendingLogin), demo: make(map[string]time.Time)}
}

func (a *authState) addPending(token string, p pendingLogin, now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, v := range a.pending {
		if now.After(v.expires) {
			delete(a.pending, k)
		}
	}
	if len(a.pending) >= maxPending {
		return errors.New("too many logins in progress, try again in a few minutes")
	}
	a.pending[token] = p
	return nil
}

var (
	errUnknownLogin = errors.New("unknown or expired login: start again at /auth/login")
	errOtherBrowser = errors.New("this login was started in another browser: start again at /auth/login")
)

// takePending uses up the pending login of token if browser (the login
// cookie) started it. A login of another browser stays pending, so that
// whoever knows a request token cannot cancel someone else's login.
func (a *authState) takePending(token, browser string, now time.Time) (pendingLogin, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.pending[token]
	if !ok || now.After(p.expires) {
		delete(a.pending, token)
		return pendingLogin{}, errUnknownLogin
	}
	if browser == "" || subtle.ConstantTimeCompare([]byte(browser), []byte(p.browser)) != 1 {
		return pendingLogin{}, errOtherBrowser
	}
	delete(a.pending, token)
	return p, nil
}

// loginBrowser returns the browser's login cookie, a new one when it has
// none (several logins in one browser share it), and (re)sets it for the
// login's lifetime.
func (s *Server) loginBrowser(w http.ResponseWriter, r *http.Request) (string, error) {
	v := ""
	if c, err := r.Cookie(loginCookie); err == nil && len(c.Value) == 32 {
		if _, err := hex.DecodeString(c.Value); err == nil {
			v = c.Value
		}
	}
	if v == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		v = hex.EncodeToString(b[:])
	}
	// SameSite=Lax: sent on Discogs' top-level redirect back to the callback.
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: v, Path: "/auth/", MaxAge: int(loginTimeout / time.Second),
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
	return v, nil
}

// login starts the OAuth dance: a request token from Discogs, then the
// user is sent to Discogs to authorize us.
func (s *Server) login(w http.ResponseWriter, r *http.Request, _ string) {
	d := s.cfg.Discogs
	if d.ConsumerKey == "" {
		msg := "Discogs login is not configured (DISCOGS_CONSUMER_KEY)"
		if s.cfg.DemoUser != "" {
			msg += ": use the demo link the demo printed"
		}
		writeError(w, http.StatusServiceUnavailable, msg, "")
		return
	}
	callback := s.baseURL(r) + "/auth/callback"
	vals, err := s.oauthCall(r.Context(), http.MethodPost, "/oauth/request_token", "", "", map[string]string{"oauth_callback": callback})
	if err != nil {
		s.cfg.Logger.Warn("discogs request token", "err", err)
		writeError(w, http.StatusBadGateway, "Discogs did not give a request token: "+err.Error(), "")
		return
	}
	tok, secret := vals.Get("oauth_token"), vals.Get("oauth_token_secret")
	if tok == "" || secret == "" {
		writeError(w, http.StatusBadGateway, "Discogs answered the request token call without a token", "")
		return
	}
	if c := vals.Get("oauth_callback_confirmed"); c != "" && c != "true" {
		writeError(w, http.StatusBadGateway, "Discogs did not confirm the callback", "")
		return
	}
	browser, err := s.loginBrowser(w, r)
	if err != nil {
		writeErr(w, err)
		return
	}
	now := s.cfg.Now()
	if err := s.auth.addPending(tok, pendingLogin{secret: secret, next: safeNext(r.URL.Query().Get("next")), browser: browser, expires: now.Add(loginTimeout)}, now); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error(), "")
		return
	}
	http.Redirect(w, r, d.WebURL+"/oauth/authorize?oauth_token="+url.QueryEscape(tok), http.StatusFound)
}

// callback finishes the dance: the verifier buys an access token, the
// access token the user's identity, and the identity a session.
func (s *Server) callback(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	if q.Has("denied") {
		writeError(w, http.StatusForbidden, "the Discogs login was declined", "")
		return
	}
	tok, verifier := q.Get("oauth_token"), q.Get("oauth_verifier")
	if tok == "" {
		writeError(w, http.StatusBadRequest, "missing oauth_token", "oauth_token")
		return
	}
	if verifier == "" {
		writeError(w, http.StatusBadRequest, "missing oauth_verifier", "oauth_verifier")
		return
	}
	var browser string
	if c, err := r.Cookie(loginCookie); err == nil {
		browser = c.Value
	}
	p, err := s.auth.takePending(tok, browser, s.cfg.Now())
	if errors.Is(err, errOtherBrowser) {
		writeError(w, http.StatusForbidden, err.Error(), "oauth_token")
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "oauth_token")
		return
	}
	vals, err := s.oauthCall(r.Context(), http.MethodPost, "/oauth/access_token", tok, p.secret, map[string]string{"oauth_verifier": verifier})
	if err != nil {
		s.cfg.Logger.Warn("discogs access token", "err", err)
		writeError(w, http.StatusBadGateway, "Discogs did not give an access token: "+err.Error(), "")
		return
	}
	access, accessSecret := vals.Get("oauth_token"), vals.Get("oauth_token_secret")
	if access == "" || accessSecret == "" {
		writeError(w, http.StatusBadGateway, "Discogs answered the access token call without a token", "")
		return
	}
	user, err := s.identity(r.Context(), access, accessSecret)
	if err != nil {
		s.cfg.Logger.Warn("discogs identity", "err", err)
		writeError(w, http.StatusBadGateway, "Discogs did not say who you are: "+err.Error(), "")
		return
	}
	s.startSession(w, r, user, "discogs", p.next)
}

// oauthCall makes a signed call to the Discogs API and parses a
// form-encoded answer.
func (s *Server) oauthCall(ctx context.Context, method, path, token, tokenSecret string, extra map[string]string) (url.Values, error) {
	body, err := s.signedDo(ctx, method, path, token, tokenSecret, extra)
	if err != nil {
		return nil, err
	}
	vals, err := url.ParseQuery(strings.TrimSpace(string(body)))
	if err != nil {
		return nil, fmt.Errorf("malformed answer: %w", err)
	}
	return vals, nil
}

func (s *Server) signedDo(ctx context.Context, method, path, token, tokenSecret string, extra map[string]string) ([]byte, error) {
	d := s.cfg.Discogs
	u, err := url.Parse(d.APIURL + path)
	if err != nil {
		return nil, err
	}
	params := oauthParams(d.ConsumerKey, token, d.SignatureMethod, s.cfg.Now(), extra)
	auth, err := authorizationHeader(d.SignatureMethod, method, u, params, d.ConsumerSecret, tokenSecret)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("User-Agent", d.UserAgent)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %.200s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// identity asks Discogs whose access token this is.
func (s *Server) identity(ctx context.Context, token, secret string) (string, error) {
	body, err := s.signedDo(ctx, http.MethodGet, "/oauth/identity", token, secret, nil)
	if err != nil {
		return "", err
	}
	return parseIdentity(body)
}

// parseIdentity reads the username of an /oauth/identity answer. The
// username becomes the user id of the session, of Kafka and Redis keys,
// and the name the sync asks Discogs for, so it is taken only as Discogs
// would send it: JSON decoding turns invalid UTF-8 and lone surrogates into
// U+FFFD, which would log two different names in as one user; blank names,
// outer spaces, control characters, "." and ".." are no Discogs names (the
// sync refuses the last two).
func parseIdentity(body []byte) (string, error) {
	var id struct {
		ID       int64  `json:"id"`
		Username string `json:"username"`
	}
	if err := json.Unmarshal(body, &id); err != nil {
		return "", fmt.Errorf("identity: %w", err)
	}
	name := id.Username
	switch {
	case name == "":
		return "", errors.New("identity without a username")
	case name == "." || name == ".." || strings.TrimSpace(name) != name ||
		strings.ContainsRune(name, utf8.RuneError) || strings.ContainsFunc(name, unicode.IsControl):
		return "", fmt.Errorf("identity: %q is not a Discogs username", name)
	}
	return name, nil
}

// DemoLink mints a one-time link that logs in as the demo user (valid for
// a day). It is an absolute URL when PublicURL is set, a path otherwise.
func (s *Server) DemoLink() (string, error) {
	if s.cfg.DemoUser == "" {
		return "", errors.New("gateway: no demo user configured")
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b[:])
	now := s.cfg.Now()
	s.auth.mu.Lock()
	for k, exp := range s.auth.demo {
		if now.After(exp) {
			delete(s.auth.demo, k)
		}
	}
	s.auth.demo[tok] = now.Add(demoLinkTTL)
	s.auth.mu.Unlock()
	return s.cfg.PublicURL + "/auth/demo?token=" + tok, nil
}

func (s *Server) demoLogin(w http.ResponseWriter, r *http.Request, _ string) {
	if s.cfg.DemoUser == "" {
		writeError(w, http.StatusNotFound, "demo login is off", "")
		return
	}
	tok := r.URL.Query().Get("token")
	if tok == "" {
		writeError(w, http.StatusBadRequest, "missing token", "token")
		return
	}
	now := s.cfg.Now()
	s.auth.mu.Lock()
	exp, ok := s.auth.demo[tok]
	delete(s.auth.demo, tok)
	s.auth.mu.Unlock()
	if !ok || now.After(exp) {
		writeError(w, http.StatusForbidden, "this demo link was used already or has expired", "token")
		return
	}
	s.startSession(w, r, s.cfg.DemoUser, "demo", safeNext(r.URL.Query().Get("next")))
}

// loginCookie binds a pending Discogs login to the browser that started it.
const loginCookie = "cratestream_login"

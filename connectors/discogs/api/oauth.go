package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// SignatureMethod is an OAuth 1.0a signature method Discogs accepts.
type SignatureMethod string

const (
	HMACSHA1 SignatureMethod = "HMAC-SHA1"
	// PlainText sends the secrets themselves; Discogs accepts it because
	// the API is HTTPS-only. Never use it against a plain-HTTP base URL
	// outside tests.
	PlainText SignatureMethod = "PLAINTEXT"
)

// OAuth1 holds OAuth 1.0a credentials (RFC 5849) for an already
// authorised user: obtaining the access token is out of scope.
type OAuth1 struct {
	ConsumerKey, ConsumerSecret string
	Token, TokenSecret          string
	// Method defaults to HMACSHA1.
	Method SignatureMethod
	// Nonce returns a fresh nonce per request; nil uses crypto/rand. Tests
	// inject a fixed one (the timestamp comes from Config.Now).
	Nonce func() string
}

func (o *OAuth1) validate() error {
	switch {
	case o.ConsumerKey == "" || o.ConsumerSecret == "":
		return errors.New("discogs: OAuth needs a consumer key and secret")
	case o.Token == "" || o.TokenSecret == "":
		return errors.New("discogs: OAuth needs an access token and secret")
	}
	switch o.Method {
	case "", HMACSHA1, PlainText:
		return nil
	}
	return fmt.Errorf("discogs: unsupported OAuth signature method %q", o.Method)
}

func (o *OAuth1) method() SignatureMethod {
	if o.Method == "" {
		return HMACSHA1
	}
	return o.Method
}

func (o *OAuth1) nonce() string {
	if o.Nonce != nil {
		return o.Nonce()
	}
	return rand.Text()
}

// authorization returns the Authorization header of a request to u.
// form holds the parameters of an application/x-www-form-urlencoded body
// (nil for GET): RFC 5849 §3.4.1.3.1 signs them together with the query.
func (o *OAuth1) authorization(method string, u *url.URL, form url.Values, nonce string, timestamp int64) (string, error) {
	oauth := [][2]string{
		{"oauth_consumer_key", o.ConsumerKey},
		{"oauth_nonce", nonce},
		{"oauth_signature_method", string(o.method())},
		{"oauth_timestamp", strconv.FormatInt(timestamp, 10)},
		{"oauth_token", o.Token},
		{"oauth_version", "1.0"},
	}
	var sig string
	switch o.method() {
	case PlainText:
		sig = o.signingKey()
	case HMACSHA1:
		base, err := signatureBaseString(method, u, form, oauth)
		if err != nil {
			return "", err
		}
		sig = hmacSHA1(o.signingKey(), base)
	default:
		return "", fmt.Errorf("discogs: unsupported OAuth signature method %q", o.Method)
	}
	var b strings.Builder
	b.WriteString("OAuth ")
	for i, kv := range append(oauth, [2]string{"oauth_signature", sig}) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `%s="%s"`, kv[0], percentEncode(kv[1]))
	}
	return b.String(), nil
}

// signingKey is RFC 5849 §3.4.2's key, which is also the PLAINTEXT
// signature (§3.4.4).
func (o *OAuth1) signingKey() string {
	return percentEncode(o.ConsumerSecret) + "&" + percentEncode(o.TokenSecret)
}

func hmacSHA1(key, text string) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(text))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// signatureBaseString builds RFC 5849 §3.4.1: METHOD & encoded base URI &
// encoded normalised parameters (query, form body and oauth_* parameters,
// each name and value percent-encoded, sorted by name then value, joined
// with '=' and '&', then encoded once more as a whole).
func signatureBaseString(method string, u *url.URL, form url.Values, oauth [][2]string) (string, error) {
	// The query is parsed as x-www-form-urlencoded ("+" is a space), as the
	// RFC requires, then re-encoded with the stricter §3.6 rules.
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", fmt.Errorf("discogs: OAuth: query of %s: %w", u.Redacted(), err)
	}
	var params [][2]string
	for _, vs := range []url.Values{query, form} {
		for k, list := range vs {
			for _, v := range list {
				params = append(params, [2]string{percentEncode(k), percentEncode(v)})
			}
		}
	}
	for _, kv := range oauth {
		params = append(params, [2]string{percentEncode(kv[0]), percentEncode(kv[1])})
	}
	slices.SortFunc(params, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	pairs := make([]string, len(params))
	for i, kv := range params {
		pairs[i] = kv[0] + "=" + kv[1]
	}
	return strings.ToUpper(method) + "&" + percentEncode(baseURI(u)) + "&" + percentEncode(strings.Join(pairs, "&")), nil
}

// baseURI is RFC 5849 §3.4.1.2: lower-case scheme and host, the port only
// when it is not the scheme's default, the path, no query or fragment.
func baseURI(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal
	}
	if p := u.Port(); p != "" && !(scheme == "http" && p == "80") && !(scheme == "https" && p == "443") {
		host += ":" + p
	}
	// The path as it goes on the request line, which always starts with
	// "/" (a URL built with JoinPath on a bare host lacks it).
	path := u.EscapedPath()
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return scheme + "://" + host + path
}

// percentEncode is RFC 5849 §3.6: every byte but ALPHA, DIGIT, '-', '.',
// '_' and '~' becomes %XX with upper-case hex. url.QueryEscape differs
// (space as '+', '~' escaped), which would break signatures.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

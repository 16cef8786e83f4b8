package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// OAuth 1.0a request signing (RFC 5849), as Discogs' OAuth flow needs it:
// HMAC-SHA1 or PLAINTEXT signatures in the Authorization header.

const (
	sigHMACSHA1 = "HMAC-SHA1"
	sigPlain    = "PLAINTEXT"
)

// percentEncode is RFC 5849 3.6: everything but unreserved characters is
// %XX with upper-case hex.
func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// baseURI is RFC 5849 3.4.1.2: scheme and host lower case, default ports
// dropped, no query or fragment.
func baseURI(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if p := u.Port(); p != "" && !(scheme == "http" && p == "80") && !(scheme == "https" && p == "443") {
		host += ":" + p
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}

// signatureBase is RFC 5849 3.4.1: method, base URI and the normalized
// parameters (params plus the URL's query), each percent-encoded.
func signatureBase(method string, u *url.URL, params url.Values) string {
	type kv struct{ k, v string }
	var all []kv
	for k, vs := range params {
		for _, v := range vs {
			all = append(all, kv{percentEncode(k), percentEncode(v)})
		}
	}
	for k, vs := range u.Query() {
		for _, v := range vs {
			all = append(all, kv{percentEncode(k), percentEncode(v)})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].k != all[j].k {
			return all[i].k < all[j].k
		}
		return all[i].v < all[j].v
	})
	pairs := make([]string, len(all))
	for i, p := range all {
		pairs[i] = p.k + "=" + p.v
	}
	return strings.ToUpper(method) + "&" + percentEncode(baseURI(u)) + "&" + percentEncode(strings.Join(pairs, "&"))
}

// signature signs a request with the consumer and token secrets.
func signature(sigMethod, method string, u *url.URL, params url.Values, consumerSecret, tokenSecret string) (string, error) {
	key := percentEncode(consumerSecret) + "&" + percentEncode(tokenSecret)
	switch sigMethod {
	case sigPlain:
		return key, nil
	case sigHMACSHA1:
		m := hmac.New(sha1.New, []byte(key))
		m.Write([]byte(signatureBase(method, u, params)))
		return base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
	}
	return "", fmt.Errorf("oauth: unsupported signature method %q", sigMethod)
}

// oauthParams are the protocol parameters of one request.
func oauthParams(consumerKey, token, sigMethod string, now time.Time, extra map[string]string) url.Values {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	p := url.Values{
		"oauth_consumer_key":     {consumerKey},
		"oauth_nonce":            {hex.EncodeToString(nonce[:])},
		"oauth_signature_method": {sigMethod},
		"oauth_timestamp":        {strconv.FormatInt(now.Unix(), 10)},
		"oauth_version":          {"1.0"},
	}
	if token != "" {
		p.Set("oauth_token", token)
	}
	for k, v := range extra {
		p.Set(k, v)
	}
	return p
}

// authorizationHeader signs params for the request and returns the
// Authorization header value.
func authorizationHeader(sigMethod, method string, u *url.URL, params url.Values, consumerSecret, tokenSecret string) (string, error) {
	sig, err := signature(sigMethod, method, u, params, consumerSecret, tokenSecret)
	if err != nil {
		return "", err
	}
	keys := make([]string, 0, len(params)+1)
	for k := range params {
		keys = append(keys, k)
	}
	keys = append(keys, "oauth_signature")
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := params.Get(k)
		if k == "oauth_signature" {
			v = sig
		}
		parts = append(parts, percentEncode(k)+`="`+percentEncode(v)+`"`)
	}
	return "OAuth " + strings.Join(parts, ", "), nil
}

// parseAuthorization reads the parameters of an "OAuth k="v", ..." header
// (the test stand-in of Discogs uses it to verify signatures).
func parseAuthorization(h string) (url.Values, error) {
	rest, ok := strings.CutPrefix(h, "OAuth ")
	if !ok {
		return nil, fmt.Errorf("not an OAuth header: %q", h)
	}
	out := url.Values{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("malformed OAuth parameter %q", part)
		}
		v = strings.Trim(v, `"`)
		kk, err1 := url.PathUnescape(k)
		vv, err2 := url.PathUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("malformed OAuth parameter %q", part)
		}
		out.Set(kk, vv)
	}
	return out, nil
}

package api

import (
	"net/url"
	"strings"
	"testing"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// parseOAuthHeader splits `OAuth k="v", ...` into decoded values.
func parseOAuthHeader(t *testing.T, h string) map[string]string {
	t.Helper()
	rest, ok := strings.CutPrefix(h, "OAuth ")
	if !ok {
		t.Fatalf("Authorization %q does not start with OAuth", h)
	}
	out := map[string]string{}
	for part := range strings.SplitSeq(rest, ", ") {
		k, v, ok := strings.Cut(part, "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			t.Fatalf("bad OAuth parameter %q in %q", part, h)
		}
		dv, err := url.PathUnescape(v[1 : len(v)-1])
		if err != nil {
			t.Fatal(err)
		}
		out[k] = dv
	}
	return out
}

// Published vectors of the HMAC-SHA1 signature and its base string. The
// secrets, nonces and timestamps are the ones printed with each example.
func TestSignatureVectors(t *testing.T) {
	tests := []struct {
		name, method, url, body string
		oauth                   [][2]string
		consumerSecret          string
		tokenSecret             string
		wantBase                string // "" when the source prints none
		wantSig                 string // "" when the source gives no secrets
	}{
		{
			// RFC 5849 §3.4.1.1: the base string only (the RFC does not
			// give the secrets of this example). Covers a repeated name,
			// '+' as space in the body, names without '=', and values
			// that are already percent-encoded in the query.
			name:   "RFC 5849 3.4.1.1",
			method: "POST", url: "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b",
			body: "c2&a3=2+q",
			oauth: [][2]string{
				{"oauth_consumer_key", "9djdj82h48djs9d2"}, {"oauth_token", "kkk9d7dh3k39sjv7"},
				{"oauth_signature_method", "HMAC-SHA1"}, {"oauth_timestamp", "137131201"},
				{"oauth_nonce", "7d8f3e4a"},
			},
			wantBase: "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7",
		},
		{
			name:   "RFC 5849 1.2 photos",
			method: "GET", url: "http://photos.example.net/photos?file=vacation.jpg&size=original",
			oauth: [][2]string{
				{"oauth_consumer_key", "dpf43f3p2l4k3l03"}, {"oauth_token", "nnch734d00sl2jdk"},
				{"oauth_signature_method", "HMAC-SHA1"}, {"oauth_timestamp", "137131202"},
				{"oauth_nonce", "chapoH"},
			},
			consumerSecret: "kd94hf93k423kf44", tokenSecret: "pfkkdhi9sl3r4s00",
			wantSig: "MdpQcU8iPSUjWoN/UDMsK2sui9I=",
		},
		{
			name:   "OAuth Core 1.0 appendix A",
			method: "GET", url: "http://photos.example.net/photos?file=vacation.jpg&size=original",
			oauth: [][2]string{
				{"oauth_consumer_key", "dpf43f3p2l4k3l03"}, {"oauth_token", "nnch734d00sl2jdk"},
				{"oauth_signature_method", "HMAC-SHA1"}, {"oauth_timestamp", "1191242096"},
				{"oauth_nonce", "kllo9940pd9333jh"}, {"oauth_version", "1.0"},
			},
			consumerSecret: "kd94hf93k423kf44", tokenSecret: "pfkkdhi9sl3r4s00",
			wantBase: "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal",
			wantSig:  "tR3+Ty81lMeYAr/Fid0kMTYa/WM=",
		},
		{
			// Twitter's "Creating a signature" walkthrough: '+', ',', '!'
			// and spaces in a form body.
			name:   "Twitter statuses/update",
			method: "POST", url: "https://api.twitter.com/1.1/statuses/update.json?include_entities=true",
			body: "status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21",
			oauth: [][2]string{
				{"oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"},
				{"oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"},
				{"oauth_signature_method", "HMAC-SHA1"}, {"oauth_timestamp", "1318622958"},
				{"oauth_token", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"},
				{"oauth_version", "1.0"},
			},
			consumerSecret: "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
			tokenSecret:    "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
			wantBase:       "POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key%3Dxvz1evFS4wEEPTGEFPHBog%26oauth_nonce%3DkYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1318622958%26oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb%26oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520signed%2520OAuth%2520request%2521",
			wantSig:        "hCtSmYh+iHYCEqBWrE7C7hYmtUk=",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			form, err := url.ParseQuery(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			base, err := signatureBaseString(tc.method, mustURL(t, tc.url), form, tc.oauth)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantBase != "" && base != tc.wantBase {
				t.Errorf("base string\n got %s\nwant %s", base, tc.wantBase)
			}
			if tc.wantSig != "" {
				o := &OAuth1{ConsumerSecret: tc.consumerSecret, TokenSecret: tc.tokenSecret}
				if got := hmacSHA1(o.signingKey(), base); got != tc.wantSig {
					t.Errorf("signature %s, want %s", got, tc.wantSig)
				}
			}
		})
	}
}

// The full header path (parameter set, signing, header encoding) on the
// two vectors that include oauth_version, which this client always sends.
func TestAuthorizationHeaderVectors(t *testing.T) {
	tests := []struct {
		name, method, url, body string
		o                       OAuth1
		nonce                   string
		ts                      int64
		wantSig                 string
	}{
		{
			name: "Twitter", method: "POST",
			url:  "https://api.twitter.com/1.1/statuses/update.json?include_entities=true",
			body: "status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21",
			o: OAuth1{
				ConsumerKey: "xvz1evFS4wEEPTGEFPHBog", ConsumerSecret: "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
				Token: "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", TokenSecret: "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
			},
			nonce: "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", ts: 1318622958,
			wantSig: "hCtSmYh+iHYCEqBWrE7C7hYmtUk=",
		},
		{
			name: "OAuth Core 1.0 appendix A", method: "GET",
			url: "http://photos.example.net/photos?file=vacation.jpg&size=original",
			o: OAuth1{
				ConsumerKey: "dpf43f3p2l4k3l03", ConsumerSecret: "kd94hf93k423kf44",
				Token: "nnch734d00sl2jdk", TokenSecret: "pfkkdhi9sl3r4s00", Method: HMACSHA1,
			},
			nonce: "kllo9940pd9333jh", ts: 1191242096,
			wantSig: "tR3+Ty81lMeYAr/Fid0kMTYa/WM=",
		},
		{
			// PLAINTEXT's signature is the encoded key itself (§3.4.4);
			// the header encodes it once more (§3.5.1).
			name: "PLAINTEXT", method: "GET", url: "https://api.discogs.com/users/x/wants?page=1",
			o: OAuth1{
				ConsumerKey: "ck", ConsumerSecret: "a b&c", Token: "tk", TokenSecret: "d~e", Method: PlainText,
			},
			nonce: "n", ts: 1,
			wantSig: "a%20b%26c&d~e",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			form, err := url.ParseQuery(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			h, err := tc.o.authorization(tc.method, mustURL(t, tc.url), form, tc.nonce, tc.ts)
			if err != nil {
				t.Fatal(err)
			}
			p := parseOAuthHeader(t, h)
			if p["oauth_signature"] != tc.wantSig {
				t.Errorf("oauth_signature %q, want %q (header %s)", p["oauth_signature"], tc.wantSig, h)
			}
			if p["oauth_consumer_key"] != tc.o.ConsumerKey || p["oauth_token"] != tc.o.Token ||
				p["oauth_nonce"] != tc.nonce || p["oauth_version"] != "1.0" {
				t.Errorf("header parameters %v", p)
			}
		})
	}
}

func TestPercentEncode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abcXYZ019-._~", "abcXYZ019-._~"},
		{"Ladies + Gentlemen", "Ladies%20%2B%20Gentlemen"},
		{"a&b=c", "a%26b%3Dc"},
		{"*!'()", "%2A%21%27%28%29"},
		{"é☃", "%C3%A9%E2%98%83"},
		{"%3D", "%253D"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := percentEncode(tc.in); got != tc.want {
			t.Errorf("percentEncode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBaseURI(t *testing.T) {
	tests := []struct{ in, want string }{
		// RFC 5849 §3.4.1.2's two examples.
		{"HTTP://EXAMPLE.COM:80/r%20v/X?id=123", "http://example.com/r%20v/X"},
		{"https://www.example.net:8080/?q=1", "https://www.example.net:8080/"},
		{"https://api.discogs.com:443/users/a%2Fb/wants?page=2#frag", "https://api.discogs.com/users/a%2Fb/wants"},
		{"http://127.0.0.1:34567", "http://127.0.0.1:34567/"},
		{"http://[::1]:8080/x", "http://[::1]:8080/x"},
		{"http://example.com", "http://example.com/"},
	}
	for _, tc := range tests {
		if got := baseURI(mustURL(t, tc.in)); got != tc.want {
			t.Errorf("baseURI(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

package gateway

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/grade"
	"github.com/cratestream/cratestream/internal/money"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// The seeds of these targets are synthesised: no fixture holds cart
// bodies, cursors or identity answers.

// FuzzIdentity reads arbitrary /oauth/identity answers: either an error,
// or a username as Discogs sent it (no U+FFFD standing for bytes JSON
// could not decode, no control characters or outer spaces, not "." or
// "..") that survives a session token unchanged.
func FuzzIdentity(f *testing.F) {
	f.Add([]byte(`{"id": 1578108, "username": "example", "resource_url": "https://api.discogs.com/users/example", "consumer_name": "cratestream"}`))
	f.Add([]byte(`{"id": 1, "username": "J\u00fcrgen_B.-2"}`))
	f.Add([]byte(`{"id": 1, "username": ""}`))
	f.Add([]byte(`{"id": "1", "username": "x"}`))
	s, err := New(Config{SessionSecret: testSecret})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		name, err := parseIdentity(body)
		if err != nil {
			return
		}
		if name == "" || name == "." || name == ".." || strings.TrimSpace(name) != name || !utf8.ValidString(name) ||
			strings.ContainsRune(name, utf8.RuneError) || strings.ContainsFunc(name, unicode.IsControl) {
			t.Fatalf("username %q accepted", name)
		}
		tok, _ := s.IssueSession(name, "discogs")
		if got, err := s.verifySession(tok); err != nil || got != name {
			t.Fatalf("session of %q is %q, %v", name, got, err)
		}
	})
}

// topicRe is what Kafka accepts as a topic name.
var topicRe = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// FuzzLastEventID decodes arbitrary Last-Event-ID values: an error, or
// cursors of Kafka topic names at non-negative partitions and offsets
// whose encoding decodes to the same cursors. A cursor formatted from a
// topic, partition and offset decodes to them.
func FuzzLastEventID(f *testing.F) {
	f.Add("carts.v1:7:55,request-status.v1:3:120", "carts.v1", int32(7), int64(55))
	f.Add("", "request-status.v1", int32(0), int64(0))
	f.Add(" request-status.v1:4:107 ", "x", int32(2147483647), int64(9223372036854775807))
	f.Add("a:1:2,a:1:3", "a", int32(-1), int64(1))
	f.Add("garbage", "", int32(1), int64(-1))
	f.Fuzz(func(t *testing.T, id, topic string, partition int32, offset int64) {
		if cur, err := decodeCursor(id); err == nil {
			for at, off := range cur {
				if !topicRe.MatchString(at.topic) || at.partition < 0 || off < 0 {
					t.Fatalf("%q: cursor %v:%d:%d", id, at.topic, at.partition, off)
				}
			}
			enc := encodeCursor(cur)
			again, err := decodeCursor(enc)
			if err != nil || !maps.Equal(cur, again) {
				t.Fatalf("%q decodes to %v, encoded %q, decoded again %v, %v", id, cur, enc, again, err)
			}
		}
		if !topicRe.MatchString(topic) || partition < 0 || offset < 0 {
			return
		}
		want := map[tp]int64{{topic, partition}: offset}
		got, err := decodeCursor(encodeCursor(want))
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("%q decodes to %v, %v", encodeCursor(want), got, err)
		}
	})
}

// FuzzCartCriteria posts arbitrary bodies to the criteria decoder of POST
// /api/v1/carts: every refusal is a *fieldError (a 400 naming the field),
// every accepted body gives criteria inside the documented bounds that
// marshal, and those criteria written back as a body give the same
// criteria.
func FuzzCartCriteria(f *testing.F) {
	for _, b := range []string{
		`{"budget": {"amount_minor": 5000, "currency": "EUR"}, "min_media_cond": "VG+", "min_seller_rating": 98.5, "min_qty": 2,
		  "countries": ["United States", " Germany ", "Germany"], "wantlist_ratio": 0.25, "top_n": 5, "objective": "sum", "multi_seller": true}`,
		`{"budget": {"amount": "50.00", "currency": "usd"}}`,
		`{"budget": "€50"}`,
		`{"budget": "50.00 EUR", "min_media_cond": "Near Mint (NM or M-)"}`,
		`{"budget": "¥1,500", "objective": "seed", "top_n": 100}`,
		`{"budget": {"amount_minor": 0, "currency": "EUR"}}`,
		`{"budget": {"amount_minor": 1, "amount": "1", "currency": "EUR"}}`,
		`{"budget": "50 EUR", "wantlist_ratio": 1.5}`,
		`{"budget": "50 EUR", "extra": 1}`,
		`{"budget": "50 EUR"} {}`,
	} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := criteriaOf(body)
		var fe *fieldError
		if err != nil {
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *fieldError", err, err)
			}
			return
		}
		checkCriteria(t, c)
		again, err := criteriaOf(criteriaBody(t, c))
		if err != nil || !proto.Equal(again, c) {
			t.Fatalf("criteria %v written as %s read back as %v, %v", c, criteriaBody(t, c), again, err)
		}
	})
}

// criteriaOf decodes body as the handler does.
func criteriaOf(body []byte) (*pb.CartCriteria, error) {
	r := httptest.NewRequest("POST", "/api/v1/carts", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/json")
	var c CartCriteriaJSON
	if err := decodeBody(r, &c); err != nil {
		return nil, err
	}
	return c.Criteria()
}

func checkCriteria(t *testing.T, c *pb.CartCriteria) {
	t.Helper()
	b := c.Budget
	if b == nil || b.AmountMinor <= 0 || b.AmountMinor > maxBudgetMinor || !money.Known(b.Currency) {
		t.Fatalf("budget %v", b)
	}
	if c.MinMedia < pb.MediaGrade_MEDIA_GRADE_UNSPECIFIED || c.MinMedia > pb.MediaGrade_MEDIA_GRADE_POOR ||
		!(c.MinSellerRating >= 0 && c.MinSellerRating <= 100) || c.MinQty < 0 || c.MinQty > maxMinQty ||
		!(c.WantlistRatio >= 0 && c.WantlistRatio <= 1) || c.TopN < 1 || c.TopN > maxTopN {
		t.Fatalf("criteria out of bounds: %v", c)
	}
	if c.Objective != "" && c.Objective != "seed" && c.Objective != "sum" {
		t.Fatalf("objective %q", c.Objective)
	}
	seen := map[string]bool{}
	for _, cn := range c.ShipsFrom {
		if cn == "" || len(cn) > maxCountryBytes || seen[cn] || strings.Join(strings.Fields(cn), " ") != cn {
			t.Fatalf("countries %q", c.ShipsFrom)
		}
		seen[cn] = true
	}
	if len(c.ShipsFrom) > maxCountries {
		t.Fatalf("%d countries", len(c.ShipsFrom))
	}
	if _, err := proto.Marshal(c); err != nil {
		t.Fatalf("criteria do not marshal: %v", err)
	}
}

// criteriaBody writes c as a POST /api/v1/carts body.
func criteriaBody(t *testing.T, c *pb.CartCriteria) []byte {
	ratio, rating := c.WantlistRatio, c.MinSellerRating
	qty, top := int64(c.MinQty), int64(c.TopN)
	media := grade.Media(c.MinMedia)
	body, err := json.Marshal(map[string]any{
		"budget":            map[string]any{"amount_minor": c.Budget.AmountMinor, "currency": c.Budget.Currency},
		"min_media_cond":    media,
		"min_seller_rating": rating,
		"min_qty":           qty,
		"countries":         c.ShipsFrom,
		"wantlist_ratio":    ratio,
		"top_n":             top,
		"objective":         c.Objective,
		"multi_seller":      c.MultiSeller,
	})
	if err != nil {
		t.Fatal(err) // numbers in bounds and strings always encode
	}
	return body
}

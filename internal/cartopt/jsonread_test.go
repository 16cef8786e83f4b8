package cartopt

import (
	"strings"
	"testing"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

const minimalInput = `{"format": "cart-input/1", "name": "t",
 "criteria": {"budget": 100, "currency": "USD", "min_media_cond": "Very Good Plus (VG+)", "seller_rating": 98,
              "min_qty": 2, "country": ["United States"], "top_n": 3, "future_field": {"x": [1, 2.5e3, null, true]}},
 "rates_per_eur": {"EUR": {"rate": 1.0, "symbol": "\u20ac"}, "USD": {"rate": 1.1456, "symbol": "$"}, "JPY": 119.04},
 "candidates": [{"release_id": 1, "score": 0.5}, {"release_id": 2, "score": 1.25, "why": "x"}],
 "listings": [
  {"listing_id": 10, "release_id": 1, "seller_id": 7, "seller_name": "caf\u00e9 \"records\"", "seller_rating": 99.5,
   "country": "United States", "price": 17.58, "currency": "USD", "shipping": 4.50, "shipping_unavailable": false,
   "media_cond": "Near Mint (NM or M-)", "sleeve_cond": "Generic", "cart_url": "https://example.com/?add=10"},
  {"listing_id": 11, "release_id": 2, "seller_id": 7, "seller_rating": 99.5, "country": "United States",
   "price": 1500, "currency": "JPY", "shipping": null, "media_cond": "Excellent"}
 ]}`

func TestReadInput(t *testing.T) {
	p, err := ReadInput(strings.NewReader(minimalInput))
	if err != nil {
		t.Fatal(err)
	}
	c := p.Criteria
	if c.Budget.String() != "100" || c.Currency != "USD" || c.MinMedia != pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS ||
		c.MinSellerRating.String() != "98" || c.MinQty != 2 || c.TopN != 3 || len(c.Countries) != 1 {
		t.Errorf("criteria = %+v", c)
	}
	if len(p.Rates) != 3 || p.Rates["JPY"].String() != "119.04" || p.Rates["USD"].String() != "1.1456" {
		t.Errorf("rates = %v", p.Rates)
	}
	if len(p.Candidates) != 2 || p.Candidates[1].Score.String() != "1.25" {
		t.Errorf("candidates = %+v", p.Candidates)
	}
	if len(p.Listings) != 2 {
		t.Fatalf("%d listings", len(p.Listings))
	}
	l := p.Listings[0]
	if l.ListingID != 10 || l.SellerName != `café "records"` || l.Price.String() != "17.58" || l.Shipping.String() != "4.5" ||
		l.Media != pb.MediaGrade_MEDIA_GRADE_NEAR_MINT || l.CartURL != "https://example.com/?add=10" || l.SleeveCond != "Generic" {
		t.Errorf("listing = %+v", l)
	}
	if l := p.Listings[1]; l.Media != pb.MediaGrade_MEDIA_GRADE_UNSPECIFIED || l.MediaCond != "Excellent" || l.Shipping.Sign() != 0 {
		t.Errorf("listing with unknown grade = %+v", l)
	}
}

func TestReadInputDefaults(t *testing.T) {
	p, err := ReadInput(strings.NewReader(`{"format":"cart-input/1","criteria":{"budget":5,"currency":"EUR","min_media_cond":"Any"},
		"rates_per_eur":{"EUR":{"rate":1}},"candidates":[],"listings":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Criteria; c.TopN != DefaultTopN || c.MinQty != 1 || c.MinMedia != pb.MediaGrade_MEDIA_GRADE_UNSPECIFIED || len(c.Countries) != 0 {
		t.Errorf("defaults = %+v", c)
	}
}

func TestReadInputErrors(t *testing.T) {
	tests := []struct {
		name, from, to string // replace from with to in minimalInput
		want           string // substring of the error
	}{
		{"format", `"cart-input/1"`, `"cart-input/2"`, "format:"},
		{"no budget", `"budget": 100, `, ``, "criteria.budget: missing"},
		{"bad budget", `"budget": 100`, `"budget": "100"`, "criteria.budget"},
		{"negative budget", `"budget": 100`, `"budget": -1`, "criteria.budget"},
		{"currency without rate", `"currency": "USD", "min_media`, `"currency": "CHF", "min_media`, "criteria.currency"},
		{"unknown min grade", `"Very Good Plus (VG+)", "seller`, `"Superb", "seller`, "criteria.min_media_cond"},
		{"top_n zero", `"top_n": 3`, `"top_n": 0`, "criteria.top_n"},
		{"min_qty fraction", `"min_qty": 2`, `"min_qty": 2.5`, "criteria.min_qty"},
		{"rate zero", `"rate": 1.1456`, `"rate": 0`, "rates_per_eur.USD"},
		{"rate missing", `{"rate": 1.1456, "symbol": "$"}`, `{"symbol": "$"}`, "rates_per_eur.USD.rate: missing"},
		{"candidate score", `"score": 0.5`, `"score": "high"`, "candidates[0].score"},
		{"duplicate candidate", `"release_id": 2, "score": 1.25`, `"release_id": 1, "score": 1.25`, "candidates[1].release_id"},
		{"listing price missing", `"price": 17.58, `, ``, "listings[0].price: missing"},
		{"listing price negative", `"price": 17.58`, `"price": -17.58`, "listings[0].price"},
		{"listing shipping negative", `"shipping": 4.50`, `"shipping": -1`, "listings[0].shipping"},
		{"listing id not integer", `"listing_id": 11`, `"listing_id": 11.5`, "listings[1].listing_id"},
		{"bad number", `"price": 1500`, `"price": 1500.`, "listings[1].price"},
		{"trailing data", "\"Excellent\"}\n ]}", "\"Excellent\"}\n ]} {}", "data after"},
		{"truncated", "\"Excellent\"}\n ]}", `"Exc`, "unterminated string"},
		{"bad escape", `caf\u00e9`, `caf\q`, "bad escape"},
		{"bad literal", `"shipping_unavailable": false`, `"shipping_unavailable": nope`, "listings[0].shipping_unavailable"},
	}
	for _, tt := range tests {
		in := strings.Replace(minimalInput, tt.from, tt.to, 1)
		if in == minimalInput {
			t.Fatalf("%s: %q not in the input", tt.name, tt.from)
		}
		_, err := ReadInput(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestReadInputStrings(t *testing.T) {
	r := &jsonReader{r: strings.NewReader(`"a\"b\\c\/d\b\f\n\r\t\u0041\ud83d\ude00\ud800x" "` + "\xff" + `"`), buf: make([]byte, 4)}
	got, err := r.str()
	if err != nil || got != "a\"b\\c/d\b\f\n\r\tA😀\uFFFDx" {
		t.Errorf("str() = %q, %v", got, err)
	}
	if got, err := r.str(); err != nil || got != "\uFFFD" {
		t.Errorf("invalid UTF-8: %q, %v", got, err)
	}
}

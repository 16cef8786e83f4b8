package marketplace

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/grade"
	"github.com/cratestream/cratestream/internal/money"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// Every currency Discogs sells in, plus two it does not (printed with their
// ISO code).
var testCurrencies = []string{"USD", "EUR", "GBP", "JPY", "CAD", "AUD", "NZD", "BRL", "MXN", "CHF", "SEK", "ZAR", "DKK", "NOK"}

var testSleeves = []pb.SleeveGrade{
	pb.SleeveGrade_SLEEVE_GRADE_UNSPECIFIED, pb.SleeveGrade_SLEEVE_GRADE_MINT, pb.SleeveGrade_SLEEVE_GRADE_NEAR_MINT,
	pb.SleeveGrade_SLEEVE_GRADE_VERY_GOOD_PLUS, pb.SleeveGrade_SLEEVE_GRADE_VERY_GOOD, pb.SleeveGrade_SLEEVE_GRADE_GOOD_PLUS,
	pb.SleeveGrade_SLEEVE_GRADE_GOOD, pb.SleeveGrade_SLEEVE_GRADE_FAIR, pb.SleeveGrade_SLEEVE_GRADE_POOR,
	pb.SleeveGrade_SLEEVE_GRADE_GENERIC, pb.SleeveGrade_SLEEVE_GRADE_NOT_GRADED, pb.SleeveGrade_SLEEVE_GRADE_NO_COVER,
}

var testComments = []string{
	"", "Sleeve is remade Record VG++", `Plays <b>great</b> & "loud" – it's 'mint'`, "Die Ärzte — 日本盤 帯付き OBI",
	"Shrink wrap intact. Hype sticker. Ships in a sturdy mailer within 2 days.", "Unavailable in stores!",
}

// genSellers makes a pool with every seller shape: new sellers, rating
// 100.0 and low ones, one rating, six-digit counts, no seller id.
func genSellers(rng *rand.Rand, n int) []*pb.Seller {
	names := []string{"kgrecords1976", "Puddah-Store.de", "_Disclub_", "space.man.spiff", "KUPIKU-COM", "johanz", "Jürgen"}
	countries := []string{"United States", "Netherlands", "Japan", "Côte d'Ivoire", "Korea, Republic of", "United Kingdom", "Germany"}
	var out []*pb.Seller
	for i := range n {
		s := &pb.Seller{Username: fmt.Sprintf("seller%d", i), ShipsFrom: countries[i%len(countries)]}
		if i < len(names) {
			s.Username = names[i]
		}
		if i%5 != 3 {
			s.SellerId = 1000 + rng.Int64N(30_000_000)
		}
		switch i % 6 {
		case 0: // new seller
		case 1:
			s.HasRating, s.RatingPercent, s.RatingsCount = true, 100, 322591
		case 2:
			s.HasRating, s.RatingPercent, s.RatingsCount = true, 84.6, 1
		default:
			s.HasRating, s.RatingPercent, s.RatingsCount = true, float64(800+rng.IntN(201))/10, 1+rng.Int64N(60000)
		}
		out = append(out, s)
	}
	return out
}

// genListings cycles through every currency, grade, shipping state and
// availability with co-prime periods so that all combinations of pairs
// show up, with random amounts.
func genListings(rng *rand.Rand, release int64, n int, sellers []*pb.Seller) []*pb.Listing {
	media := grade.All()
	var out []*pb.Listing
	for i := range n {
		s := sellers[rng.IntN(len(sellers))]
		cur := testCurrencies[i%len(testCurrencies)]
		var amount int64
		switch i % 3 {
		case 0:
			amount = 1 + rng.Int64N(5000)
		case 1:
			amount = 1 + rng.Int64N(100_000)
		default:
			amount = 1 + rng.Int64N(1_000_000_000)
		}
		l := &pb.Listing{
			ListingId: 100_000_000 + int64(i)*7919 + rng.Int64N(7919),
			ReleaseId: release,
			Seller:    s.Username, SellerId: s.SellerId, ShipsFrom: s.ShipsFrom,
			Price:     &pb.Money{AmountMinor: amount, Currency: cur},
			Media:     media[i%len(media)],
			Sleeve:    testSleeves[i%len(testSleeves)],
			Available: i%7 != 5,
			Comments:  testComments[i%len(testComments)],
		}
		switch i % 5 {
		case 0, 1:
			l.ShippingState, l.Shipping = pb.ShippingState_SHIPPING_STATE_PRICED, &pb.Money{AmountMinor: 1 + rng.Int64N(20000), Currency: cur}
		case 2: // shipping in another currency than the item
			other := testCurrencies[(i+3)%len(testCurrencies)]
			l.ShippingState, l.Shipping = pb.ShippingState_SHIPPING_STATE_PRICED, &pb.Money{AmountMinor: 1 + rng.Int64N(20000), Currency: other}
		case 3:
			l.ShippingState, l.Shipping = pb.ShippingState_SHIPPING_STATE_FREE, &pb.Money{Currency: cur}
		case 4:
			l.ShippingState = pb.ShippingState_SHIPPING_STATE_UNAVAILABLE
		}
		out = append(out, l)
	}
	return out
}

// expected is what Parse must return for a rendered page: the listings
// with their event fields, and the page's sellers in order of appearance.
func expected(p RenderPage, o Options) *Page {
	want := &Page{ReleaseID: p.ReleaseID, Total: p.Total}
	if p.Page > 0 {
		want.Page, want.Pages = p.Page, (p.Total+p.Limit-1)/p.Limit
	} else {
		want.Total = 0
	}
	byName := map[string]*pb.Seller{}
	for _, s := range p.Sellers {
		byName[s.Username] = s
	}
	seen := map[string]bool{}
	for _, l := range p.Listings {
		c := proto.Clone(l).(*pb.Listing)
		c.EventId = ListingEventID(p.ReleaseID, l.ListingId, o.Now)
		c.EventTimeMs, c.SeenAtMs, c.Source = o.Now.UnixMilli(), o.Now.UnixMilli(), o.Source
		want.Listings = append(want.Listings, c)
		if !seen[l.Seller] {
			seen[l.Seller] = true
			s := proto.Clone(byName[l.Seller]).(*pb.Seller)
			s.EventId, s.EventTimeMs = SellerEventID(p.ReleaseID, s.Username, o.Now), o.Now.UnixMilli()
			want.Sellers = append(want.Sellers, s)
		}
	}
	return want
}

var priceAttrs = regexp.MustCompile(` data-currency="[^"]*" data-pricevalue="[^"]*"`)

// TestRenderRoundTrip: Parse(Render(x)) == x for generated releases over
// several pages, once with the price attributes and once from the price
// text alone.
func TestRenderRoundTrip(t *testing.T) {
	tests := []struct {
		name         string
		seed         uint64
		total, limit int
	}{
		{"three pages of 250", 1, 612, 250},
		{"exactly one page", 2, 25, 25},
		{"many small pages", 3, 211, 10},
		{"one listing", 4, 1, 250},
		{"empty", 5, 0, 250},
	}
	o := Options{Now: testNow, Source: "roundtrip"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tt.seed, 42))
			release := int64(1000 + tt.seed)
			sellers := genSellers(rng, 40)
			all := genListings(rng, release, tt.total, sellers)
			pages := max(1, (tt.total+tt.limit-1)/tt.limit)
			for page := 1; page <= pages; page++ {
				rp := RenderPage{
					ReleaseID: release, Title: "Charanjit Singh - Synthesizing: Ten Ragas To A Disco Beat (LP, Album, RE)",
					Listings: all[(page-1)*tt.limit : min(page*tt.limit, tt.total)], Sellers: sellers,
					Page: page, Limit: tt.limit, Total: tt.total, Country: "Philippines",
				}
				if tt.total == 0 {
					rp.Page = 0 // an empty release shows no pagination
				}
				var buf bytes.Buffer
				if err := Render(&buf, rp); err != nil {
					t.Fatal(err)
				}
				want := expected(rp, o)
				for _, variant := range []struct {
					name string
					html []byte
				}{
					{"attributes", buf.Bytes()},
					{"text only", priceAttrs.ReplaceAll(buf.Bytes(), nil)},
				} {
					got, err := Parse(bytes.NewReader(variant.html), Options{Now: o.Now, Source: o.Source})
					if err != nil {
						t.Fatalf("page %d (%s): %v", page, variant.name, err)
					}
					if got.ReleaseID != want.ReleaseID || got.Page != want.Page || got.Pages != want.Pages || got.Total != want.Total {
						t.Errorf("page %d (%s): release %d page %d/%d total %d, want %d %d/%d %d", page, variant.name,
							got.ReleaseID, got.Page, got.Pages, got.Total, want.ReleaseID, want.Page, want.Pages, want.Total)
					}
					diffPage(t, got, want.Listings, want.Sellers)
				}
			}
		})
	}
}

// TestRenderFixtures re-renders every real page: what Parse read from
// Discogs' markup it must read back from ours.
func TestRenderFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtureDir(t), "*", "*.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			o := Options{Now: testNow, ReleaseID: 0}
			if strings.Contains(f, "synthetic") {
				o.ReleaseID = syntheticRelease
			}
			p := parseBytes(t, b, o)
			rp := RenderPage{ReleaseID: p.ReleaseID, Listings: p.Listings, Sellers: p.Sellers, Page: p.Page, Total: p.Total, Limit: 250}
			var buf bytes.Buffer
			if err := Render(&buf, rp); err != nil {
				t.Fatal(err)
			}
			again := parseBytes(t, buf.Bytes(), Options{})
			if again.Page != p.Page || again.Pages != p.Pages || again.Total != p.Total {
				t.Errorf("pagination %d/%d of %d, was %d/%d of %d", again.Page, again.Pages, again.Total, p.Page, p.Pages, p.Total)
			}
			diffPage(t, again, p.Listings, p.Sellers)
		})
	}
}

func TestFormatPrice(t *testing.T) {
	tests := []struct {
		minor int64
		cur   string
		want  string
	}{
		{900000, "USD", "$9,000.00"},
		{1100000, "EUR", "€11,000.00"},
		{19800, "JPY", "¥19,800"},
		{5, "JPY", "¥5"},
		{1, "GBP", "£0.01"},
		{12916, "AUD", "A$129.16"},
		{1800, "CAD", "CA$18.00"},
		{32559, "CHF", "CHF325.59"},
		{25000, "SEK", "SEK250.00"},
		{123456789, "BRL", "R$1,234,567.89"},
		{1200, "DKK", "DKK12.00"},
	}
	for _, tt := range tests {
		m := &pb.Money{AmountMinor: tt.minor, Currency: tt.cur}
		if got := FormatPrice(m); got != tt.want {
			t.Errorf("FormatPrice(%v) = %q, want %q", m, got, tt.want)
		}
		back, err := money.ParsePrice(FormatPrice(m))
		if err != nil || back.AmountMinor != tt.minor || back.Currency != tt.cur {
			t.Errorf("ParsePrice(%q) = %v, %v", FormatPrice(m), back, err)
		}
	}
}

func TestRenderRejects(t *testing.T) {
	ok := func() RenderPage {
		return RenderPage{
			ReleaseID: 7,
			Listings: []*pb.Listing{{ListingId: 1, Seller: "a", ShipsFrom: "Japan", Media: pb.MediaGrade_MEDIA_GRADE_MINT,
				Price: &pb.Money{AmountMinor: 100, Currency: "EUR"}, ShippingState: pb.ShippingState_SHIPPING_STATE_UNAVAILABLE}},
			Sellers: []*pb.Seller{{Username: "a"}},
		}
	}
	if err := Render(&bytes.Buffer{}, ok()); err != nil {
		t.Fatalf("valid page: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(p *RenderPage)
	}{
		{"no release", func(p *RenderPage) { p.ReleaseID = 0 }},
		{"unknown seller", func(p *RenderPage) { p.Sellers = nil }},
		{"no price", func(p *RenderPage) { p.Listings[0].Price = nil }},
		{"unknown currency", func(p *RenderPage) { p.Listings[0].Price.Currency = "XXX" }},
		{"no media grade", func(p *RenderPage) { p.Listings[0].Media = 0 }},
		{"priced shipping without amount", func(p *RenderPage) {
			p.Listings[0].ShippingState = pb.ShippingState_SHIPPING_STATE_PRICED
		}},
		{"other release", func(p *RenderPage) { p.Listings[0].ReleaseId = 8 }},
		{"nil listing", func(p *RenderPage) { p.Listings = append(p.Listings, nil) }},
		{"page too small", func(p *RenderPage) { p.Page, p.Limit, p.Total = 2, 1, 1 }},
	}
	for _, tt := range tests {
		p := ok()
		tt.mutate(&p)
		if err := Render(&bytes.Buffer{}, p); err == nil {
			t.Errorf("%s: rendered", tt.name)
		}
	}
}

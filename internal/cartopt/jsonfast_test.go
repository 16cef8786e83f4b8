package cartopt

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/cratestream/cratestream/internal/grade"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// decodeWith runs the decoder with or without the listings fast path.
func decodeWith(in []byte, stream, slow bool, window int) (*Problem, *prepared, int, error) {
	d := newDecoderSize(bytes.NewReader(in), stream, window)
	d.slowOnly = slow
	p, pr, err := d.decode()
	return p, pr, d.slowListings, err
}

// checkSameDecode checks that the fast path changes nothing: same Problem
// (or prepared listings) and same error, with and without it.
func checkSameDecode(t *testing.T, label string, in []byte) {
	t.Helper()
	for _, stream := range []bool{false, true} {
		for _, window := range []int{windowSize, 64, 7} {
			p1, pr1, _, err1 := decodeWith(in, stream, false, window)
			p2, pr2, _, err2 := decodeWith(in, stream, true, window)
			if fmt.Sprint(err1) != fmt.Sprint(err2) {
				t.Fatalf("%s (stream %v, window %d): error %v with the fast path, %v without", label, stream, window, err1, err2)
			}
			if !reflect.DeepEqual(p1, p2) || !reflect.DeepEqual(pr1, pr2) {
				t.Fatalf("%s (stream %v, window %d): the fast path decodes differently", label, stream, window)
			}
		}
	}
}

func TestFastPathSharedFiles(t *testing.T) {
	for _, name := range sharedFiles {
		data := readShared(t, name)
		checkSameDecode(t, name, data)
		for _, stream := range []bool{false, true} {
			if _, _, slow, err := decodeWith(data, stream, false, windowSize); err != nil || slow != 0 {
				t.Errorf("%s: %d listings missed the fast path (err %v)", name, slow, err)
			}
		}
	}
}

func TestFastPathCases(t *testing.T) {
	listing := `{"listing_id": 10, "release_id": 1, "seller_id": 7, "seller_name": "s", "seller_rating": 99.5,
   "country": "United States", "price": 17.58, "currency": "USD", "shipping": 4.50, "shipping_unavailable": false,
   "media_cond": "Near Mint (NM or M-)", "sleeve_cond": "Generic", "cart_url": "https://example.com/?add=10"}`
	cases := []struct{ from, to string }{
		{"", ""},
		{`"price": 17.58`, `"price": 1.758e1`},
		{`"price": 17.58`, `"price": 17.580000000000000000000`},
		{`"price": 17.58`, `"price": 0.000000000000000000000000000001758`},
		{`"price": 17.58`, `"price": 123456789012345678`},
		{`"price": 17.58`, `"price": 1234567890123456789`},
		{`"price": 17.58`, `"price": -0.0`},
		{`"price": 17.58`, `"price": 0.00`},
		{`"price": 17.58`, `"price": 017.58`},
		{`"price": 17.58`, `"price": 17.`},
		{`"price": 17.58`, `"price": -17.58`},
		{`"price": 17.58`, `"price": "17.58"`},
		{`"price": 17.58`, `"price": null`},
		{`"price": 17.58, `, ``},
		{`"shipping": 4.50`, `"shipping": null`},
		{`"shipping": 4.50`, `"shipping": -4.50`},
		{`"listing_id": 10`, `"listing_id": 9223372036854775807`},
		{`"listing_id": 10`, `"listing_id": 9223372036854775808`},
		{`"listing_id": 10`, `"listing_id": -10`},
		{`"listing_id": 10`, `"listing_id": -0`},
		{`"listing_id": 10`, `"listing_id": 010`},
		{`"listing_id": 10`, `"listing_id": 10e0`},
		{`"listing_id": 10, `, ``},
		{`"seller_name": "s"`, `"seller_name": "caf\u00e9"`},
		{`"seller_name": "s"`, `"seller_name": "café"`},
		{`"seller_name": "s"`, "\"seller_name\": \"caf\xe9\""},
		{`"seller_name": "s"`, `"seller_name": null`},
		{`"seller_name": "s"`, `"seller_name": "a\"b"`},
		{`"seller_name": "s"`, "\"seller_name\": \"a\tb\""},
		{`"seller_name"`, `"seller_\u006eame"`},
		{`"shipping_unavailable": false`, `"shipping_unavailable": true`},
		{`"shipping_unavailable": false`, `"shipping_unavailable": truex`},
		{`"shipping_unavailable": false`, `"shipping_unavailable": fals`},
		{`"shipping_unavailable": false`, `"shipping_unavailable": 0`},
		{`"media_cond": "Near Mint (NM or M-)"`, `"media_cond": "Excellent"`},
		{`"media_cond": "Near Mint (NM or M-)"`, `"media_cond": null`},
		{`"sleeve_cond": "Generic"`, `"sleeve_cond": {"x": [1]}`},
		{`"cart_url": "https://example.com/?add=10"`, `"cart_url": 5`},
		{`"cart_url": "https://example.com/?add=10"`, `"extra": [1, {"a": null}]`},
		{`"country": "United States"`, `"country": "United States", "country": "Canada"`},
		{`{"listing_id"`, `{ "listing_id"`},
		{`"release_id": 1`, `"release_id" : 1 `},
		{`}`, `,}`},
		{`}`, ``},
	}
	for _, c := range cases {
		one := strings.Replace(listing, c.from, c.to, 1)
		// The listing twice, then in compact form, to exercise both the
		// predicted and the scanned keys.
		compact := strings.NewReplacer("\n", "", ": ", ":", ", ", ",", "   ", "").Replace(one)
		in := strings.Replace(minimalInput, `"listings": [`, `"listings": [`+one+`,`+one+`,`+compact+`,`+compact+`,`, 1)
		checkSameDecode(t, c.to, []byte(in))
		if c.from == "" {
			// minimalInput's own two listings have an escape and a null.
			if _, _, slow, err := decodeWith([]byte(in), false, false, windowSize); err != nil || slow != 2 {
				t.Errorf("%d listings missed the fast path, want 2 (err %v)", slow, err)
			}
		}
	}
}

// TestReadInputGarbled feeds truncated and garbled problems: ReadInput
// must return an error or a problem, never panic, and the fast path must
// agree with the general one.
func TestReadInputGarbled(t *testing.T) {
	data := readShared(t, "medium")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := rng.IntN(len(data))
		p, err := ReadInput(bytes.NewReader(data[:n]))
		if err == nil || p != nil {
			t.Fatalf("truncated at %d: %v, %v; want an error", n, p, err)
		}
	}
	const garbage = "{}[],:\"\\0123456789.-+eEtrufalsn \n\xff\x00"
	for i := range 200 {
		in := bytes.Clone(data)
		for range 1 + rng.IntN(3) {
			c := garbage[rng.IntN(len(garbage))]
			if rng.IntN(4) == 0 {
				c = byte(rng.IntN(256))
			}
			in[rng.IntN(len(in))] = c
		}
		p, err := ReadInput(bytes.NewReader(in))
		if (err == nil) == (p == nil) {
			t.Fatalf("garbled input %d: %v, %v", i, p, err)
		}
		if i < 20 {
			checkSameDecode(t, fmt.Sprintf("garbled input %d", i), in)
		} else {
			p2, _, _, err2 := decodeWith(in, false, true, windowSize)
			if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(p, p2) {
				t.Fatalf("garbled input %d: the fast path decodes differently: %v, %v", i, err, err2)
			}
		}
	}
}

func FuzzReadInput(f *testing.F) {
	// Synthesised seeds (the problems of ../shared/carts carry no
	// licence): the minimal input, with its escapes, nulls and unknown
	// fields, and a compact file in the form the fast path takes.
	f.Add([]byte(minimalInput))
	f.Add(writeInput(f, seedProblem()))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkSameDecode(t, "fuzz", in)
		p, err := ReadInput(bytes.NewReader(in))
		if (err == nil) == (p == nil) {
			t.Fatalf("problem %v and error %v", p, err)
		}
		if err != nil {
			return
		}
		// Read, write, read: the same problem.
		out := writeInput(t, p)
		again, err := ReadInput(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("the problem written back does not read: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(canonical(p), canonical(again)) {
			t.Fatalf("the problem written back reads differently:\n%+v\n%+v", canonical(p), canonical(again))
		}
	})
}

// seedProblem is a small problem of two sellers in two currencies.
func seedProblem() *Problem {
	p := &Problem{Name: "seed", Criteria: Criteria{Budget: MustDecimal("100"), Currency: "USD", MinMedia: pb.MediaGrade_MEDIA_GRADE_VERY_GOOD,
		MinSellerRating: MustDecimal("98"), MinQty: 2, Countries: []string{"United States", "Germany"}, TopN: 5},
		Rates:      map[string]Decimal{"EUR": MustDecimal("1"), "USD": MustDecimal("1.1456"), "JPY": MustDecimal("119.04")},
		Candidates: []Candidate{{1, MustDecimal("1.25")}, {2, MustDecimal("0.5")}, {3, MustDecimal("0.001")}}}
	for i, l := range []Listing{
		{SellerID: 7, SellerName: "seven", SellerRating: MustDecimal("99.5"), Country: "United States", Price: MustDecimal("17.58"), Currency: "USD", Shipping: MustDecimal("4.5"), MediaCond: "Near Mint (NM or M-)", SleeveCond: "Generic"},
		{SellerID: 7, SellerName: "seven", SellerRating: MustDecimal("99.5"), Country: "United States", Price: MustDecimal("30"), Currency: "USD", Shipping: MustDecimal("4.5"), MediaCond: "Very Good (VG)"},
		{SellerID: 9, SellerName: "nine", SellerRating: MustDecimal("98"), Country: "Germany", Price: MustDecimal("1500"), Currency: "JPY", ShippingUnavailable: true, MediaCond: "Mint (M)"},
		{SellerID: 9, SellerName: "nine", SellerRating: MustDecimal("98"), Country: "Germany", Price: MustDecimal("12"), Currency: "USD", MediaCond: "Excellent"},
	} {
		l.ListingID, l.ReleaseID = int64(10+i), int64(1+i%3)
		l.Media, _ = grade.ParseMedia(l.MediaCond)
		l.CartURL = "https://example.com/?add=" + strconv.Itoa(10+i)
		p.Listings = append(p.Listings, l)
	}
	return p
}

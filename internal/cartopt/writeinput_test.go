package cartopt

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/cratestream/cratestream/internal/grade"
)

// writeInput writes p as a cart-input/1 file, the way the format
// describes it: what ReadInput reads back into the same problem. Numbers
// are Decimal.String, exact; strings go through encoding/json.
func writeInput(t testing.TB, p *Problem) []byte {
	t.Helper()
	var b bytes.Buffer
	str := func(s string) {
		q, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(q)
	}
	b.WriteString(`{"format":"cart-input/1","name":`)
	str(p.Name)
	c := p.Criteria
	b.WriteString(`,"criteria":{"budget":` + c.Budget.String() + `,"currency":`)
	str(c.Currency)
	if g := grade.Media(c.MinMedia); g != "" {
		b.WriteString(`,"min_media_cond":`)
		str(g)
	}
	b.WriteString(`,"seller_rating":` + c.MinSellerRating.String() + `,"min_qty":` + strconv.Itoa(c.MinQty) + `,"top_n":` + strconv.Itoa(c.TopN))
	if c.Countries != nil {
		b.WriteString(`,"country":[`)
		for i, cn := range c.Countries {
			if i > 0 {
				b.WriteByte(',')
			}
			str(cn)
		}
		b.WriteByte(']')
	}
	b.WriteString(`},"rates_per_eur":{`)
	for i, cur := range slices.Sorted(maps.Keys(p.Rates)) {
		if i > 0 {
			b.WriteByte(',')
		}
		str(cur)
		b.WriteString(":" + p.Rates[cur].String())
	}
	b.WriteString(`},"candidates":[`)
	for i, cd := range p.Candidates {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"release_id":` + strconv.FormatInt(cd.ReleaseID, 10) + `,"score":` + cd.Score.String() + `}`)
	}
	b.WriteString(`],"listings":[`)
	for i, l := range p.Listings {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"listing_id":` + strconv.FormatInt(l.ListingID, 10) + `,"release_id":` + strconv.FormatInt(l.ReleaseID, 10) +
			`,"seller_id":` + strconv.FormatInt(l.SellerID, 10) + `,"seller_name":`)
		str(l.SellerName)
		b.WriteString(`,"seller_rating":` + l.SellerRating.String() + `,"country":`)
		str(l.Country)
		b.WriteString(`,"price":` + l.Price.String() + `,"currency":`)
		str(l.Currency)
		b.WriteString(`,"shipping":` + l.Shipping.String() + `,"shipping_unavailable":` + strconv.FormatBool(l.ShippingUnavailable) + `,"media_cond":`)
		str(l.MediaCond)
		b.WriteString(`,"sleeve_cond":`)
		str(l.SleeveCond)
		b.WriteString(`,"cart_url":`)
		str(l.CartURL)
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return b.Bytes()
}

// canonical is p with every Decimal replaced by its exact text, so that
// problems compare by value whatever the Decimals' representation.
func canonical(p *Problem) any {
	type listing struct {
		L                       Listing
		Rating, Price, Shipping string
	}
	out := struct {
		Name, Currency, Budget, MinRating string
		Criteria                          Criteria
		Rates                             map[string]string
		Candidates                        []string
		Listings                          []listing
	}{Name: p.Name, Currency: p.Criteria.Currency, Budget: p.Criteria.Budget.String(), MinRating: p.Criteria.MinSellerRating.String(),
		Criteria: p.Criteria, Rates: map[string]string{}}
	out.Criteria.Budget, out.Criteria.MinSellerRating = Decimal{}, Decimal{}
	if len(out.Criteria.Countries) == 0 {
		out.Criteria.Countries = nil // "country": [] reads as either
	}
	for cur, r := range p.Rates {
		out.Rates[cur] = r.String()
	}
	for _, cd := range p.Candidates {
		out.Candidates = append(out.Candidates, strconv.FormatInt(cd.ReleaseID, 10)+":"+cd.Score.String())
	}
	for _, l := range p.Listings {
		c := listing{L: l, Rating: l.SellerRating.String(), Price: l.Price.String(), Shipping: l.Shipping.String()}
		c.L.SellerRating, c.L.Price, c.L.Shipping = Decimal{}, Decimal{}, Decimal{}
		out.Listings = append(out.Listings, c)
	}
	return out
}

// TestWriteInput: the writer the fuzz target relies on writes the
// minimal input back as the same problem, and FuzzReadInput's seed problem
// as a valid file the fast path reads whole.
func TestWriteInput(t *testing.T) {
	seed := seedProblem()
	in := writeInput(t, seed)
	p, _, slow, err := decodeWith(in, false, false, windowSize)
	if err != nil || slow != 0 || !reflect.DeepEqual(canonical(p), canonical(seed)) {
		t.Fatalf("seed problem: %v, %d listings off the fast path\n%+v\n%+v", err, slow, canonical(p), canonical(seed))
	}

	p, err = ReadInput(bytes.NewReader([]byte(minimalInput)))
	if err != nil {
		t.Fatal(err)
	}
	again, err := ReadInput(bytes.NewReader(writeInput(t, p)))
	if err != nil || !reflect.DeepEqual(canonical(p), canonical(again)) {
		t.Fatalf("%v\n%+v\n%+v", err, canonical(p), canonical(again))
	}
}

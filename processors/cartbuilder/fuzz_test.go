package cartbuilder

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/cratestream/cratestream/connectors/gateway"
	"github.com/cratestream/cratestream/internal/cartopt"
	"github.com/cratestream/cratestream/internal/grade"
	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// fuzzTables are in-memory global tables (Inject, no Kafka) with a few
// releases on sale from three sellers in three currencies.
func fuzzTables() *Tables {
	t := NewTables(stream.NewGlobalTable(topics.Listings(), stream.GlobalConfig{}), stream.NewGlobalTable(topics.Sellers(), stream.GlobalConfig{}),
		stream.NewGlobalTable(topics.ReleaseStats(), stream.GlobalConfig{}), stream.NewGlobalTable(topics.FxRates(), stream.GlobalConfig{}))
	for cur, r := range map[string]string{"USD": "1.1", "GBP": "0.85", "JPY": "160"} {
		t.FX.Inject(0, 0, cur, &pb.FxRate{Currency: cur, UnitsPerEur: r}, false)
	}
	for i, s := range []*pb.Seller{
		{Username: "berlin", SellerId: 1, HasRating: true, RatingPercent: 99.5, ShipsFrom: "Germany"},
		{Username: "london", SellerId: 2, HasRating: true, RatingPercent: 97, ShipsFrom: "United Kingdom"},
		{Username: "newbie", ShipsFrom: "Japan"},
	} {
		t.Sellers.Inject(0, int64(i), s.Username, s, false)
	}
	money := func(minor int64, cur string) *pb.Money { return &pb.Money{AmountMinor: minor, Currency: cur} }
	for i, l := range []*pb.Listing{
		{ListingId: 11, ReleaseId: 1, Seller: "berlin", SellerId: 1, ShipsFrom: "Germany", Price: money(1500, "EUR"), Shipping: money(500, "EUR"), ShippingState: pb.ShippingState_SHIPPING_STATE_PRICED, Media: pb.MediaGrade_MEDIA_GRADE_NEAR_MINT},
		{ListingId: 12, ReleaseId: 2, Seller: "berlin", SellerId: 1, ShipsFrom: "Germany", Price: money(900, "EUR"), Shipping: money(500, "EUR"), ShippingState: pb.ShippingState_SHIPPING_STATE_PRICED, Media: pb.MediaGrade_MEDIA_GRADE_VERY_GOOD},
		{ListingId: 21, ReleaseId: 1, Seller: "london", SellerId: 2, ShipsFrom: "United Kingdom", Price: money(1200, "GBP"), Shipping: money(800, "USD"), ShippingState: pb.ShippingState_SHIPPING_STATE_PRICED, Media: pb.MediaGrade_MEDIA_GRADE_VERY_GOOD_PLUS},
		{ListingId: 22, ReleaseId: 3, Seller: "london", SellerId: 2, ShipsFrom: "United Kingdom", Price: money(3000, "GBP"), Shipping: money(0, "GBP"), ShippingState: pb.ShippingState_SHIPPING_STATE_FREE, Media: pb.MediaGrade_MEDIA_GRADE_MINT},
		{ListingId: 31, ReleaseId: 3, Seller: "newbie", ShipsFrom: "Japan", Price: money(2500, "JPY"), ShippingState: pb.ShippingState_SHIPPING_STATE_UNAVAILABLE, Media: pb.MediaGrade_MEDIA_GRADE_GOOD},
		{ListingId: 32, ReleaseId: 4, Seller: "newbie", ShipsFrom: "Japan", Price: money(99999, "JPY"), Shipping: money(1500, "JPY"), ShippingState: pb.ShippingState_SHIPPING_STATE_PRICED, Media: pb.MediaGrade_MEDIA_GRADE_POOR},
	} {
		l.Available = true
		t.Listings.Inject(0, int64(i), l.ListingId, l, false)
	}
	return t
}

var fuzzCandidates = []*pb.CartCandidate{{ReleaseId: 1, Score: 0.9}, {ReleaseId: 2, Score: 0.5}, {ReleaseId: 3, Score: 0.25}, {ReleaseId: 4, Score: 1e-3}}

// FuzzCartRequest feeds cart requests to the builder's path from
// validation to carts: a body of POST /api/v1/carts as the gateway reads
// it (fromBody), or any cart-requests.v1 value. Criteria the gateway
// accepts pass validate; a request that passes validate, with a budget
// currency that has a rate, becomes a problem the solver answers (or
// refuses with an error) without panicking, and every cart fits the
// budget, the minimum grade, the countries, the minimum quantity and the
// number of carts asked for.
func FuzzCartRequest(f *testing.F) {
	for _, b := range []string{
		`{"budget": "60 EUR", "min_media_cond": "VG", "min_qty": 2, "top_n": 3, "objective": "sum", "multi_seller": true}`,
		`{"budget": {"amount": "30.00", "currency": "GBP"}, "countries": ["United Kingdom"], "min_seller_rating": 97}`,
		`{"budget": "¥20,000", "wantlist_ratio": 0}`,
		`{"budget": "$5"}`,
	} {
		f.Add([]byte(b), true)
	}
	for _, r := range []*pb.CartRequest{
		{RequestId: "r1", UserId: "u", Criteria: &pb.CartCriteria{Budget: &pb.Money{AmountMinor: 6000, Currency: "EUR"}, TopN: 20, WantlistRatio: 0.5}},
		{RequestId: "r2", UserId: "u", Criteria: &pb.CartCriteria{Budget: &pb.Money{AmountMinor: 0, Currency: "USD"}, MinMedia: pb.MediaGrade_MEDIA_GRADE_POOR, MinQty: 100}},
		{RequestId: "r3", UserId: "u", Criteria: &pb.CartCriteria{Budget: &pb.Money{AmountMinor: 1 << 62, Currency: "JPY"}, MultiSeller: true, MinSellerRating: 100}},
		{RequestId: "r4", UserId: "u", Criteria: &pb.CartCriteria{Budget: &pb.Money{AmountMinor: 6000, Currency: "XXX"}}},
	} {
		b, err := topics.CartRequests().Value.Append(nil, r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	tb := fuzzTables()

	f.Fuzz(func(t *testing.T, in []byte, fromBody bool) {
		var req *pb.CartRequest
		if fromBody {
			// As the gateway's handler reads it (its decodeBody).
			var body gateway.CartCriteriaJSON
			dec := json.NewDecoder(bytes.NewReader(in))
			dec.DisallowUnknownFields()
			if dec.Decode(&body) != nil {
				return
			}
			crit, err := body.Criteria()
			if err != nil {
				return
			}
			req = &pb.CartRequest{RequestId: "cart-1", UserId: "u", Criteria: crit}
			if err := validate(req); err != nil {
				t.Fatalf("the gateway accepted criteria the builder refuses: %v\n%v", err, crit)
			}
		} else {
			var err error
			if req, err = topics.CartRequests().Value.Decode(in); err != nil || validate(req) != nil {
				return // dead-lettered, or failed with the reason
			}
		}
		c := req.Criteria
		if !tb.hasRate(c.Budget.Currency) {
			return // failed with "no exchange rate"
		}
		cands := affordable(slices.Clone(fuzzCandidates), c.Budget, tb)
		prob, listings, err := tb.problem(req, cands, func(int64) bool { return true })
		if err != nil {
			return // failed with the reason
		}
		res, err := cartopt.Solve(prob, cartopt.Options{Objective: c.Objective, MultiSeller: c.MultiSeller, MaxNodes: 100_000})
		if err != nil {
			return
		}
		conv, err := cartopt.NewConverter(prob.Rates, prob.Criteria.Currency)
		if err != nil {
			t.Fatalf("the problem solved but its rates do not convert: %v", err)
		}
		carts := result(res, cands, listings, tb.Sellers, conv)
		topN := int(c.TopN)
		if topN == 0 {
			topN = cartopt.DefaultTopN
		}
		if len(carts) > topN {
			t.Fatalf("%d carts, asked for %d", len(carts), topN)
		}
		for _, cart := range carts {
			if cart.Total.Currency != c.Budget.Currency || cart.Total.AmountMinor > c.Budget.AmountMinor {
				t.Fatalf("cart of %v over the budget %v", cart.Total, c.Budget)
			}
			if int(cart.Quantity) < int(c.MinQty) || int(cart.Quantity) != len(cart.Items) {
				t.Fatalf("cart of %d records (%d items), min %d", cart.Quantity, len(cart.Items), c.MinQty)
			}
			for _, it := range cart.Items {
				if !grade.AtLeast(it.Media, c.MinMedia) || (len(c.ShipsFrom) > 0 && !slices.Contains(c.ShipsFrom, it.ShipsFrom)) {
					t.Fatalf("item %v outside the criteria %v", it, c)
				}
			}
		}
	})
}

package cartbuilder

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	"github.com/cratestream/cratestream/internal/cartopt"
	"github.com/cratestream/cratestream/internal/grade"
	"github.com/cratestream/cratestream/internal/money"
	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// Tables are the reference data a cart is built from: global tables, the
// same in every instance.
type Tables struct {
	Listings *stream.GlobalTable[int64, *pb.Listing]
	Sellers  *stream.GlobalTable[string, *pb.Seller]
	Stats    *stream.GlobalTable[int64, *pb.ReleaseStats]
	FX       *stream.GlobalTable[string, *pb.FxRate]
}

// ReleaseIndex is the listing table's index of listings by release.
const ReleaseIndex = "release"

// NewTables returns the global tables; add them to the processor with
// UseGlobal (New does).
func NewTables(listings *stream.GlobalTable[int64, *pb.Listing], sellers *stream.GlobalTable[string, *pb.Seller],
	stats *stream.GlobalTable[int64, *pb.ReleaseStats], fx *stream.GlobalTable[string, *pb.FxRate]) *Tables {
	listings.AddIndex(ReleaseIndex, func(_ int64, l *pb.Listing) []string { return []string{strconv.FormatInt(l.ReleaseId, 10)} })
	return &Tables{Listings: listings, Sellers: sellers, Stats: stats, FX: fx}
}

// rates returns every known rate as exact decimals (EUR is 1).
func (t *Tables) rates() (map[string]cartopt.Decimal, error) {
	out := map[string]cartopt.Decimal{"EUR": cartopt.MustDecimal("1")}
	var firstErr error
	for _, cur := range knownCurrencies {
		r, ok := t.FX.Get(cur)
		if !ok {
			continue
		}
		d, err := cartopt.ParseDecimal(r.UnitsPerEur)
		if err != nil {
			firstErr = errors.Join(firstErr, fmt.Errorf("rate of %s: %w", cur, err))
			continue
		}
		out[cur] = d
	}
	return out, firstErr
}

// hasRate reports whether rates() knows cur.
func (t *Tables) hasRate(cur string) bool {
	if cur == "EUR" {
		return true
	}
	if !slices.Contains(knownCurrencies, cur) {
		return false
	}
	r, ok := t.FX.Get(cur)
	if !ok {
		return false
	}
	_, err := cartopt.ParseDecimal(r.UnitsPerEur)
	return err == nil
}

var knownCurrencies = []string{"USD", "JPY", "BGN", "CZK", "DKK", "GBP", "HUF", "PLN", "RON", "SEK", "CHF", "ISK", "NOK",
	"HRK", "RUB", "TRY", "AUD", "BRL", "CAD", "CNY", "HKD", "IDR", "ILS", "INR", "KRW", "MXN", "MYR", "NZD", "PHP", "SGD",
	"THB", "ZAR"}

func decimalOf(m *pb.Money) cartopt.Decimal {
	return cartopt.DecimalFromInt(m.GetAmountMinor(), money.Exponent(m.GetCurrency()))
}

// sellerID is the seller's numeric id, or a stable hash of the username
// for pages that show none (ties between sellers are broken by id).
func sellerID(l *pb.Listing) int64 {
	if l.SellerId > 0 {
		return l.SellerId
	}
	h := fnv.New64a()
	h.Write([]byte(l.Seller))
	return int64(h.Sum64() >> 1)
}

// problem assembles the cart problem of a request from the tables.
func (t *Tables) problem(req *pb.CartRequest, cands []*pb.CartCandidate, fresh func(int64) bool) (*cartopt.Problem, map[int64]*pb.Listing, error) {
	c := req.Criteria
	// A malformed rate leaves its currency out: its listings are dropped
	// and counted as unknown_currency (a budget in it fails validation),
	// rather than one bad record failing every request.
	rates, _ := t.rates()
	p := &cartopt.Problem{
		Name:  req.RequestId,
		Rates: rates,
		Criteria: cartopt.Criteria{
			Budget:    decimalOf(c.Budget),
			Currency:  c.Budget.Currency,
			MinMedia:  c.MinMedia,
			MinQty:    int(c.MinQty),
			Countries: c.ShipsFrom,
			TopN:      int(c.TopN),
		},
	}
	if c.MinSellerRating > 0 {
		var err error
		if p.Criteria.MinSellerRating, err = cartopt.DecimalFromFloat(c.MinSellerRating); err != nil {
			return nil, nil, fmt.Errorf("criteria.min_seller_rating: %w", err)
		}
	}
	// Sized up front: a 200 x 20 problem grew its listing slice (about
	// 200 bytes an element) and map a dozen times, which cost more than
	// the solve.
	n := 0
	keys := make([]string, len(cands))
	for i, cd := range cands {
		keys[i] = strconv.FormatInt(cd.ReleaseId, 10)
		if fresh(cd.ReleaseId) {
			n += t.Listings.Count(ReleaseIndex, keys[i])
		}
	}
	p.Candidates = make([]cartopt.Candidate, 0, len(cands))
	p.Listings = make([]cartopt.Listing, 0, n)
	byID := make(map[int64]*pb.Listing, n)
	ratings := map[string]cartopt.Decimal{} // per seller, for this problem
	for i, cd := range cands {
		score, err := cartopt.DecimalFromFloat(cd.Score)
		if err != nil {
			return nil, nil, fmt.Errorf("score of %d: %w", cd.ReleaseId, err)
		}
		p.Candidates = append(p.Candidates, cartopt.Candidate{ReleaseID: cd.ReleaseId, Score: score})
		if !fresh(cd.ReleaseId) {
			continue
		}
		err = t.Listings.Find(ReleaseIndex, keys[i], func(_ int64, l *pb.Listing) bool {
			if !l.Available || l.Price == nil {
				return true
			}
			byID[l.ListingId] = l
			cl := cartopt.Listing{
				ListingID:  l.ListingId,
				ReleaseID:  l.ReleaseId,
				SellerID:   sellerID(l),
				SellerName: l.Seller,
				Country:    l.ShipsFrom,
				Price:      decimalOf(l.Price),
				Currency:   l.Price.Currency,
				Media:      l.Media,
				MediaCond:  grade.Media(l.Media),
				SleeveCond: grade.Sleeve(l.Sleeve),
				// No CartURL: the solve does not use it; result()
				// writes the items' links.
			}
			switch l.ShippingState {
			case pb.ShippingState_SHIPPING_STATE_UNAVAILABLE, pb.ShippingState_SHIPPING_STATE_UNSPECIFIED:
				cl.ShippingUnavailable = true
			case pb.ShippingState_SHIPPING_STATE_PRICED:
				if l.Shipping != nil && l.Shipping.Currency != l.Price.Currency {
					// Shipping priced in another currency: express it in
					// the item's currency, exactly as the problem wants.
					if r1, ok1 := rates[l.Shipping.Currency]; ok1 {
						if r2, ok2 := rates[l.Price.Currency]; ok2 {
							conv, err := cartopt.NewConverter(map[string]cartopt.Decimal{l.Shipping.Currency: r1, l.Price.Currency: r2}, l.Price.Currency)
							if err == nil {
								if cents, err := conv.Cents(decimalOf(l.Shipping), l.Shipping.Currency); err == nil {
									cl.Shipping = cartopt.DecimalFromInt(cents, 2)
								}
							}
						}
					}
				} else if l.Shipping != nil {
					cl.Shipping = decimalOf(l.Shipping)
				}
			}
			rating, ok := ratings[l.Seller]
			if !ok {
				if s, ok := t.Sellers.Get(l.Seller); ok && s.HasRating {
					rating, _ = cartopt.DecimalFromFloat(s.RatingPercent)
				}
				ratings[l.Seller] = rating
			}
			cl.SellerRating = rating
			p.Listings = append(p.Listings, cl)
			return true
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return p, byID, nil
}

// toMoney turns cents of the collector's currency (the problem's unit, for
// every currency) into minor units, rounding half up for currencies with
// fewer than two decimals.
func toMoney(cents int64, currency string) *pb.Money {
	exp := money.Exponent(currency)
	v := cents
	switch {
	case exp > 2:
		for i := 2; i < exp; i++ {
			v *= 10
		}
	case exp < 2:
		d := int64(1)
		for i := exp; i < 2; i++ {
			d *= 10
		}
		v = (cents + d/2) / d
	}
	return &pb.Money{AmountMinor: v, Currency: currency}
}

// result turns a solve into the carts of a CartResult.
func result(res *cartopt.Result, cands []*pb.CartCandidate, listings map[int64]*pb.Listing, sellers *stream.GlobalTable[string, *pb.Seller], conv *cartopt.Converter) []*pb.Cart {
	score := map[int64]*pb.CartCandidate{}
	for _, cd := range cands {
		score[cd.ReleaseId] = cd
	}
	cur := res.Currency
	var out []*pb.Cart
	for _, c := range res.Carts {
		cart := &pb.Cart{Rank: int32(c.Rank), Subtotal: toMoney(c.Subtotal, cur), Shipping: toMoney(c.Shipping, cur),
			Total: toMoney(c.Total, cur), Score: c.Score, Quantity: int32(c.Quantity)}
		for _, sc := range c.Sellers {
			cart.Sellers = append(cart.Sellers, sc.SellerName)
		}
		for _, id := range c.ListingIDs {
			l := listings[id]
			if l == nil {
				continue
			}
			item := &pb.CartItem{ListingId: id, ReleaseId: l.ReleaseId, Seller: l.Seller, ListedPrice: l.Price, Media: l.Media,
				Sleeve: l.Sleeve, ShipsFrom: l.ShipsFrom,
				Url:     "https://www.discogs.com/sell/item/" + strconv.FormatInt(id, 10),
				CartUrl: "https://www.discogs.com/sell/cart/?add=" + strconv.FormatInt(id, 10)}
			if cents, err := conv.Cents(decimalOf(l.Price), l.Price.Currency); err == nil {
				item.Price = toMoney(cents, cur)
			}
			if l.Shipping != nil && l.ShippingState == pb.ShippingState_SHIPPING_STATE_PRICED {
				if cents, err := conv.Cents(decimalOf(l.Shipping), l.Shipping.Currency); err == nil {
					item.Shipping = toMoney(cents, cur)
				}
			}
			if cd := score[l.ReleaseId]; cd != nil {
				item.Score, item.Source = cd.Score, cd.Source
			}
			if s, ok := sellers.Get(l.Seller); ok {
				item.SellerRating = s.RatingPercent
			}
			cart.Items = append(cart.Items, item)
		}
		out = append(out, cart)
	}
	return out
}

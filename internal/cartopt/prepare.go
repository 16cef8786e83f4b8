package cartopt

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/cratestream/cratestream/internal/grade"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// Rejected counts the listings dropped by each filter. A listing is counted
// once, under the first filter it fails, in this order.
type Rejected struct {
	UnknownGrade        int // media grade text not recognised
	UnknownCurrency     int // no rate for the listing's currency
	NotCandidate        int // release is not a candidate
	Country             int // ships-from country not allowed
	Grade               int // media grade below the minimum
	SellerRating        int // seller rating below the minimum
	ShippingUnavailable int // does not ship to the collector
	Duplicate           int // a cheaper listing of the same release by the same seller was kept
}

// Total is the number of rejected listings.
func (r Rejected) Total() int {
	return r.UnknownGrade + r.UnknownCurrency + r.NotCandidate + r.Country + r.Grade + r.SellerRating +
		r.ShippingUnavailable + r.Duplicate
}

// item is a kept listing in the solver's terms: integer cents of the
// collector's currency and an integer score.
type item struct {
	cost   int64 // item price, cents
	ship   int64 // shipping, cents (0 when absent)
	w      int64 // score × 10^scoreDigits
	id     int64 // listing id
	rel    int32 // dense release index
	sell   int32 // dense seller index (into prepared.sellers)
	src    int32 // index into Problem.Listings
	afford bool  // cost + ship ≤ budget: can be in some cart
}

type sellerInfo struct {
	id    int64
	name  string
	items []int32 // indices into prepared.items, affordable ones only
}

// prepared is a problem after conversion and filtering.
type prepared struct {
	budget      int64 // cents, floored: totals are whole cents
	minQty      int   // ≥ 1
	scoreDigits int
	sumAbsW     int64 // Σ |w| over candidates
	items       []item
	sellers     []sellerInfo // sorted by seller id
	releases    int          // number of dense release indices
	kept        int
	rejected    Rejected
}

// prepare converts and filters p's listings (FORMAT.md rules 1 and 2).
func prepare(p *Problem) (*prepared, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	c := &p.Criteria
	conv, err := NewConverter(p.Rates, c.Currency)
	if err != nil {
		return nil, fmt.Errorf("criteria.currency: %w", err)
	}
	out := &prepared{minQty: max(1, c.MinQty)}
	// Budgets compare with whole-cent totals, so 100.005 allows 100.00.
	if out.budget, err = c.Budget.scaled(2, true); err != nil || out.budget > maxCents {
		return nil, fmt.Errorf("criteria.budget: %s: %w", c.Budget, ErrOutOfRange)
	}

	// Scores become integers at the finest decimal scale any of them needs.
	digits := 0
	for _, cd := range p.Candidates {
		digits = max(digits, cd.Score.fracDigits())
	}
	digits = min(digits, maxScoreDigits)
	var weights []int64
	for {
		weights = weights[:0]
		sum, overflow := int64(0), false
		for _, cd := range p.Candidates {
			w, err := cd.Score.scaled(digits, false)
			if err != nil || w > maxScoreSum || w < -maxScoreSum {
				overflow = true
				break
			}
			weights = append(weights, w)
			if sum += uabs64(w); sum > maxScoreSum {
				overflow = true
				break
			}
		}
		if !overflow {
			out.sumAbsW = sum
			break
		}
		if digits == 0 {
			return nil, fmt.Errorf("candidates: scores sum to more than the exact arithmetic holds (2^58 units): %w", ErrOutOfRange)
		}
		digits-- // coarser resolution, documented in the package comment
	}
	out.scoreDigits = digits
	type cand struct {
		w   int64
		rel int32
	}
	cands := make(map[int64]cand, len(p.Candidates))
	for i, cd := range p.Candidates {
		cands[cd.ReleaseID] = cand{w: weights[i], rel: int32(i)}
	}
	out.releases = len(p.Candidates)

	allowed := map[string]bool{}
	for _, ctry := range c.Countries {
		allowed[ctry] = true
	}
	type key struct {
		seller int64
		rel    int32
	}
	best := make(map[key]int32, len(p.Listings)/2) // → index into out.items
	sellerIdx := map[int64]int32{}
	out.items = make([]item, 0, len(p.Listings)/2)
	for i := range p.Listings {
		l := &p.Listings[i]
		cd, isCand := cands[l.ReleaseID]
		switch {
		case l.Media == pb.MediaGrade_MEDIA_GRADE_UNSPECIFIED || l.Media > pb.MediaGrade_MEDIA_GRADE_POOR:
			out.rejected.UnknownGrade++
			continue
		case !conv.Knows(l.Currency):
			out.rejected.UnknownCurrency++
			continue
		case !isCand:
			out.rejected.NotCandidate++
			continue
		case len(allowed) > 0 && !allowed[l.Country]:
			out.rejected.Country++
			continue
		case !grade.AtLeast(l.Media, c.MinMedia):
			out.rejected.Grade++
			continue
		case l.SellerRating.Cmp(c.MinSellerRating) < 0:
			out.rejected.SellerRating++
			continue
		case l.ShippingUnavailable:
			out.rejected.ShippingUnavailable++
			continue
		}
		if l.Price.Sign() < 0 || l.Shipping.Sign() < 0 {
			return nil, fmt.Errorf("listings[%d]: negative price or shipping (listing %d)", i, l.ListingID)
		}
		price, err := conv.Cents(l.Price, l.Currency)
		if err != nil {
			return nil, fmt.Errorf("listings[%d].price: %w", i, err)
		}
		ship := int64(0)
		if l.Shipping.Sign() != 0 {
			if ship, err = conv.Cents(l.Shipping, l.Currency); err != nil {
				return nil, fmt.Errorf("listings[%d].shipping: %w", i, err)
			}
		}
		it := item{cost: price, ship: ship, w: cd.w, id: l.ListingID, rel: cd.rel, src: int32(i)}
		k := key{l.SellerID, cd.rel}
		if j, dup := best[k]; dup {
			out.rejected.Duplicate++
			old := &out.items[j]
			if price < old.cost || (price == old.cost && l.ListingID < old.id) {
				it.sell = old.sell
				*old = it
			}
			continue
		}
		s, ok := sellerIdx[l.SellerID]
		if !ok {
			s = int32(len(out.sellers))
			sellerIdx[l.SellerID] = s
			out.sellers = append(out.sellers, sellerInfo{id: l.SellerID, name: l.SellerName})
		}
		it.sell = s
		best[k] = int32(len(out.items))
		out.items = append(out.items, it)
	}
	out.kept = len(out.items)

	// Sellers in id order, so that everything downstream is deterministic.
	order := make([]int32, len(out.sellers))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(out.sellers[a].id, out.sellers[b].id) })
	remap := make([]int32, len(order))
	sorted := make([]sellerInfo, len(order))
	for newIdx, old := range order {
		remap[old] = int32(newIdx)
		sorted[newIdx] = out.sellers[old]
	}
	out.sellers = sorted
	for i := range out.items {
		it := &out.items[i]
		it.sell = remap[it.sell]
		if it.cost <= out.budget && it.ship <= out.budget-it.cost {
			it.afford = true
			out.sellers[it.sell].items = append(out.sellers[it.sell].items, int32(i))
		}
	}
	return out, nil
}

func uabs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

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
	candidates  int
	listingsIn  int
	kept        int
	rejected    Rejected
}

// preparer applies FORMAT.md rules 1 and 2 one listing at a time, so that
// SolveJSON can filter listings as it parses them.
type preparer struct {
	out       *prepared
	crit      *Criteria
	cands     map[int64]cand
	allowed   map[string]bool
	curs      smallCache[*convFactor]
	countries smallCache[struct{}]
	best      map[int64]int32 // (dense seller, release) → index into out.items
	sellerIdx map[int64]int32
}

type cand struct {
	w   int64
	rel int32
}

// prepare converts and filters p's listings.
func prepare(p *Problem) (*prepared, error) {
	pp, err := newPreparer(p, len(p.Listings))
	if err != nil {
		return nil, err
	}
	for i := range p.Listings {
		if err := pp.add(i, &p.Listings[i]); err != nil {
			return nil, err
		}
	}
	return pp.finish(), nil
}

// newPreparer validates p's criteria, rates and candidates (not its
// listings) and sets up the filters; sizeHint is the expected number of
// listings.
func newPreparer(p *Problem, sizeHint int) (*preparer, error) {
	if err := p.validateHeader(); err != nil {
		return nil, err
	}
	c := &p.Criteria
	conv, err := NewConverter(p.Rates, c.Currency)
	if err != nil {
		return nil, fmt.Errorf("criteria.currency: %w", err)
	}
	out := &prepared{minQty: max(1, c.MinQty), candidates: len(p.Candidates)}
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
	pp := &preparer{
		out:       out,
		crit:      c,
		cands:     make(map[int64]cand, len(p.Candidates)),
		allowed:   map[string]bool{},
		best:      make(map[int64]int32, sizeHint/2),
		sellerIdx: map[int64]int32{},
	}
	for i, cd := range p.Candidates {
		pp.cands[cd.ReleaseID] = cand{w: weights[i], rel: int32(i)}
	}
	out.releases = len(p.Candidates)
	for _, ctry := range c.Countries {
		pp.allowed[ctry] = true
	}
	// 50k listings carry a handful of distinct currencies and countries:
	// small linear caches in front of the maps save most of the string
	// hashing, which otherwise dominates this loop.
	pp.curs.lookup = func(cur string) (*convFactor, bool) {
		f, ok := conv.factors[cur]
		return &f, ok
	}
	pp.countries.lookup = func(ctry string) (struct{}, bool) { return struct{}{}, pp.allowed[ctry] }
	out.items = make([]item, 0, sizeHint/2)
	return pp, nil
}

// add filters and converts listing i. l is not retained.
func (pp *preparer) add(i int, l *Listing) error {
	out, c := pp.out, pp.crit
	out.listingsIn++
	cd, isCand := pp.cands[l.ReleaseID]
	factor, knownCur := pp.curs.get(l.Currency)
	switch {
	case l.Media == pb.MediaGrade_MEDIA_GRADE_UNSPECIFIED || l.Media > pb.MediaGrade_MEDIA_GRADE_POOR:
		out.rejected.UnknownGrade++
		return nil
	case !knownCur:
		out.rejected.UnknownCurrency++
		return nil
	case !isCand:
		out.rejected.NotCandidate++
		return nil
	case len(pp.allowed) > 0 && !pp.countries.has(l.Country):
		out.rejected.Country++
		return nil
	case !grade.AtLeast(l.Media, c.MinMedia):
		out.rejected.Grade++
		return nil
	case l.SellerRating.Cmp(c.MinSellerRating) < 0:
		out.rejected.SellerRating++
		return nil
	case l.ShippingUnavailable:
		out.rejected.ShippingUnavailable++
		return nil
	}
	if l.Price.Sign() < 0 {
		return fmt.Errorf("listings[%d].price: %s is negative (listing %d)", i, l.Price, l.ListingID)
	}
	if l.Shipping.Sign() < 0 {
		return fmt.Errorf("listings[%d].shipping: %s is negative (listing %d)", i, l.Shipping, l.ListingID)
	}
	price, err := factor.cents(l.Price, l.Currency)
	if err != nil {
		return fmt.Errorf("listings[%d].price: %w", i, err)
	}
	ship := int64(0)
	if l.Shipping.Sign() != 0 {
		if ship, err = factor.cents(l.Shipping, l.Currency); err != nil {
			return fmt.Errorf("listings[%d].shipping: %w", i, err)
		}
	}
	s, ok := pp.sellerIdx[l.SellerID]
	if !ok {
		s = int32(len(out.sellers))
		pp.sellerIdx[l.SellerID] = s
		out.sellers = append(out.sellers, sellerInfo{id: l.SellerID, name: l.SellerName})
	}
	it := item{cost: price, ship: ship, w: cd.w, id: l.ListingID, rel: cd.rel, sell: s}
	k := int64(s)<<32 | int64(cd.rel) // an int64 key takes the maps' fast path
	if j, dup := pp.best[k]; dup {
		out.rejected.Duplicate++
		if old := &out.items[j]; price < old.cost || (price == old.cost && l.ListingID < old.id) {
			*old = it
		}
		return nil
	}
	pp.best[k] = int32(len(out.items))
	out.items = append(out.items, it)
	return nil
}

// finish orders the sellers and marks what is affordable.
func (pp *preparer) finish() *prepared {
	out := pp.out
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
	return out
}

// smallCache memoizes a string lookup for a few distinct keys, compared
// linearly before falling back to lookup. Keys are first compared packed
// into an integer (length and first 7 bytes): currency codes never need
// more, so a hit costs a few integer comparisons instead of a hash.
type smallCache[V any] struct {
	lookup func(string) (V, bool)
	packed []uint64
	keys   []string
	vals   []V
	oks    []bool
}

func packKey(s string) uint64 {
	k := uint64(len(s))
	for i := 0; i < len(s) && i < 7; i++ {
		k |= uint64(s[i]) << (8 * (i + 1))
	}
	return k
}

func (c *smallCache[V]) get(k string) (V, bool) {
	pk := packKey(k)
	for i, x := range c.packed {
		if x == pk && (len(k) <= 7 || c.keys[i] == k) {
			return c.vals[i], c.oks[i]
		}
	}
	v, ok := c.lookup(k)
	if len(c.keys) < 32 {
		c.packed = append(c.packed, pk)
		c.keys = append(c.keys, k)
		c.vals = append(c.vals, v)
		c.oks = append(c.oks, ok)
	}
	return v, ok
}

func (c *smallCache[V]) has(k string) bool {
	_, ok := c.get(k)
	return ok
}

func uabs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

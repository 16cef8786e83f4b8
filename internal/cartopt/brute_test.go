package cartopt

import (
	"cmp"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// bruteCart is a cart found by exhaustive enumeration.
type bruteCart struct {
	seller int64 // single-seller mode
	ids    []int64
	q      int64
	w      int64 // score sum, scaled
	total  int64
	obj    *big.Int // exact objective, scaled
}

// bruteSolve enumerates every subset: per seller in single-seller mode,
// over all kept listings in multi-seller mode. It shares only prepare
// (conversion and filters, tested on their own) with the solver; the
// objective is recomputed in big integers.
func bruteSolve(t *testing.T, p *Problem, o Options) []bruteCart {
	t.Helper()
	pr, err := prepare(p)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	seed := o.Objective != ObjectiveSum
	topN := p.Criteria.TopN
	if o.TopN > 0 {
		topN = o.TopN
	}
	if topN <= 0 {
		topN = DefaultTopN
	}
	minQty := max(1, p.Criteria.MinQty)
	eval := func(items []item) (bruteCart, bool) {
		c := bruteCart{q: int64(len(items))}
		ships := map[int32]int64{}
		rels := map[int32]bool{}
		cost := int64(0)
		for _, it := range items {
			if rels[it.rel] {
				return c, false
			}
			rels[it.rel] = true
			c.ids = append(c.ids, it.id)
			c.w += it.w
			cost += it.cost
			ships[it.sell] = max(ships[it.sell], it.ship)
		}
		for _, s := range ships {
			cost += s
		}
		c.total = cost
		if len(items) < minQty || cost > pr.budget {
			return c, false
		}
		slices.Sort(c.ids)
		c.obj = big.NewInt(c.w)
		if seed {
			c.obj.Mul(c.obj, big.NewInt(c.q))
		}
		return c, true
	}
	better := func(a, b bruteCart) bool {
		if c := a.obj.Cmp(b.obj); c != 0 {
			return c > 0
		}
		if a.total != b.total {
			return a.total < b.total
		}
		return slices.Compare(a.ids, b.ids) < 0
	}
	subsets := func(items []item, visit func([]item)) {
		n := len(items)
		if n > 20 {
			t.Fatalf("brute force over %d items", n)
		}
		buf := make([]item, 0, n)
		for mask := 1; mask < 1<<n; mask++ {
			buf = buf[:0]
			for i := range n {
				if mask&(1<<i) != 0 {
					buf = append(buf, items[i])
				}
			}
			visit(buf)
		}
	}
	var out []bruteCart
	if o.MultiSeller {
		subsets(pr.items, func(s []item) {
			if c, ok := eval(s); ok {
				out = append(out, c)
			}
		})
		slices.SortFunc(out, func(a, b bruteCart) int {
			if better(a, b) {
				return -1
			}
			if better(b, a) {
				return 1
			}
			return 0
		})
	} else {
		bySeller := map[int32][]item{}
		for _, it := range pr.items {
			bySeller[it.sell] = append(bySeller[it.sell], it)
		}
		for sell, items := range bySeller {
			var best *bruteCart
			subsets(items, func(s []item) {
				if c, ok := eval(s); ok && (best == nil || better(c, *best)) {
					c.seller = pr.sellers[sell].id
					best = &c
				}
			})
			if best != nil {
				out = append(out, *best)
			}
		}
		slices.SortFunc(out, func(a, b bruteCart) int {
			if c := b.obj.Cmp(a.obj); c != 0 {
				return c
			}
			if c := cmp.Compare(a.total, b.total); c != 0 {
				return c
			}
			return cmp.Compare(a.seller, b.seller)
		})
	}
	if len(out) > topN {
		out = out[:topN]
	}
	return out
}

// shipMode is how randProblem prices shipping.
type shipMode int

const (
	shipMixed    shipMode = iota // absent, small or any
	shipNone                     // never: the group search
	shipBySeller                 // one price per seller
)

// randProblem generates a small random problem. Prices, rates and scores
// have awkward decimals; grades, countries, ratings, currencies, shipping
// and duplicates exercise every filter.
// randProblemLenient is randProblem with, when lenient, criteria that let
// most listings through (larger instances for the search).
func randProblemLenient(rng *rand.Rand, nListings, nSellers, nReleases int, ship shipMode, lenient bool) *Problem {
	currencies := []string{"EUR", "USD", "JPY", "GBP", "SEK"}
	rates := map[string]Decimal{"EUR": MustDecimal("1")}
	for _, c := range currencies[1:] {
		switch c {
		case "JPY":
			rates[c] = MustDecimal(fmt.Sprintf("%d.%02d", 100+rng.IntN(60), rng.IntN(100)))
		case "SEK":
			rates[c] = MustDecimal(fmt.Sprintf("%d.%03d", 9+rng.IntN(3), rng.IntN(1000)))
		default:
			rates[c] = MustDecimal(fmt.Sprintf("0.%04d", 7000+rng.IntN(6000)))
		}
	}
	grades := []string{"Mint (M)", "Near Mint (NM or M-)", "Very Good Plus (VG+)", "Very Good (VG)", "Good (G)", "Poor (P)", "Excellent"}
	countries := []string{"United States", "Germany", "Japan", "France"}
	p := &Problem{Rates: rates}
	p.Criteria = Criteria{
		Budget:          MustDecimal(fmt.Sprintf("%d.%02d", rng.IntN(120), rng.IntN(100))),
		Currency:        currencies[rng.IntN(len(currencies))],
		MinSellerRating: MustDecimal(fmt.Sprintf("%d.%d", 95+rng.IntN(5), rng.IntN(10))),
		MinQty:          rng.IntN(4),
		TopN:            1 + rng.IntN(10),
	}
	if p.Criteria.Currency == "JPY" {
		p.Criteria.Budget = MustDecimal(strconv.Itoa(rng.IntN(15000)))
	}
	if rng.IntN(3) > 0 && !lenient {
		p.Criteria.MinMedia, _ = parseMinMedia(grades[rng.IntN(4)])
	}
	if rng.IntN(2) == 0 && !lenient {
		p.Criteria.Countries = countries[:1+rng.IntN(3)]
	}
	if lenient {
		p.Criteria.MinSellerRating = Decimal{}
	}
	// Scores: few distinct values so that ties happen; some zero or
	// negative.
	palette := []string{"0.106882", "0.5", "1.25", "0.75", "0.333333", "2", "0.1", "0", "-0.2"}
	for r := range nReleases {
		s := palette[rng.IntN(len(palette))]
		if rng.IntN(3) == 0 {
			s = fmt.Sprintf("%d.%06d", rng.IntN(2), rng.IntN(1000000))
		}
		p.Candidates = append(p.Candidates, Candidate{ReleaseID: int64(100 + r), Score: MustDecimal(s)})
	}
	for i := range nListings {
		cur := currencies[rng.IntN(len(currencies))]
		price := fmt.Sprintf("%d.%02d", rng.IntN(25), rng.IntN(100))
		switch cur {
		case "JPY":
			price = strconv.Itoa(rng.IntN(3500))
		case "SEK":
			price = fmt.Sprintf("%d.%02d", rng.IntN(250), rng.IntN(100))
		}
		seller := rng.IntN(nSellers)
		l := Listing{
			ListingID:    int64(1000 + rng.IntN(50)*100 + i), // ids not in listing order
			ReleaseID:    int64(100 + rng.IntN(nReleases+1)), // one release is no candidate
			SellerID:     int64(500 + seller),
			SellerName:   fmt.Sprintf("seller%d", seller),
			SellerRating: MustDecimal(fmt.Sprintf("%d.%d", 96+rng.IntN(5), rng.IntN(10))),
			Country:      countries[seller%len(countries)],
			Price:        MustDecimal(price),
			Currency:     cur,
			MediaCond:    grades[rng.IntN(len(grades))],
		}
		if rng.IntN(12) == 0 {
			l.Currency = "XXX"
		}
		l.Media, _ = parseMinMedia(l.MediaCond)
		if l.MediaCond == "Excellent" {
			l.Media = pb.MediaGrade_MEDIA_GRADE_UNSPECIFIED
		}
		mode := rng.IntN(4)
		switch ship {
		case shipNone:
			mode = 0
		case shipBySeller:
			mode = -1
			l.Shipping = DecimalFromInt(int64(100+seller*137%900), 2)
		}
		switch mode {
		case -1, 0: // no shipping, or set above
		case 1:
			l.Shipping = MustDecimal(fmt.Sprintf("%d.%02d", 2+rng.IntN(3), rng.IntN(100)))
		default:
			l.Shipping = MustDecimal(fmt.Sprintf("%d.%02d", rng.IntN(12), rng.IntN(100)))
			switch cur {
			case "JPY":
				l.Shipping = MustDecimal(strconv.Itoa(rng.IntN(1500)))
			case "SEK":
				l.Shipping = MustDecimal(strconv.Itoa(rng.IntN(100)))
			}
		}
		l.ShippingUnavailable = rng.IntN(15) == 0
		p.Listings = append(p.Listings, l)
	}
	return p
}

// checkAgainstBrute solves p and compares with the brute force, rank by
// rank, and checks every cart's invariants.
func checkAgainstBrute(t *testing.T, p *Problem, o Options) int {
	t.Helper()
	want := bruteSolve(t, p, o)
	res, err := Solve(p, o)
	if err != nil {
		t.Fatalf("Solve: %v", err)
	}
	pr, _ := prepare(p)
	if len(res.Carts) != len(want) {
		t.Fatalf("%+v: %d carts, brute force %d\nwant %v\ngot  %v", o, len(res.Carts), len(want), describeBrute(want), describeCarts(res))
	}
	for i, c := range res.Carts {
		w := want[i]
		if !slices.Equal(c.ListingIDs, w.ids) || c.Total != w.total || (!o.MultiSeller && c.Sellers[0].SellerID != w.seller) {
			t.Fatalf("%+v rank %d: got %v total %d, want %v total %d\nwant %v\ngot  %v", o, i+1, c.ListingIDs, c.Total, w.ids, w.total,
				describeBrute(want), describeCarts(res))
		}
		checkCart(t, p, pr, o, &c)
	}
	return len(res.Carts)
}

// checkCart verifies a cart's invariants from the problem alone.
func checkCart(t *testing.T, p *Problem, pr *prepared, o Options, c *Cart) {
	t.Helper()
	if c.Quantity != len(c.ListingIDs) || c.Quantity < max(1, p.Criteria.MinQty) {
		t.Fatalf("cart %d: quantity %d, %d ids, min_qty %d", c.Rank, c.Quantity, len(c.ListingIDs), p.Criteria.MinQty)
	}
	if !slices.IsSorted(c.ListingIDs) {
		t.Fatalf("cart %d: ids not sorted", c.Rank)
	}
	byID := map[int64]*item{}
	for i := range pr.items {
		byID[pr.items[i].id] = &pr.items[i]
	}
	rels := map[int32]bool{}
	ships := map[int32]int64{}
	sub := int64(0)
	score := new(big.Rat)
	for _, id := range c.ListingIDs {
		it := byID[id]
		if it == nil {
			t.Fatalf("cart %d: listing %d was not kept", c.Rank, id)
		}
		if rels[it.rel] {
			t.Fatalf("cart %d: release twice", c.Rank)
		}
		rels[it.rel] = true
		sub += it.cost
		ships[it.sell] = max(ships[it.sell], it.ship)
		score.Add(score, p.Candidates[it.rel].Score.Rat())
	}
	ship := int64(0)
	for _, s := range ships {
		ship += s
	}
	if !o.MultiSeller && len(ships) != 1 {
		t.Fatalf("cart %d: %d sellers in single-seller mode", c.Rank, len(ships))
	}
	if sub != c.Subtotal || ship != c.Shipping || sub+ship != c.Total || c.Total > pr.budget {
		t.Fatalf("cart %d: subtotal %d shipping %d total %d, recomputed %d %d, budget %d", c.Rank, c.Subtotal, c.Shipping, c.Total, sub, ship, pr.budget)
	}
	if o.Objective != ObjectiveSum {
		score.Mul(score, big.NewRat(int64(c.Quantity), 1))
	}
	if pr.scoreDigits == maxScoreDigits {
		return // scores were rounded: the exact recomputation differs
	}
	if score.Cmp(c.ScoreRat()) != 0 {
		t.Fatalf("cart %d: score %v, recomputed %v", c.Rank, c.ScoreRat(), score)
	}
}

func describeBrute(cs []bruteCart) string {
	s := ""
	for _, c := range cs {
		s += fmt.Sprintf("[s%d %v q%d w%d t%d] ", c.seller, c.ids, c.q, c.w, c.total)
	}
	return s
}

func describeCarts(r *Result) string {
	s := ""
	for _, c := range r.Carts {
		s += fmt.Sprintf("[s%d %v q%d t%d %s] ", c.Sellers[0].SellerID, c.ListingIDs, c.Quantity, c.Total, c.ScoreRat().FloatString(6))
	}
	return s
}

func TestAgainstBruteForce(t *testing.T) {
	tests := []struct {
		name      string
		multi     bool
		instances int
		listings  int
		sellers   int
		releases  int
		ship      shipMode
		lenient   bool
	}{
		{"single/few sellers", false, 1500, 30, 3, 12, shipMixed, false},
		{"single/many sellers", false, 1000, 40, 8, 10, shipMixed, false},
		{"single/one big seller", false, 500, 45, 1, 16, shipMixed, false},
		{"single/lenient", false, 500, 30, 2, 16, shipMixed, true},
		{"single/no shipping", false, 500, 40, 2, 16, shipNone, false},
		{"multi/small", true, 1500, 26, 4, 8, shipMixed, false},
		{"multi/dense releases", true, 1000, 26, 5, 5, shipMixed, false},
		{"multi/no shipping", true, 1500, 26, 4, 8, shipNone, false},
		{"multi/shipping by seller", true, 1000, 26, 4, 8, shipBySeller, false},
		{"multi/lenient", true, 1000, 14, 5, 10, shipMixed, true},
		{"multi/lenient no shipping", true, 1000, 14, 5, 10, shipNone, true},
		{"multi/lenient by seller", true, 1000, 14, 3, 10, shipBySeller, true},
	}
	for _, tt := range tests {
		for _, obj := range []string{ObjectiveSeed, ObjectiveSum} {
			t.Run(tt.name+"/"+obj, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(len(tt.name)), uint64(tt.instances)))
				n := tt.instances
				if testing.Short() {
					n /= 10
				}
				ran, carts, kept := 0, 0, 0
				defer func() { t.Logf("%d instances checked, %d kept listings, %d carts", ran, kept, carts) }()
				for i := range n {
					p := randProblemLenient(rng, tt.listings, tt.sellers, tt.releases, tt.ship, tt.lenient)
					pr, err := prepare(p)
					if err != nil {
						t.Fatalf("instance %d: %v", i, err)
					}
					// Keep the brute force tractable.
					if tt.multi && len(pr.items) > 13 {
						continue
					}
					if !tt.multi && maxPerSeller(pr) > 18 {
						continue
					}
					ran++
					kept += len(pr.items)
					t.Run(strconv.Itoa(i), func(t *testing.T) {
						carts += checkAgainstBrute(t, p, Options{Objective: obj, MultiSeller: tt.multi})
					})
				}
			})
		}
	}
}

func maxPerSeller(pr *prepared) int {
	n := map[int32]int{}
	m := 0
	for _, it := range pr.items {
		n[it.sell]++
		m = max(m, n[it.sell])
	}
	return m
}

// TestEnginesAgree pits the three searches against each other on instances
// too large for brute force: with one seller, the single-seller level
// search and both multi-seller searches must find the same best cart; with
// several sellers and no shipping, the group and block searches the same
// top N.
func TestEnginesAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	n := 300
	if testing.Short() {
		n = 30
	}
	compared, skipped, carts, qty := 0, 0, 0, 0
	defer func() {
		t.Logf("%d compared, %d skipped (node limit), %d carts, %d listings in them", compared, skipped, carts, qty)
	}()
	for i := range n {
		for _, obj := range []string{ObjectiveSeed, ObjectiveSum} {
			oneSeller := i%2 == 0
			ship := shipMode(i % 3)
			sellers := 1
			if !oneSeller {
				sellers, ship = 6, shipNone
			}
			listings, releases := 70, 40
			if !oneSeller {
				listings, releases = 40, 20
			}
			p := randProblemLenient(rng, listings, sellers, releases, ship, true)
			p.Criteria.Budget = MustDecimal(fmt.Sprintf("%d", 40+rng.IntN(160)))
			if p.Criteria.Currency == "JPY" {
				p.Criteria.Budget = MustDecimal(fmt.Sprintf("%d", 5000+rng.IntN(20000)))
			}
			name := fmt.Sprintf("%d/%s", i, obj)
			o := Options{Objective: obj, MultiSeller: true, MaxNodes: 5e6}
			if oneSeller {
				o.TopN = 1
			}
			blocks, err := solve(p, o, func(sv *solver) { sv.forceBlocks = true })
			if errors.Is(err, ErrSearchLimit) {
				skipped++
				continue
			}
			compared++
			if err != nil {
				t.Fatalf("%s: blocks: %v", name, err)
			}
			var other *Result
			if oneSeller {
				other, err = Solve(p, Options{Objective: obj, TopN: 1, MaxNodes: 5e6})
			} else {
				other, err = Solve(p, o)
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, c := range other.Carts {
				carts++
				qty += c.Quantity
			}
			if describeCarts(blocks) != describeCarts(other) {
				t.Fatalf("%s: engines disagree\nblocks %s\nother  %s", name, describeCarts(blocks), describeCarts(other))
			}
			if oneSeller && ship == shipNone {
				groups, err := Solve(p, o)
				if err != nil {
					t.Fatalf("%s: groups: %v", name, err)
				}
				if describeCarts(groups) != describeCarts(other) {
					t.Fatalf("%s: engines disagree\ngroups %s\nsingle %s", name, describeCarts(groups), describeCarts(other))
				}
			}
		}
	}
}

package cartopt

import (
	"cmp"
	"fmt"
	"math/big"
	"math/bits"
	"slices"
	"time"
)

// Options tune a solve.
type Options struct {
	// Objective is ObjectiveSeed (the default when empty) or ObjectiveSum.
	Objective string
	// MultiSeller lets a cart combine several sellers (FORMAT.md rule 5).
	MultiSeller bool
	// TopN overrides Criteria.TopN when positive.
	TopN int
	// MaxNodes bounds the search (0: no bound). Past it Solve fails with
	// ErrSearchLimit instead of returning carts that may not be optimal:
	// a guard for a processor facing adversarial input.
	MaxNodes int64
}

// Result is the answer to a problem.
type Result struct {
	Objective   string
	MultiSeller bool
	Currency    string
	Carts       []Cart // best first, Rank 1, 2, ...
	Counts      Counts
	// Elapsed is the time Solve took; a caller that also parsed the input
	// may overwrite it with the time of the whole job before WriteJSON.
	Elapsed time.Duration
}

// Cart is one cart of the answer. Money is in integer cents of the
// collector's currency.
type Cart struct {
	Rank int
	// Sellers are the parts of the cart by seller (one in single-seller
	// mode), by seller id.
	Sellers    []SellerCart
	ListingIDs []int64 // sorted
	Quantity   int
	Subtotal   int64
	Shipping   int64
	Total      int64
	// Score is the objective (quantity × Σ score for seed, Σ score for
	// sum); ScoreRat has it exactly.
	Score    float64
	scoreRat *big.Rat
}

// ScoreRat returns the exact objective of the cart.
func (c *Cart) ScoreRat() *big.Rat { return new(big.Rat).Set(c.scoreRat) }

// SellerCart is the part of a cart bought from one seller.
type SellerCart struct {
	SellerID   int64
	SellerName string
	ListingIDs []int64 // sorted
	Subtotal   int64
	Shipping   int64 // the largest shipping among these listings
}

// Counts summarise a solve.
type Counts struct {
	Candidates   int
	ListingsIn   int
	ListingsKept int // passed the filters (after keeping one listing per seller and release)
	Sellers      int // sellers with kept listings
	// FeasibleSellers are the sellers with at least one feasible cart
	// (single-seller mode; in multi-seller mode the sellers with an
	// affordable listing).
	FeasibleSellers int
	Carts           int
	Rejected        Rejected
}

// found is a cart the search produced, before formatting.
type found struct {
	v      value
	total  int64
	ids    []int64 // sorted listing ids
	refs   []int32 // prepared.items indices
	seller int64   // single-seller mode
}

// betterCart orders carts of one search: objective, then lower total, then
// the lexicographically smaller sorted listing ids.
func betterCart(kind objKind, a, b *found) bool {
	if c := kind.cmp(a.v, b.v); c != 0 {
		return c > 0
	}
	if a.total != b.total {
		return a.total < b.total
	}
	return slices.Compare(a.ids, b.ids) < 0
}

// betterSeller orders the sellers' best carts: objective, then lower
// total, then lower seller id.
func betterSeller(kind objKind, a, b *found) bool {
	if c := kind.cmp(a.v, b.v); c != 0 {
		return c > 0
	}
	if a.total != b.total {
		return a.total < b.total
	}
	return a.seller < b.seller
}

// Solve finds the exact top carts of p. It validates p first (a Problem
// built in Go has not been through ReadInput).
func Solve(p *Problem, o Options) (*Result, error) {
	return solve(p, o, nil)
}

// solve is Solve with a hook for tests to adjust the solver (to pit its
// search engines against each other).
func solve(p *Problem, o Options, tweak func(*solver)) (*Result, error) {
	start := time.Now()
	if err := checkOptions(&o); err != nil {
		return nil, err
	}
	pr, err := prepare(p)
	if err != nil {
		return nil, err
	}
	return solvePrepared(pr, p.Criteria, o, start, tweak)
}

func checkOptions(o *Options) error {
	switch o.Objective {
	case "", ObjectiveSeed:
		o.Objective = ObjectiveSeed
	case ObjectiveSum:
	default:
		return fmt.Errorf("objective %q: want %q or %q", o.Objective, ObjectiveSeed, ObjectiveSum)
	}
	return nil
}

// solvePrepared solves a prepared problem; start is when the whole job
// started (Result.Elapsed).
func solvePrepared(pr *prepared, crit Criteria, o Options, start time.Time, tweak func(*solver)) (*Result, error) {
	if err := checkOptions(&o); err != nil {
		return nil, err
	}
	kind := objSeed
	if o.Objective == ObjectiveSum {
		kind = objSum
	}
	topN := crit.TopN
	if o.TopN > 0 {
		topN = o.TopN
	}
	if topN <= 0 {
		topN = DefaultTopN
	}
	sv := &solver{pr: pr, kind: kind, topN: topN, limit: o.MaxNodes}
	if tweak != nil {
		tweak(sv)
	}
	var carts []*found
	if o.MultiSeller {
		carts = sv.solveMulti()
	} else {
		carts = sv.solveSingle()
	}
	if sv.stopped {
		return nil, fmt.Errorf("after %d nodes: %w", sv.nodes, ErrSearchLimit)
	}
	res := &Result{
		Objective:   o.Objective,
		MultiSeller: o.MultiSeller,
		Currency:    crit.Currency,
		Counts: Counts{
			Candidates:      pr.candidates,
			ListingsIn:      pr.listingsIn,
			ListingsKept:    pr.kept,
			Sellers:         len(pr.sellers),
			FeasibleSellers: sv.feasibleSellers,
			Carts:           len(carts),
			Rejected:        pr.rejected,
		},
	}
	for i, f := range carts {
		res.Carts = append(res.Carts, sv.cart(i+1, f))
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// cart formats a found cart.
func (sv *solver) cart(rank int, f *found) Cart {
	c := Cart{Rank: rank, ListingIDs: f.ids, Quantity: len(f.refs)}
	refs := slices.Clone(f.refs)
	slices.SortFunc(refs, func(a, b int32) int {
		ia, ib := &sv.pr.items[a], &sv.pr.items[b]
		if c := cmp.Compare(ia.sell, ib.sell); c != 0 {
			return c
		}
		return cmp.Compare(ia.id, ib.id)
	})
	for _, ref := range refs {
		it := &sv.pr.items[ref]
		si := sv.pr.sellers[it.sell]
		if n := len(c.Sellers); n == 0 || c.Sellers[n-1].SellerID != si.id {
			c.Sellers = append(c.Sellers, SellerCart{SellerID: si.id, SellerName: si.name})
		}
		sc := &c.Sellers[len(c.Sellers)-1]
		sc.ListingIDs = append(sc.ListingIDs, it.id)
		sc.Subtotal += it.cost
		sc.Shipping = max(sc.Shipping, it.ship)
	}
	for _, sc := range c.Sellers {
		c.Subtotal += sc.Subtotal
		c.Shipping += sc.Shipping
	}
	c.Total = c.Subtotal + c.Shipping
	c.scoreRat = sv.kind.rat(f.v, sv.pr.scoreDigits)
	c.Score, _ = c.scoreRat.Float64()
	return c
}

// solver holds one solve's state and scratch buffers.
type solver struct {
	pr              *prepared
	kind            objKind
	topN            int
	limit           int64
	nodes           int64
	stopped         bool
	feasibleSellers int
	forceBlocks     bool // tests: the block search even without shipping
	debug           func(q int, ship, ub int64, s *search)
	lastMS          *multiSeller

	// scratch
	wf, cf, val, cst []float64
}

// cheap is a quickly computed upper bound on the score sum of the best q
// items within a budget, for every q: the sum of the q best scores, capped
// by the fractional knapsack (both ignore the other constraint).
type cheap struct {
	kmax int     // no more items fit (the cheapest ones, plus fixed costs)
	topW []int64 // topW[q]: sum of the q largest scores
	frac int64   // fractional knapsack bound on any score sum
}

func (c *cheap) at(q int) value {
	return value{q: int64(q), w: min(c.topW[q], c.frac)}
}

// best returns the best cheap value over q in [qmin, kmax], and ok=false
// when no quantity is feasible.
func (c *cheap) best(kind objKind, qmin int) (value, bool) {
	var b value
	ok := false
	for q := qmin; q <= c.kmax; q++ {
		if v := c.at(q); !ok || kind.cmp(v, b) > 0 {
			b, ok = v, true
		}
	}
	return b, ok
}

// newCheap computes cheap bounds for items of scores w and costs c within
// budget b (fixed costs such as a reserved shipping already deducted).
func newCheap(w, c []int64, b int64) cheap {
	n := len(w)
	costs := slices.Clone(c)
	slices.Sort(costs)
	kmax, spent := 0, int64(0)
	for _, x := range costs {
		if x > b-spent {
			break
		}
		spent += x
		kmax++
	}
	ws := slices.Clone(w)
	slices.SortFunc(ws, func(a, b int64) int { return cmp.Compare(b, a) })
	topW := make([]int64, n+1)
	for i, x := range ws {
		topW[i+1] = topW[i] + x
	}
	return cheap{kmax: kmax, topW: topW, frac: fracKnapsack(w, c, b)}
}

// fracKnapsack is the LP bound of the 0/1 knapsack: items by score per
// cent, exactly ordered (cross-multiplied in 128 bits), the last one taken
// fractionally and rounded up.
func fracKnapsack(w, c []int64, b int64) int64 {
	idx := make([]int, 0, len(w))
	for i := range w {
		if w[i] > 0 {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(x, y int) int {
		// w_x/c_x > w_y/c_y  ⇔  w_x·c_y > w_y·c_x (costs ≥ 0).
		xh, xl := mul128(w[x], c[y])
		yh, yl := mul128(w[y], c[x])
		return -cmp128(xh, xl, yh, yl)
	})
	total, rem := int64(0), b
	for _, i := range idx {
		if c[i] <= rem {
			total += w[i]
			rem -= c[i]
			continue
		}
		hi, lo := bits.Mul64(uint64(w[i]), uint64(rem))
		q, r := bits.Div64(hi, lo, uint64(c[i]))
		total += int64(q)
		if r != 0 {
			total++
		}
		break
	}
	return total
}

// feasible reports whether some cart of at least qmin of these items fits
// budget b: for each item as the one with the largest shipping, the qmin
// cheapest items shipped for no more.
func feasible(items []item, refs []int32, qmin int, b int64) bool {
	if len(refs) < qmin {
		return false
	}
	order := slices.Clone(refs)
	slices.SortFunc(order, func(x, y int32) int { return cmp.Compare(items[x].ship, items[y].ship) })
	h := &maxHeap{}
	sum := int64(0)
	for _, r := range order {
		it := &items[r]
		h.push(it.cost)
		sum += it.cost
		if h.len() > qmin {
			sum -= h.pop()
		}
		if h.len() == qmin && sum <= b-it.ship {
			return true
		}
	}
	return false
}

// minHeap keeps the largest values seen: pop removes the smallest.
type minHeap struct{ a []int64 }

func (h *minHeap) len() int { return len(h.a) }

func (h *minHeap) push(x int64) {
	h.a = append(h.a, x)
	for i := len(h.a) - 1; i > 0; {
		p := (i - 1) / 2
		if h.a[p] <= h.a[i] {
			break
		}
		h.a[p], h.a[i] = h.a[i], h.a[p]
		i = p
	}
}

func (h *minHeap) pop() int64 {
	top := h.a[0]
	last := len(h.a) - 1
	h.a[0] = h.a[last]
	h.a = h.a[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && h.a[l] < h.a[m] {
			m = l
		}
		if r < last && h.a[r] < h.a[m] {
			m = r
		}
		if m == i {
			break
		}
		h.a[m], h.a[i] = h.a[i], h.a[m]
		i = m
	}
	return top
}

// maxHeap keeps the smallest values seen: pop removes the largest. It is a
// minHeap of negated values (costs are far from math.MinInt64).
type maxHeap struct{ h minHeap }

func (h *maxHeap) len() int       { return h.h.len() }
func (h *maxHeap) push(x int64)   { h.h.push(-x) }
func (h *maxHeap) pop() (x int64) { return -h.h.pop() }

// sellerBound is a seller's cheap bound.
type sellerBound struct {
	seller  int
	minShip int64
	cb      cheap
	ub      value
	ok      bool
}

func (sv *solver) sellerBound(si int) sellerBound {
	pr := sv.pr
	refs := pr.sellers[si].items
	sb := sellerBound{seller: si}
	if len(refs) == 0 {
		return sb
	}
	w := make([]int64, len(refs))
	c := make([]int64, len(refs))
	sb.minShip = pr.items[refs[0]].ship
	for i, r := range refs {
		w[i], c[i] = pr.items[r].w, pr.items[r].cost
		sb.minShip = min(sb.minShip, pr.items[r].ship)
	}
	sb.cb = newCheap(w, c, pr.budget-sb.minShip)
	sb.ub, sb.ok = sb.cb.best(sv.kind, pr.minQty)
	return sb
}

// qOrder lists the feasible quantities by decreasing cheap bound.
func (sv *solver) qOrder(cb *cheap) []int {
	var qs []int
	for q := sv.pr.minQty; q <= cb.kmax; q++ {
		qs = append(qs, q)
	}
	slices.SortStableFunc(qs, func(a, b int) int {
		if c := sv.kind.cmp(cb.at(b), cb.at(a)); c != 0 {
			return c
		}
		return cmp.Compare(b, a)
	})
	return qs
}

// solveSingle returns the best cart of each seller, the top N of them
// (FORMAT.md rules 3 and 4). Sellers are solved in decreasing order of a
// cheap bound, and the search stops once no remaining seller's bound can
// reach the N-th cart found: those sellers' carts cannot be in the answer.
func (sv *solver) solveSingle() []*found {
	pr := sv.pr
	var bounds []sellerBound
	for si := range pr.sellers {
		if !feasible(pr.items, pr.sellers[si].items, pr.minQty, pr.budget) {
			continue
		}
		sv.feasibleSellers++
		if sb := sv.sellerBound(si); sb.ok {
			bounds = append(bounds, sb)
		}
	}
	slices.SortStableFunc(bounds, func(a, b sellerBound) int { return sv.kind.cmp(b.ub, a.ub) })
	var top []*found
	for i := range bounds {
		sb := &bounds[i]
		if len(top) == sv.topN && sv.kind.cmp(sb.ub, top[len(top)-1].v) < 0 {
			break
		}
		bs := &bestSink{sv: sv, seller: pr.sellers[sb.seller].id}
		if len(top) == sv.topN {
			bs.global, bs.hasGlobal = top[len(top)-1], true
		}
		sv.solveSeller(sb, bs)
		if sv.stopped {
			return nil
		}
		if bs.best == nil {
			continue
		}
		pos, _ := slices.BinarySearchFunc(top, bs.best, func(e, t *found) int {
			if betterSeller(sv.kind, e, t) {
				return -1
			}
			return 1
		})
		if pos < sv.topN {
			top = slices.Insert(top, pos, bs.best)
			if len(top) > sv.topN {
				top = top[:sv.topN]
			}
		}
	}
	return top
}

// solveSeller finds the best cart of one seller into bs: for each
// quantity, for each shipping level (see search), a search run, skipping
// the quantities and levels whose bound cannot reach the threshold.
func (sv *solver) solveSeller(sb *sellerBound, bs *bestSink) {
	pr := sv.pr
	refs := pr.sellers[sb.seller].items
	n := len(refs)
	sv.ensureScratch(n)
	for i, r := range refs {
		sv.wf[i], sv.cf[i] = float64(pr.items[r].w), float64(pr.items[r].cost)
	}
	s := &search{
		runState: runState{kind: sv.kind, budget: pr.budget, sink: bs, sumAbsW: pr.sumAbsW, limit: sv.limitLeft()},
		share:    []int64{0}, mcap: []int64{int64(n)},
	}
	all := make([]gopt, n)
	// Levels: the distinct shippings, ascending.
	var ships []int64
	for _, r := range refs {
		ships = append(ships, pr.items[r].ship)
	}
	slices.Sort(ships)
	ships = slices.Compact(ships)
	type level struct {
		ship int64
		ub   int64 // root bound of the level's run, scaled
	}
	levels := make([]level, 0, len(ships))
	h := &minHeap{}
	for _, q := range sv.qOrder(&sb.cb) {
		if thr, _, ok := bs.threshold(); ok && sv.kind.cmp(sb.cb.at(q), thr) < 0 {
			break
		}
		lambda := lagrangeLambda(sv.wf[:n], sv.cf[:n], q, float64(pr.budget-sb.minShip), sv.val, sv.cst)
		s.p, s.qs = chooseScale(lambda, pr.sumAbsW, pr.budget, n)
		for i, r := range refs {
			it := &pr.items[r]
			all[i] = gopt{v: s.qs*it.w - s.p*it.cost, cost: it.cost, ship: it.ship, ref: r}
		}
		// By shipping, to get each level's root bound: P·(budget − s) plus
		// the q best values shipped for at most s.
		slices.SortFunc(all, func(a, b gopt) int { return cmp.Compare(a.ship, b.ship) })
		levels = levels[:0]
		h.a = h.a[:0]
		sum := int64(0)
		for i := 0; i < n; {
			ship := all[i].ship
			for ; i < n && all[i].ship == ship; i++ {
				h.push(all[i].v)
				sum += all[i].v
				if h.len() > q {
					sum -= h.pop()
				}
			}
			if h.len() == q {
				levels = append(levels, level{ship: ship, ub: s.p*(pr.budget-ship) + sum})
			}
		}
		slices.SortStableFunc(levels, func(a, b level) int { return cmp.Compare(b.ub, a.ub) })
		// The values, best first, shared by every level's groups.
		slices.SortFunc(all, func(a, b gopt) int {
			if c := cmp.Compare(b.v, a.v); c != 0 {
				return c
			}
			if c := cmp.Compare(a.cost, b.cost); c != 0 {
				return c
			}
			return cmp.Compare(pr.items[a.ref].id, pr.items[b.ref].id)
		})
		s.q = int64(q)
		for _, lv := range levels {
			s.refresh()
			if lv.ub < s.needQ {
				break
			}
			sv.buildLevel(s, all, lv.ship, lv.ship == ships[0])
			s.reset(q)
			s.run(lv.ship)
			if sv.debug != nil {
				sv.debug(q, lv.ship, lv.ub, s)
			}
			sv.nodes += s.nodes
			s.nodes = 0
			if s.stopped {
				sv.stopped = true
				return
			}
		}
	}
}

// buildLevel makes the groups of a single-seller run at shipping level
// ship from all (sorted by value): the listings shipped for at most ship,
// with their shipping zeroed since the run pays ship up front.
func (sv *solver) buildLevel(s *search, all []gopt, ship int64, lowest bool) {
	s.groups = s.groups[:0]
	for i := range all {
		o := &all[i]
		if o.ship > ship {
			continue
		}
		it := &sv.pr.items[o.ref]
		g := group{w: it.w, v: o.v, minCost: o.cost, opts: all[i : i+1 : i+1]}
		s.groups = append(s.groups, g)
	}
	// Group options share the backing array "all" (one option each); the
	// search reads lvl and ship from them, so mark through a copy.
	if cap(s.levelOpts) < len(s.groups) {
		s.levelOpts = make([]gopt, len(s.groups))
	}
	s.levelOpts = s.levelOpts[:len(s.groups)]
	for g := range s.groups {
		o := s.groups[g].opts[0]
		o.lvl = o.ship == ship
		o.ship = 0
		s.levelOpts[g] = o
		s.groups[g].opts = s.levelOpts[g : g+1 : g+1]
	}
	if lowest {
		// Every listing at the lowest level is shipped for exactly it.
		s.levelLeft = nil
		return
	}
	s.levelLeft = slices.Grow(s.levelLeft[:0], len(s.groups)+1)[:len(s.groups)+1]
	s.levelLeft[len(s.groups)] = 0
	for g := len(s.groups) - 1; g >= 0; g-- {
		s.levelLeft[g] = s.levelLeft[g+1]
		if s.levelOpts[g].lvl {
			s.levelLeft[g]++
		}
	}
}

func (sv *solver) limitLeft() int64 {
	if sv.limit <= 0 {
		return 0
	}
	return max(1, sv.limit-sv.nodes)
}

func (sv *solver) ensureScratch(n int) {
	if len(sv.wf) < n {
		sv.wf = make([]float64, n)
		sv.cf = make([]float64, n)
		sv.val = make([]float64, n)
		sv.cst = make([]float64, n)
	}
}

// bestSink keeps one seller's best cart.
type bestSink struct {
	sv        *solver
	seller    int64
	best      *found
	global    *found // the N-th best seller cart so far, when hasGlobal
	hasGlobal bool
}

// threshold is the stricter of the seller's best so far and the N-th best
// seller cart: a cart below either cannot be in the answer.
func (b *bestSink) threshold() (value, int64, bool) {
	if b.best == nil {
		if !b.hasGlobal {
			return value{}, 0, false
		}
		return b.global.v, b.global.total, true
	}
	if !b.hasGlobal {
		return b.best.v, b.best.total, true
	}
	c := b.sv.kind.cmp(b.best.v, b.global.v)
	if c > 0 || (c == 0 && b.best.total <= b.global.total) {
		return b.best.v, b.best.total, true
	}
	return b.global.v, b.global.total, true
}

func (b *bestSink) offer(v value, total int64, path []int32) bool {
	f := b.sv.newFound(v, total, path)
	f.seller = b.seller
	if b.best != nil && !betterCart(b.sv.kind, f, b.best) {
		return false
	}
	b.best = f
	return true
}

func (sv *solver) newFound(v value, total int64, path []int32) *found {
	f := &found{v: v, total: total, refs: slices.Clone(path), ids: make([]int64, len(path))}
	for i, r := range path {
		f.ids[i] = sv.pr.items[r].id
	}
	slices.Sort(f.ids)
	return f
}

// topSink keeps the N best carts of a multi-seller search.
type topSink struct {
	sv  *solver
	n   int
	top []*found
}

func (t *topSink) threshold() (value, int64, bool) {
	if len(t.top) < t.n {
		return value{}, 0, false
	}
	w := t.top[len(t.top)-1]
	return w.v, w.total, true
}

func (t *topSink) offer(v value, total int64, path []int32) bool {
	f := t.sv.newFound(v, total, path)
	pos, _ := slices.BinarySearchFunc(t.top, f, func(e, x *found) int {
		if betterCart(t.sv.kind, e, x) {
			return -1
		}
		return 1
	})
	if pos >= t.n {
		return false
	}
	t.top = slices.Insert(t.top, pos, f)
	if len(t.top) > t.n {
		t.top = t.top[:t.n]
	}
	return len(t.top) == t.n
}

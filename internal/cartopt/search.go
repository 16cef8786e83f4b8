package cartopt

import (
	"cmp"
	"errors"
	"math"
	"slices"
)

// ErrSearchLimit is returned when Options.MaxNodes is exceeded: the search
// stops rather than return a cart that might not be optimal.
var ErrSearchLimit = errors.New("search node limit exceeded")

// The exact search runs for one quantity q at a time: a depth-first branch
// and bound over releases ("groups"; in single-seller mode each of the
// seller's listings is its own group), choosing for each release one of its
// listings or none, that visits every cart of exactly q listings whose
// objective can still reach the current threshold.
//
// Pruning uses a Lagrangian relaxation of the budget: for any λ = P/Q ≥ 0
// and any set S of k listings with cost(S) ≤ r,
//
//	Q·w(S) = Σ_{i∈S} (Q·w_i − P·c_i) + P·cost(S) ≤ top_k(Q·w − P·c) + P·r,
//
// so the k largest reduced values of the remaining groups plus P·r bound
// what any completion adds. The bound holds for every λ — λ only decides
// how tight it is — and it is evaluated in exact integers, so pruning never
// depends on floating-point rounding: λ is chosen in floating point, then
// fixed as the integer ratio P/Q before the run starts. Groups are visited
// by decreasing best reduced value, so the top k of the remaining groups
// is a prefix sum: the bound costs O(1) per node.
//
// Shipping: a seller's parcel costs the largest shipping among its listings
// in the cart.
//   - Single seller: the carts are split by their shipping level s, the
//     largest shipping in the cart: a run for level s takes only listings
//     shipped for at most s, pays s up front and requires one listing
//     shipped for exactly s. Every cart belongs to exactly one level and
//     within it shipping is a constant, so the bound is exact about it.
//   - Several sellers: the search tracks each seller's parcel exactly
//     (totals at the leaves are exact); the bound charges only what is
//     certain: a seller with nothing in the cart yet will charge at
//     least its smallest shipping s_min once and no cart holds more than m
//     of its listings, so each of its listings carries a share P·s_min/m of
//     reduced value (floored, which only loosens the bound). Listings of a
//     seller already in the cart carry no share: the bound adds the shares
//     back for them, at most min(k, m − chosen) of them per such seller.
//
// Feasibility: a subtree is pruned when even the k cheapest remaining
// groups exceed the budget left (a fixed λ would not see it).
//
// Ties: a subtree whose bound cannot exceed the threshold's objective can
// only tie it, and then only matters with a total no higher than the
// threshold's; it is pruned when the cheapest possible total (cost so far
// plus the k cheapest remaining groups) is higher.

// gopt is one listing of a group in a run.
type gopt struct {
	v    int64 // Q·w − P·cost − share of its seller
	cost int64
	ship int64 // 0 when the run has paid shipping up front
	sell int32 // run seller index
	ref  int32 // prepared.items index
	lvl  bool  // has the run's shipping level
}

// group is a release in a run.
type group struct {
	w       int64
	v       int64  // best v of its options
	minCost int64  // cheapest option
	opts    []gopt // by v descending, then cost, then listing id
}

// sink receives the carts a search finds.
type sink interface {
	// threshold is the worst cart that still matters: a new cart must have
	// an objective ≥ v, and if equal a total ≤ total. ok is false when any
	// cart matters.
	threshold() (v value, total int64, ok bool)
	// offer is called with a cart the threshold admits (path holds its
	// items); it reports whether the threshold may have changed.
	offer(v value, total int64, path []int32) bool
}

// runState is what every search run shares: the objective, λ, the
// quantity, the threshold from the sink, the path and the node budget.
type runState struct {
	kind    objKind
	budget  int64
	p, qs   int64 // λ = p/qs
	q       int64 // exact quantity of the run
	sumAbsW int64
	sink    sink
	path    []int32

	hasThr      bool
	thr         value
	thrTotal    int64
	needQ       int64 // qs × least score sum reaching the threshold objective
	needStrictQ int64 // qs × least score sum exceeding it
	nodes       int64
	limit       int64 // 0: none
	stopped     bool
}

func (s *runState) refresh() {
	s.thr, s.thrTotal, s.hasThr = s.sink.threshold()
	if !s.hasThr {
		s.needQ, s.needStrictQ = math.MinInt64, math.MinInt64
		return
	}
	lim := s.sumAbsW + 1
	need, strict := s.kind.need(s.thr, s.q, -lim, lim)
	s.needQ, s.needStrictQ = s.qs*need, s.qs*strict
}

// tick counts a node; false once the node budget is spent.
func (s *runState) tick() bool {
	if s.nodes++; s.limit > 0 && s.nodes > s.limit {
		s.stopped = true
	}
	return !s.stopped
}

// prunes decides from a scaled upper bound ub on Q·(score sum) and a lower
// bound on the total whether a subtree can be skipped.
func (s *runState) prunes(ub, minTotal int64) bool {
	if ub < s.needQ {
		return true
	}
	// Below needStrictQ only ties with the threshold's objective are left.
	return ub < s.needStrictQ && minTotal > s.thrTotal
}

func (s *runState) leaf(w, total int64) {
	v := value{q: s.q, w: w}
	if s.hasThr {
		c := s.kind.cmp(v, s.thr)
		if c < 0 || (c == 0 && total > s.thrTotal) {
			return
		}
	}
	if s.sink.offer(v, total, s.path) {
		s.refresh()
	}
}

// search is a run over groups.
type search struct {
	runState

	groups []group // by v descending
	pre    []int64 // pre[g] = Σ_{h<g} groups[h].v

	// Per run seller: the share of its listings, the most listings of it a
	// cart can hold, and the cart state.
	share   []int64
	mcap    []int64
	curMax  []int64
	chosen  []int64
	present []int32

	// Single seller, shipping level: the cart must hold one of the
	// listings marked lvl; levelLeft[g] counts them from group g on (nil:
	// no such constraint).
	levelLeft []int32
	levelHave int
	levelOpts []gopt

	ksmall []int64 // (len(groups)+1)×(q+1): cost of the k cheapest groups from g on
}

// reset prepares per-run state for q.
func (s *search) reset(q int) {
	s.q = int64(q)
	s.pre = append(s.pre[:0], 0)
	for g := range s.groups {
		s.pre = append(s.pre, s.pre[g]+s.groups[g].v)
	}
	s.buildKSmall()
	n := len(s.share)
	s.curMax = resize(s.curMax, n)
	s.chosen = resize(s.chosen, n)
	s.present = s.present[:0]
	s.path = s.path[:0]
}

func resize(a []int64, n int) []int64 {
	if cap(a) < n {
		return make([]int64, n)
	}
	a = a[:n]
	clear(a)
	return a
}

// run searches all carts of exactly s.q listings, with shipping paid up
// front (the single-seller level, or 0).
func (s *search) run(paid int64) {
	s.refresh()
	s.levelHave = 0
	s.dfs(0, s.q, 0, 0, paid)
}

// dfs extends the cart from group g on with k more listings; w0 and c0 are
// the score sum and item cost so far, paid the shipping so far.
func (s *search) dfs(g int, k, w0, c0, paid int64) {
	if k == 0 {
		s.leaf(w0, c0+paid)
		return
	}
	if !s.tick() {
		return
	}
	for ; g < len(s.groups); g++ {
		if s.prune(g, k, w0, c0, paid) {
			return
		}
		grp := &s.groups[g]
		for oi := range grp.opts {
			o := &grp.opts[oi]
			sl := o.sell
			was := s.chosen[sl] > 0
			newMax, delta := o.ship, o.ship
			if was {
				newMax = max(s.curMax[sl], o.ship)
				delta = newMax - s.curMax[sl]
			}
			if o.cost+delta > s.budget-c0-paid {
				continue
			}
			oldMax := s.curMax[sl]
			if !was {
				s.present = append(s.present, sl)
			}
			s.chosen[sl]++
			s.curMax[sl] = newMax
			s.path = append(s.path, o.ref)
			if o.lvl {
				s.levelHave++
			}
			s.dfs(g+1, k-1, w0+grp.w, c0+o.cost, paid+delta)
			if o.lvl {
				s.levelHave--
			}
			s.path = s.path[:len(s.path)-1]
			s.curMax[sl] = oldMax
			s.chosen[sl]--
			if !was {
				s.present = s.present[:len(s.present)-1]
			}
			if s.stopped {
				return
			}
		}
	}
}

// prune reports whether no completion with k listings from group g on can
// matter.
func (s *search) prune(g int, k, w0, c0, paid int64) bool {
	if int64(len(s.groups)-g) < k {
		return true
	}
	if s.levelLeft != nil && s.levelHave == 0 && s.levelLeft[g] == 0 {
		return true
	}
	r := s.budget - c0 - paid
	low := s.ksmall[int64(g)*(s.q+1)+k]
	if low > r {
		return true // not even the k cheapest fit
	}
	top := s.pre[int64(g)+k] - s.pre[g]
	for _, sl := range s.present {
		if n := min(k, s.mcap[sl]-s.chosen[sl]); n > 0 {
			top += s.share[sl] * n
		}
	}
	return s.prunes(s.qs*w0+s.p*r+top, c0+paid+low)
}

// buildKSmall tabulates, for every suffix of the groups, the sums of its k
// cheapest minimum costs, k ≤ q (one backward pass keeping the q smallest
// in order).
func (s *search) buildKSmall() {
	q := int(s.q)
	n := len(s.groups)
	size := (n + 1) * (q + 1)
	if cap(s.ksmall) < size {
		s.ksmall = make([]int64, size)
	}
	s.ksmall = s.ksmall[:size]
	const inf = math.MaxInt64 / 4
	small := make([]int64, 0, q)
	for g := n; g >= 0; g-- {
		if g < n {
			c := s.groups[g].minCost
			pos, _ := slices.BinarySearch(small, c)
			if pos < q {
				if len(small) < q {
					small = append(small, 0)
				}
				copy(small[pos+1:], small[pos:len(small)-1])
				small[pos] = c
			}
		}
		row := s.ksmall[g*(q+1) : (g+1)*(q+1)]
		row[0] = 0
		for k := 1; k <= q; k++ {
			if k <= len(small) {
				row[k] = row[k-1] + small[k-1]
			} else {
				row[k] = inf
			}
		}
	}
}

// lagrangeLambda picks λ ≥ 0 approximately minimising
// g(λ) = λ·b + Σ top-q (w_i − λ·c_i), the Lagrangian dual of "best q items
// within budget b". Any λ gives a valid bound; this one makes it tight.
// g is convex with slope b − C(λ), C(λ) the cost of the top q at λ, which
// falls as λ grows: bisect for the first λ where C(λ) ≤ b.
func lagrangeLambda(w, c []float64, q int, b float64, val, cst []float64) float64 {
	n := len(w)
	if q <= 0 || q > n {
		return 0
	}
	costAt := func(lambda float64) float64 {
		for i := range n {
			val[i] = w[i] - lambda*c[i]
			cst[i] = c[i]
		}
		return topCost(val[:n], cst[:n], q)
	}
	if costAt(0) <= b {
		return 0
	}
	maxW, sumC := 0.0, 0.0
	for i := range n {
		maxW = max(maxW, math.Abs(w[i]))
		sumC += c[i]
	}
	hi := maxW / max(sumC/float64(n), 1)
	if hi <= 0 {
		hi = 1
	}
	for it := 0; it < 60 && costAt(hi) > b; it++ {
		hi *= 4
	}
	lo := 0.0
	for it := 0; it < 20; it++ {
		mid := (lo + hi) / 2
		if costAt(mid) > b {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// topCost returns the total cost of the q largest values (quickselect,
// reorders both slices in step).
func topCost(val, cst []float64, q int) float64 {
	lo, hi := 0, len(val)-1
	k := q - 1 // position of the q-th largest in descending order
	for lo < hi {
		mid := lo + (hi-lo)/2
		if val[mid] > val[lo] {
			val[mid], val[lo], cst[mid], cst[lo] = val[lo], val[mid], cst[lo], cst[mid]
		}
		if val[hi] > val[lo] {
			val[hi], val[lo], cst[hi], cst[lo] = val[lo], val[hi], cst[lo], cst[hi]
		}
		if val[mid] < val[hi] {
			val[mid], val[hi], cst[mid], cst[hi] = val[hi], val[mid], cst[hi], cst[mid]
		}
		pivot := val[hi]
		i := lo
		for x := lo; x < hi; x++ {
			if val[x] > pivot {
				val[x], val[i], cst[x], cst[i] = val[i], val[x], cst[i], cst[x]
				i++
			}
		}
		val[i], val[hi], cst[i], cst[hi] = val[hi], val[i], cst[hi], cst[i]
		switch {
		case i == k:
			lo, hi = k, k
		case i < k:
			lo = i + 1
		default:
			hi = i - 1
		}
	}
	total := 0.0
	for i := 0; i < q; i++ {
		total += cst[i]
	}
	return total
}

// chooseScale fixes λ as an integer ratio P/Q, Q a power of two as large as
// the overflow margins allow: Q·Σ|w| ≤ 2^60 and P·budget·(n+2) ≤ 2^59 (n
// the listings of the run), so every sum the bound forms stays below 2^63.
func chooseScale(lambda float64, sumAbsW, budget int64, n int) (p, q int64) {
	const lim = float64(1 << 59)
	if !(lambda > 0) || math.IsInf(lambda, 0) { // the bound needs λ ≥ 0; NaN too
		lambda = 0
	}
	for sh := 40; sh >= 0; sh-- {
		q := int64(1) << sh
		if float64(q)*float64(max(sumAbsW, 1)) > 2*lim {
			continue
		}
		pf := math.Round(lambda * float64(q))
		if pf*float64(max(budget, 1))*float64(n+2) > lim {
			continue
		}
		return int64(pf), q
	}
	return 0, 1
}

// sortGroups orders groups (and each group's options) by reduced value,
// best first; the rest of the order only makes runs reproducible.
func sortGroups(groups []group, items []item) {
	for g := range groups {
		grp := &groups[g]
		slices.SortFunc(grp.opts, func(a, b gopt) int {
			if c := cmp.Compare(b.v, a.v); c != 0 {
				return c
			}
			if c := cmp.Compare(a.cost, b.cost); c != 0 {
				return c
			}
			return cmp.Compare(items[a.ref].id, items[b.ref].id)
		})
		grp.v = grp.opts[0].v
		grp.minCost = grp.opts[0].cost
		for _, o := range grp.opts[1:] {
			grp.minCost = min(grp.minCost, o.cost)
		}
	}
	slices.SortFunc(groups, func(a, b group) int {
		if c := cmp.Compare(b.v, a.v); c != 0 {
			return c
		}
		if c := cmp.Compare(a.minCost, b.minCost); c != 0 {
			return c
		}
		return cmp.Compare(items[a.opts[0].ref].id, items[b.opts[0].ref].id)
	})
}

package cartopt

import (
	"cmp"
	"math"
	"slices"
)

// Multi-seller carts with shipping. Here the group search's bound is too
// weak: spreading a cart over many sellers looks cheap when each listing
// carries only a share of its seller's shipping, while any real cart pays
// every seller's parcel in full. This search walks the sellers one block at
// a time instead and bounds the later blocks with an allocation table
// computed once per run:
//
//	D_b(k) = max over k_b + k_{b+1} + … = k of Σ L_σ(k_σ),
//	L_σ(0) = 0,  L_σ(i) = (sum of σ's i best reduced values) − P·s_min(σ),
//
// the best Lagrangian value of k listings from sellers b, b+1, …, where
// every seller used pays its smallest shipping in full. The cost table
// E_b(k) (k cheapest listings of the used sellers plus their smallest
// shipping, best allocation) is the least any k listings from the later
// blocks can add. Both ignore the one-listing-per-release rule across
// sellers (a relaxation: the search enforces it) and shipping above a
// seller's smallest (the search tracks the parcels exactly).

const (
	negInf = math.MinInt64 / 4
	posInf = math.MaxInt64 / 4
)

// sitem is a listing in a block run.
type sitem struct {
	cost int64
	ship int64
	w    int64
	rel  int32
	ref  int32
}

// bblock is one seller's listings in a block run.
type bblock struct {
	items   []sitem // by reduced value at the primary λ, best first
	cheap   []int64 // (len(items)+1)×(q+1): cost of the i cheapest items from position j on
	minShip int64
}

// lam is one multiplier's tables. A run bounds every node with a few
// multipliers and keeps the smallest bound: the λ that is best at the root
// is too small deep in the tree, where little budget is left.
type lam struct {
	p    int64
	top  [][]int64 // by block: (len(items)+1)×(q+1), the i best reduced values from position j on
	futV []int64   // (len(blocks)+1)×(q+1): D_b(k), negInf when impossible
}

// bsearch is a multi-seller run over seller blocks.
type bsearch struct {
	runState
	blocks []bblock
	used   []bool  // by release
	futC   []int64 // (len(blocks)+1)×(q+1): E_b(k), posInf when impossible
	lams   []lam   // lams[0] is the primary λ = runState.p/qs
}

// order builds the blocks for quantity q at the primary λ (s.p/s.qs): items
// by reduced value, the cheapest-items tables and E.
func (s *bsearch) order(pr *prepared, sellers []int, minShip []int64) {
	q := int(s.q)
	w := q + 1
	for b, si := range sellers {
		blk := &s.blocks[b]
		blk.minShip = minShip[b]
		blk.items = blk.items[:0]
		for _, r := range pr.sellers[si].items {
			it := &pr.items[r]
			blk.items = append(blk.items, sitem{cost: it.cost, ship: it.ship, w: it.w, rel: it.rel, ref: r})
		}
		slices.SortFunc(blk.items, func(a, b sitem) int {
			if c := cmp.Compare(s.qs*b.w-s.p*b.cost, s.qs*a.w-s.p*a.cost); c != 0 {
				return c
			}
			if c := cmp.Compare(a.cost, b.cost); c != 0 {
				return c
			}
			return cmp.Compare(pr.items[a.ref].id, pr.items[b.ref].id)
		})
		n := len(blk.items)
		blk.cheap = slices.Grow(blk.cheap[:0], (n+1)*w)[:(n+1)*w]
		small := make([]int64, 0, q)
		for j := n; j >= 0; j-- {
			if j < n {
				small = insertSorted(small, blk.items[j].cost, q, false)
			}
			fillPrefix(blk.cheap[j*w:(j+1)*w], small, posInf)
		}
	}
	S := len(sellers)
	s.futC = slices.Grow(s.futC[:0], (S+1)*w)[:(S+1)*w]
	lastC := s.futC[S*w : (S+1)*w]
	for k := range lastC {
		lastC[k] = posInf
	}
	lastC[0] = 0
	for b := S - 1; b >= 0; b-- {
		blk := &s.blocks[b]
		nextC, curC := s.futC[(b+1)*w:(b+2)*w], s.futC[b*w:(b+1)*w]
		copy(curC, nextC)
		for i := 1; i <= min(q, len(blk.items)); i++ {
			ci := blk.cheap[i] + blk.minShip // row j = 0
			for k := i; k <= q; k++ {
				if nextC[k-i] < posInf {
					curC[k] = min(curC[k], ci+nextC[k-i])
				}
			}
		}
	}
	s.lams = s.lams[:0]
}

// addLam computes the tables of multiplier p/qs and returns its root bound
// P·budget + D_0(q) (posInf when no q listings can be chosen).
func (s *bsearch) addLam(p int64) int64 {
	q := int(s.q)
	w := q + 1
	S := len(s.blocks)
	if len(s.lams) < cap(s.lams) {
		s.lams = s.lams[:len(s.lams)+1]
	} else {
		s.lams = append(s.lams, lam{})
	}
	l := &s.lams[len(s.lams)-1]
	l.p = p
	if len(l.top) < S {
		l.top = make([][]int64, S)
	}
	best := make([]int64, 0, q)
	for b := range s.blocks {
		blk := &s.blocks[b]
		n := len(blk.items)
		l.top[b] = slices.Grow(l.top[b][:0], (n+1)*w)[:(n+1)*w]
		best = best[:0]
		for j := n; j >= 0; j-- {
			if j < n {
				it := &blk.items[j]
				best = insertSorted(best, s.qs*it.w-p*it.cost, q, true)
			}
			fillPrefix(l.top[b][j*w:(j+1)*w], best, negInf)
		}
	}
	l.futV = slices.Grow(l.futV[:0], (S+1)*w)[:(S+1)*w]
	last := l.futV[S*w : (S+1)*w]
	for k := range last {
		last[k] = negInf
	}
	last[0] = 0
	for b := S - 1; b >= 0; b-- {
		blk := &s.blocks[b]
		next, cur := l.futV[(b+1)*w:(b+2)*w], l.futV[b*w:(b+1)*w]
		copy(cur, next)
		shipV := p * blk.minShip
		top := l.top[b][:w] // row j = 0
		for i := 1; i <= min(q, len(blk.items)); i++ {
			li := top[i] - shipV
			for k := i; k <= q; k++ {
				if next[k-i] > negInf {
					cur[k] = max(cur[k], li+next[k-i])
				}
			}
		}
	}
	if l.futV[q] <= negInf {
		return posInf
	}
	return l.futV[q] + p*s.budget
}

// fillPrefix writes the prefix sums of vals into row (row[0] = 0), and fill
// past them.
func fillPrefix(row, vals []int64, fill int64) {
	row[0] = 0
	for k := 1; k < len(row); k++ {
		if k <= len(vals) {
			row[k] = row[k-1] + vals[k-1]
		} else {
			row[k] = fill
		}
	}
}

// insertSorted inserts c into sorted (ascending, or descending when desc),
// keeping the first q.
func insertSorted(sorted []int64, c int64, q int, desc bool) []int64 {
	var pos int
	if desc {
		pos, _ = slices.BinarySearchFunc(sorted, c, func(e, t int64) int { return cmp.Compare(t, e) })
	} else {
		pos, _ = slices.BinarySearch(sorted, c)
	}
	if pos >= q {
		return sorted
	}
	if len(sorted) < q {
		sorted = append(sorted, 0)
	}
	copy(sorted[pos+1:], sorted[pos:len(sorted)-1])
	sorted[pos] = c
	return sorted
}

// run searches all carts of exactly s.q listings.
func (s *bsearch) run() {
	s.refresh()
	s.path = s.path[:0]
	s.dfs(0, 0, s.q, 0, 0, 0, 0, false)
}

// dfs extends the cart from block b, position j on, with k more listings;
// w0 and c0 are the score sum and item cost so far, paid the shipping of
// the finished blocks, curMax the current block's parcel when in is set.
func (s *bsearch) dfs(b, j int, k, w0, c0, paid, curMax int64, in bool) {
	if k == 0 {
		if in {
			paid += curMax
		}
		s.leaf(w0, c0+paid)
		return
	}
	if !s.tick() {
		return
	}
	for b < len(s.blocks) {
		blk := &s.blocks[b]
		for ; j < len(blk.items); j++ {
			if s.prune(b, j, k, w0, c0, paid, curMax, in) {
				return
			}
			it := &blk.items[j]
			if s.used[it.rel] {
				continue
			}
			newMax := it.ship
			if in {
				newMax = max(curMax, it.ship)
			}
			if it.cost+newMax > s.budget-c0-paid {
				continue
			}
			s.used[it.rel] = true
			s.path = append(s.path, it.ref)
			s.dfs(b, j+1, k-1, w0+it.w, c0+it.cost, paid, newMax, true)
			s.path = s.path[:len(s.path)-1]
			s.used[it.rel] = false
			if s.stopped {
				return
			}
		}
		if in {
			paid += curMax
		}
		b, j, in, curMax = b+1, 0, false, 0
	}
}

// prune reports whether no completion with k listings from block b,
// position j on, can matter: the smallest of the multipliers' bounds, and
// the least cost.
func (s *bsearch) prune(b, j int, k, w0, c0, paid, curMax int64, in bool) bool {
	blk := &s.blocks[b]
	w := s.q + 1
	r := s.budget - c0 - paid
	if in {
		r -= curMax
	}
	nextC := s.futC[int64(b+1)*w : int64(b+2)*w]
	cheap := blk.cheap[int64(j)*w : int64(j+1)*w]
	imax := min(k, int64(len(blk.items)-j))
	bestC := int64(posInf)
	for i := int64(0); i <= imax; i++ {
		if fc := nextC[k-i]; fc < posInf {
			ac := cheap[i]
			if i > 0 && !in {
				ac += blk.minShip
			}
			bestC = min(bestC, ac+fc)
		}
	}
	if bestC > r {
		return true // nothing fits (or nothing is left)
	}
	ub := int64(math.MaxInt64)
	for t := range s.lams {
		l := &s.lams[t]
		next := l.futV[int64(b+1)*w : int64(b+2)*w]
		top := l.top[b][int64(j)*w : int64(j+1)*w]
		shipV := l.p * blk.minShip
		if in {
			shipV = 0
		}
		bestV := int64(negInf)
		for i := int64(0); i <= imax; i++ {
			if next[k-i] <= negInf {
				continue
			}
			a := top[i]
			if i > 0 {
				a -= shipV
			}
			bestV = max(bestV, a+next[k-i])
		}
		ub = min(ub, s.qs*w0+l.p*r+bestV)
		if ub < s.needQ {
			return true
		}
	}
	return s.prunes(ub, s.budget-r+bestC)
}

// tuneBlockLambda fixes λ for a block run of quantity q and builds the run.
// The λ of the share relaxation is a poor fit for the allocation bound (it
// prices spreading over sellers too low), so λ is re-tuned to minimise the
// run's root bound P·budget + D_0(q) — convex in λ — by a golden-section
// search over multiples of it.
func (sv *solver) tuneBlockLambda(s *bsearch, ms *multiSeller, q, nItems int) {
	pr := sv.pr
	p0, q0 := sv.multiLambda(ms, q, nItems)
	base := float64(p0) / float64(q0)
	if base <= 0 {
		// The relaxation's λ is 0 when the q best fit loosely; scale the
		// search by the average score per cent instead.
		var sw, sc float64
		for rel, seen := range ms.relSeen {
			if seen && ms.relW[rel] > 0 {
				sw += float64(ms.relW[rel])
			}
		}
		for _, it := range pr.items {
			if it.afford {
				sc += float64(it.cost)
			}
		}
		base = max(sw, 1) / max(sc, 1)
	}
	const fmax = 16.0
	_, s.qs = chooseScale(base*fmax*4, pr.sumAbsW, pr.budget, nItems)
	pOf := func(f float64) int64 { return int64(math.Round(base * f * float64(s.qs))) }
	// The order of the items does not change the bound: tune on any order.
	s.p = pOf(1)
	s.order(pr, ms.sellers, ms.minShip)
	eval := func(f float64) int64 {
		s.lams = s.lams[:0]
		return s.addLam(pOf(f))
	}
	const phi = 0.6180339887498949
	lo, hi := 0.0, fmax
	x1, x2 := hi-phi*(hi-lo), lo+phi*(hi-lo)
	f1, f2 := eval(x1), eval(x2)
	for it := 0; it < 14; it++ {
		if f1 <= f2 {
			hi, x2, f2 = x2, x1, f1
			x1 = hi - phi*(hi-lo)
			f1 = eval(x1)
		} else {
			lo, x1, f1 = x1, x2, f2
			x2 = lo + phi*(hi-lo)
			f2 = eval(x2)
		}
	}
	fbest := x1
	if f2 < f1 {
		fbest = x2
	}
	s.p = pOf(fbest)
	s.order(pr, ms.sellers, ms.minShip)
	for _, m := range []float64{1, 1.6, 2.5, 4} {
		if f := fbest * m; f <= fmax*4 {
			s.addLam(pOf(f))
		}
	}
}

// solveMultiShip is solveMulti for problems with shipping: the same
// quantities, a block run each.
func (sv *solver) solveMultiShip(ms *multiSeller, cb *cheap, nItems int) []*found {
	pr := sv.pr
	top := &topSink{sv: sv, n: sv.topN}
	sv.lastMS = ms
	s := &bsearch{
		runState: runState{kind: sv.kind, budget: pr.budget, sink: top, sumAbsW: pr.sumAbsW},
		blocks:   make([]bblock, len(ms.sellers)),
		used:     make([]bool, pr.releases),
	}
	for _, q := range sv.qOrder(cb) {
		if thr, _, ok := top.threshold(); ok && sv.kind.cmp(cb.at(q), thr) < 0 {
			break
		}
		s.q = int64(q)
		sv.tuneBlockLambda(s, ms, q, nItems)
		if s.futC[q] > pr.budget {
			continue // no q listings fit with their parcels
		}
		s.limit = sv.limitLeft()
		s.run()
		sv.nodes += s.nodes
		s.nodes = 0
		if s.stopped {
			sv.stopped = true
			return nil
		}
	}
	return top.top
}

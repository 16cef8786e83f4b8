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

// The exact search, for one quantity q at a time: a depth-first branch and
// bound over items grouped in blocks (one block per seller), which finds
// every cart of exactly q items whose objective can reach the current
// threshold. Pruning uses a Lagrangian relaxation of the budget: for any
// λ = P/Q ≥ 0 and any set S of k items with cost(S) ≤ r,
//
//	Q·w(S) = Σ_{i∈S} (Q·w_i − P·c_i) + P·cost(S) ≤ top_k(Q·w − P·c) + P·r,
//
// so the sum of the k largest reduced values plus P·r bounds what any
// completion can add. The bound holds for every λ — λ only decides how
// tight it is — and it is computed in exact integers, so pruning never
// depends on floating-point rounding: λ is chosen in floating point, then
// fixed as the integer ratio P/Q before the search starts.
//
// Shipping: a seller's parcel costs the largest shipping among its items in
// the cart. The search tracks it exactly (totals at the leaves are exact);
// the bound charges what is certain:
//   - single seller: from the first item on, at least the seller's smallest
//     shipping is due, so it is reserved from the budget up front;
//   - several sellers: a seller with no item in the cart yet will charge at
//     least its smallest shipping s_min once, and no cart holds more than m
//     of its items, so each of its items carries a share s_min/m (floored
//     in the scaled integers, which only loosens the bound). Once a seller
//     is in the cart, its items carry no share: the parcel is paid.
//
// At most one listing per release (several sellers): the future part of
// the bound takes, per release, only its best reduced value.

// sitem is an item in one search run.
type sitem struct {
	v    int64 // Q·w − P·cost
	cost int64
	ship int64
	w    int64
	id   int64
	rel  int32
	ref  int32 // index into prepared.items
}

// sblock is one seller's items in a run.
type sblock struct {
	items   []sitem // by v descending
	pre     []int64 // pre[j] = Σ_{i<j} items[i].v
	share   int64   // P × s_min/m, charged per item while the seller is not in the cart
	minShip int64   // single seller: reserved while the cart is empty
	fut     []int64 // prefix sums of the best per-release values of the later blocks
}

// sink receives the carts a search finds.
type sink interface {
	// threshold is the value a cart's objective must reach (≥) to matter;
	// ok is false when any cart matters.
	threshold() (value, bool)
	// offer is called with a cart the threshold admits (path holds its
	// items); it reports whether the threshold may have changed.
	offer(v value, total int64, path []int32) bool
}

type search struct {
	kind    objKind
	budget  int64
	p, qs   int64 // λ = p/qs
	q       int64 // exact quantity of the run
	single  bool
	blocks  []sblock
	used    []bool // by release; nil for a single seller
	path    []int32
	sink    sink
	sumAbsW int64

	hasThr  bool
	thr     value
	needQ   int64 // qs × (least score sum that reaches the threshold at quantity q)
	nodes   int64
	limit   int64 // 0: none
	stopped bool
}

func (s *search) refresh() {
	s.thr, s.hasThr = s.sink.threshold()
	if !s.hasThr {
		s.needQ = math.MinInt64
		return
	}
	lim := s.sumAbsW + 1
	s.needQ = s.qs * s.kind.need(s.thr, s.q, -lim, lim)
}

// run searches all carts of exactly s.q items.
func (s *search) run() {
	s.refresh()
	s.path = s.path[:0]
	s.dfs(0, 0, s.q, 0, 0, 0, 0, false)
}

// dfs extends the cart: block b from position j on, k items still to add;
// w0 and c0 are the score sum and item cost so far, paid the shipping of
// finished blocks, curMax the largest shipping in block b when in is set.
func (s *search) dfs(b, j int, k, w0, c0, paid, curMax int64, in bool) {
	if k == 0 {
		total := c0 + paid
		if in {
			total += curMax
		}
		s.leaf(w0, total)
		return
	}
	if s.limit > 0 {
		if s.nodes++; s.nodes > s.limit {
			s.stopped = true
		}
	}
	if s.stopped {
		return
	}
	for ; b < len(s.blocks); b, j, in, paid, curMax = b+1, 0, false, paid+curMax, 0 {
		blk := &s.blocks[b]
		for ; j < len(blk.items); j++ {
			if !s.bound(blk, j, k, w0, c0, paid, curMax, in) {
				return
			}
			it := &blk.items[j]
			if s.used != nil && s.used[it.rel] {
				continue
			}
			newMax := it.ship
			if in && curMax > newMax {
				newMax = curMax
			}
			if it.cost+newMax > s.budget-c0-paid {
				continue
			}
			if s.used != nil {
				s.used[it.rel] = true
			}
			s.path = append(s.path, it.ref)
			s.dfs(b, j+1, k-1, w0+it.w, c0+it.cost, paid, newMax, true)
			s.path = s.path[:len(s.path)-1]
			if s.used != nil {
				s.used[it.rel] = false
			}
			if s.stopped {
				return
			}
		}
		if !in {
			curMax = 0
		}
	}
}

// bound reports whether a completion of k items from block position j on
// can reach the threshold.
func (s *search) bound(blk *sblock, j int, k, w0, c0, paid, curMax int64, in bool) bool {
	r := s.budget - c0 - paid
	share := blk.share
	if in {
		r -= curMax
		share = 0
	} else if s.single {
		r -= blk.minShip
	}
	if r < 0 {
		return false
	}
	nA := int64(len(blk.items) - j)
	nF := int64(len(blk.fut) - 1)
	if nA+nF < k {
		return false
	}
	// The k best values of the union of two descending lists: i from this
	// block (values v − share), k−i from the later blocks.
	lo, hi := max(0, k-nF), min(k, nA)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if blk.items[int64(j)+mid-1].v-share >= blk.fut[k-mid+1]-blk.fut[k-mid] {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	i := lo
	top := blk.pre[int64(j)+i] - blk.pre[j] - i*share + blk.fut[k-i]
	return s.qs*w0+s.p*r+top >= s.needQ
}

func (s *search) leaf(w, total int64) {
	v := value{q: s.q, w: w}
	if s.hasThr && s.kind.cmp(v, s.thr) < 0 {
		return
	}
	if s.sink.offer(v, total, s.path) {
		s.refresh()
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
	for it := 0; it < 24; it++ {
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
		// Median of three pivot, descending partition.
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
// the overflow margins allow: Q·Σ|w| ≤ 2^60 and P·budget·(n+2) ≤ 2^59, so
// every sum the bound forms stays below 2^63.
func chooseScale(lambda float64, sumAbsW, budget int64, n int) (p, q int64) {
	const lim = float64(1 << 59)
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

// sortItems orders a block by reduced value, best first; the rest of the
// order only makes runs reproducible.
func sortItems(items []sitem) {
	slices.SortFunc(items, func(a, b sitem) int {
		if c := cmp.Compare(b.v, a.v); c != 0 {
			return c
		}
		if c := cmp.Compare(a.cost, b.cost); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
}

func prefix(items []sitem, pre []int64) []int64 {
	pre = append(pre[:0], 0)
	for i := range items {
		pre = append(pre, pre[i]+items[i].v)
	}
	return pre
}

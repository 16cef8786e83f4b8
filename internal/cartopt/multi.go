package cartopt

import (
	"cmp"
	"math"
	"slices"
)

// multiSeller is the setup of a multi-seller solve that does not depend on
// the quantity.
type multiSeller struct {
	sellers  []int   // seller indices with affordable items, search order
	minShip  []int64 // by position in sellers
	maxCount []int   // most items of the seller any cart can hold
	relW     []int64 // score by release
	relSeen  []bool
}

// solveMulti returns the top N carts over all sellers (FORMAT.md rule 5).
func (sv *solver) solveMulti() []*found {
	pr := sv.pr
	ms := &multiSeller{relW: make([]int64, pr.releases), relSeen: make([]bool, pr.releases)}
	// Per release its cheapest listing: with equal scores, nothing beats it
	// in the relaxations.
	relCost := make([]int64, pr.releases)
	minShipAll := int64(math.MaxInt64)
	type sellerKey struct {
		pos int
		ub  value
		id  int64
	}
	var order []sellerKey
	for si := range pr.sellers {
		refs := pr.sellers[si].items
		if len(refs) == 0 {
			continue
		}
		sv.feasibleSellers++
		sb := sv.sellerBound(si)
		costs := make([]int64, 0, len(refs))
		for _, r := range refs {
			it := &pr.items[r]
			costs = append(costs, it.cost)
			if !ms.relSeen[it.rel] || it.cost < relCost[it.rel] {
				relCost[it.rel] = it.cost
			}
			ms.relSeen[it.rel] = true
			ms.relW[it.rel] = it.w
			minShipAll = min(minShipAll, it.ship)
		}
		slices.Sort(costs)
		m, spent := 0, sb.minShip
		for _, c := range costs {
			if c > pr.budget-spent {
				break
			}
			spent += c
			m++
		}
		// A seller whose single cheapest item fits is always worth a block;
		// its single-seller bound orders the blocks, most promising first.
		ub, _ := sb.cb.best(sv.kind, 1)
		order = append(order, sellerKey{pos: si, ub: ub, id: pr.sellers[si].id})
		ms.minShip = append(ms.minShip, sb.minShip)
		ms.maxCount = append(ms.maxCount, max(m, 1))
		ms.sellers = append(ms.sellers, si)
	}
	if len(ms.sellers) == 0 {
		return nil
	}
	// Search order: by bound, best first.
	perm := make([]int, len(order))
	for i := range perm {
		perm[i] = i
	}
	slices.SortStableFunc(perm, func(a, b int) int {
		if c := sv.kind.cmp(order[b].ub, order[a].ub); c != 0 {
			return c
		}
		return cmp.Compare(order[a].id, order[b].id)
	})
	sellers := make([]int, len(perm))
	minShip := make([]int64, len(perm))
	maxCount := make([]int, len(perm))
	for i, p := range perm {
		sellers[i], minShip[i], maxCount[i] = ms.sellers[p], ms.minShip[p], ms.maxCount[p]
	}
	ms.sellers, ms.minShip, ms.maxCount = sellers, minShip, maxCount

	// Cheap bounds over releases (cheapest listing each).
	var rw, rc []int64
	for rel := range ms.relSeen {
		if ms.relSeen[rel] {
			rw = append(rw, ms.relW[rel])
			rc = append(rc, relCost[rel])
		}
	}
	cb := newCheap(rw, rc, pr.budget-minShipAll)

	top := &topSink{sv: sv, n: sv.topN}
	nItems := 0
	for _, si := range ms.sellers {
		nItems += len(pr.sellers[si].items)
	}
	s := &search{
		kind: sv.kind, budget: pr.budget, sink: top, sumAbsW: pr.sumAbsW,
		blocks: make([]sblock, len(ms.sellers)), used: make([]bool, pr.releases),
	}
	for _, q := range sv.qOrder(&cb) {
		if thr, ok := top.threshold(); ok && sv.kind.cmp(cb.at(q), thr) < 0 {
			break
		}
		sv.buildMulti(s, ms, q, nItems)
		s.q = int64(q)
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

// buildMulti prepares the blocks of a multi-seller run for quantity q.
func (sv *solver) buildMulti(s *search, ms *multiSeller, q, nItems int) {
	pr := sv.pr
	// λ from the relaxation over releases, each at its cheapest listing
	// including the seller's shipping share.
	nRel := pr.releases
	relCost := make([]float64, nRel)
	for i := range relCost {
		relCost[i] = math.Inf(1)
	}
	shareF := make([]float64, len(ms.sellers))
	for b, si := range ms.sellers {
		m := min(ms.maxCount[b], q)
		shareF[b] = float64(ms.minShip[b]) / float64(m)
		for _, r := range pr.sellers[si].items {
			it := &pr.items[r]
			relCost[it.rel] = min(relCost[it.rel], float64(it.cost)+shareF[b])
		}
	}
	sv.ensureScratch(nRel)
	n := 0
	for rel := range nRel {
		if ms.relSeen[rel] {
			sv.wf[n], sv.cf[n] = float64(ms.relW[rel]), relCost[rel]
			n++
		}
	}
	lambda := lagrangeLambda(sv.wf[:n], sv.cf[:n], q, float64(pr.budget), sv.val, sv.cst)
	s.p, s.qs = chooseScale(lambda, pr.sumAbsW, pr.budget, nItems)

	for b, si := range ms.sellers {
		blk := &s.blocks[b]
		refs := pr.sellers[si].items
		blk.items = blk.items[:0]
		for _, r := range refs {
			it := &pr.items[r]
			blk.items = append(blk.items, sitem{v: s.qs*it.w - s.p*it.cost, cost: it.cost, ship: it.ship, w: it.w, id: it.id, rel: it.rel, ref: r})
		}
		sortItems(blk.items)
		blk.pre = prefix(blk.items, blk.pre)
		m := int64(min(ms.maxCount[b], q))
		blk.share = s.p * ms.minShip[b] / m // floor: a smaller share only loosens the bound
	}

	// The later blocks' best value per release, for each block, top q.
	best := make([]int64, nRel)
	seen := make([]bool, nRel)
	var rels []int32
	vals := make([]int64, 0, nRel)
	for b := len(ms.sellers) - 1; b >= 0; b-- {
		blk := &s.blocks[b]
		vals = vals[:0]
		for _, rel := range rels {
			vals = append(vals, best[rel])
		}
		blk.fut = topPrefix(vals, q, blk.fut)
		for i := range blk.items {
			it := &blk.items[i]
			v := it.v - blk.share
			if !seen[it.rel] {
				seen[it.rel] = true
				best[it.rel] = v
				rels = append(rels, it.rel)
			} else if v > best[it.rel] {
				best[it.rel] = v
			}
		}
	}
}

// topPrefix returns the prefix sums of the q largest of vals (reordered).
func topPrefix(vals []int64, q int, out []int64) []int64 {
	if len(vals) > q {
		selectTop(vals, q)
		vals = vals[:q]
	}
	slices.SortFunc(vals, func(a, b int64) int { return cmp.Compare(b, a) })
	out = append(out[:0], 0)
	for i, v := range vals {
		out = append(out, out[i]+v)
	}
	return out
}

// selectTop moves the q largest values to the front (quickselect).
func selectTop(v []int64, q int) {
	lo, hi := 0, len(v)-1
	k := q - 1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if v[mid] > v[lo] {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if v[hi] > v[lo] {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if v[mid] < v[hi] {
			v[mid], v[hi] = v[hi], v[mid]
		}
		pivot := v[hi]
		i := lo
		for x := lo; x < hi; x++ {
			if v[x] > pivot {
				v[x], v[i] = v[i], v[x]
				i++
			}
		}
		v[i], v[hi] = v[hi], v[i]
		switch {
		case i == k:
			return
		case i < k:
			lo = i + 1
		default:
			hi = i - 1
		}
	}
}

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
	minShipAll, minShipMax := int64(math.MaxInt64), int64(0)
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
			minShipMax = max(minShipMax, it.ship)
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
	nItems := 0
	for _, si := range ms.sellers {
		nItems += len(pr.sellers[si].items)
	}
	if minShipMax > 0 || sv.forceBlocks {
		return sv.solveMultiShip(ms, &cb, nItems)
	}

	top := &topSink{sv: sv, n: sv.topN}
	s := &search{
		runState: runState{kind: sv.kind, budget: pr.budget, sink: top, sumAbsW: pr.sumAbsW},
		share:    make([]int64, len(ms.sellers)), mcap: make([]int64, len(ms.sellers)),
	}
	for _, q := range sv.qOrder(&cb) {
		if thr, _, ok := top.threshold(); ok && sv.kind.cmp(cb.at(q), thr) < 0 {
			break
		}
		sv.buildMulti(s, ms, q, nItems)
		s.reset(q)
		s.limit = sv.limitLeft()
		s.run(0)
		if sv.debug != nil {
			sv.debug(q, 0, 0, s)
		}
		sv.nodes += s.nodes
		s.nodes = 0
		if s.stopped {
			sv.stopped = true
			return nil
		}
	}
	return top.top
}

// multiLambda picks λ for a multi-seller run of quantity q from the
// relaxation over releases, each at its cheapest listing plus its seller's
// shipping share (see search).
func (sv *solver) multiLambda(ms *multiSeller, q, nItems int) (p, qs int64) {
	pr := sv.pr
	nRel := pr.releases
	relCost := make([]float64, nRel)
	for i := range relCost {
		relCost[i] = math.Inf(1)
	}
	for b, si := range ms.sellers {
		share := float64(ms.minShip[b]) / float64(min(ms.maxCount[b], q))
		for _, r := range pr.sellers[si].items {
			it := &pr.items[r]
			relCost[it.rel] = min(relCost[it.rel], float64(it.cost)+share)
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
	return chooseScale(lambda, pr.sumAbsW, pr.budget, nItems)
}

// buildMulti prepares the groups of a multi-seller run for quantity q.
func (sv *solver) buildMulti(s *search, ms *multiSeller, q, nItems int) {
	pr := sv.pr
	nRel := pr.releases
	s.p, s.qs = sv.multiLambda(ms, q, nItems)

	// Groups: one per release, its listings across sellers as options.
	s.groups = s.groups[:0]
	opts := make([]gopt, 0, nItems)
	for b, si := range ms.sellers {
		m := int64(min(ms.maxCount[b], q))
		s.mcap[b] = m
		s.share[b] = s.p * ms.minShip[b] / m // floored: a smaller share only loosens the bound
		for _, r := range pr.sellers[si].items {
			it := &pr.items[r]
			opts = append(opts, gopt{v: s.qs*it.w - s.p*it.cost - s.share[b], cost: it.cost, ship: it.ship, sell: int32(b), ref: r})
		}
	}
	// Bucket the options by release without a map: count, then place.
	counts := make([]int32, nRel+1)
	for _, o := range opts {
		counts[pr.items[o.ref].rel+1]++
	}
	for i := 1; i <= nRel; i++ {
		counts[i] += counts[i-1]
	}
	placed := make([]gopt, len(opts))
	next := slices.Clone(counts[:nRel])
	for _, o := range opts {
		rel := pr.items[o.ref].rel
		placed[next[rel]] = o
		next[rel]++
	}
	for rel := range nRel {
		if counts[rel+1] > counts[rel] {
			s.groups = append(s.groups, group{w: ms.relW[rel], opts: placed[counts[rel]:counts[rel+1]]})
		}
	}
	sortGroups(s.groups, pr.items)
}

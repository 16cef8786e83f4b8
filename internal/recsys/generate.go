package recsys

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// GenerateImplicit builds a synthetic users×items implicit matrix with
// exactly `interactions` distinct pairs, for benchmarks. Item popularity
// follows a power law (rank^-0.9, like record sales) and users are drawn
// uniformly; weights are 1. The result depends only on the arguments.
func GenerateImplicit(seed uint64, users, items, interactions int) (*CSR, error) {
	if users < 1 || items < 1 || interactions < 0 {
		return nil, fmt.Errorf("%w: generate %d users × %d items, %d interactions", ErrBadInput, users, items, interactions)
	}
	if float64(interactions) > 0.5*float64(users)*float64(items) {
		return nil, fmt.Errorf("%w: %d interactions is too dense for %d×%d", ErrBadInput, interactions, users, items)
	}
	rng := rand.New(rand.NewPCG(seed, 0xda3e39cb94b95bdb))
	cdf := make([]float64, items)
	var total float64
	for r := range items {
		total += math.Pow(float64(r+10), -0.9)
		cdf[r] = total
	}
	// Popular items get random ids so that popularity is not correlated
	// with the id order the kernels scan in.
	perm := rng.Perm(items)
	seen := make(map[uint64]struct{}, interactions)
	entries := make([]Entry, 0, interactions)
	for attempts := 0; len(entries) < interactions; attempts++ {
		if attempts > 50*interactions+1000 {
			return nil, fmt.Errorf("%w: could not draw %d distinct pairs", ErrBadInput, interactions)
		}
		u := rng.IntN(users)
		r, _ := slices.BinarySearch(cdf, rng.Float64()*total)
		i := perm[min(r, items-1)]
		key := uint64(u)<<32 | uint64(i)
		if _, dup := seen[key]; dup {
			continue
		}
		seen[key] = struct{}{}
		entries = append(entries, Entry{Row: int32(u), Col: int32(i), Weight: 1})
	}
	return NewCSR(users, items, entries)
}

// TimeALSIterations trains ALS on m for iters iterations after one warm-up
// iteration and returns the mean wall time per iteration.
func TimeALSIterations(ctx context.Context, m *CSR, cfg ALSConfig, iters int) (time.Duration, error) {
	if iters < 1 {
		return 0, fmt.Errorf("%w: iterations %d < 1", ErrBadInput, iters)
	}
	t, err := NewALSTrainer(m, cfg)
	if err != nil {
		return 0, err
	}
	t.Step()
	start := time.Now()
	for range iters {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("timing als: %w", err)
		}
		t.Step()
	}
	return time.Since(start) / time.Duration(iters), nil
}

// RandomALSModel returns an untrained model with random factors, enough to
// time serving paths (fold-in, scoring, top-N) at a given catalogue size.
func RandomALSModel(seed uint64, users, items, factors int) (*ALSModel, error) {
	if users < 0 || items < 1 || factors < 1 {
		return nil, fmt.Errorf("%w: random model %d users, %d items, %d factors", ErrBadInput, users, items, factors)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	m := &ALSModel{Factors: factors, Users: users, Items: items, Regularization: 0.1, Alpha: 10,
		UserFactors: make([]float32, users*factors), ItemFactors: make([]float32, items*factors), ItemCounts: make([]int, items)}
	for i := range m.UserFactors {
		m.UserFactors[i] = float32(rng.NormFloat64() * 0.1)
	}
	for i := range m.ItemFactors {
		m.ItemFactors[i] = float32(rng.NormFloat64() * 0.1)
	}
	for i := range m.ItemCounts {
		m.ItemCounts[i] = 1
	}
	g := gram64(m.ItemFactors, items, factors, 0)
	addDiag(g, factors, m.Regularization)
	m.itemGram = g
	return m, nil
}

// TimeFoldInTopN measures one serving request: fold in a history of
// historyLen items, score every item and take the top n excluding the
// history. It returns the mean over reps requests.
func TimeFoldInTopN(m *ALSModel, historyLen, n, reps int, seed uint64) (time.Duration, error) {
	if reps < 1 || historyLen < 0 || historyLen > m.Items {
		return 0, fmt.Errorf("%w: reps %d, history %d of %d items", ErrBadInput, reps, historyLen, m.Items)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	hist := make([]int32, historyLen)
	for i := range hist {
		hist[i] = int32(rng.IntN(m.Items))
	}
	ex := NewExclusion(hist)
	start := time.Now()
	for range reps {
		if _, err := m.Recommend(hist, nil, n, ex); err != nil {
			return 0, err
		}
	}
	return time.Since(start) / time.Duration(reps), nil
}

package recsys

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
)

func smallALSConfig() ALSConfig {
	return ALSConfig{Factors: 8, Regularization: 0.1, Alpha: 2, Iterations: 10, CGSteps: 3, Seed: 42}
}

// TestALSLossDecreases computes the full HKV objective after every
// iteration: each CG half-step can only lower a row's quadratic, so the
// loss must never rise (up to float32 rounding).
func TestALSLossDecreases(t *testing.T) {
	for _, steps := range []int{1, 3, 8} {
		m := randomCSR(t, 1, 40, 60, 0.15)
		cfg := smallALSConfig()
		cfg.CGSteps = steps
		tr, err := NewALSTrainer(m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		prev := tr.Loss()
		first := prev
		for it := range 15 {
			tr.Step()
			loss := tr.Loss()
			if loss > prev*(1+1e-5) {
				t.Fatalf("cg %d: loss rose at iteration %d: %v -> %v", steps, it, prev, loss)
			}
			prev = loss
		}
		if prev > 0.5*first {
			t.Fatalf("cg %d: loss barely moved: %v -> %v", steps, first, prev)
		}
	}
}

func TestALSDeterministic(t *testing.T) {
	m := randomCSR(t, 2, 300, 200, 0.05)
	train := func(workers int) *ALSModel {
		cfg := smallALSConfig()
		cfg.Workers = workers
		model, err := TrainALS(context.Background(), m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return model
	}
	a, b, c := train(1), train(4), train(4)
	for _, other := range []*ALSModel{b, c} {
		if !slices.Equal(a.UserFactors, other.UserFactors) || !slices.Equal(a.ItemFactors, other.ItemFactors) {
			t.Fatal("factors differ between runs or worker counts")
		}
	}
	cfg := smallALSConfig()
	cfg.Seed++
	d, err := TrainALS(context.Background(), m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a.UserFactors, d.UserFactors) {
		t.Fatal("a different seed gave identical factors")
	}
}

// TestFoldInReproducesTrainedUser holds the item factors fixed, runs user
// half-steps to convergence, and checks that fold-in (an exact solve from
// the item factors alone) lands on the same vectors.
func TestFoldInReproducesTrainedUser(t *testing.T) {
	m := randomCSR(t, 3, 50, 80, 0.1)
	tr, err := NewALSTrainer(m, smallALSConfig())
	if err != nil {
		t.Fatal(err)
	}
	for range 8 {
		tr.Step()
	}
	for range 5 {
		tr.SolveUsers(20)
	}
	model := tr.Model()
	for u := range m.Rows {
		items, weights := m.Row(u)
		x, err := model.FoldIn(items, weights)
		if err != nil {
			t.Fatal(err)
		}
		want := model.UserVector(u)
		for f := range x {
			if math.Abs(float64(x[f]-want[f])) > 1e-4*(1+math.Abs(float64(want[f]))) {
				t.Fatalf("user %d factor %d: fold-in %v, trained %v", u, f, x[f], want[f])
			}
		}
	}
}

func TestFoldInIgnoresUnknownItems(t *testing.T) {
	m := randomCSR(t, 4, 20, 30, 0.2)
	model, err := TrainALS(context.Background(), m, smallALSConfig())
	if err != nil {
		t.Fatal(err)
	}
	a, err := model.FoldIn([]int32{1, 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := model.FoldIn([]int32{1, -5, 2, 999}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a, b) {
		t.Fatalf("unknown items changed the vector: %v vs %v", a, b)
	}
	if _, err := model.FoldIn([]int32{1}, []float32{1, 2}); !errors.Is(err, ErrBadInput) {
		t.Fatalf("mismatched weights: err = %v", err)
	}
	z, err := model.FoldIn(nil, nil)
	if err != nil || slices.ContainsFunc(z, func(v float32) bool { return v != 0 }) {
		t.Fatalf("empty history: %v, %v", z, err)
	}
}

func TestALSRecommendExcludesAndOrders(t *testing.T) {
	m := randomCSR(t, 5, 60, 100, 0.1)
	model, err := TrainALS(context.Background(), m, smallALSConfig())
	if err != nil {
		t.Fatal(err)
	}
	history, _ := m.Row(7)
	wantlist := []int32{0, 1, 2, 3, 4, 5}
	recs, err := model.Recommend(history, nil, 20, NewExclusion(history, wantlist))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 20 {
		t.Fatalf("got %d recommendations", len(recs))
	}
	x, _ := model.FoldIn(history, nil)
	for k, r := range recs {
		if slices.Contains(history, r.Item) || slices.Contains(wantlist, r.Item) {
			t.Fatalf("recommended owned/wanted item %d", r.Item)
		}
		if k > 0 && better(r, recs[k-1]) {
			t.Fatalf("not ordered at %d: %v after %v", k, r, recs[k-1])
		}
		if want := dot(x, model.ItemVector(int(r.Item))); math.Abs(float64(want-r.Score)) > 1e-5 {
			t.Fatalf("score %v, x·y = %v", r.Score, want)
		}
	}
	// Nothing left out scores above the last recommendation.
	scores := make([]float32, model.Items)
	if err := model.ScoreVector(x, scores); err != nil {
		t.Fatal(err)
	}
	ex := NewExclusion(history, wantlist)
	for i, s := range scores {
		if !ex.Has(int32(i)) && !slices.Contains(itemsOf(recs), int32(i)) && s > recs[len(recs)-1].Score {
			t.Fatalf("item %d (%v) beats the last recommendation %v", i, s, recs[len(recs)-1])
		}
	}
}

func TestALSBadInput(t *testing.T) {
	m := randomCSR(t, 6, 5, 5, 0.5)
	mod := func(f func(*ALSConfig)) ALSConfig { c := smallALSConfig(); f(&c); return c }
	tests := []struct {
		name string
		m    *CSR
		cfg  ALSConfig
	}{
		{"zero factors", m, mod(func(c *ALSConfig) { c.Factors = 0 })},
		{"negative regularization", m, mod(func(c *ALSConfig) { c.Regularization = -1 })},
		{"NaN alpha", m, mod(func(c *ALSConfig) { c.Alpha = math.NaN() })},
		{"zero cg steps", m, mod(func(c *ALSConfig) { c.CGSteps = 0 })},
		{"negative weight", mustCSR(t, 1, 1, []Entry{{Weight: -1}}), smallALSConfig()},
		{"invalid matrix", &CSR{Rows: 1}, smallALSConfig()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := TrainALS(context.Background(), tt.m, tt.cfg); !errors.Is(err, ErrBadInput) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := TrainALS(ctx, m, smallALSConfig()); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
}

package recsys

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
)

// ALSConfig parameterises implicit-feedback ALS (Hu, Koren, Volinsky 2008)
// with confidence c = 1 + Alpha·weight and preference 1 for every stored
// interaction, 0 (confidence 1) everywhere else.
type ALSConfig struct {
	Factors        int     `json:"factors"`
	Regularization float64 `json:"regularization"`
	Alpha          float64 `json:"alpha"`
	Iterations     int     `json:"iterations"`
	// CGSteps is the number of conjugate-gradient steps per row and
	// half-iteration; warm starts make 2–4 enough (Takács et al. 2011).
	CGSteps int    `json:"cg_steps"`
	Seed    uint64 `json:"seed"`
	// Workers bounds parallelism (0 = GOMAXPROCS). It never changes results.
	Workers int `json:"-"`
}

// DefaultALSConfig returns the defaults tuned on ml-latest-small and
// hetrec2011-lastfm-2k (see eval/TUNING.md for the figures).
func DefaultALSConfig() ALSConfig {
	return ALSConfig{Factors: 64, Regularization: 50, Alpha: 10, Iterations: 15, CGSteps: 3, Seed: 1}
}

func (c ALSConfig) validate() error {
	switch {
	case c.Factors < 1:
		return fmt.Errorf("%w: als factors %d < 1", ErrBadInput, c.Factors)
	case c.Regularization < 0 || math.IsNaN(c.Regularization):
		return fmt.Errorf("%w: als regularization %v < 0", ErrBadInput, c.Regularization)
	case c.Alpha < 0 || math.IsNaN(c.Alpha):
		return fmt.Errorf("%w: als alpha %v < 0", ErrBadInput, c.Alpha)
	case c.Iterations < 0:
		return fmt.Errorf("%w: als iterations %d < 0", ErrBadInput, c.Iterations)
	case c.CGSteps < 1:
		return fmt.Errorf("%w: als cg steps %d < 1", ErrBadInput, c.CGSteps)
	}
	return nil
}

// ALSModel is a trained factorisation. Factor matrices are row-major:
// user u's vector is UserFactors[u*Factors:(u+1)*Factors].
type ALSModel struct {
	Factors        int       `json:"factors"`
	Users          int       `json:"users"`
	Items          int       `json:"items"`
	Regularization float64   `json:"regularization"`
	Alpha          float64   `json:"alpha"`
	UserFactors    []float32 `json:"-"`
	ItemFactors    []float32 `json:"-"`
	// ItemCounts is the number of training interactions per item; items
	// with none have near-zero factors and are "unknown" to the cascade.
	ItemCounts []int `json:"-"`

	// itemGram is YᵀY + λI in float64, precomputed for fold-in.
	itemGram []float64
}

// ALSTrainer runs ALS one iteration at a time, so callers can watch the
// loss, time iterations or stop early.
type ALSTrainer struct {
	cfg    ALSConfig
	ui, iu *CSR
	model  *ALSModel
	gram   []float32
	iters  int
}

// NewALSTrainer initialises factors uniformly in [0, 0.01) from cfg.Seed,
// like implicit, so that the first half-step starts near zero.
func NewALSTrainer(ui *CSR, cfg ALSConfig) (*ALSTrainer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := ui.Validate(); err != nil {
		return nil, fmt.Errorf("als input: %w", err)
	}
	for _, w := range ui.Data {
		if w < 0 || math.IsNaN(float64(w)) || math.IsInf(float64(w), 0) {
			return nil, fmt.Errorf("%w: als weight %v must be finite and >= 0", ErrBadInput, w)
		}
	}
	k := cfg.Factors
	m := &ALSModel{Factors: k, Users: ui.Rows, Items: ui.Cols, Regularization: cfg.Regularization, Alpha: cfg.Alpha,
		UserFactors: make([]float32, ui.Rows*k), ItemFactors: make([]float32, ui.Cols*k), ItemCounts: ui.ColCounts()}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	for i := range m.UserFactors {
		m.UserFactors[i] = float32(rng.Float64() * 0.01)
	}
	for i := range m.ItemFactors {
		m.ItemFactors[i] = float32(rng.Float64() * 0.01)
	}
	return &ALSTrainer{cfg: cfg, ui: ui, iu: ui.Transpose(), model: m, gram: make([]float32, k*k)}, nil
}

// Step runs one iteration: all users given the items, then all items given
// the users.
func (t *ALSTrainer) Step() {
	t.SolveUsers(t.cfg.CGSteps)
	t.solveSide(t.model.ItemFactors, t.model.UserFactors, t.iu, t.cfg.CGSteps)
	t.iters++
}

// SolveUsers runs only the user half-step with the given number of CG
// steps, items held fixed.
func (t *ALSTrainer) SolveUsers(cgSteps int) {
	t.solveSide(t.model.UserFactors, t.model.ItemFactors, t.ui, max(cgSteps, 1))
}

// Iterations is the number of completed Steps.
func (t *ALSTrainer) Iterations() int { return t.iters }

// Model finalises and returns the model. The trainer keeps sharing the
// factor slices, so further Steps update the returned model in place.
func (t *ALSTrainer) Model() *ALSModel {
	g := gram64(t.model.ItemFactors, t.model.Items, t.model.Factors, t.cfg.Workers)
	addDiag(g, t.model.Factors, t.cfg.Regularization)
	t.model.itemGram = g
	return t.model
}

// Loss is the HKV objective
//
//	Σ_{u,i} c_ui (p_ui − x_uᵀy_i)² + λ(‖X‖² + ‖Y‖²)
//
// over all user-item pairs, computed without touching the zeros: their sum
// of squared predictions is trace(XᵀX·YᵀY).
func (t *ALSTrainer) Loss() float64 {
	m := t.model
	k := m.Factors
	xtx := gram64(m.UserFactors, m.Users, k, t.cfg.Workers)
	yty := gram64(m.ItemFactors, m.Items, k, t.cfg.Workers)
	var loss float64
	for i := range k * k {
		loss += xtx[i] * yty[i] // trace(AB) for symmetric A, B
	}
	for u := range m.Users {
		x := m.UserFactors[u*k : (u+1)*k]
		cols, ws := t.ui.Row(u)
		for n, i := range cols {
			y := m.ItemFactors[int(i)*k : (int(i)+1)*k]
			var s float64
			for f := range k {
				s += float64(x[f]) * float64(y[f])
			}
			c := 1 + t.cfg.Alpha*float64(ws[n])
			loss += c*(1-s)*(1-s) - s*s
		}
	}
	var norm float64
	for _, v := range m.UserFactors {
		norm += float64(v) * float64(v)
	}
	for _, v := range m.ItemFactors {
		norm += float64(v) * float64(v)
	}
	return loss + t.cfg.Regularization*norm
}

// TrainALS trains for cfg.Iterations, checking ctx between iterations.
func TrainALS(ctx context.Context, ui *CSR, cfg ALSConfig) (*ALSModel, error) {
	t, err := NewALSTrainer(ui, cfg)
	if err != nil {
		return nil, err
	}
	for range cfg.Iterations {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("als after %d iterations: %w", t.Iterations(), err)
		}
		t.Step()
	}
	return t.Model(), nil
}

// rowChunk is the unit of parallel work. It is fixed (not derived from the
// worker count) so that reductions over chunks sum in the same order on any
// machine.
const rowChunk = 2048

// solveSide updates every row of xs given the other side's factors ys,
// following implicit's conjugate-gradient solver: A = YᵀY + λI is shared,
// and each row adds Yᵀ(C_u − I)Y using only its nonzeros. Each row reads
// only ys and its own x, so the parallel schedule cannot change results.
func (t *ALSTrainer) solveSide(xs, ys []float32, m *CSR, steps int) {
	k := t.model.Factors
	g := gram64(ys, len(ys)/k, k, t.cfg.Workers)
	addDiag(g, k, t.cfg.Regularization)
	for i, v := range g {
		t.gram[i] = float32(v)
	}
	gram := t.gram
	alpha := float32(t.cfg.Alpha)
	nw := workers(t.cfg.Workers)
	scratch := make([][]float32, nw)
	for w := range scratch {
		scratch[w] = make([]float32, 3*k)
	}
	parallelChunks(m.Rows, 256, nw, func(w, lo, hi int) {
		buf := scratch[w]
		r, p, ap := buf[:k], buf[k:2*k], buf[2*k:3*k]
		for u := lo; u < hi; u++ {
			cgRow(xs[u*k:(u+1)*k], ys, gram, k, m, u, alpha, steps, r, p, ap)
		}
	})
}

// cgRow runs `steps` CG iterations on (A + Yᵀ(C_u−I)Y) x = YᵀC_u p_u,
// warm-started from x.
func cgRow(x, ys, gram []float32, k int, m *CSR, u int, alpha float32, steps int, r, p, ap []float32) {
	cols, ws := m.Row(u)
	// r = b − A·x
	gemv(gram, k, k, x, r)
	for f := range r {
		r[f] = -r[f]
	}
	for n, i := range cols {
		y := ys[int(i)*k : (int(i)+1)*k]
		c := 1 + alpha*ws[n]
		axpy(c-(c-1)*dot(y, x), y, r)
	}
	copy(p, r)
	rsold := dot(r, r)
	if rsold < 1e-20 {
		return
	}
	for range steps {
		gemv(gram, k, k, p, ap)
		for n, i := range cols {
			y := ys[int(i)*k : (int(i)+1)*k]
			axpy(alpha*ws[n]*dot(y, p), y, ap)
		}
		pap := dot(p, ap)
		if pap <= 0 || math.IsNaN(float64(pap)) {
			return
		}
		a := rsold / pap
		axpy(a, p, x)
		axpy(-a, ap, r)
		rsnew := dot(r, r)
		if rsnew < 1e-20 {
			return
		}
		beta := rsnew / rsold
		for f := range p {
			p[f] = r[f] + beta*p[f]
		}
		rsold = rsnew
	}
}

// gram64 computes VᵀV for a row-major n×k float32 matrix, accumulating
// fixed-size chunks (computed in parallel with float32 SGEMM) in float64
// and in chunk order, so the result is identical for any worker count.
func gram64(v []float32, n, k, nworkers int) []float64 {
	nchunks := (n + rowChunk - 1) / rowChunk
	partial := make([][]float32, nchunks)
	parallelChunks(nchunks, 1, workers(nworkers), func(_, lo, hi int) {
		for c := lo; c < hi; c++ {
			r0, r1 := c*rowChunk, min((c+1)*rowChunk, n)
			out := make([]float32, k*k)
			impl{}.Sgemm(blas.Trans, blas.NoTrans, k, k, r1-r0, 1, v[r0*k:r1*k], k, v[r0*k:r1*k], k, 0, out, k)
			partial[c] = out
		}
	})
	g := make([]float64, k*k)
	for _, p := range partial {
		for i, x := range p {
			g[i] += float64(x)
		}
	}
	return g
}

func addDiag(g []float64, k int, v float64) {
	for f := range k {
		g[f*k+f] += v
	}
}

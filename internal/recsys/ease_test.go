package recsys

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// easeReference computes B = I − P·diag(1/diag P), P = (XᵀX + λI)⁻¹ with a
// dense gonum inverse, for support items only.
func easeReference(t *testing.T, m *CSR, lambda float64, support []int32) *mat.Dense {
	t.Helper()
	n := len(support)
	x := mat.NewDense(m.Rows, n, nil)
	for u := range m.Rows {
		cols, ws := m.Row(u)
		for k, c := range cols {
			for p, s := range support {
				if s == c {
					x.Set(u, p, float64(ws[k]))
				}
			}
		}
	}
	var g mat.Dense
	g.Mul(x.T(), x)
	for i := range n {
		g.Set(i, i, g.At(i, i)+lambda)
	}
	var p mat.Dense
	if err := p.Inverse(&g); err != nil {
		t.Fatal(err)
	}
	b := mat.NewDense(n, n, nil)
	for i := range n {
		for j := range n {
			if i != j {
				b.Set(i, j, -p.At(i, j)/p.At(j, j))
			}
		}
	}
	return b
}

func TestEASEMatchesClosedForm(t *testing.T) {
	tests := []struct {
		name         string
		users, items int
		minSupport   int
		maxItems     int
	}{
		// More users than items takes the primal (item Gram) path, fewer
		// takes the Woodbury (user Gram) path; both must match.
		{"primal", 40, 12, 0, 0},
		{"dual", 8, 30, 0, 0},
		{"dual with support", 8, 30, 2, 0},
		{"primal with cap", 40, 12, 0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := randomCSR(t, 11, tt.users, tt.items, 0.3)
			const lambda = 3
			model, err := TrainEASE(m, EASEConfig{Lambda: lambda, MinSupport: tt.minSupport, MaxItems: tt.maxItems})
			if err != nil {
				t.Fatal(err)
			}
			counts := m.ColCounts()
			for _, s := range model.Support {
				if counts[s] < tt.minSupport {
					t.Fatalf("item %d with %d interactions in support", s, counts[s])
				}
			}
			if tt.maxItems > 0 && len(model.Support) != tt.maxItems {
				t.Fatalf("support %d, cap %d", len(model.Support), tt.maxItems)
			}
			want := easeReference(t, m, lambda, model.Support)
			n := len(model.Support)
			for i := range n {
				for j := range n {
					if got := float64(model.B[i*n+j]); math.Abs(got-want.At(i, j)) > 1e-5 {
						t.Fatalf("B[%d,%d] = %v, want %v", i, j, got, want.At(i, j))
					}
				}
			}
			// Scores are history rows of B summed; unsupported items -Inf.
			history, _ := m.Row(0)
			scores := make([]float32, m.Cols)
			if err := model.ScoreHistory(history, scores); err != nil {
				t.Fatal(err)
			}
			for j := range m.Cols {
				p := model.pos[j]
				if p < 0 {
					if !math.IsInf(float64(scores[j]), -1) {
						t.Fatalf("unsupported item %d scored %v", j, scores[j])
					}
					continue
				}
				var s float64
				for _, h := range history {
					if q := model.pos[h]; q >= 0 {
						s += want.At(int(q), int(p))
					}
				}
				if math.Abs(float64(scores[j])-s) > 1e-4 {
					t.Fatalf("score[%d] = %v, want %v", j, scores[j], s)
				}
			}
		})
	}
}

// TestEASEHandExample checks a 2-item case small enough to invert by hand:
// XᵀX = [[2,1],[1,2]], λ = 1 → G = [[3,1],[1,3]], P = [[3,-1],[-1,3]]/8,
// B₀₁ = −P₀₁/P₁₁ = 1/3.
func TestEASEHandExample(t *testing.T) {
	m := binaryRows(t, 2, [][]int32{{0, 1}, {0}, {1}})
	model, err := TrainEASE(m, EASEConfig{Lambda: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 1.0 / 3, 1.0 / 3, 0}
	for i, w := range want {
		if math.Abs(float64(model.B[i]-w)) > 1e-6 {
			t.Fatalf("B = %v, want %v", model.B, want)
		}
	}
	if sim := model.SimilarItems(0, 5); len(sim) != 1 || sim[0].Item != 1 {
		t.Fatalf("similar items of 0: %v", sim)
	}
}

func TestEASEBadInput(t *testing.T) {
	m := randomCSR(t, 1, 3, 3, 0.5)
	for _, l := range []float64{0, -1, math.NaN()} {
		if _, err := TrainEASE(m, EASEConfig{Lambda: l}); err == nil {
			t.Fatalf("lambda %v accepted", l)
		}
	}
	empty, err := TrainEASE(mustCSR(t, 2, 3, nil), EASEConfig{Lambda: 1})
	if err != nil || len(empty.Support) != 0 || empty.Known([]int32{0}) != 0 {
		t.Fatalf("empty matrix: %v %v", empty, err)
	}
}

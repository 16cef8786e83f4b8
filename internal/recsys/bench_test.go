package recsys

import "testing"

// BenchmarkALSIteration1M times one ALS iteration (users + items) at 64
// factors on a generated 100K users × 50K items set with 1M interactions.
// Target: ≤ 1 s/iteration on 2 cores.
func BenchmarkALSIteration1M(b *testing.B) {
	m, err := GenerateImplicit(1, 100_000, 50_000, 1_000_000)
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultALSConfig()
	cfg.Factors = 64
	tr, err := NewALSTrainer(m, cfg)
	if err != nil {
		b.Fatal(err)
	}
	tr.Step() // warm-up: first iteration starts from the random init
	b.ResetTimer()
	for b.Loop() {
		tr.Step()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/iter")
}

// BenchmarkFoldInTop100 times one serving request: fold in a 50-item
// history and take the top 100 of 100K items. Target: < 2 ms.
func BenchmarkFoldInTop100(b *testing.B) {
	m, err := RandomALSModel(1, 0, 100_000, 64)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := TimeFoldInTopN(m, 50, 100, 1, 1); err != nil {
			b.Fatal(err)
		}
	}
}

package eval

import (
	"path/filepath"
	"testing"

	"github.com/cratestream/cratestream/internal/recsys"
	"github.com/cratestream/cratestream/internal/testutil"
)

// BenchmarkALSIterationLastfm times one ALS iteration at 64 factors on
// the full hetrec2011-lastfm-2k matrix (binary, 92,834 interactions).
func BenchmarkALSIterationLastfm(b *testing.B) {
	ds, err := Load(filepath.Join(testutil.SharedDir(b, "datasets", "hetrec2011-lastfm-2k"), "user_artists.dat"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := ds.CSR(true)
	if err != nil {
		b.Fatal(err)
	}
	cfg := recsys.DefaultALSConfig()
	cfg.Factors = 64
	tr, err := recsys.NewALSTrainer(m, cfg)
	if err != nil {
		b.Fatal(err)
	}
	tr.Step()
	b.ResetTimer()
	for b.Loop() {
		tr.Step()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/iter")
}

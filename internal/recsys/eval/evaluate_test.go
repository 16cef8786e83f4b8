package eval

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/cratestream/cratestream/internal/testutil"
)

// sliceConfig keeps test runs small: 2 seeds, modest models.
func sliceConfig() Config {
	cfg := DefaultConfig()
	cfg.Seeds = 2
	cfg.ALS.Factors = 16
	cfg.ALS.Iterations = 8
	return cfg
}

func loadSlices(t *testing.T) map[string]struct {
	ds   *Dataset
	meta map[string][]string
} {
	t.Helper()
	ml := testutil.SharedDir(t, "datasets", "ml-latest-small")
	fm := testutil.SharedDir(t, "datasets", "hetrec2011-lastfm-2k")
	mlds, err := Load(filepath.Join(ml, "ratings.csv"))
	if err != nil {
		t.Fatal(err)
	}
	mlMeta, err := LoadMovieLensGenres(filepath.Join(ml, "movies.csv"))
	if err != nil {
		t.Fatal(err)
	}
	fmds, err := Load(filepath.Join(fm, "user_artists.dat"))
	if err != nil {
		t.Fatal(err)
	}
	fmMeta, err := LoadLastfmTags(fm, DefaultLastfmTags)
	if err != nil {
		t.Fatal(err)
	}
	// The published sizes double as a check of the loader on real files.
	if len(mlds.Interactions) != 100836 || mlds.Users.Len() != 610 || mlds.Items.Len() != 9724 {
		t.Fatalf("ml-latest-small: %d interactions, %d users, %d items", len(mlds.Interactions), mlds.Users.Len(), mlds.Items.Len())
	}
	if len(fmds.Interactions) != 92834 || fmds.Users.Len() != 1892 || fmds.Items.Len() != 17632 {
		t.Fatalf("lastfm: %d interactions, %d users, %d items", len(fmds.Interactions), fmds.Users.Len(), fmds.Items.Len())
	}
	return map[string]struct {
		ds   *Dataset
		meta map[string][]string
	}{
		"ml-latest-small": {mlds.Head(150), mlMeta},
		"lastfm":          {fmds.Head(300), fmMeta},
	}
}

func TestEvaluateSlices(t *testing.T) {
	ctx := context.Background()
	for name, set := range loadSlices(t) {
		t.Run(name, func(t *testing.T) {
			cfg := sliceConfig()
			cfg.ItemGenres = set.meta
			res := map[string]Result{}
			for _, m := range Models() {
				r, err := Evaluate(ctx, set.ds, m, cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: P@10 %.4f±%.4f R@10 %.4f NDCG@10 %.4f cov %.3f", m, r.PAt10.Mean, r.PAt10.SD, r.RAt10.Mean, r.NDCGAt10.Mean, r.Coverage)
				for _, v := range []float64{r.PAt10.Mean, r.RAt10.Mean, r.NDCGAt10.Mean, r.Coverage} {
					if !(v > 0 && v <= 1) {
						t.Fatalf("%s: metric %v outside (0,1]: %+v", m, v, r)
					}
				}
				if r.Seeds != 2 || r.Users < 100 {
					t.Fatalf("%s: %d seeds, %v users", m, r.Seeds, r.Users)
				}
				res[m] = r
			}
			// Personalised models must beat popularity even on a slice.
			for _, m := range []string{"als", "ease", "knn"} {
				if res[m].PAt10.Mean <= res["pop"].PAt10.Mean {
					t.Fatalf("%s P@10 %v does not beat popularity %v", m, res[m].PAt10.Mean, res["pop"].PAt10.Mean)
				}
			}
		})
	}
}

func TestEvaluateDeterministic(t *testing.T) {
	set := loadSlices(t)["lastfm"]
	cfg := sliceConfig()
	cfg.Seeds = 1
	for _, m := range []string{"als", "knn"} {
		a, err := Evaluate(context.Background(), set.ds, m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Workers = 1
		b, err := Evaluate(context.Background(), set.ds, m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Workers = 0
		a.TrainSeconds, b.TrainSeconds = 0, 0
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: runs differ:\n%+v\n%+v", m, a, b)
		}
	}
}

func TestResultJSON(t *testing.T) {
	r := Result{Model: "als", PAt10: Stat{0.3, 0.01}, RAt10: Stat{0.2, 0.02}, NDCGAt10: Stat{0.4, 0.03}, Coverage: 0.1, TrainSeconds: 1.5}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"model", "p_at_10", "r_at_10", "ndcg_at_10", "coverage", "train_seconds"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("%s lacks %q", b, k)
		}
	}
	if p := m["p_at_10"].(map[string]any); p["mean"] != 0.3 || p["sd"] != 0.01 {
		t.Fatalf("p_at_10 = %v", p)
	}
}

func TestEvaluateErrors(t *testing.T) {
	ds := syntheticDataset(t, 10, 5)
	cfg := DefaultConfig()
	cfg.Seeds = 1
	if _, err := Evaluate(context.Background(), ds, "svd++", cfg); err == nil {
		t.Fatal("unknown model accepted")
	}
	if _, err := Evaluate(context.Background(), ds, "genre", cfg); err == nil {
		t.Fatal("genre without metadata accepted")
	}
	cfg.Seeds = 0
	if _, err := Evaluate(context.Background(), ds, "pop", cfg); err == nil {
		t.Fatal("zero seeds accepted")
	}
	if !slices.Contains(Models(), "als") {
		t.Fatal("models list")
	}
}

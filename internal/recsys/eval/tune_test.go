//go:build recsystune

package eval

// The tuning harness: full-dataset grid searches, kept out of `go test`
// by the recsystune build tag. Run (from the repository root)
//
//	RECSYS_TUNE_DATASETS=ml,lastfm RECSYS_TUNE_MODELS=als,ease,knn,genre \
//	RECSYS_TUNE_SEEDS=2 go test -tags recsystune -run TestTune -v -timeout 0 ./internal/recsys/eval
//
// Each configuration prints one JSON Result line (with its params); see
// TUNING.md for the grids' outcome. RECSYS_TUNE_FINAL=1 instead evaluates
// the package defaults with the full protocol (5 seeds), every model.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cratestream/cratestream/internal/testutil"
)

type tuneSet struct {
	name string
	ds   *Dataset
	meta map[string][]string
}

func tuneDatasets(t *testing.T) []tuneSet {
	want := os.Getenv("RECSYS_TUNE_DATASETS")
	if want == "" {
		want = "ml,lastfm"
	}
	var out []tuneSet
	for _, name := range strings.Split(want, ",") {
		var ts tuneSet
		var err error
		switch name {
		case "ml":
			dir := testutil.SharedDir(t, "datasets", "ml-latest-small")
			ts.ds, err = Load(dir + "/ratings.csv")
			if err == nil {
				ts.meta, err = LoadMovieLensGenres(dir + "/movies.csv")
			}
		case "lastfm":
			dir := testutil.SharedDir(t, "datasets", "hetrec2011-lastfm-2k")
			ts.ds, err = Load(dir + "/user_artists.dat")
			if err == nil {
				ts.meta, err = LoadLastfmTags(dir, DefaultLastfmTags)
			}
		default:
			t.Fatalf("unknown dataset %q (ml, lastfm)", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		ts.name = name
		out = append(out, ts)
	}
	return out
}

func emit(t *testing.T, r Result, extra string) {
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s\n", b, extra)
}

func TestTune(t *testing.T) {
	seeds := 2
	if s := os.Getenv("RECSYS_TUNE_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		seeds = n
	}
	models := strings.Split(os.Getenv("RECSYS_TUNE_MODELS"), ",")
	if os.Getenv("RECSYS_TUNE_MODELS") == "" {
		models = Models()
	}
	ctx := context.Background()
	for _, ts := range tuneDatasets(t) {
		base := DefaultConfig()
		base.ItemGenres = ts.meta
		if os.Getenv("RECSYS_TUNE_FINAL") == "1" {
			for _, m := range Models() {
				r, err := Evaluate(ctx, ts.ds, m, base)
				if err != nil {
					t.Fatal(err)
				}
				emit(t, r, "")
			}
			continue
		}
		base.Seeds = seeds
		run := func(model string, cfg Config, extra string) {
			r, err := Evaluate(ctx, ts.ds, model, cfg)
			if err != nil {
				t.Fatal(err)
			}
			emit(t, r, extra)
		}
		for _, model := range models {
			switch model {
			case "als":
				for _, f := range []int{32, 64, 128} {
					for _, reg := range []float64{0.1, 1, 10, 50} {
						for _, a := range []float64{1, 3, 10, 30} {
							c := base
							c.ALS.Factors, c.ALS.Regularization, c.ALS.Alpha = f, reg, a
							run("als", c, "")
						}
					}
				}
			case "als-refine":
				for _, f := range []int{64, 128} {
					for _, reg := range []float64{25, 50, 100, 200} {
						for _, a := range []float64{5, 10, 20} {
							c := base
							c.ALS.Factors, c.ALS.Regularization, c.ALS.Alpha = f, reg, a
							run("als", c, "")
						}
					}
				}
			case "als-iter":
				for _, it := range []int{5, 10, 15, 25} {
					for _, cg := range []int{2, 3, 5} {
						c := base
						c.ALS.Iterations, c.ALS.CGSteps = it, cg
						run("als", c, "")
					}
				}
			case "ease":
				for _, l := range []float64{50, 100, 200, 500, 1000, 2000} {
					for _, sup := range []int{1, 2, 3, 5, 10} {
						c := base
						c.EASE.Lambda, c.EASE.MinSupport = l, sup
						run("ease", c, "")
					}
				}
			case "ease-refine":
				for _, l := range []float64{75, 100, 150} {
					for _, sup := range []int{2, 3} {
						c := base
						c.EASE.Lambda, c.EASE.MinSupport = l, sup
						run("ease", c, "")
					}
				}
			case "knn":
				for _, k := range []int{10, 20, 50, 100, 200, 500} {
					for _, sh := range []float64{0, 10, 50} {
						c := base
						c.KNN.K, c.KNN.Shrink = k, sh
						run("knn", c, "")
					}
				}
			case "genre":
				for _, top := range []int{3, 5, 10} {
					c := base
					if ts.name == "lastfm" {
						meta, err := LoadLastfmTags(testutil.SharedDir(t, "datasets", "hetrec2011-lastfm-2k"), top)
						if err != nil {
							t.Fatal(err)
						}
						c.ItemGenres = meta
					} else if top != DefaultLastfmTags {
						continue
					}
					for _, b := range []float64{0, 0.5, 1, 2} {
						for _, idf := range []bool{false, true} {
							c.Genre.PopularityExponent, c.Genre.IDF = b, idf
							run("genre", c, fmt.Sprintf(" top_tags=%d", top))
						}
					}
				}
			case "pop":
				run("pop", base, "")
			default:
				t.Fatalf("unknown model %q", model)
			}
		}
	}
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/cratestream/cratestream/internal/recsys/eval"
)

func evalCommand() command {
	c := command{
		name:    "eval",
		summary: "evaluate recommenders offline on an interaction file",
		usage: `Usage: cratestream eval --ratings FILE [--model als|ease|knn|pop|genre|all] [--seeds 5] [--json]

Runs the offline protocol: every interaction is a binary positive; one global
random 80/20 split of the interactions per seed; every item is ranked for
each test user, the user's training items excluded; P@10, R@10 and NDCG@10
(ideal DCG over min(|test items|, 10)) averaged over users with a test item;
mean ± sd over the seeds; catalogue coverage and training time.

FILE is any delimited file of user, item[, weight[, timestamp]] with or
without a header; the delimiter (comma, tab, "::") is detected. The genre
model needs item genres: --genres takes MovieLens' movies.csv or a Last.fm
HetRec directory (tags); by default they are looked for next to FILE.

With --json, one JSON object per model per line:
  {"model":"als","p_at_10":{"mean":…,"sd":…},"r_at_10":{…},"ndcg_at_10":{…},"coverage":…,"train_seconds":…, …}`,
	}
	c.run = func(ctx context.Context, env *Env, args []string) error {
		fs := newFlags(env, c)
		ratings := fs.String("ratings", "", "interaction file")
		model := fs.String("model", "all", "als, ease, knn, pop, genre or all")
		seeds := fs.Int("seeds", 5, "splits to average over")
		asJSON := fs.Bool("json", false, "one JSON object per model per line")
		genres := fs.String("genres", "", "item genres: movies.csv or a Last.fm HetRec directory (default: found next to --ratings)")
		if err := parse(fs, args); err != nil {
			return err
		}
		if *ratings == "" {
			return usagef("--ratings FILE is required")
		}
		models := eval.Models()
		if *model != "all" {
			ok := false
			for _, m := range models {
				ok = ok || m == *model
			}
			if !ok {
				return usagef("unknown model %q (have %s, all)", *model, strings.Join(models, ", "))
			}
			models = []string{*model}
		}
		ds, err := eval.Load(*ratings)
		if err != nil {
			return err
		}
		cfg := eval.DefaultConfig()
		cfg.Seeds = *seeds
		meta, err := loadGenres(*genres, *ratings)
		if err != nil {
			return err
		}
		cfg.ItemGenres = meta
		fmt.Fprintf(env.Stderr, "eval: %s: %d users, %d items, %d interactions, %d seeds\n",
			filepath.Base(*ratings), ds.Users.Len(), ds.Items.Len(), len(ds.Interactions), cfg.Seeds)
		var results []eval.Result
		for _, m := range models {
			if m == "genre" && meta == nil {
				if *model == "genre" {
					return usagef("the genre model needs --genres (movies.csv or a Last.fm directory)")
				}
				fmt.Fprintln(env.Stderr, "eval: skipping genre: no item genres found (pass --genres)")
				continue
			}
			fmt.Fprintf(env.Stderr, "eval: %s...\n", m)
			r, err := eval.Evaluate(ctx, ds, m, cfg)
			if err != nil {
				return fmt.Errorf("%s: %w", m, err)
			}
			if *asJSON {
				r.Params = nil
				b, err := json.Marshal(r)
				if err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout, string(b))
			}
			results = append(results, r)
		}
		if *asJSON {
			return nil
		}
		tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MODEL\tP@10\tR@10\tNDCG@10\tCOVERAGE\tTRAIN s")
		for _, r := range results {
			fmt.Fprintf(tw, "%s\t%.4f ± %.4f\t%.4f ± %.4f\t%.4f ± %.4f\t%.3f\t%.2f\n", r.Model, r.PAt10.Mean, r.PAt10.SD,
				r.RAt10.Mean, r.RAt10.SD, r.NDCGAt10.Mean, r.NDCGAt10.SD, r.Coverage, r.TrainSeconds)
		}
		return tw.Flush()
	}
	return c
}

// loadGenres loads item genres from path, or finds them next to ratings.
func loadGenres(path, ratings string) (map[string][]string, error) {
	dir := filepath.Dir(ratings)
	if path == "" {
		switch {
		case exists(filepath.Join(dir, "movies.csv")):
			path = filepath.Join(dir, "movies.csv")
		case exists(filepath.Join(dir, "user_taggedartists.dat")):
			path = dir
		default:
			return nil, nil
		}
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return eval.LoadLastfmTags(path, 10)
	}
	return eval.LoadMovieLensGenres(path)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

package eval

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cratestream/cratestream/internal/recsys"
)

// Config selects seeds and model parameters for Evaluate.
type Config struct {
	// Seeds is the number of splits; seed s uses FirstSeed+s for the split
	// and for the model's own randomness (ALS initialisation, overriding
	// ALS.Seed), so the spread over seeds covers both.
	Seeds         int     `json:"seeds"`
	FirstSeed     uint64  `json:"first_seed"`
	TrainFraction float64 `json:"train_fraction"`
	Workers       int     `json:"-"`

	ALS   recsys.ALSConfig   `json:"als"`
	EASE  recsys.EASEConfig  `json:"ease"`
	KNN   recsys.KNNConfig   `json:"knn"`
	Genre recsys.GenreConfig `json:"genre"`
	// ItemGenres maps external item ids to genres/styles; the genre model
	// needs it (LoadMovieLensGenres, LoadLastfmTags).
	ItemGenres map[string][]string `json:"-"`
}

// DefaultConfig is the protocol (5 seeds, 80/20) with the tuned model
// defaults.
func DefaultConfig() Config {
	return Config{Seeds: 5, FirstSeed: 1, TrainFraction: 0.8,
		ALS: recsys.DefaultALSConfig(), EASE: recsys.DefaultEASEConfig(),
		KNN: recsys.DefaultKNNConfig(), Genre: recsys.DefaultGenreConfig()}
}

// Models lists the names Evaluate accepts.
func Models() []string { return []string{"als", "ease", "knn", "pop", "genre"} }

// Result is one model's figures on one dataset; the CLI prints one JSON
// object per line.
type Result struct {
	Model    string `json:"model"`
	Dataset  string `json:"dataset,omitempty"`
	PAt10    Stat   `json:"p_at_10"`
	RAt10    Stat   `json:"r_at_10"`
	NDCGAt10 Stat   `json:"ndcg_at_10"`
	// Coverage and TrainSeconds are means over seeds.
	Coverage     float64 `json:"coverage"`
	TrainSeconds float64 `json:"train_seconds"`
	Seeds        int     `json:"seeds"`
	// Users is the mean number of evaluated (test) users per seed.
	Users  float64 `json:"users"`
	Params any     `json:"params,omitempty"`
}

// SeedResult is one split's figures.
type SeedResult struct {
	Seed                    uint64
	Precision, Recall, NDCG float64
	Coverage                float64
	Train                   time.Duration
	Users                   int
}

// Evaluate runs the protocol for one model over cfg.Seeds splits.
func Evaluate(ctx context.Context, d *Dataset, model string, cfg Config) (Result, error) {
	if cfg.Seeds < 1 {
		return Result{}, fmt.Errorf("eval: seeds %d < 1", cfg.Seeds)
	}
	var p, r, n []float64
	res := Result{Model: model, Dataset: d.Name, Seeds: cfg.Seeds, Params: paramsOf(model, cfg)}
	for s := range cfg.Seeds {
		sr, err := EvaluateSeed(ctx, d, model, cfg, cfg.FirstSeed+uint64(s))
		if err != nil {
			return Result{}, err
		}
		p, r, n = append(p, sr.Precision), append(r, sr.Recall), append(n, sr.NDCG)
		res.Coverage += sr.Coverage / float64(cfg.Seeds)
		res.TrainSeconds += sr.Train.Seconds() / float64(cfg.Seeds)
		res.Users += float64(sr.Users) / float64(cfg.Seeds)
	}
	res.PAt10, res.RAt10, res.NDCGAt10 = NewStat(p), NewStat(r), NewStat(n)
	return res, nil
}

func paramsOf(model string, cfg Config) any {
	switch model {
	case "als":
		c := cfg.ALS
		c.Seed = cfg.FirstSeed // seed s trains with FirstSeed+s
		return c
	case "ease":
		return cfg.EASE
	case "knn":
		return cfg.KNN
	case "genre":
		return cfg.Genre
	}
	return nil
}

// userScorer writes every item's score for user u, whose training items
// are history.
type userScorer func(u int, history []int32, dst []float32) error

// train fits the named model on the split's training matrix.
func train(ctx context.Context, d *Dataset, model string, cfg Config, seed uint64, m *recsys.CSR) (userScorer, error) {
	fromScorer := func(s recsys.Scorer) userScorer {
		return func(_ int, h []int32, dst []float32) error { return s.ScoreHistory(h, dst) }
	}
	switch model {
	case "als":
		c := cfg.ALS
		c.Seed = seed
		c.Workers = cfg.Workers
		als, err := recsys.TrainALS(ctx, m, c)
		if err != nil {
			return nil, err
		}
		// Known users are scored with their trained vectors, as in the
		// published protocol; fold-in is for users unseen at training.
		return func(u int, _ []int32, dst []float32) error { return als.ScoreVector(als.UserVector(u), dst) }, nil
	case "ease":
		c := cfg.EASE
		c.Workers = cfg.Workers
		e, err := recsys.TrainEASE(m, c)
		if err != nil {
			return nil, err
		}
		return fromScorer(e), nil
	case "knn":
		c := cfg.KNN
		c.Workers = cfg.Workers
		k, err := recsys.TrainItemKNN(m, c)
		if err != nil {
			return nil, err
		}
		return fromScorer(k), nil
	case "pop":
		p, err := recsys.TrainPopularity(m)
		if err != nil {
			return nil, err
		}
		return fromScorer(p), nil
	case "genre":
		if cfg.ItemGenres == nil {
			return nil, fmt.Errorf("eval: model genre needs item metadata (Config.ItemGenres)")
		}
		g, err := recsys.TrainGenre(m, d.ItemGenres(cfg.ItemGenres), cfg.Genre)
		if err != nil {
			return nil, err
		}
		return fromScorer(g), nil
	}
	return nil, fmt.Errorf("eval: unknown model %q (want one of %v)", model, Models())
}

// EvaluateSeed runs one split.
func EvaluateSeed(ctx context.Context, d *Dataset, model string, cfg Config, seed uint64) (SeedResult, error) {
	frac := cfg.TrainFraction
	if frac == 0 {
		frac = 0.8
	}
	sp, err := NewSplit(d, seed, frac)
	if err != nil {
		return SeedResult{}, err
	}
	start := time.Now()
	score, err := train(ctx, d, model, cfg, seed, sp.Train)
	if err != nil {
		return SeedResult{}, fmt.Errorf("eval %s seed %d: %w", model, seed, err)
	}
	sr := SeedResult{Seed: seed, Train: time.Since(start)}
	per, tops, err := rankUsers(ctx, sp, score, cfg.Workers)
	if err != nil {
		return SeedResult{}, fmt.Errorf("eval %s seed %d: %w", model, seed, err)
	}
	covered := make([]bool, sp.Train.Cols)
	for u, m := range per {
		if sp.Test[u] == nil {
			continue
		}
		sr.Users++
		sr.Precision += m.Precision
		sr.Recall += m.Recall
		sr.NDCG += m.NDCG
		for _, i := range tops[u] {
			covered[i] = true
		}
	}
	if sr.Users > 0 {
		sr.Precision /= float64(sr.Users)
		sr.Recall /= float64(sr.Users)
		sr.NDCG /= float64(sr.Users)
	}
	nc := 0
	for _, c := range covered {
		if c {
			nc++
		}
	}
	if len(covered) > 0 {
		sr.Coverage = float64(nc) / float64(len(covered))
	}
	return sr, nil
}

// rankUsers ranks every item for each test user, excluding their training
// items, in parallel; each user's result lands in its own slot, so the
// sums the caller takes in user order do not depend on scheduling.
func rankUsers(ctx context.Context, sp *Split, score userScorer, nworkers int) ([]UserMetrics, [][]int32, error) {
	if nworkers <= 0 {
		nworkers = runtime.GOMAXPROCS(0)
	}
	users := sp.Train.Rows
	per := make([]UserMetrics, users)
	tops := make([][]int32, users)
	errs := make([]error, nworkers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range nworkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scores := make([]float32, sp.Train.Cols)
			for {
				u := int(next.Add(1)) - 1
				if u >= users || ctx.Err() != nil {
					return
				}
				if sp.Test[u] == nil {
					continue
				}
				history, _ := sp.Train.Row(u)
				if err := score(u, history, scores); err != nil {
					errs[w] = err
					return
				}
				top := recsys.TopN(scores, K, recsys.NewExclusion(history))
				ranked := make([]int32, len(top))
				for i, s := range top {
					ranked[i] = s.Item
				}
				tops[u] = ranked
				per[u] = Score(ranked, sp.Test[u], K)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, nil, err
		}
	}
	return per, tops, nil
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cratestream/cratestream/internal/recsys"
	"github.com/cratestream/cratestream/processors/recommend"
)

func trainCommand() command {
	c := command{
		name:    "train",
		summary: "train the recommendation model once and publish it",
		usage: `Usage: cratestream train [flags]

Reads every profile in user-profiles.v1, trains implicit ALS (conjugate
gradient), checks it on a holdout, publishes the item factors to
item-factors.v1 and then the manifest to models.v1 (serving switches to a
version once it is complete), and prints the manifest as JSON. For
scheduled training run the "trainer" service (cratestream run trainer).`,
	}
	c.run = func(ctx context.Context, env *Env, args []string) error {
		fs := newFlags(env, c)
		var kf kafkaFlags
		kf.register(fs, env)
		def := recsys.DefaultALSConfig()
		factors := fs.Int("factors", def.Factors, "latent factors")
		reg := fs.Float64("regularization", def.Regularization, "L2 regularisation")
		alpha := fs.Float64("alpha", def.Alpha, "confidence weight: 1 + alpha * r")
		iters := fs.Int("iterations", def.Iterations, "ALS iterations")
		if err := parse(fs, args); err != nil {
			return err
		}
		kc, err := kf.connect(ctx, env.Logger)
		if err != nil {
			return err
		}
		cfg := def
		cfg.Factors, cfg.Regularization, cfg.Alpha, cfg.Iterations = *factors, *reg, *alpha, *iters
		man, err := recommend.Train(ctx, recommend.TrainConfig{Brokers: kc.brokers, ClientOpts: kc.opts, ALS: cfg, Logger: env.Logger})
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(man, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, string(b))
		return nil
	}
	return c
}

package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/gen"
	"github.com/cratestream/cratestream/internal/recsys"
	"github.com/cratestream/cratestream/internal/recsys/eval"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/processors/profile"
	"github.com/cratestream/cratestream/processors/recommend"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// ALSIteration times ALS iterations at the default (tuned) parameters with
// the given factors on m.
func ALSIteration(ctx context.Context, m *recsys.CSR, factors, iters int) (time.Duration, error) {
	cfg := recsys.DefaultALSConfig()
	cfg.Factors = factors
	return recsys.TimeALSIterations(ctx, m, cfg, iters)
}

// ALSGenerated is the 1M interactions / 100K users / 50K items set.
func ALSGenerated() (*recsys.CSR, error) {
	return recsys.GenerateImplicit(1, 100_000, 50_000, 1_000_000)
}

// ALSFile loads an interaction file (lastfm's user_artists.dat) as a
// binary matrix.
func ALSFile(path string) (*recsys.CSR, error) {
	ds, err := eval.Load(path)
	if err != nil {
		return nil, err
	}
	return ds.CSR(true)
}

// FoldIn times one serving request over items: fold in a 50-item history,
// score everything, top 100.
func FoldIn(items, reps int) (time.Duration, error) {
	m, err := recsys.RandomALSModel(1, 0, items, 64)
	if err != nil {
		return 0, err
	}
	return recsys.TimeFoldInTopN(m, 50, 100, reps, 1)
}

// RecommendResult is the candidates rate of the recommend processor.
type RecommendResult struct {
	Profiles     int
	Elapsed      time.Duration
	PerSecond    float64
	ModelItems   int32
	ModelVersion string
}

// Recommend trains a model on generated profiles, then measures how fast
// the recommend processor turns profile updates into candidates (fold-in,
// cascade, top 100, store write) on the embedded cluster.
func Recommend(ctx context.Context, users, releases int, progress io.Writer) (RecommendResult, error) {
	if progress == nil {
		progress = io.Discard
	}
	bc, err := newBenchCluster(ctx, topics.UserPartitions)
	if err != nil {
		return RecommendResult{}, err
	}
	defer bc.close()
	fmt.Fprintf(progress, "recommend: generating %d profiles over %d releases\n", users, releases)
	g := gen.NewInteractions(gen.InteractionsConfig{Seed: 5, Users: users, Releases: releases})
	profs := make(map[string]*pb.UserProfile, users)
	for i := 0; i < users*8; i++ {
		ev := g.Next(int64(1000 + i))
		p := profs[ev.UserId]
		if p == nil {
			p = &pb.UserProfile{UserId: ev.UserId}
			profs[ev.UserId] = p
		}
		profile.Apply(p, ev)
	}
	recs := make([]*kgo.Record, 0, len(profs))
	for u, p := range profs {
		b, _ := proto.Marshal(p)
		recs = append(recs, &kgo.Record{Topic: topics.UserProfiles().Name, Key: []byte(u), Value: b})
	}
	if err := bc.produceAll(ctx, recs); err != nil {
		return RecommendResult{}, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	fmt.Fprintln(progress, "recommend: training")
	man, err := recommend.Train(ctx, recommend.TrainConfig{Brokers: bc.k.Addrs(), Logger: quiet, EvalUsers: -1})
	if err != nil {
		return RecommendResult{}, err
	}
	models := recommend.NewModelStore(bc.k.Addrs(), quiet)
	p, _ := recommend.New(recommend.Options{Mode: stream.ExactlyOnce, Models: models})
	r, err := stream.NewRunner(p, stream.Config{Brokers: bc.k.Addrs(), InstanceID: "bench", Logger: quiet, Metrics: prometheus.NewRegistry()})
	if err != nil {
		return RecommendResult{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() { cancel(); <-done }()
	fmt.Fprintln(progress, "recommend: computing candidates")
	for !r.Ready() {
		select {
		case err := <-done:
			return RecommendResult{}, fmt.Errorf("runner stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	start := time.Now()
	if err := bc.waitCommitted(ctx, recommend.Name, topics.UserProfiles().Name); err != nil {
		return RecommendResult{}, err
	}
	el := time.Since(start)
	return RecommendResult{Profiles: len(profs), Elapsed: el, PerSecond: float64(len(profs)) / el.Seconds(),
		ModelItems: man.ItemCount, ModelVersion: man.Version}, nil
}

package recommend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/recsys"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// TrainConfig configures a training.
type TrainConfig struct {
	Brokers    []string
	ClientOpts []kgo.Opt
	ALS        recsys.ALSConfig
	// EvalUsers bounds the users of the offline check whose figures go
	// into the manifest (a holdout of their latest items). Default 2000;
	// negative skips it.
	EvalUsers int
	// Popular is the length of the popularity list in the manifest.
	// Default 1000.
	Popular int
	Logger  *slog.Logger
	Now     func() time.Time
}

func (c *TrainConfig) defaults() {
	if c.ALS.Factors == 0 {
		c.ALS = recsys.DefaultALSConfig()
	}
	if c.EvalUsers == 0 {
		c.EvalUsers = 2000
	}
	if c.Popular <= 0 {
		c.Popular = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// ErrNoData: there is nothing to train on yet.
var ErrNoData = errors.New("recommend: no interactions to train on")

// readProfiles reads user-profiles.v1 to its current end.
func readProfiles(ctx context.Context, cfg TrainConfig) (map[string]*pb.UserProfile, error) {
	name := topics.UserProfiles().Name
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeTopics(name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(200 * time.Millisecond),
	}, cfg.ClientOpts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, name)
	if err != nil {
		return nil, err
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	out := make(map[string]*pb.UserProfile)
	idle := time.Now()
	for len(left) > 0 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			if r.Value == nil {
				delete(out, string(r.Key))
				return
			}
			var p pb.UserProfile
			if err := proto.Unmarshal(r.Value, &p); err == nil {
				out[string(r.Key)] = &p
			}
		})
		if n > 0 {
			idle = time.Now()
		} else if time.Since(idle) > 3*time.Second {
			break // the tails hold only markers of aborted transactions
		}
	}
	return out, nil
}

// Train reads every profile, trains ALS, checks it on a holdout, and
// publishes its item factors then its manifest (the manifest last: serving
// switches only once a version is complete). It returns the manifest.
func Train(ctx context.Context, cfg TrainConfig) (*pb.ModelManifest, error) {
	cfg.defaults()
	start := cfg.Now()
	profiles, err := readProfiles(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("read profiles: %w", err)
	}
	users := make([]string, 0, len(profiles))
	for u := range profiles {
		users = append(users, u)
	}
	sort.Strings(users)
	items := recsys.NewIndex[int64]()
	var entries []recsys.Entry
	counts := map[int64]int{}
	for ui, u := range users {
		for _, it := range profiles[u].Items {
			if !it.Wanted && !it.Collected && it.Rating < 3 {
				continue
			}
			w := float32(1)
			if it.Collected {
				w = 2 // owning says more than wanting
			}
			entries = append(entries, recsys.Entry{Row: int32(ui), Col: items.Add(it.ReleaseId), Weight: w})
			counts[it.ReleaseId]++
		}
	}
	if len(entries) == 0 || items.Len() == 0 {
		return nil, ErrNoData
	}
	ui, err := recsys.NewCSR(len(users), items.Len(), entries)
	if err != nil {
		return nil, err
	}
	version := "als-" + start.UTC().Format("20060102T150405.000Z")
	cfg.Logger.Info("training", "version", version, "users", ui.Rows, "items", ui.Cols, "interactions", ui.NNZ())
	model, err := recsys.TrainALS(ctx, ui, cfg.ALS)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	took := cfg.Now().Sub(start)

	man := &pb.ModelManifest{
		Model: "als", Version: version, TrainedAtMs: start.UnixMilli(), TrainSeconds: took.Seconds(),
		ItemCount: int32(ui.Cols), UserCount: int32(ui.Rows), Interactions: int64(ui.NNZ()), Factors: int32(cfg.ALS.Factors),
		Params: map[string]string{
			"factors":        strconv.Itoa(cfg.ALS.Factors),
			"regularization": strconv.FormatFloat(cfg.ALS.Regularization, 'g', -1, 64),
			"alpha":          strconv.FormatFloat(cfg.ALS.Alpha, 'g', -1, 64),
			"iterations":     strconv.Itoa(cfg.ALS.Iterations),
			"cg_steps":       strconv.Itoa(cfg.ALS.CGSteps),
			"seed":           strconv.FormatUint(cfg.ALS.Seed, 10),
		},
		Complete: true,
	}
	ids := items.IDs()
	pop := append([]int64(nil), ids...)
	sort.Slice(pop, func(i, j int) bool {
		if counts[pop[i]] != counts[pop[j]] {
			return counts[pop[i]] > counts[pop[j]]
		}
		return pop[i] < pop[j]
	})
	man.Popular = pop[:min(cfg.Popular, len(pop))]
	if cfg.EvalUsers > 0 {
		if p, r, n, err := holdout(ctx, ui, cfg); err == nil {
			man.Metrics = []*pb.ModelMetric{{Name: "holdout_p_at_10", Value: p}, {Name: "holdout_r_at_10", Value: r}, {Name: "holdout_users", Value: float64(n)}}
		} else {
			cfg.Logger.Warn("holdout check skipped", "err", err)
		}
	}
	if err := publish(ctx, cfg, model, ids, man); err != nil {
		return nil, err
	}
	cfg.Logger.Info("model published", "version", version, "items", man.ItemCount, "took", cfg.Now().Sub(start).Round(time.Millisecond))
	return man, nil
}

// holdout trains on all but one random item of up to EvalUsers users with
// at least 3 items, and measures whether the held-out item is in their
// top 10 (P@10 and R@10 of that single item).
func holdout(ctx context.Context, ui *recsys.CSR, cfg TrainConfig) (p, r float64, n int, err error) {
	rng := rand.New(rand.NewPCG(cfg.ALS.Seed, 7))
	held := map[int32]int32{}
	var entries []recsys.Entry
	for u := 0; u < ui.Rows; u++ {
		cols, vals := ui.Row(u)
		skip := int32(-1)
		if len(cols) >= 3 && len(held) < cfg.EvalUsers && rng.IntN(2) == 0 {
			skip = cols[rng.IntN(len(cols))]
			held[int32(u)] = skip
		}
		for i, c := range cols {
			if c != skip {
				entries = append(entries, recsys.Entry{Row: int32(u), Col: c, Weight: vals[i]})
			}
		}
	}
	if len(held) == 0 {
		return 0, 0, 0, errors.New("no user with enough items for a holdout")
	}
	train, err := recsys.NewCSR(ui.Rows, ui.Cols, entries)
	if err != nil {
		return 0, 0, 0, err
	}
	m, err := recsys.TrainALS(ctx, train, cfg.ALS)
	if err != nil {
		return 0, 0, 0, err
	}
	hits := 0
	for u, item := range held {
		cols, vals := train.Row(int(u))
		recs, err := m.Recommend(cols, vals, 10, recsys.NewExclusion(cols))
		if err != nil {
			return 0, 0, 0, err
		}
		for _, s := range recs {
			if s.Item == item {
				hits++
				break
			}
		}
	}
	n = len(held)
	return float64(hits) / float64(10*n), float64(hits) / float64(n), n, nil
}

func publish(ctx context.Context, cfg TrainConfig, m *recsys.ALSModel, ids []int64, man *pb.ModelManifest) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...), kgo.ProducerLinger(5 * time.Millisecond)}, cfg.ClientOpts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	recs, err := m.ItemFactorRecords(ids)
	if err != nil {
		return err
	}
	now := cfg.Now().UnixMilli()
	batch := make([]*kgo.Record, 0, 5000)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := cl.ProduceSync(ctx, batch...).FirstErr()
		batch = batch[:0]
		return err
	}
	for _, fr := range recs {
		b, err := proto.Marshal(&pb.ItemFactors{EventId: man.Version + ":" + strconv.FormatInt(fr.ID, 10), EventTimeMs: now,
			ReleaseId: fr.ID, ModelVersion: man.Version, Factors: fr.Vector})
		if err != nil {
			return err
		}
		batch = append(batch, &kgo.Record{Topic: topics.ItemFactors().Name, Key: []byte(strconv.FormatInt(fr.ID, 10)), Value: b})
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return fmt.Errorf("publish factors: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("publish factors: %w", err)
	}
	man.EventId, man.EventTimeMs = "manifest:"+man.Version, now
	b, err := proto.Marshal(man)
	if err != nil {
		return err
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topics.Models().Name, Key: []byte(man.Model), Value: b}).FirstErr(); err != nil {
		return fmt.Errorf("publish manifest: %w", err)
	}
	return nil
}

// ScheduleConfig says when the trainer retrains.
type ScheduleConfig struct {
	// Every trains at least this often. Default 1h.
	Every time.Duration
	// AfterInteractions trains once this many interactions arrived since
	// the last training. Default 10,000.
	AfterInteractions int64
	// Check is how often the trigger is checked. Default 10s.
	Check time.Duration
}

// RunTrainer trains now (when there is data), then whenever the schedule
// says, until ctx ends.
func RunTrainer(ctx context.Context, cfg TrainConfig, sc ScheduleConfig) error {
	cfg.defaults()
	if sc.Every <= 0 {
		sc.Every = time.Hour
	}
	if sc.AfterInteractions <= 0 {
		sc.AfterInteractions = 10000
	}
	if sc.Check <= 0 {
		sc.Check = 10 * time.Second
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOpts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	interactions := func() int64 {
		ends, err := adm.ListEndOffsets(ctx, topics.Interactions().Name)
		if err != nil {
			return -1
		}
		var sum int64
		ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
		return sum
	}
	var last time.Time
	var lastCount int64 = -1
	t := time.NewTicker(sc.Check)
	defer t.Stop()
	for {
		n := interactions()
		due := last.IsZero() || time.Since(last) >= sc.Every || (n >= 0 && lastCount >= 0 && n-lastCount >= sc.AfterInteractions)
		if due && n != 0 {
			_, err := Train(ctx, cfg)
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, ErrNoData):
				cfg.Logger.Info("nothing to train on yet")
			case err != nil:
				cfg.Logger.Error("training failed; next check retries", "err", err)
			default:
				last, lastCount = time.Now(), n
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

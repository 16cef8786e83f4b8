// Package bench holds the end-to-end benchmarks behind `cratestream bench`
// and the Go benchmarks that share them. Every result is one line
// `bench=<name> key=value ...` (see Line).
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/gen"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/processors/profile"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// Line formats a result line: bench=<name> followed by the pairs in order.
func Line(name string, kv ...any) string {
	var b strings.Builder
	b.WriteString("bench=")
	b.WriteString(name)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%s", kv[i], formatValue(kv[i+1]))
	}
	return b.String()
}

func formatValue(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case time.Duration:
		return strconv.FormatFloat(x.Seconds(), 'f', 3, 64)
	default:
		return fmt.Sprint(x)
	}
}

// ProfileConfig sizes the profile benchmark.
type ProfileConfig struct {
	Events     int // preloaded interactions; default 2,000,000
	Users      int // distinct users; default 1,000,000
	Partitions int // of interactions.v1 and user-profiles.v1; default 12
	// PacedRate and PacedFor drive the latency measurement; default
	// 20,000 events/s for 10s.
	PacedRate int
	PacedFor  time.Duration
	// RestoreKeys is the size of the changelog restored; default 1,000,000.
	RestoreKeys int
	Logger      *slog.Logger
	// Progress receives human progress lines (stderr); nil discards.
	Progress io.Writer
	// CPUProfile, when set, receives a CPU profile of the measured phase
	// only (not the preloading).
	CPUProfile io.Writer
}

func (c *ProfileConfig) startProfile() func() {
	if c.CPUProfile == nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(c.CPUProfile); err != nil {
		fmt.Fprintln(c.Progress, "cpu profile:", err)
		return func() {}
	}
	c.CPUProfile = nil // one profile per run
	return pprof.StopCPUProfile
}

func (c *ProfileConfig) defaults() {
	if c.Events <= 0 {
		c.Events = 2_000_000
	}
	if c.Users <= 0 {
		c.Users = 1_000_000
	}
	if c.Partitions <= 0 {
		c.Partitions = topics.UserPartitions
	}
	if c.PacedRate <= 0 {
		c.PacedRate = 20000
	}
	if c.PacedFor <= 0 {
		c.PacedFor = 10 * time.Second
	}
	if c.RestoreKeys <= 0 {
		c.RestoreKeys = 1_000_000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// ProfileResult is what one mode measured.
type ProfileResult struct {
	Mode         stream.Mode
	Events       int
	Elapsed      time.Duration
	EventsPerSec float64
	// P50/P99 of produce-to-visible latency at the paced rate (at-least-once).
	P50, P99  time.Duration
	PacedRate float64
}

// benchCluster is an embedded 3-broker cluster with the profile topics.
type benchCluster struct {
	k   *embedded.Kafka
	cl  *kgo.Client
	adm *kadm.Client
}

func newBenchCluster(ctx context.Context, partitions int) (*benchCluster, error) {
	k, err := embedded.StartKafka(embedded.KafkaOptions{Brokers: 3, CleanerInterval: time.Hour})
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedRecords(500000),
	)
	if err != nil {
		k.Close()
		return nil, err
	}
	bc := &benchCluster{k: k, cl: cl, adm: kadm.NewClient(cl)}
	specs := topics.Catalogue()
	for i := range specs {
		if specs[i].Name != topics.DeadLetters().Name {
			specs[i].Partitions = int32(partitions)
		}
	}
	if _, err := stream.CreateTopics(ctx, bc.adm, specs, 1); err != nil {
		bc.close()
		return nil, err
	}
	return bc, nil
}

func (bc *benchCluster) close() {
	bc.cl.Close()
	bc.k.Close()
}

// produceAll writes recs asynchronously and waits for every ack.
func (bc *benchCluster) produceAll(ctx context.Context, recs []*kgo.Record) error {
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	wg.Add(len(recs))
	for _, r := range recs {
		bc.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return *e
	}
	return nil
}

// interactions returns n encoded interactions over users uniformly drawn.
func interactions(n, users int, seed uint64) []*kgo.Record {
	g := gen.NewInteractions(gen.InteractionsConfig{Seed: seed, Users: users, Releases: 100000, UserActivity: 0})
	recs := make([]*kgo.Record, n)
	now := time.Now().UnixMilli()
	for i := range recs {
		ev := g.Next(now + int64(i))
		b, _ := proto.Marshal(ev)
		recs[i] = &kgo.Record{Topic: topics.Interactions().Name, Key: []byte(ev.UserId), Value: b}
	}
	return recs
}

// waitCommitted blocks until the group has committed every input offset.
func (bc *benchCluster) waitCommitted(ctx context.Context, group, topic string) error {
	ends, err := bc.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	for {
		committed, err := bc.adm.FetchOffsets(ctx, group)
		if err == nil {
			done := true
			ends.Each(func(o kadm.ListedOffset) {
				c, ok := committed.Lookup(o.Topic, o.Partition)
				if !ok || c.At < o.Offset {
					done = false
				}
			})
			if done {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func runProfile(ctx context.Context, bc *benchCluster, mode stream.Mode, logger *slog.Logger) (*stream.Runner, context.CancelFunc, chan error, error) {
	p, _ := profile.New(profile.Options{Mode: mode})
	r, err := stream.NewRunner(p, stream.Config{
		Brokers:    bc.k.Addrs(),
		InstanceID: "bench",
		Logger:     logger,
		Metrics:    prometheus.NewRegistry(),
	})
	if err != nil {
		return nil, nil, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	for !r.Ready() {
		select {
		case err := <-done:
			cancel()
			return nil, nil, nil, fmt.Errorf("runner stopped: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return r, cancel, done, nil
}

// ProfileThroughput preloads the interactions and measures how fast the
// profile processor drains them in mode, until every input offset is
// committed.
func ProfileThroughput(ctx context.Context, cfg ProfileConfig, mode stream.Mode) (ProfileResult, error) {
	cfg.defaults()
	bc, err := newBenchCluster(ctx, cfg.Partitions)
	if err != nil {
		return ProfileResult{}, err
	}
	defer bc.close()
	fmt.Fprintf(cfg.Progress, "profile %s: preloading %d interactions over %d users into %d partitions\n", mode, cfg.Events, cfg.Users, cfg.Partitions)
	if err := bc.produceAll(ctx, interactions(cfg.Events, cfg.Users, 1)); err != nil {
		return ProfileResult{}, err
	}
	fmt.Fprintf(cfg.Progress, "profile %s: processing\n", mode)
	stopProfile := cfg.startProfile()
	start := time.Now()
	r, cancel, done, err := runProfile(ctx, bc, mode, cfg.Logger)
	if err != nil {
		return ProfileResult{}, err
	}
	defer func() { cancel(); <-done }()
	ready := time.Now()
	if err := bc.waitCommitted(ctx, profile.Name, topics.Interactions().Name); err != nil {
		return ProfileResult{}, err
	}
	elapsed := time.Since(ready)
	stopProfile()
	if n := r.Stats().Processed; n < int64(cfg.Events) {
		return ProfileResult{}, fmt.Errorf("processed %d of %d events", n, cfg.Events)
	}
	fmt.Fprintf(cfg.Progress, "profile %s: %d events in %s (+%s to join and restore)\n", mode, cfg.Events, elapsed.Round(time.Millisecond), ready.Sub(start).Round(time.Millisecond))
	res := ProfileResult{Mode: mode, Events: cfg.Events, Elapsed: elapsed, EventsPerSec: float64(cfg.Events) / elapsed.Seconds()}
	if mode == stream.AtLeastOnce {
		if err := pacedLatency(ctx, bc, cfg, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// pacedLatency produces at cfg.PacedRate and measures, for every output on
// user-profiles.v1, the time from the produce of the event it reflects to
// the moment a consumer sees it.
func pacedLatency(ctx context.Context, bc *benchCluster, cfg ProfileConfig, res *ProfileResult) error {
	out, err := kgo.NewClient(kgo.SeedBrokers(bc.k.Addrs()...),
		kgo.ConsumeTopics(topics.UserProfiles().Name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer out.Close()
	pacer, err := kgo.NewClient(kgo.SeedBrokers(bc.k.Addrs()...), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	defer pacer.Close()
	// Let the output consumer settle at the end first.
	pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	out.PollFetches(pctx)
	pcancel()

	fmt.Fprintf(cfg.Progress, "profile at-least-once: pacing %d events/s for %s\n", cfg.PacedRate, cfg.PacedFor)
	var sent sync.Map // event id -> produce time
	var lat []time.Duration
	var mu sync.Mutex
	cctx, ccancel := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			fs := out.PollFetches(cctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				var p pb.UserProfile
				if proto.Unmarshal(r.Value, &p) != nil {
					return
				}
				if t, ok := sent.Load(p.EventId); ok {
					mu.Lock()
					lat = append(lat, now.Sub(t.(time.Time)))
					mu.Unlock()
				}
			})
		}
	}()
	g := gen.NewInteractions(gen.InteractionsConfig{Seed: 99, Users: cfg.Users, Releases: 100000, UserActivity: 0})
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	begin := time.Now()
	total := 0
	for time.Since(begin) < cfg.PacedFor {
		<-tick.C
		due := int(time.Since(begin).Seconds() * float64(cfg.PacedRate))
		for ; total < due; total++ {
			now := time.Now()
			ev := g.Next(now.UnixMilli())
			b, _ := proto.Marshal(ev)
			sent.Store(ev.EventId, now)
			pacer.Produce(ctx, &kgo.Record{Topic: topics.Interactions().Name, Key: []byte(ev.UserId), Value: b}, nil)
		}
	}
	res.PacedRate = float64(total) / time.Since(begin).Seconds()
	time.Sleep(500 * time.Millisecond) // let the last outputs arrive
	ccancel()
	<-consumed
	mu.Lock()
	defer mu.Unlock()
	if len(lat) < total/2 {
		return fmt.Errorf("saw %d outputs for %d paced events", len(lat), total)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res.P50 = lat[len(lat)/2]
	res.P99 = lat[len(lat)*99/100]
	return nil
}

// RestoreResult is the restore rate of a changelog of Keys keys.
type RestoreResult struct {
	Keys          int
	Elapsed       time.Duration
	RecordsPerSec float64
}

// Restore fills user-profiles.v1 (the profile store's changelog) with
// cfg.RestoreKeys profiles and measures how fast a new instance restores
// them before processing.
func Restore(ctx context.Context, cfg ProfileConfig) (RestoreResult, error) {
	cfg.defaults()
	bc, err := newBenchCluster(ctx, cfg.Partitions)
	if err != nil {
		return RestoreResult{}, err
	}
	defer bc.close()
	fmt.Fprintf(cfg.Progress, "restore: writing a %d-key changelog\n", cfg.RestoreKeys)
	recs := make([]*kgo.Record, cfg.RestoreKeys)
	for i := range recs {
		u := gen.UserID(i)
		b, _ := proto.Marshal(&pb.UserProfile{UserId: u, Version: 1, EventId: "e", EventTimeMs: 1,
			Items: []*pb.ProfileItem{{ReleaseId: int64(i%5000 + 1), Wanted: true, WantTimeMs: 1}}})
		recs[i] = &kgo.Record{Topic: topics.UserProfiles().Name, Key: []byte(u), Value: b}
	}
	if err := bc.produceAll(ctx, recs); err != nil {
		return RestoreResult{}, err
	}
	fmt.Fprintln(cfg.Progress, "restore: starting a processor instance")
	stopProfile := cfg.startProfile()
	r, cancel, done, err := runProfile(ctx, bc, stream.AtLeastOnce, cfg.Logger)
	stopProfile()
	if err != nil {
		return RestoreResult{}, err
	}
	defer func() { cancel(); <-done }()
	st := r.Stats()
	if st.LastRestored != int64(cfg.RestoreKeys) {
		return RestoreResult{}, fmt.Errorf("restored %d records, want %d", st.LastRestored, cfg.RestoreKeys)
	}
	return RestoreResult{Keys: cfg.RestoreKeys, Elapsed: st.LastRestore, RecordsPerSec: float64(st.LastRestored) / st.LastRestore.Seconds()}, nil
}

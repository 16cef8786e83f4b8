package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// Processor names the sink in dead letters and is its default group.
const Processor = "clickhouse-sink"

// Config configures a Sink.
type Config struct {
	// Brokers are the Kafka seed brokers.
	Brokers []string
	// Conn is the ClickHouse connection (see Open); the tables must exist
	// (see Migrate).
	Conn Conn
	// Group is the consumer group; default "clickhouse-sink".
	Group string
	// BatchRows flushes a table once this many rows are pending; default
	// 100,000. Memory is bounded by it: at most BatchRows plus one poll per
	// table is ever held.
	BatchRows int
	// FlushInterval flushes a table whose oldest pending record is this
	// old; default 1s.
	FlushInterval time.Duration
	// MaxPollRecords bounds one poll; default 20,000.
	MaxPollRecords int
	// InsertTimeout bounds one INSERT (sent as max_execution_time too);
	// default 60s.
	InsertTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between attempts while
	// ClickHouse fails; default 100ms and 10s.
	RetryMin, RetryMax time.Duration
	// SideLoadTimeout bounds how long Run waits at start for fx-rates.v1
	// and sellers.v1 to be read; default 30s.
	SideLoadTimeout time.Duration
	// ShutdownTimeout bounds the final flush and commit; default 30s.
	ShutdownTimeout time.Duration
	// Metrics receives the sink's metrics; nil keeps them private.
	Metrics prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
	// KafkaOpts are appended to the clients' options (TLS, SASL, ...).
	KafkaOpts []kgo.Opt
}

func (c *Config) defaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("clickhouse sink: no brokers")
	}
	if c.Conn == nil {
		return errors.New("clickhouse sink: no ClickHouse connection")
	}
	if c.Group == "" {
		c.Group = Processor
	}
	if c.BatchRows <= 0 {
		c.BatchRows = 100_000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Second
	}
	if c.MaxPollRecords <= 0 {
		c.MaxPollRecords = 20_000
	}
	if c.InsertTimeout <= 0 {
		c.InsertTimeout = 60 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(10*time.Second, c.RetryMin)
	}
	if c.SideLoadTimeout <= 0 {
		c.SideLoadTimeout = 30 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Sink copies listings.v1, sellers.v1, releases.v1, release-stats.v1 and
// user-profiles.v1 into ClickHouse.
//
// Delivery is at-least-once: rows are batched per table, and a partition's
// offset is committed only after ClickHouse acknowledged the INSERT holding
// its records (and the dead-letter topic acknowledged its rejects). A crash
// or a rebalance between the two replays the batch, which the tables absorb:
// each row's version is its record's offset, so a replayed row is identical
// to its first copy and ReplacingMergeTree keeps one.
//
// Each table has at most one INSERT in flight, run by its own goroutine
// while the next batch is decoded, and at most one batch filling: memory is
// bounded by two batches per table. An INSERT that fails is retried with
// exponential backoff and fetching is paused; once the next batch is full
// too, the poll loop stops and waits, so nothing is lost and nothing piles
// up while ClickHouse is down.
type Sink struct {
	cfg  Config
	conn Conn
	log  *slog.Logger
	m    *metrics
	side *side

	// mu guards the pending batches. The poll loop holds it while it adds
	// records and starts flushes; the rebalance callbacks take it too, and
	// can only run while the loop is polling or waiting for a flush.
	mu      sync.Mutex
	pending map[string]*pending // by topic
	order   []*pending
	gen     uint64 // bumped when a rebalance flushes or drops the batches
	cl      *kgo.Client

	closing atomic.Bool
	failing atomic.Int32 // flushes currently failing; fetching is paused while > 0
	// shutdownErr collects commits that failed during the final flush.
	errMu       sync.Mutex
	shutdownErr error

	listing pb.Listing // decode scratch
	// first is when the first record was polled (Unix ns), for the
	// throughput benchmark.
	first atomic.Int64
}

func (s *Sink) firstPoll() time.Time { return time.Unix(0, s.first.Load()) }

// batch is the rows of one table and the input positions they cover.
type batch struct {
	topic   string
	t       table
	offsets map[int32]kgo.EpochOffset // next offset to commit, by partition
	dlq     []deadLetter
}

func (b *batch) dirty() bool { return len(b.offsets) > 0 }
func (b *batch) size() int   { return b.t.Len() + len(b.dlq) }

type deadLetter struct {
	rec   *kgo.Record
	class string
}

// pending is the batch being filled for one input topic, and the one being
// inserted, if any.
type pending struct {
	batch
	since    time.Time // first record of the batch
	newTable func(sizeHint int) table
	lastSize int // rows of the last batch, to size the next one
	add      func(t table, rec *kgo.Record) error
	inflight *flushJob
}

// detach hands the filled batch over and starts an empty one.
func (p *pending) detach() *batch {
	b := &batch{topic: p.topic, t: p.t, offsets: p.offsets, dlq: p.dlq}
	p.lastSize = p.t.Len()
	p.reset()
	return b
}

func (p *pending) reset() {
	p.t = p.newTable(p.lastSize)
	p.offsets = map[int32]kgo.EpochOffset{}
	p.dlq = nil
	p.since = time.Time{}
}

// flushJob is one batch being inserted in the background.
type flushJob struct {
	b      *batch
	cancel context.CancelFunc
	done   chan struct{} // closed when the job ended
	err    error         // nil: inserted and committed; else abandoned
}

// NewSink checks cfg and returns a sink; Run starts it.
func NewSink(cfg Config) (*Sink, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, conn: cfg.Conn, log: cfg.Logger, m: newMetrics(cfg.Metrics), pending: map[string]*pending{}}
	s.side = newSide(s.log, s.m)
	// The topics are built once: each topics.X() call allocates.
	sellersT, releasesT, statsT, profilesT := topics.Sellers(), topics.Releases(), topics.ReleaseStats(), topics.UserProfiles()
	s.register(topics.Listings().Name, func(hint int) table { return newListingsTable(min(hint, s.cfg.BatchRows) + s.cfg.MaxPollRecords/4) }, func(t table, rec *kgo.Record) error {
		lt := t.(*listingsTable)
		key, err := decodeInt64Key(rec)
		if err != nil {
			return err
		}
		if rec.Value == nil {
			at, err := rowTime(rec)
			if err != nil {
				return err
			}
			lt.tombs = append(lt.tombs, tombstone{listingID: key, version: version(rec), at: at})
			return nil
		}
		if err := proto.Unmarshal(rec.Value, &s.listing); err != nil {
			return decodeErr(fmt.Errorf("decode listing: %w", err))
		}
		row, err := listingRow(rec, key, &s.listing, s.side)
		if err != nil {
			return err
		}
		lt.cols.add(&row)
		return nil
	})
	s.register(topics.Sellers().Name, func(int) table { return &rowTable{name: "sellers", columns: sellerColumns} }, func(t table, rec *kgo.Record) error {
		key := string(rec.Key)
		if key == "" {
			return invalidf("seller record without key")
		}
		var row []any
		var err error
		if rec.Value == nil {
			row, err = sellerTombstone(rec, key)
		} else {
			var v *pb.Seller
			if v, err = sellersT.Value.Decode(rec.Value); err != nil {
				return decodeErr(fmt.Errorf("decode seller: %w", err))
			}
			row, err = sellerRow(rec, key, v)
		}
		if err != nil {
			return err
		}
		t.(*rowTable).add(row...)
		return nil
	})
	s.register(topics.Releases().Name, func(int) table { return &rowTable{name: "releases", columns: releaseColumns} }, func(t table, rec *kgo.Record) error {
		key, err := decodeInt64Key(rec)
		if err != nil {
			return err
		}
		var row []any
		if rec.Value == nil {
			row, err = releaseTombstone(rec, key)
		} else {
			var v *pb.Release
			if v, err = releasesT.Value.Decode(rec.Value); err != nil {
				return decodeErr(fmt.Errorf("decode release: %w", err))
			}
			row, err = releaseRow(rec, key, v)
		}
		if err != nil {
			return err
		}
		t.(*rowTable).add(row...)
		return nil
	})
	s.register(topics.ReleaseStats().Name, func(int) table { return &rowTable{name: "release_stats", columns: statsColumns} }, func(t table, rec *kgo.Record) error {
		key, err := decodeInt64Key(rec)
		if err != nil {
			return err
		}
		var row []any
		if rec.Value == nil {
			row, err = statsTombstone(rec, key)
		} else {
			var v *pb.ReleaseStats
			if v, err = statsT.Value.Decode(rec.Value); err != nil {
				return decodeErr(fmt.Errorf("decode release stats: %w", err))
			}
			row, err = statsRow(rec, key, v)
		}
		if err != nil {
			return err
		}
		t.(*rowTable).add(row...)
		return nil
	})
	s.register(topics.UserProfiles().Name, func(int) table { return &wantlistTable{} }, func(t table, rec *kgo.Record) error {
		var v *pb.UserProfile
		if rec.Value != nil {
			var err error
			if v, err = profilesT.Value.Decode(rec.Value); err != nil {
				return decodeErr(fmt.Errorf("decode user profile: %w", err))
			}
		}
		p, err := profileRowsOf(rec, string(rec.Key), v)
		if err != nil {
			return err
		}
		t.(*wantlistTable).put(string(rec.Key), p)
		return nil
	})
	outcomesT := topics.RecOutcomes()
	s.register(outcomesT.Name, func(int) table { return &rowTable{name: "rec_outcomes", columns: recOutcomeColumns} }, func(t table, rec *kgo.Record) error {
		if rec.Value == nil {
			return invalidf("tombstone on %s", outcomesT.Name)
		}
		v, err := outcomesT.Value.Decode(rec.Value)
		if err != nil {
			return decodeErr(fmt.Errorf("decode rec outcome: %w", err))
		}
		row, err := recOutcomeRow(rec, v)
		if err != nil {
			return err
		}
		t.(*rowTable).add(row...)
		return nil
	})
	return s, nil
}

func (s *Sink) register(topic string, newTable func(int) table, add func(table, *kgo.Record) error) {
	p := &pending{batch: batch{topic: topic}, newTable: newTable, add: add}
	p.reset()
	s.pending[topic] = p
	s.order = append(s.order, p)
}

func decodeInt64Key(rec *kgo.Record) (int64, error) {
	k, err := stream.Int64Codec{}.Decode(rec.Key) // every int64-keyed topic's key encoding
	if err != nil {
		return 0, decodeErr(err)
	}
	if k <= 0 {
		return 0, invalidf("key %d is not a positive id", k)
	}
	return k, nil
}

// Topics returns the topics the sink's group consumes.
func (s *Sink) Topics() []string {
	out := make([]string, len(s.order))
	for i, p := range s.order {
		out[i] = p.topic
	}
	return out
}

// Run consumes until ctx is cancelled, then flushes and commits what is
// pending (within ShutdownTimeout) and leaves the group. It returns nil on
// a clean shutdown; an error means something pending could not be
// inserted or committed, and will be replayed by the next run.
func (s *Sink) Run(ctx context.Context) error {
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	ready := make(chan struct{})
	sideDone := make(chan error, 1)
	go func() { sideDone <- s.side.follow(sctx, s.cfg.Brokers, s.cfg.KafkaOpts, s.cfg.SideLoadTimeout, ready) }()
	select {
	case <-ready:
	case <-ctx.Done():
		scancel()
		return <-sideDone
	}
	select {
	case err := <-sideDone:
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	default:
	}

	opts := append([]kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.ConsumerGroup(s.cfg.Group),
		kgo.ConsumeTopics(s.Topics()...),
		// Eager rebalancing: every rebalance revokes all partitions and
		// the next assignment restarts from the committed offsets, which
		// is what makes dropping an unflushable batch on revoke safe.
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onLost),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(32 << 20),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.WithLogger(kgoLogger{s.log}),
	}, s.cfg.KafkaOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		scancel()
		<-sideDone
		return fmt.Errorf("clickhouse sink: kafka client: %w", err)
	}
	s.mu.Lock()
	s.cl = cl
	s.mu.Unlock()

	loopErr := s.loop(ctx)

	// Shutdown: let the flushes in flight finish, then insert and commit
	// what is pending, with a context of its own since ctx is done.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	s.mu.Lock()
	s.closing.Store(true)
	var flushErr error
	for _, p := range s.order {
		if err := s.finishInflight(fctx, p); err != nil {
			flushErr = errors.Join(flushErr, err)
		}
	}
	for _, p := range s.order {
		if p.dirty() && flushErr == nil {
			b := p.detach()
			flushErr = s.flushRetrying(fctx, b)
		}
	}
	s.errMu.Lock()
	flushErr = errors.Join(flushErr, s.shutdownErr)
	s.errMu.Unlock()
	s.mu.Unlock()
	cancel()
	cl.CloseAllowingRebalance()
	scancel()
	sideErr := <-sideDone
	if flushErr != nil {
		flushErr = fmt.Errorf("clickhouse sink: final flush (will be replayed): %w", flushErr)
	}
	return errors.Join(loopErr, flushErr, sideErr)
}

func (s *Sink) loop(ctx context.Context) error {
	for {
		s.mu.Lock()
		s.flushDue(ctx, time.Now())
		wait := s.nextFlush(time.Now())
		s.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
		s.cl.AllowRebalance()
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := s.cl.PollRecords(pctx, s.cfg.MaxPollRecords)
		cancel()
		if fs.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				s.log.Warn("clickhouse sink: fetch", "topic", t, "partition", p, "err", err)
			}
		})
		s.mu.Lock()
		s.side.mu.RLock()
		now := time.Now()
		fs.EachRecord(func(rec *kgo.Record) { s.add(rec, now) })
		s.side.mu.RUnlock()
		s.mu.Unlock()
	}
}

// add puts rec into its table's batch, or its dead letter into the batch's
// rejects; either way its offset is committed with the batch.
func (s *Sink) add(rec *kgo.Record, now time.Time) {
	p := s.pending[rec.Topic]
	if p == nil {
		return
	}
	if s.first.Load() == 0 {
		s.first.Store(now.UnixNano())
	}
	if err := p.add(p.t, rec); err != nil {
		s.log.Warn("clickhouse sink: dead letter", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
		p.dlq = append(p.dlq, deadLetter{s.deadLetter(rec, err), reasonClass(err)})
	}
	if p.since.IsZero() {
		p.since = now
	}
	p.offsets[rec.Partition] = kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset + 1}
}

// maxDeadLetterBytes keeps a dead letter under Kafka's default 1 MB limit.
const maxDeadLetterBytes = 900 << 10

func (s *Sink) deadLetter(rec *kgo.Record, err error) *kgo.Record {
	dl := stream.NewDeadLetter(rec, Processor, reasonClass(err), err, time.Now(), maxDeadLetterBytes)
	b, _ := topics.DeadLetters().Value.Append(nil, dl) // a DeadLetter always encodes
	return &kgo.Record{Topic: topics.DeadLetters().Name, Key: rec.Key, Value: b}
}

// nextFlush is how long the loop may poll before a batch is due.
func (s *Sink) nextFlush(now time.Time) time.Duration {
	wait := s.cfg.FlushInterval
	for _, p := range s.order {
		if p.dirty() {
			wait = min(wait, p.since.Add(s.cfg.FlushInterval).Sub(now))
		}
	}
	return max(wait, 5*time.Millisecond)
}

// flushDue starts a flush of every batch that is full or old enough. A
// table whose previous flush is still running is waited for first: that is
// the backpressure that stops polling while ClickHouse is slow or down.
func (s *Sink) flushDue(ctx context.Context, now time.Time) {
	for _, p := range s.order {
		if p.inflight != nil {
			select {
			case <-p.inflight.done:
				s.reap(p)
			default:
			}
		}
		if !p.dirty() || (p.size() < s.cfg.BatchRows && now.Sub(p.since) < s.cfg.FlushInterval) {
			continue
		}
		gen := s.gen
		if !s.waitInflight(ctx, p) || s.gen != gen {
			return // shutting down, or a rebalance took the batches
		}
		s.startFlush(ctx, p)
	}
}

// waitInflight waits for p's flush in flight, with mu released so that a
// rebalance blocked behind it can run. It reports false when ctx ended.
func (s *Sink) waitInflight(ctx context.Context, p *pending) bool {
	for p.inflight != nil {
		job := p.inflight
		s.mu.Unlock()
		s.cl.AllowRebalance()
		select {
		case <-job.done:
		case <-ctx.Done():
		}
		s.mu.Lock()
		if ctx.Err() != nil {
			return false
		}
		if p.inflight == job {
			s.reap(p)
		}
	}
	return true
}

func (s *Sink) reap(p *pending) {
	if err := p.inflight.err; err != nil {
		s.log.Warn("clickhouse sink: flush abandoned; its records will be replayed", "table", p.inflight.b.t.Name(), "err", err)
	}
	p.inflight = nil
}

// startFlush hands p's batch to a goroutine that inserts it (retrying until
// it succeeds or is cancelled) and commits its offsets.
func (s *Sink) startFlush(ctx context.Context, p *pending) {
	jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	job := &flushJob{b: p.detach(), cancel: cancel, done: make(chan struct{})}
	p.inflight = job
	go func() {
		defer close(job.done)
		defer cancel()
		job.err = s.flushRetrying(jctx, job.b)
	}()
}

// finishInflight waits for p's flush in flight until ctx ends, then cancels
// it. Called with mu held (flush jobs never take it).
func (s *Sink) finishInflight(ctx context.Context, p *pending) error {
	job := p.inflight
	if job == nil {
		return nil
	}
	select {
	case <-job.done:
	case <-ctx.Done():
		job.cancel()
		<-job.done
	}
	p.inflight = nil
	if job.err != nil {
		return fmt.Errorf("flush %s: %w", job.b.t.Name(), job.err)
	}
	return nil
}

// flushRetrying flushes b until it succeeds or ctx ends, pausing fetching
// while it fails. It does not touch the pending state, so it runs without
// mu.
func (s *Sink) flushRetrying(ctx context.Context, b *batch) error {
	backoff := s.cfg.RetryMin
	failing := false
	defer func() {
		if failing {
			s.setFailing(-1)
		}
	}()
	for {
		err := s.flush(ctx, b)
		if err == nil {
			return nil
		}
		name := b.t.Name()
		s.m.failures.WithLabelValues(name).Inc()
		if ctx.Err() != nil {
			return fmt.Errorf("flush %s: %w (%w)", name, ctx.Err(), err)
		}
		if !failing {
			failing = true
			s.setFailing(1)
		}
		s.log.Warn("clickhouse sink: flush failed; fetching paused, retrying", "table", name, "rows", b.t.Len(), "backoff", backoff, "err", err)
		// Jitter keeps several sinks from hammering a recovering server
		// in step.
		d := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush %s: %w (%w)", name, ctx.Err(), err)
		case <-time.After(d):
		}
		s.m.retries.WithLabelValues(name).Inc()
		backoff = min(2*backoff, s.cfg.RetryMax)
	}
}

// setFailing counts failing flushes; fetching is paused while any fails.
func (s *Sink) setFailing(delta int32) {
	switch n := s.failing.Add(delta); {
	case delta > 0 && n == 1:
		s.cl.PauseFetchTopics(s.Topics()...)
		s.m.paused.Set(1)
	case delta < 0 && n == 0:
		s.cl.ResumeFetchTopics(s.Topics()...)
		s.m.paused.Set(0)
		s.log.Info("clickhouse sink: inserts succeed again; fetching resumed")
	}
}

// flush sends b's dead letters, inserts its rows and commits its offsets.
// Once the rows are in, a failed commit is only logged: the rows will be
// replayed and deduplicated, and the next commit covers the offsets.
func (s *Sink) flush(ctx context.Context, b *batch) error {
	if len(b.dlq) > 0 {
		recs := make([]*kgo.Record, len(b.dlq))
		for i, d := range b.dlq {
			recs[i] = d.rec
		}
		pctx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout)
		err := s.cl.ProduceSync(pctx, recs...).FirstErr()
		cancel()
		if err != nil {
			return fmt.Errorf("dead-letter %d records: %w", len(b.dlq), err)
		}
		for _, d := range b.dlq {
			s.m.dlq.WithLabelValues(b.topic, d.class).Inc()
		}
		b.dlq = nil
	}
	if n := b.t.Len(); n > 0 {
		bctx, done := batchContext(ctx, s.cfg.InsertTimeout)
		start := time.Now()
		rows, err := b.t.Insert(bctx, s.conn)
		done()
		if err != nil {
			return err
		}
		name := b.t.Name()
		s.m.insertSecs.WithLabelValues(name).Observe(time.Since(start).Seconds())
		s.m.batchRows.WithLabelValues(name).Observe(float64(rows))
		s.m.rows.WithLabelValues(name).Add(float64(rows))
		b.t = emptyTable{name} // inserted: a retry of the commit must not insert again
	}
	if err := s.commit(ctx, b); err != nil {
		s.m.commitErrors.Inc()
		s.log.Warn("clickhouse sink: commit after insert failed; the batch will be replayed if no later commit covers it", "topic", b.topic, "err", err)
		if s.closing.Load() {
			s.errMu.Lock()
			s.shutdownErr = errors.Join(s.shutdownErr, fmt.Errorf("commit %s: %w", b.topic, err))
			s.errMu.Unlock()
		}
	}
	b.offsets = nil
	return nil
}

// emptyTable stands in for a batch's rows once they are inserted.
type emptyTable struct{ name string }

func (e emptyTable) Name() string                            { return e.name }
func (emptyTable) Len() int                                  { return 0 }
func (emptyTable) Insert(context.Context, Conn) (int, error) { return 0, nil }

func (s *Sink) commit(ctx context.Context, b *batch) error {
	if len(b.offsets) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var cerr error
	s.cl.CommitOffsetsSync(cctx, map[string]map[int32]kgo.EpochOffset{b.topic: b.offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err != nil {
				cerr = err
				return
			}
			for _, t := range resp.Topics {
				for _, pt := range t.Partitions {
					if e := kerr.ErrorForCode(pt.ErrorCode); e != nil {
						cerr = fmt.Errorf("partition %d: %w", pt.Partition, e)
					}
				}
			}
		})
	return cerr
}

// onRevoked runs before an (eager) rebalance gives every partition up: the
// flushes in flight get InsertTimeout to finish, the filling batches are
// flushed once, without retrying (the group is waiting), and whatever is
// still pending is dropped uncommitted, to be replayed by the partitions'
// next owner from the committed offsets.
func (s *Sink) onRevoked(ctx context.Context, _ *kgo.Client, _ map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.InsertTimeout)
	defer cancel()
	for _, p := range s.order {
		if err := s.finishInflight(wctx, p); err != nil {
			s.log.Warn("clickhouse sink: flush in flight abandoned on revoke; the batch will be replayed", "err", err)
		}
	}
	if !s.closing.Load() {
		for _, p := range s.order {
			if !p.dirty() {
				continue
			}
			if err := s.flush(wctx, p.detach()); err != nil {
				s.log.Warn("clickhouse sink: flush on revoke failed; the batch will be replayed", "table", p.t.Name(), "err", err)
				break
			}
		}
	}
	s.dropAll()
}

// onLost runs when the group took the partitions away (session expired):
// nothing may be committed any more, so the flushes are cancelled and the
// batches dropped.
func (s *Sink) onLost(context.Context, *kgo.Client, map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.order {
		if p.inflight != nil {
			p.inflight.cancel()
			<-p.inflight.done
			p.inflight = nil
		}
	}
	s.dropAll()
}

func (s *Sink) dropAll() {
	for _, p := range s.order {
		p.reset()
	}
	s.gen++
}

// kgoLogger sends franz-go's logs to slog; its info level is chatty, so it
// lands at debug.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	switch ctx := context.Background(); {
	case k.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelInfo
	case k.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	default:
		return kgo.LogLevelError
	}
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	}
	k.l.Log(context.Background(), lv, "kgo: "+msg, keyvals...)
}

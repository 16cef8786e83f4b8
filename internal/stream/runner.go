package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cratestream/cratestream/internal/kv"
)

// Config configures a Runner. Zero values get the defaults documented on
// each field.
type Config struct {
	// Brokers are the seed brokers.
	Brokers []string
	// InstanceID names this instance: it must be stable across restarts of
	// the same instance (it is the transactional id suffix, so a restarted
	// instance fences its crashed predecessor) and unique in the group.
	// Defaults to the host name.
	InstanceID string
	// StateDir holds on-disk stores; defaults to a temporary directory.
	StateDir string
	// CommitInterval is how often offsets and state are committed (one
	// transaction per interval in exactly-once mode). Default 100ms.
	CommitInterval time.Duration
	// MaxPollRecords bounds one polled batch. Default 20,000.
	MaxPollRecords int
	// MaxRecordBytes is the largest input record (key + value) processed;
	// larger ones go to the dead-letter topic. Default 1 MiB.
	MaxRecordBytes int
	// TransactionTimeout bounds how long a crashed instance's open
	// transaction can block read_committed consumers. Default 10s.
	TransactionTimeout time.Duration
	// DLQTopic receives dead letters. Default "dlq.v1".
	DLQTopic string
	// AdvertiseAddr is the host:port where this instance serves store
	// lookups; other instances find it in the group's client ids.
	AdvertiseAddr string
	// ReplicationFactor of internal topics; default -1 (broker default).
	ReplicationFactor int16
	// ParkedTasks is how many revoked tasks keep their stores open so a
	// reassignment replays only the changelog tail. Default 256.
	ParkedTasks int
	// RetryBackoff bounds the pause of a partition after a transient
	// failure: it doubles from Min up to Max. Default 100ms..10s.
	RetryBackoffMin, RetryBackoffMax time.Duration
	// Logger defaults to slog.Default.
	Logger *slog.Logger
	// Metrics receives the runner's metrics; nil uses a private registry.
	Metrics prometheus.Registerer
	// ClientOpts are appended to every Kafka client the runner creates.
	ClientOpts []kgo.Opt
	// ProducerLinger is the producers' linger. Default 1ms: outputs are
	// visible within milliseconds and batches still form under load.
	ProducerLinger time.Duration
	// SessionTimeout is how long the group waits for a silent member
	// before moving its partitions. Default 10s (Kafka's 45s is a long
	// outage for a killed instance that is not restarted); brokers
	// refuse less than their group.min.session.timeout.ms (6s by
	// default). Members are static (their group instance id is
	// InstanceID), so a killed instance restarted within the timeout
	// gets its partitions back at once, without a rebalance.
	SessionTimeout time.Duration
	// Failpoints makes the process kill itself (SIGKILL) at the n-th hit
	// of a named point: "eos-before-end:3,alo-before-commit:1". For the
	// chaos suite only; empty (the default) disables them. See
	// failpoint.go for the names.
	Failpoints string
}

func (c *Config) defaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("stream: no brokers configured")
	}
	if c.InstanceID == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "instance"
		}
		c.InstanceID = h
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = 100 * time.Millisecond
	}
	if c.MaxPollRecords <= 0 {
		c.MaxPollRecords = 20000
	}
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = 1 << 20
	}
	if c.TransactionTimeout <= 0 {
		c.TransactionTimeout = 10 * time.Second
	}
	if c.DLQTopic == "" {
		c.DLQTopic = "dlq.v1"
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.ParkedTasks <= 0 {
		c.ParkedTasks = 256
	}
	if c.RetryBackoffMin <= 0 {
		c.RetryBackoffMin = 100 * time.Millisecond
	}
	if c.RetryBackoffMax <= 0 {
		c.RetryBackoffMax = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = prometheus.NewRegistry()
	}
	if c.ProducerLinger == 0 {
		c.ProducerLinger = time.Millisecond
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	return nil
}

type tp struct {
	topic     string
	partition int32
}

// task is one assigned partition: its stores, timers and broadcast
// positions.
type task struct {
	partition int32
	stores    []storeState
	// lastOffset[i] is the last changelog offset produced for stores[i],
	// set by produce promises; -1 when nothing was produced since the last
	// commit.
	lastOffset []atomic.Int64
	timers     *timerIndex
	bpos       map[tp]int64 // next broadcast offset to deliver
	// bposUnsaved: bpos holds starting positions not yet in the store.
	bposUnsaved bool
	parkedAt    time.Time
}

// Runner runs one instance of a processor.
type Runner struct {
	p   *Processor
	cfg Config
	log *slog.Logger
	m   *metrics

	// mu guards the task maps. The loop holds it while processing and
	// committing; rebalance callbacks take it, so a callback never sees a
	// half-processed batch.
	mu         sync.Mutex
	tmu        sync.RWMutex // guards tasks and partitions for lookups; written under mu
	tasks      map[int32]*task
	parked     map[int32]*task
	partitions int32
	groupTopic map[string]bool // stateful group inputs
	inputs     map[string]input
	bcast      map[string]input
	timerDefs  map[string]timerDef

	cl   *kgo.Client
	sess *kgo.GroupTransactSession
	adm  *kadm.Client
	bcl  *kgo.Client // broadcast consumer

	inTxn      bool
	dirty      bool
	doomed     bool // a callback discarded the work of the open transaction
	lastCommit time.Time
	window     map[tp]int64 // first offset processed per partition since the last commit
	paused     map[tp]time.Time
	hold       time.Time // timers and broadcasts wait until then after a transient failure

	// At-least-once commit state (see advanceCommit).
	next       map[tp]int64 // next offset per partition processed since the last snapshot
	pending    map[string]map[int32]kgo.EpochOffset
	pendingGen int
	gen        int
	gens       [2]atomic.Int64 // records in flight per producer generation
	backoff    map[tp]time.Duration
	blocked    atomic.Bool
	fatal      atomic.Pointer[error]
	ready      atomic.Bool
	killed     atomic.Bool
	loopAlive  atomic.Int64 // unix nanos of the last loop iteration

	produceMu    sync.Mutex
	produceErr   error
	recOut       []*kgo.Record
	undo         []func()
	ctx          Ctx
	dlqCount     atomic.Int64
	processed    atomic.Int64
	restoredN    atomic.Int64
	lastRestore  atomic.Int64
	lastRestored atomic.Int64
	sessionFails atomic.Int64

	lookupOnce sync.Once
	lk         *lookupState

	fail *failpoints

	// cbMu guards inEnd and released. While the loop is inside the
	// session's End, a revoke or lost callback must not wait for r.mu:
	// kgo runs it holding the session's lock that End needs, and End may
	// be waiting for exactly that callback (see endTxn). It leaves its
	// partitions in released instead, for the loop to drop once End
	// returned.
	cbMu     sync.Mutex
	inEnd    bool
	released []release
}

// release is a revoke or lost callback the loop has still to apply.
type release struct {
	parts map[string][]int32
	kind  string
}

// NewRunner prepares p to run with cfg.
func NewRunner(p *Processor, cfg Config) (*Runner, error) {
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.StateDir == "" {
		d, err := os.MkdirTemp("", "cratestream-state-")
		if err != nil {
			return nil, err
		}
		cfg.StateDir = d
	}
	r := &Runner{
		p:          p,
		cfg:        cfg,
		log:        cfg.Logger.With("processor", p.name, "instance", cfg.InstanceID),
		m:          newMetrics(cfg.Metrics, p.name),
		tasks:      make(map[int32]*task),
		parked:     make(map[int32]*task),
		groupTopic: make(map[string]bool),
		inputs:     make(map[string]input),
		bcast:      make(map[string]input),
		timerDefs:  make(map[string]timerDef),
		window:     make(map[tp]int64),
		next:       make(map[tp]int64),
		paused:     make(map[tp]time.Time),
		backoff:    make(map[tp]time.Duration),
	}
	for _, in := range p.inputs {
		r.inputs[in.topic()] = in
		if !in.stateless() {
			r.groupTopic[in.topic()] = true
		}
	}
	for _, in := range p.broadcasts {
		r.bcast[in.topic()] = in
	}
	for _, t := range p.timers {
		r.timerDefs[t.timerName()] = t
	}
	if len(r.inputs) == 0 {
		return nil, fmt.Errorf("processor %s has no inputs", p.name)
	}
	if cfg.Failpoints != "" {
		fp, err := parseFailpoints(cfg.Failpoints)
		if err != nil {
			return nil, err
		}
		r.fail = fp
		r.log.Warn("failpoints armed: this process will SIGKILL itself", "failpoints", cfg.Failpoints)
	}
	r.ctx.r = r
	return r, nil
}

// Processor returns the definition being run.
func (r *Runner) Processor() *Processor { return r.p }

// Ready reports whether the instance has joined its group, restored its
// tasks and is processing.
func (r *Runner) Ready() bool { return r.ready.Load() }

// Healthy reports whether the processing loop is alive: it iterated in the
// last 30 seconds and no fatal error stopped it.
func (r *Runner) Healthy() error {
	if f := r.fatal.Load(); f != nil {
		return *f
	}
	last := r.loopAlive.Load()
	if last == 0 {
		return nil // starting
	}
	if age := time.Since(time.Unix(0, last)); age > 30*time.Second {
		return fmt.Errorf("processing loop stalled for %s", age.Round(time.Second))
	}
	return nil
}

// Stats are counters for progress output and tests.
type Stats struct {
	Processed   int64 // input records handled (incl. dead-lettered)
	DeadLetters int64
	Restored    int64 // changelog records replayed
	Tasks       int
	// LastRestore is the duration of the latest restore of newly assigned
	// tasks and LastRestored the records it replayed.
	LastRestore  time.Duration
	LastRestored int64
	// SessionFailures counts sessions that failed and were restarted.
	SessionFailures int64
}

// Stats returns the runner's counters.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	n := len(r.tasks)
	r.mu.Unlock()
	return Stats{Processed: r.processed.Load(), DeadLetters: r.dlqCount.Load(), Restored: r.restoredN.Load(), Tasks: n,
		LastRestore: time.Duration(r.lastRestore.Load()), LastRestored: r.lastRestored.Load(), SessionFailures: r.sessionFails.Load()}
}

// Run processes until ctx is canceled, then commits, leaves the group and
// closes the stores. Transient failures of a whole session (a fenced
// producer, a broker outage beyond the client's retries) restart the session
// with backoff; configuration errors (non-co-partitioned inputs) return.
func (r *Runner) Run(ctx context.Context) error {
	defer r.closeLookups()
	defer r.closeStores()
	if err := r.startGlobals(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	backoff := r.cfg.RetryBackoffMin
	for {
		err := r.runSession(ctx)
		if ctx.Err() != nil || r.killed.Load() {
			if err != nil && !errors.Is(err, context.Canceled) {
				r.log.Error("session ended with an error during shutdown", "err", err)
			}
			return nil
		}
		var ce *configError
		var pe *panicError
		switch {
		case errors.As(err, &ce):
			r.fatal.Store(&err)
			return err
		case errors.As(err, &pe):
			// A bug, not a fault of the world: the state it left
			// cannot be trusted, so the process ends (and its
			// supervisor restarts it from the changelogs).
			r.log.Error("processing loop panicked; stopping", "panic", pe.value, "stack", string(pe.stack))
			r.fatal.Store(&err)
			return err
		}
		r.log.Error("session failed; restarting", "err", err, "backoff", backoff)
		r.sessionFails.Add(1)
		r.m.sessionFails.Inc()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(jitter(backoff)):
		}
		backoff = min(2*backoff, r.cfg.RetryBackoffMax)
	}
}

// startGlobals runs the processor's global tables for the life of ctx and
// waits until each has caught up.
func (r *Runner) startGlobals(ctx context.Context) error {
	for _, g := range r.p.globals {
		go func() {
			for ctx.Err() == nil {
				if err := g.Run(ctx); err != nil && ctx.Err() == nil {
					r.log.Error("global table failed; restarting", "topic", g.Topic(), "err", err)
					time.Sleep(time.Second)
					continue
				}
				return
			}
		}()
	}
	for _, g := range r.p.globals {
		start := time.Now()
		select {
		case <-g.CaughtUp():
			r.log.Info("global table caught up", "topic", g.Topic(), "in", time.Since(start).Round(time.Millisecond))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// configError is an error a restart cannot fix.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// panicError is a panic of the processing loop outside a handler (a
// handler's panic dead-letters its record): a bug in the runtime, a codec or
// a store.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("processing loop panicked: %v", e.value) }

func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (r *Runner) baseOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(r.cfg.Brokers...),
		kgo.ClientID("cratestream:" + r.p.name + ":" + r.cfg.InstanceID + "@" + r.cfg.AdvertiseAddr),
		kgo.WithLogger(kgoLogger{r.log}),
	}
	return append(opts, r.cfg.ClientOpts...)
}

func (r *Runner) runSession(ctx context.Context) (err error) {
	adm, err := kgo.NewClient(r.baseOpts()...)
	if err != nil {
		return &configError{err}
	}
	r.adm = kadm.NewClient(adm)
	defer adm.Close()
	defer r.leaveIfStopping(ctx)

	if err := r.prepareTopics(ctx); err != nil {
		return err
	}

	topics := make([]string, 0, len(r.inputs))
	for t := range r.inputs {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	changelogs := make([]string, 0, len(r.p.stores))
	for _, st := range r.p.stores {
		changelogs = append(changelogs, st.changelogTopic())
	}
	opts := append(r.baseOpts(),
		kgo.RecordPartitioner(newTaskPartitioner(changelogs)),
		kgo.ConsumerGroup(r.p.name),
		kgo.ConsumeTopics(topics...),
		kgo.InstanceID(r.cfg.InstanceID),
		kgo.SessionTimeout(r.cfg.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, r.cfg.SessionTimeout/5)),
		// Tasks are partition numbers shared by every co-partitioned
		// input, so all inputs' partition p must go to one member: the
		// range assignor does exactly that.
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onLost),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { r.blocked.Store(true) }),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.ProducerLinger(r.cfg.ProducerLinger),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(200000),
		kgo.FetchMaxBytes(64<<20),
		// A resumed or rewound partition waits for the fetch in flight:
		// keep that wait short (Kafka's default; kgo's is 5s).
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if r.p.mode == ExactlyOnce {
		opts = append(opts,
			kgo.TransactionalID(r.p.name+"-"+r.cfg.InstanceID),
			kgo.TransactionTimeout(r.cfg.TransactionTimeout),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		)
		r.sess, err = kgo.NewGroupTransactSession(opts...)
		if err != nil {
			return &configError{err}
		}
		r.cl = r.sess.Client()
	} else {
		r.cl, err = kgo.NewClient(opts...)
		if err != nil {
			return &configError{err}
		}
	}
	defer r.closeClient()

	return r.loop(ctx)
}

// prepareTopics checks that the stateful inputs are co-partitioned and
// creates the internal topics (changelogs, repartition topics) with the
// same partition count.
func (r *Runner) prepareTopics(ctx context.Context) error {
	var names []string
	for t := range r.inputs {
		names = append(names, t)
	}
	for _, s := range r.p.stores {
		if !s.ownChangelog() {
			names = append(names, s.changelogTopic())
		}
	}
	internal := make(map[string]bool)
	for _, s := range r.p.internal {
		internal[s.Name] = true
	}
	sort.Strings(names)
	details, err := r.adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	counts := make(map[string]int32) // joined: stateful inputs and shared changelogs
	var sources int32                // largest stateless (repartition source) input
	var missing []string
	for _, n := range names {
		d, ok := details[n]
		if !ok || d.Err != nil {
			if !internal[n] {
				missing = append(missing, n)
			}
			continue
		}
		if in, isInput := r.inputs[n]; isInput && in.stateless() {
			sources = max(sources, int32(len(d.Partitions)))
			continue
		}
		counts[n] = int32(len(d.Partitions))
	}
	if len(missing) > 0 {
		return &configError{fmt.Errorf("processor %s: input topics missing: %v (run: cratestream topics create)", r.p.name, missing)}
	}
	if err := checkCoPartitioned(r.p.name, counts); err != nil {
		return &configError{err}
	}
	// Tasks follow the joined inputs; a processor fed only through its
	// repartition topics takes the partition count of their sources.
	var n int32
	for _, c := range counts {
		n = c
	}
	if n == 0 {
		n = sources
	}
	if n == 0 {
		return &configError{fmt.Errorf("processor %s: cannot determine the partition count of its inputs", r.p.name)}
	}
	r.tmu.Lock()
	r.partitions = n
	r.tmu.Unlock()

	var specs []TopicSpec
	for _, s := range r.p.stores {
		if s.ownChangelog() {
			specs = append(specs, TopicSpec{Name: s.changelogTopic(), Partitions: n, Cleanup: CleanupCompact})
		}
	}
	for _, s := range r.p.internal {
		s.Partitions = n
		specs = append(specs, s)
	}
	if _, err := CreateTopics(ctx, r.adm, specs, r.cfg.ReplicationFactor); err != nil {
		return err
	}
	if err := CheckTopics(ctx, r.adm, specs); err != nil {
		return &configError{fmt.Errorf("processor %s internal topics: %w", r.p.name, err)}
	}
	return nil
}

// CoPartitionError says which joined inputs have different partition counts.
type CoPartitionError struct {
	Processor string
	Counts    map[string]int32
}

func (e *CoPartitionError) Error() string {
	names := make([]string, 0, len(e.Counts))
	for n := range e.Counts {
		names = append(names, n)
	}
	sort.Strings(names)
	s := "processor " + e.Processor + ": inputs are not co-partitioned (every joined input and changelog needs the same partition count):"
	for _, n := range names {
		s += fmt.Sprintf(" %s=%d", n, e.Counts[n])
	}
	return s
}

func checkCoPartitioned(proc string, counts map[string]int32) error {
	var first int32 = -1
	for _, c := range counts {
		if first == -1 {
			first = c
		} else if c != first {
			return &CoPartitionError{Processor: proc, Counts: counts}
		}
	}
	return nil
}

// leaveIfStopping takes this instance out of its group when the run is
// stopping cleanly. A static member's Close does not leave (so that a crash
// and restart keeps the assignment without a rebalance); a deliberate stop
// should hand its partitions over now, not after the session timeout.
func (r *Runner) leaveIfStopping(ctx context.Context) {
	if ctx.Err() == nil || r.killed.Load() {
		return
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	resp, err := r.adm.LeaveGroup(lctx, kadm.LeaveGroup(r.p.name).InstanceIDs(r.cfg.InstanceID).Reason("instance stopping"))
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		r.log.Warn("leave group; the partitions move after the session timeout", "err", err, "session_timeout", r.cfg.SessionTimeout)
	}
}

func (r *Runner) closeClient() {
	if r.bcl != nil {
		r.bcl.Close()
		r.bcl = nil
	}
	if r.cl != nil {
		// Close leaves the group; the revoke callback parks the tasks.
		// Our last poll may still block rebalances: release it, or the
		// leave waits for us forever.
		r.cl.CloseAllowingRebalance()
	}
	r.cl, r.sess = nil, nil
	r.ready.Store(false)
}

func (r *Runner) closeStores() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tmu.Lock()
	defer r.tmu.Unlock()
	for p, t := range r.tasks {
		r.closeTask(t)
		delete(r.tasks, p)
	}
	for p, t := range r.parked {
		r.closeTask(t)
		delete(r.parked, p)
	}
}

func (r *Runner) closeTask(t *task) {
	for _, s := range t.stores {
		if err := s.base().Close(); err != nil {
			r.log.Error("close store", "partition", t.partition, "err", err)
		}
	}
}

// loop is the processing loop of one session.
func (r *Runner) loop(ctx context.Context) error {
	r.lastCommit = time.Now()
	for {
		r.loopAlive.Store(time.Now().UnixNano())
		if f := r.fatal.Load(); f != nil {
			return *f
		}
		if ctx.Err() != nil || r.killed.Load() {
			return r.shutdown()
		}
		wait := r.nextWake()
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := r.cl.PollRecords(pctx, r.cfg.MaxPollRecords)
		cancel()
		if fs.IsClientClosed() {
			return errors.New("client closed")
		}
		if r.killed.Load() {
			return nil
		}
		var fetchErr error
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			r.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
			fetchErr = err
		})
		_ = fetchErr // retriable fetch errors are retried by the client

		if err := r.iterateLocked(ctx, fs); err != nil {
			return err
		}
	}
}

// iterateLocked runs iterate under r.mu. A panic there cannot be handled
// (iterate may have half-changed the tasks' state): it becomes the session's
// error, with the lock released on the way out, since the group's revoke
// callback, run when the client closes, waits for it.
func (r *Runner) iterateLocked(ctx context.Context, fs kgo.Fetches) (err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{value: p, stack: debug.Stack()}
			// Nothing may commit what the panic left: the revoke
			// callback of the client's close checks this.
			r.setFatal(err)
		}
	}()
	return r.iterate(ctx, fs)
}

// nextWake is how long a poll may block: until the next commit is due, the
// next timer fires or broadcast records may be waiting.
func (r *Runner) nextWake() time.Duration {
	wait := 250 * time.Millisecond
	if r.dirty || len(r.next) > 0 {
		wait = min(wait, time.Until(r.lastCommit.Add(r.cfg.CommitInterval)))
	}
	if r.pending != nil {
		wait = min(wait, 2*time.Millisecond)
	}
	if len(r.bcast) > 0 {
		wait = min(wait, 20*time.Millisecond)
	}
	r.mu.Lock()
	for _, t := range r.tasks {
		if at, ok := t.timers.next(); ok {
			wait = min(wait, time.Until(time.UnixMilli(at)))
		}
	}
	r.mu.Unlock()
	for _, at := range r.paused {
		wait = min(wait, time.Until(at))
	}
	return max(wait, time.Millisecond)
}

// iterate processes one polled batch, due timers and broadcast records, and
// commits when due. It runs with r.mu held.
func (r *Runner) iterate(ctx context.Context, fs kgo.Fetches) error {
	start := time.Now()
	r.ctx.Context = ctx
	r.ctx.now = start
	n := 0
	var transient *transientError
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		if transient != nil || len(fp.Records) == 0 {
			return
		}
		key := tp{fp.Topic, fp.Partition}
		if _, ok := r.paused[key]; ok {
			return // buffered before the pause; refetched after the retry
		}
		in := r.inputs[fp.Topic]
		var t *task
		if !in.stateless() {
			t = r.tasks[fp.Partition]
			if t == nil {
				// Not ours (revoked between fetch and poll): the
				// new owner processes it.
				return
			}
		}
		if _, ok := r.window[key]; !ok {
			r.window[key] = fp.Records[0].Offset
		}
		if err := r.ensureTxn(); err != nil {
			transient = &transientError{key, fp.Records[0].Offset, err}
			return
		}
		for _, rec := range fp.Records {
			if err := r.handleRecord(in, t, rec); err != nil {
				transient = &transientError{key, rec.Offset, err}
				return
			}
			n++
		}
		last := fp.Records[len(fp.Records)-1]
		if r.p.mode == AtLeastOnce {
			r.next[key] = last.Offset + 1
		}
		r.m.lag.WithLabelValues(fp.Topic, strconv.Itoa(int(fp.Partition))).Set(float64(fp.HighWatermark - last.Offset - 1))
		r.m.recordsIn.WithLabelValues(fp.Topic).Add(float64(len(fp.Records)))
		delete(r.backoff, key)
	})
	if transient == nil {
		transient = r.fireTimers()
	}
	if transient == nil {
		transient = r.deliverBroadcast()
	}
	if transient != nil {
		return r.retryLater(ctx, transient)
	}
	if n > 0 {
		r.processed.Add(int64(n))
		end := time.Now()
		r.m.batch.Observe(end.Sub(start).Seconds())
		fs.EachRecord(func(rec *kgo.Record) {
			r.m.latency.Observe(end.Sub(rec.Timestamp).Seconds())
		})
	}
	if r.p.mode == AtLeastOnce {
		// Changelog writes go out per batch for latency; offsets follow
		// asynchronously. Rebalances may proceed at once: the revoke
		// callback commits synchronously.
		if r.dirty {
			if err := r.flushStores(); err != nil {
				return err
			}
			if err := r.applyWrites(); err != nil {
				return err
			}
		}
		if err := r.advanceCommit(ctx); err != nil {
			return err
		}
		r.blocked.Store(false)
		r.cl.AllowRebalance()
		r.resumeDue()
		return nil
	}
	if r.dirty && (time.Since(r.lastCommit) >= r.cfg.CommitInterval || r.blocked.Load() || ctx.Err() != nil) {
		if err := r.commit(ctx); err != nil {
			return err
		}
	}
	if !r.dirty {
		r.blocked.Store(false)
		r.cl.AllowRebalance()
	}
	r.resumeDue()
	return nil
}

type transientError struct {
	tp     tp
	offset int64
	err    error
}

func (e *transientError) Error() string {
	return fmt.Sprintf("%s/%d@%d: %v", e.tp.topic, e.tp.partition, e.offset, e.err)
}

func (r *Runner) ensureTxn() error {
	if r.p.mode != ExactlyOnce || r.inTxn {
		return nil
	}
	if err := r.sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	r.inTxn = true
	return nil
}

// handleRecord runs the handler of one record. Bad input is dead-lettered
// and nil returned; a transient failure is returned with the record's
// effects undone.
func (r *Runner) handleRecord(in input, t *task, rec *kgo.Record) error {
	c := &r.ctx
	c.t, c.rec = t, rec
	r.dirty = true
	if size := len(rec.Key) + len(rec.Value); size > r.cfg.MaxRecordBytes {
		r.deadLetter(rec, invalidClass("oversized", fmt.Errorf("record of %d bytes exceeds the %d byte limit", size, r.cfg.MaxRecordBytes)))
		return nil
	}
	err := r.safeCall(func() error { return in.handle(c, rec) })
	if err == nil {
		r.commitRecord()
		return nil
	}
	r.rollbackRecord()
	if IsInvalid(err) {
		r.deadLetter(rec, err)
		return nil
	}
	return err
}

// safeCall runs a handler, turning a panic into bad input: one record must
// not take the processor down.
func (r *Runner) safeCall(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("handler panic", "panic", p, "stack", string(debug.Stack()))
			err = invalidClass("panic", fmt.Errorf("handler panicked: %v", p))
		}
	}()
	return fn()
}

func (r *Runner) commitRecord() {
	for _, rec := range r.recOut {
		r.produce(rec, nil)
	}
	clear(r.recOut)
	r.recOut = r.recOut[:0]
	r.undo = r.undo[:0]
}

func (r *Runner) rollbackRecord() {
	for i := len(r.undo) - 1; i >= 0; i-- {
		r.undo[i]()
	}
	r.undo = r.undo[:0]
	clear(r.recOut)
	r.recOut = r.recOut[:0]
}

// emit buffers an output of the record being handled; it is produced when
// the handler succeeds.
func (r *Runner) emit(topic string, key, value []byte) error {
	if size := len(key) + len(value); size > r.cfg.MaxRecordBytes {
		return invalidClass("oversized", fmt.Errorf("output to %s of %d bytes exceeds the %d byte limit", topic, size, r.cfg.MaxRecordBytes))
	}
	r.recOut = append(r.recOut, &kgo.Record{Topic: topic, Key: key, Value: value})
	return nil
}

func (r *Runner) produce(rec *kgo.Record, done func(*kgo.Record)) {
	topic := rec.Topic
	gen := &r.gens[r.gen]
	gen.Add(1)
	// Not the run's context: a record of the final commit at shutdown must
	// not be refused because the run is ending. Closing the client fails
	// whatever is still buffered.
	r.cl.Produce(context.Background(), rec, func(rec *kgo.Record, err error) {
		defer gen.Add(-1)
		if err != nil {
			r.produceMu.Lock()
			if r.produceErr == nil {
				r.produceErr = fmt.Errorf("produce to %s: %w", topic, err)
			}
			r.produceMu.Unlock()
			return
		}
		if done != nil {
			done(rec)
		}
	})
	r.m.recordsOut.WithLabelValues(topic).Inc()
}

func (r *Runner) takeProduceErr() error {
	r.produceMu.Lock()
	defer r.produceMu.Unlock()
	err := r.produceErr
	r.produceErr = nil
	return err
}

// flushStores produces the changelog records of every task's pending writes.
func (r *Runner) flushStores() error {
	for _, t := range r.tasks {
		for i, s := range t.stores {
			topic := r.p.stores[i].changelogTopic()
			last := &t.lastOffset[i]
			part := t.partition
			err := s.flush(func(k, v []byte) {
				r.produce(&kgo.Record{Topic: topic, Partition: part, Key: k, Value: v}, func(rec *kgo.Record) {
					// Promises of one partition run in order.
					last.Store(rec.Offset)
				})
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// commit makes the work since the last commit durable.
func (r *Runner) commit(ctx context.Context) error {
	// A commit runs to its end even when the run is being canceled: an
	// End with a canceled context leaves the transaction open until it
	// times out, blocking every read_committed reader of its partitions.
	ctx, cancel := commitContext(ctx)
	defer cancel()
	if r.p.mode == ExactlyOnce {
		return r.commitTxn(ctx)
	}
	return r.commitSync(ctx)
}

func commitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// commitTxn ends the transaction: outputs, changelog writes and input
// offsets commit together, then the writes reach the base stores.
func (r *Runner) commitTxn(ctx context.Context) error {
	if err := r.flushStores(); err != nil {
		return err
	}
	committed := true // timers or broadcasts that wrote nothing
	if r.inTxn {
		// A record that failed to produce is missing from the
		// transaction: committing would commit its input without it.
		try := kgo.TryCommit
		if perr := r.takeProduceErr(); perr != nil {
			r.log.Warn("produce failed; aborting the transaction", "err", perr)
			try = kgo.TryAbort
		}
		r.fail.hit(FailEOSBeforeEnd)
		ok, err := r.endTxn(ctx, try)
		r.inTxn = false
		if ok && err == nil {
			r.fail.hit(FailEOSAfterEnd)
		}
		if perr := r.takeProduceErr(); perr != nil && ok {
			// kgo aborts a transaction with a failed record; never
			// trust a commit that lost one.
			r.setFatal(fmt.Errorf("transaction committed despite a failed produce: %w", perr))
		}
		if err != nil {
			r.discardAll()
			r.m.txns.WithLabelValues("aborted").Inc()
			return fmt.Errorf("end transaction: %w", err)
		}
		committed = ok && !r.doomed
	}
	if !committed {
		r.log.Info("transaction aborted (rebalance); reprocessing from the committed offsets")
		r.discardAll()
		r.m.txns.WithLabelValues("aborted").Inc()
		r.applyReleased()
		return nil
	}
	for _, t := range r.tasks {
		for i, s := range t.stores {
			cp := kv.NoCheckpoint
			if o := t.lastOffset[i].Swap(-1); o >= 0 {
				cp = o + 1
			}
			if err := s.commit(cp); err != nil {
				return err
			}
		}
	}
	r.m.txns.WithLabelValues("committed").Inc()
	r.dirty, r.doomed = false, false
	clear(r.window)
	r.lastCommit = time.Now()
	r.applyReleased()
	return nil
}

// endGrace is how long End may run before a waiting rebalance callback is
// let through (see endTxn). An End takes milliseconds; the grace only keeps
// an ordinary rebalance from aborting the transaction it is waiting for.
const endGrace = time.Second

// endTxn ends the transaction. The session's End forces a heartbeat before
// it commits, and when the membership is already lost nobody answers it:
// End waits for the lost callback instead, which BlockRebalanceOnPoll holds
// until the loop allows rebalances — after End. Left alone that is a stall
// for the whole commit timeout. So while End runs, a callback that has been
// waiting past endGrace is let through: the session then knows the
// membership is gone and aborts at once. The revoke and lost callbacks
// this lets through only queue their partitions (see release); the loop
// drops them after it applied End's outcome, so a transaction that did
// commit reaches the stores before its tasks are parked.
func (r *Runner) endTxn(ctx context.Context, try kgo.TransactionEndTry) (bool, error) {
	r.cbMu.Lock()
	r.inEnd = true
	r.cbMu.Unlock()
	done := make(chan struct{})
	go r.unblockStuckEnd(r.cl, done)
	ok, err := r.sess.End(ctx, try)
	close(done)
	r.cbMu.Lock()
	r.inEnd = false
	r.cbMu.Unlock()
	return ok, err
}

func (r *Runner) unblockStuckEnd(cl *kgo.Client, done <-chan struct{}) {
	grace := time.NewTimer(endGrace)
	defer grace.Stop()
	select {
	case <-done:
		return
	case <-grace.C:
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if r.blocked.Load() {
			r.log.Warn("ending the transaction waits for a rebalance callback (membership lost?); letting it run")
			cl.AllowRebalance()
			return
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}

// applyReleased drops the partitions of the callbacks that ran during End.
func (r *Runner) applyReleased() {
	r.cbMu.Lock()
	queued := r.released
	r.released = nil
	r.cbMu.Unlock()
	for _, rel := range queued {
		r.releaseLocked(rel.parts, rel.kind)
	}
}

// At-least-once commits never block the loop. Every batch's changelog
// writes are produced and applied to the base stores at once; every commit
// interval the processed offsets are snapshotted and the producer generation
// switched; once every record of the old generation is acknowledged, the
// snapshot is committed asynchronously and the stores checkpointed. A failed
// produce rewinds to the last committed offsets instead.

// applyWrites moves the flushed writes of every task into its base stores.
func (r *Runner) applyWrites() error {
	for _, t := range r.tasks {
		for _, s := range t.stores {
			if err := s.commit(kv.NoCheckpoint); err != nil {
				return err
			}
		}
	}
	r.dirty = false
	return nil
}

// checkpointStores records, per store, the changelog position its base
// holds: everything acknowledged so far has been applied.
func (r *Runner) checkpointStores() error {
	for _, t := range r.tasks {
		for i, s := range t.stores {
			if o := t.lastOffset[i].Load(); o >= 0 {
				if err := s.base().Apply(&kv.Batch{Checkpoint: o + 1}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (r *Runner) snapshotOffsets() map[string]map[int32]kgo.EpochOffset {
	out := make(map[string]map[int32]kgo.EpochOffset)
	for k, off := range r.next {
		if out[k.topic] == nil {
			out[k.topic] = make(map[int32]kgo.EpochOffset)
		}
		out[k.topic][k.partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	clear(r.next)
	return out
}

// advanceCommit drives the asynchronous at-least-once commit.
func (r *Runner) advanceCommit(ctx context.Context) error {
	if r.pending != nil {
		if r.gens[r.pendingGen].Load() > 0 {
			return nil // outputs of the snapshot still in flight
		}
		if err := r.takeProduceErr(); err != nil {
			r.log.Warn("produce failed; replaying since the last commit", "err", err)
			r.pending = nil
			r.rewind()
			r.discardAll()
			r.m.txns.WithLabelValues("aborted").Inc()
			return nil
		}
		if err := r.checkpointStores(); err != nil {
			return err
		}
		offsets := r.pending
		r.pending = nil
		r.cl.CommitOffsets(context.WithoutCancel(ctx), offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err == nil {
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						if p.ErrorCode != 0 && err == nil {
							err = kerr.ErrorForCode(p.ErrorCode)
						}
					}
				}
			}
			if err != nil {
				// The records are seen again after a rebalance:
				// at-least-once.
				r.log.Warn("commit offsets", "err", err)
			}
		})
		for topic, ps := range offsets {
			for p, eo := range ps {
				r.window[tp{topic, p}] = eo.Offset
			}
		}
		r.m.txns.WithLabelValues("committed").Inc()
		r.lastCommit = time.Now()
		return nil
	}
	if len(r.next) > 0 && (time.Since(r.lastCommit) >= r.cfg.CommitInterval || r.blocked.Load() || ctx.Err() != nil) {
		r.pending = r.snapshotOffsets()
		r.pendingGen = r.gen
		r.gen ^= 1
	}
	return nil
}

// commitSync commits everything processed, waiting for the outputs: the
// at-least-once commit of a revoke and of shutdown.
func (r *Runner) commitSync(ctx context.Context) error {
	if err := r.flushStores(); err != nil {
		return err
	}
	if err := r.applyWrites(); err != nil {
		return err
	}
	if err := r.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if err := r.takeProduceErr(); err != nil {
		r.log.Warn("produce failed; replaying since the last commit", "err", err)
		r.pending = nil
		clear(r.next)
		r.rewind()
		r.discardAll()
		return nil
	}
	if err := r.checkpointStores(); err != nil {
		return err
	}
	offsets := r.pending
	if offsets == nil {
		offsets = make(map[string]map[int32]kgo.EpochOffset)
	}
	for topic, ps := range r.snapshotOffsets() {
		if offsets[topic] == nil {
			offsets[topic] = make(map[int32]kgo.EpochOffset)
		}
		for p, eo := range ps {
			offsets[topic][p] = eo
		}
	}
	r.pending = nil
	if len(offsets) > 0 {
		var cerr error
		r.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
			cerr = err
		})
		if cerr != nil {
			r.log.Warn("commit offsets", "err", cerr)
		}
	}
	r.m.txns.WithLabelValues("committed").Inc()
	clear(r.window)
	r.lastCommit = time.Now()
	return nil
}

// discardAll drops every task's uncommitted work and reloads what lives in
// memory beside the stores (timer index, broadcast positions).
func (r *Runner) discardAll() {
	for _, t := range r.tasks {
		for i, s := range t.stores {
			s.discard()
			t.lastOffset[i].Store(-1)
		}
		if err := r.loadTaskMeta(t); err != nil {
			r.log.Error("reload timers", "partition", t.partition, "err", err)
		}
	}
	r.dirty, r.doomed = false, false
	clear(r.window)
	clear(r.next)
	r.pending = nil
	r.lastCommit = time.Now()
	r.rewindBroadcast()
}

// rewind moves at-least-once consumption back to the first record of the
// commit window (exactly-once sessions rewind themselves on abort).
func (r *Runner) rewind() {
	if len(r.window) == 0 {
		return
	}
	set := make(map[string]map[int32]kgo.EpochOffset)
	for k, off := range r.window {
		if set[k.topic] == nil {
			set[k.topic] = make(map[int32]kgo.EpochOffset)
		}
		set[k.topic][k.partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	r.cl.SetOffsets(set)
}

// retryLater aborts the current work after a transient failure and pauses
// the failing partition with backoff; everything else is reprocessed from
// the last commit.
func (r *Runner) retryLater(ctx context.Context, te *transientError) error {
	b := r.backoff[te.tp]
	if b == 0 {
		b = r.cfg.RetryBackoffMin
	} else {
		b = min(2*b, r.cfg.RetryBackoffMax)
	}
	r.backoff[te.tp] = b
	r.m.retries.WithLabelValues(te.tp.topic).Inc()
	r.log.Warn("transient failure; pausing partition", "topic", te.tp.topic, "partition", te.tp.partition,
		"offset", te.offset, "retry_in", b, "err", te.err)
	if _, ok := r.inputs[te.tp.topic]; ok && te.tp.partition >= 0 {
		r.cl.PauseFetchPartitions(map[string][]int32{te.tp.topic: {te.tp.partition}})
		r.paused[te.tp] = time.Now().Add(jitter(b))
	} else {
		// Timers and broadcasts have no partition to pause: hold them.
		r.hold = time.Now().Add(jitter(b))
	}
	switch r.p.mode {
	case ExactlyOnce:
		if r.inTxn {
			cctx, cancel := commitContext(ctx)
			_, err := r.endTxn(cctx, kgo.TryAbort)
			cancel()
			r.inTxn = false
			r.takeProduceErr()
			if err != nil {
				r.discardAll()
				return fmt.Errorf("abort transaction: %w", err)
			}
		}
	case AtLeastOnce:
		r.rewind()
	}
	r.discardAll()
	r.m.txns.WithLabelValues("aborted").Inc()
	r.applyReleased()
	r.cl.AllowRebalance()
	return nil
}

func (r *Runner) resumeDue() {
	now := time.Now()
	var resume map[string][]int32
	for k, at := range r.paused {
		if now.Before(at) {
			continue
		}
		if resume == nil {
			resume = make(map[string][]int32)
		}
		resume[k.topic] = append(resume[k.topic], k.partition)
		delete(r.paused, k)
	}
	if resume != nil {
		r.cl.ResumeFetchPartitions(resume)
	}
}

// fireTimers runs the callbacks of due timers in every task.
func (r *Runner) fireTimers() *transientError {
	if time.Now().Before(r.hold) {
		return nil
	}
	now := time.Now().UnixMilli()
	for _, t := range r.tasks {
		for _, e := range t.timers.due(now) {
			name, id, ok := parseTimerKey(e.key)
			def := r.timerDefs[name]
			if !ok || def == nil {
				r.log.Warn("dropping timer of unknown kind", "key", e.key)
				t.timers.remove(e.key)
				continue
			}
			if err := r.ensureTxn(); err != nil {
				return &transientError{tp{"timer:" + name, t.partition}, -1, err}
			}
			r.dirty = true
			c := &r.ctx
			c.t, c.rec = t, nil
			raw, found, err := r.p.sys.Get(c, e.key)
			if err != nil {
				return &transientError{tp{"timer:" + name, t.partition}, -1, err}
			}
			if !found || len(raw) < 8 {
				t.timers.remove(e.key)
				continue
			}
			r.m.timersFired.Inc()
			at := e.at
			err = r.safeCall(func() error { return def.fire(c, id, raw[8:]) })
			if err != nil && !IsInvalid(err) {
				r.rollbackRecord()
				return &transientError{tp{"timer:" + name, t.partition}, -1, err}
			}
			if err != nil {
				r.rollbackRecord()
				r.log.Error("timer callback rejected its payload; dropping the timer", "timer", name, "id", id, "err", err)
			} else {
				r.commitRecord()
			}
			// Remove it unless the callback moved it.
			if cur, ok := t.timers.at[e.key]; ok && cur == at {
				t.timers.remove(e.key)
				if err := r.p.sys.Delete(c, e.key); err != nil {
					return &transientError{tp{"timer:" + name, t.partition}, -1, err}
				}
			}
		}
	}
	return nil
}

// Kill stops the runner as a crash would: no commit, no clean leave of the
// group's work. Tests use it to check recovery.
func (r *Runner) Kill() {
	r.killed.Store(true)
}

func (r *Runner) shutdown() error {
	if r.killed.Load() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dirty || len(r.next) > 0 || r.pending != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.commit(ctx); err != nil {
			r.log.Error("final commit", "err", err)
		}
	}
	return nil
}

// taskDir is where task p keeps on-disk store name.
func (r *Runner) taskDir(store string, p int32) string {
	return filepath.Join(r.cfg.StateDir, r.p.name, store, strconv.Itoa(int(p)))
}

func (r *Runner) openTask(p int32) (*task, error) {
	if t, ok := r.parked[p]; ok {
		delete(r.parked, p)
		return t, nil
	}
	t := &task{
		partition:  p,
		stores:     make([]storeState, len(r.p.stores)),
		lastOffset: make([]atomic.Int64, len(r.p.stores)),
		timers:     newTimerIndex(),
		bpos:       make(map[tp]int64),
	}
	for i, def := range r.p.stores {
		t.lastOffset[i].Store(-1)
		var base kv.Store
		if disk, cache := def.onDisk(); disk {
			dir := r.taskDir(def.storeName(), p)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			db, err := kv.OpenPebble(dir, kv.PebbleOptions{CacheBytes: cache, Logger: r.log})
			if err != nil {
				return nil, err
			}
			base = db
		} else {
			base = kv.NewMemory()
		}
		t.stores[i] = def.newState(base)
	}
	return t, nil
}

// loadTaskMeta rebuilds the timer index and broadcast positions from the
// task's committed system store.
func (r *Runner) loadTaskMeta(t *task) error {
	t.timers = newTimerIndex()
	clear(t.bpos)
	sys := t.stores[r.p.sys.idx].base()
	if err := sys.Range([]byte(timerPrefix), func(k, v []byte) error {
		if len(v) >= 8 {
			t.timers.set(string(k), int64(beUint64(v)))
		}
		return nil
	}); err != nil {
		return err
	}
	return sys.Range([]byte(bcastPrefix), func(k, v []byte) error {
		if key, ok := parseBcastKey(string(k)); ok && len(v) == 8 {
			t.bpos[key] = int64(beUint64(v))
		}
		return nil
	})
}

func beUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

func (r *Runner) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.killed.Load() {
		return
	}
	r.m.rebalances.WithLabelValues("assigned").Inc()
	parts := make(map[int32]bool)
	for topic, ps := range assigned {
		if !r.groupTopic[topic] {
			continue
		}
		for _, p := range ps {
			parts[p] = true
		}
	}
	var fresh []*task
	for p := range parts {
		if _, ok := r.tasks[p]; ok {
			continue
		}
		t, err := r.openTask(p)
		if err != nil {
			r.setFatal(fmt.Errorf("open task %d: %w", p, err))
			return
		}
		fresh = append(fresh, t)
	}
	start := time.Now()
	before := r.restoredN.Load()
	if err := r.restore(ctx, fresh); err != nil {
		for _, t := range fresh {
			r.park(t)
		}
		// A failed restore must not process input on partial state:
		// leave the session and start over.
		r.log.Error("restore failed", "err", err)
		var ce *configError
		if errors.As(err, &ce) {
			r.setFatal(&configError{fmt.Errorf("restore: %w", err)})
		} else {
			r.setFatal(fmt.Errorf("restore: %w", err))
		}
		return
	}
	if len(fresh) > 0 {
		r.m.restoreSecs.Observe(time.Since(start).Seconds())
		r.lastRestore.Store(int64(time.Since(start)))
		r.lastRestored.Store(r.restoredN.Load() - before)
	}
	for _, t := range fresh {
		if err := r.loadTaskMeta(t); err != nil {
			r.setFatal(err)
			return
		}
		r.tmu.Lock()
		r.tasks[t.partition] = t
		r.tmu.Unlock()
	}
	if err := r.initBroadcastPositions(ctx, fresh); err != nil {
		r.log.Error("broadcast positions", "err", err)
	}
	r.m.tasks.Set(float64(len(r.tasks)))
	r.ready.Store(true)
	r.log.Info("partitions assigned", "tasks", sortedPartitions(r.tasks), "restored_in", time.Since(start).Round(time.Millisecond))
}

func (r *Runner) setFatal(err error) { r.fatal.Store(&err) }

func sortedPartitions(m map[int32]*task) []int32 {
	out := make([]int32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (r *Runner) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	r.release(ctx, cl, revoked, "revoked")
}

func (r *Runner) onLost(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	r.release(ctx, cl, lost, "lost")
}

func (r *Runner) release(ctx context.Context, _ *kgo.Client, parts map[string][]int32, kind string) {
	r.cbMu.Lock()
	if r.inEnd {
		r.released = append(r.released, release{parts, kind})
		r.cbMu.Unlock()
		return
	}
	r.cbMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releaseLockedCtx(ctx, parts, kind)
}

func (r *Runner) releaseLocked(parts map[string][]int32, kind string) {
	r.releaseLockedCtx(context.Background(), parts, kind)
}

// releaseLockedCtx drops the tasks of revoked or lost partitions; r.mu is
// held.
func (r *Runner) releaseLockedCtx(ctx context.Context, parts map[string][]int32, kind string) {
	if r.killed.Load() {
		return
	}
	r.m.rebalances.WithLabelValues(kind).Inc()
	if r.dirty || len(r.next) > 0 || r.pending != nil {
		switch {
		case kind == "revoked" && r.p.mode == AtLeastOnce && r.fatal.Load() == nil:
			// Commit what we did before another member takes over.
			if err := r.commit(ctx); err != nil {
				r.log.Error("commit on revoke", "err", err)
				r.discardAll()
			}
		default:
			// The open transaction (or lost ownership) cannot
			// commit: the session aborts it at End, so drop its
			// effects now.
			r.discardAll()
			r.doomed = r.inTxn
		}
	}
	drop := make(map[int32]bool)
	for topic, ps := range parts {
		if !r.groupTopic[topic] {
			continue
		}
		for _, p := range ps {
			drop[p] = true
		}
	}
	for p := range drop {
		if t, ok := r.tasks[p]; ok {
			r.tmu.Lock()
			delete(r.tasks, p)
			r.tmu.Unlock()
			r.park(t)
		}
	}
	r.m.tasks.Set(float64(len(r.tasks)))
	if len(r.tasks) == 0 {
		r.ready.Store(false)
	}
}

// park keeps a revoked task's stores open so that a reassignment of the same
// partition replays only the changelog written since.
func (r *Runner) park(t *task) {
	for i, s := range t.stores {
		s.discard()
		t.lastOffset[i].Store(-1)
	}
	t.parkedAt = time.Now()
	r.parked[t.partition] = t
	for len(r.parked) > r.cfg.ParkedTasks {
		var oldest *task
		for _, pt := range r.parked {
			if oldest == nil || pt.parkedAt.Before(oldest.parkedAt) {
				oldest = pt
			}
		}
		delete(r.parked, oldest.partition)
		r.closeTask(oldest)
	}
}

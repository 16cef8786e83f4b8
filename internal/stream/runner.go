package stream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/kafkasec"
)

// Runner runs one instance of a processor: a session (Kafka clients and the
// group membership) at a time, restarted after transient failures, around
// the engine that runs the handlers. The files beside this one hold its
// parts: loop.go polls and processes, rebalance.go owns the tasks as
// partitions come and go, commit_eos.go and commit_alo.go the two ways of
// committing, restore.go, broadcast.go and lookup.go what their names say.
type Runner struct {
	*engine
	cfg    Config
	commit committer

	// mu guards the task maps and everything the loop changes. The loop
	// holds it while processing and committing; rebalance callbacks take
	// it, so a callback never sees a half-processed batch.
	mu         sync.Mutex
	tmu        sync.RWMutex // guards tasks and partitions for lookups; written under mu
	parked     map[int32]*task
	partitions int32

	cl   *kgo.Client
	sess *kgo.GroupTransactSession
	adm  *kadm.Client
	bcl  *kgo.Client // broadcast consumer

	lastCommit time.Time
	window     map[tp]int64 // first offset processed per partition since the last commit
	paused     map[tp]time.Time
	backoff    map[tp]time.Duration
	hold       time.Time // timers and broadcasts wait until then after a transient failure

	produceMu  sync.Mutex
	produceErr error

	blocked   atomic.Bool // a rebalance callback waits for the loop
	fatal     atomic.Pointer[error]
	halted    atomic.Pointer[haltError]
	ready     atomic.Bool
	killed    atomic.Bool
	loopAlive atomic.Int64 // unix nanos of the last loop iteration

	restoredN     atomic.Int64
	lastRestore   atomic.Int64
	lastRestored  atomic.Int64
	sessionFails  atomic.Int64
	storesRebuilt atomic.Int64

	lookupOnce sync.Once
	lk         *lookupState

	fail *failpoints
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
	log := cfg.Logger.With("processor", p.name, "instance", cfg.InstanceID)
	e, err := newEngine(p, log, newMetrics(cfg.Metrics, p.name), cfg.MaxRecordBytes, cfg.DLQTopic,
		newDeadLetterGuard(cfg.DeadLetterWindow, cfg.MaxDeadLetterRatio))
	if err != nil {
		return nil, err
	}
	r := &Runner{
		engine:  e,
		cfg:     cfg,
		parked:  make(map[int32]*task),
		window:  make(map[tp]int64),
		paused:  make(map[tp]time.Time),
		backoff: make(map[tp]time.Duration),
	}
	r.commit = newCommitter(r)
	e.out = r
	e.begin = r.commit.begin
	if cfg.Failpoints != "" {
		fp, err := parseFailpoints(cfg.Failpoints)
		if err != nil {
			return nil, err
		}
		r.fail = fp
		r.log.Warn("failpoints armed: this process will SIGKILL itself", "failpoints", cfg.Failpoints)
	}
	return r, nil
}

// Processor returns the definition being run.
func (r *Runner) Processor() *Processor { return r.p }

// Ready reports whether the instance has joined its group, restored its
// tasks and is processing.
func (r *Runner) Ready() bool { return r.Readiness() == nil }

// Readiness is nil when the instance processes its input, and otherwise
// says why it does not.
func (r *Runner) Readiness() error {
	if h := r.halted.Load(); h != nil {
		return h
	}
	if f := r.fatal.Load(); f != nil {
		return *f
	}
	if !r.ready.Load() {
		return errors.New("not ready: joining the group or restoring state")
	}
	return nil
}

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

// Idle reports whether everything this instance handled is committed: no
// uncommitted work, and the starting broadcast positions of its tasks are
// stored. Tests wait on it instead of sleeping.
func (r *Runner) Idle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.commit.uncommitted() {
		return false
	}
	for _, t := range r.tasks {
		if t.bposUnsaved {
			return false
		}
	}
	return true
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
	// StoresRebuilt counts on-disk stores found damaged and rebuilt
	// from their changelogs.
	StoresRebuilt int64
}

// Stats returns the runner's counters.
func (r *Runner) Stats() Stats {
	r.tmu.RLock()
	n := len(r.tasks)
	r.tmu.RUnlock()
	return Stats{Processed: r.processed.Load(), DeadLetters: r.dlqCount.Load(), Restored: r.restoredN.Load(), Tasks: n,
		LastRestore: time.Duration(r.lastRestore.Load()), LastRestored: r.lastRestored.Load(), SessionFailures: r.sessionFails.Load(), StoresRebuilt: r.storesRebuilt.Load()}
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
		case errors.As(err, &ce) || kafkasec.IsConfigError(err):
			// Credentials or certificates a restart cannot mend.
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
	defer r.parkAll()

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
		// Close runs the revoke callback, which parks the tasks (a
		// static member does not leave: see leaveIfStopping). Our last
		// poll may still block rebalances: release it, or the close
		// waits for us forever.
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

// Kill stops the runner as a crash would: no commit, no leave. The stores
// still close (a real crash is the chaos suite's: internal/chaos).
func (r *Runner) Kill() {
	r.killed.Store(true)
}

func (r *Runner) shutdown() error {
	if r.killed.Load() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.commit.uncommitted() && r.halted.Load() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.commit.commit(ctx); err != nil {
			r.log.Error("final commit", "err", err)
		}
	}
	return nil
}

func (r *Runner) setFatal(err error) { r.fatal.Store(&err) }

// parkAll parks the tasks a session leaves behind. A session that failed
// (a fenced producer, an outage) may close without revoking them; their
// partitions may belong to another instance before this one is assigned
// them again, so they must not be served or written as if still owned.
func (r *Runner) parkAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.tasks) == 0 {
		return
	}
	r.tmu.Lock()
	for p, t := range r.tasks {
		delete(r.tasks, p)
		r.park(t)
	}
	r.tmu.Unlock()
	r.m.tasks.Set(0)
	r.ready.Store(false)
}

func sortedPartitions(m map[int32]*task) []int32 {
	out := make([]int32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

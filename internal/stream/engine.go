package stream

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/kv"
)

// engine runs a processor's handlers against its tasks: the part of the
// runtime that knows no Kafka client. The Runner feeds it what it polls and
// commits what it did; the Driver (streamtest) feeds it records in memory.
// It is used by one goroutine at a time (the Runner's loop, under r.mu).
type engine struct {
	p         *Processor
	log       *slog.Logger
	m         *metrics
	inputs    map[string]input
	stateful  map[string]bool // inputs with a task (not repartition sources)
	bcast     map[string]input
	timerDefs map[string]timerDef

	maxRecordBytes int
	dlqTopic       string
	// out takes outputs, changelog records and dead letters; done runs
	// with the record's offset once it is acknowledged.
	out interface {
		produce(rec *kgo.Record, done func(*kgo.Record))
	}
	// begin opens what the next effects belong to (a transaction).
	begin func() error

	tasks map[int32]*task

	ctx    Ctx
	recOut []*kgo.Record // outputs of the record being handled
	undo   []func()      // how to take back its store and timer writes
	dirty  bool          // handled something since the last commit
	guard  deadLetterGuard

	processed atomic.Int64
	dlqCount  atomic.Int64
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

func newEngine(p *Processor, log *slog.Logger, m *metrics, maxRecordBytes int, dlqTopic string, guard deadLetterGuard) (*engine, error) {
	e := &engine{
		p: p, log: log, m: m,
		inputs:         make(map[string]input),
		stateful:       make(map[string]bool),
		bcast:          make(map[string]input),
		timerDefs:      make(map[string]timerDef),
		maxRecordBytes: maxRecordBytes,
		dlqTopic:       dlqTopic,
		tasks:          make(map[int32]*task),
		guard:          guard,
	}
	for _, in := range p.inputs {
		e.inputs[in.topic()] = in
		if !in.stateless() {
			e.stateful[in.topic()] = true
		}
	}
	for _, in := range p.broadcasts {
		e.bcast[in.topic()] = in
	}
	for _, t := range p.timers {
		e.timerDefs[t.timerName()] = t
	}
	if len(e.inputs) == 0 {
		return nil, fmt.Errorf("processor %s has no inputs", p.name)
	}
	e.ctx.e = e
	return e, nil
}

// newTask is task p with a store of each kind on the bases open returns.
func (e *engine) newTask(p int32, open func(def storeDef) (kv.Store, error)) (*task, error) {
	t := &task{
		partition:  p,
		stores:     make([]storeState, len(e.p.stores)),
		lastOffset: make([]atomic.Int64, len(e.p.stores)),
		timers:     newTimerIndex(),
		bpos:       make(map[tp]int64),
	}
	for i, def := range e.p.stores {
		t.lastOffset[i].Store(-1)
		base, err := open(def)
		if err != nil {
			for _, s := range t.stores[:i] {
				_ = s.base().Close()
			}
			return nil, err
		}
		t.stores[i] = def.newState(base)
	}
	return t, nil
}

// handleRecord runs the handler of one record in task t (nil for a
// stateless input). Bad input is dead-lettered and nil returned; a transient
// failure is returned with the record's effects undone.
func (e *engine) handleRecord(in input, t *task, rec *kgo.Record) error {
	c := &e.ctx
	c.t, c.rec = t, rec
	e.dirty = true
	if size := len(rec.Key) + len(rec.Value); size > e.maxRecordBytes {
		return e.deadLetter(rec, invalidClass("oversized", fmt.Errorf("record of %d bytes exceeds the %d byte limit", size, e.maxRecordBytes)))
	}
	err := e.safeCall(func() error { return in.handle(c, rec) })
	if err == nil {
		e.commitRecord()
		return e.guard.record(false)
	}
	e.rollbackRecord()
	if IsInvalid(err) {
		return e.deadLetter(rec, err)
	}
	return err
}

// safeCall runs a handler, turning a panic into bad input: one record must
// not take the processor down (a storm of them halts it: deadLetterGuard).
func (e *engine) safeCall(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("handler panic", "panic", p, "stack", string(debug.Stack()))
			err = invalidClass("panic", fmt.Errorf("handler panicked: %v", p))
		}
	}()
	return fn()
}

// commitRecord ends the unit of work of one record (or timer): its outputs
// go out and its writes stay.
func (e *engine) commitRecord() {
	for _, rec := range e.recOut {
		e.out.produce(rec, nil)
	}
	clear(e.recOut)
	e.recOut = e.recOut[:0]
	e.undo = e.undo[:0]
}

func (e *engine) rollbackRecord() {
	for i := len(e.undo) - 1; i >= 0; i-- {
		e.undo[i]()
	}
	e.undo = e.undo[:0]
	clear(e.recOut)
	e.recOut = e.recOut[:0]
}

// emit buffers an output of the record being handled; it is produced when
// the handler succeeds.
func (e *engine) emit(topic string, key, value []byte) error {
	if size := len(key) + len(value); size > e.maxRecordBytes {
		return invalidClass("oversized", fmt.Errorf("output to %s of %d bytes exceeds the %d byte limit", topic, size, e.maxRecordBytes))
	}
	e.recOut = append(e.recOut, &kgo.Record{Topic: topic, Key: key, Value: value})
	return nil
}

// flushStores produces the changelog records of every task's pending
// writes, each to its task's partition.
func (e *engine) flushStores() error {
	for _, t := range e.tasks {
		for i, s := range t.stores {
			topic := e.p.stores[i].changelogTopic()
			last := &t.lastOffset[i]
			part := t.partition
			err := s.flush(func(k, v []byte) {
				e.out.produce(&kgo.Record{Topic: topic, Partition: part, Key: k, Value: v}, func(rec *kgo.Record) {
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

// commitStores moves the flushed writes of every task into its base stores;
// with checkpoint, each store also records the changelog position after its
// last acknowledged write.
func (e *engine) commitStores(checkpoint bool) error {
	for _, t := range e.tasks {
		for i, s := range t.stores {
			cp := kv.NoCheckpoint
			if checkpoint {
				if o := t.lastOffset[i].Swap(-1); o >= 0 {
					cp = o + 1
				}
			}
			if err := s.commit(cp); err != nil {
				return err
			}
		}
	}
	e.dirty = false
	return nil
}

// checkpointStores records, per store, the changelog position its base
// holds: everything acknowledged so far has been applied.
func (e *engine) checkpointStores() error {
	for _, t := range e.tasks {
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

// discardTasks drops every task's uncommitted work and reloads what lives in
// memory beside the stores (timer index, broadcast positions).
func (e *engine) discardTasks() {
	for _, t := range e.tasks {
		for i, s := range t.stores {
			s.discard()
			t.lastOffset[i].Store(-1)
		}
		if err := e.loadTaskMeta(t); err != nil {
			e.log.Error("reload timers", "partition", t.partition, "err", err)
		}
	}
	e.dirty = false
}

// loadTaskMeta rebuilds the timer index and broadcast positions from the
// task's committed system store.
func (e *engine) loadTaskMeta(t *task) error {
	t.timers = newTimerIndex()
	clear(t.bpos)
	sys := t.stores[e.p.sys.idx].base()
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

// fireTimers runs the callbacks of the timers due at now in every task.
// A callback that fails transiently leaves its timer pending and the error
// is returned; one that rejects its payload is dropped with its timer.
func (e *engine) fireTimers(now time.Time) *transientError {
	ms := now.UnixMilli()
	for _, t := range e.tasks {
		for _, due := range t.timers.due(ms) {
			if te := e.fireTimer(t, due); te != nil {
				return te
			}
		}
	}
	return nil
}

func (e *engine) fireTimer(t *task, due timerEntry) *transientError {
	name, id, ok := parseTimerKey(due.key)
	def := e.timerDefs[name]
	if !ok || def == nil {
		e.log.Warn("dropping timer of unknown kind", "key", due.key)
		t.timers.remove(due.key)
		return nil
	}
	fail := func(err error) *transientError { return &transientError{tp{"timer:" + name, t.partition}, -1, err} }
	if err := e.begin(); err != nil {
		return fail(err)
	}
	e.dirty = true
	c := &e.ctx
	c.t, c.rec = t, nil
	raw, found, err := e.p.sys.Get(c, due.key)
	if err != nil {
		return fail(err)
	}
	if !found || len(raw) < 8 {
		t.timers.remove(due.key)
		return nil
	}
	e.m.timersFired.Inc()
	err = e.safeCall(func() error { return def.fire(c, id, raw[8:]) })
	if err != nil {
		e.rollbackRecord()
		if !IsInvalid(err) {
			return fail(err)
		}
		// The timer goes with its payload to the dead-letter topic, as
		// bad input does: its topic names the timer, its key the id.
		rec := &kgo.Record{Topic: "timer:" + name, Partition: t.partition, Offset: -1, Key: []byte(id), Value: raw[8:], Timestamp: time.UnixMilli(due.at)}
		if err := e.deadLetter(rec, err); err != nil {
			return fail(err)
		}
	}
	// Remove it unless the callback moved it, in the same unit as the
	// callback's effects: a later unit's rollback must not bring it back.
	if cur, ok := t.timers.at[due.key]; ok && cur == due.at {
		t.timers.remove(due.key)
		if err := e.p.sys.Delete(c, due.key); err != nil {
			e.rollbackRecord()
			return fail(err)
		}
	}
	e.commitRecord()
	return nil
}

// broadcastRecord hands rec to every task of parts that has not seen it,
// advancing the task's position in its system store in the same unit of
// work as the handler's effects.
func (e *engine) broadcastRecord(in input, rec *kgo.Record, parts []int32) error {
	key := tp{rec.Topic, rec.Partition}
	for _, p := range parts {
		t := e.tasks[p]
		if pos, ok := t.bpos[key]; ok && rec.Offset < pos {
			continue
		}
		if err := e.begin(); err != nil {
			return err
		}
		if err := e.handleRecord(in, t, rec); err != nil {
			return err
		}
		t.bpos[key] = rec.Offset + 1
		e.ctx.t = t
		if err := e.p.sys.Put(&e.ctx, bcastKey(key), be8(rec.Offset+1)); err != nil {
			return err
		}
		// The position is part of this record's unit: a later record's
		// rollback must not take it back.
		e.commitRecord()
	}
	return nil
}

// saveBroadcastStarts stores the starting positions of new tasks, so that a
// reassignment resumes there rather than at a later end.
func (e *engine) saveBroadcastStarts(parts []int32) error {
	for _, p := range parts {
		t := e.tasks[p]
		if !t.bposUnsaved {
			continue
		}
		if err := e.begin(); err != nil {
			return err
		}
		e.dirty = true
		e.ctx.t, e.ctx.rec = t, nil
		for k, off := range t.bpos {
			if err := e.p.sys.Put(&e.ctx, bcastKey(k), be8(off)); err != nil {
				e.rollbackRecord()
				return err
			}
		}
		e.commitRecord()
		t.bposUnsaved = false
	}
	return nil
}

// transientError is a failure to retry: the partition (or, for timers and
// broadcasts, the whole loop) waits with backoff and everything since the
// last commit is reprocessed.
type transientError struct {
	tp     tp
	offset int64
	err    error
}

func (e *transientError) Error() string {
	return fmt.Sprintf("%s/%d@%d: %v", e.tp.topic, e.tp.partition, e.offset, e.err)
}

func (e *transientError) Unwrap() error { return e.err }

func beUint64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

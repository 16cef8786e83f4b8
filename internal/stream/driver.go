package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/kv"
)

// Driver runs a processor's handlers in memory, without Kafka: the engine
// of the in-memory tester (package streamtest; use that). Every fed record,
// broadcast record or timer run is one unit of work committed at once, as a
// transaction of its own would be: its outputs, changelog records and dead
// letters are appended to the produced log, its writes reach the stores.
// A unit that fails transiently leaves nothing behind and returns its error.
// Time is the driver's clock, moved by Advance.
type Driver struct {
	e          *engine
	partitions int32
	now        time.Time
	produced   []*kgo.Record
	next       map[tp]int64 // next offset per topic partition, produced and fed
	changelogs map[string]bool
	halted     error
}

// DriverConfig configures a Driver. Zero values get defaults.
type DriverConfig struct {
	// Partitions is the number of tasks, and of partitions of every
	// topic; default 1.
	Partitions int32
	// Start is the clock's start; default 2026-01-01T00:00:00Z.
	Start time.Time
	// Logger defaults to discarding.
	Logger *slog.Logger
	// MaxRecordBytes, DLQTopic, MaxDeadLetterRatio and DeadLetterWindow
	// are the Runner's (Config).
	MaxRecordBytes     int
	DLQTopic           string
	MaxDeadLetterRatio float64
	DeadLetterWindow   int
}

// NewDriver prepares p to run in memory.
func NewDriver(p *Processor, cfg DriverConfig) (*Driver, error) {
	if len(p.errs) > 0 {
		return nil, fmt.Errorf("%v", p.errs)
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 1
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rc := Config{Brokers: []string{"in-memory"}, MaxRecordBytes: cfg.MaxRecordBytes, DLQTopic: cfg.DLQTopic,
		MaxDeadLetterRatio: cfg.MaxDeadLetterRatio, DeadLetterWindow: cfg.DeadLetterWindow, Logger: cfg.Logger}
	if err := rc.defaults(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("processor", p.name, "instance", "streamtest")
	e, err := newEngine(p, log, newMetrics(prometheus.NewRegistry(), p.name), rc.MaxRecordBytes, rc.DLQTopic,
		newDeadLetterGuard(rc.DeadLetterWindow, rc.MaxDeadLetterRatio))
	if err != nil {
		return nil, err
	}
	d := &Driver{e: e, partitions: cfg.Partitions, now: cfg.Start, next: make(map[tp]int64), changelogs: make(map[string]bool)}
	e.out = d
	e.begin = func() error { return nil }
	for _, s := range p.stores {
		d.changelogs[s.changelogTopic()] = true
	}
	for part := range cfg.Partitions {
		t, err := e.newTask(part, func(storeDef) (kv.Store, error) { return kv.NewMemory(), nil })
		if err != nil {
			return nil, err
		}
		e.tasks[part] = t
	}
	return d, nil
}

// Partitions is the number of tasks and of partitions of every topic.
func (d *Driver) Partitions() int32 { return d.partitions }

// Now is the driver's clock.
func (d *Driver) Now() time.Time { return d.now }

// Feed handles rec, a record of one of the processor's inputs, in the task
// of rec.Partition. Its offset is the next of its partition; a zero
// Timestamp becomes the clock's time.
func (d *Driver) Feed(rec *kgo.Record) error { return d.feed(rec, true) }

// FeedProduced handles a record the processor itself produced (rec from
// Produced, on one of its inputs: a repartition topic), at the offset it was
// produced at, as the runner's consumer reads it back.
func (d *Driver) FeedProduced(rec *kgo.Record) error {
	cp := *rec
	return d.feed(&cp, false)
}

func (d *Driver) feed(rec *kgo.Record, stamp bool) error {
	in, ok := d.e.inputs[rec.Topic]
	if !ok {
		return fmt.Errorf("processor %s does not consume %s", d.e.p.name, rec.Topic)
	}
	if rec.Partition < 0 || rec.Partition >= d.partitions {
		return fmt.Errorf("partition %d of %s: the driver has %d", rec.Partition, rec.Topic, d.partitions)
	}
	t := d.e.tasks[rec.Partition]
	if stamp {
		if _, err := d.taskOf(rec); err != nil {
			return err
		}
	}
	if in.stateless() {
		t = nil
	}
	return d.unit(func() error {
		if err := d.e.handleRecord(in, t, rec); err != nil {
			return err
		}
		d.e.processed.Add(1)
		return nil
	})
}

// Broadcast hands rec, a record of one of the processor's broadcast inputs,
// to every task.
func (d *Driver) Broadcast(rec *kgo.Record) error {
	in, ok := d.e.bcast[rec.Topic]
	if !ok {
		return fmt.Errorf("processor %s has no broadcast input %s", d.e.p.name, rec.Topic)
	}
	if _, err := d.taskOf(rec); err != nil {
		return err
	}
	return d.unit(func() error { return d.e.broadcastRecord(in, rec, sortedPartitions(d.e.tasks)) })
}

// Advance moves the clock by dur and runs the timers due by then.
func (d *Driver) Advance(dur time.Duration) error {
	d.now = d.now.Add(dur)
	return d.unit(func() error {
		if te := d.e.fireTimers(d.now); te != nil {
			return te
		}
		return nil
	})
}

// Restart is a crash and restart of the instance: what lives in memory
// beside the stores (timer index, broadcast positions) is rebuilt from the
// committed stores, as a restore from their changelogs would.
func (d *Driver) Restart() error {
	d.e.discardTasks()
	d.e.guard.seen, d.e.guard.dead = 0, 0
	d.halted = nil
	return nil
}

// Produced is every record produced so far (outputs, changelog records,
// dead letters), in order, with partitions and offsets.
func (d *Driver) Produced() []*kgo.Record { return d.produced }

// Get returns the committed value of key in store: from the task of the
// key's partition, or else from whichever task holds it (a table keyed
// otherwise than its input, as the cart builder's requests by id in their
// user's task).
func (d *Driver) Get(store string, key []byte) ([]byte, bool, error) {
	for i, s := range d.e.p.stores {
		if s.storeName() != store {
			continue
		}
		home := PartitionFor(key, d.partitions)
		if v, ok, err := d.e.tasks[home].stores[i].base().Get(key); ok || err != nil {
			return v, ok, err
		}
		for _, p := range sortedPartitions(d.e.tasks) {
			if v, ok, err := d.e.tasks[p].stores[i].base().Get(key); ok || err != nil {
				return v, ok, err
			}
		}
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("processor %s has no store %q", d.e.p.name, store)
}

// DriverGet is the typed Get of a table.
func DriverGet[K comparable, V any](d *Driver, t *Table[K, V], key K) (V, bool, error) {
	var zero V
	kb, err := t.key.Append(nil, key)
	if err != nil {
		return zero, false, err
	}
	raw, ok, err := d.Get(t.name, kb)
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := t.value.Decode(raw)
	if err != nil {
		return zero, false, fmt.Errorf("store %s: decode: %w", t.name, err)
	}
	return v, true, nil
}

func (d *Driver) taskOf(rec *kgo.Record) (*task, error) {
	if rec.Partition < 0 || rec.Partition >= d.partitions {
		return nil, fmt.Errorf("partition %d of %s: the driver has %d", rec.Partition, rec.Topic, d.partitions)
	}
	k := tp{rec.Topic, rec.Partition}
	rec.Offset = d.next[k]
	d.next[k]++
	if rec.Timestamp.IsZero() {
		rec.Timestamp = d.now
	}
	return d.e.tasks[rec.Partition], nil
}

// unit runs one unit of work and commits it, or takes all of it back.
func (d *Driver) unit(fn func() error) error {
	if d.halted != nil {
		return d.halted
	}
	mark, next := len(d.produced), maps.Clone(d.next)
	d.e.ctx.Context = context.Background()
	d.e.ctx.now = d.now
	err := fn()
	if err == nil {
		err = d.e.flushStores()
	}
	if err != nil {
		d.e.rollbackRecord()
		d.e.discardTasks()
		clear(d.produced[mark:])
		d.produced = d.produced[:mark]
		d.next = next
		var h *haltError
		if errors.As(err, &h) {
			d.halted = h
		}
		return err
	}
	return d.e.commitStores(true)
}

// produce appends rec to the log, partitioned as a Kafka producer would
// (changelog records carry their task's partition).
func (d *Driver) produce(rec *kgo.Record, done func(*kgo.Record)) {
	if !d.changelogs[rec.Topic] {
		rec.Partition = 0
		if rec.Key != nil {
			rec.Partition = PartitionFor(rec.Key, d.partitions)
		}
	}
	k := tp{rec.Topic, rec.Partition}
	rec.Offset = d.next[k]
	d.next[k]++
	rec.Timestamp = d.now
	d.produced = append(d.produced, rec)
	if done != nil {
		done(rec)
	}
}

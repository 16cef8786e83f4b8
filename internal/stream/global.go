package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// GlobalConfig configures a GlobalTable.
type GlobalConfig struct {
	Brokers    []string
	ClientOpts []kgo.Opt
	Logger     *slog.Logger
	// ReadCommitted skips records of aborted transactions; set it for
	// topics written by exactly-once processors.
	ReadCommitted bool
}

// GlobalTable is a full, queryable copy of a compacted topic in every
// instance (reference data joined by foreign key: listings by release,
// sellers, release stats). It applies records in offset order per partition,
// keeps secondary indexes, and tells when it has caught up with the topic's
// end as of its start, or with any offsets a producer reports.
type GlobalTable[K comparable, V any] struct {
	topic   Topic[K, V]
	cfg     GlobalConfig
	mu      sync.RWMutex
	changed *sync.Cond // on mu; broadcast after every applied batch
	m       map[K]V
	idx     map[string]*globalIndex[K, V]
	applied map[int32]int64 // next offset per partition
	caught  chan struct{}
	bad     int64
	started bool
}

type globalIndex[K comparable, V any] struct {
	fn  func(K, V) []string
	fwd map[string]map[K]struct{}
	rev map[K][]string
}

// NewGlobalTable returns a table over t; add indexes, then Run it.
func NewGlobalTable[K comparable, V any](t Topic[K, V], cfg GlobalConfig) *GlobalTable[K, V] {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	g := &GlobalTable[K, V]{
		topic:   t,
		cfg:     cfg,
		m:       make(map[K]V),
		idx:     make(map[string]*globalIndex[K, V]),
		applied: make(map[int32]int64),
		caught:  make(chan struct{}),
	}
	g.changed = sync.NewCond(&g.mu)
	return g
}

// AddIndex adds a secondary index: fn returns the index values of a row
// (for listings by release, the release id). Call before Run.
func (g *GlobalTable[K, V]) AddIndex(name string, fn func(K, V) []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.idx[name] = &globalIndex[K, V]{fn: fn, fwd: make(map[string]map[K]struct{}), rev: make(map[K][]string)}
}

// Topic is the table's topic name.
func (g *GlobalTable[K, V]) Topic() string { return g.topic.Name }

// Get returns the row of key.
func (g *GlobalTable[K, V]) Get(key K) (V, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	v, ok := g.m[key]
	return v, ok
}

// Len is the number of rows.
func (g *GlobalTable[K, V]) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.m)
}

// Find calls fn for every row whose index value is value, until fn returns
// false. Rows must not be modified.
func (g *GlobalTable[K, V]) Find(index, value string, fn func(K, V) bool) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	ix, ok := g.idx[index]
	if !ok {
		return fmt.Errorf("global table %s has no index %q", g.topic.Name, index)
	}
	for k := range ix.fwd[value] {
		if !fn(k, g.m[k]) {
			return nil
		}
	}
	return nil
}

// Count is the number of rows with index value.
func (g *GlobalTable[K, V]) Count(index, value string) int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if ix, ok := g.idx[index]; ok {
		return len(ix.fwd[value])
	}
	return 0
}

// CaughtUp is closed once the table has applied everything the topic held
// when Run started.
func (g *GlobalTable[K, V]) CaughtUp() <-chan struct{} { return g.caught }

// Positions returns the next offset to apply per partition.
func (g *GlobalTable[K, V]) Positions() map[int32]int64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make(map[int32]int64, len(g.applied))
	for p, o := range g.applied {
		out[p] = o
	}
	return out
}

// WaitFor blocks until the table has applied every partition up to (not
// including) the given offsets, e.g. the end offsets a producer reports
// after writing, so that a reader never races the records it was told of.
func (g *GlobalTable[K, V]) WaitFor(ctx context.Context, offsets map[int32]int64) error {
	stop := context.AfterFunc(ctx, func() {
		g.mu.Lock()
		g.changed.Broadcast()
		g.mu.Unlock()
	})
	defer stop()
	g.mu.Lock()
	defer g.mu.Unlock()
	for !g.reached(offsets) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("global table %s: waiting for %v (at %v): %w", g.topic.Name, offsets, g.applied, err)
		}
		g.changed.Wait()
	}
	return nil
}

// Reached reports whether the table has applied the partitions up to the
// offsets.
func (g *GlobalTable[K, V]) Reached(offsets map[int32]int64) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.reached(offsets)
}

func (g *GlobalTable[K, V]) reached(offsets map[int32]int64) bool {
	for p, o := range offsets {
		if g.applied[p] < o {
			return false
		}
	}
	return true
}

func (g *GlobalTable[K, V]) apply(k K, v V, del bool) {
	for _, ix := range g.idx {
		for _, old := range ix.rev[k] {
			if set := ix.fwd[old]; set != nil {
				delete(set, k)
				if len(set) == 0 {
					delete(ix.fwd, old)
				}
			}
		}
		delete(ix.rev, k)
	}
	if del {
		delete(g.m, k)
		return
	}
	g.m[k] = v
	for _, ix := range g.idx {
		vals := ix.fn(k, v)
		if len(vals) == 0 {
			continue
		}
		ix.rev[k] = vals
		for _, val := range vals {
			set := ix.fwd[val]
			if set == nil {
				set = make(map[K]struct{})
				ix.fwd[val] = set
			}
			set[k] = struct{}{}
		}
	}
}

// Inject applies a row as if read from the topic at partition and offset
// (a tombstone deletes it) and marks the table caught up: how the in-memory
// tester (streamtest) fills a table without Kafka. A running table would
// overwrite it.
func (g *GlobalTable[K, V]) Inject(partition int32, offset int64, key K, value V, tombstone bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.apply(key, value, tombstone)
	g.applied[partition] = max(g.applied[partition], offset+1)
	if !isClosed(g.caught) {
		close(g.caught)
	}
	g.changed.Broadcast()
}

// Run consumes the topic from the beginning and keeps the table current
// until ctx is canceled.
func (g *GlobalTable[K, V]) Run(ctx context.Context) error {
	g.mu.Lock()
	if g.started {
		g.mu.Unlock()
		return errors.New("global table already running")
	}
	g.started = true
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.started = false
		g.mu.Unlock()
	}()

	opts := append([]kgo.Opt{
		kgo.SeedBrokers(g.cfg.Brokers...),
		kgo.ConsumeTopics(g.topic.Name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(64 << 20),
	}, g.cfg.ClientOpts...)
	if g.cfg.ReadCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	ends, err := listEndsRetry(ctx, adm, g.topic.Name)
	if err != nil {
		return err
	}
	target := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			target[o.Partition] = o.Offset
		}
	})
	caught := len(target) == 0 || isClosed(g.caught)
	if caught && !isClosed(g.caught) {
		close(g.caught)
	}
	lastProgress := time.Now()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			if pctx.Err() == nil {
				g.cfg.Logger.Warn("global table fetch", "topic", t, "partition", p, "err", err)
			}
		})
		n := 0
		g.mu.Lock()
		fs.EachRecord(func(rec *kgo.Record) {
			n++
			g.applied[rec.Partition] = rec.Offset + 1
			if rec.Attrs.IsControl() {
				return
			}
			k, err := g.topic.Key.Decode(rec.Key)
			if err != nil {
				g.bad++
				g.cfg.Logger.Warn("global table: undecodable key skipped", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
				return
			}
			if rec.Value == nil {
				var zero V
				g.apply(k, zero, true)
				return
			}
			v, err := g.topic.Value.Decode(rec.Value)
			if err != nil {
				g.bad++
				g.cfg.Logger.Warn("global table: undecodable value skipped", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
				return
			}
			g.apply(k, v, false)
		})
		if n > 0 {
			g.changed.Broadcast()
			lastProgress = time.Now()
		}
		if !caught && g.reached(target) {
			caught = true
			if !isClosed(g.caught) {
				close(g.caught)
			}
		}
		g.mu.Unlock()
		if !caught && n == 0 && time.Since(lastProgress) > time.Second {
			// The tail may hold no fetchable offsets (compacted,
			// aborted): the last stable offset settles it.
			if stable, err := adm.ListCommittedOffsets(ctx, g.topic.Name); err == nil {
				g.mu.Lock()
				stable.Each(func(o kadm.ListedOffset) {
					if o.Err == nil && o.Offset >= target[o.Partition] && g.applied[o.Partition] < target[o.Partition] {
						g.applied[o.Partition] = target[o.Partition]
					}
				})
				if g.reached(target) && !isClosed(g.caught) {
					caught = true
					close(g.caught)
					g.changed.Broadcast()
				}
				g.mu.Unlock()
			}
			lastProgress = time.Now()
		}
	}
}

func listEndsRetry(ctx context.Context, adm *kadm.Client, topic string) (kadm.ListedOffsets, error) {
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			if e := ends.Error(); e == nil {
				return ends, nil
			} else {
				err = e
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Keys returns the keys with index value, in no particular order.
func (g *GlobalTable[K, V]) Keys(index, value string) []K {
	g.mu.RLock()
	defer g.mu.RUnlock()
	ix, ok := g.idx[index]
	if !ok {
		return nil
	}
	out := make([]K, 0, len(ix.fwd[value]))
	for k := range ix.fwd[value] {
		out = append(out, k)
	}
	return out
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

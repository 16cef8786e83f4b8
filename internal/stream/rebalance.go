package stream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/kv"
)

// Rebalance callbacks run on kgo's goroutines. BlockRebalanceOnPoll keeps
// them out while the loop holds work of a polled batch, and they take r.mu,
// so a callback never sees a half-processed batch. The exception is a
// revoke or lost callback that arrives while an exactly-once loop is ending
// its transaction: the committer queues it (exactlyOnce.deferRelease).

func (r *Runner) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.killed.Load() {
		return
	}
	r.m.rebalances.WithLabelValues("assigned").Inc()
	parts := make(map[int32]bool)
	for topic, ps := range assigned {
		if !r.stateful[topic] {
			continue
		}
		for _, p := range ps {
			parts[p] = true
		}
	}
	// Every task handed out replays its changelog's tail, also one this
	// instance thinks it holds: between two assignments another instance
	// may have owned the partition (a session of ours failed, or our
	// membership lapsed while a callback ran) and written to the store.
	// For a task that missed nothing the tail is empty.
	var fresh, held []*task
	for p := range parts {
		if t, ok := r.tasks[p]; ok {
			held = append(held, t)
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
	if err := r.restore(ctx, append(fresh, held...)); err != nil {
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
	if replayed := r.restoredN.Load() - before; len(fresh) > 0 || replayed > 0 {
		r.m.restoreSecs.Observe(time.Since(start).Seconds())
		r.lastRestore.Store(int64(time.Since(start)))
		r.lastRestored.Store(replayed)
	}
	for _, t := range held {
		if err := r.loadTaskMeta(t); err != nil {
			r.setFatal(err)
			return
		}
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

func (r *Runner) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.release(ctx, revoked, "revoked")
}

func (r *Runner) onLost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	r.release(ctx, lost, "lost")
}

func (r *Runner) release(ctx context.Context, parts map[string][]int32, kind string) {
	if r.commit.deferRelease(parts, kind) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releaseLocked(ctx, parts, kind)
}

// releaseLocked drops the tasks of revoked or lost partitions after the
// committer dealt with the uncommitted work; r.mu is held.
func (r *Runner) releaseLocked(ctx context.Context, parts map[string][]int32, kind string) {
	if r.killed.Load() {
		return
	}
	r.m.rebalances.WithLabelValues(kind).Inc()
	if r.commit.uncommitted() {
		r.commit.release(ctx, kind)
	}
	drop := make(map[int32]bool)
	for topic, ps := range parts {
		if !r.stateful[topic] {
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

// taskDir is where task p keeps on-disk store name.
func (r *Runner) taskDir(store string, p int32) string {
	return filepath.Join(r.cfg.StateDir, r.p.name, store, strconv.Itoa(int(p)))
}

// openTask returns the parked task of p or opens its stores.
func (r *Runner) openTask(p int32) (*task, error) {
	if t, ok := r.parked[p]; ok {
		delete(r.parked, p)
		return t, nil
	}
	return r.newTask(p, func(def storeDef) (kv.Store, error) {
		if disk, cache := def.onDisk(); disk {
			return r.openDisk(r.taskDir(def.storeName(), p), cache)
		}
		return kv.NewMemory(), nil
	})
}

// openDisk opens an on-disk store. The changelog is the truth and the local
// store a copy of it: one that does not open (a damaged file, a lost
// manifest) is deleted and rebuilt from the changelog by the restore that
// follows, rather than served, or left to stop the instance at every start.
func (r *Runner) openDisk(dir string, cache int64) (kv.Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	db, err := openPebble(dir, kv.PebbleOptions{CacheBytes: cache, Logger: r.log})
	if err == nil {
		return db, nil
	}
	r.log.Error("on-disk store damaged; rebuilding it from its changelog", "dir", dir, "err", err)
	r.m.storesRebuilt.Inc()
	r.storesRebuilt.Add(1)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("remove damaged store %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return openPebble(dir, kv.PebbleOptions{CacheBytes: cache, Logger: r.log})
}

// openPebble opens a Pebble store; Pebble panics on some corruption, which
// is a damaged store here, not a reason to crash.
func openPebble(dir string, o kv.PebbleOptions) (s *kv.Pebble, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("open pebble store %s: panic: %v", dir, p)
		}
	}()
	return kv.OpenPebble(dir, o)
}

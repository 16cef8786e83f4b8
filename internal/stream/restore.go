package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/kv"
)

// restoreTarget is one store of one task to bring up to its changelog's end.
type restoreTarget struct {
	store    storeState
	name     string
	from     int64 // first offset to replay
	end      int64 // high watermark when the restore began
	last     int64 // last offset seen
	batch    *kv.Batch
	replayed int64
	done     bool
}

// restore replays the changelog of every store of tasks from the store's
// checkpoint to the changelog's end. Memory stores of new tasks start empty
// (checkpoint NoCheckpoint) and replay everything; parked and on-disk stores
// replay only the tail. Exactly-once changelogs are read committed, so
// aborted writes never reach a store.
func (r *Runner) restore(ctx context.Context, tasks []*task) error {
	if len(tasks) == 0 {
		return nil
	}
	var topics []string
	seen := make(map[string]bool)
	for _, s := range r.p.stores {
		if !seen[s.changelogTopic()] {
			seen[s.changelogTopic()] = true
			topics = append(topics, s.changelogTopic())
		}
	}
	starts, err := r.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list changelog start offsets: %w", err)
	}
	ends, err := r.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list changelog end offsets: %w", err)
	}
	targets := make(map[tp]*restoreTarget)
	consume := make(map[string]map[int32]kgo.Offset)
	for _, t := range tasks {
		for i, def := range r.p.stores {
			topic := def.changelogTopic()
			key := tp{topic, t.partition}
			so, ok1 := starts.Lookup(topic, t.partition)
			eo, ok2 := ends.Lookup(topic, t.partition)
			if !ok1 || !ok2 || so.Err != nil || eo.Err != nil {
				return fmt.Errorf("changelog %s/%d offsets unavailable", topic, t.partition)
			}
			st := t.stores[i]
			cp, err := st.base().Checkpoint()
			if err != nil {
				return err
			}
			from := cp
			// A checkpoint outside the log (the changelog was
			// recreated, or compacted past a tombstone we never saw)
			// cannot be trusted: restore from scratch.
			if cp == kv.NoCheckpoint || cp < so.Offset || cp > eo.Offset {
				if st.base().Len() > 0 || cp != kv.NoCheckpoint {
					r.log.Info("store checkpoint outside the changelog; full restore", "store", def.storeName(),
						"partition", t.partition, "checkpoint", cp, "log_start", so.Offset, "log_end", eo.Offset)
					if err := st.base().Wipe(); err != nil {
						return err
					}
				}
				from = so.Offset
			}
			if from >= eo.Offset {
				continue
			}
			targets[key] = &restoreTarget{store: st, name: def.storeName(), from: from, end: eo.Offset, last: from - 1, batch: kv.NewBatch()}
			if rs, ok := st.base().(kv.Reserver); ok {
				rs.Reserve(int(eo.Offset - from))
			}
			if consume[topic] == nil {
				consume[topic] = make(map[int32]kgo.Offset)
			}
			consume[topic][t.partition] = kgo.NewOffset().At(from)
			r.m.restoreRemain.WithLabelValues(def.storeName()).Add(float64(eo.Offset - from))
		}
	}
	if len(targets) == 0 {
		return nil
	}
	opts := append(r.baseOpts(),
		kgo.ConsumePartitions(consume),
		kgo.KeepControlRecords(), // see every offset, so the end is recognised
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(16<<20),
	)
	if r.p.mode == ExactlyOnce {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return &configError{err}
	}
	defer cl.Close()

	remaining := len(targets)
	lastProgress := time.Now()
	for remaining > 0 {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if pctx.Err() == nil && ctx.Err() == nil {
				ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			r.log.Warn("restore fetch", "err", ferr)
		}
		progressed := false
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			tg := targets[tp{fp.Topic, fp.Partition}]
			if tg == nil || tg.done || len(fp.Records) == 0 {
				return
			}
			progressed = true
			tg.batch.Grow(len(fp.Records))
			for _, rec := range fp.Records {
				if rec.Offset >= tg.end {
					break
				}
				tg.last = rec.Offset
				if rec.Attrs.IsControl() {
					continue
				}
				if rec.Value == nil {
					tg.batch.Delete(rec.Key)
				} else {
					tg.batch.Put(rec.Key, rec.Value)
				}
				tg.replayed++
			}
			n := tg.batch.Len()
			tg.batch.Checkpoint = tg.last + 1
			if err := tg.store.base().Apply(tg.batch); err != nil {
				ferr = err
				return
			}
			tg.batch.Reset()
			r.m.restored.WithLabelValues(tg.name).Add(float64(n))
			r.m.restoreRemain.WithLabelValues(tg.name).Sub(float64(len(fp.Records)))
			r.restoredN.Add(int64(n))
			if tg.last+1 >= tg.end {
				tg.done = true
				remaining--
				cl.PauseFetchPartitions(map[string][]int32{fp.Topic: {fp.Partition}})
			}
		})
		if ferr != nil {
			return ferr
		}
		if progressed {
			lastProgress = time.Now()
			continue
		}
		// Nothing arrived for a while: offsets may be missing at the
		// tail (compacted away, or control records of aborted
		// transactions), so ask whether anything is left below the
		// last stable offset.
		if time.Since(lastProgress) < time.Second {
			continue
		}
		if err := r.finishIdle(ctx, targets, &remaining); err != nil {
			return err
		}
		lastProgress = time.Now()
	}
	return nil
}

// finishIdle marks targets done whose changelog has no open transaction up
// to the target and that received nothing for a second: every record below
// the last stable offset would have been fetched by now.
func (r *Runner) finishIdle(ctx context.Context, targets map[tp]*restoreTarget, remaining *int) error {
	var topics []string
	for k, tg := range targets {
		if !tg.done {
			topics = append(topics, k.topic)
		}
	}
	stable, err := r.adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list changelog stable offsets: %w", err)
	}
	stable.Each(func(o kadm.ListedOffset) {
		tg := targets[tp{o.Topic, o.Partition}]
		if tg == nil || tg.done || o.Err != nil {
			return
		}
		if o.Offset >= tg.end {
			if err := tg.store.base().Apply(&kv.Batch{Checkpoint: tg.end}); err == nil {
				r.log.Info("restore finished at an empty tail", "store", tg.name, "partition", o.Partition, "end", tg.end)
				tg.done = true
				*remaining--
			}
		} else {
			r.log.Info("restore waiting for an open transaction on the changelog", "store", tg.name,
				"partition", o.Partition, "stable", o.Offset, "end", tg.end)
		}
	})
	return nil
}

package stream

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// atLeastOnce commits without blocking the loop. Every batch's changelog
// writes are produced and applied to the base stores at once; every commit
// interval the processed offsets are snapshotted and the producer generation
// switched; once every record of the old generation is acknowledged, the
// snapshot is committed asynchronously and the stores checkpointed. A failed
// produce rewinds to the last committed offsets instead. A crash replays the
// records since the last commit: their effects may be applied twice.
type atLeastOnce struct {
	r *Runner
	// next is the next offset per input partition processed since the
	// last snapshot.
	next map[tp]int64
	// pending is a snapshot of offsets waiting for the outputs of
	// generation pendingGen to be acknowledged.
	pending    map[string]map[int32]kgo.EpochOffset
	pendingGen int
	gen        int
	gens       [2]atomic.Int64 // records in flight per producer generation
}

func (c *atLeastOnce) begin() error { return nil }

func (c *atLeastOnce) track() func() {
	g := &c.gens[c.gen]
	g.Add(1)
	return func() { g.Add(-1) }
}

func (c *atLeastOnce) processed(p tp, next int64) { c.next[p] = next }

func (c *atLeastOnce) uncommitted() bool {
	return c.r.dirty || len(c.next) > 0 || c.pending != nil
}

func (c *atLeastOnce) reset() {
	clear(c.next)
	c.pending = nil
}

func (c *atLeastOnce) wait() time.Duration {
	wait := time.Hour
	if c.r.dirty || len(c.next) > 0 {
		wait = c.r.untilDue()
	}
	if c.pending != nil {
		wait = min(wait, 2*time.Millisecond)
	}
	return wait
}

// afterBatch produces the batch's changelog writes and applies them for
// latency; offsets follow asynchronously. Rebalances may proceed at once:
// the revoke callback commits synchronously.
func (c *atLeastOnce) afterBatch(ctx context.Context) (bool, error) {
	r := c.r
	if r.dirty {
		if err := r.flushStores(); err != nil {
			return false, err
		}
		if err := r.commitStores(false); err != nil {
			return false, err
		}
	}
	return true, c.advance(ctx)
}

func (c *atLeastOnce) snapshotOffsets() map[string]map[int32]kgo.EpochOffset {
	out := make(map[string]map[int32]kgo.EpochOffset)
	for k, off := range c.next {
		if out[k.topic] == nil {
			out[k.topic] = make(map[int32]kgo.EpochOffset)
		}
		out[k.topic][k.partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	clear(c.next)
	return out
}

// advance drives the asynchronous commit.
func (c *atLeastOnce) advance(ctx context.Context) error {
	r := c.r
	if c.pending != nil {
		if c.gens[c.pendingGen].Load() > 0 {
			return nil // outputs of the snapshot still in flight
		}
		if err := r.takeProduceErr(); err != nil {
			r.log.Warn("produce failed; replaying since the last commit", "err", err)
			c.pending = nil
			r.rewind()
			r.discardAll()
			r.m.txns.WithLabelValues("aborted").Inc()
			return nil
		}
		if err := r.checkpointStores(); err != nil {
			return err
		}
		r.fail.hit(FailALOBeforeCommit)
		offsets := c.pending
		c.pending = nil
		r.cl.CommitOffsets(context.WithoutCancel(ctx), offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err == nil {
				err = firstPartitionError(resp)
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
	if len(c.next) > 0 && r.commitDue(ctx) {
		c.pending = c.snapshotOffsets()
		c.pendingGen = c.gen
		c.gen ^= 1
	}
	return nil
}

func firstPartitionError(resp *kmsg.OffsetCommitResponse) error {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return kerr.ErrorForCode(p.ErrorCode)
			}
		}
	}
	return nil
}

// commit commits everything processed, waiting for the outputs: the commit
// of a revoke and of shutdown.
func (c *atLeastOnce) commit(ctx context.Context) error {
	ctx, cancel := commitContext(ctx)
	defer cancel()
	r := c.r
	if err := r.flushStores(); err != nil {
		return err
	}
	if err := r.commitStores(false); err != nil {
		return err
	}
	if err := r.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if err := r.takeProduceErr(); err != nil {
		r.log.Warn("produce failed; replaying since the last commit", "err", err)
		c.reset()
		r.rewind()
		r.discardAll()
		return nil
	}
	if err := r.checkpointStores(); err != nil {
		return err
	}
	offsets := c.pending
	if offsets == nil {
		offsets = make(map[string]map[int32]kgo.EpochOffset)
	}
	for topic, ps := range c.snapshotOffsets() {
		if offsets[topic] == nil {
			offsets[topic] = make(map[int32]kgo.EpochOffset)
		}
		for p, eo := range ps {
			offsets[topic][p] = eo
		}
	}
	c.pending = nil
	if len(offsets) > 0 {
		r.fail.hit(FailALOBeforeCommit)
		var cerr error
		r.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err == nil && resp != nil {
				err = firstPartitionError(resp)
			}
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

// abort moves consumption back to the first record of the commit window.
func (c *atLeastOnce) abort(context.Context) error {
	c.r.rewind()
	return nil
}

// release commits what was done before another member takes over a revoked
// partition. Lost partitions (and a loop that panicked) cannot commit: their
// work is dropped and redone by the next owner.
func (c *atLeastOnce) release(ctx context.Context, kind string) {
	r := c.r
	if kind == "revoked" && r.fatal.Load() == nil {
		if err := c.commit(ctx); err != nil {
			r.log.Error("commit on revoke", "err", err)
			r.discardAll()
		}
		return
	}
	r.discardAll()
}

func (c *atLeastOnce) deferRelease(map[string][]int32, string) bool { return false }

package stream

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// exactlyOnce commits input offsets, changelog records and outputs in one
// Kafka transaction per commit interval (kgo's GroupTransactSession), then
// applies the transaction's writes to the stores. An abort, or a rebalance
// that takes partitions while a transaction is open, discards the writes
// and the session rewinds consumption to the committed offsets.
type exactlyOnce struct {
	r      *Runner
	inTxn  bool
	doomed bool // a callback discarded the work of the open transaction

	// mu guards inEnd and released. While the loop is inside the
	// session's End, a revoke or lost callback must not wait for r.mu:
	// kgo runs it holding the session's lock that End needs, and End may
	// be waiting for exactly that callback (see end). It leaves its
	// partitions in released instead, for the loop to drop once End
	// returned.
	mu       sync.Mutex
	inEnd    bool
	released []release
}

// release is a revoke or lost callback the loop has still to apply.
type release struct {
	parts map[string][]int32
	kind  string
}

func (c *exactlyOnce) begin() error {
	if c.inTxn {
		return nil
	}
	if err := c.r.sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	c.inTxn = true
	return nil
}

func (c *exactlyOnce) track() func()       { return func() {} }
func (c *exactlyOnce) processed(tp, int64) {}
func (c *exactlyOnce) uncommitted() bool   { return c.r.dirty }
func (c *exactlyOnce) reset()              { c.doomed = false }

func (c *exactlyOnce) wait() time.Duration {
	if c.r.dirty {
		return c.r.untilDue()
	}
	return time.Hour
}

// afterBatch commits when due. Rebalances wait while a transaction holds
// work: the revoke then commits it first instead of aborting it.
func (c *exactlyOnce) afterBatch(ctx context.Context) (bool, error) {
	r := c.r
	if r.dirty && r.commitDue(ctx) {
		if err := c.commit(ctx); err != nil {
			return false, err
		}
	}
	return !r.dirty, nil
}

// commit ends the transaction: outputs, changelog writes and input offsets
// commit together, then the writes reach the base stores.
func (c *exactlyOnce) commit(ctx context.Context) error {
	ctx, cancel := commitContext(ctx)
	defer cancel()
	r := c.r
	if err := r.flushStores(); err != nil {
		return err
	}
	committed := true // timers or broadcasts that wrote nothing
	if c.inTxn {
		// A record that failed to produce is missing from the
		// transaction: committing would commit its input without it.
		try := kgo.TryCommit
		if perr := r.takeProduceErr(); perr != nil {
			r.log.Warn("produce failed; aborting the transaction", "err", perr)
			try = kgo.TryAbort
		}
		r.fail.hit(FailEOSBeforeEnd)
		ok, err := c.end(ctx, try)
		c.inTxn = false
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
			// The partitions a callback gave up during End are gone
			// whatever End's outcome: drop them before the session
			// ends, or they outlive it as tasks of ours.
			c.applyReleased()
			return fmt.Errorf("end transaction: %w", err)
		}
		committed = ok && !c.doomed
	}
	if !committed {
		r.log.Info("transaction aborted (rebalance); reprocessing from the committed offsets")
		r.discardAll()
		r.m.txns.WithLabelValues("aborted").Inc()
		c.applyReleased()
		return nil
	}
	if err := r.commitStores(true); err != nil {
		return err
	}
	r.m.txns.WithLabelValues("committed").Inc()
	c.doomed = false
	clear(r.window)
	r.lastCommit = time.Now()
	c.applyReleased()
	return nil
}

// abort ends the open transaction without committing; the session rewinds
// to the committed offsets.
func (c *exactlyOnce) abort(ctx context.Context) error {
	if !c.inTxn {
		return nil
	}
	cctx, cancel := commitContext(ctx)
	defer cancel()
	_, err := c.end(cctx, kgo.TryAbort)
	c.inTxn = false
	c.r.takeProduceErr()
	if err != nil {
		c.r.discardAll()
		c.applyReleased()
		return fmt.Errorf("abort transaction: %w", err)
	}
	c.applyReleased()
	return nil
}

// release: the open transaction cannot commit once partitions are revoked
// or lost (the session aborts it at End), so its effects go now.
func (c *exactlyOnce) release(context.Context, string) {
	c.r.discardAll()
	c.doomed = c.inTxn
}

// deferRelease queues a revoke or lost callback that runs during End.
func (c *exactlyOnce) deferRelease(parts map[string][]int32, kind string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inEnd {
		c.released = append(c.released, release{parts, kind})
	}
	return c.inEnd
}

// endGrace is how long End may run before a waiting rebalance callback is
// let through (see end). An End takes milliseconds; the grace only keeps an
// ordinary rebalance from aborting the transaction it is waiting for.
const endGrace = time.Second

// end ends the transaction. The session's End forces a heartbeat before it
// commits, and when the membership is already lost nobody answers it: End
// waits for the lost callback instead, which BlockRebalanceOnPoll holds
// until the loop allows rebalances — after End. Left alone that is a stall
// for the whole commit timeout. So while End runs, a callback that has been
// waiting past endGrace is let through: the session then knows the
// membership is gone and aborts at once. The revoke and lost callbacks this
// lets through only queue their partitions (deferRelease); the loop drops
// them after it applied End's outcome, so a transaction that did commit
// reaches the stores before its tasks are parked.
func (c *exactlyOnce) end(ctx context.Context, try kgo.TransactionEndTry) (bool, error) {
	c.mu.Lock()
	c.inEnd = true
	c.mu.Unlock()
	done := make(chan struct{})
	go c.unblockStuckEnd(c.r.cl, done)
	ok, err := c.r.sess.End(ctx, try)
	close(done)
	c.mu.Lock()
	c.inEnd = false
	c.mu.Unlock()
	return ok, err
}

func (c *exactlyOnce) unblockStuckEnd(cl *kgo.Client, done <-chan struct{}) {
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
		if c.r.blocked.Load() {
			c.r.log.Warn("ending the transaction waits for a rebalance callback (membership lost?); letting it run")
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
func (c *exactlyOnce) applyReleased() {
	c.mu.Lock()
	queued := c.released
	c.released = nil
	c.mu.Unlock()
	for _, rel := range queued {
		c.r.releaseLocked(context.Background(), rel.parts, rel.kind)
	}
}

package stream

import (
	"context"
	"time"
)

// committer makes the loop's work durable: one per delivery mode, each
// owning the state of its way of committing. The loop calls it with r.mu
// held, from its own goroutine or from a rebalance callback.
type committer interface {
	// begin opens what a batch's effects belong to (exactly-once: the
	// transaction) before the first of them.
	begin() error
	// track counts an output on its way to the brokers; the returned
	// function runs when the output is acknowledged or failed.
	track() func()
	// processed notes that the records of an input partition were
	// handled up to next (exclusive).
	processed(p tp, next int64)
	// afterBatch commits what is due after a batch and reports whether
	// the group may rebalance now.
	afterBatch(ctx context.Context) (allowRebalance bool, err error)
	// commit makes everything handled so far durable, now (shutdown, an
	// at-least-once revoke).
	commit(ctx context.Context) error
	// abort drops what was handled since the last commit after a
	// transient failure and moves consumption back to it.
	abort(ctx context.Context) error
	// release is what a revoke or a lost membership does to the work
	// not committed yet, before the runner drops the tasks.
	release(ctx context.Context, kind string)
	// uncommitted reports whether any work awaits a commit.
	uncommitted() bool
	// wait is how long the loop may block before the committer needs it.
	wait() time.Duration
	// reset forgets the commit window: its work was discarded.
	reset()
	// deferRelease takes a revoke or lost callback that must not wait
	// for the loop now, for the loop to apply later; false when the
	// callback should apply itself.
	deferRelease(parts map[string][]int32, kind string) bool
}

func newCommitter(r *Runner) committer {
	if r.p.mode == ExactlyOnce {
		return &exactlyOnce{r: r}
	}
	return &atLeastOnce{r: r, next: make(map[tp]int64)}
}

// commitContext bounds a commit, which runs to its end even when the run is
// being canceled: an End with a canceled context leaves the transaction open
// until it times out, blocking every read_committed reader of its
// partitions.
func commitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// untilDue is how long until the next commit is due.
func (r *Runner) untilDue() time.Duration {
	return time.Until(r.lastCommit.Add(r.cfg.CommitInterval))
}

// commitDue reports whether work should be committed now: the interval
// passed, a rebalance waits for it, or the run is ending.
func (r *Runner) commitDue(ctx context.Context) bool {
	return time.Since(r.lastCommit) >= r.cfg.CommitInterval || r.blocked.Load() || ctx.Err() != nil
}

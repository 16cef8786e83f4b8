package stream

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// loop is the processing loop of one session: poll, handle, commit when
// due. It returns when the run ends (after the final commit), or with the
// error that ends the session.
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
		pctx, cancel := context.WithTimeout(ctx, r.nextWake())
		fs := r.cl.PollRecords(pctx, r.cfg.MaxPollRecords)
		cancel()
		if fs.IsClientClosed() {
			return errors.New("client closed")
		}
		if r.killed.Load() {
			return nil
		}
		// Fetch errors are retried by the client; they are only worth
		// a line in the log.
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				r.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
			}
		})
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
// next timer fires, a paused partition resumes or broadcast records may be
// waiting. It reads what the rebalance callbacks write: under r.mu.
func (r *Runner) nextWake() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	wait := min(250*time.Millisecond, r.commit.wait())
	if len(r.bcast) > 0 {
		wait = min(wait, 20*time.Millisecond)
	}
	for _, t := range r.tasks {
		if at, ok := t.timers.next(); ok {
			wait = min(wait, time.Until(time.UnixMilli(at)))
		}
	}
	for _, at := range r.paused {
		wait = min(wait, time.Until(at))
	}
	return max(wait, time.Millisecond)
}

// iterate processes one polled batch, due timers and broadcast records, and
// commits when due. It runs with r.mu held.
func (r *Runner) iterate(ctx context.Context, fs kgo.Fetches) error {
	if r.halted.Load() != nil {
		// Input stays paused until a restart; keep the membership.
		r.cl.AllowRebalance()
		return nil
	}
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
		if err := r.commit.begin(); err != nil {
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
		r.commit.processed(key, last.Offset+1)
		r.m.lag.WithLabelValues(fp.Topic, strconv.Itoa(int(fp.Partition))).Set(float64(fp.HighWatermark - last.Offset - 1))
		r.m.recordsIn.WithLabelValues(fp.Topic).Add(float64(len(fp.Records)))
		delete(r.backoff, key)
	})
	if transient == nil && !time.Now().Before(r.hold) {
		transient = r.fireTimers(time.Now())
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
	allow, err := r.commit.afterBatch(ctx)
	if err != nil {
		return err
	}
	if allow {
		r.blocked.Store(false)
		r.cl.AllowRebalance()
	}
	r.resumeDue()
	return nil
}

// retryLater aborts the current work after a transient failure and pauses
// the failing partition with backoff; everything else is reprocessed from
// the last commit. A dead-letter storm halts the processor instead.
func (r *Runner) retryLater(ctx context.Context, te *transientError) error {
	var halt *haltError
	if errors.As(te.err, &halt) {
		r.halt(halt)
	} else {
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
	}
	if err := r.commit.abort(ctx); err != nil {
		return err
	}
	r.discardAll()
	r.m.txns.WithLabelValues("aborted").Inc()
	r.cl.AllowRebalance()
	return nil
}

// halt stops processing until the process restarts: every input is paused,
// timers and broadcasts held, and the instance reports the reason as not
// ready (the work of the batch that tripped it is aborted by the caller).
func (r *Runner) halt(h *haltError) {
	r.halted.Store(h)
	topics := make([]string, 0, len(r.inputs))
	for t := range r.inputs {
		topics = append(topics, t)
	}
	r.cl.PauseFetchTopics(topics...)
	clear(r.paused)
	r.hold = time.Now().Add(100 * 365 * 24 * time.Hour)
	r.m.halted.Set(1)
	r.log.Error("processor halted", "reason", h.reason)
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

// produce sends an output, changelog record or dead letter; done runs with
// the acknowledged record.
func (r *Runner) produce(rec *kgo.Record, done func(*kgo.Record)) {
	topic := rec.Topic
	settled := r.commit.track()
	// Not the run's context: a record of the final commit at shutdown must
	// not be refused because the run is ending. Closing the client fails
	// whatever is still buffered.
	r.cl.Produce(context.Background(), rec, func(rec *kgo.Record, err error) {
		defer settled()
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

// discardAll drops every task's uncommitted work, forgets the commit window
// and rewinds the broadcast consumer.
func (r *Runner) discardAll() {
	r.discardTasks()
	r.commit.reset()
	clear(r.window)
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

package chaos

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// feeder produces generated input records at a steady rate until stopped.
// Records are numbered 0, 1, 2, ...; gen builds record n. The idempotent
// producer retries through broker restarts, so every record handed to it
// is written exactly once or the run fails with its error.
type feeder struct {
	cl      *kgo.Client
	gen     func(n int64) *kgo.Record
	rate    int
	handed  atomic.Int64 // records given to the client
	acked   atomic.Int64
	errOnce sync.Once
	err     error
	cancel  context.CancelFunc
	done    chan struct{}
}

func startFeeder(brokers []string, rate int, gen func(n int64) *kgo.Record) (*feeder, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(50_000),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &feeder{cl: cl, gen: gen, rate: rate, cancel: cancel, done: make(chan struct{})}
	go f.loop(ctx)
	return f, nil
}

func (f *feeder) loop(ctx context.Context) {
	defer close(f.done)
	const tick = 10 * time.Millisecond
	start := time.Now()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// As many as the rate allows by now: a stall (a full buffer
		// while the cluster is down) is caught up later.
		due := int64(time.Since(start).Seconds() * float64(f.rate))
		for n := f.handed.Load(); n < due; n++ {
			if ctx.Err() != nil {
				return
			}
			f.handed.Add(1)
			// Not ctx: stopping must not fail a record waiting for
			// buffer space (while the cluster is down), it is
			// produced and counted like the others.
			f.cl.Produce(context.WithoutCancel(ctx), f.gen(n), func(r *kgo.Record, err error) {
				if err != nil {
					f.errOnce.Do(func() { f.err = fmt.Errorf("produce to %s: %w", r.Topic, err) })
					return
				}
				f.acked.Add(1)
			})
		}
	}
}

// Acked is how many records are acknowledged so far.
func (f *feeder) Acked() int64 { return f.acked.Load() }

// stop stops producing, waits until every record handed to the client is
// acknowledged and returns their count: records 0..n-1 are written.
func (f *feeder) stop(ctx context.Context) (int64, error) {
	f.cancel()
	defer f.cl.Close()
	select {
	case <-f.done:
	case <-ctx.Done():
		return 0, fmt.Errorf("input producer did not stop: %w", ctx.Err())
	}
	if err := f.cl.Flush(ctx); err != nil {
		return 0, fmt.Errorf("flush inputs: %w", err)
	}
	if f.err != nil {
		return 0, f.err
	}
	if h, a := f.handed.Load(), f.acked.Load(); h != a {
		return 0, fmt.Errorf("%d input records handed to the producer, %d acknowledged", h, a)
	}
	return f.acked.Load(), nil
}

package chaos

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/stream"
)

// counterCluster is an in-process cluster with the counter's topics and
// inputs 0..n-1 over keys k0..k(keys-1).
func counterCluster(t *testing.T, n, keys int) ([]string, *kgo.Client) {
	t.Helper()
	k, err := embedded.StartKafka(embedded.KafkaOptions{Brokers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx := context.Background()
	if _, err := stream.CreateTopics(ctx, kadm.NewClient(cl), []stream.TopicSpec{CounterIn.TopicSpec, CounterOut.TopicSpec}, -1); err != nil {
		t.Fatal(err)
	}
	var in []*kgo.Record
	for i := range n {
		in = append(in, &kgo.Record{Topic: CounterIn.Name, Key: []byte("k" + strconv.Itoa(i%keys)), Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(ctx, in...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return k.Addrs(), cl
}

// outputs are the counter's correct outputs for inputs 0..n-1, with edit
// applied to each before it is produced (nil drops it).
func outputs(n, keys int, edit func(i int, o CounterOutput) []CounterOutput) []*kgo.Record {
	count := map[string]int64{}
	var out []*kgo.Record
	for i := range n {
		k := "k" + strconv.Itoa(i%keys)
		count[k]++
		for _, o := range edit(i, CounterOutput{Count: count[k], Seq: int64(i)}) {
			v, _ := counterOutputCodec{}.Append(nil, o)
			out = append(out, &kgo.Record{Topic: CounterOut.Name, Key: []byte(k), Value: v})
		}
	}
	return out
}

func same(_ int, o CounterOutput) []CounterOutput { return []CounterOutput{o} }

// TestCheckCounter feeds the checker hand-made outputs: the correct ones,
// then each kind of fault it must count, so a checker that missed one would
// fail here and not pass a broken runtime.
func TestCheckCounter(t *testing.T) {
	const n, keys = 300, 7
	check := func(t *testing.T, mode stream.Mode, recs []*kgo.Record, setup func(brokers []string, cl *kgo.Client)) *Verdict {
		t.Helper()
		brokers, cl := counterCluster(t, n, keys)
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if setup != nil {
			setup(brokers, cl)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		v, err := Check(ctx, CheckOptions{Kind: KindCounter, Brokers: brokers, Mode: mode, Produced: n, Wait: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	t.Run("correct", func(t *testing.T) {
		// Plus an aborted transaction with a duplicate: read_committed
		// never sees it.
		v := check(t, stream.ExactlyOnce, outputs(n, keys, same), func(brokers []string, _ *kgo.Client) {
			txn, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("checker-test"))
			if err != nil {
				t.Fatal(err)
			}
			defer txn.Close()
			ctx := context.Background()
			if err := txn.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			dup := outputs(1, keys, same)
			if err := txn.ProduceSync(ctx, dup...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
				t.Fatal(err)
			}
		})
		if !v.OK() || v.Inputs != n || v.Outputs != n || v.Lost+v.Duplicated+v.Wrong != 0 {
			t.Fatalf("verdict %+v", v)
		}
	})
	t.Run("a duplicate", func(t *testing.T) {
		v := check(t, stream.ExactlyOnce, outputs(n, keys, func(i int, o CounterOutput) []CounterOutput {
			if i == 100 {
				// Applied twice: the same record's output again,
				// and every later count of its key one higher.
				return []CounterOutput{o, {Count: o.Count + 1, Seq: o.Seq}}
			}
			if i > 100 && i%keys == 100%keys {
				o.Count++
			}
			return []CounterOutput{o}
		}), nil)
		if v.OK() || v.Duplicated != 1 || v.Lost != 0 || v.Wrong == 0 || !strings.Contains(strings.Join(v.Problems, "\n"), "seq 100") {
			t.Fatalf("verdict %+v", v)
		}
	})
	t.Run("a loss", func(t *testing.T) {
		v := check(t, stream.ExactlyOnce, outputs(n, keys, func(i int, o CounterOutput) []CounterOutput {
			if i == 42 {
				return nil
			}
			return []CounterOutput{o}
		}), nil)
		if v.OK() || v.Lost != 1 || v.Complete || !strings.Contains(strings.Join(v.Problems, "\n"), "seq 42: no output") {
			t.Fatalf("verdict %+v", v)
		}
	})
	t.Run("state went back", func(t *testing.T) {
		// A restore that forgot an applied record: counts one low from
		// some point on, no output missing.
		v := check(t, stream.AtLeastOnce, outputs(n, keys, func(i int, o CounterOutput) []CounterOutput {
			if i >= 200 && i%keys == 0 {
				o.Count--
			}
			return []CounterOutput{o}
		}), nil)
		if v.OK() || v.Wrong == 0 || v.Lost != 0 {
			t.Fatalf("verdict %+v", v)
		}
	})
	t.Run("at least once: replays are duplicates, not failures", func(t *testing.T) {
		v := check(t, stream.AtLeastOnce, outputs(n, keys, func(i int, o CounterOutput) []CounterOutput {
			if i >= 50 && i < 60 {
				// Replayed after a crash, counted again.
				return []CounterOutput{o, {Count: o.Count + 100, Seq: o.Seq}}
			}
			return []CounterOutput{o}
		}), nil)
		if !v.OK() || v.Duplicated != 10 || v.Lost != 0 {
			t.Fatalf("verdict %+v", v)
		}
	})
	t.Run("an acknowledged input missing", func(t *testing.T) {
		brokers, cl := counterCluster(t, n, keys)
		if err := cl.ProduceSync(context.Background(), outputs(n, keys, same)...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		v, err := Check(ctx, CheckOptions{Kind: KindCounter, Brokers: brokers, Mode: stream.ExactlyOnce, Produced: n + 1, Wait: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if v.OK() || v.InputLost != 1 {
			t.Fatalf("verdict %+v", v)
		}
	})
}

// TestCheckWaitsForOpenTransactions: outputs behind an open transaction are
// not judged before it ends, and a transaction that never ends fails the
// check as unstable.
func TestCheckWaitsForOpenTransactions(t *testing.T) {
	const n, keys = 50, 3
	brokers, _ := counterCluster(t, n, keys)
	txn, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("open"), kgo.TransactionTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	ctx := context.Background()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, outputs(n, keys, same)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	v, err := Check(ctx, CheckOptions{Kind: KindCounter, Brokers: brokers, Mode: stream.ExactlyOnce, Produced: n, Wait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if v.OK() || v.Stable || len(v.OpenPartitions) == 0 {
		t.Fatalf("verdict with an open transaction: %+v", v)
	}
	done := make(chan *Verdict, 1)
	go func() {
		v, err := Check(ctx, CheckOptions{Kind: KindCounter, Brokers: brokers, Mode: stream.ExactlyOnce, Produced: n, Wait: 20 * time.Second})
		if err != nil {
			t.Error(err)
		}
		done <- v
	}()
	// Give the check time to start waiting: either order must pass, this
	// one is the order the test is about.
	time.Sleep(300 * time.Millisecond)
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if v := <-done; v == nil || !v.OK() {
		t.Fatalf("verdict after the commit: %+v", v)
	}
}

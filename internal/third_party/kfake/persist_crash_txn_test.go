package kfake

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceTxn writes n records in one transaction and commits it if commit
// is set, else leaves it open.
func produceTxn(ctx context.Context, t *testing.T, cl *kgo.Client, topic, prefix string, n int, commit bool) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: 0, Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if commit {
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
}

// readCommittedValues reads n records read_committed from the start of
// partition 0 and fails unless their values are exactly want.
func readCommittedValues(t *testing.T, c *Cluster, topic string, want []string) {
	t.Helper()
	cl := newPlainClient(t, c,
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(250*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			topic: {0: kgo.NewOffset().AtStart()},
		}),
	)
	var got []string
	for _, r := range consumeN(t, cl, len(want), 3*time.Second) {
		got = append(got, string(r.Value))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("read_committed read %q, want %q", got, want)
	}
}

// TestPersistFullReplayInFlightTxnAbortMarker verifies that a transaction
// left open by a crash is ended with an ABORT marker on load. Clients
// drop a producer's transactional batches from an aborted transaction's
// first offset until they read that producer's ABORT marker, so without
// one a read_committed consumer also dropped the producer's next,
// committed transaction.
func TestPersistFullReplayInFlightTxnAbortMarker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const (
		topic = "crash-abort-marker"
		txid  = "txn-crash-abort-marker"
	)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	txnOpts := []kgo.Opt{
		kgo.TransactionalID(txid),
		kgo.TransactionTimeout(30 * time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}

	// Phase 1: commit one transaction, leave a second open, crash (the
	// cluster is abandoned, not closed).
	{
		c := newCluster(t, DataDir(dir), SyncWrites(), NumBrokers(1), SeedTopics(1, topic))
		cl := newPlainClient(t, c, txnOpts...)
		produceTxn(ctx, t, cl, topic, "committed", 3, true)
		produceTxn(ctx, t, cl, topic, "inflight", 2, false)
	}
	os.Remove(filepath.Join(dir, "partitions", topic+"-0", "snapshot.json"))

	// Phase 2: full replay aborts the open transaction with a marker;
	// the same transactional ID then commits more.
	{
		c := newCluster(t, DataDir(dir), NumBrokers(1))
		pi := c.PartitionInfo(topic, 0)
		if pi == nil {
			t.Fatal("partition info not found")
		}
		// 3 records, COMMIT, 2 records, ABORT.
		if pi.HighWatermark != 7 || pi.LastStableOffset != 7 {
			t.Fatalf("after replay HWM=%d LSO=%d, want 7 and 7 (an ABORT marker appended)", pi.HighWatermark, pi.LastStableOffset)
		}
		cl := newPlainClient(t, c, txnOpts...)
		produceTxn(ctx, t, cl, topic, "after", 3, true)
		readCommittedValues(t, c, topic, []string{
			"committed-0", "committed-1", "committed-2",
			"after-0", "after-1", "after-2",
		})
	}
}

// TestPersistCleanRestartInProgressTxnThenCrash verifies that a
// transaction restored from the session state of a clean shutdown is
// aborted if the broker then crashes before writing to its partition:
// the partition snapshot still matched the segments but could not tell
// the transaction was open, so the open transaction was lost and its data
// later passed for committed.
func TestPersistCleanRestartInProgressTxnThenCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const (
		topic = "clean-then-crash-txn"
		txid  = "txn-clean-then-crash"
	)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	txnOpts := []kgo.Opt{
		kgo.TransactionalID(txid),
		kgo.TransactionTimeout(30 * time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}

	// Phase 1: commit one transaction, leave a second open, shut down
	// cleanly.
	{
		c := newCluster(t, DataDir(dir), NumBrokers(1), SeedTopics(1, topic))
		cl := newPlainClient(t, c, txnOpts...)
		produceTxn(ctx, t, cl, topic, "committed", 3, true)
		produceTxn(ctx, t, cl, topic, "inflight", 2, false)
		cl.Close()
		c.Close()
	}

	// Phase 2: the restart restores the open transaction; crash before
	// anything is written.
	{
		c := newCluster(t, DataDir(dir), NumBrokers(1))
		pi := c.PartitionInfo(topic, 0)
		if pi == nil || pi.LastStableOffset >= pi.HighWatermark {
			t.Fatalf("open transaction not restored: %+v", pi)
		}
	}

	// Phase 3: the transaction did not survive the crash: it is aborted,
	// and what the same transactional ID commits next is visible.
	{
		c := newCluster(t, DataDir(dir), NumBrokers(1))
		pi := c.PartitionInfo(topic, 0)
		if pi == nil {
			t.Fatal("partition info not found")
		}
		if pi.HighWatermark != 7 || pi.LastStableOffset != 7 {
			t.Fatalf("after crash HWM=%d LSO=%d, want 7 and 7 (an ABORT marker appended)", pi.HighWatermark, pi.LastStableOffset)
		}
		cl := newPlainClient(t, c, txnOpts...)
		produceTxn(ctx, t, cl, topic, "after", 3, true)
		readCommittedValues(t, c, topic, []string{
			"committed-0", "committed-1", "committed-2",
			"after-0", "after-1", "after-2",
		})
	}
}

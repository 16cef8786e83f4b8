package cli

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/chaos"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/schemas/topics"
)

// TestDevKafkaSurvivesSIGKILL runs `cratestream dev kafka` as a real OS
// process (this test binary, through TestMain), writes plain records, a
// committed transaction, an open transaction and a group offset, SIGKILLs
// the process, restarts it from its data directory at the same addresses and
// reads back exactly what was committed; then a clean stop (SIGTERM, exit 0)
// and a second restart keep it all.
func TestDevKafkaSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills cluster processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	listen, err := chaos.FreeListen(3)
	if err != nil {
		t.Fatal(err)
	}
	c := &chaos.Cluster{Bin: exe, Env: []string{"CRATESTREAM_TEST_AS_MAIN=1"}, DataDir: filepath.Join(dir, "kafka"),
		Listen: listen, Topics: true, LogDir: dir}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Kill() })
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\n(cluster log %s:\n%s)", append(args, filepath.Join(dir, "kafka.log"), chaos.Tail(filepath.Join(dir, "kafka.log"), 2000))...)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(listen...), kgo.DefaultProduceTopic("devtest"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// --topics created the catalogue.
	if err := stream.CheckTopics(ctx, adm, topics.Catalogue()); err != nil {
		fail("catalogue after --topics: %v", err)
	}
	if _, err := stream.CreateTopics(ctx, adm, []stream.TopicSpec{{Name: "devtest", Partitions: 3, Cleanup: stream.CleanupDelete}}, -1); err != nil {
		fail("create topic: %v", err)
	}

	const plain, committed, open = 3000, 100, 50
	var recs []*kgo.Record
	for i := range plain {
		recs = append(recs, &kgo.Record{Key: []byte("k" + strconv.Itoa(i%17)), Value: []byte("p" + strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		fail("produce: %v", err)
	}
	txn, err := kgo.NewClient(kgo.SeedBrokers(listen...), kgo.DefaultProduceTopic("devtest"), kgo.TransactionalID("devtest-txn"),
		kgo.TransactionTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	txnBatch := func(prefix string, n int) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			fail("begin: %v", err)
		}
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Key: []byte("t" + strconv.Itoa(i%5)), Value: []byte(prefix + strconv.Itoa(i))})
		}
		if err := txn.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			fail("produce in transaction: %v", err)
		}
	}
	txnBatch("c", committed)
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		fail("commit: %v", err)
	}
	txnBatch("o", open) // left open: the kill must abort it
	group := kadm.Offsets{}
	group.Add(kadm.Offset{Topic: "devtest", Partition: 0, At: 7, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, "devtest-group", group); err != nil || resp.Error() != nil {
		fail("commit offsets: %v %v", err, resp.Error())
	}

	// The whole cluster dies at once, its open transaction with it.
	pid := c.Proc().Pid()
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		fail("restart after SIGKILL: %v", err)
	}
	if c.Proc().Pid() == pid {
		t.Fatal("restart reused the killed process")
	}
	txn.Close() // its open transaction belongs to the dead cluster

	check := func(stage string, wantPlain int) {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		defer rcancel()
		// The open transaction is aborted by the restart: nothing may
		// stay behind the last stable offset for long.
		for {
			ends, err := chaos.TopicEnds(rctx, adm, "devtest")
			if err == nil && ends.OpenRecords() == 0 {
				break
			}
			if rctx.Err() != nil {
				fail("%s: transaction still open on devtest: %+v %v", stage, ends, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		got, _, err := chaos.ReadCommitted(rctx, listen, "devtest")
		if err != nil {
			fail("%s: read: %v", stage, err)
		}
		n := map[byte]int{}
		seen := map[string]bool{}
		for _, r := range got {
			n[r.Value[0]]++
			if seen[string(r.Value)] {
				fail("%s: %s read twice", stage, r.Value)
			}
			seen[string(r.Value)] = true
		}
		if n['p'] != wantPlain || n['c'] != committed || n['o'] != 0 || len(got) != wantPlain+committed {
			fail("%s: read %d plain (want %d), %d committed (want %d), %d of the open transaction (want 0), %d in all",
				stage, n['p'], wantPlain, n['c'], committed, n['o'], len(got))
		}
		offs, err := adm.FetchOffsets(rctx, "devtest-group")
		if err != nil {
			fail("%s: fetch offsets: %v", stage, err)
		}
		if o, ok := offs.Lookup("devtest", 0); !ok || o.At != 7 {
			fail("%s: committed offset of devtest/0 = %+v, want 7", stage, o)
		}
	}
	check("after SIGKILL", plain)

	// The restarted cluster takes writes.
	var more []*kgo.Record
	for i := range 10 {
		more = append(more, &kgo.Record{Key: []byte("k"), Value: []byte("p" + strconv.Itoa(plain+i))})
	}
	if err := cl.ProduceSync(ctx, more...).FirstErr(); err != nil {
		fail("produce after restart: %v", err)
	}
	check("after produce", plain+10)

	// SIGTERM stops it cleanly, and a restart keeps everything.
	if err := c.Stop(); err != nil {
		fail("clean stop: %v", err)
	}
	if err := c.Start(ctx); err != nil {
		fail("restart after SIGTERM: %v", err)
	}
	check("after a clean restart", plain+10)
	if err := c.Stop(); err != nil {
		fail("clean stop: %v", err)
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "kafka.log")); !strings.Contains(string(log), "brokers="+strings.Join(listen, ",")) {
		t.Errorf("the log has no brokers line for %v", listen)
	}
}

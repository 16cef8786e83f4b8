package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The broker of these tests is a separate OS process killed with SIGKILL:
// an in-process "crash" (abandoning a *kfake.Cluster) keeps its goroutines
// and open files alive, so it cannot show what a restart finds on disk.
const (
	helperDirEnv  = "CRATESTREAM_KFAKE_HELPER_DIR"
	helperPortEnv = "CRATESTREAM_KFAKE_HELPER_PORT"
	readyPrefix   = "KFAKE-READY "
)

// TestHelperBroker is not a test: TestKfakeSIGKILLRestart re-executes the
// test binary with -test.run=^TestHelperBroker$ to run the broker in a
// process of its own. It prints its address and serves until its stdin
// closes (or it is killed).
func TestHelperBroker(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("helper process for TestKfakeSIGKILLRestart")
	}
	port, err := strconv.Atoi(os.Getenv(helperPortEnv))
	if err != nil {
		t.Fatalf("%s: %v", helperPortEnv, err)
	}
	k, err := StartKafka(KafkaOptions{Brokers: 1, DataDir: dir, Ports: []int{port}})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	fmt.Printf("%s%s\n", readyPrefix, strings.Join(k.Addrs(), ","))
	// The parent holds the other end of stdin: if it dies without killing
	// us, EOF ends the broker (Pdeathsig is the second line of defence).
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// brokerProc is one run of the helper broker.
type brokerProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *syncBuffer
	done  chan struct{}
	werr  error // cmd.Wait's result, valid once done is closed
	addr  string
}

func startBrokerProc(ctx context.Context, t *testing.T, dir string, port int) *brokerProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBroker$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperPortEnv+"="+strconv.Itoa(port))
	cmd.SysProcAttr = ChildAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &brokerProc{cmd: cmd, stdin: stdin, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = b.out, b.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper broker: %v", err)
	}
	go func() {
		b.werr = cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() { b.kill(t) })

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if _, rest, ok := strings.Cut(b.out.String(), readyPrefix); ok {
			if addr, _, ok := strings.Cut(rest, "\n"); ok {
				b.addr = addr
				return b
			}
		}
		select {
		case <-b.done:
			t.Fatalf("helper broker exited before ready: %v; output:\n%s", b.werr, tail(b.out.String(), 2000))
		case <-ctx.Done():
			t.Fatalf("helper broker not ready: %v; output:\n%s", ctx.Err(), tail(b.out.String(), 2000))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill SIGKILLs the broker (no shutdown path runs, as in a crash) and waits
// for the kernel to reap it so its port and files are free.
func (b *brokerProc) kill(t *testing.T) {
	t.Helper()
	select {
	case <-b.done:
		return
	default:
	}
	if err := syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill helper broker: %v", err)
	}
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("helper broker %d survived SIGKILL for 5s", b.cmd.Process.Pid)
	}
	_ = b.stdin.Close()
	var ee *exec.ExitError
	if !errors.As(b.werr, &ee) {
		t.Fatalf("helper broker exit: %v, want death by SIGKILL", b.werr)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper broker exit: %v, want death by SIGKILL; output:\n%s", b.werr, tail(b.out.String(), 2000))
	}
}

const (
	restartTopic = "changelog"
	restartTxnID = "restore-txn"
	perTxn       = 50
)

func txnProducer(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.TransactionalID(restartTxnID),
		// Long enough that no transaction times out during a test: a
		// timeout abort writes proper markers and would hide the defect.
		kgo.TransactionTimeout(time.Minute),
		kgo.DefaultProduceTopic(restartTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RetryTimeout(5*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// closeWithin closes a client whose broker may have died under it; Close
// must not be what makes the test hang.
func closeWithin(t *testing.T, cl *kgo.Client, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { cl.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Errorf("client Close took more than %s", d)
	}
}

func txnRecords(prefix string) []*kgo.Record {
	rs := make([]*kgo.Record, perTxn)
	for i := range rs {
		rs[i] = &kgo.Record{Partition: 0, Value: fmt.Appendf(nil, "%s-%03d", prefix, i)}
	}
	return rs
}

// produceInTxn begins a transaction and writes one transaction's records;
// ProduceSync returns once the broker has appended them to its log.
func produceInTxn(ctx context.Context, cl *kgo.Client, prefix string) error {
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin %s: %w", prefix, err)
	}
	if err := cl.ProduceSync(ctx, txnRecords(prefix)...).FirstErr(); err != nil {
		return fmt.Errorf("produce %s: %w", prefix, err)
	}
	return nil
}

func commitTxn(ctx context.Context, cl *kgo.Client, prefix string) error {
	if err := produceInTxn(ctx, cl, prefix); err != nil {
		return err
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit %s: %w", prefix, err)
	}
	return nil
}

// readCommitted reads the partition read_committed from the start up to a
// sentinel record written last by a non-transactional producer: on one
// partition, seeing the sentinel means every earlier offset was delivered
// or filtered.
func readCommitted(ctx context.Context, addr string) (map[string]int, error) {
	const sentinel = "END"
	pcl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(restartTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return nil, err
	}
	defer pcl.Close()
	if err := pcl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte(sentinel)}).FirstErr(); err != nil {
		return nil, fmt.Errorf("produce sentinel: %w", err)
	}

	ccl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{restartTopic: {0: kgo.NewOffset().AtStart()}}),
	)
	if err != nil {
		return nil, err
	}
	defer ccl.Close()
	seen := make(map[string]int)
	for {
		fs := ccl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return seen, fmt.Errorf("sentinel not read: %w", err)
		}
		var fetchErr error
		fs.EachError(func(_ string, _ int32, err error) { fetchErr = errors.Join(fetchErr, err) })
		if fetchErr != nil {
			return seen, fmt.Errorf("fetch: %w", fetchErr)
		}
		var done bool
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == sentinel {
				done = true
				return
			}
			seen[string(r.Value)]++
		})
		if done {
			return seen, nil
		}
	}
}

// checkCommitted compares what a read_committed reader saw with what was
// committed. committed transactions must be seen whole and once; aborted
// ones not at all; an unknown outcome (EndTxn cut by the kill) all or
// nothing, since the topic has one partition.
func checkCommitted(t *testing.T, seen map[string]int, committed, aborted, unknown []string) {
	t.Helper()
	want := 0
	for _, prefix := range committed {
		var hidden []string
		for _, r := range txnRecords(prefix) {
			v := string(r.Value)
			switch n := seen[v]; n {
			case 1:
			case 0:
				hidden = append(hidden, v)
			default:
				t.Errorf("%s read %d times", v, n)
			}
		}
		want += perTxn
		if len(hidden) > 0 {
			t.Errorf("committed transaction %s: %d of %d records hidden from read_committed (first %s)",
				prefix, len(hidden), perTxn, hidden[0])
		}
	}
	for _, prefix := range aborted {
		for _, r := range txnRecords(prefix) {
			if n := seen[string(r.Value)]; n > 0 {
				t.Errorf("aborted transaction %s visible to read_committed: %s", prefix, r.Value)
				break
			}
		}
	}
	for _, prefix := range unknown {
		var n int
		for _, r := range txnRecords(prefix) {
			if seen[string(r.Value)] > 0 {
				n++
			}
		}
		if n != 0 && n != perTxn {
			t.Errorf("transaction %s with unknown outcome is torn: %d of %d records visible", prefix, n, perTxn)
		}
		want += n
	}
	total := 0
	for _, n := range seen {
		total += n
	}
	if total != want {
		t.Errorf("read_committed read %d records, want %d", total, want)
	}
}

// TestKfakeSIGKILLRestart kills the broker while a transaction is open (or
// being committed), restarts it from the same data directory and port,
// commits more from the same transactional id, and requires a
// read_committed reader to see every committed record and no aborted one.
// kfake used to abort the open transaction on load without writing an
// ABORT marker, so the reader also dropped the producer's later committed
// records (the vendored copy in internal/third_party/kfake fixes it).
func TestKfakeSIGKILLRestart(t *testing.T) {
	// One deadline for every case keeps the whole test bounded even when
	// each case hangs.
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		// end commits B concurrently with the kill, which comes after
		// killAfter; the kill may land before, while or after the broker
		// handles the EndTxn.
		end       bool
		killAfter time.Duration
		// sameClient: after the restart the producer that opened B
		// tries to commit it.
		sameClient bool
		// cleanFirst: stop the broker cleanly (B open) and restart it
		// once before the kill.
		cleanFirst bool
	}{
		{name: "open"},
		{name: "ending", end: true},
		{name: "ended", end: true, killAfter: 10 * time.Millisecond},
		{name: "same-client", sameClient: true},
		{name: "clean-restart-then-kill", cleanFirst: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			port, err := freePort()
			if err != nil {
				t.Fatal(err)
			}

			b := startBrokerProc(ctx, t, dir, port)
			adm, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kadm.NewClient(adm).CreateTopic(ctx, 1, 1, nil, restartTopic); err != nil {
				t.Fatal(err)
			}
			adm.Close()

			p1 := txnProducer(t, b.addr)
			if err := commitTxn(ctx, p1, "A"); err != nil {
				t.Fatal(err)
			}
			if err := produceInTxn(ctx, p1, "B"); err != nil {
				t.Fatal(err)
			}

			var endB chan error
			if tc.end {
				// kgo retries the EndTxn until the restarted broker
				// answers or the deadline passes.
				endB = make(chan error, 1)
				go func() { endB <- p1.EndTransaction(ctx, kgo.TryCommit) }()
				time.Sleep(tc.killAfter)
			}
			if tc.cleanFirst {
				_ = b.stdin.Close() // the helper's polite Close
				select {
				case <-b.done:
				case <-ctx.Done():
					t.Fatal("helper broker did not stop on stdin EOF")
				}
				if b.werr != nil {
					t.Fatalf("clean stop: %v; output:\n%s", b.werr, tail(b.out.String(), 2000))
				}
				b = startBrokerProc(ctx, t, dir, port)
			}
			b.kill(t)
			b = startBrokerProc(ctx, t, dir, port)

			committed, aborted, unknown := []string{"A", "C"}, []string(nil), []string(nil)
			switch {
			case tc.end:
				select {
				case err := <-endB:
					if err == nil {
						committed = append(committed, "B")
					} else {
						t.Logf("commit of B cut by the kill: %v", err)
						unknown = append(unknown, "B")
					}
				case <-ctx.Done():
					t.Fatal("EndTransaction did not return")
				}
			case tc.sameClient:
				// The broker lost the transaction: committing it now
				// must not report success unless B is then visible.
				if err := p1.EndTransaction(ctx, kgo.TryCommit); err == nil {
					committed = append(committed, "B")
				} else {
					t.Logf("commit of B after restart: %v", err)
					aborted = append(aborted, "B")
				}
			default:
				aborted = append(aborted, "B")
			}
			closeWithin(t, p1, 5*time.Second)

			p2 := txnProducer(t, b.addr)
			defer closeWithin(t, p2, 5*time.Second)
			if err := commitTxn(ctx, p2, "C"); err != nil {
				t.Fatal(err)
			}

			seen, err := readCommitted(ctx, b.addr)
			if err != nil {
				t.Fatal(err)
			}
			checkCommitted(t, seen, committed, aborted, unknown)
		})
	}
}

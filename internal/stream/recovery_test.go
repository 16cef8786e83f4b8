package stream_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cratestream/cratestream/internal/stream"
)

// panicCodec is an int64 codec whose encoder panics from a value on: a bug
// outside any handler, met when the runner flushes the store.
type panicCodec struct{ at int64 }

func (c panicCodec) Append(dst []byte, v int64) ([]byte, error) {
	if v >= c.at {
		panic("codec bug at " + strconv.FormatInt(v, 10))
	}
	return strconv.AppendInt(dst, v, 10), nil
}

func (panicCodec) Decode(b []byte) (int64, error) { return strconv.ParseInt(string(b), 10, 64) }

// A panic in the processing loop (not in a handler) ends Run with the panic
// and makes the instance unhealthy. It used to unwind with the loop's lock
// held: the client's close then waited on it in the revoke callback, and
// the process hung, healthy in appearance, its partitions unprocessed.
func TestLoopPanicEndsRun(t *testing.T) {
	for _, mode := range []stream.Mode{stream.AtLeastOnce, stream.ExactlyOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
			p := stream.NewProcessor("panicky", mode)
			counts := stream.NewTable(p, "counts", stream.Codec[string](stream.StringCodec{}), stream.Codec[int64](panicCodec{at: 3}))
			stream.Consume(p, inTopic, func(c *stream.Ctx, k string, _ int64) error {
				n, _, err := counts.Get(c, k)
				if err != nil {
					return err
				}
				return counts.Put(c, k, n+1)
			})
			r, err := stream.NewRunner(p, c.config("a"))
			if err != nil {
				t.Fatal(err)
			}
			recs, _ := inputs(50, 1, 0) // one key: its count reaches 3
			c.produce(t, recs...)
			done := make(chan error, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { done <- r.Run(ctx) }()
			select {
			case err := <-done:
				if err == nil || !containsAll(err.Error(), "panicked", "codec bug at") {
					t.Fatalf("Run = %v, want the loop's panic", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("Run did not return after the loop panicked: the process would hang (stats %+v)", r.Stats())
			}
			if err := r.Healthy(); err == nil {
				t.Error("Healthy() = nil after the loop panicked")
			}
			if r.Ready() {
				t.Error("Ready() after the loop panicked")
			}
		})
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// An exactly-once instance whose membership is lost while it has a
// transaction open aborts it and rejoins: no session failure, and the
// output stays exactly once. It used to end the transaction while the
// lost callback was held by BlockRebalanceOnPoll; End forced a heartbeat
// nobody answered (the heartbeat loop had exited on the error) and returned
// only at the 30s commit deadline ("end transaction: context deadline
// exceeded"), failing the session.
func TestExactlyOnceSurvivesLostMembership(t *testing.T) {
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
	cfg := c.config("a")
	// Commits far apart, heartbeats every 2s: the periodic heartbeat,
	// not the one End forces, meets the fault, with work uncommitted.
	cfg.CommitInterval = 4 * time.Second
	reg := prometheus.NewRegistry()
	cfg.Metrics = reg
	p, _ := counter(stream.ExactlyOnce)
	a := start(t, p, cfg)
	const total = 3000
	all, want := inputs(total, 30, 0)
	c.produce(t, all[:1000]...)
	committed := func() float64 { return metricValue(t, reg, "cratestream_commits_total", "result", "committed") }
	waitFor(t, "a commit", 20*time.Second, func() bool { return committed() > 0 })
	before := committed()
	c.produce(t, all[1000:1500]...)
	waitFor(t, "the next commit", 20*time.Second, func() bool { return committed() > before })
	// The next commit is 4s away; the next heartbeat at most 2s.
	c.produce(t, all[1500:2000]...)
	lost := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Heartbeat}, Group: "counter", Err: kerr.UnknownMemberID})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := lost.Wait(ctx, 1); err != nil {
		t.Fatalf("the heartbeat fault was never hit: %v", err)
	}
	c.produce(t, all[2000:]...)
	// Well inside the 30s the stalled End took.
	checkExactlyOnce(t, c.readAll(t, "out", total, 20*time.Second), want)
	if n := a.r.Stats().SessionFailures; n != 0 {
		t.Errorf("%d session failures: the lost membership stalled the transaction's end", n)
	}
}

// metricValue reads a counter of reg whose label has value.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A crashed instance (it never left the group) restarted with the same
// instance id gets its partitions back at once: members are static. A
// dynamic member's restart waited for the crashed member's session to
// expire (~45s by default).
func TestRestartedInstanceRejoinsAtOnce(t *testing.T) {
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
	cfg := c.config("a")
	cfg.SessionTimeout = 60 * time.Second
	p, _ := counter(stream.ExactlyOnce)
	a := start(t, p, cfg)
	waitFor(t, "tasks", 20*time.Second, func() bool { return a.r.Stats().Tasks == 6 && a.r.Ready() })
	// A crash sends no LeaveGroup; refuse the leave a polite close might
	// send, so that this is what the group sees.
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.LeaveGroup}, Group: "counter", Err: kerr.UnknownServerError, Count: -1})
	a.r.Kill()
	a.stop(t)

	cfg.Metrics = nil
	p2, _ := counter(stream.ExactlyOnce)
	begin := time.Now()
	b := start(t, p2, cfg)
	// Far below the 60s session timeout a dynamic member would wait out.
	waitFor(t, "the restarted instance's tasks", 20*time.Second, func() bool { return b.r.Stats().Tasks == 6 && b.r.Ready() })
	t.Logf("restarted instance owned its 6 tasks after %s", time.Since(begin).Round(time.Millisecond))
	recs, want := inputs(600, 12, 0)
	c.produce(t, recs...)
	checkExactlyOnce(t, c.readAll(t, "out", 600, 30*time.Second), want)
}

// A clean stop hands the partitions over at once although static members
// do not leave on close: Run leaves explicitly.
func TestCleanStopLeavesTheGroup(t *testing.T) {
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
	cfgA, cfgB := c.config("a"), c.config("b")
	cfgA.SessionTimeout, cfgB.SessionTimeout = 60*time.Second, 60*time.Second
	pa, _ := counter(stream.ExactlyOnce)
	pb, _ := counter(stream.ExactlyOnce)
	a := start(t, pa, cfgA)
	b := start(t, pb, cfgB)
	waitFor(t, "both own tasks", 20*time.Second, func() bool { return a.r.Stats().Tasks == 3 && b.r.Stats().Tasks == 3 })
	b.stop(t)
	waitFor(t, "a owns every task", 20*time.Second, func() bool { return a.r.Stats().Tasks == 6 })
}

// Failpoints are parsed strictly: a typo must not silently disarm a chaos
// run.
func TestFailpointSpec(t *testing.T) {
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
	for _, tc := range []struct {
		spec string
		ok   bool
	}{
		{"", true},
		{"eos-before-end:3", true},
		{"eos-before-end:1, alo-before-commit:2", true},
		{"eos-before-end", false},
		{"eos-before-end:0", false},
		{"eos-befor-end:1", false},
	} {
		p, _ := counter(stream.ExactlyOnce)
		cfg := c.config("a")
		cfg.Failpoints = tc.spec
		_, err := stream.NewRunner(p, cfg)
		if (err == nil) != tc.ok {
			t.Errorf("failpoints %q: err = %v, want ok=%v", tc.spec, err, tc.ok)
		}
	}
}

// Every record panics (a bug): the processor must not drain its input into
// the dead-letter topic. Past the dead-letter limit it halts, reports why
// as not ready, and processes nothing more.
func TestPanicStormHalts(t *testing.T) {
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
	p := stream.NewProcessor("storm", stream.ExactlyOnce)
	stream.Consume(p, inTopic, func(*stream.Ctx, string, int64) error { panic("bug") })
	cfg := c.config("a")
	cfg.DeadLetterWindow, cfg.MaxDeadLetterRatio = 40, 0.5
	a := start(t, p, cfg)
	recs, _ := inputs(2000, 10, 0)
	c.produce(t, recs...)
	waitFor(t, "the halt", 20*time.Second, func() bool {
		err := a.r.Readiness()
		return err != nil && strings.Contains(err.Error(), "halted")
	})
	t.Log(a.r.Readiness())
	processed := a.r.Stats().Processed
	more, _ := inputs(100, 10, 2000)
	c.produce(t, more...)
	dl := c.readAll(t, "dlq.v1", 20, 2*time.Second)
	if len(dl) > 20 {
		t.Errorf("%d dead letters committed, want at most the limit (20 of 40)", len(dl))
	}
	if n := a.r.Stats().Processed; n != processed {
		t.Errorf("processed %d more records after halting", n-processed)
	}
}

// An on-disk store damaged while its instance was down (a flipped block, a
// torn manifest) is detected at open and rebuilt from its changelog: the
// instance neither serves wrong state nor fails at every start.
func TestDamagedStoreIsRebuilt(t *testing.T) {
	c := newCluster(t, inTopic.TopicSpec)
	cfg := c.config("a")
	cfg.StateDir = t.TempDir()
	const n = 600
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "in", Key: []byte("key" + strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}
	}
	p, _ := kvWriter(64 << 10)
	a := start(t, p, cfg)
	c.produce(t, recs...)
	waitFor(t, "written and committed", 30*time.Second, func() bool { return a.r.Stats().Processed >= n && a.r.Idle() })
	a.stop(t)

	damaged := 0
	err := filepath.WalkDir(cfg.StateDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		if !strings.HasPrefix(name, "MANIFEST") && !strings.HasSuffix(name, ".sst") && !strings.HasSuffix(name, ".log") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil || len(b) < 16 {
			return err
		}
		for i := len(b) / 4; i < len(b)/2; i++ {
			b[i] ^= 0x5a
		}
		damaged++
		t.Logf("damaging %s (%d bytes)", path, len(b))
		return os.WriteFile(path, b, 0o644)
	})
	if err != nil || damaged == 0 {
		t.Fatalf("damaged %d files: %v", damaged, err)
	}

	cfg.Metrics = nil
	p2, tbl := kvWriter(64 << 10)
	b := start(t, p2, cfg)
	waitFor(t, "ready", 30*time.Second, b.r.Ready)
	if b.r.Stats().StoresRebuilt == 0 {
		t.Error("no store was rebuilt after its files were damaged")
	}
	ctx := context.Background()
	for i := 0; i < n; i++ {
		k := "key" + strconv.Itoa(i)
		v, ok, err := stream.Lookup(ctx, b.r, tbl, k)
		if err != nil || !ok || v != value1k(k, int64(i)) {
			t.Fatalf("%s = %.20q, %v, %v", k, v, ok, err)
		}
	}
}

// An instance whose session fails (its producer fenced) while another takes
// its partitions over must, when it gets them back, replay what the other
// wrote. (The chaos suite's broker scenario found a path where the failed
// session's tasks outlived it and were taken back without that replay:
// a lost callback queued during an End that then failed. Each task handed
// out now replays its changelog tail, held or not.)
func TestTasksReplayAfterAFailedSession(t *testing.T) {
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
	cfgA, cfgB := c.config("a"), c.config("b")
	for _, cfg := range []*stream.Config{&cfgA, &cfgB} {
		cfg.SessionTimeout = 2 * time.Second
	}
	// a stays away past its session timeout after the failure: b takes
	// its partitions and writes to their stores meanwhile.
	cfgA.RetryBackoffMin, cfgA.RetryBackoffMax = 6*time.Second, 6*time.Second
	pa, _ := counter(stream.ExactlyOnce)
	a := start(t, pa, cfgA)
	pb, _ := counter(stream.ExactlyOnce)
	b := start(t, pb, cfgB)
	waitFor(t, "both own tasks", 20*time.Second, func() bool { return a.r.Stats().Tasks == 3 && b.r.Stats().Tasks == 3 })
	const total = 9000
	all, want := inputs(total, 30, 0)
	c.produce(t, all[:3000]...)
	waitFor(t, "a processing", 20*time.Second, func() bool { return a.r.Stats().Processed >= 1000 })

	// Fence a's transactional producer: its next commit fails and its
	// session restarts after the backoff.
	fencer, err := kgo.NewClient(append(clientOpts(), kgo.SeedBrokers(c.Addrs()...), kgo.TransactionalID("counter-a"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer fencer.Close()
	if err := fencer.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := fencer.ProduceSync(context.Background(), &kgo.Record{Topic: "dlq.v1", Value: []byte("fence")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := fencer.EndTransaction(context.Background(), kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	c.produce(t, all[3000:6000]...)
	waitFor(t, "a's session failed", 20*time.Second, func() bool { return a.r.Stats().SessionFailures > 0 })
	waitFor(t, "b took over", 20*time.Second, func() bool { return b.r.Stats().Tasks == 6 })
	c.produce(t, all[6000:]...)
	waitFor(t, "a back", 30*time.Second, func() bool { return a.r.Stats().Tasks == 3 })
	checkExactlyOnce(t, c.readAll(t, "out", total, 60*time.Second), want)
}

package stream_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cratestream/cratestream/internal/stream"
)

// Retriable produce errors, coordinator moves and leader shuffles while the
// processor runs: no loss, and in exactly-once mode no duplicate.
func TestSurvivesBrokerFaults(t *testing.T) {
	for _, mode := range []stream.Mode{stream.AtLeastOnce, stream.ExactlyOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
			p, _ := counter(mode)
			a := start(t, p, c.config("a"))
			const total = 12000
			all, want := inputs(total, 40, 0)
			c.produce(t, all[:3000]...)
			waitFor(t, "progress", 20*time.Second, func() bool { return a.r.Stats().Processed > 1000 })

			faults := c.Fault(
				kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "out", Err: kerr.NotEnoughReplicas, Count: 15},
				kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "counter-counts-changelog", Err: kerr.NotLeaderForPartition, Count: 10},
			)
			c.produce(t, all[3000:6000]...)
			c.RehashCoordinators()
			c.produce(t, all[6000:9000]...)
			c.shuffleLeaders()
			c.produce(t, all[9000:]...)

			out := c.readAll(t, "out", total, 60*time.Second)
			if hits := faults.Hits(); hits == 0 {
				t.Error("no injected produce fault was hit: the test exercised nothing")
			}
			if mode == stream.ExactlyOnce {
				checkExactlyOnce(t, out, want)
				return
			}
			// At-least-once: every count 1..n present (duplicates allowed).
			seen := map[string]map[int64]bool{}
			for _, r := range out {
				v, _ := strconv.ParseInt(string(r.Value), 10, 64)
				if seen[string(r.Key)] == nil {
					seen[string(r.Key)] = map[int64]bool{}
				}
				seen[string(r.Key)][v] = true
			}
			for k, n := range want {
				for i := 1; i <= n; i++ {
					if !seen[k][int64(i)] {
						t.Fatalf("key %s lost count %d", k, i)
					}
				}
			}
		})
	}
}

// A handler failing with a transient error is retried with backoff, its
// partition paused; the record is then processed exactly once.
func TestTransientFailureIsRetried(t *testing.T) {
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
	var mu sync.Mutex
	failures := 0
	p := stream.NewProcessor("flaky", stream.ExactlyOnce)
	counts := stream.NewTable(p, "counts", stream.Codec[string](stream.StringCodec{}), stream.Codec[int64](stream.Int64Codec{}))
	stream.Consume(p, inTopic, func(c *stream.Ctx, k string, v int64) error {
		if k == "k3" {
			mu.Lock()
			f := failures
			if f < 3 {
				failures++
			}
			mu.Unlock()
			if f < 3 {
				return errors.New("external system unavailable")
			}
		}
		n, _, _ := counts.Get(c, k)
		if err := counts.Put(c, k, n+1); err != nil {
			return err
		}
		return stream.Emit(c, outTopic, k, n+1)
	})
	cfg := c.config("a")
	cfg.RetryBackoffMin = 20 * time.Millisecond
	start(t, p, cfg)
	recs, want := inputs(600, 10, 0)
	c.produce(t, recs...)
	checkExactlyOnce(t, c.readAll(t, "out", 600, 30*time.Second), want)
	mu.Lock()
	defer mu.Unlock()
	if failures != 3 {
		t.Errorf("handler failed %d times, want 3 retries", failures)
	}
}

// kvWriter stores 1 KiB per key in an on-disk table.
func kvWriter(cacheBytes int64) (*stream.Processor, *stream.Table[string, string]) {
	p := stream.NewProcessor("writer", stream.ExactlyOnce)
	tbl := stream.NewTable(p, "values", stream.Codec[string](stream.StringCodec{}), stream.Codec[string](stream.StringCodec{}), stream.OnDisk(cacheBytes))
	stream.Consume(p, inTopic, func(c *stream.Ctx, k string, v int64) error {
		return tbl.Put(c, k, value1k(k, v))
	})
	return p, tbl
}

func value1k(k string, v int64) string {
	s := k + "=" + strconv.FormatInt(v, 10) + ";"
	return s + strings.Repeat("x", 1024-len(s))
}

// The on-disk store keeps a checkpoint: a restart replays only the changelog
// written since, and the state is complete.
func TestOnDiskStoreReplaysOnlyTheTail(t *testing.T) {
	const cache = 256 << 10
	const first, tail = 3000, 400 // 3 MB of values: more than ten times the cache
	c := newCluster(t, inTopic.TopicSpec)
	dirA := t.TempDir()

	recs := make([]*kgo.Record, 0, first+tail)
	for i := 0; i < first+tail; i++ {
		recs = append(recs, &kgo.Record{Topic: "in", Key: []byte("key" + strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))})
	}
	waitProcessed := func(rn *running, n int64) {
		waitFor(t, fmt.Sprintf("%d processed", n), 30*time.Second, func() bool { return rn.r.Stats().Processed >= n })
	}

	cfg := c.config("a")
	cfg.StateDir = dirA
	p, _ := kvWriter(cache)
	a := start(t, p, cfg)
	c.produce(t, recs[:first]...)
	waitProcessed(a, first)
	a.stop(t) // clean stop: commits and checkpoints

	// Another instance processes the tail while a is down.
	cfgB := c.config("b")
	cfgB.StateDir = t.TempDir()
	pb2, _ := kvWriter(cache)
	b := start(t, pb2, cfgB)
	c.produce(t, recs[first:]...)
	waitProcessed(b, tail)
	b.stop(t)

	cfg.Metrics = nil
	p3, tbl := kvWriter(cache)
	a2 := start(t, p3, cfg)
	waitFor(t, "ready", 30*time.Second, a2.r.Ready)
	if got := a2.r.Stats().LastRestored; got != tail {
		t.Errorf("restart replayed %d changelog records, want only the %d of the tail", got, tail)
	}
	ctx := context.Background()
	for i := 0; i < first+tail; i++ {
		k := "key" + strconv.Itoa(i)
		v, ok, err := stream.Lookup(ctx, a2.r, tbl, k)
		if err != nil || !ok || v != value1k(k, int64(i)) {
			t.Fatalf("%s = %.20q, %v, %v", k, v, ok, err)
		}
	}
}

// A timer's deadline lives in the store: a crash before it fires does not
// lose it, and it fires exactly once.
func TestTimersSurviveACrash(t *testing.T) {
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
	build := func() *stream.Processor {
		p := stream.NewProcessor("timers", stream.ExactlyOnce)
		tm := stream.NewTimer(p, "later", stream.Codec[int64](stream.Int64Codec{}), func(c *stream.Ctx, id string, v int64) error {
			return stream.Emit(c, outTopic, id, v)
		})
		stream.Consume(p, inTopic, func(c *stream.Ctx, k string, v int64) error {
			return tm.Schedule(c, k, time.Now().Add(1500*time.Millisecond), v)
		})
		return p
	}
	cfg := c.config("a")
	a := start(t, build(), cfg)
	recs, _ := inputs(20, 20, 1)
	c.produce(t, recs...)
	waitFor(t, "scheduled and committed", 20*time.Second, func() bool { return a.r.Stats().Processed >= 20 && a.r.Idle() })
	a.r.Kill()
	a.stop(t)

	cfg.Metrics = nil
	start(t, build(), cfg)
	out := c.readAll(t, "out", 20, 30*time.Second)
	if len(out) != 20 {
		t.Fatalf("%d timer outputs, want 20", len(out))
	}
	seen := map[string]bool{}
	for _, r := range out {
		if seen[string(r.Key)] {
			t.Fatalf("timer %s fired twice", r.Key)
		}
		seen[string(r.Key)] = true
	}
}

// Every task of every instance sees every broadcast record exactly once.
func TestBroadcastReachesEveryTask(t *testing.T) {
	ctl := stream.NewTopic(topicSpec("ctl", 2, stream.CleanupDelete), stream.Codec[string](stream.StringCodec{}), stream.Codec[int64](seqCodec{}))
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec, ctl.TopicSpec)
	build := func() *stream.Processor { return bcastProcessor(ctl) }
	a := start(t, build(), c.config("a"))
	b := start(t, build(), c.config("b"))
	waitFor(t, "both own tasks", 20*time.Second, func() bool {
		return a.r.Stats().Tasks == 3 && b.r.Stats().Tasks == 3 && a.r.Ready() && b.r.Ready() && a.r.Idle() && b.r.Idle()
	})
	const n = 10
	for i := 0; i < n; i++ {
		c.produce(t, &kgo.Record{Topic: "ctl", Key: []byte("c" + strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))})
	}
	out := c.readAll(t, "out", 6*n, 30*time.Second)
	checkEveryTaskOnce(t, out, 6, n)
}

func TestGlobalTable(t *testing.T) {
	ref := stream.NewTopic(topicSpec("ref", 3, stream.CleanupCompact), stream.Codec[string](stream.StringCodec{}), stream.Codec[string](stream.StringCodec{}))
	c := newCluster(t, ref.TopicSpec)
	var recs []*kgo.Record
	for i := 0; i < 300; i++ {
		recs = append(recs, &kgo.Record{Topic: "ref", Key: []byte("l" + strconv.Itoa(i)), Value: []byte("release" + strconv.Itoa(i%10))})
	}
	c.produce(t, recs...)
	g := stream.NewGlobalTable(ref, stream.GlobalConfig{Brokers: c.Addrs(), ClientOpts: clientOpts(), Logger: testLogger()})
	g.AddIndex("release", func(_ string, v string) []string { return []string{v} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()

	select {
	case <-g.CaughtUp():
	case <-time.After(20 * time.Second):
		t.Fatal("never caught up")
	}
	if g.Len() != 300 || g.Count("release", "release3") != 30 {
		t.Fatalf("len %d, release3 %d", g.Len(), g.Count("release", "release3"))
	}
	// Move one row, delete another; wait for exactly the produced offsets.
	moved := &kgo.Record{Topic: "ref", Key: []byte("l3"), Value: []byte("release7")}
	gone := &kgo.Record{Topic: "ref", Key: []byte("l13")}
	c.produce(t, moved, gone)
	wait := map[int32]int64{moved.Partition: moved.Offset + 1}
	if o := gone.Offset + 1; o > wait[gone.Partition] {
		wait[gone.Partition] = o
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := g.WaitFor(wctx, wait); err != nil {
		t.Fatal(err)
	}
	if v, _ := g.Get("l3"); v != "release7" {
		t.Errorf("l3 = %q", v)
	}
	if _, ok := g.Get("l13"); ok {
		t.Error("l13 not deleted")
	}
	if n := g.Count("release", "release3"); n != 28 {
		t.Errorf("release3 has %d rows after the move and delete, want 28", n)
	}
	found := 0
	_ = g.Find("release", "release7", func(k, v string) bool { found++; return true })
	if found != 31 {
		t.Errorf("release7 has %d rows, want 31", found)
	}
	// Waiting for an offset not yet written times out with a clear error.
	short, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer scancel()
	if err := g.WaitFor(short, map[int32]int64{0: 1 << 40}); err == nil {
		t.Error("WaitFor beyond the end returned nil")
	}
}

// Records re-keyed through a repartition topic are processed co-partitioned
// by the new key.
func TestRepartition(t *testing.T) {
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
	p := stream.NewProcessor("bymod", stream.ExactlyOnce)
	byMod := stream.RepartitionTopic(p, "mod", stream.Codec[string](stream.StringCodec{}), stream.Codec[int64](seqCodec{}), "seq")
	stream.Repartition(p, inTopic, byMod, func(_ string, v int64) (string, bool) {
		return "mod" + strconv.FormatInt(v%3, 10), v >= 0
	})
	counts := stream.NewTable(p, "counts", stream.Codec[string](stream.StringCodec{}), stream.Codec[int64](stream.Int64Codec{}))
	stream.Consume(p, byMod, func(c *stream.Ctx, k string, v int64) error {
		if c.Partition() != stream.PartitionFor([]byte(k), 6) {
			return fmt.Errorf("key %s in task %d", k, c.Partition())
		}
		n, _, _ := counts.Get(c, k)
		if err := counts.Put(c, k, n+1); err != nil {
			return err
		}
		return stream.Emit(c, outTopic, k, n+1)
	})
	start(t, p, c.config("a"))
	recs, _ := inputs(300, 37, 0) // values 0..299
	c.produce(t, recs...)
	checkExactlyOnce(t, c.readAll(t, "out", 300, 30*time.Second), map[string]int{"mod0": 100, "mod1": 100, "mod2": 100})
}

// Lookups read a running processor's committed state by key from any
// instance: the owner answers over HTTP.
func TestLookupsAcrossInstances(t *testing.T) {
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
	type inst struct {
		rn  *running
		tbl *stream.Table[string, int64]
	}
	var insts []inst
	for _, name := range []string{"a", "b"} {
		var h http.Handler
		var hmu sync.Mutex
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hmu.Lock()
			defer hmu.Unlock()
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		cfg := c.config(name)
		cfg.AdvertiseAddr = strings.TrimPrefix(srv.URL, "http://")
		cfg.LookupSecret = "shared between instances"
		p, tbl := counter(stream.ExactlyOnce)
		rn := start(t, p, cfg)
		hmu.Lock()
		h = rn.r
		hmu.Unlock()
		insts = append(insts, inst{rn, tbl})
	}
	waitFor(t, "both own tasks", 20*time.Second, func() bool {
		return insts[0].rn.r.Stats().Tasks == 3 && insts[1].rn.r.Stats().Tasks == 3
	})
	recs, want := inputs(2000, 25, 0)
	c.produce(t, recs...)
	c.readAll(t, "out", 2000, 30*time.Second)
	waitFor(t, "committed to the base stores", 20*time.Second, func() bool { return insts[0].rn.r.Idle() && insts[1].rn.r.Idle() })
	ctx := context.Background()
	remote := 0
	for k, n := range want {
		for _, in := range insts {
			v, ok, err := stream.Lookup(ctx, in.rn.r, in.tbl, k)
			if err != nil || !ok || v != int64(n) {
				t.Fatalf("lookup %s from one instance = %d, %v, %v; want %d", k, v, ok, err, n)
			}
		}
		if _, _, err := insts[0].rn.r.LocalGet("counts", []byte(k)); errors.Is(err, stream.ErrNotLocal) {
			remote++
		}
	}
	if remote == 0 || remote == len(want) {
		t.Errorf("%d of %d keys remote from a: the test did not exercise both paths", remote, len(want))
	}
	if _, ok, err := stream.Lookup(ctx, insts[0].rn.r, insts[0].tbl, "absent"); ok || err != nil {
		t.Errorf("absent key: %v, %v", ok, err)
	}
	// Whoever reaches an ops port without the secret reads nothing.
	for _, secret := range []string{"", "guess"} {
		addr := insts[1].rn.r.AdvertisedAddr()
		_, found, served, err := stream.FetchStore(ctx, http.DefaultClient, addr, secret, "counter", "counts", []byte("k1"))
		if found || served || err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "lookup secret") {
			t.Errorf("lookup with secret %q: found=%v served=%v err=%v, want a 401", secret, found, served, err)
		}
	}
}

// An instance without a lookup secret serves no remote lookup at all.
func TestLookupsWithoutSecretRefused(t *testing.T) {
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
	p, _ := counter(stream.ExactlyOnce)
	a := start(t, p, c.config("a"))
	srv := httptest.NewServer(a.r)
	t.Cleanup(srv.Close)
	for _, secret := range []string{"", "anything"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+stream.StorePath+"counter/counts/azE", nil)
		if secret != "" {
			req.Header.Set(stream.LookupHeader, "Bearer "+secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("secret %q: status %d, want 401", secret, resp.StatusCode)
		}
	}
}

// Broadcast records written while the processor was down reach every task
// when it comes back: the consumer starts at the tasks' stored positions,
// not at the end.
func TestBroadcastWhileDown(t *testing.T) {
	ctl := stream.NewTopic(topicSpec("ctl", 2, stream.CleanupDelete), stream.Codec[string](stream.StringCodec{}), stream.Codec[int64](seqCodec{}))
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec, ctl.TopicSpec)
	build := func() *stream.Processor { return bcastProcessor(ctl) }
	a := start(t, build(), c.config("a"))
	waitFor(t, "tasks and their starting positions", 20*time.Second, func() bool { return a.r.Stats().Tasks == 6 && a.r.Ready() && a.r.Idle() })
	a.stop(t)
	const n = 8
	for i := 0; i < n; i++ {
		c.produce(t, &kgo.Record{Topic: "ctl", Key: []byte("c" + strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))})
	}
	start(t, build(), c.config("a"))
	out := c.readAll(t, "out", 6*n, 30*time.Second)
	checkEveryTaskOnce(t, out, 6, n)
}

// Keys sees the writes of the open transaction: a handler looking for
// pending work finds what an earlier record of the same batch stored.
func TestKeysIncludeOpenWrites(t *testing.T) {
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
	p := stream.NewProcessor("keys", stream.ExactlyOnce)
	tbl := stream.NewTable(p, "t", stream.Codec[string](stream.StringCodec{}), stream.Codec[int64](stream.Int64Codec{}))
	stream.Consume(p, inTopic, func(c *stream.Ctx, k string, v int64) error {
		switch {
		case v == 100:
			keys, err := tbl.Keys(c)
			if err != nil {
				return err
			}
			slices.Sort(keys)
			return stream.Emit(c, outTopic, strings.Join(keys, ","), int64(len(keys)))
		case v > 100:
			return tbl.Delete(c, strconv.Itoa(int(v-100)))
		default:
			if _, _, err := tbl.Get(c, "9"); err != nil { // a cached miss is not a key
				return err
			}
			return tbl.Put(c, strconv.Itoa(int(v)), v)
		}
	})
	start(t, p, c.config("a"))
	rec := func(v int) *kgo.Record {
		return &kgo.Record{Topic: "in", Partition: 0, Key: []byte("k"), Value: []byte(strconv.Itoa(v))}
	}
	c.produce(t, rec(1), rec(2), rec(3), rec(102), rec(100))
	c.produce(t, rec(4), rec(101), rec(100))
	var got []string
	for _, r := range c.readAll(t, "out", 2, 30*time.Second) {
		got = append(got, string(r.Key))
	}
	slices.Sort(got) // the emits land on different partitions of out
	if want := []string{"1,3", "3,4"}; !slices.Equal(got, want) {
		t.Fatalf("keys seen = %q, want %q", got, want)
	}
}

// bcastProcessor emits, for every broadcast record of ctl, the record's
// value keyed by the task that saw it; tasks in reject dead-letter it.
func bcastProcessor(ctl stream.Topic[string, int64], reject ...int32) *stream.Processor {
	p := stream.NewProcessor("bcast", stream.ExactlyOnce)
	stream.Consume(p, inTopic, func(*stream.Ctx, string, int64) error { return nil })
	stream.Broadcast(p, ctl, func(c *stream.Ctx, k string, v int64) error {
		if slices.Contains(reject, c.Partition()) {
			return stream.Invalidf("task %d rejects %s", c.Partition(), k)
		}
		return stream.Emit(c, outTopic, strconv.Itoa(int(c.Partition())), v)
	})
	return p
}

// One task dead-letters every broadcast record. The tasks before it must
// keep their positions: the dead letter's rollback used to take back the
// position the previous task had just stored, so a restart delivered every
// record to it again.
func TestBroadcastDeadLetterKeepsOtherPositions(t *testing.T) {
	ctl := stream.NewTopic(topicSpec("ctl", 2, stream.CleanupDelete), stream.Codec[string](stream.StringCodec{}), stream.Codec[int64](seqCodec{}))
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec, ctl.TopicSpec)
	build := func() *stream.Processor { return bcastProcessor(ctl, 1) }
	a := start(t, build(), c.config("a"))
	waitFor(t, "tasks and their starting positions", 20*time.Second, func() bool { return a.r.Stats().Tasks == 6 && a.r.Ready() && a.r.Idle() })
	const n = 5
	for i := 0; i < n; i++ {
		c.produce(t, &kgo.Record{Topic: "ctl", Key: []byte("c" + strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))})
	}
	c.readAll(t, "out", 5*n, 30*time.Second)
	waitFor(t, "committed", 20*time.Second, a.r.Idle)
	a.stop(t)
	cfg := c.config("a")
	b := start(t, build(), cfg)
	waitFor(t, "restarted", 20*time.Second, func() bool { return b.r.Ready() && b.r.Idle() })
	c.produce(t, &kgo.Record{Topic: "ctl", Key: []byte("c" + strconv.Itoa(n)), Value: []byte(strconv.Itoa(n))})
	out := c.readAll(t, "out", 5*(n+1), 30*time.Second)
	got := map[string]int{}
	for _, r := range out {
		got[string(r.Key)+"/"+string(r.Value)]++
	}
	for _, p := range []int{0, 2, 3, 4, 5} {
		for i := 0; i <= n; i++ {
			if k := fmt.Sprintf("%d/%d", p, i); got[k] != 1 {
				t.Errorf("task %d saw broadcast %d %d times", p, i, got[k])
			}
		}
	}
	if len(out) != 5*(n+1) {
		t.Errorf("%d outputs, want %d", len(out), 5*(n+1))
	}
}

// checkEveryTaskOnce: each of tasks saw broadcasts 0..n-1 exactly once.
func checkEveryTaskOnce(t *testing.T, out []*kgo.Record, tasks, n int) {
	t.Helper()
	got := map[string]int{}
	for _, r := range out {
		got[string(r.Key)+"/"+string(r.Value)]++
	}
	for p := 0; p < tasks; p++ {
		for i := 0; i < n; i++ {
			if k := fmt.Sprintf("%d/%d", p, i); got[k] != 1 {
				t.Errorf("task %d saw broadcast %d %d times", p, i, got[k])
			}
		}
	}
}

package stream_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/stream"
)

// testLogger is quiet unless CRATESTREAM_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("CRATESTREAM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// clientOpts are the options every test client uses: fast metadata refresh
// so leader moves and new topics are seen quickly.
func clientOpts() []kgo.Opt {
	return []kgo.Opt{kgo.MetadataMinAge(100 * time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond })}
}

type cluster struct {
	*embedded.Kafka
	adm      *kadm.Client
	cl       *kgo.Client
	shuffles atomic.Int32
}

// shuffleLeaders moves every partition's leadership (and bumps its leader
// epoch).
//
// kfake answers OffsetForLeaderEpoch for an epoch whose successor holds no
// batch yet with -1/-1 where Kafka answers the log end offset (Kafka records
// the start of every epoch, kfake only epochs that have batches). Consumers
// then believe the log was truncated and reset to the start. The control
// installed by newCluster asks kfake about the current epoch instead, which
// is what Kafka's answer amounts to on a log that is never truncated.
func (c *cluster) shuffleLeaders() {
	c.shuffles.Add(1)
	c.ShufflePartitionLeaders()
}

func newCluster(t *testing.T, specs ...stream.TopicSpec) *cluster {
	t.Helper()
	k, err := embedded.StartKafka(embedded.KafkaOptions{Brokers: 3, MinSessionTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	cl, err := kgo.NewClient(append(clientOpts(), kgo.SeedBrokers(k.Addrs()...), kgo.ProducerBatchMaxBytes(4<<20))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	c := &cluster{Kafka: k, adm: kadm.NewClient(cl), cl: cl}
	k.ControlKey(int16(kmsg.OffsetForLeaderEpoch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cur := c.shuffles.Load()
		r := req.(*kmsg.OffsetForLeaderEpochRequest)
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				if p := &r.Topics[i].Partitions[j]; p.LeaderEpoch < cur {
					p.LeaderEpoch = cur
				}
			}
		}
		return nil, nil, false
	})
	specs = append(specs, stream.TopicSpec{Name: "dlq.v1", Partitions: 3, Cleanup: stream.CleanupDelete})
	if _, err := stream.CreateTopics(context.Background(), c.adm, specs, 1); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cluster) config(instance string) stream.Config {
	return stream.Config{
		Brokers:        c.Addrs(),
		InstanceID:     instance,
		CommitInterval: 50 * time.Millisecond,
		Logger:         testLogger().With("test_instance", instance),
		Metrics:        prometheus.NewRegistry(),
		ClientOpts:     clientOpts(),
	}
}

// produce writes records synchronously.
func (c *cluster) produce(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < len(recs); i += 5000 {
		end := min(i+5000, len(recs))
		if err := c.cl.ProduceSync(ctx, recs[i:end]...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads topic from the start (read_committed) until want records
// arrived or the timeout passed, then on to the topic's last stable offsets
// as of then: a duplicate committed by that time is in the result.
func (c *cluster) readAll(t *testing.T, topic string, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append(clientOpts(),
		kgo.SeedBrokers(c.Addrs()...),
		kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(), // see every offset up to the end
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	next := map[int32]int64{}
	poll := func(deadline time.Time) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	deadline := time.Now().Add(timeout)
	for len(out) < want && time.Now().Before(deadline) {
		poll(deadline)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stable, err := c.adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	behind := func() bool {
		for p, o := range stable[topic] {
			if o.Err == nil && next[p] < o.Offset {
				return true
			}
		}
		return false
	}
	for behind() && time.Now().Before(deadline.Add(10*time.Second)) {
		poll(time.Now().Add(time.Second))
	}
	return out
}

// running is a runner in a goroutine.
type running struct {
	r      *stream.Runner
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, p *stream.Processor, cfg stream.Config) *running {
	t.Helper()
	r, err := stream.NewRunner(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{r: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- r.Run(ctx) }()
	t.Cleanup(func() { rn.stop(t) })
	return rn
}

var stopOnce sync.Map

func (rn *running) stop(t *testing.T) {
	if _, loaded := stopOnce.LoadOrStore(rn, true); loaded {
		return
	}
	rn.cancel()
	select {
	case err := <-rn.done:
		if err != nil {
			t.Errorf("runner: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("runner did not stop")
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seqCodec is a decimal int64 that refuses "poison".
type seqCodec struct{}

func (seqCodec) Append(dst []byte, v int64) ([]byte, error) {
	return strconv.AppendInt(dst, v, 10), nil
}
func (seqCodec) Decode(b []byte) (int64, error) {
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a sequence number: %q", b)
	}
	return v, nil
}

func topicSpec(name string, partitions int32, cleanup stream.Cleanup) stream.TopicSpec {
	return stream.TopicSpec{Name: name, Partitions: partitions, Cleanup: cleanup}
}

var (
	inTopic  = stream.NewTopic(topicSpec("in", 6, stream.CleanupDelete), stream.Codec[string](stream.StringCodec{}), stream.Codec[int64](seqCodec{}))
	outTopic = stream.NewTopic(topicSpec("out", 6, stream.CleanupDelete), stream.Codec[string](stream.StringCodec{}), stream.Codec[int64](stream.Int64Codec{}))
)

// counter counts records per key and emits the running count: exactly-once
// output per key is exactly 1, 2, ..., n.
func counter(mode stream.Mode, opts ...stream.TableOption) (*stream.Processor, *stream.Table[string, int64]) {
	p := stream.NewProcessor("counter", mode)
	counts := stream.NewTable(p, "counts", stream.Codec[string](stream.StringCodec{}), stream.Codec[int64](stream.Int64Codec{}), opts...)
	stream.Consume(p, inTopic, func(c *stream.Ctx, k string, v int64) error {
		n, _, err := counts.Get(c, k)
		if err != nil {
			return err
		}
		n++
		if err := counts.Put(c, k, n); err != nil {
			return err
		}
		return stream.Emit(c, outTopic, k, n)
	})
	return p, counts
}

// inputs returns n records spread over keys.
func inputs(n, keys, from int) ([]*kgo.Record, map[string]int) {
	recs := make([]*kgo.Record, n)
	per := make(map[string]int)
	for i := range recs {
		k := "k" + strconv.Itoa((from+i)%keys)
		per[k]++
		recs[i] = &kgo.Record{Topic: "in", Key: []byte(k), Value: []byte(strconv.Itoa(from + i))}
	}
	return recs, per
}

// checkExactlyOnce asserts that the output of each key is 1..want[key]
// in order: no loss, no duplicate.
func checkExactlyOnce(t *testing.T, out []*kgo.Record, want map[string]int) {
	t.Helper()
	got := make(map[string][]int64)
	for _, r := range out {
		v, _ := strconv.ParseInt(string(r.Value), 10, 64)
		got[string(r.Key)] = append(got[string(r.Key)], v)
	}
	total := 0
	for k, n := range want {
		total += n
		seq := got[k]
		if len(seq) != n {
			t.Errorf("key %s: %d outputs, want %d", k, len(seq), n)
			continue
		}
		for i, v := range seq {
			if v != int64(i+1) {
				t.Errorf("key %s: output %d is %d, want %d (sequence %v...)", k, i, v, i+1, seq[:min(len(seq), i+3)])
				break
			}
		}
	}
	if len(out) != total {
		t.Errorf("%d outputs, want %d", len(out), total)
	}
}

// Package proctest runs a processor end to end on an embedded Kafka
// cluster (kfake): what the processors' wiring tests need — the catalogue's
// topics, a runner, records read committed. Tests of a processor's logic use
// package streamtest instead, without Kafka.
package proctest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/testutil"
	"github.com/cratestream/cratestream/schemas/topics"
)

// Cluster is an embedded Kafka cluster holding the catalogue's topics, with
// a client on it.
type Cluster struct {
	*embedded.Kafka
	Client *kgo.Client
	t      testing.TB
}

// ClientOpts are the options every test client gets: metadata refreshed
// often enough for topics created a moment ago.
func ClientOpts() []kgo.Opt { return []kgo.Opt{kgo.MetadataMinAge(100 * time.Millisecond)} }

// Logger discards the log unless CRATESTREAM_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("CRATESTREAM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Start starts a cluster and creates the catalogue's topics.
func Start(t testing.TB) *Cluster {
	t.Helper()
	k := testutil.Kafka(t)
	cl, err := kgo.NewClient(append(ClientOpts(), kgo.SeedBrokers(k.Addrs()...))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := stream.CreateTopics(ctx, kadm.NewClient(cl), topics.Catalogue(), 1); err != nil {
		t.Fatal(err)
	}
	return &Cluster{Kafka: k, Client: cl, t: t}
}

// Record encodes (key, value) for topic.
func Record[K, V any](t testing.TB, topic stream.Topic[K, V], key K, value V) *kgo.Record {
	t.Helper()
	k, err := topic.Key.Append(nil, key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := topic.Value.Append(nil, value)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: topic.Name, Key: k, Value: v}
}

// Produce writes recs synchronously.
func (c *Cluster) Produce(recs ...*kgo.Record) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		c.t.Fatal(err)
	}
}

// Run runs p on the cluster until the test ends (a runner error then fails
// it) and returns its runner once it is ready. Zero fields of cfg get the
// tests' defaults: brokers, instance id, a 20ms commit interval, a state
// directory, a quiet logger, a private registry.
func (c *Cluster) Run(p *stream.Processor, cfg stream.Config) *stream.Runner {
	c.t.Helper()
	cfg.Brokers = c.Addrs()
	if cfg.InstanceID == "" {
		cfg.InstanceID = "test"
	}
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = 20 * time.Millisecond
	}
	if cfg.StateDir == "" {
		cfg.StateDir = c.t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = Logger()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	cfg.ClientOpts = append(ClientOpts(), cfg.ClientOpts...)
	r, err := stream.NewRunner(p, cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	c.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			c.t.Errorf("runner of %s: %v", p.Name(), err)
		}
	})
	WaitFor(c.t, p.Name()+" ready", func() bool {
		select {
		case err := <-done:
			done <- err
			c.t.Fatalf("runner of %s stopped: %v", p.Name(), err)
		default:
		}
		return r.Ready()
	})
	return r
}

// WaitFor polls cond until it holds, failing the test after 30s.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Message is a record of a topic, decoded.
type Message[K, V any] struct {
	Key   K
	Value V // the zero V for a tombstone
}

// Read returns the committed records of topic, decoded, from its start to
// its last stable offset when called: everything committed by then, and
// nothing of a transaction still open.
func Read[K, V any](c *Cluster, topic stream.Topic[K, V]) []Message[K, V] {
	c.t.Helper()
	var out []Message[K, V]
	for _, r := range c.readCommitted(topic.Name) {
		k, err := topic.Key.Decode(r.Key)
		if err != nil {
			c.t.Fatalf("%s: key at %d: %v", topic.Name, r.Offset, err)
		}
		m := Message[K, V]{Key: k}
		if r.Value != nil {
			if m.Value, err = topic.Value.Decode(r.Value); err != nil {
				c.t.Fatalf("%s: value at %d: %v", topic.Name, r.Offset, err)
			}
		}
		out = append(out, m)
	}
	return out
}

func (c *Cluster) readCommitted(topic string) []*kgo.Record {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stable, err := kadm.NewClient(c.Client).ListCommittedOffsets(ctx, topic)
	if err != nil {
		c.t.Fatal(err)
	}
	// Control records are kept so that a partition ending with a
	// transaction marker is known to be read to its end.
	cl, err := kgo.NewClient(append(ClientOpts(), kgo.SeedBrokers(c.Addrs()...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))...)
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	next := map[int32]int64{}
	behind := func() bool {
		b := false
		stable.Each(func(o kadm.ListedOffset) {
			if o.Err == nil && next[o.Partition] < o.Offset {
				b = true
			}
		})
		return b
	}
	var out []*kgo.Record
	for behind() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			c.t.Fatalf("reading %s: at %v of %v", topic, next, stable)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	return out
}

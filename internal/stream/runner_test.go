package stream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

func TestCountsOncePerMode(t *testing.T) {
	for _, mode := range []stream.Mode{stream.AtLeastOnce, stream.ExactlyOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
			recs, want := inputs(3000, 40, 0)
			c.produce(t, recs...)
			p, _ := counter(mode)
			start(t, p, c.config("a"))
			// Without failures at-least-once delivers exactly once too.
			checkExactlyOnce(t, c.readAll(t, "out", 3000, 30*time.Second), want)
		})
	}
}

// Two exactly-once instances share the input; one leaves mid-stream. Every
// input must be counted exactly once in the output.
func TestExactlyOnceInstanceLeavesMidStream(t *testing.T) {
	c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
	p1, _ := counter(stream.ExactlyOnce)
	p2, _ := counter(stream.ExactlyOnce)
	a := start(t, p1, c.config("a"))
	b := start(t, p2, c.config("b"))
	waitFor(t, "both instances own tasks", 20*time.Second, func() bool {
		return a.r.Stats().Tasks > 0 && b.r.Stats().Tasks > 0
	})

	const total = 20000
	all, want := inputs(total, 50, 0)
	// Produce in slices so that b leaves while input is still arriving.
	c.produce(t, all[:total/2]...)
	waitFor(t, "b processing", 20*time.Second, func() bool { return b.r.Stats().Processed > 500 })
	b.stop(t)
	c.produce(t, all[total/2:]...)

	checkExactlyOnce(t, c.readAll(t, "out", total, 60*time.Second), want)
	if a.r.Stats().Tasks != 6 {
		t.Errorf("a owns %d tasks after b left, want 6", a.r.Stats().Tasks)
	}
}

// An instance killed without shutdown (no commit, no clean leave) and
// restarted with the same identity restores its state exactly: the counts
// continue where the committed state was.
func TestKilledInstanceRestoresState(t *testing.T) {
	for _, onDisk := range []bool{false, true} {
		name := "memory"
		var opts []stream.TableOption
		if onDisk {
			name = "pebble"
			opts = append(opts, stream.OnDisk(1<<20))
		}
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
			cfg := c.config("a")
			cfg.StateDir = t.TempDir()
			first, want := inputs(5000, 30, 0)
			c.produce(t, first...)
			p, _ := counter(stream.ExactlyOnce, opts...)
			a := start(t, p, cfg)
			waitFor(t, "progress", 20*time.Second, func() bool { return a.r.Stats().Processed > 2000 })
			a.r.Kill()
			a.stop(t)

			second, more := inputs(5000, 30, 5000)
			for k, n := range more {
				want[k] += n
			}
			c.produce(t, second...)
			p2, _ := counter(stream.ExactlyOnce, opts...)
			cfg.Metrics = nil
			start(t, p2, cfg)
			checkExactlyOnce(t, c.readAll(t, "out", 10000, 60*time.Second), want)
		})
	}
}

// A record that cannot be decoded goes to dlq.v1 with its bytes, position
// and reason; the records after it are processed.
func TestPoisonRecordGoesToDeadLetters(t *testing.T) {
	for _, mode := range []stream.Mode{stream.AtLeastOnce, stream.ExactlyOnce} {
		t.Run(mode.String(), func(t *testing.T) {
			c := newCluster(t, inTopic.TopicSpec, outTopic.TopicSpec)
			recs := []*kgo.Record{
				{Topic: "in", Key: []byte("k"), Value: []byte("1")},
				{Topic: "in", Key: []byte("k"), Value: []byte("poison")},
				{Topic: "in", Key: []byte("k"), Value: []byte("3")},
				{Topic: "in", Key: []byte("k"), Value: make([]byte, 2<<20)}, // oversized
				{Topic: "in", Key: []byte("k"), Value: []byte("5")},
			}
			c.produce(t, recs...)
			p, _ := counter(mode)
			a := start(t, p, c.config("a"))
			checkExactlyOnce(t, c.readAll(t, "out", 3, 30*time.Second), map[string]int{"k": 3})
			dl := c.readAll(t, "dlq.v1", 2, 30*time.Second)
			if len(dl) != 2 {
				t.Fatalf("%d dead letters, want 2", len(dl))
			}
			classes := map[string]*pb.DeadLetter{}
			for _, r := range dl {
				var d pb.DeadLetter
				if err := proto.Unmarshal(r.Value, &d); err != nil {
					t.Fatal(err)
				}
				classes[d.ReasonClass] = &d
			}
			d := classes["decode"]
			if d == nil || string(d.Value) != "poison" || d.Topic != "in" || d.Offset != recs[1].Offset ||
				d.Processor != "counter" || d.Reason == "" {
				t.Errorf("decode dead letter = %+v", d)
			}
			if o := classes["oversized"]; o == nil || o.Offset != recs[3].Offset {
				t.Errorf("oversized dead letter = %+v", o)
			}
			if n := a.r.Stats().DeadLetters; n != 2 {
				t.Errorf("stats: %d dead letters", n)
			}
		})
	}
}

// Joined inputs with different partition counts are refused before the
// group is joined.
func TestNotCoPartitionedRefused(t *testing.T) {
	other := stream.NewTopic(topicSpec("other", 4, stream.CleanupDelete), stream.Codec[string](stream.StringCodec{}), stream.Codec[int64](seqCodec{}))
	c := newCluster(t, inTopic.TopicSpec, other.TopicSpec)
	p := stream.NewProcessor("join", stream.ExactlyOnce)
	stream.Consume(p, inTopic, func(*stream.Ctx, string, int64) error { return nil })
	stream.Consume(p, other, func(*stream.Ctx, string, int64) error { return nil })
	r, err := stream.NewRunner(p, c.config("a"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = r.Run(ctx)
	var cpe *stream.CoPartitionError
	if !errors.As(err, &cpe) {
		t.Fatalf("Run = %v, want a CoPartitionError", err)
	}
	if cpe.Counts["in"] != 6 || cpe.Counts["other"] != 4 {
		t.Errorf("counts = %v", cpe.Counts)
	}
	t.Log(err)
}

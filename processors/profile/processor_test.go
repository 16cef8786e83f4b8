package profile_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/bench"
	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/processors/profile"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

func TestProfileProcessorEndToEnd(t *testing.T) {
	ctx := context.Background()
	k, err := embedded.StartKafka(embedded.KafkaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := stream.CreateTopics(ctx, kadm.NewClient(cl), topics.Catalogue(), 1); err != nil {
		t.Fatal(err)
	}

	rec := func(key string, e *pb.Interaction) *kgo.Record {
		b, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Topic: topics.Interactions().Name, Key: []byte(key), Value: b}
	}
	in := func(id, user string, tm, release int64, kind pb.InteractionKind) *pb.Interaction {
		return &pb.Interaction{EventId: id, UserId: user, EventTimeMs: tm, ReleaseId: release, Kind: kind}
	}
	const (
		add    = pb.InteractionKind_INTERACTION_KIND_WANT_ADD
		remove = pb.InteractionKind_INTERACTION_KIND_WANT_REMOVE
		own    = pb.InteractionKind_INTERACTION_KIND_COLLECT_ADD
	)
	recs := []*kgo.Record{
		rec("alice", in("1", "alice", 100, 11, add)),
		rec("alice", in("2", "alice", 300, 12, add)),
		rec("alice", in("3", "alice", 200, 12, remove)), // older than the add: ignored
		rec("alice", in("1", "alice", 100, 11, add)),    // duplicate delivery
		rec("bob", in("4", "bob", 100, 21, own)),
		rec("bob", in("5", "alice", 100, 99, own)),                                               // wrong key: dead letter
		{Topic: topics.Interactions().Name, Key: []byte("bob"), Value: []byte{0xff, 0xff, 0xff}}, // undecodable
		rec("bob", in("6", "bob", 150, 22, own)),
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	p, store := profile.New(profile.Options{Mode: stream.ExactlyOnce})
	r, err := stream.NewRunner(p, stream.Config{
		Brokers: k.Addrs(), InstanceID: "t", CommitInterval: 50 * time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:    prometheus.NewRegistry(),
		ClientOpts: []kgo.Opt{kgo.MetadataMinAge(100 * time.Millisecond)},
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(30 * time.Second)
	for r.Stats().Processed < int64(len(recs)) {
		if time.Now().After(deadline) {
			t.Fatalf("processed %d of %d", r.Stats().Processed, len(recs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Lookups read committed state: wait for the commit.
	var alice, bob *pb.UserProfile
	for time.Now().Before(deadline) {
		alice, _, _ = stream.Lookup(ctx, r, store, "alice")
		bob, _, _ = stream.Lookup(ctx, r, store, "bob")
		if alice != nil && bob != nil && bob.Version == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := profile.Wantlist(alice); len(got) != 2 || got[0] != 11 || got[1] != 12 {
		t.Errorf("alice wantlist = %v, want [11 12]", got)
	}
	if alice.GetVersion() != 2 {
		t.Errorf("alice version = %d, want 2 (one per effective event)", alice.GetVersion())
	}
	if got := profile.Collection(bob); len(got) != 2 || got[0] != 21 || got[1] != 22 {
		t.Errorf("bob collection = %v, want [21 22]", got)
	}
	if n := r.Stats().DeadLetters; n != 2 {
		t.Errorf("%d dead letters, want 2", n)
	}

	// user-profiles.v1 carries the same state, read committed.
	rd, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.ConsumeTopics(topics.UserProfiles().Name),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	last := map[string]*pb.UserProfile{}
	for len(last) < 2 || last["bob"].GetVersion() < 2 || last["alice"].GetVersion() < 2 {
		pctx, pcancel := context.WithDeadline(ctx, deadline)
		fs := rd.PollFetches(pctx)
		pcancel()
		if time.Now().After(deadline) {
			t.Fatalf("user-profiles.v1 has %v (%v)", last, fs.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			var p pb.UserProfile
			if err := proto.Unmarshal(r.Value, &p); err != nil {
				t.Fatal(err)
			}
			last[string(r.Key)] = &p
		})
	}
	if !proto.Equal(last["alice"], alice) {
		t.Errorf("user-profiles.v1 alice = %v, store = %v", last["alice"], alice)
	}
}

// BenchmarkProfileThroughput is the Go benchmark of `cratestream bench
// profile` at a size `go test -bench` can afford; it reports events/s.
func BenchmarkProfileThroughput(b *testing.B) {
	for _, mode := range []stream.Mode{stream.AtLeastOnce, stream.ExactlyOnce} {
		b.Run(mode.String(), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r, err := bench.ProfileThroughput(context.Background(), bench.ProfileConfig{
					Events: 200_000, Users: 100_000, PacedFor: 2 * time.Second}, mode)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(r.EventsPerSec, "events/s")
				if mode == stream.AtLeastOnce {
					b.ReportMetric(float64(r.P99.Microseconds())/1000, "p99_ms")
				}
			}
		})
	}
}

func BenchmarkRestore(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r, err := bench.Restore(context.Background(), bench.ProfileConfig{RestoreKeys: 200_000})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.RecordsPerSec, "records/s")
	}
}

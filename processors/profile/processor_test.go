package profile_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/bench"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/stream/streamtest"
	"github.com/cratestream/cratestream/internal/testutil/proctest"
	"github.com/cratestream/cratestream/processors/profile"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

var (
	interactions = topics.Interactions()
	profiles     = topics.UserProfiles()
)

const (
	add = pb.InteractionKind_INTERACTION_KIND_WANT_ADD
	rm  = pb.InteractionKind_INTERACTION_KIND_WANT_REMOVE
	own = pb.InteractionKind_INTERACTION_KIND_COLLECT_ADD
)

func interaction(id, user string, tm, release int64, kind pb.InteractionKind) *pb.Interaction {
	return &pb.Interaction{EventId: id, UserId: user, EventTimeMs: tm, ReleaseId: release, Kind: kind}
}

// newTester runs the profile processor in memory over as many tasks as
// the user topics have partitions.
func newTester(t *testing.T) (*streamtest.Tester, *stream.Table[string, *pb.UserProfile]) {
	p, store := profile.New(profile.Options{Mode: stream.ExactlyOnce})
	return streamtest.New(t, p, streamtest.Partitions(topics.UserPartitions)), store
}

// The processor applies each user's interactions to the stored profile and
// publishes every change, and only changes, on user-profiles.v1, the
// store's changelog: partitioned by user, ending with what the store holds.
func TestProcessorAppliesInteractions(t *testing.T) {
	tt, store := newTester(t)
	for _, ev := range []*pb.Interaction{
		interaction("1", "alice", 100, 11, add),
		interaction("2", "alice", 300, 12, add),
		interaction("3", "alice", 200, 12, rm),  // older than the add: superseded
		interaction("1", "alice", 100, 11, add), // redelivered
		interaction("4", "bob", 100, 21, own),
		interaction("6", "bob", 150, 22, own),
	} {
		streamtest.Send(tt, interactions, ev.UserId, ev)
	}

	want := map[string]*pb.UserProfile{
		"alice": {UserId: "alice", Version: 2, EventId: "2", EventTimeMs: 300, Items: []*pb.ProfileItem{
			{ReleaseId: 11, Wanted: true, WantTimeMs: 100, WantEventHash: profile.EventHash("1")},
			{ReleaseId: 12, Wanted: true, WantTimeMs: 300, WantEventHash: profile.EventHash("2")},
		}},
		"bob": {UserId: "bob", Version: 2, EventId: "6", EventTimeMs: 150, Items: []*pb.ProfileItem{
			{ReleaseId: 21, Collected: true, CollectTimeMs: 100, CollectEventHash: profile.EventHash("4")},
			{ReleaseId: 22, Collected: true, CollectTimeMs: 150, CollectEventHash: profile.EventHash("6")},
		}},
	}
	for user, w := range want {
		if got, ok := streamtest.Get(tt, store, user); !ok || !proto.Equal(got, w) {
			t.Errorf("store[%s] = %v, want %v", user, got, w)
		}
	}

	outs := streamtest.Read(tt, profiles)
	var versions []string
	last := map[string]*pb.UserProfile{}
	for _, o := range outs {
		versions = append(versions, fmt.Sprintf("%s:%d", o.Key, o.Value.Version))
		last[o.Key] = o.Value
		if p := stream.PartitionFor([]byte(o.Key), topics.UserPartitions); o.Partition != p {
			t.Errorf("%s's profile in partition %d, want %d (user-profiles.v1 is partitioned by user)", o.Key, o.Partition, p)
		}
	}
	// The superseded remove and the redelivery changed nothing: no record.
	if got := strings.Join(versions, " "); got != "alice:1 alice:2 bob:1 bob:2" {
		t.Errorf("user-profiles.v1 got %s, want alice:1 alice:2 bob:1 bob:2", got)
	}
	for user, w := range want {
		if !proto.Equal(last[user], w) {
			t.Errorf("last record of %s on user-profiles.v1 = %v, want the stored %v", user, last[user], w)
		}
	}
	// user-profiles.v1 is the changelog: there is no other.
	if n := tt.Count(profile.Name + "-" + profile.StoreName + "-changelog"); n != 0 {
		t.Errorf("%d records on a changelog of its own, want none", n)
	}
	if dls := tt.DeadLetters(); len(dls) != 0 {
		t.Errorf("dead letters %v", dls)
	}
}

// Bad input goes to the dead-letter topic, with its key and the reason,
// and changes nothing.
func TestProcessorDeadLettersBadInput(t *testing.T) {
	tests := []struct {
		name   string
		send   func(tt *streamtest.Tester)
		class  string
		reason string
	}{
		{"tombstone", func(tt *streamtest.Tester) { streamtest.SendTombstone(tt, interactions, "alice") },
			"invalid", "tombstone"},
		{"under another user's key", func(tt *streamtest.Tester) {
			streamtest.Send(tt, interactions, "alice", interaction("5", "bob", 100, 99, own))
		}, "invalid", `for user "bob" arrived under key "alice"`},
		{"rating out of range", func(tt *streamtest.Tester) {
			ev := interaction("7", "alice", 100, 1, pb.InteractionKind_INTERACTION_KIND_RATE)
			ev.Rating = 6
			streamtest.Send(tt, interactions, "alice", ev)
		}, "invalid", "rating 6 outside 0..5"},
		{"undecodable", func(tt *streamtest.Tester) {
			if err := tt.SendRaw(interactions.Name, []byte("alice"), []byte{0xff, 0xff, 0xff}); err != nil {
				t.Fatal(err)
			}
		}, "decode", "decode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tt, store := newTester(t)
			tc.send(tt)
			dls := tt.DeadLetters()
			if len(dls) != 1 {
				t.Fatalf("%d dead letters, want 1", len(dls))
			}
			dl := dls[0]
			if dl.ReasonClass != tc.class || !strings.Contains(dl.Reason, tc.reason) || dl.Topic != interactions.Name ||
				dl.Processor != profile.Name || string(dl.Key) != "alice" {
				t.Errorf("dead letter %v, want class %s, reason with %q, key alice", dl, tc.class, tc.reason)
			}
			if _, ok := streamtest.Get(tt, store, "alice"); ok {
				t.Error("bad input created a profile")
			}
			if n := len(streamtest.Read(tt, profiles)); n != 0 {
				t.Errorf("bad input published %d profiles", n)
			}
		})
	}
}

// On Kafka, the store's changelog is user-profiles.v1 itself (what the
// runner serves is the committed topic's last record, and no changelog
// topic of its own is created); the in-memory tests cannot see topics.
func TestProcessorOnKafka(t *testing.T) {
	c := proctest.Start(t)
	c.Produce(
		proctest.Record(t, interactions, "alice", interaction("1", "alice", 100, 11, add)),
		proctest.Record(t, interactions, "alice", interaction("2", "alice", 300, 12, add)),
		proctest.Record(t, interactions, "bob", interaction("4", "bob", 100, 21, own)),
	)
	p, store := profile.New(profile.Options{Mode: stream.ExactlyOnce})
	r := c.Run(p, stream.Config{})
	proctest.WaitFor(t, "3 interactions handled and committed", func() bool { return r.Stats().Processed == 3 && r.Idle() })

	last := map[string]*pb.UserProfile{}
	for _, m := range proctest.Read(c, profiles) {
		last[m.Key] = m.Value
	}
	for user, version := range map[string]int64{"alice": 2, "bob": 1} {
		served, _, err := stream.Lookup(context.Background(), r, store, user)
		if err != nil || served.GetVersion() != version || !proto.Equal(last[user], served) {
			t.Errorf("%s: user-profiles.v1 has %v, the store %v (%v), want both at version %d", user, last[user], served, err, version)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	own := profile.Name + "-" + profile.StoreName + "-changelog"
	details, err := kadm.NewClient(c.Client).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if details.Has(own) {
		t.Errorf("topic %s exists: the store has a changelog besides user-profiles.v1", own)
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

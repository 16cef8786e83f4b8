package chaos

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/processors/profile"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

const (
	profileUsers    = 2000
	profileReleases = 5000
)

// profile runs the real profile processor (two instances, exactly-once,
// profiles in Pebble) under kills and store corruption while interactions
// arrive: out of order, some delivered twice, a few invalid. The latest
// profile of every user must be the fold of its interactions
// (profile.Apply), and every profile record must advance its user's version.
func (s *scen) profile(ctx context.Context) error {
	if err := s.startCluster(ctx); err != nil {
		return err
	}
	for _, id := range []string{"a", "b"} {
		in := s.newInstance(profile.Name, s.name+"-"+id, "--on-disk-cache", strconv.Itoa(onDiskCache))
		if err := in.start(""); err != nil {
			return err
		}
	}
	if err := s.waitGroupFormed(ctx, topics.UserPartitions); err != nil {
		return err
	}
	gen := rand.New(rand.NewPCG(s.cfg.Seed, 91))
	base := time.Now().UnixMilli()
	var sent []*kgo.Record // for redeliveries
	kinds := []pb.InteractionKind{pb.InteractionKind_INTERACTION_KIND_WANT_ADD, pb.InteractionKind_INTERACTION_KIND_WANT_REMOVE,
		pb.InteractionKind_INTERACTION_KIND_COLLECT_ADD, pb.InteractionKind_INTERACTION_KIND_COLLECT_REMOVE, pb.InteractionKind_INTERACTION_KIND_RATE}
	f, err := s.startFeederRate(s.cfg.Rate, func(n int64) *kgo.Record {
		// 1% are redeliveries of an earlier event (same bytes).
		if len(sent) > 0 && gen.Float64() < 0.01 {
			prev := sent[gen.IntN(len(sent))]
			return &kgo.Record{Topic: prev.Topic, Key: prev.Key, Value: prev.Value}
		}
		u := "chaos-user-" + strconv.Itoa(gen.IntN(profileUsers))
		ev := &pb.Interaction{EventId: "chaos-ev-" + strconv.FormatInt(n, 10), UserId: u,
			ReleaseId: 1 + gen.Int64N(profileReleases), Kind: kinds[gen.IntN(len(kinds))],
			// Up to a minute out of order.
			EventTimeMs: base + n - gen.Int64N(60_000), Source: pb.InteractionSource_INTERACTION_SOURCE_GENERATED}
		if ev.Kind == pb.InteractionKind_INTERACTION_KIND_RATE {
			ev.Rating = int32(1 + gen.IntN(5))
			if gen.Float64() < 0.005 {
				ev.Rating = 9 // invalid: dead-lettered
			}
		}
		v, _ := proto.Marshal(ev)
		r := &kgo.Record{Topic: topics.Interactions().Name, Key: []byte(u), Value: v}
		if len(sent) < 10_000 {
			sent = append(sent, r)
		} else {
			sent[gen.IntN(len(sent))] = r
		}
		return r
	})
	if err != nil {
		return err
	}
	plan := killPlan{partitions: topics.UserPartitions, failpoints: failpointsOf("exactly-once"), fpProb: 0.3, takeoverProb: 0.25,
		corruptProb: 0.2, storeDir: func(in *instance) string { return filepath.Join(in.stateDir, profile.Name, profile.StoreName) },
		gapMin: time.Second, gapMax: 4 * time.Second}
	if err := s.chaos(ctx, plan); err != nil {
		_, _ = f.stop(ctx)
		return err
	}
	verdict, err := s.finish(ctx, f, checkArgs{kind: KindProfile, mode: "exactly-once"})
	s.res.add("mode", "exactly-once")
	s.killFields(len(s.insts))
	s.res.add("stores_corrupted", len(s.corrupted))
	s.res.add("stores_rebuilt", s.countLogs(storeRebuiltPattern))
	s.restoreFields(ctx, topics.UserProfiles().Name)
	if verdict != nil {
		s.res.add("users", verdict.Keys)
		s.report(verdict)
	}
	s.seconds()
	return err
}

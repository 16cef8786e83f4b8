package recommend_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/gen"
	"github.com/cratestream/cratestream/internal/recsys"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/testutil/proctest"
	"github.com/cratestream/cratestream/processors/profile"
	"github.com/cratestream/cratestream/processors/recommend"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

func quiet() *slog.Logger { return proctest.Logger() }

// profiles builds generated collectors' profiles.
func profiles(users, releases, events int) map[string]*pb.UserProfile {
	g := gen.NewInteractions(gen.InteractionsConfig{Seed: 11, Users: users, Releases: releases, Genres: 8})
	out := map[string]*pb.UserProfile{}
	for i := 0; i < events; i++ {
		ev := g.Next(int64(1000 + i))
		p := out[ev.UserId]
		if p == nil {
			p = &pb.UserProfile{UserId: ev.UserId}
			out[ev.UserId] = p
		}
		profile.Apply(p, ev)
	}
	return out
}

func TestComputeWithoutModel(t *testing.T) {
	p := &pb.UserProfile{UserId: "u", Version: 3, Items: []*pb.ProfileItem{{ReleaseId: 5, Wanted: true}, {ReleaseId: 6, Collected: true}}}
	c, err := recommend.Compute(nil, p, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c.CascadeLevel != "none" || len(c.Candidates) != 1 || c.Candidates[0].ReleaseId != 5 ||
		c.Candidates[0].Source != pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST {
		t.Fatalf("candidates without a model = %v", c)
	}
}

// On Kafka: the trainer reads user-profiles.v1 and publishes a version to
// item-factors.v1 and models.v1, the model store serves it once complete,
// and every user's candidates follow it, then the next version without a
// new profile; the genre table follows releases.v1. What the processor does
// with a model is tested in memory (processor_test.go).
func TestTrainServeRefresh(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := proctest.Start(t)
	ps := profiles(100, 200, 2000)
	var recs []*kgo.Record
	for u, p := range ps {
		recs = append(recs, proctest.Record(t, topics.UserProfiles(), u, p))
	}
	for _, r := range []int64{1, 2} {
		recs = append(recs, proctest.Record(t, topics.Releases(), r, &pb.Release{ReleaseId: r, Genres: []string{"Jazz"}}))
	}
	c.Produce(recs...)

	als := recsys.DefaultALSConfig()
	als.Factors, als.Iterations = 16, 5
	tc := recommend.TrainConfig{Brokers: c.Addrs(), ClientOpts: proctest.ClientOpts(), ALS: als, Logger: quiet()}
	m1, err := recommend.Train(ctx, tc)
	if err != nil {
		t.Fatal(err)
	}
	if m1.ItemCount == 0 || m1.UserCount != int32(len(ps)) || !m1.Complete || len(m1.Popular) == 0 || len(m1.Metrics) == 0 {
		t.Fatalf("manifest = %v", m1)
	}

	models := recommend.NewModelStore(c.Addrs(), quiet(), proctest.ClientOpts()...)
	gs := recommend.NewGenres(stream.GlobalConfig{Brokers: c.Addrs(), ClientOpts: proctest.ClientOpts(), Logger: quiet(), ReadCommitted: true})
	p, store := recommend.New(recommend.Options{Mode: stream.ExactlyOnce, Models: models, Genres: gs, N: 20, RefreshPerSecond: 1000})
	r := c.Run(p, stream.Config{})
	// The runner joins once its global tables have caught up.
	if tags, ok := gs.Table.Get(2); !ok || len(tags) != 1 {
		t.Errorf("genre table: release 2 has %v, %v", tags, ok)
	}
	waitAll := func(version string) {
		t.Helper()
		proctest.WaitFor(t, "every user's candidates of "+version, func() bool {
			for u := range ps {
				if c, _, _ := stream.Lookup(ctx, r, store, u); c.GetModelVersion() != version {
					return false
				}
			}
			return true
		})
	}
	waitAll(m1.Version)

	// A new version (trained an hour later by its clock: versions are
	// named and ordered by training time) reaches every user by the
	// refresh timer, without any new profile.
	tc.Now = func() time.Time { return time.Now().Add(time.Hour) }
	m2, err := recommend.Train(ctx, tc)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Version == m1.Version {
		t.Fatal("same version twice")
	}
	waitAll(m2.Version)
	if m := models.Current(); m == nil || m.Version != m2.Version {
		t.Fatalf("serving %v", m)
	}

	// Similar releases of a popular release.
	ids, scores, err := models.Current().Similar(m2.Popular[0], 5)
	if err != nil || len(ids) != 5 || scores[0] < scores[4] {
		t.Fatalf("similar = %v %v %v", ids, scores, err)
	}
	for _, id := range ids {
		if id == m2.Popular[0] {
			t.Error("a release is similar to itself")
		}
	}
}

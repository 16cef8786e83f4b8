package recommend_test

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

	"github.com/cratestream/cratestream/internal/gen"
	"github.com/cratestream/cratestream/internal/recsys"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/testutil"
	"github.com/cratestream/cratestream/processors/profile"
	"github.com/cratestream/cratestream/processors/recommend"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

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

func produceProfiles(t *testing.T, cl *kgo.Client, ps map[string]*pb.UserProfile) {
	t.Helper()
	var recs []*kgo.Record
	for u, p := range ps {
		b, err := proto.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: topics.UserProfiles().Name, Key: []byte(u), Value: b})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
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

func TestTrainServeRefresh(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	k := testutil.Kafka(t)
	opts := []kgo.Opt{kgo.MetadataMinAge(100 * time.Millisecond)}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(k.Addrs()...))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := stream.CreateTopics(ctx, kadm.NewClient(cl), topics.Catalogue(), 1); err != nil {
		t.Fatal(err)
	}
	ps := profiles(300, 400, 6000)
	produceProfiles(t, cl, ps)

	als := recsys.DefaultALSConfig()
	als.Factors, als.Iterations = 16, 5
	tc := recommend.TrainConfig{Brokers: k.Addrs(), ClientOpts: opts, ALS: als, Logger: quiet()}
	m1, err := recommend.Train(ctx, tc)
	if err != nil {
		t.Fatal(err)
	}
	if m1.ItemCount == 0 || m1.UserCount != 300 || !m1.Complete || len(m1.Popular) == 0 || len(m1.Metrics) == 0 {
		t.Fatalf("manifest = %v", m1)
	}

	models := recommend.NewModelStore(k.Addrs(), quiet(), opts...)
	p, store := recommend.New(recommend.Options{Mode: stream.ExactlyOnce, Models: models, N: 20, RefreshPerSecond: 1000})
	r, err := stream.NewRunner(p, stream.Config{Brokers: k.Addrs(), InstanceID: "t", CommitInterval: 30 * time.Millisecond,
		Logger: quiet(), Metrics: prometheus.NewRegistry(), ClientOpts: opts})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() { stop(); <-done }()

	lookup := func(user string) *pb.Candidates {
		c, _, _ := stream.Lookup(ctx, r, store, user)
		return c
	}
	waitAll := func(version string) {
		t.Helper()
		for {
			ok := 0
			for u := range ps {
				if c := lookup(u); c != nil && c.ModelVersion == version {
					ok++
				}
			}
			if ok == len(ps) {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("%d of %d users have candidates of %s", ok, len(ps), version)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitAll(m1.Version)

	u := "user1"
	c := lookup(u)
	if c.CascadeLevel != "als" {
		t.Errorf("%s answered by %q, want als", u, c.CascadeLevel)
	}
	owned := map[int64]bool{}
	for _, it := range ps[u].Items {
		if it.Wanted || it.Collected {
			owned[it.ReleaseId] = true
		}
	}
	recs, wants := 0, 0
	var first int64
	for _, cd := range c.Candidates {
		switch cd.Source {
		case pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION:
			if owned[cd.ReleaseId] {
				t.Errorf("recommended %d, which %s already has", cd.ReleaseId, u)
			}
			if cd.Score <= 0 || cd.Score > 1 {
				t.Errorf("score %v outside (0, 1]", cd.Score)
			}
			if recs == 0 {
				first = cd.ReleaseId
			}
			recs++
		case pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST:
			wants++
		}
	}
	if recs != 20 || wants != len(profile.Wantlist(ps[u])) {
		t.Errorf("%d recommendations and %d wantlist candidates", recs, wants)
	}

	// A new collector whose records the model does not know: popularity.
	cold := map[string]*pb.UserProfile{"newbie": {UserId: "newbie", Version: 1, Items: []*pb.ProfileItem{{ReleaseId: 999999, Collected: true}}}}
	produceProfiles(t, cl, cold)
	for lookup("newbie") == nil && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	if c := lookup("newbie"); c.GetCascadeLevel() != "popularity" || len(c.GetCandidates()) == 0 || c.Candidates[0].ReleaseId != m1.Popular[0] {
		t.Errorf("cold user's candidates = %v", c)
	}

	// The user adopts the top recommendation: online quality counts it.
	adopt := proto.Clone(ps[u]).(*pb.UserProfile)
	profile.Apply(adopt, &pb.Interaction{EventId: "adopt", EventTimeMs: 1e9, UserId: u, ReleaseId: first, Kind: pb.InteractionKind_INTERACTION_KIND_WANT_ADD})
	produceProfiles(t, cl, map[string]*pb.UserProfile{u: adopt})
	rd, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.ConsumeTopics(topics.RecOutcomes().Name), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	adopted, recommended := int32(0), int32(0)
	for adopted == 0 && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		rd.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			var o pb.RecOutcome
			if proto.Unmarshal(r.Value, &o) == nil {
				adopted += o.Adopted
				recommended += o.Recommended
			}
		})
		pcancel()
	}
	if adopted != 1 || recommended < 20*300 {
		t.Errorf("outcomes: adopted %d, recommended %d", adopted, recommended)
	}

	// A new version: every user is refreshed to it (by the timer, without
	// any new profile).
	time.Sleep(10 * time.Millisecond) // a distinct version timestamp
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

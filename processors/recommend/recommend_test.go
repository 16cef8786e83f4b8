package recommend_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
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

// produceReleases writes releases.v1 records: each id with its genres and
// styles.
func produceReleases(t *testing.T, cl *kgo.Client, tags map[int64][2][]string) {
	t.Helper()
	var recs []*kgo.Record
	for id, gs := range tags {
		b, err := proto.Marshal(&pb.Release{ReleaseId: id, Title: fmt.Sprint("release ", id), Genres: gs[0], Styles: gs[1]})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: topics.Releases().Name, Key: []byte(strconv.FormatInt(id, 10)), Value: b})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// The cascade's genre level: a collector whose records the model does not
// know, but whose records have genres on releases.v1, is recommended the
// model's releases of those genres; known collectors still get ALS and
// collectors with nothing usable get popularity. Releases of the model's
// items arriving after the model are picked up.
func TestGenreLevel(t *testing.T) {
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
	// Generated release r belongs to generated genre (r-1) % 8: here
	// genres 0-3 are "Electronic" and 4-7 "Rock", each its own style.
	const genres = 8
	tagsOf := func(r int64) [2][]string {
		k := (r - 1) % genres
		g := "Electronic"
		if k >= 4 {
			g = "Rock"
		}
		return [2][]string{{g}, {fmt.Sprint("Style ", k)}}
	}
	ps := profiles(300, 400, 6000)
	produceProfiles(t, cl, ps)
	// New releases (nobody has them yet, so the model will not know
	// them), of style 3.
	newReleases := map[int64][2][]string{}
	for r := int64(100001); r <= 100004; r++ {
		newReleases[r] = tagsOf(4) // (4-1) % 8 = style 3
	}
	produceReleases(t, cl, newReleases)

	als := recsys.DefaultALSConfig()
	als.Factors, als.Iterations = 16, 5
	m1, err := recommend.Train(ctx, recommend.TrainConfig{Brokers: k.Addrs(), ClientOpts: opts, ALS: als, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}

	models := recommend.NewModelStore(k.Addrs(), quiet(), opts...)
	gs := recommend.NewGenres(stream.GlobalConfig{Brokers: k.Addrs(), ClientOpts: opts, Logger: quiet(), ReadCommitted: true})
	p, store := recommend.New(recommend.Options{Mode: stream.ExactlyOnce, Models: models, Genres: gs, N: 20})
	r, err := stream.NewRunner(p, stream.Config{Brokers: k.Addrs(), InstanceID: "t", CommitInterval: 30 * time.Millisecond,
		Logger: quiet(), Metrics: prometheus.NewRegistry(), ClientOpts: opts})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() { stop(); <-done }()

	// await returns the user's candidates once they are of profile version.
	await := func(user string, version int64) *pb.Candidates {
		t.Helper()
		for {
			c, _, _ := stream.Lookup(ctx, r, store, user)
			if c != nil && c.ProfileVersion == version && c.ModelVersion == m1.Version {
				return c
			}
			if ctx.Err() != nil {
				t.Fatalf("no candidates of %s version %d: %v", user, version, c)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	recs := func(c *pb.Candidates) []*pb.Candidate {
		var out []*pb.Candidate
		for _, cd := range c.Candidates {
			if cd.Source == pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION {
				out = append(out, cd)
			}
		}
		return out
	}

	// A collector the model knows: ALS, genres or not.
	if c := await("user1", ps["user1"].Version); c.CascadeLevel != "als" {
		t.Errorf("user1 answered by %q, want als", c.CascadeLevel)
	}

	// A collector with nothing the model or the table knows: popularity.
	// The fan's records have genres, but none of the model's items has
	// yet: popularity too.
	fan := &pb.UserProfile{UserId: "fan", Version: 1, Items: []*pb.ProfileItem{{ReleaseId: 100001, Wanted: true}, {ReleaseId: 100002, Collected: true}}}
	produceProfiles(t, cl, map[string]*pb.UserProfile{
		"nobody": {UserId: "nobody", Version: 1, Items: []*pb.ProfileItem{{ReleaseId: 999999, Collected: true}}},
		"fan":    fan,
	})
	if c := await("nobody", 1); c.CascadeLevel != "popularity" || len(recs(c)) != 20 || recs(c)[0].ReleaseId != m1.Popular[0] {
		t.Errorf("nobody's candidates = %v", c)
	}
	if c := await("fan", 1); c.CascadeLevel != "popularity" {
		t.Errorf("fan answered by %q before the model's releases have genres, want popularity", c.CascadeLevel)
	}

	// The model's releases arrive (after the model): the genre level
	// answers for the fan, with style 3 first, by popularity within it.
	all := map[int64][2][]string{}
	for r := int64(1); r <= 400; r++ {
		all[r] = tagsOf(r)
	}
	produceReleases(t, cl, all)
	for {
		if _, ok := gs.Table.Get(400); ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("releases never reached the table")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2100 * time.Millisecond) // the item genres are rebuilt at most every 2 s
	fan = proto.Clone(fan).(*pb.UserProfile)
	fan.Version = 2
	produceProfiles(t, cl, map[string]*pb.UserProfile{"fan": fan})
	c := await("fan", 2)
	if c.CascadeLevel != recommend.LevelGenre {
		t.Fatalf("fan answered by %q, want genre", c.CascadeLevel)
	}
	rs := recs(c)
	if len(rs) != 20 {
		t.Fatalf("%d recommendations, want 20", len(rs))
	}
	var firstOfStyle int64
	for _, id := range m1.Popular {
		if (id-1)%genres == 3 {
			firstOfStyle = id
			break
		}
	}
	if rs[0].ReleaseId != firstOfStyle || rs[0].Score != 1 {
		t.Errorf("first recommendation %v, want %d (the most popular of style 3) scored 1", rs[0], firstOfStyle)
	}
	for i, cd := range rs {
		if (cd.ReleaseId-1)%genres != 3 || cd.ReleaseId > 400 {
			t.Errorf("recommendation %d is %d, of genre %d, want style 3", i, cd.ReleaseId, (cd.ReleaseId-1)%genres)
		}
		if cd.Score <= 0 || cd.Score > 1 || (i > 0 && cd.Score > rs[i-1].Score) {
			t.Errorf("recommendation %d scored %v after %v", i, cd.Score, rs[max(i-1, 0)].Score)
		}
	}
	if want := profile.Wantlist(fan); len(c.Candidates)-len(rs) != len(want) {
		t.Errorf("%d wantlist candidates, want %d", len(c.Candidates)-len(rs), len(want))
	}

	// Online quality is split by the level that answered.
	rd, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.ConsumeTopics(topics.RecOutcomes().Name), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	levels := map[string]int32{}
	for levels[recommend.LevelGenre] == 0 && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		rd.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			var o pb.RecOutcome
			if proto.Unmarshal(r.Value, &o) == nil {
				levels[o.Level] += o.Recommended
			}
		})
		pcancel()
	}
	if levels[recommend.LevelGenre] == 0 || levels["als"] == 0 || levels["popularity"] == 0 {
		t.Errorf("recommended by level: %v", levels)
	}
}

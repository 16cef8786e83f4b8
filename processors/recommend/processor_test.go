package recommend_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/stream/streamtest"
	"github.com/cratestream/cratestream/processors/recommend"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

var (
	profilesT   = topics.UserProfiles()
	candidatesT = topics.UserCandidates()
	outcomesT   = topics.RecOutcomes()
)

// handModel is a model version of releases 1..40 with two factors: odd
// releases point along one axis, even ones along the other, longer the
// larger the id. A collector of odd releases is recommended the largest odd
// ones first; popularity ranks 40, 39, ..., 1.
func handModel(version string, trainedAtMs int64) (*pb.ModelManifest, map[int64][]float32) {
	factors := map[int64][]float32{}
	var popular []int64
	for r := int64(40); r >= 1; r-- {
		long := 1 + float32(r)/100
		if r%2 == 1 {
			factors[r] = []float32{long, 0.05}
		} else {
			factors[r] = []float32{0.05, long}
		}
		popular = append(popular, r)
	}
	return &pb.ModelManifest{Model: "als", Version: version, TrainedAtMs: trainedAtMs, ItemCount: int32(len(factors)), Factors: 2,
		Params: map[string]string{"regularization": "0.1", "alpha": "1"}, Popular: popular, Complete: true}, factors
}

// tagsOf are the genres and styles of release r: style (r-1) % 8 for the
// model's releases, 3 for the fan's records; styles 0-3 are of genre
// Electronic, 4-7 of Rock.
func tagsOf(r int64) *pb.Release {
	k := (r - 1) % 8
	if slices.Contains(fanRecords, r) {
		k = 3
	}
	g := "Electronic"
	if k >= 4 {
		g = "Rock"
	}
	return &pb.Release{ReleaseId: r, Genres: []string{g}, Styles: []string{fmt.Sprint("Style ", k)}}
}

// fanRecords are releases the model does not know, of style 3.
var fanRecords = []int64{100001, 100002}

func own(id int64) *pb.ProfileItem  { return &pb.ProfileItem{ReleaseId: id, Collected: true} }
func want(id int64) *pb.ProfileItem { return &pb.ProfileItem{ReleaseId: id, Wanted: true} }

// env is the recommend processor in memory, with a model store and a genre
// table the test fills.
type env struct {
	t      *testing.T
	tt     *streamtest.Tester
	models *recommend.ModelStore
	genres *recommend.Genres
	cands  *stream.Table[string, *pb.Candidates]
}

// newEnv runs the processor with o (5 recommendations unless o.N says),
// its model store, and its genre table unless noGenres.
func newEnv(t *testing.T, o recommend.Options, noGenres bool) *env {
	e := &env{t: t, models: recommend.NewModelStore(nil, quiet())}
	o.Mode, o.Models = stream.ExactlyOnce, e.models
	if o.N == 0 {
		o.N = 5
	}
	if !noGenres {
		e.genres = recommend.NewGenres(stream.GlobalConfig{})
		o.Genres = e.genres
	}
	p, cands := recommend.New(o)
	e.cands = cands
	e.tt = streamtest.New(t, p)
	return e
}

func (e *env) publish(version string, trainedAtMs int64) {
	man, factors := handModel(version, trainedAtMs)
	e.models.PublishForTest(e.t, man, factors)
}

// tag puts the releases' genres and styles into the genre table.
func (e *env) tag(releases ...int64) {
	for _, r := range releases {
		e.genres.PutReleaseForTest(e.t, e.tt, tagsOf(r))
	}
}

func (e *env) send(user string, version int64, items ...*pb.ProfileItem) {
	streamtest.Send(e.tt, profilesT, user, &pb.UserProfile{UserId: user, Version: version, Items: items})
}

// candidates returns the stored candidates of user and checks that the
// last record of user-candidates.v1 (the store's changelog) says the same.
func (e *env) candidates(user string) *pb.Candidates {
	e.t.Helper()
	c, ok := streamtest.Get(e.tt, e.cands, user)
	if !ok {
		e.t.Fatalf("no candidates for %s", user)
	}
	var last *pb.Candidates
	for _, o := range streamtest.All(e.tt, candidatesT) {
		if o.Key == user {
			last = o.Value
		}
	}
	if !proto.Equal(last, c) {
		e.t.Fatalf("user-candidates.v1 has %v for %s, the store %v", last, user, c)
	}
	return c
}

// describe is candidates in one line: level, model, recommended and
// wanted release ids in order.
func describe(c *pb.Candidates) string {
	var recs, wants []string
	for _, cd := range c.Candidates {
		switch cd.Source {
		case pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION:
			recs = append(recs, fmt.Sprint(cd.ReleaseId))
		case pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST:
			wants = append(wants, fmt.Sprint(cd.ReleaseId))
		}
	}
	return fmt.Sprintf("%s@%s: recs %s; wants %s", c.CascadeLevel, c.ModelVersion, strings.Join(recs, " "), strings.Join(wants, " "))
}

// checkScores checks that recommendations are scaled into (0, 1] by the
// best, which scores 1, best first, and that wanted releases score 0.
func checkScores(t *testing.T, c *pb.Candidates) {
	t.Helper()
	prev := 1.0
	for i, cd := range c.Candidates {
		switch {
		case cd.Source == pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST && cd.Score != 0:
			t.Errorf("wanted %d scored %v", cd.ReleaseId, cd.Score)
		case cd.Source != pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION:
		case i == 0 && cd.Score != 1, cd.Score <= 0 || cd.Score > prev:
			t.Errorf("recommendation %d (%d) scored %v after %v", i, cd.ReleaseId, cd.Score, prev)
		default:
			prev = cd.Score
		}
	}
}

// outcomes returns the rec-outcomes.v1 records since the last call, in
// one line each.
func (e *env) outcomes() []string {
	var out []string
	for _, o := range streamtest.Read(e.tt, outcomesT) {
		v := o.Value
		out = append(out, fmt.Sprintf("%s %s@%s/%s +%d adopted %d", v.EventId, v.UserId, v.ModelVersion, v.Level, v.Recommended, v.Adopted))
	}
	return out
}

// Each level of the cascade answers whom it should, with the release ids
// and scores it should, what the collector has left out.
func TestCascade(t *testing.T) {
	tests := []struct {
		name     string
		noGenres bool
		items    []*pb.ProfileItem
		want     string
	}{
		// 39 is owned, 37 wanted: neither is recommended; 37 follows as
		// wanted.
		{"a collector the model knows: ALS", false, []*pb.ProfileItem{own(39), want(37)}, "als@v1: recs 35 33 31 29 27; wants 37"},
		{"nothing the model or the genres know: popularity", false, []*pb.ProfileItem{own(999999)}, "popularity@v1: recs 40 39 38 37 36; wants "},
		// Style 3 is 4, 12, 20, 28, 36: by popularity within it.
		{"records with genres, none known to the model: genre", false, []*pb.ProfileItem{want(fanRecords[0]), own(fanRecords[1])},
			"genre@v1: recs 36 28 20 12 4; wants 100001"},
		{"no genre table: popularity", true, []*pb.ProfileItem{want(fanRecords[0]), own(fanRecords[1])},
			"popularity@v1: recs 40 39 38 37 36; wants 100001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, recommend.Options{}, tc.noGenres)
			e.publish("v1", 1)
			if !tc.noGenres {
				e.tag(fanRecords...)
				for r := int64(1); r <= 40; r++ {
					e.tag(r)
				}
			}
			e.tt.Advance(time.Minute)
			e.send("u", 1, tc.items...)
			c := e.candidates("u")
			if got := describe(c); got != tc.want {
				t.Errorf("candidates %s, want %s", got, tc.want)
			}
			checkScores(t, c)
			if c.UserId != "u" || c.ProfileVersion != 1 || c.EventId != "candidates:u:1" || c.EventTimeMs != e.tt.Now().UnixMilli() {
				t.Errorf("candidates of %s version %d, event %s at %d (now %d)", c.UserId, c.ProfileVersion, c.EventId, c.EventTimeMs, e.tt.Now().UnixMilli())
			}
			// Online quality counts what is newly recommended, by level.
			level := strings.Split(tc.want, "@")[0]
			if got, want := e.outcomes(), []string{"candidates:u:1:recommended u@v1/" + level + " +5 adopted 0"}; !slices.Equal(got, want) {
				t.Errorf("outcomes %v, want %v", got, want)
			}
		})
	}
}

// What each profile record does: candidates for a newer version, nothing
// for a replayed or older one, a dead letter under the wrong key, the
// adoption of a recommendation counted, a tombstone that forgets the user.
func TestProfileChanges(t *testing.T) {
	e := newEnv(t, recommend.Options{}, true)
	e.publish("v1", 1)
	steps := []struct {
		name       string
		do         func()
		candidates string // the user's candidates after the step; "" if none
		published  int    // records on user-candidates.v1 in the step
		outcomes   []string
		dead       string // the reason of the step's dead letter
	}{
		{"a profile", func() { e.send("u", 1, own(39)) }, "als@v1: recs 37 35 33 31 29; wants ", 1,
			[]string{"candidates:u:1:recommended u@v1/als +5 adopted 0"}, ""},
		{"replayed", func() { e.send("u", 1, own(39)) }, "als@v1: recs 37 35 33 31 29; wants ", 0, nil, ""},
		{"older", func() { e.send("u", 0, own(1)) }, "als@v1: recs 37 35 33 31 29; wants ", 0, nil, ""},
		{"under another user's key", func() {
			streamtest.Send(e.tt, profilesT, "u", &pb.UserProfile{UserId: "v", Version: 5, Items: []*pb.ProfileItem{own(1)}})
		}, "als@v1: recs 37 35 33 31 29; wants ", 0, nil, `profile of "v" arrived under key "u"`},
		// Wanting the top recommendation adopts it (2, never
		// recommended, is not adopted); 27 is new.
		{"a recommendation adopted", func() { e.send("u", 2, own(39), want(37), own(2)) }, "als@v1: recs 35 33 31 29 27; wants 37", 1,
			[]string{"adopted:u:2 u@v1/als +0 adopted 1", "candidates:u:2:recommended u@v1/als +1 adopted 0"}, ""},
		{"a tombstone", func() { streamtest.SendTombstone(e.tt, profilesT, "u") }, "", 1, nil, ""},
		// The user is forgotten: version 1 is new again.
		{"a profile after the tombstone", func() { e.send("u", 1, own(1)) }, "als@v1: recs 39 37 35 33 31; wants ", 1,
			[]string{"candidates:u:1:recommended u@v1/als +5 adopted 0"}, ""},
	}
	for _, s := range steps {
		s.do()
		outs := streamtest.Read(e.tt, candidatesT)
		if len(outs) != s.published {
			t.Errorf("%s: %d records on user-candidates.v1, want %d", s.name, len(outs), s.published)
		}
		c, ok := streamtest.Get(e.tt, e.cands, "u")
		switch {
		case s.candidates == "" && (ok || len(outs) != 1 || !outs[0].Tombstone):
			t.Errorf("%s: candidates %v (published %v), want none and a tombstone", s.name, c, outs)
		case s.candidates != "" && (!ok || describe(c) != s.candidates):
			t.Errorf("%s: candidates %s, want %s", s.name, describe(c), s.candidates)
		}
		if got := e.outcomes(); !slices.Equal(got, s.outcomes) {
			t.Errorf("%s: outcomes %v, want %v", s.name, got, s.outcomes)
		}
		dls := e.tt.DeadLetters()
		if s.dead == "" && len(dls) > 0 || s.dead != "" && (len(dls) != 1 || !strings.Contains(dls[0].Reason, s.dead)) {
			t.Errorf("%s: dead letters %v, want %q", s.name, dls, s.dead)
		}
	}
}

// Before any model, candidates are the wantlist; once a version is served,
// the refresh tick recomputes every user at RefreshPerSecond per second
// (in key order), without a new profile, and again for the next version.
func TestRefreshAfterModelSwitch(t *testing.T) {
	e := newEnv(t, recommend.Options{RefreshPerSecond: 2}, true)
	users := []string{"a", "b", "c", "d", "e"}
	for _, u := range users {
		e.send(u, 1, own(1), want(3))
	}
	if got := describe(e.candidates("a")); got != "none@: recs ; wants 3" {
		t.Fatalf("candidates without a model: %s", got)
	}
	if got := e.outcomes(); len(got) != 0 {
		t.Fatalf("outcomes %v without recommendations", got)
	}
	versions := func() string {
		var vs []string
		for _, u := range users {
			vs = append(vs, u+":"+e.candidates(u).ModelVersion)
		}
		return strings.Join(vs, " ")
	}
	e.tt.Advance(time.Second)
	if got := versions(); got != "a: b: c: d: e:" {
		t.Fatalf("before any model: %s", got)
	}
	for _, step := range []struct {
		publish string
		ticks   []string // versions after each tick
	}{
		{"v1", []string{"a:v1 b:v1 c: d: e:", "a:v1 b:v1 c:v1 d:v1 e:", "a:v1 b:v1 c:v1 d:v1 e:v1"}},
		{"v2", []string{"a:v2 b:v2 c:v1 d:v1 e:v1", "a:v2 b:v2 c:v2 d:v2 e:v1", "a:v2 b:v2 c:v2 d:v2 e:v2"}},
	} {
		e.publish(step.publish, e.tt.Now().UnixMilli())
		for i, want := range step.ticks {
			e.tt.Advance(time.Second)
			if got := versions(); got != want {
				t.Fatalf("%s, tick %d: %s, want %s", step.publish, i+1, got, want)
			}
		}
	}
	if got := describe(e.candidates("e")); got != "als@v2: recs 39 37 35 33 31; wants 3" {
		t.Errorf("refreshed candidates %s", got)
	}
}

// Releases whose genres arrive after the model are picked up by the genre
// level: at most every 2s of the handler's clock, when the item tags are
// rebuilt.
func TestGenreLevelFollowsTheTable(t *testing.T) {
	e := newEnv(t, recommend.Options{}, false)
	e.publish("v1", 1)
	e.tag(fanRecords...)
	fan := []*pb.ProfileItem{want(fanRecords[0]), own(fanRecords[1])}
	e.send("fan", 1, fan...)
	// The fan's records have genres, none of the model's items has yet.
	if got := describe(e.candidates("fan")); got != "popularity@v1: recs 40 39 38 37 36; wants 100001" {
		t.Fatalf("before the model's releases: %s", got)
	}
	for r := int64(1); r <= 40; r++ {
		e.tag(r)
	}
	e.send("fan", 2, fan...)
	if got := e.candidates("fan").CascadeLevel; got != "popularity" {
		t.Fatalf("within 2s of the last build: %s, want the cached item tags (popularity)", got)
	}
	e.tt.Advance(2 * time.Second)
	e.send("fan", 3, fan...)
	if got := describe(e.candidates("fan")); got != "genre@v1: recs 36 28 20 12 4; wants 100001" {
		t.Fatalf("2s later: %s", got)
	}
	var levels []string
	for _, o := range e.outcomes() {
		levels = append(levels, strings.Fields(o)[1])
	}
	if want := []string{"fan@v1/popularity", "fan@v1/genre"}; !slices.Equal(levels, want) {
		t.Errorf("outcomes by level %v, want %v (version 2 recommended nothing new)", levels, want)
	}
}

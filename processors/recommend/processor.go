package recommend

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cratestream/cratestream/internal/recsys"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/processors/profile"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// Name is the processor's name and consumer group.
const Name = "recommend"

// CandidatesStore is the store readable by key (the gateway serves
// recommendations from it).
const CandidatesStore = "candidates"

// Options configure the processor.
type Options struct {
	Mode   stream.Mode
	Models *ModelStore
	// Genres, when set, follows releases.v1 and enables the cascade's
	// genre level (between ALS and popularity); nil skips it.
	Genres *Genres
	// N is how many recommendations a user gets. Default 100.
	N int
	// RefreshPerSecond bounds, per task, how many users are recomputed
	// per second after a new model version lands. Default 200.
	RefreshPerSecond int
	// Metrics receives the online-quality counters; nil keeps them private.
	Metrics prometheus.Registerer
}

// Compute returns the candidates of a profile under model m (nil: no
// model yet, wantlist only): the top n recommendations from the cascade,
// then the wantlist. Recommendation scores are scaled into (0, 1] by the
// best one, so that the cart builder's objective (quantity × Σ score) sees
// positive scores whatever the model's scale.
func Compute(m *Model, prof *pb.UserProfile, n int, nowMs int64) (*pb.Candidates, error) {
	return ComputeWith(m, nil, prof, n, nowMs)
}

// ComputeWith is Compute with the cascade's genre level served from g
// (nil: skipped): a collector none of whose records the model knows, but
// some of whose records have genres or styles in g, is recommended the
// model's items of those genres (CascadeLevel "genre"). nowMs is the
// candidates' time and the clock of g's item cache (the handler's clock).
func ComputeWith(m *Model, g *Genres, prof *pb.UserProfile, n int, nowMs int64) (*pb.Candidates, error) {
	c := &pb.Candidates{
		EventId:        fmt.Sprintf("candidates:%s:%d", prof.UserId, prof.Version),
		EventTimeMs:    nowMs,
		UserId:         prof.UserId,
		ProfileVersion: prof.Version,
		CascadeLevel:   "none",
	}
	want := profile.Wantlist(prof)
	if m != nil {
		c.ModelVersion = m.Version
		var history, excluded []int32
		var liked []int64 // known to the model or not, for the genre level
		for _, it := range prof.Items {
			if it.Wanted || it.Collected || it.Rating >= 3 {
				liked = append(liked, it.ReleaseId)
			}
			p, ok := m.Items.Lookup(it.ReleaseId)
			if !ok {
				continue
			}
			if it.Wanted || it.Collected || it.Rating >= 3 {
				history = append(history, p)
			}
			if it.Wanted || it.Collected {
				excluded = append(excluded, p)
			}
		}
		cascade := m.Cascade
		if g != nil && len(history) == 0 { // the genre level answers only where ALS cannot
			if s := g.scorer(m, liked, time.UnixMilli(nowMs)); s != nil {
				cascade = m.withGenre(s)
			}
		}
		rec, err := cascade.Recommend(history, n, recsys.NewExclusion(excluded))
		if err != nil {
			return nil, fmt.Errorf("recommend %s: %w", prof.UserId, err)
		}
		c.CascadeLevel = rec.Level
		top := float32(0)
		if len(rec.Items) > 0 {
			top = rec.Items[0].Score
		}
		for i, s := range rec.Items {
			id, ok := m.Items.ID(s.Item)
			if !ok {
				continue
			}
			score := 1.0 - float64(i)/float64(len(rec.Items)+1) // rank fallback when scores are not positive
			if top > 0 && s.Score > 0 && !math.IsInf(float64(s.Score), 0) {
				score = float64(s.Score / top)
			}
			c.Candidates = append(c.Candidates, &pb.Candidate{ReleaseId: id, Score: score, Source: pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION})
		}
	}
	for _, id := range want {
		c.Candidates = append(c.Candidates, &pb.Candidate{ReleaseId: id, Source: pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST})
	}
	return c, nil
}

type quality struct {
	recommended *prometheus.CounterVec
	adopted     *prometheus.CounterVec
}

// taskRefresh is a task's progress through its users after a model switch.
type taskRefresh struct {
	version string
	pending []string
}

// New returns the recommend processor and its candidates store.
func New(o Options) (*stream.Processor, *stream.Table[string, *pb.Candidates]) {
	if o.N <= 0 {
		o.N = 100
	}
	if o.RefreshPerSecond <= 0 {
		o.RefreshPerSecond = 200
	}
	if o.Metrics == nil {
		o.Metrics = prometheus.NewRegistry()
	}
	q := quality{
		recommended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_recommend_recommended_total",
			Help: "Releases newly recommended to a user, by model version and cascade level.",
		}, []string{"model_version", "level"}),
		adopted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cratestream_recommend_adopted_total",
			Help: "Recommended releases the user then added to wantlist or collection, by model version and cascade level.",
		}, []string{"model_version", "level"}),
	}
	for _, c := range []prometheus.Collector{q.recommended, q.adopted} {
		_ = o.Metrics.Register(c) // a second instance in one process shares them
	}

	p := stream.NewProcessor(Name, o.Mode)
	if o.Models != nil {
		p.UseGlobal(o.Models)
	}
	if o.Genres != nil {
		p.UseGlobal(o.Genres.Table)
	}
	profiles := topics.UserProfiles()
	cands := topics.UserCandidates()
	// The last profile of each user, for refreshes after a model switch
	// and to see what a change added.
	users := stream.NewTable(p, "profiles", profiles.Key, profiles.Value)
	// The store's changelog is user-candidates.v1: writing is publishing.
	out := stream.NewTable(p, CandidatesStore, cands.Key, cands.Value, stream.WithChangelog(cands.Name))
	p.Output(cands.TopicSpec)
	outcomes := topics.RecOutcomes()
	p.Output(outcomes.TopicSpec)

	var mu sync.Mutex
	refresh := make(map[int32]*taskRefresh)

	recompute := func(c *stream.Ctx, prof *pb.UserProfile, prev *pb.Candidates) error {
		var m *Model
		if o.Models != nil {
			m = o.Models.Current()
		}
		next, err := ComputeWith(m, o.Genres, prof, o.N, c.Now().UnixMilli())
		if err != nil {
			return err
		}
		// Count what is newly recommended (for the online quality ratio).
		old := make(map[int64]bool)
		for _, cd := range prev.GetCandidates() {
			if cd.Source == pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION {
				old[cd.ReleaseId] = true
			}
		}
		fresh := 0
		for _, cd := range next.Candidates {
			if cd.Source == pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION && !old[cd.ReleaseId] {
				fresh++
			}
		}
		if fresh > 0 {
			q.recommended.WithLabelValues(next.ModelVersion, next.CascadeLevel).Add(float64(fresh))
			if err := stream.Emit(c, outcomes, next.ModelVersion, &pb.RecOutcome{
				EventId: next.EventId + ":recommended", EventTimeMs: next.EventTimeMs, UserId: prof.UserId,
				ModelVersion: next.ModelVersion, Level: next.CascadeLevel, Recommended: int32(fresh),
			}); err != nil {
				return err
			}
		}
		return out.Put(c, prof.UserId, next)
	}

	var tick *stream.Timer[string]
	scheduleTick := func(c *stream.Ctx) error {
		if _, ok := tick.Pending(c, "refresh"); ok {
			return nil
		}
		return tick.Schedule(c, "refresh", c.Now().Add(time.Second), "")
	}
	// The refresh tick recomputes, at a bounded rate, the users whose
	// candidates come from an older model than the one served now.
	tick = stream.NewTimer(p, "refresh", stream.Codec[string](stream.StringCodec{}), func(c *stream.Ctx, _ string, _ string) error {
		defer func() { _ = tick.Schedule(c, "refresh", c.Now().Add(time.Second), "") }()
		if o.Models == nil {
			return nil
		}
		m := o.Models.Current()
		if m == nil {
			return nil
		}
		mu.Lock()
		tr := refresh[c.Partition()]
		if tr == nil || tr.version != m.Version {
			keys, err := users.Keys(c)
			if err != nil {
				mu.Unlock()
				return err
			}
			sort.Strings(keys)
			tr = &taskRefresh{version: m.Version, pending: keys}
			refresh[c.Partition()] = tr
		}
		batch := tr.pending[:min(o.RefreshPerSecond, len(tr.pending))]
		tr.pending = tr.pending[len(batch):]
		mu.Unlock()
		for _, u := range batch {
			prev, _, err := out.Get(c, u)
			if err != nil {
				return err
			}
			if prev.GetModelVersion() == m.Version {
				continue
			}
			prof, ok, err := users.Get(c, u)
			if err != nil || !ok {
				continue
			}
			if err := recompute(c, prof, prev); err != nil {
				return err
			}
		}
		return nil
	})

	stream.Consume(p, profiles, func(c *stream.Ctx, user string, prof *pb.UserProfile) error {
		if err := scheduleTick(c); err != nil {
			return err
		}
		if c.Tombstone() {
			if err := users.Delete(c, user); err != nil {
				return err
			}
			return out.Delete(c, user)
		}
		if prof.UserId != user {
			return stream.Invalidf("profile of %q arrived under key %q", prof.UserId, user)
		}
		old, _, err := users.Get(c, user)
		if err != nil {
			return err
		}
		if old != nil && old.Version >= prof.Version {
			return nil // a replayed or older profile
		}
		prev, _, err := out.Get(c, user)
		if err != nil {
			return err
		}
		// Online quality: what the change added that we had recommended.
		if prev != nil {
			recommended := make(map[int64]bool)
			for _, cd := range prev.Candidates {
				if cd.Source == pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION {
					recommended[cd.ReleaseId] = true
				}
			}
			had := make(map[int64]bool)
			for _, it := range old.GetItems() {
				if it.Wanted || it.Collected {
					had[it.ReleaseId] = true
				}
			}
			adopted := int32(0)
			for _, it := range prof.Items {
				if (it.Wanted || it.Collected) && !had[it.ReleaseId] && recommended[it.ReleaseId] {
					adopted++
				}
			}
			if adopted > 0 {
				q.adopted.WithLabelValues(prev.ModelVersion, prev.CascadeLevel).Add(float64(adopted))
				if err := stream.Emit(c, outcomes, prev.ModelVersion, &pb.RecOutcome{
					EventId: fmt.Sprintf("adopted:%s:%d", user, prof.Version), EventTimeMs: c.Now().UnixMilli(), UserId: user,
					ModelVersion: prev.ModelVersion, Level: prev.CascadeLevel, Adopted: adopted,
				}); err != nil {
					return err
				}
			}
		}
		if err := users.Put(c, user, prof); err != nil {
			return err
		}
		return recompute(c, prof, prev)
	})
	return p, out
}

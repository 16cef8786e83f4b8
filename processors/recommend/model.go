// Package recommend turns collectors' profiles into candidates: on each
// profile change the user is folded into the current model (no retraining)
// and scored through a cascade (ALS; then genre affinity, from the genres
// and styles of all the collector's records on releases.v1, for
// collectors none of whose records the model knows; then popularity), and
// user-candidates.v1 gets the top N recommendations plus the wantlist. The trainer (trainer.go) trains the
// model from user-profiles.v1 and publishes it to item-factors.v1 and
// models.v1; serving switches to a version only once it is complete.
package recommend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/recsys"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// Model is one complete, servable model version.
type Model struct {
	Version  string
	Manifest *pb.ModelManifest
	ALS      *recsys.ALSModel
	// Items maps release ids to the model's item positions.
	Items *recsys.Index[int64]
	// Cascade's "genre" level has no model of its own: it is built per
	// request from the collector's genres when the processor follows
	// releases.v1 (Options.Genres), and skipped otherwise.
	Cascade *recsys.Cascade

	pop popularity

	simOnce sync.Once
	sim     *recsys.VectorIndex
	simErr  error
}

// popularity scores items by their rank in the trainer's popularity list;
// it can answer for anyone (the cold-start level of the cascade).
type popularity struct{ scores []float32 }

func (p popularity) NumItems() int       { return len(p.scores) }
func (p popularity) Known(_ []int32) int { return 0 }
func (p popularity) ScoreHistory(_ []int32, dst []float32) error {
	copy(dst, p.scores)
	return nil
}

// newModel builds the servable model of a complete version.
func newModel(m *pb.ModelManifest, factors map[int64][]float32) (*Model, error) {
	ids := make([]int64, 0, len(factors))
	for id := range factors {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	idx := recsys.NewIndex[int64]()
	flat := make([]float32, 0, len(ids)*int(m.Factors))
	for _, id := range ids {
		v := factors[id]
		if len(v) != int(m.Factors) {
			return nil, fmt.Errorf("model %s: release %d has %d factors, manifest says %d", m.Version, id, len(v), m.Factors)
		}
		idx.Add(id)
		flat = append(flat, v...)
	}
	reg, _ := strconv.ParseFloat(m.Params["regularization"], 64)
	alpha, _ := strconv.ParseFloat(m.Params["alpha"], 64)
	als, err := recsys.NewALSModelFromItems(flat, int(m.Factors), reg, alpha)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", m.Version, err)
	}
	pop := popularity{scores: make([]float32, len(ids))}
	for i := range pop.scores {
		pop.scores[i] = float32(negInf)
	}
	for rank, id := range m.Popular {
		if p, ok := idx.Lookup(id); ok {
			pop.scores[p] = float32(len(m.Popular) - rank)
		}
	}
	return &Model{
		Version:  m.Version,
		Manifest: m,
		ALS:      als,
		Items:    idx,
		pop:      pop,
		Cascade: &recsys.Cascade{Levels: []recsys.CascadeLevel{
			{Name: "als", Model: als, MinKnown: 1},
			{Name: LevelGenre, MinKnown: 1},
			{Name: "popularity", Model: pop},
		}},
	}, nil
}

const negInf = -1e38

// LevelGenre names the cascade level that answers from the collector's
// genres and styles (Options.Genres).
const LevelGenre = "genre"

// withGenre returns the cascade with its genre level served by s.
func (m *Model) withGenre(s recsys.Scorer) *recsys.Cascade {
	c := &recsys.Cascade{Levels: append([]recsys.CascadeLevel(nil), m.Cascade.Levels...)}
	for i := range c.Levels {
		if c.Levels[i].Name == LevelGenre {
			c.Levels[i].Model = s
		}
	}
	return c
}

// Similar returns up to n releases most similar to release (cosine of
// the item factors), for a release page.
func (m *Model) Similar(release int64, n int) ([]int64, []float32, error) {
	m.simOnce.Do(func() { m.sim, m.simErr = m.ALS.ItemIndex() })
	if m.simErr != nil {
		return nil, nil, m.simErr
	}
	p, ok := m.Items.Lookup(release)
	if !ok {
		return nil, nil, ErrUnknownRelease
	}
	scored, err := m.sim.Similar(p, n, recsys.Exclusion{})
	if err != nil {
		return nil, nil, err
	}
	ids := make([]int64, 0, len(scored))
	scores := make([]float32, 0, len(scored))
	for _, s := range scored {
		if id, ok := m.Items.ID(s.Item); ok {
			ids = append(ids, id)
			scores = append(scores, s.Score)
		}
	}
	return ids, scores, nil
}

// ErrUnknownRelease: the model has no factors for the release.
var ErrUnknownRelease = errors.New("recommend: release unknown to the model")

// ModelStore follows models.v1 and item-factors.v1 and serves the newest
// complete version. Factors of a version are buffered until its manifest
// arrives and they are all there; only then does serving switch. It is a
// stream.Global: the runner runs it and waits until it has caught up.
type ModelStore struct {
	brokers []string
	opts    []kgo.Opt
	log     *slog.Logger
	current atomic.Pointer[Model]
	caught  chan struct{}
	once    sync.Once

	mu        sync.Mutex
	factors   map[string]map[int64][]float32 // by version
	manifests map[string]*pb.ModelManifest
	switched  func(*Model)
}

// NewModelStore returns a store reading from brokers.
func NewModelStore(brokers []string, log *slog.Logger, opts ...kgo.Opt) *ModelStore {
	if log == nil {
		log = slog.Default()
	}
	return &ModelStore{brokers: brokers, opts: opts, log: log, caught: make(chan struct{}),
		factors: make(map[string]map[int64][]float32), manifests: make(map[string]*pb.ModelManifest)}
}

// Current is the model being served, nil before the first complete one.
func (s *ModelStore) Current() *Model { return s.current.Load() }

// OnSwitch registers fn to run (in the store's goroutine) after each switch.
func (s *ModelStore) OnSwitch(fn func(*Model)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.switched = fn
}

// Topic names the store for logs.
func (s *ModelStore) Topic() string { return topics.Models().Name + "+" + topics.ItemFactors().Name }

// CaughtUp is closed once both topics were read to their ends as of Run's
// start (the current model, if any, is then loaded).
func (s *ModelStore) CaughtUp() <-chan struct{} { return s.caught }

// Run follows the topics until ctx ends.
func (s *ModelStore) Run(ctx context.Context) error {
	names := []string{topics.Models().Name, topics.ItemFactors().Name}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(s.brokers...),
		kgo.ConsumeTopics(names...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}, s.opts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var target kadm.ListedOffsets
	for {
		target, err = adm.ListEndOffsets(ctx, names...)
		if err == nil && target.Error() == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	seen := make(map[string]map[int32]int64)
	caughtUp := func() bool {
		ok := true
		target.Each(func(o kadm.ListedOffset) {
			if o.Offset > 0 && seen[o.Topic][o.Partition] < o.Offset {
				ok = false
			}
		})
		return ok
	}
	idle := time.Now()
	for {
		if caughtUp() {
			s.once.Do(func() { close(s.caught) })
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			if seen[r.Topic] == nil {
				seen[r.Topic] = make(map[int32]int64)
			}
			seen[r.Topic][r.Partition] = r.Offset + 1
			s.apply(r)
		})
		if n > 0 {
			idle = time.Now()
		} else if time.Since(idle) > 2*time.Second {
			// Transaction markers at the end of the topics are never
			// returned: after a quiet while, whatever was there has been
			// read.
			s.once.Do(func() { close(s.caught) })
		}
	}
}

func (s *ModelStore) apply(r *kgo.Record) {
	if r.Value == nil {
		return
	}
	switch r.Topic {
	case topics.ItemFactors().Name:
		var f pb.ItemFactors
		if err := proto.Unmarshal(r.Value, &f); err != nil {
			s.log.Warn("undecodable item factors skipped", "offset", r.Offset, "err", err)
			return
		}
		s.mu.Lock()
		if s.factors[f.ModelVersion] == nil {
			s.factors[f.ModelVersion] = make(map[int64][]float32)
		}
		s.factors[f.ModelVersion][f.ReleaseId] = f.Factors
		s.mu.Unlock()
		s.maybeSwitch(f.ModelVersion)
	case topics.Models().Name:
		var m pb.ModelManifest
		if err := proto.Unmarshal(r.Value, &m); err != nil {
			s.log.Warn("undecodable model manifest skipped", "offset", r.Offset, "err", err)
			return
		}
		if !m.Complete {
			return
		}
		s.mu.Lock()
		s.manifests[m.Version] = &m
		s.mu.Unlock()
		s.maybeSwitch(m.Version)
	}
}

// maybeSwitch serves version once its manifest and all its factors are in.
func (s *ModelStore) maybeSwitch(version string) {
	s.mu.Lock()
	m := s.manifests[version]
	fs := s.factors[version]
	if m == nil || len(fs) < int(m.ItemCount) {
		s.mu.Unlock()
		return
	}
	if cur := s.current.Load(); cur != nil && cur.Manifest.TrainedAtMs >= m.TrainedAtMs {
		s.mu.Unlock()
		return
	}
	// Older versions can go: nothing will switch back to them. Newer
	// ones may be arriving already (versions sort by training time).
	for v := range s.factors {
		if v <= version {
			delete(s.factors, v)
		}
	}
	for v := range s.manifests {
		if v <= version {
			delete(s.manifests, v)
		}
	}
	sw := s.switched
	s.mu.Unlock()
	model, err := newModel(m, fs)
	if err != nil {
		s.log.Error("model version not servable", "version", version, "err", err)
		return
	}
	s.current.Store(model)
	s.log.Info("serving model", "version", version, "items", m.ItemCount, "factors", m.Factors)
	if sw != nil {
		sw(model)
	}
}

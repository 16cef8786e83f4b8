package recommend

import (
	"errors"
	"math"
	"sync"
	"time"

	"github.com/cratestream/cratestream/internal/recsys"
	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// Tags are a release's genres and styles as interned tag ids, sorted and
// without duplicates. Releases with the same genres and styles share one
// slice, so a table of the whole catalogue costs about a map entry per
// release.
type Tags []uint16

// Genres follows releases.v1 and keeps each release's genres and styles
// (nothing else), for the cascade's genre level: collectors whose records
// the model does not know (new releases) are served by their affinity to
// those records' genres instead of by popularity alone. Add Table to the
// processor (New does, through Options.Genres).
type Genres struct {
	Table *stream.GlobalTable[int64, Tags]

	mu    sync.RWMutex
	ids   map[string]uint16
	names []string
	sets  map[string]Tags // interned tag sets, by their bytes

	cacheMu sync.Mutex
	cache   *itemTags
}

// itemTags are the tags of one model's items (CSR: item i's tags are
// tags[off[i]:off[i+1]]), with the table position they were built at.
type itemTags struct {
	model *Model
	stamp int64
	built time.Time
	off   []int32
	tags  []uint16
}

// maxTags bounds the tag dictionary (Discogs has ~15 genres and ~750
// styles); tags beyond it are ignored.
const maxTags = math.MaxUint16

// NewGenres returns the table over releases.v1; the processor runs it.
func NewGenres(cfg stream.GlobalConfig) *Genres {
	g := &Genres{ids: make(map[string]uint16), sets: make(map[string]Tags)}
	t := topics.Releases()
	g.Table = stream.NewGlobalTable(stream.NewTopic(t.TopicSpec, t.Key, stream.Codec[Tags](tagsCodec{g})), cfg)
	return g
}

type tagsCodec struct{ g *Genres }

var releaseProto = stream.Proto[pb.Release]()

func (tagsCodec) Append([]byte, Tags) ([]byte, error) {
	return nil, errors.New("recommend: release tags are read-only")
}

func (c tagsCodec) Decode(b []byte) (Tags, error) {
	r, err := releaseProto.Decode(b)
	if err != nil {
		return nil, err
	}
	return c.g.intern(r.Genres, r.Styles), nil
}

// intern maps genres and styles to a shared, sorted tag set. Genres and
// styles are separate vocabularies ("Electronic" the genre, "House" the
// style), kept apart by a prefix.
func (g *Genres) intern(genres, styles []string) Tags {
	if len(genres)+len(styles) == 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var set []uint16
	add := func(name string) {
		id, ok := g.ids[name]
		if !ok {
			if len(g.names) >= maxTags {
				return
			}
			id = uint16(len(g.names))
			g.ids[name] = id
			g.names = append(g.names, name)
		}
		set = append(set, id)
	}
	for _, s := range genres {
		if s != "" {
			add("g:" + s)
		}
	}
	for _, s := range styles {
		if s != "" {
			add("s:" + s)
		}
	}
	if len(set) == 0 {
		return nil
	}
	sortCompact(&set)
	key := make([]byte, 0, 2*len(set))
	for _, id := range set {
		key = append(key, byte(id), byte(id>>8))
	}
	if shared, ok := g.sets[string(key)]; ok {
		return shared
	}
	t := Tags(set)
	g.sets[string(key)] = t
	return t
}

func sortCompact(s *[]uint16) {
	v := *s
	for i := 1; i < len(v); i++ { // insertion sort: a handful of tags
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	out := v[:0]
	for i, x := range v {
		if i == 0 || x != v[i-1] {
			out = append(out, x)
		}
	}
	*s = out
}

// numTags is the size of the tag dictionary so far.
func (g *Genres) numTags() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.names)
}

// Weights returns a collector's affinity per tag: the share of their
// tagged releases (known to the model or not) carrying each tag. It is
// empty when none of the releases has genres in the table.
func (g *Genres) Weights(releases []int64) map[uint16]float64 {
	w := make(map[uint16]float64)
	tagged := 0
	for _, id := range releases {
		tags, ok := g.Table.Get(id)
		if !ok || len(tags) == 0 {
			continue
		}
		tagged++
		for _, t := range tags {
			w[t]++
		}
	}
	for t := range w {
		w[t] /= float64(tagged)
	}
	return w
}

// rebuildEvery bounds how often a model's item tags are rebuilt while
// releases keep arriving after the model.
const rebuildEvery = 2 * time.Second

// items returns the tags of m's items, built on first use and rebuilt
// (at most every rebuildEvery) when the table has moved on since, so
// that releases arriving after the model are picked up. now is the
// handler's clock (the batch's time), so what a handler sees follows its
// clock, not the wall's.
func (g *Genres) items(m *Model, now time.Time) *itemTags {
	stamp := int64(0)
	for _, o := range g.Table.Positions() {
		stamp += o
	}
	g.cacheMu.Lock()
	defer g.cacheMu.Unlock()
	if c := g.cache; c != nil && c.model == m && (c.stamp == stamp || now.Sub(c.built) < rebuildEvery) {
		return c
	}
	n := m.Items.Len()
	c := &itemTags{model: m, stamp: stamp, built: now, off: make([]int32, n+1)}
	for i := 0; i < n; i++ {
		if id, ok := m.Items.ID(int32(i)); ok {
			if tags, ok := g.Table.Get(id); ok {
				c.tags = append(c.tags, tags...)
			}
		}
		c.off[i+1] = int32(len(c.tags))
	}
	g.cache = c
	return c
}

// popWeight is the weight of the popularity tie-breaker: an item's score is its genre
// match (normalised to [0, 1] by the best match) plus popWeight times its
// popularity (normalised to [0, 1]), so popularity only orders items of
// (nearly) equal match and ranks the unmatched ones.
const popWeight = 0.01

// genreScorer is the cascade's genre level for one request: it scores
// every model item by the collector's affinity to the item's tags,
//
//	match_i = Σ_{t ∈ tags(i)} w_t / √|tags(i)|
//
// (the square root stops items tagged with many styles from matching
// everything), normalised by the best match, plus the popularity
// tie-breaker. It answers (Known > 0) only when some item matches.
type genreScorer struct {
	scores []float32
	known  bool
}

// scorer returns the genre level for a collector who likes releases, nil
// when none of them has tags; now is the handler's clock.
func (g *Genres) scorer(m *Model, releases []int64, now time.Time) recsys.Scorer {
	w := g.Weights(releases)
	if len(w) == 0 {
		return nil
	}
	items := g.items(m, now)
	weights := make([]float64, g.numTags())
	for t, v := range w {
		if int(t) < len(weights) {
			weights[t] = v
		}
	}
	n := len(items.off) - 1
	match := make([]float64, n)
	best := 0.0
	for i := range match {
		tags := items.tags[items.off[i]:items.off[i+1]]
		if len(tags) == 0 {
			continue
		}
		var sum float64
		for _, t := range tags {
			if int(t) < len(weights) {
				sum += weights[t]
			}
		}
		match[i] = sum / math.Sqrt(float64(len(tags)))
		best = max(best, match[i])
	}
	pop := m.pop.scores
	var popMax float32
	for _, p := range pop {
		popMax = max(popMax, p)
	}
	s := &genreScorer{scores: make([]float32, n), known: best > 0}
	for i := range s.scores {
		score := 0.0
		if best > 0 {
			score = match[i] / best
		}
		if popMax > 0 && i < len(pop) && pop[i] > 0 {
			score += popWeight * float64(pop[i]/popMax)
		}
		s.scores[i] = float32(score)
		if score <= 0 {
			s.scores[i] = float32(math.Inf(-1)) // neither matched nor popular: not a candidate
		}
	}
	return s
}

func (s *genreScorer) NumItems() int { return len(s.scores) }

func (s *genreScorer) Known(_ []int32) int {
	if s.known {
		return 1
	}
	return 0
}

func (s *genreScorer) ScoreHistory(_ []int32, dst []float32) error {
	copy(dst, s.scores)
	return nil
}

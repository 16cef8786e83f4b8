// Package gen generates realistic traffic for the demo and the benchmarks:
// collectors whose tastes cluster in a few genres, releases whose popularity
// follows a power law.
package gen

import (
	"math"
	"math/rand/v2"
	"strconv"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// InteractionsConfig shapes the generated interactions.
type InteractionsConfig struct {
	Seed     uint64
	Users    int // default 10,000
	Releases int // default 50,000
	// Genres the catalogue is split into; each user favours two. Default 15.
	Genres int
	// Popularity is the Zipf exponent of release popularity within a genre
	// (default 1.1); UserActivity the exponent of how active users are
	// (0 = uniform, the benchmark's setting; default 0.8).
	Popularity   float64
	UserActivity float64
	// ReleaseIDs, when set, are the catalogue (real release ids of the
	// demo); otherwise ids are 1..Releases.
	ReleaseIDs []int64
}

// Interactions generates interactions.v1 events.
type Interactions struct {
	cfg   InteractionsConfig
	rng   *rand.Rand
	users *zipf
	items *zipf
	seq   uint64
	idp   string
}

// NewInteractions returns a generator; the same config gives the same
// events.
func NewInteractions(cfg InteractionsConfig) *Interactions {
	if cfg.Users <= 0 {
		cfg.Users = 10000
	}
	if len(cfg.ReleaseIDs) > 0 {
		cfg.Releases = len(cfg.ReleaseIDs)
	}
	if cfg.Releases <= 0 {
		cfg.Releases = 50000
	}
	if cfg.Genres <= 0 {
		cfg.Genres = 15
	}
	cfg.Genres = min(cfg.Genres, cfg.Releases)
	if cfg.Popularity == 0 {
		cfg.Popularity = 1.1
	}
	if cfg.UserActivity < 0 {
		cfg.UserActivity = 0
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	g := &Interactions{
		cfg:   cfg,
		rng:   rng,
		items: newZipf(rng, cfg.Popularity, (cfg.Releases+cfg.Genres-1)/cfg.Genres),
		idp:   "gen-" + strconv.FormatUint(cfg.Seed, 36) + "-",
	}
	if cfg.UserActivity > 0 {
		g.users = newZipf(rng, cfg.UserActivity, cfg.Users)
	}
	return g
}

// UserID is the id of user n.
func UserID(n int) string { return "user" + strconv.Itoa(n) }

// favourites are a user's two genres, derived from the user number so they
// need no memory.
func (g *Interactions) favourites(u int) (int, int) {
	h := uint64(u)*0x9e3779b97f4a7c15 + g.cfg.Seed
	h ^= h >> 31
	return int(h % uint64(g.cfg.Genres)), int((h / 7919) % uint64(g.cfg.Genres))
}

// Release picks a release for user u: from a favourite genre 80% of the
// time, by popularity rank within the genre.
func (g *Interactions) release(u int) int64 {
	a, b := g.favourites(u)
	genre := a
	switch r := g.rng.Float64(); {
	case r < 0.5:
	case r < 0.8:
		genre = b
	default:
		genre = g.rng.IntN(g.cfg.Genres)
	}
	idx := g.items.next()*g.cfg.Genres + genre
	if idx >= g.cfg.Releases {
		idx = genre
	}
	if len(g.cfg.ReleaseIDs) > 0 {
		return g.cfg.ReleaseIDs[idx]
	}
	return int64(idx + 1)
}

// Next returns the next event, stamped with timeMs.
func (g *Interactions) Next(timeMs int64) *pb.Interaction {
	var u int
	if g.users != nil {
		u = g.users.next()
	} else {
		u = g.rng.IntN(g.cfg.Users)
	}
	g.seq++
	ev := &pb.Interaction{
		EventId:     g.idp + strconv.FormatUint(g.seq, 36),
		EventTimeMs: timeMs,
		UserId:      UserID(u),
		ReleaseId:   g.release(u),
		Source:      pb.InteractionSource_INTERACTION_SOURCE_GENERATED,
	}
	switch r := g.rng.IntN(100); {
	case r < 45:
		ev.Kind = pb.InteractionKind_INTERACTION_KIND_WANT_ADD
	case r < 75:
		ev.Kind = pb.InteractionKind_INTERACTION_KIND_COLLECT_ADD
	case r < 85:
		ev.Kind = pb.InteractionKind_INTERACTION_KIND_RATE
		ev.Rating = int32(1 + g.rng.IntN(5))
	case r < 93:
		ev.Kind = pb.InteractionKind_INTERACTION_KIND_WANT_REMOVE
	default:
		ev.Kind = pb.InteractionKind_INTERACTION_KIND_COLLECT_REMOVE
	}
	return ev
}

// zipf draws ranks 0..n-1 with P(k) ∝ 1/(k+1)^s by inverting a table of the
// cumulative distribution (exact, any s > 0, unlike math/rand's Zipf which
// needs s > 1).
type zipf struct {
	rng *rand.Rand
	cdf []float64
}

func newZipf(rng *rand.Rand, s float64, n int) *zipf {
	cdf := make([]float64, n)
	sum := 0.0
	for k := 0; k < n; k++ {
		sum += 1 / math.Pow(float64(k+1), s)
		cdf[k] = sum
	}
	for k := range cdf {
		cdf[k] /= sum
	}
	return &zipf{rng: rng, cdf: cdf}
}

func (z *zipf) next() int {
	x := z.rng.Float64()
	lo, hi := 0, len(z.cdf)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if z.cdf[mid] < x {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

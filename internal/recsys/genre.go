package recsys

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// GenreConfig parameterises the genre/style affinity model.
type GenreConfig struct {
	// PopularityExponent β weights the genre match by (1+count)^β, so that
	// within the genres a collector likes the well-known records rank
	// first; 0 ranks by genre match alone.
	PopularityExponent float64 `json:"popularity_exponent"`
	// IDF scales each genre's affinity by log(items/items-with-genre), so
	// that a taste for a niche style counts more than for "Rock".
	IDF bool `json:"idf"`
}

// DefaultGenreConfig returns the defaults tuned on ml-latest-small and
// hetrec2011-lastfm-2k (see eval/TUNING.md).
func DefaultGenreConfig() GenreConfig { return GenreConfig{PopularityExponent: 0.5, IDF: true} }

// GenreScore is a collector's affinity for one genre or style.
type GenreScore struct {
	Genre string  `json:"genre"`
	Score float64 `json:"score"`
}

// GenreModel scores items by how well their genres/styles match the
// genres of a collector's history, weighted by popularity.
type GenreModel struct {
	Config     GenreConfig `json:"config"`
	Items      int         `json:"items"`
	Genres     []string    `json:"genres"`
	ItemGenres [][]int32   `json:"-"`
	Counts     []int       `json:"-"`
	idx        map[string]int32
	byGenre    [][]int32 // items of each genre, most popular first
	weight     []float64 // per-genre multiplier (IDF or 1)
	popFactor  []float32 // (1+count)^β per item
}

// TrainGenre builds the model from interactions and item metadata:
// itemGenres[i] lists item i's genres/styles (missing or empty = none;
// duplicates are ignored).
func TrainGenre(ui *CSR, itemGenres [][]string, cfg GenreConfig) (*GenreModel, error) {
	if err := ui.Validate(); err != nil {
		return nil, fmt.Errorf("genre input: %w", err)
	}
	if len(itemGenres) > ui.Cols {
		return nil, fmt.Errorf("%w: genres for %d items, matrix has %d", ErrBadInput, len(itemGenres), ui.Cols)
	}
	if math.IsNaN(cfg.PopularityExponent) || math.IsInf(cfg.PopularityExponent, 0) {
		return nil, fmt.Errorf("%w: genre popularity exponent %v", ErrBadInput, cfg.PopularityExponent)
	}
	g := &GenreModel{Config: cfg, Items: ui.Cols, ItemGenres: make([][]int32, ui.Cols), Counts: ui.ColCounts(),
		idx: map[string]int32{}}
	for i, names := range itemGenres {
		var ids []int32
		for _, name := range names {
			if name == "" {
				continue
			}
			id, ok := g.idx[name]
			if !ok {
				id = int32(len(g.Genres))
				g.idx[name] = id
				g.Genres = append(g.Genres, name)
			}
			ids = append(ids, id)
		}
		slices.Sort(ids)
		g.ItemGenres[i] = slices.Compact(ids)
	}
	g.byGenre = make([][]int32, len(g.Genres))
	for i, ids := range g.ItemGenres {
		for _, id := range ids {
			g.byGenre[id] = append(g.byGenre[id], int32(i))
		}
	}
	g.weight = make([]float64, len(g.Genres))
	for id, items := range g.byGenre {
		slices.SortStableFunc(items, func(a, b int32) int { return cmp.Compare(g.Counts[b], g.Counts[a]) })
		g.weight[id] = 1
		if cfg.IDF {
			g.weight[id] = math.Log(float64(ui.Cols)/float64(len(items))) + 1
		}
	}
	g.popFactor = make([]float32, ui.Cols)
	for i, c := range g.Counts {
		g.popFactor[i] = float32(math.Pow(1+float64(c), cfg.PopularityExponent))
	}
	return g, nil
}

// affinity returns the dense per-genre affinity: the share of the
// history's genre-tagged items carrying each genre, times its weight.
func (g *GenreModel) affinity(history []int32) []float64 {
	aff := make([]float64, len(g.Genres))
	tagged := 0
	for _, i := range history {
		if i < 0 || int(i) >= g.Items || len(g.ItemGenres[i]) == 0 {
			continue
		}
		tagged++
		for _, id := range g.ItemGenres[i] {
			aff[id]++
		}
	}
	if tagged == 0 {
		return aff
	}
	for id := range aff {
		aff[id] = aff[id] / float64(tagged) * g.weight[id]
	}
	return aff
}

// Affinity returns the collector's genre scores, strongest first.
func (g *GenreModel) Affinity(history []int32) []GenreScore {
	var out []GenreScore
	for id, s := range g.affinity(history) {
		if s > 0 {
			out = append(out, GenreScore{Genre: g.Genres[id], Score: s})
		}
	}
	slices.SortFunc(out, func(a, b GenreScore) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.Genre, b.Genre)
	})
	return out
}

// TopInGenre returns the n most popular items of a genre not excluded.
func (g *GenreModel) TopInGenre(genre string, n int, exclude Exclusion) []Scored {
	id, ok := g.idx[genre]
	if !ok {
		return nil
	}
	var out []Scored
	for _, i := range g.byGenre[id] {
		if len(out) >= n {
			break
		}
		if !exclude.Has(i) {
			out = append(out, Scored{Item: i, Score: float32(g.Counts[i])})
		}
	}
	return out
}

// NumItems implements Scorer.
func (g *GenreModel) NumItems() int { return g.Items }

// Known implements Scorer: history items that carry at least one genre.
func (g *GenreModel) Known(history []int32) int {
	n := 0
	for _, i := range history {
		if i >= 0 && int(i) < g.Items && len(g.ItemGenres[i]) > 0 {
			n++
		}
	}
	return n
}

// ScoreHistory implements Scorer:
//
//	score_i = (Σ_{genre ∈ i} affinity) / √|genres of i| · (1+count_i)^β
//
// The square root stops records tagged with many styles from matching
// everything while still rewarding several matching styles.
func (g *GenreModel) ScoreHistory(history []int32, dst []float32) error {
	if len(dst) < g.Items {
		return fmt.Errorf("%w: dst %d < %d items", ErrBadInput, len(dst), g.Items)
	}
	aff := g.affinity(history)
	for i, ids := range g.ItemGenres {
		if len(ids) == 0 {
			dst[i] = 0
			continue
		}
		var s float64
		for _, id := range ids {
			s += aff[id]
		}
		dst[i] = float32(s/math.Sqrt(float64(len(ids)))) * g.popFactor[i]
	}
	return nil
}

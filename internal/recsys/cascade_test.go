package recsys

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
)

func TestCascade(t *testing.T) {
	// 30 users over items 0..19; items 20..24 exist only in metadata
	// (new releases nobody has yet).
	var rows [][]int32
	for u := range 30 {
		var r []int32
		for i := range 20 {
			if (u+i)%3 == 0 || i == u%20 {
				r = append(r, int32(i))
			}
		}
		rows = append(rows, r)
	}
	m := binaryRows(t, 25, rows)
	als, err := TrainALS(context.Background(), m, smallALSConfig())
	if err != nil {
		t.Fatal(err)
	}
	genres := make([][]string, 25)
	for i := range genres {
		genres[i] = []string{[]string{"rock", "jazz", "soul"}[i%3]}
	}
	genres[24] = nil
	g, err := TrainGenre(m, genres, DefaultGenreConfig())
	if err != nil {
		t.Fatal(err)
	}
	pop, err := TrainPopularity(m)
	if err != nil {
		t.Fatal(err)
	}
	c := Cascade{Levels: []CascadeLevel{{"als", als, 3}, {"genre", g, 1}, {"popularity", pop, 0}}}
	tests := []struct {
		name    string
		history []int32
		exclude []int32
		want    string
	}{
		{"enough known history", []int32{0, 3, 6, 9}, nil, "als"},
		{"too little known history", []int32{0, 21}, nil, "genre"},
		{"only unknown, untagged items", []int32{24}, nil, "popularity"},
		{"cold collector", nil, []int32{0, 1}, "popularity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := c.Recommend(tt.history, 5, NewExclusion(tt.exclude))
			if err != nil {
				t.Fatal(err)
			}
			if rec.Level != tt.want {
				t.Fatalf("level %q, want %q", rec.Level, tt.want)
			}
			if len(rec.Items) != 5 {
				t.Fatalf("%d items", len(rec.Items))
			}
			seen := map[int32]bool{}
			for _, s := range rec.Items {
				if slices.Contains(tt.history, s.Item) || slices.Contains(tt.exclude, s.Item) || seen[s.Item] {
					t.Fatalf("item %d is owned, excluded or repeated: %v", s.Item, rec.Items)
				}
				seen[s.Item] = true
			}
		})
	}
	if _, err := (&Cascade{Levels: []CascadeLevel{{"als", als, 3}}}).Recommend(nil, 5, Exclusion{}); !errors.Is(err, ErrNoLevel) {
		t.Fatalf("err = %v, want ErrNoLevel", err)
	}
	if _, err := c.Recommend(nil, 0, Exclusion{}); !errors.Is(err, ErrBadInput) {
		t.Fatalf("n = 0: err = %v", err)
	}
}

// fixedScorer scores only the items in its map; the rest are -Inf.
type fixedScorer struct {
	n      int
	scores map[int32]float32
}

func (f fixedScorer) NumItems() int       { return f.n }
func (f fixedScorer) Known(h []int32) int { return len(h) }
func (f fixedScorer) ScoreHistory(_ []int32, dst []float32) error {
	fill(dst[:f.n], float32(math.Inf(-1)))
	for i, s := range f.scores {
		dst[i] = s
	}
	return nil
}

func TestCascadeFillsFromLowerLevels(t *testing.T) {
	top := fixedScorer{n: 6, scores: map[int32]float32{4: 2, 5: 1}}
	pop := fixedScorer{n: 6, scores: map[int32]float32{0: 9, 4: 8, 1: 7, 2: 6}}
	c := Cascade{Levels: []CascadeLevel{{"ease", top, 1}, {"popularity", pop, 0}}}
	rec, err := c.Recommend([]int32{3}, 4, Exclusion{})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Level != "ease" || rec.Filled != 2 || !slices.Equal(itemsOf(rec.Items), []int32{4, 5, 0, 1}) {
		t.Fatalf("got %+v", rec)
	}
}

package recsys

import (
	"math"
	"slices"
	"testing"
)

func TestGenreModel(t *testing.T) {
	// Items: 0 rock, 1 rock+jazz, 2 jazz, 3 techno, 4 untagged.
	// Popularity (users): 0:3, 1:1, 2:2, 3:2, 4:1.
	m := binaryRows(t, 5, [][]int32{{0, 2}, {0, 3}, {0, 1, 2, 3}, {4}})
	genres := [][]string{{"rock"}, {"rock", "jazz", "rock"}, {"jazz"}, {"techno"}}
	g, err := TrainGenre(m, genres, GenreConfig{PopularityExponent: 1})
	if err != nil {
		t.Fatal(err)
	}
	// History {0, 1, 4}: two tagged items, rock on both, jazz on one.
	aff := g.Affinity([]int32{0, 1, 4})
	want := []GenreScore{{"rock", 1}, {"jazz", 0.5}}
	if !slices.Equal(aff, want) {
		t.Fatalf("affinity %v, want %v", aff, want)
	}
	if k := g.Known([]int32{0, 1, 4, 99}); k != 2 {
		t.Fatalf("known = %d, want 2", k)
	}
	scores := make([]float32, 5)
	if err := g.ScoreHistory([]int32{0, 1, 4}, scores); err != nil {
		t.Fatal(err)
	}
	wantScores := []float32{
		1 * 4,                           // rock, (1+3)
		float32(1.5 / math.Sqrt(2) * 2), // rock+jazz, (1+1)
		0.5 * 3,                         // jazz, (1+2)
		0,                               // techno: no affinity
		0,                               // untagged
	}
	for i := range wantScores {
		if math.Abs(float64(scores[i]-wantScores[i])) > 1e-5 {
			t.Fatalf("scores %v, want %v", scores, wantScores)
		}
	}
	top := g.TopInGenre("jazz", 5, Exclusion{})
	if !slices.Equal(itemsOf(top), []int32{2, 1}) {
		t.Fatalf("top jazz %v", top)
	}
	if top := g.TopInGenre("jazz", 5, NewExclusion([]int32{2})); !slices.Equal(itemsOf(top), []int32{1}) {
		t.Fatalf("top jazz excluding 2: %v", top)
	}
	if g.TopInGenre("polka", 5, Exclusion{}) != nil {
		t.Fatal("unknown genre returned items")
	}
	if _, err := TrainGenre(m, make([][]string, 6), GenreConfig{}); err == nil {
		t.Fatal("metadata for more items than the matrix accepted")
	}
}

func TestGenreIDF(t *testing.T) {
	m := binaryRows(t, 4, [][]int32{{0, 1, 2, 3}})
	g, err := TrainGenre(m, [][]string{{"rock"}, {"rock"}, {"rock"}, {"dub"}}, GenreConfig{IDF: true})
	if err != nil {
		t.Fatal(err)
	}
	aff := g.Affinity([]int32{0, 3})
	// rock: 1/2·(ln(4/3)+1), dub: 1/2·(ln 4+1): the niche taste ranks first.
	if aff[0].Genre != "dub" || math.Abs(aff[0].Score-0.5*(math.Log(4)+1)) > 1e-12 {
		t.Fatalf("affinity %v", aff)
	}
}

func TestPopularity(t *testing.T) {
	m := binaryRows(t, 4, [][]int32{{1, 2}, {2}, {2, 3}, {1}})
	p, err := TrainPopularity(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := itemsOf(p.Top(3, Exclusion{})); !slices.Equal(got, []int32{2, 1, 3}) {
		t.Fatalf("top %v", got)
	}
	if got := itemsOf(p.Top(10, NewExclusion([]int32{2}))); !slices.Equal(got, []int32{1, 3, 0}) {
		t.Fatalf("top excluding 2: %v", got)
	}
	scores := make([]float32, 4)
	if err := p.ScoreHistory(nil, scores); err != nil || !slices.Equal(scores, []float32{0, 2, 3, 1}) {
		t.Fatalf("scores %v %v", scores, err)
	}
}

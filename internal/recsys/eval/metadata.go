package eval

import (
	"bufio"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LoadMovieLensGenres reads MovieLens movies.csv (movieId,title,genres)
// and returns movieId → genres, split on "|". "(no genres listed)" maps to
// no genres.
func LoadMovieLensGenres(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("movielens genres: %w", err)
	}
	defer f.Close()
	return readMovieLensGenres(f)
}

func readMovieLensGenres(r io.Reader) (map[string][]string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	out := map[string][]string{}
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: movies line %d: %w", ErrFormat, line, err)
		}
		if len(rec) < 3 {
			return nil, fmt.Errorf("%w: movies line %d has %d fields", ErrFormat, line, len(rec))
		}
		if line == 1 && rec[0] == "movieId" {
			continue
		}
		var genres []string
		for _, g := range strings.Split(rec[len(rec)-1], "|") {
			if g = strings.TrimSpace(g); g != "" && g != "(no genres listed)" {
				genres = append(genres, g)
			}
		}
		out[rec[0]] = genres
	}
}

// LoadLastfmTags builds "genres" for HetRec 2011 Last.fm artists from
// social tags: user_taggedartists.dat (userID, artistID, tagID, …) counts
// how many users gave each tag to each artist, tags.dat names the tags,
// and each artist keeps its `top` most-used tags (ties by tag id). Last.fm
// has no genre field; its top tags are genres or styles in practice
// ("rock", "electronic", "80s"). Artists nobody tagged get none.
func LoadLastfmTags(dir string, top int) (map[string][]string, error) {
	if top < 1 {
		return nil, fmt.Errorf("lastfm tags: top %d < 1", top)
	}
	names := map[string]string{}
	if err := eachFields(filepath.Join(dir, "tags.dat"), func(line int, f []string) error {
		if len(f) < 2 {
			return fmt.Errorf("%w: tags.dat line %d has %d fields", ErrFormat, line, len(f))
		}
		names[f[0]] = strings.ToLower(strings.TrimSpace(f[1]))
		return nil
	}); err != nil {
		return nil, err
	}
	counts := map[string]map[string]int{}
	if err := eachFields(filepath.Join(dir, "user_taggedartists.dat"), func(line int, f []string) error {
		if len(f) < 3 {
			return fmt.Errorf("%w: user_taggedartists.dat line %d has %d fields", ErrFormat, line, len(f))
		}
		if counts[f[1]] == nil {
			counts[f[1]] = map[string]int{}
		}
		counts[f[1]][f[2]]++
		return nil
	}); err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(counts))
	type tagCount struct {
		id string
		n  int
	}
	for _, artist := range sortedKeys(counts) {
		var tcs []tagCount
		for id, n := range counts[artist] {
			if names[id] != "" {
				tcs = append(tcs, tagCount{id, n})
			}
		}
		slices.SortFunc(tcs, func(a, b tagCount) int {
			if c := cmp.Compare(b.n, a.n); c != 0 {
				return c
			}
			// Tag ids are decimal: the shorter is the smaller.
			if c := cmp.Compare(len(a.id), len(b.id)); c != 0 {
				return c
			}
			return cmp.Compare(a.id, b.id)
		})
		var tags []string
		for _, tc := range tcs[:min(top, len(tcs))] {
			tags = append(tags, names[tc.id])
		}
		out[artist] = tags
	}
	return out, nil
}

// eachFields calls fn with the tab-separated fields of every data line of a
// HetRec file (header skipped, CRLF tolerated).
func eachFields(path string, fn func(line int, f []string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("lastfm tags: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if line == 1 || strings.TrimSpace(text) == "" {
			continue
		}
		if err := fn(line, strings.Split(text, "\t")); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrFormat, path, err)
	}
	return nil
}

// DefaultLastfmTags is how many top tags per artist LoadLastfmTags keeps
// as "genres" in the tuned evaluation (see TUNING.md).
const DefaultLastfmTags = 10

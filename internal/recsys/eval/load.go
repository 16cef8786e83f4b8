package eval

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cratestream/cratestream/internal/recsys"
)

// Interaction is one distinct (user, item) pair of a dataset.
type Interaction struct {
	User, Item int32
	Weight     float32
	Time       int64
}

// Dataset is an interaction file mapped to dense indices.
type Dataset struct {
	Name         string
	Users        *recsys.Index[string]
	Items        *recsys.Index[string]
	Interactions []Interaction
}

// HeaderMode says whether the first line is a header.
type HeaderMode int

// Header modes; the zero value detects.
const (
	HeaderAuto HeaderMode = iota
	HeaderPresent
	HeaderAbsent
)

// ReadOptions tunes Read; the zero value detects everything.
type ReadOptions struct {
	Header HeaderMode
	// Delimiter overrides detection ("," "\t" "::").
	Delimiter string
}

// ErrFormat is wrapped by every error about malformed input files.
var ErrFormat = errors.New("eval: malformed interaction file")

// Load reads a delimited interaction file (see Read). The dataset's name is
// the file's parent directory (ml-latest-small, hetrec2011-lastfm-2k).
func Load(path string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load interactions: %w", err)
	}
	defer f.Close()
	ds, err := Read(f, ReadOptions{})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	ds.Name = filepath.Base(filepath.Dir(path))
	return ds, nil
}

// Read parses lines of user, item[, weight[, timestamp[, …]]]. The
// delimiter (comma, tab, "::") is detected from the first line and Windows
// line endings are accepted. A header is detected when the first line has a
// non-numeric weight, or a non-numeric user/item where the second line has
// a numeric one. Missing weights are 1. Repeated (user, item) pairs are
// merged: weights summed, latest timestamp kept, because the protocol
// treats a pair as one positive.
func Read(r io.Reader, opts ReadOptions) (*Dataset, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	var lines []string
	var lineNos []int
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if line == "" {
			continue
		}
		lines = append(lines, line)
		lineNos = append(lineNos, n)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	ds := &Dataset{Users: recsys.NewIndex[string](), Items: recsys.NewIndex[string]()}
	if len(lines) == 0 {
		return ds, nil
	}
	delim := opts.Delimiter
	if delim == "" {
		delim = detectDelimiter(lines[0])
	}
	split := func(s string) []string {
		f := strings.Split(s, delim)
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		return f
	}
	start := 0
	switch opts.Header {
	case HeaderPresent:
		start = 1
	case HeaderAuto:
		var second []string
		if len(lines) > 1 {
			second = split(lines[1])
		}
		if isHeader(split(lines[0]), second) {
			start = 1
		}
	}
	pos := map[[2]int32]int{}
	for k := start; k < len(lines); k++ {
		f := split(lines[k])
		if len(f) < 2 || f[0] == "" || f[1] == "" {
			return nil, fmt.Errorf("%w: line %d: want user%sitem[%sweight[%stimestamp]], got %q", ErrFormat, lineNos[k], delim, delim, delim, lines[k])
		}
		it := Interaction{Weight: 1}
		if len(f) > 2 && f[2] != "" {
			w, err := strconv.ParseFloat(f[2], 32)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: weight: %w", ErrFormat, lineNos[k], err)
			}
			it.Weight = float32(w)
		}
		if len(f) > 3 && f[3] != "" {
			ts, err := strconv.ParseInt(f[3], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: timestamp: %w", ErrFormat, lineNos[k], err)
			}
			it.Time = ts
		}
		it.User = ds.Users.Add(f[0])
		it.Item = ds.Items.Add(f[1])
		key := [2]int32{it.User, it.Item}
		if p, dup := pos[key]; dup {
			prev := &ds.Interactions[p]
			prev.Weight += it.Weight
			prev.Time = max(prev.Time, it.Time)
			continue
		}
		pos[key] = len(ds.Interactions)
		ds.Interactions = append(ds.Interactions, it)
	}
	return ds, nil
}

func detectDelimiter(line string) string {
	switch {
	case strings.Contains(line, "::"):
		return "::"
	case strings.Contains(line, "\t"):
		return "\t"
	case strings.Contains(line, ","):
		return ","
	case strings.Contains(line, ";"):
		return ";"
	}
	return " "
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

func isHeader(first, second []string) bool {
	if len(first) > 2 && first[2] != "" && !isNumber(first[2]) {
		return true
	}
	for i := 0; i < 2 && i < len(first) && i < len(second); i++ {
		if !isNumber(first[i]) && isNumber(second[i]) {
			return true
		}
	}
	return false
}

// CSR returns the users × items matrix; binary sets every weight to 1, the
// protocol's view.
func (d *Dataset) CSR(binary bool) (*recsys.CSR, error) {
	return d.subsetCSR(nil, binary)
}

func (d *Dataset) subsetCSR(idx []int, binary bool) (*recsys.CSR, error) {
	var entries []recsys.Entry
	add := func(it Interaction) {
		w := it.Weight
		if binary {
			w = 1
		}
		entries = append(entries, recsys.Entry{Row: it.User, Col: it.Item, Weight: w})
	}
	if idx == nil {
		for _, it := range d.Interactions {
			add(it)
		}
	} else {
		for _, i := range idx {
			add(d.Interactions[i])
		}
	}
	m, err := recsys.NewCSR(d.Users.Len(), d.Items.Len(), entries)
	if err != nil {
		return nil, fmt.Errorf("dataset matrix: %w", err)
	}
	return m, nil
}

// Head returns a dataset limited to the first maxUsers users (in file
// order) and their interactions, re-indexed; tests use it to keep runs
// small while exercising real data.
func (d *Dataset) Head(maxUsers int) *Dataset {
	out := &Dataset{Name: d.Name, Users: recsys.NewIndex[string](), Items: recsys.NewIndex[string]()}
	for _, it := range d.Interactions {
		if int(it.User) >= maxUsers {
			continue
		}
		uid, _ := d.Users.ID(it.User)
		iid, _ := d.Items.ID(it.Item)
		out.Interactions = append(out.Interactions, Interaction{User: out.Users.Add(uid), Item: out.Items.Add(iid),
			Weight: it.Weight, Time: it.Time})
	}
	return out
}

// ItemGenres aligns external-id metadata with the dataset's item indices.
func (d *Dataset) ItemGenres(meta map[string][]string) [][]string {
	out := make([][]string, d.Items.Len())
	for i, id := range d.Items.IDs() {
		out[i] = meta[id]
	}
	return out
}

// sortedKeys returns the map keys sorted, for deterministic iteration.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

package recsys

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Entry is one (row, column, weight) interaction.
type Entry struct {
	Row, Col int32
	Weight   float32
}

// CSR is a compressed sparse row matrix: row r's columns are
// Indices[Indptr[r]:Indptr[r+1]] (sorted ascending, unique) with weights
// Data at the same positions.
type CSR struct {
	Rows, Cols int
	Indptr     []int
	Indices    []int32
	Data       []float32
}

// ErrBadInput is wrapped by every error caused by invalid arguments.
var ErrBadInput = errors.New("recsys: bad input")

// NewCSR builds a rows×cols matrix from entries. Duplicate (row, col)
// entries are summed, because repeated plays or repeated purchases are more
// evidence for the same pair, not separate items.
func NewCSR(rows, cols int, entries []Entry) (*CSR, error) {
	if rows < 0 || cols < 0 {
		return nil, fmt.Errorf("%w: negative shape %d×%d", ErrBadInput, rows, cols)
	}
	for _, e := range entries {
		if e.Row < 0 || int(e.Row) >= rows || e.Col < 0 || int(e.Col) >= cols {
			return nil, fmt.Errorf("%w: entry (%d,%d) outside %d×%d", ErrBadInput, e.Row, e.Col, rows, cols)
		}
	}
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b Entry) int {
		if c := cmp.Compare(a.Row, b.Row); c != 0 {
			return c
		}
		return cmp.Compare(a.Col, b.Col)
	})
	m := &CSR{Rows: rows, Cols: cols, Indptr: make([]int, rows+1)}
	m.Indices = make([]int32, 0, len(sorted))
	m.Data = make([]float32, 0, len(sorted))
	for i := 0; i < len(sorted); {
		e := sorted[i]
		w := e.Weight
		j := i + 1
		for ; j < len(sorted) && sorted[j].Row == e.Row && sorted[j].Col == e.Col; j++ {
			w += sorted[j].Weight
		}
		m.Indices = append(m.Indices, e.Col)
		m.Data = append(m.Data, w)
		m.Indptr[e.Row+1]++
		i = j
	}
	for r := range rows {
		m.Indptr[r+1] += m.Indptr[r]
	}
	return m, nil
}

// Validate checks the structural invariants; models call it so that a
// hand-built CSR cannot make them index out of range.
func (m *CSR) Validate() error {
	if m == nil {
		return fmt.Errorf("%w: nil matrix", ErrBadInput)
	}
	if m.Rows < 0 || m.Cols < 0 || len(m.Indptr) != m.Rows+1 || m.Indptr[0] != 0 {
		return fmt.Errorf("%w: indptr length %d for %d rows", ErrBadInput, len(m.Indptr), m.Rows)
	}
	if len(m.Indices) != len(m.Data) || m.Indptr[m.Rows] != len(m.Indices) {
		return fmt.Errorf("%w: %d indices, %d weights, indptr ends at %d", ErrBadInput, len(m.Indices), len(m.Data), m.Indptr[m.Rows])
	}
	for r := range m.Rows {
		lo, hi := m.Indptr[r], m.Indptr[r+1]
		if hi < lo {
			return fmt.Errorf("%w: indptr decreases at row %d", ErrBadInput, r)
		}
		for k := lo; k < hi; k++ {
			c := m.Indices[k]
			if c < 0 || int(c) >= m.Cols || (k > lo && c <= m.Indices[k-1]) {
				return fmt.Errorf("%w: row %d has unsorted or out-of-range column %d", ErrBadInput, r, c)
			}
		}
	}
	return nil
}

// NNZ is the number of stored entries.
func (m *CSR) NNZ() int { return len(m.Indices) }

// Row returns row r's columns and weights (shared, do not modify).
func (m *CSR) Row(r int) ([]int32, []float32) {
	lo, hi := m.Indptr[r], m.Indptr[r+1]
	return m.Indices[lo:hi], m.Data[lo:hi]
}

// Transpose returns the cols×rows matrix (items × users for a user-item
// matrix); columns stay sorted because rows are visited in order.
func (m *CSR) Transpose() *CSR {
	t := &CSR{Rows: m.Cols, Cols: m.Rows, Indptr: make([]int, m.Cols+1),
		Indices: make([]int32, len(m.Indices)), Data: make([]float32, len(m.Data))}
	for _, c := range m.Indices {
		t.Indptr[c+1]++
	}
	for c := range m.Cols {
		t.Indptr[c+1] += t.Indptr[c]
	}
	next := slices.Clone(t.Indptr[:m.Cols])
	for r := range m.Rows {
		for k := m.Indptr[r]; k < m.Indptr[r+1]; k++ {
			c := m.Indices[k]
			t.Indices[next[c]] = int32(r)
			t.Data[next[c]] = m.Data[k]
			next[c]++
		}
	}
	return t
}

// Binarized returns a copy with every stored weight set to 1, the
// "every interaction is a positive" view the evaluation protocol uses.
func (m *CSR) Binarized() *CSR {
	b := &CSR{Rows: m.Rows, Cols: m.Cols, Indptr: slices.Clone(m.Indptr), Indices: slices.Clone(m.Indices),
		Data: make([]float32, len(m.Data))}
	for i := range b.Data {
		b.Data[i] = 1
	}
	return b
}

// ColCounts returns the number of stored entries per column (item
// popularity for a user-item matrix).
func (m *CSR) ColCounts() []int {
	c := make([]int, m.Cols)
	for _, j := range m.Indices {
		c[j]++
	}
	return c
}

package recsys

import (
	"errors"
	"slices"
	"testing"
)

func TestNewCSR(t *testing.T) {
	m := mustCSR(t, 3, 4, []Entry{
		{Row: 2, Col: 1, Weight: 1}, {Row: 0, Col: 3, Weight: 2}, {Row: 0, Col: 1, Weight: 1}, {Row: 0, Col: 3, Weight: 0.5},
	})
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	wantIndptr := []int{0, 2, 2, 3}
	wantIndices := []int32{1, 3, 1}
	wantData := []float32{1, 2.5, 1}
	if !slices.Equal(m.Indptr, wantIndptr) || !slices.Equal(m.Indices, wantIndices) || !slices.Equal(m.Data, wantData) {
		t.Fatalf("got %v %v %v", m.Indptr, m.Indices, m.Data)
	}
	tr := m.Transpose()
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	if cols, ws := tr.Row(1); !slices.Equal(cols, []int32{0, 2}) || !slices.Equal(ws, []float32{1, 1}) {
		t.Fatalf("transpose row 1 = %v %v", cols, ws)
	}
	if cols, ws := tr.Row(3); !slices.Equal(cols, []int32{0}) || ws[0] != 2.5 {
		t.Fatalf("transpose row 3 = %v %v", cols, ws)
	}
	if got := m.ColCounts(); !slices.Equal(got, []int{0, 2, 0, 1}) {
		t.Fatalf("col counts %v", got)
	}
	if b := m.Binarized(); !slices.Equal(b.Data, []float32{1, 1, 1}) || m.Data[1] != 2.5 {
		t.Fatalf("binarized %v (original %v)", b.Data, m.Data)
	}
}

func TestCSRBadInput(t *testing.T) {
	tests := []struct {
		name string
		make func() error
	}{
		{"negative shape", func() error { _, err := NewCSR(-1, 2, nil); return err }},
		{"row out of range", func() error { _, err := NewCSR(1, 2, []Entry{{Row: 1, Col: 0}}); return err }},
		{"col out of range", func() error { _, err := NewCSR(1, 2, []Entry{{Row: 0, Col: 2}}); return err }},
		{"negative col", func() error { _, err := NewCSR(1, 2, []Entry{{Row: 0, Col: -1}}); return err }},
		{"nil matrix", func() error { var m *CSR; return m.Validate() }},
		{"short indptr", func() error { return (&CSR{Rows: 2, Cols: 2, Indptr: []int{0, 0}}).Validate() }},
		{"unsorted", func() error {
			return (&CSR{Rows: 1, Cols: 3, Indptr: []int{0, 2}, Indices: []int32{2, 1}, Data: []float32{1, 1}}).Validate()
		}},
		{"data mismatch", func() error {
			return (&CSR{Rows: 1, Cols: 3, Indptr: []int{0, 1}, Indices: []int32{1}, Data: nil}).Validate()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.make(); !errors.Is(err, ErrBadInput) {
				t.Fatalf("err = %v, want ErrBadInput", err)
			}
		})
	}
}

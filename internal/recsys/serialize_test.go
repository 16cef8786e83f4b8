package recsys

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestVectorEncoding(t *testing.T) {
	v := []float32{0, -1.5, float32(math.Inf(1)), 3.25e-7}
	b := EncodeVector(v)
	if len(b) != 16 {
		t.Fatalf("%d bytes", len(b))
	}
	got, err := DecodeVector(b)
	if err != nil || !slices.Equal(got, v) {
		t.Fatalf("round trip %v, %v", got, err)
	}
	if _, err := DecodeVector(b[:5]); err == nil {
		t.Fatal("5-byte payload accepted")
	}
}

func TestPublishedFactorsServe(t *testing.T) {
	m := randomCSR(t, 8, 30, 40, 0.15)
	model, err := TrainALS(context.Background(), m, smallALSConfig())
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, model.Items)
	for i := range ids {
		ids[i] = 1_000_000 + int64(i)
	}
	recs, err := model.ItemFactorRecords(ids)
	if err != nil {
		t.Fatal(err)
	}
	var flat []float32
	for _, r := range recs {
		dec, err := DecodeVector(EncodeVector(r.Vector))
		if err != nil {
			t.Fatal(err)
		}
		flat = append(flat, dec...)
	}
	served, err := NewALSModelFromItems(flat, model.Factors, model.Regularization, model.Alpha)
	if err != nil {
		t.Fatal(err)
	}
	history, _ := m.Row(3)
	a, err := model.Recommend(history, nil, 10, NewExclusion(history))
	if err != nil {
		t.Fatal(err)
	}
	b, err := served.Recommend(history, nil, 10, NewExclusion(history))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(itemsOf(a), itemsOf(b)) {
		t.Fatalf("served model recommends %v, trained %v", b, a)
	}
	if _, err := model.ItemFactorRecords(ids[1:]); err == nil {
		t.Fatal("short id list accepted")
	}
	man := NewALSManifest("2026-11-23.1", smallALSConfig(), m, time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), 1500*time.Millisecond)
	man.Metrics = map[string]float64{"p_at_10": 0.3}
	js, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"model":"als"`, `"version":"2026-11-23.1"`, `"factors":8`, `"train_seconds":1.5`, `"p_at_10":0.3`, `"trained_at":"2026-11-23T12:00:00Z"`} {
		if !strings.Contains(string(js), want) {
			t.Fatalf("manifest %s lacks %s", js, want)
		}
	}
}

func TestIndex(t *testing.T) {
	x := NewIndex[int64]()
	if x.Add(42) != 0 || x.Add(7) != 1 || x.Add(42) != 0 || x.Len() != 2 {
		t.Fatal("add")
	}
	if p, ok := x.Lookup(7); !ok || p != 1 {
		t.Fatal("lookup")
	}
	if id, ok := x.ID(1); !ok || id != 7 {
		t.Fatal("id")
	}
	if _, ok := x.ID(5); ok {
		t.Fatal("out-of-range id")
	}
}

func TestGenerateImplicit(t *testing.T) {
	a, err := GenerateImplicit(5, 100, 50, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if a.NNZ() != 1000 || a.Validate() != nil {
		t.Fatalf("nnz %d", a.NNZ())
	}
	b, _ := GenerateImplicit(5, 100, 50, 1000)
	if !slices.Equal(a.Indices, b.Indices) || !slices.Equal(a.Indptr, b.Indptr) {
		t.Fatal("not deterministic")
	}
	counts := a.ColCounts()
	if slices.Max(counts) < 4*max(slices.Min(counts), 1) {
		t.Fatalf("popularity not skewed: %v", counts)
	}
	for _, bad := range [][3]int{{0, 5, 1}, {5, 0, 1}, {5, 5, -1}, {2, 2, 3}} {
		if _, err := GenerateImplicit(1, bad[0], bad[1], bad[2]); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}

package recsys

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// FactorRecord is one item's factor vector under its external id, the
// unit published to Kafka so that serving nodes can fold users in without
// retraining.
type FactorRecord struct {
	ID     int64     `json:"id"`
	Vector []float32 `json:"vector"`
}

// ItemFactorRecords pairs each item's factors with its external id
// (ids[i] is item i's id). Vectors are copies, safe to hand to a producer.
func (m *ALSModel) ItemFactorRecords(ids []int64) ([]FactorRecord, error) {
	if len(ids) != m.Items {
		return nil, fmt.Errorf("%w: %d ids for %d items", ErrBadInput, len(ids), m.Items)
	}
	out := make([]FactorRecord, m.Items)
	for i, id := range ids {
		v := make([]float32, m.Factors)
		copy(v, m.ItemVector(i))
		out[i] = FactorRecord{ID: id, Vector: v}
	}
	return out, nil
}

// EncodeVector encodes a vector as little-endian IEEE-754 float32s, 4
// bytes per value: compact, and readable from any language.
func EncodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// DecodeVector reverses EncodeVector.
func DecodeVector(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%w: vector payload of %d bytes is not a multiple of 4", ErrBadInput, len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

// NewALSModelFromItems rebuilds a serving-only model (fold-in, scoring,
// similar items) from published item factors: row-major items×factors.
// Every item is treated as known.
func NewALSModelFromItems(itemFactors []float32, factors int, regularization, alpha float64) (*ALSModel, error) {
	if factors < 1 || len(itemFactors)%factors != 0 {
		return nil, fmt.Errorf("%w: %d values is not a multiple of %d factors", ErrBadInput, len(itemFactors), factors)
	}
	if regularization < 0 || alpha < 0 {
		return nil, fmt.Errorf("%w: regularization %v, alpha %v", ErrBadInput, regularization, alpha)
	}
	items := len(itemFactors) / factors
	m := &ALSModel{Factors: factors, Items: items, Regularization: regularization, Alpha: alpha,
		ItemFactors: append([]float32(nil), itemFactors...), ItemCounts: make([]int, items)}
	for i := range m.ItemCounts {
		m.ItemCounts[i] = 1
	}
	g := gram64(m.ItemFactors, items, factors, 0)
	addDiag(g, factors, regularization)
	m.itemGram = g
	return m, nil
}

// Manifest describes a trained model: what produced it and how good it
// was, stored next to the factors so a serving node can check what it
// loads.
type Manifest struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	// Params is the model's config struct (ALSConfig, EASEConfig…).
	Params       any                `json:"params"`
	Metrics      map[string]float64 `json:"metrics,omitempty"`
	Users        int                `json:"users"`
	Items        int                `json:"items"`
	Interactions int                `json:"interactions"`
	Factors      int                `json:"factors,omitempty"`
	TrainedAt    time.Time          `json:"trained_at"`
	TrainSeconds float64            `json:"train_seconds"`
}

// NewALSManifest fills a manifest for an ALS model trained on ui.
func NewALSManifest(version string, cfg ALSConfig, ui *CSR, trainedAt time.Time, took time.Duration) Manifest {
	return Manifest{Model: "als", Version: version, Params: cfg, Users: ui.Rows, Items: ui.Cols,
		Interactions: ui.NNZ(), Factors: cfg.Factors, TrainedAt: trainedAt.UTC(), TrainSeconds: took.Seconds()}
}

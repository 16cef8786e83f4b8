package eval

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/cratestream/cratestream/internal/recsys"
)

// Split is one random train/test partition of a dataset's interactions.
type Split struct {
	// Train is the binary users × items training matrix.
	Train *recsys.CSR
	// Test holds each user's held-out items, sorted (nil if none).
	Test [][]int32
}

// NewSplit shuffles the interactions with seed and puts the first
// round(trainFraction·n) in training: one global split, so a user's share
// of test items varies, exactly as the protocol prescribes.
func NewSplit(d *Dataset, seed uint64, trainFraction float64) (*Split, error) {
	if !(trainFraction > 0 && trainFraction < 1) {
		return nil, fmt.Errorf("eval: train fraction %v outside (0,1)", trainFraction)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed5eed))
	perm := rng.Perm(len(d.Interactions))
	cut := int(trainFraction*float64(len(perm)) + 0.5)
	train, err := d.subsetCSR(perm[:cut], true)
	if err != nil {
		return nil, err
	}
	s := &Split{Train: train, Test: make([][]int32, d.Users.Len())}
	for _, i := range perm[cut:] {
		it := d.Interactions[i]
		s.Test[it.User] = append(s.Test[it.User], it.Item)
	}
	for _, t := range s.Test {
		slices.Sort(t)
	}
	return s, nil
}

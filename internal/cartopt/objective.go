package cartopt

import (
	"math/big"
	"math/bits"
)

// Objective names.
const (
	ObjectiveSeed = "seed" // quantity × Σ score (= quantity² × mean score)
	ObjectiveSum  = "sum"  // Σ score
)

// objKind is the objective in the solver.
type objKind uint8

const (
	objSeed objKind = iota
	objSum
)

// value is what the objective of a cart depends on: its quantity and the
// sum of its integer scores. Objectives are compared exactly: q × W for
// seed in 128-bit integers, W for sum.
type value struct {
	q int64
	w int64
}

// cmp compares the objectives of a and b: -1, 0 or +1.
func (k objKind) cmp(a, b value) int {
	if k == objSum {
		return cmpInt(a.w, b.w)
	}
	ah, al := mul128(a.q, a.w)
	bh, bl := mul128(b.q, b.w)
	return cmp128(ah, al, bh, bl)
}

// need returns the smallest score sum with which a cart of quantity q
// reaches the objective of t (need) and exceeds it (strict), clamped to
// [lo, hi]: clamping keeps the search's scaled comparisons in range, and a
// sum beyond the clamp is unreachable anyway.
func (k objKind) need(t value, q int64, lo, hi int64) (need, strict int64) {
	clamp := func(x *big.Int) int64 {
		switch {
		case x.Cmp(big.NewInt(lo)) < 0:
			return lo
		case x.Cmp(big.NewInt(hi)) > 0:
			return hi
		}
		return x.Int64()
	}
	if k == objSum {
		return min(max(t.w, lo), hi), min(max(t.w, lo-1), hi-1) + 1
	}
	// need = ceil(t.q·t.w / q), strict = floor(t.q·t.w / q) + 1, q > 0.
	x := new(big.Int).Mul(big.NewInt(t.q), big.NewInt(t.w))
	fl, m := new(big.Int).DivMod(x, big.NewInt(q), new(big.Int)) // Euclidean: floor for q > 0
	st := new(big.Int).Add(fl, big.NewInt(1))
	if m.Sign() != 0 {
		return clamp(st), clamp(st)
	}
	return clamp(fl), clamp(st)
}

// rat returns the exact objective as a rational in score units.
func (k objKind) rat(v value, scoreDigits int) *big.Rat {
	x := new(big.Rat).SetInt64(v.w)
	if k == objSeed {
		x.Mul(x, new(big.Rat).SetInt64(v.q))
	}
	return x.Quo(x, pow10Rat(scoreDigits))
}

// mul128 returns a × b as a two's complement 128-bit integer.
func mul128(a, b int64) (hi int64, lo uint64) {
	h, l := bits.Mul64(uint64(uabs64u(a)), uint64(uabs64u(b)))
	if (a < 0) != (b < 0) && (h|l) != 0 {
		l = ^l + 1
		h = ^h
		if l == 0 {
			h++
		}
	}
	return int64(h), l
}

func uabs64u(v int64) uint64 {
	if v < 0 {
		return uint64(-v) // also right for math.MinInt64
	}
	return uint64(v)
}

func cmp128(ah int64, al uint64, bh int64, bl uint64) int {
	switch {
	case ah < bh:
		return -1
	case ah > bh:
		return 1
	case al < bl:
		return -1
	case al > bl:
		return 1
	}
	return 0
}

package cartopt

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
)

// ErrUnknownCurrency reports a currency without an exchange rate.
var ErrUnknownCurrency = errors.New("unknown currency")

// Converter converts amounts into integer cents (hundredths) of one target
// currency: amount / rate[from] × rate[to], exact, rounded half up to
// hundredths — for every currency, JPY included, as FORMAT.md specifies
// (this is not money.Convert, which rounds to the target's minor unit).
// It is immutable and safe for concurrent use.
type Converter struct {
	to      string
	factors map[string]convFactor
}

// convFactor is rate[to] / rate[from] × 100.
type convFactor struct {
	exact    *big.Rat
	num, den uint64 // the same, when both fit in 64 bits (fast path)
	fast     bool
}

// NewConverter returns a converter into currency to, with rates in units of
// each currency per 1 EUR.
func NewConverter(rates map[string]Decimal, to string) (*Converter, error) {
	toRate, ok := rates[to]
	if !ok {
		return nil, fmt.Errorf("currency %q: %w (no rate)", to, ErrUnknownCurrency)
	}
	if toRate.Sign() <= 0 {
		return nil, fmt.Errorf("rate of %s: %s is not positive", to, toRate)
	}
	c := &Converter{to: to, factors: make(map[string]convFactor, len(rates))}
	for cur, r := range rates {
		if r.Sign() <= 0 {
			return nil, fmt.Errorf("rate of %s: %s is not positive", cur, r)
		}
		f := toRate.Rat()
		f.Quo(f, r.Rat())
		f.Mul(f, big.NewRat(100, 1))
		cf := convFactor{exact: f}
		if f.Num().IsUint64() && f.Denom().IsUint64() {
			cf.num, cf.den, cf.fast = f.Num().Uint64(), f.Denom().Uint64(), true
		}
		c.factors[cur] = cf
	}
	return c, nil
}

// Currency returns the target currency.
func (c *Converter) Currency() string { return c.to }

// Knows reports whether currency has a rate.
func (c *Converter) Knows(currency string) bool {
	_, ok := c.factors[currency]
	return ok
}

// Cents converts amount, in units of currency from, into cents of the
// target currency. Errors wrap ErrUnknownCurrency or ErrOutOfRange.
func (c *Converter) Cents(amount Decimal, from string) (int64, error) {
	f, ok := c.factors[from]
	if !ok {
		return 0, fmt.Errorf("currency %q: %w", from, ErrUnknownCurrency)
	}
	return f.cents(amount, from)
}

// cents converts amount with the factor of currency from.
func (f *convFactor) cents(amount Decimal, from string) (int64, error) {
	if f.fast && amount.rat == nil {
		if v, ok := fastCents(amount.coef, int(amount.exp), f.num, f.den); ok {
			return v, nil
		}
	}
	x := amount.Rat()
	x.Mul(x, f.exact)
	v := roundHalfUpRat(x)
	if !v.IsInt64() {
		return 0, fmt.Errorf("%s %s: %w", amount, from, ErrOutOfRange)
	}
	return v.Int64(), nil
}

// fastCents computes round_half_up(coef × 10^exp × num / den) in 128-bit
// integer arithmetic; ok is false when an intermediate does not fit (the
// caller then takes the big.Rat path).
func fastCents(coef int64, exp int, num, den uint64) (int64, bool) {
	m := uabs(coef)
	if exp > 0 {
		v, ok := mulPow10(int64(m), exp)
		if !ok {
			return 0, false
		}
		m = uint64(v)
	} else if exp < 0 {
		if -exp > 18 {
			return 0, false
		}
		hi, lo := bits.Mul64(den, uint64(pow10s[-exp]))
		if hi != 0 {
			return 0, false
		}
		den = lo
	}
	hi, lo := bits.Mul64(m, num)
	if hi >= den {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, den)
	if r >= den-r {
		q++
	}
	if q > math.MaxInt64 {
		return 0, false
	}
	if coef < 0 {
		return -int64(q), true
	}
	return int64(q), true
}

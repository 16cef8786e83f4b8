package cartopt

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// ErrOutOfRange reports a number too large (or too precise) for the exact
// integer arithmetic of the optimizer.
var ErrOutOfRange = errors.New("out of range")

// maxDecimalExp bounds the decimal exponent of parsed numbers: without it
// "1e999999999" would make big.Rat build a gigantic power of ten.
const maxDecimalExp = 1000

// Decimal is an exact decimal number. Numbers of up to 18 significant digits
// (every price, rate and score in practice) are an int64 coefficient times a
// power of ten, so that parsing 100k listings stays cheap; anything larger is
// held as a big.Rat. The zero value is 0.
type Decimal struct {
	coef int64    // value = coef × 10^exp when rat is nil
	exp  int32    // normalized: coef has no trailing zero digit
	rat  *big.Rat // the value, for numbers beyond int64; never mutated once set
}

// ParseDecimal parses a number in JSON syntax ("17.58", "-3", "1.5e2") into
// an exact Decimal. Surrounding spaces are ignored.
func ParseDecimal(s string) (Decimal, error) {
	return parseNumberText(strings.TrimSpace(s))
}

// MustDecimal is ParseDecimal for constants in Go code and tests; it panics
// on malformed text, so never pass it input.
func MustDecimal(s string) Decimal {
	d, err := ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

// DecimalFromInt returns v × 10^-scale: DecimalFromInt(1758, 2) is 17.58.
// Minor units of a currency convert with scale = its exponent
// (money.Exponent).
func DecimalFromInt(v int64, scale int) Decimal {
	if scale > maxDecimalExp || scale < -maxDecimalExp {
		r := new(big.Rat).SetInt64(v)
		return Decimal{rat: r.Mul(r, pow10Rat(-scale))}
	}
	return normalize(v, int32(-scale))
}

// DecimalFromFloat returns the shortest decimal that parses back to f (the
// way strconv prints it): 0.1 is exactly 0.1, not the binary fraction
// nearest to it. This is how float scores enter exact arithmetic.
func DecimalFromFloat(f float64) (Decimal, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Decimal{}, fmt.Errorf("%v is not a finite number", f)
	}
	return parseNumberText(strconv.FormatFloat(f, 'g', -1, 64))
}

func normalize(coef int64, exp int32) Decimal {
	if coef == 0 {
		return Decimal{}
	}
	for coef%10 == 0 {
		coef /= 10
		exp++
	}
	return Decimal{coef: coef, exp: exp}
}

// parseNumberText parses the JSON number grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? exactly.
func parseNumberText(t string) (Decimal, error) { return parseNumber(t) }

// parseNumber is parseNumberText for text or bytes (the reader's views).
func parseNumber[T string | []byte](t T) (Decimal, error) {
	bad := func() (Decimal, error) { return Decimal{}, fmt.Errorf("%q is not a number", string(t)) }
	i, n := 0, len(t)
	neg := false
	if i < n && t[i] == '-' {
		neg = true
		i++
	}
	if i >= n {
		return bad()
	}
	intStart := i
	switch {
	case t[i] == '0':
		i++
	case t[i] >= '1' && t[i] <= '9':
		for i < n && t[i] >= '0' && t[i] <= '9' {
			i++
		}
	default:
		return bad()
	}
	intEnd := i
	fracStart, fracEnd := i, i
	if i < n && t[i] == '.' {
		i++
		fracStart = i
		for i < n && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		if i == fracStart {
			return bad()
		}
		fracEnd = i
	}
	exp := 0
	if i < n && (t[i] == 'e' || t[i] == 'E') {
		i++
		eneg := false
		if i < n && (t[i] == '+' || t[i] == '-') {
			eneg = t[i] == '-'
			i++
		}
		start := i
		for i < n && t[i] >= '0' && t[i] <= '9' {
			if exp <= maxDecimalExp*10 {
				exp = exp*10 + int(t[i]-'0')
			}
			i++
		}
		if i == start {
			return bad()
		}
		if eneg {
			exp = -exp
		}
	}
	if i != n {
		return bad()
	}
	exp -= fracEnd - fracStart
	if exp > maxDecimalExp || exp < -maxDecimalExp-n {
		return Decimal{}, fmt.Errorf("number %q: exponent %w", string(t), ErrOutOfRange)
	}
	// Accumulate the significant digits; more than 18 go the big.Rat way.
	var coef int64
	digits := 0
	for j := intStart; j < fracEnd; j++ {
		if j == intEnd {
			j = fracStart
			if j >= fracEnd {
				break
			}
		}
		d := int64(t[j] - '0')
		if digits == 0 && d == 0 {
			continue
		}
		digits++
		if digits > 18 {
			r, ok := new(big.Rat).SetString(string(t))
			if !ok {
				return bad()
			}
			return Decimal{rat: r}, nil
		}
		coef = coef*10 + d
	}
	if neg {
		coef = -coef
	}
	return normalize(coef, int32(exp)), nil
}

func pow10Rat(n int) *big.Rat {
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(n))), nil)
	if n < 0 {
		return new(big.Rat).SetFrac(big.NewInt(1), p)
	}
	return new(big.Rat).SetInt(p)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// Rat returns the value as a new big.Rat.
func (d Decimal) Rat() *big.Rat {
	if d.rat != nil {
		return new(big.Rat).Set(d.rat)
	}
	r := new(big.Rat).SetInt64(d.coef)
	if d.exp != 0 {
		r.Mul(r, pow10Rat(int(d.exp)))
	}
	return r
}

// Sign returns -1, 0 or +1.
func (d Decimal) Sign() int {
	if d.rat != nil {
		return d.rat.Sign()
	}
	switch {
	case d.coef < 0:
		return -1
	case d.coef > 0:
		return 1
	}
	return 0
}

// Cmp compares d and o exactly: -1, 0 or +1.
func (d Decimal) Cmp(o Decimal) int {
	if d.rat == nil && o.rat == nil {
		if d.exp == o.exp || d.coef == 0 || o.coef == 0 {
			return cmpInt(d.coef, o.coef)
		}
		// Scale the one with the larger exponent down to the other's.
		if d.exp > o.exp {
			if a, ok := mulPow10(d.coef, int(d.exp-o.exp)); ok {
				return cmpInt(a, o.coef)
			}
		} else if b, ok := mulPow10(o.coef, int(o.exp-d.exp)); ok {
			return cmpInt(d.coef, b)
		}
	}
	return d.Rat().Cmp(o.Rat())
}

// String formats d in plain decimal notation ("17.58", "-0.005").
func (d Decimal) String() string {
	if d.rat != nil {
		return d.rat.FloatString(d.fracDigits())
	}
	s := strconv.FormatInt(d.coef, 10)
	if d.exp >= 0 {
		return s + strings.Repeat("0", int(d.exp))
	}
	neg := d.coef < 0
	if neg {
		s = s[1:]
	}
	frac := int(-d.exp)
	if len(s) <= frac {
		s = strings.Repeat("0", frac-len(s)+1) + s
	}
	s = s[:len(s)-frac] + "." + s[len(s)-frac:]
	if neg {
		s = "-" + s
	}
	return s
}

// fracDigits is the number of digits after the decimal point d needs to be
// written exactly.
func (d Decimal) fracDigits() int {
	if d.rat == nil {
		return max(0, int(-d.exp))
	}
	den := new(big.Int).Set(d.rat.Denom())
	twos, fives := 0, 0
	r := new(big.Int)
	for {
		q, m := new(big.Int).QuoRem(den, big.NewInt(2), r)
		if m.Sign() != 0 {
			break
		}
		den, twos = q, twos+1
	}
	for {
		q, m := new(big.Int).QuoRem(den, big.NewInt(5), r)
		if m.Sign() != 0 {
			break
		}
		den, fives = q, fives+1
	}
	return max(twos, fives)
}

// scaled returns d × 10^digits as an int64, rounded half away from zero
// ("half up") when d has more digits, or floored when floor is set.
func (d Decimal) scaled(digits int, floor bool) (int64, error) {
	if d.rat == nil {
		e := int(d.exp) + digits
		if e >= 0 {
			if v, ok := mulPow10(d.coef, e); ok {
				return v, nil
			}
			return 0, fmt.Errorf("%s: %w", d, ErrOutOfRange)
		}
		if -e <= 18 {
			p := pow10s[-e]
			q, r := d.coef/p, d.coef%p
			switch {
			case floor:
				if r < 0 {
					q--
				}
			case r >= 0 && r >= p-r:
				q++
			case r < 0 && -r >= p+r:
				q--
			}
			return q, nil
		}
	}
	x := d.Rat()
	x.Mul(x, pow10Rat(digits))
	var v *big.Int
	if floor {
		v = floorRat(x)
	} else {
		v = roundHalfUpRat(x)
	}
	if !v.IsInt64() {
		return 0, fmt.Errorf("%s: %w", d, ErrOutOfRange)
	}
	return v.Int64(), nil
}

var pow10s = [19]int64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

// mulPow10 returns v × 10^n if it fits in an int64.
func mulPow10(v int64, n int) (int64, bool) {
	if v == 0 {
		return 0, true
	}
	if n < 0 || n > 18 {
		return 0, false
	}
	hi, lo := bits.Mul64(uabs(v), uint64(pow10s[n]))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	if v < 0 {
		return -int64(lo), true
	}
	return int64(lo), true
}

func uabs(v int64) uint64 {
	if v < 0 {
		return uint64(-v)
	}
	return uint64(v)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// roundHalfUpRat rounds to the nearest integer, halves away from zero.
func roundHalfUpRat(x *big.Rat) *big.Int {
	num := new(big.Int).Abs(x.Num())
	den := x.Denom()
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if r.Lsh(r, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if x.Sign() < 0 {
		q.Neg(q)
	}
	return q
}

// floorRat rounds toward minus infinity.
func floorRat(x *big.Rat) *big.Int {
	q, m := new(big.Int).DivMod(x.Num(), x.Denom(), new(big.Int))
	_ = m // DivMod is Euclidean: with a positive denominator q is the floor
	return q
}

package clickhouse

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strings"

	"github.com/cratestream/cratestream/internal/money"
)

// fxRate converts minor units of one currency into euro cents exactly:
// eur_minor = round_half_up(amount_minor * mul / div). For a rate of
// m / 10^s units per EUR and a currency with e minor digits,
// mul = 10^s * 10^max(0, 2-e) and div = m * 10^max(0, e-2). The uint64
// pair is the fast path (a 128-bit product and division); the big.Int pair
// serves rates whose digits do not fit it.
type fxRate struct {
	text     string
	mul, div uint64
	fast     bool
	bigMul   *big.Int
	bigDiv   *big.Int
}

// maxRateDigits bounds the rate text: the ECB publishes at most 6
// significant digits, and a longer string is a malformed record.
const maxRateDigits = 30

// parseRate parses units-per-EUR decimal text ("1.0587", "157.2") for
// currency. Signs, exponents and fractions are rejected: the ECB text is
// plain positive decimal.
func parseRate(currency, text string) (fxRate, error) {
	t := strings.TrimSpace(text)
	intPart, frac, hasDot := strings.Cut(t, ".")
	if intPart == "" || (hasDot && frac == "") || len(intPart)+len(frac) > maxRateDigits {
		return fxRate{}, fmt.Errorf("rate %q for %s is not a plain decimal", text, currency)
	}
	digits := intPart + frac
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return fxRate{}, fmt.Errorf("rate %q for %s is not a plain decimal", text, currency)
		}
	}
	m, _ := new(big.Int).SetString(digits, 10)
	if m.Sign() <= 0 {
		return fxRate{}, fmt.Errorf("rate %q for %s is not positive", text, currency)
	}
	e := money.Exponent(currency)
	mul := pow10(len(frac) + max(0, 2-e))
	div := new(big.Int).Mul(m, pow10(max(0, e-2)))
	r := fxRate{text: t, bigMul: mul, bigDiv: div}
	if mul.IsUint64() && div.IsUint64() {
		r.mul, r.div, r.fast = mul.Uint64(), div.Uint64(), true
	}
	return r, nil
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

var errFxOverflow = errors.New("converted amount overflows int64")

// toEUR converts a non-negative amount in minor units, rounding half up.
func (r fxRate) toEUR(amount int64) (int64, error) {
	if amount < 0 {
		return 0, fmt.Errorf("negative amount %d", amount)
	}
	if r.fast {
		hi, lo := bits.Mul64(uint64(amount), r.mul)
		if hi < r.div {
			q, rem := bits.Div64(hi, lo, r.div)
			if rem >= r.div-rem { // 2*rem >= div without overflowing
				q++
			}
			if q > math.MaxInt64 {
				return 0, errFxOverflow
			}
			return int64(q), nil
		}
	}
	num := new(big.Int).Mul(big.NewInt(amount), r.bigMul)
	q, rem := new(big.Int).QuoRem(num, r.bigDiv, new(big.Int))
	if rem.Lsh(rem, 1).Cmp(r.bigDiv) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, errFxOverflow
	}
	return q.Int64(), nil
}

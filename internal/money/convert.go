package money

import (
	"fmt"
	"math/big"
	"strings"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// ParseRate parses an exchange rate as exact decimal text ("1.0587":
// units of a currency per 1 EUR).
func ParseRate(text string) (*big.Rat, error) {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(text))
	if !ok || r.Sign() <= 0 {
		return nil, fmt.Errorf("exchange rate %q is not a positive decimal", text)
	}
	return r, nil
}

// Convert converts minor units of one currency into minor units of
// another, through rates expressed as units per EUR (the ECB convention):
// amount / fromRate * toRate, in exact rational arithmetic, rounded half up
// (away from zero) to the target currency's minor unit.
func Convert(minor int64, from string, fromRate *big.Rat, to string, toRate *big.Rat) int64 {
	// major(from) = minor / 10^exp(from); result minor = major(from) /
	// fromRate * toRate * 10^exp(to)
	x := new(big.Rat).SetInt64(minor)
	x.Mul(x, toRate)
	x.Quo(x, fromRate)
	x.Mul(x, pow10(Exponent(to)))
	x.Quo(x, pow10(Exponent(from)))
	return roundHalfUp(x)
}

// ToEUR converts m to euro cents with its currency's rate (units per EUR).
func ToEUR(m *pb.Money, unitsPerEUR *big.Rat) int64 {
	return Convert(m.AmountMinor, m.Currency, unitsPerEUR, "EUR", big.NewRat(1, 1))
}

func pow10(n int) *big.Rat {
	return new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil))
}

// roundHalfUp rounds to the nearest integer, halves away from zero.
func roundHalfUp(x *big.Rat) int64 {
	num, den := new(big.Int).Set(x.Num()), x.Denom()
	neg := num.Sign() < 0
	num.Abs(num)
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if new(big.Int).Mul(r, big.NewInt(2)).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	return q.Int64()
}

// Package money handles amounts as integer minor units of ISO 4217
// currencies: exact parsing of decimal text, formatting, and the currency
// symbols Discogs prints. There are no floats anywhere money is added or
// compared.
package money

import (
	"fmt"
	"strconv"
	"strings"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// exponents are ISO 4217 minor-unit exponents of the currencies that differ
// from 2 and that Discogs or the ECB use.
var exponents = map[string]int{
	"JPY": 0, "KRW": 0, "ISK": 0, "HUF": 2, "CLP": 0, "VND": 0, "IDR": 2,
	"BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}

// known are the currencies we accept: the ECB reference set plus the
// Discogs marketplace currencies.
var known = map[string]bool{
	"EUR": true, "USD": true, "JPY": true, "BGN": true, "CZK": true, "DKK": true, "GBP": true, "HUF": true,
	"PLN": true, "RON": true, "SEK": true, "CHF": true, "ISK": true, "NOK": true, "HRK": true, "RUB": true,
	"TRY": true, "AUD": true, "BRL": true, "CAD": true, "CNY": true, "HKD": true, "IDR": true, "ILS": true,
	"INR": true, "KRW": true, "MXN": true, "MYR": true, "NZD": true, "PHP": true, "SGD": true, "THB": true,
	"ZAR": true, "CLP": true, "ARS": true, "COP": true, "TWD": true, "CYP": true, "LTL": true, "LVL": true,
	"EEK": true, "SKK": true, "MTL": true, "SIT": true,
}

// Known reports whether code is a currency we handle.
func Known(code string) bool { return known[code] }

// Exponent is the number of minor-unit digits of a currency (2 for EUR,
// 0 for JPY).
func Exponent(code string) int {
	if e, ok := exponents[code]; ok {
		return e
	}
	return 2
}

// ParseAmount parses decimal text ("9,000.00", "1500", "-3.5") into minor
// units of currency, exactly. Thousands separators (",") are accepted;
// digits beyond the currency's precision are an error unless they are zeros.
func ParseAmount(text, currency string) (int64, error) {
	s := strings.TrimSpace(text)
	neg := false
	if strings.HasPrefix(s, "-") {
		neg, s = true, s[1:]
	}
	s = strings.ReplaceAll(s, ",", "")
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" && frac == "" {
		return 0, fmt.Errorf("amount %q: no digits", text)
	}
	exp := Exponent(currency)
	if len(frac) > exp {
		if strings.Trim(frac[exp:], "0") != "" {
			return 0, fmt.Errorf("amount %q has more than %d decimals for %s", text, exp, currency)
		}
		frac = frac[:exp]
	}
	frac += strings.Repeat("0", exp-len(frac))
	digits := intPart + frac
	if digits == "" {
		digits = "0"
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("amount %q is not a decimal number", text)
		}
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", text, err)
	}
	if neg {
		v = -v
	}
	return v, nil
}

// New returns the money of decimal text in currency.
func New(text, currency string) (*pb.Money, error) {
	if !known[currency] {
		return nil, fmt.Errorf("unknown currency %q", currency)
	}
	v, err := ParseAmount(text, currency)
	if err != nil {
		return nil, err
	}
	return &pb.Money{AmountMinor: v, Currency: currency}, nil
}

// Decimal formats minor units as decimal text ("9000.00", "1500").
func Decimal(minor int64, currency string) string {
	exp := Exponent(currency)
	neg := minor < 0
	if neg {
		minor = -minor
	}
	s := strconv.FormatInt(minor, 10)
	if exp > 0 {
		if len(s) <= exp {
			s = strings.Repeat("0", exp-len(s)+1) + s
		}
		s = s[:len(s)-exp] + "." + s[len(s)-exp:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// String formats m as "12.50 EUR".
func String(m *pb.Money) string {
	if m == nil {
		return "-"
	}
	return Decimal(m.AmountMinor, m.Currency) + " " + m.Currency
}

// symbols maps the prefixes Discogs prints before an amount to currencies,
// longest first so that "CA$" wins over "$".
var symbols = []struct{ prefix, code string }{
	{"CA$", "CAD"}, {"A$", "AUD"}, {"NZ$", "NZD"}, {"MX$", "MXN"}, {"R$", "BRL"}, {"HK$", "HKD"},
	{"SG$", "SGD"}, {"NT$", "TWD"}, {"US$", "USD"}, {"$", "USD"}, {"€", "EUR"}, {"£", "GBP"},
	{"¥", "JPY"}, {"₩", "KRW"}, {"₹", "INR"}, {"₪", "ILS"}, {"zł", "PLN"}, {"ZAR", "ZAR"}, {"R", "ZAR"},
}

// ParsePrice parses a price as Discogs prints it: "$9,000.00", "€11.00",
// "CA$15.00", "¥1,500", "CHF 116.30", "SEK250.00", "12.00 EUR".
func ParsePrice(text string) (*pb.Money, error) {
	s := strings.TrimSpace(strings.ReplaceAll(text, "\u00a0", " "))
	s = strings.TrimPrefix(s, "+")
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty price")
	}
	// An ISO code before or after the number.
	if len(s) > 3 && isCode(s[:3]) {
		return New(strings.TrimSpace(s[3:]), s[:3])
	}
	if len(s) > 3 && isCode(s[len(s)-3:]) {
		return New(strings.TrimSpace(s[:len(s)-3]), s[len(s)-3:])
	}
	for _, sym := range symbols {
		if strings.HasPrefix(s, sym.prefix) {
			rest := strings.TrimSpace(s[len(sym.prefix):])
			if rest == "" || (rest[0] < '0' || rest[0] > '9') && rest[0] != '-' {
				continue
			}
			return New(rest, sym.code)
		}
	}
	return nil, fmt.Errorf("price %q: unknown currency format", text)
}

func isCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return known[s]
}

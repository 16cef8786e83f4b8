package clickhouse

import (
	"math"
	"testing"
)

func TestFxToEUR(t *testing.T) {
	tests := []struct {
		name     string
		currency string
		rate     string
		amount   int64
		want     int64
	}{
		// 10.00 USD / 1.0587 = 9.44554... EUR
		{"usd", "USD", "1.0587", 1000, 945},
		// 1,500 JPY (no minor digits) / 157.2 = 9.5419... EUR
		{"jpy exponent 0", "JPY", "157.2", 1500, 954},
		// 1.000 KWD (3 minor digits) / 0.331 = 3.0211... EUR
		{"kwd exponent 3", "KWD", "0.331", 1000, 302},
		{"rate one", "EUR", "1", 1234, 1234},
		// 0.05 / 2 = 0.025 EUR: exactly half a cent rounds up
		{"half rounds up", "XXX", "2", 5, 3},
		// 0.01 / 2 = 0.005 EUR: half a cent again, up to 0.01
		{"half rounds up small", "XXX", "2", 1, 1},
		// 0.07 / 4 = 0.0175 -> 0.02; 0.05 / 4 = 0.0125 -> 0.01
		{"above half", "XXX", "4", 7, 2},
		{"below half", "XXX", "4", 5, 1},
		{"zero", "USD", "1.0587", 0, 0},
		{"integer rate text", "SEK", "11", 1100, 100},
		{"long rate falls back to big", "USD", "1.05870000000000000000001", 1000, 945},
		// max int64 cents at a rate below one does not fit
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseRate(tt.currency, tt.rate)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.toEUR(tt.amount)
			if err != nil || got != tt.want {
				t.Fatalf("toEUR(%d %s at %s) = %d, %v; want %d", tt.amount, tt.currency, tt.rate, got, err, tt.want)
			}
		})
	}
}

func TestFxOverflowAndBadRates(t *testing.T) {
	r, err := parseRate("USD", "0.5")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.toEUR(math.MaxInt64); err == nil {
		t.Fatal("doubling MaxInt64 must overflow")
	}
	if _, err := r.toEUR(-1); err == nil {
		t.Fatal("negative amounts are rejected")
	}
	for _, bad := range []string{"", "0", "0.000", "-1.2", "1e3", "1/3", "1.", ".5", "1.2.3", "abc", " 1,2"} {
		if _, err := parseRate("USD", bad); err == nil {
			t.Errorf("parseRate(%q) accepted", bad)
		}
	}
}

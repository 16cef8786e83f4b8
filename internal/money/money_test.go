package money

import "testing"

func TestParsePrice(t *testing.T) {
	tests := []struct {
		in       string
		minor    int64
		currency string
	}{
		{"$9,000.00", 900000, "USD"},
		{"€11,000.00", 1100000, "EUR"},
		{"+€14.00", 1400, "EUR"},
		{"£40.00", 4000, "GBP"},
		{"¥1,500", 1500, "JPY"},
		{"¥1,500.00", 1500, "JPY"},
		{"A$20.00", 2000, "AUD"},
		{"CA$15.50", 1550, "CAD"},
		{"R$50.00", 5000, "BRL"},
		{"CHF 116.30", 11630, "CHF"},
		{"CHF116.30", 11630, "CHF"},
		{"SEK 50.00", 5000, "SEK"},
		{"+SEK 50.00", 5000, "SEK"},
		{"MX$1,234.50", 123450, "MXN"},
		{"NZ$9.99", 999, "NZD"},
		{"12.00 EUR", 1200, "EUR"},
		{"$0.99", 99, "USD"},
		{"$5", 500, "USD"},
	}
	for _, tt := range tests {
		m, err := ParsePrice(tt.in)
		if err != nil || m.AmountMinor != tt.minor || m.Currency != tt.currency {
			t.Errorf("ParsePrice(%q) = %v, %v; want %d %s", tt.in, m, err, tt.minor, tt.currency)
		}
	}
	for _, bad := range []string{"", "free", "XYZ 12.00", "$1.234", "€abc", "¥1.5"} {
		if m, err := ParsePrice(bad); err == nil {
			t.Errorf("ParsePrice(%q) = %v, want an error", bad, m)
		}
	}
}

func TestDecimal(t *testing.T) {
	for _, tt := range []struct {
		minor    int64
		currency string
		want     string
	}{{900000, "USD", "9000.00"}, {5, "EUR", "0.05"}, {1500, "JPY", "1500"}, {-250, "EUR", "-2.50"}, {0, "USD", "0.00"}} {
		if got := Decimal(tt.minor, tt.currency); got != tt.want {
			t.Errorf("Decimal(%d, %s) = %q, want %q", tt.minor, tt.currency, got, tt.want)
		}
		if back, err := ParseAmount(tt.want, tt.currency); err != nil || back != tt.minor {
			t.Errorf("ParseAmount(%q) = %d, %v", tt.want, back, err)
		}
	}
}

func TestConvert(t *testing.T) {
	tests := []struct {
		minor      int64
		from, to   string
		fromR, toR string
		want       int64
	}{
		{10587, "USD", "EUR", "1.0587", "1", 10000}, // exactly 100.00 EUR
		{100, "EUR", "USD", "1", "1.0587", 106},     // 1.0587 -> 1.06
		{150, "JPY", "EUR", "120.77", "1", 124},     // 150/120.77 = 1.24203 -> 1.24
		{10000, "EUR", "JPY", "1", "120.77", 12077}, // JPY has no minor unit
		{5, "EUR", "USD", "1", "1.1", 6},            // 0.055 -> 0.06 (half up)
		{-5, "EUR", "USD", "1", "1.1", -6},
	}
	for _, tt := range tests {
		fr, _ := ParseRate(tt.fromR)
		to, _ := ParseRate(tt.toR)
		if got := Convert(tt.minor, tt.from, fr, tt.to, to); got != tt.want {
			t.Errorf("Convert(%d %s -> %s) = %d, want %d", tt.minor, tt.from, tt.to, got, tt.want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "abc"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}

package cartopt

import (
	"errors"
	"testing"
)

func TestConverterCents(t *testing.T) {
	rates := map[string]Decimal{
		"EUR": MustDecimal("1"), "USD": MustDecimal("1.1456"), "JPY": MustDecimal("119.04"),
		"GBP": MustDecimal("0.8725"), "X": MustDecimal("1.1"), "HUGE": MustDecimal("123456789012345678901.5"),
	}
	tests := []struct {
		to, from, amount string
		want             int64
	}{
		{"USD", "USD", "17.58", 1758},
		{"USD", "EUR", "10", 1146},   // 11.456 → 11.46
		{"USD", "GBP", "6.65", 873},  // 6.65/0.8725×1.1456 = 8.7315… → 8.73
		{"USD", "JPY", "1500", 1444}, // 1500/119.04×1.1456 = 14.4355… → 14.44
		{"JPY", "USD", "1", 10391},   // 1/1.1456×119.04 = 103.9106… → 103.91, hundredths even for JPY
		{"EUR", "JPY", "150", 126},   // 1.26008… → 1.26
		{"X", "EUR", "0.05", 6},      // 0.055 exactly: half up
		{"X", "EUR", "0.15", 17},     // 0.165 exactly: half up
		{"EUR", "X", "0.0055", 1},    // 0.005 exactly: half up
		{"USD", "USD", "0", 0},
		{"USD", "EUR", "1e3", 114560},
		{"EUR", "HUGE", "123456789012345678901.5", 100},           // big path
		{"USD", "EUR", "1234567890123456.12", 141432097492543133}, // 128-bit intermediate
	}
	for _, tt := range tests {
		c, err := NewConverter(rates, tt.to)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Cents(MustDecimal(tt.amount), tt.from)
		if err != nil || got != tt.want {
			t.Errorf("%s %s → %s cents = %d, %v; want %d", tt.amount, tt.from, tt.to, got, err, tt.want)
		}
	}
	c, _ := NewConverter(rates, "USD")
	if _, err := c.Cents(MustDecimal("1"), "ZZZ"); !errors.Is(err, ErrUnknownCurrency) {
		t.Errorf("unknown currency: %v", err)
	}
	if _, err := c.Cents(MustDecimal("1e30"), "EUR"); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("1e30 EUR: %v, want ErrOutOfRange", err)
	}
	if _, err := NewConverter(rates, "ZZZ"); !errors.Is(err, ErrUnknownCurrency) {
		t.Errorf("NewConverter to ZZZ: %v", err)
	}
	if _, err := NewConverter(map[string]Decimal{"EUR": MustDecimal("1"), "BAD": MustDecimal("0")}, "EUR"); err == nil {
		t.Error("zero rate accepted")
	}
}

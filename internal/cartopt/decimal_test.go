package cartopt

import (
	"errors"
	"math/big"
	"testing"
)

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in     string
		want   string // exact value as a big.Rat string
		str    string
		digits int
	}{
		{"17.58", "879/50", "17.58", 2},
		{"-3", "-3", "-3", 0},
		{"0", "0", "0", 0},
		{"-0.0", "0", "0", 0},
		{"1.50", "3/2", "1.5", 1},
		{"1.5e2", "150", "150", 0},
		{"1.5E-3", "3/2000", "0.0015", 4},
		{"100e-2", "1", "1", 0},
		{"0.106882", "53441/500000", "0.106882", 6},
		{"123456789012345678901234.5", "246913578024691357802469/2", "123456789012345678901234.5", 1}, // beyond int64: big path
		{"0.0000000000000000000001", "1/10000000000000000000000", "0.0000000000000000000001", 22},
	}
	for _, tt := range tests {
		d, err := ParseDecimal(tt.in)
		if err != nil {
			t.Errorf("ParseDecimal(%q): %v", tt.in, err)
			continue
		}
		if got := d.Rat().RatString(); got != tt.want {
			t.Errorf("ParseDecimal(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if got := d.String(); got != tt.str {
			t.Errorf("ParseDecimal(%q).String() = %q, want %q", tt.in, got, tt.str)
		}
		if got := d.fracDigits(); got != tt.digits {
			t.Errorf("ParseDecimal(%q).fracDigits() = %d, want %d", tt.in, got, tt.digits)
		}
	}
	for _, bad := range []string{"", "-", "01", "1.", ".5", "1e", "1e+", "+1", "0x10", "1,5", "NaN", "1.5.5", "--1", "1e99999"} {
		if d, err := ParseDecimal(bad); err == nil {
			t.Errorf("ParseDecimal(%q) = %v, want an error", bad, d)
		}
	}
	if _, err := ParseDecimal("1e100000"); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("huge exponent: %v, want ErrOutOfRange", err)
	}
}

func TestDecimalCmp(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"98", "98.0", 0},
		{"97.99", "98", -1},
		{"99.5", "98", 1},
		{"1e3", "999.999", 1},
		{"-1", "0", -1},
		{"123456789012345678901234", "123456789012345678901233", 1}, // big path
		{"900000000000000000", "9e17", 0},
		{"9e30", "1", 1}, // the scaled comparison would overflow
	}
	for _, tt := range tests {
		if got := MustDecimal(tt.a).Cmp(MustDecimal(tt.b)); got != tt.want {
			t.Errorf("Cmp(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestDecimalScaled(t *testing.T) {
	tests := []struct {
		in     string
		digits int
		floor  bool
		want   int64
	}{
		{"100", 2, true, 10000},
		{"100.009", 2, true, 10000},
		{"0.106882", 6, false, 106882},
		{"0.0000005", 6, false, 1},  // half up
		{"0.00000049", 6, false, 0}, // below half
		{"-0.0000005", 6, false, -1},
		{"-0.0000001", 6, true, -1},
		{"1.2345678901234567", 12, false, 1234567890123},
	}
	for _, tt := range tests {
		got, err := MustDecimal(tt.in).scaled(tt.digits, tt.floor)
		if err != nil || got != tt.want {
			t.Errorf("scaled(%s, %d, %v) = %d, %v; want %d", tt.in, tt.digits, tt.floor, got, err, tt.want)
		}
	}
	if _, err := MustDecimal("1e30").scaled(2, true); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("1e30 cents: %v, want ErrOutOfRange", err)
	}
}

func TestDecimalFromFloatAndInt(t *testing.T) {
	d, err := DecimalFromFloat(0.1)
	if err != nil || d.Rat().Cmp(big.NewRat(1, 10)) != 0 {
		t.Errorf("DecimalFromFloat(0.1) = %v, %v; want exactly 1/10", d, err)
	}
	if _, err := DecimalFromFloat(1 / zero()); err == nil {
		t.Error("DecimalFromFloat(+Inf) accepted")
	}
	if got := DecimalFromInt(1758, 2).String(); got != "17.58" {
		t.Errorf("DecimalFromInt(1758, 2) = %s", got)
	}
	if got := DecimalFromInt(1500, 0).String(); got != "1500" {
		t.Errorf("DecimalFromInt(1500, 0) = %s", got)
	}
}

func zero() float64 { return 0 }

// Package ecb reads the European Central Bank's euro foreign exchange
// reference rates: the daily file (eurofxref-daily.xml) and the 90-day and
// full history files (eurofxref-hist-90d.xml, eurofxref-hist.xml), which
// hold one <Cube time="..."> per day. Rates are units of currency per 1
// EUR, kept as the exact decimal text the ECB publishes.
package ecb

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// ErrMalformed is returned, wrapped with the reason, for a document that
// is not a reference-rate file.
var ErrMalformed = errors.New("ecb: malformed reference rates")

// maxDocument bounds what Parse reads: the full history since 1999 is
// about 7 MB.
const maxDocument = 32 << 20

// Day is the reference rates of one date, EUR first.
type Day struct {
	Date  string // YYYY-MM-DD
	Rates []*pb.FxRate
}

type envelope struct {
	XMLName xml.Name
	Cubes   []struct {
		Days []struct {
			Time  string `xml:"time,attr"`
			Rates []struct {
				Currency string `xml:"currency,attr"`
				Rate     string `xml:"rate,attr"`
			} `xml:"Cube"`
		} `xml:"Cube"`
	} `xml:"Cube"`
}

// Parse returns the rates of the latest day in a daily or history
// document, EUR included with rate "1".
func Parse(r io.Reader) ([]*pb.FxRate, error) {
	days, err := ParseHistory(r)
	if err != nil {
		return nil, err
	}
	return days[len(days)-1].Rates, nil
}

// ParseHistory returns every day of a document, oldest first (the ECB
// lists them newest first), so that they can be replayed in event-time
// order.
func ParseHistory(r io.Reader) ([]Day, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("ecb: read: %w", err)
	}
	if len(data) > maxDocument {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, maxDocument)
	}
	var env envelope
	if err := xml.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if env.XMLName.Local != "Envelope" {
		return nil, fmt.Errorf("%w: root element <%s>, want <gesmes:Envelope>", ErrMalformed, env.XMLName.Local)
	}
	var days []Day
	seen := map[string]bool{}
	for _, c := range env.Cubes {
		for _, d := range c.Days {
			t, err := time.Parse(time.DateOnly, d.Time)
			if err != nil {
				return nil, fmt.Errorf("%w: day %q: not a YYYY-MM-DD date", ErrMalformed, d.Time)
			}
			if seen[d.Time] {
				return nil, fmt.Errorf("%w: day %s appears twice", ErrMalformed, d.Time)
			}
			seen[d.Time] = true
			if len(d.Rates) == 0 {
				return nil, fmt.Errorf("%w: day %s has no rates", ErrMalformed, d.Time)
			}
			day := Day{Date: d.Time, Rates: []*pb.FxRate{rate("EUR", "1", d.Time, t)}}
			currencies := map[string]bool{"EUR": true}
			for _, x := range d.Rates {
				cur, val := strings.TrimSpace(x.Currency), strings.TrimSpace(x.Rate)
				if !isCurrency(cur) {
					return nil, fmt.Errorf("%w: day %s: currency %q is not an ISO 4217 code", ErrMalformed, d.Time, x.Currency)
				}
				if currencies[cur] {
					return nil, fmt.Errorf("%w: day %s: currency %s appears twice", ErrMalformed, d.Time, cur)
				}
				currencies[cur] = true
				if !isRate(val) {
					return nil, fmt.Errorf("%w: day %s: rate %q of %s is not a positive decimal", ErrMalformed, d.Time, x.Rate, cur)
				}
				day.Rates = append(day.Rates, rate(cur, val, d.Time, t))
			}
			days = append(days, day)
		}
	}
	if len(days) == 0 {
		return nil, fmt.Errorf("%w: no <Cube time=...> day", ErrMalformed)
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Date < days[j].Date })
	return days, nil
}

// rate builds one record. The event time is the reference date at
// midnight UTC (the ECB publishes around 16:00 CET that day), and the
// event id is deterministic so that re-reading a file is idempotent.
func rate(cur, val, date string, t time.Time) *pb.FxRate {
	return &pb.FxRate{
		EventId:     "ecb:" + date + ":" + cur,
		EventTimeMs: t.UnixMilli(),
		Currency:    cur,
		UnitsPerEur: val,
		Date:        date,
	}
}

func isCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range 3 {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// isRate accepts plain decimals such as "1.0556" or "14144.80": what the
// ECB publishes and what exact decimal arithmetic can parse. Zero is
// rejected, since amounts are divided by it.
func isRate(s string) bool {
	digits, dot, nonzero := 0, false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
			nonzero = nonzero || c != '0'
		case c == '.' && !dot && digits > 0 && i < len(s)-1:
			dot = true
		default:
			return false
		}
	}
	return digits > 0 && nonzero && len(s) <= 32
}

// DefaultDate is the reference date of the Default table.
const DefaultDate = "2017-03-08"

// Default returns a built-in table for the demo and for running without
// network access: the ECB reference rates of 2017-03-08 (31 currencies,
// and EUR), as published in eurofxref-daily.xml that day (copied from the
// test fixture, taken from dohliam/currency @60d2e33f). They are dated:
// do not use them to price anything real.
func Default() []*pb.FxRate {
	table := [...][2]string{
		{"USD", "1.0556"}, {"JPY", "120.65"}, {"BGN", "1.9558"}, {"CZK", "27.021"},
		{"DKK", "7.4335"}, {"GBP", "0.86753"}, {"HUF", "310.70"}, {"PLN", "4.3130"},
		{"RON", "4.5503"}, {"SEK", "9.5223"}, {"CHF", "1.0702"}, {"NOK", "8.9513"},
		{"HRK", "7.4213"}, {"RUB", "61.7573"}, {"TRY", "3.9434"}, {"AUD", "1.3968"},
		{"BRL", "3.3151"}, {"CAD", "1.4193"}, {"CNY", "7.2953"}, {"HKD", "8.1982"},
		{"IDR", "14144.80"}, {"ILS", "3.8879"}, {"INR", "70.4960"}, {"KRW", "1216.36"},
		{"MXN", "20.7130"}, {"MYR", "4.7082"}, {"NZD", "1.5219"}, {"PHP", "53.198"},
		{"SGD", "1.4947"}, {"THB", "37.236"}, {"ZAR", "13.7908"},
	}
	t, _ := time.Parse(time.DateOnly, DefaultDate)
	out := make([]*pb.FxRate, 0, len(table)+1)
	out = append(out, rate("EUR", "1", DefaultDate, t))
	for _, x := range table {
		out = append(out, rate(x[0], x[1], DefaultDate, t))
	}
	return out
}

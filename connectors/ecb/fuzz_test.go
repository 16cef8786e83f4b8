package ecb_test

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/ecb"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// The seeds are synthesised in the shape of the ECB's files (the fixture
// in ../shared is ECB reference data, not ours to copy): a daily file, a
// two-day history listed newest first as the ECB does, and near misses.
// The rates are made up.
const (
	seedDaily = `<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
	<gesmes:subject>Reference rates</gesmes:subject>
	<gesmes:Sender>
		<gesmes:name>European Central Bank</gesmes:name>
	</gesmes:Sender>
	<Cube>
		<Cube time='2030-01-02'>
			<Cube currency='USD' rate='1.1000'/>
			<Cube currency='JPY' rate='150.25'/>
			<Cube currency='GBP' rate='0.85000'/>
			<Cube currency='IDR' rate='17000.10'/>
		</Cube>
	</Cube>
</gesmes:Envelope>`
	seedHistory = `<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
<Cube>
<Cube time="2030-01-03"><Cube currency="USD" rate="1.2"/><Cube currency="SEK" rate="11.5"/></Cube>
<Cube time="2030-01-02"><Cube currency="USD" rate="1.1"/></Cube>
</Cube>
</gesmes:Envelope>`
)

var rateRe = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// render writes days back as an ECB history document, newest first.
func render(days []ecb.Day) []byte {
	var b bytes.Buffer
	b.WriteString(`<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref"><Cube>`)
	for i := len(days) - 1; i >= 0; i-- {
		fmt.Fprintf(&b, `<Cube time="%s">`, days[i].Date)
		for _, r := range days[i].Rates[1:] { // EUR is Parse's own
			fmt.Fprintf(&b, `<Cube currency="%s" rate="%s"/>`, r.Currency, r.UnitsPerEur)
		}
		b.WriteString(`</Cube>`)
	}
	b.WriteString(`</Cube></gesmes:Envelope>`)
	return b.Bytes()
}

// FuzzParseHistory feeds arbitrary documents to ParseHistory: either
// ErrMalformed, or days in ascending date order, each EUR "1" first, then
// distinct ISO-looking currencies with positive plain decimal rates, event
// ids and times derived from the date; Parse returns the last day; and the
// days written back as a document parse to the same days.
func FuzzParseHistory(f *testing.F) {
	f.Add([]byte(seedDaily))
	f.Add([]byte(seedHistory))
	f.Add([]byte(strings.Replace(seedHistory, "2030-01-02", "2030-01-03", 1))) // a day twice
	f.Add([]byte(strings.Replace(seedDaily, "'1.1000'", "'0.000'", 1)))
	f.Add([]byte(strings.Replace(seedDaily, "gesmes:Envelope", "Envelope", 2)))
	f.Add([]byte(`<Envelope><Cube><Cube time="2030-02-29"><Cube currency="USD" rate="1"/></Cube></Cube></Envelope>`))

	f.Fuzz(func(t *testing.T, doc []byte) {
		days, err := ecb.ParseHistory(bytes.NewReader(doc))
		if err != nil {
			if !errors.Is(err, ecb.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if _, err := ecb.Parse(bytes.NewReader(doc)); err == nil {
				t.Fatal("Parse accepts what ParseHistory refuses")
			}
			return
		}
		if len(days) == 0 {
			t.Fatal("no days and no error")
		}
		for i, d := range days {
			date, err := time.Parse(time.DateOnly, d.Date)
			if err != nil {
				t.Fatalf("day %q: %v", d.Date, err)
			}
			if i > 0 && days[i-1].Date >= d.Date {
				t.Fatalf("day %s after %s", d.Date, days[i-1].Date)
			}
			if len(d.Rates) < 2 || d.Rates[0].Currency != "EUR" || d.Rates[0].UnitsPerEur != "1" {
				t.Fatalf("day %s: rates %v", d.Date, d.Rates)
			}
			seen := map[string]bool{}
			for _, r := range d.Rates {
				if seen[r.Currency] || len(r.Currency) != 3 || strings.ToUpper(r.Currency) != r.Currency {
					t.Fatalf("day %s: currency %q", d.Date, r.Currency)
				}
				seen[r.Currency] = true
				if !rateRe.MatchString(r.UnitsPerEur) || strings.Trim(r.UnitsPerEur, "0.") == "" {
					t.Fatalf("day %s: %s rate %q", d.Date, r.Currency, r.UnitsPerEur)
				}
				if r.Date != d.Date || r.EventTimeMs != date.UnixMilli() || r.EventId != "ecb:"+d.Date+":"+r.Currency {
					t.Fatalf("day %s: record %v", d.Date, r)
				}
				if _, err := proto.Marshal(r); err != nil {
					t.Fatalf("day %s: %v", d.Date, err)
				}
			}
		}

		latest, err := ecb.Parse(bytes.NewReader(doc))
		if err != nil {
			t.Fatalf("Parse refuses what ParseHistory accepts: %v", err)
		}
		equalRates(t, "Parse", latest, days[len(days)-1])

		again, err := ecb.ParseHistory(bytes.NewReader(render(days)))
		if err != nil {
			t.Fatalf("the days written back do not parse: %v\n%s", err, render(days))
		}
		if len(again) != len(days) {
			t.Fatalf("%d days written back, %d read", len(days), len(again))
		}
		for i := range days {
			equalRates(t, "round trip", again[i].Rates, days[i])
		}
	})
}

func equalRates(t *testing.T, what string, got []*pb.FxRate, want ecb.Day) {
	t.Helper()
	if len(got) != len(want.Rates) {
		t.Fatalf("%s: %d rates on %s, want %d", what, len(got), want.Date, len(want.Rates))
	}
	for i := range got {
		if !proto.Equal(got[i], want.Rates[i]) {
			t.Fatalf("%s: rate %d of %s is %v, want %v", what, i, want.Date, got[i], want.Rates[i])
		}
	}
}

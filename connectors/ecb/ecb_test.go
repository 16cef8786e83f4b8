package ecb_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/ecb"
	"github.com/cratestream/cratestream/internal/testutil"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

func byCurrency(rates []*pb.FxRate) map[string]*pb.FxRate {
	m := map[string]*pb.FxRate{}
	for _, r := range rates {
		m[r.Currency] = r
	}
	return m
}

func TestParseDailyFixture(t *testing.T) {
	f, err := os.Open(testutil.SharedDir(t, "fixtures", "ecb", "eurofxref-daily-2017-03-08.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rates, err := ecb.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	// The file lists 31 currencies; EUR is added.
	if len(rates) != 32 {
		t.Fatalf("%d rates, want 31 currencies and EUR", len(rates))
	}
	m := byCurrency(rates)
	if len(m) != 32 {
		t.Fatalf("duplicate currencies in %v", rates)
	}
	day := time.Date(2017, 3, 8, 0, 0, 0, 0, time.UTC).UnixMilli()
	tests := []struct{ cur, rate string }{
		{"EUR", "1"},
		{"USD", "1.0556"},
		{"JPY", "120.65"},
		{"GBP", "0.86753"},
		{"HUF", "310.70"}, // trailing zero kept: the exact published text
		{"BRL", "3.3151"},
		{"IDR", "14144.80"},
		{"ZAR", "13.7908"},
	}
	for _, tt := range tests {
		want := &pb.FxRate{EventId: "ecb:2017-03-08:" + tt.cur, EventTimeMs: day, Currency: tt.cur, UnitsPerEur: tt.rate, Date: "2017-03-08"}
		if got := m[tt.cur]; !proto.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", tt.cur, got, want)
		}
	}
	if rates[0].Currency != "EUR" || rates[1].Currency != "USD" || rates[31].Currency != "ZAR" {
		t.Errorf("order: %s %s ... %s", rates[0].Currency, rates[1].Currency, rates[31].Currency)
	}
}

const history = `<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
	<gesmes:subject>Reference rates</gesmes:subject>
	<gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
	<Cube>
		<Cube time="2017-03-08"><Cube currency="USD" rate="1.0556"/><Cube currency="BRL" rate="3.3151"/></Cube>
		<Cube time="2017-03-07"><Cube currency="USD" rate="1.0582"/><Cube currency="BRL" rate="3.3203"/></Cube>
		<Cube time="2017-03-06"><Cube currency="USD" rate="1.0576"/></Cube>
	</Cube>
</gesmes:Envelope>`

func TestHistory(t *testing.T) {
	days, err := ecb.ParseHistory(strings.NewReader(history))
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 3 || days[0].Date != "2017-03-06" || days[2].Date != "2017-03-08" {
		t.Fatalf("days %+v", days)
	}
	if n := len(days[0].Rates); n != 2 {
		t.Errorf("2017-03-06: %d rates, want USD and EUR", n)
	}
	latest, err := ecb.Parse(strings.NewReader(history))
	if err != nil {
		t.Fatal(err)
	}
	m := byCurrency(latest)
	if len(latest) != 3 || m["USD"].GetUnitsPerEur() != "1.0556" || m["BRL"].GetDate() != "2017-03-08" || m["EUR"].GetUnitsPerEur() != "1" {
		t.Errorf("latest %v", latest)
	}
}

func TestMalformed(t *testing.T) {
	day := func(cubes string) string {
		return `<gesmes:Envelope xmlns:gesmes="g" xmlns="e"><Cube><Cube time="2017-03-08">` + cubes + `</Cube></Cube></gesmes:Envelope>`
	}
	tests := []struct{ name, doc, want string }{
		{"empty", "", "EOF"},
		{"not xml", "USD 1.0556", "EOF"},
		{"truncated", history[:len(history)/2], "unexpected EOF"},
		{"html", "<html><body>Service unavailable</body></html>", "root element <html>"},
		{"no days", `<gesmes:Envelope xmlns:gesmes="g"><Cube></Cube></gesmes:Envelope>`, "no <Cube time"},
		{"bad date", strings.Replace(day(`<Cube currency="USD" rate="1"/>`), "2017-03-08", "08/03/2017", 1), "not a YYYY-MM-DD"},
		{"no rates", day(""), "no rates"},
		{"bad currency", day(`<Cube currency="usd" rate="1.05"/>`), "ISO 4217"},
		{"duplicate currency", day(`<Cube currency="USD" rate="1.05"/><Cube currency="USD" rate="1.06"/>`), "twice"},
		{"EUR listed", day(`<Cube currency="EUR" rate="1"/>`), "twice"},
		{"comma rate", day(`<Cube currency="USD" rate="1,0556"/>`), "positive decimal"},
		{"negative rate", day(`<Cube currency="USD" rate="-1.05"/>`), "positive decimal"},
		{"zero rate", day(`<Cube currency="USD" rate="0.000"/>`), "positive decimal"},
		{"exponent", day(`<Cube currency="USD" rate="1e3"/>`), "positive decimal"},
		{"missing rate", day(`<Cube currency="USD"/>`), "positive decimal"},
		{"duplicate day", strings.Replace(history, "2017-03-07", "2017-03-08", 1), "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rates, err := ecb.Parse(strings.NewReader(tt.doc))
			if !errors.Is(err, ecb.ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("rates %v, err %v; want ErrMalformed with %q", rates, err, tt.want)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	rates := ecb.Default()
	if len(rates) != 32 {
		t.Fatalf("%d rates", len(rates))
	}
	m := byCurrency(rates)
	for _, r := range rates {
		if r.Date != ecb.DefaultDate || r.EventId != "ecb:"+ecb.DefaultDate+":"+r.Currency {
			t.Errorf("%v", r)
		}
	}
	if m["EUR"].GetUnitsPerEur() != "1" || m["BRL"].GetUnitsPerEur() != "3.3151" || m["USD"].GetUnitsPerEur() != "1.0556" {
		t.Errorf("default %v", rates)
	}
	// Default is the fixture's table, and a fresh copy on each call.
	if p := testutil.SharedDir(t, "fixtures", "ecb", "eurofxref-daily-2017-03-08.xml"); p != "" {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		parsed, err := ecb.Parse(f)
		if err != nil {
			t.Fatal(err)
		}
		for i := range parsed {
			if !proto.Equal(parsed[i], rates[i]) {
				t.Errorf("default %v, fixture %v", rates[i], parsed[i])
			}
		}
	}
	rates[0].UnitsPerEur = "2"
	if ecb.Default()[0].UnitsPerEur != "1" {
		t.Error("Default shares its records between calls")
	}
}

package market_test

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/stream/streamtest"
	"github.com/cratestream/cratestream/internal/testutil/proctest"
	"github.com/cratestream/cratestream/processors/market"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

var (
	listings = topics.Listings()
	stats    = topics.ReleaseStats()
	scrapes  = topics.ScrapeDone()
	usd      = &pb.FxRate{Currency: "USD", UnitsPerEur: "1.25", Date: "2026-11-20"}
)

func eur(minor int64) *pb.Money { return &pb.Money{AmountMinor: minor, Currency: "EUR"} }

func listing(id, release, minor int64, currency string) *pb.Listing {
	return &pb.Listing{ListingId: id, ReleaseId: release, Price: &pb.Money{AmountMinor: minor, Currency: currency}}
}

func TestSummarize(t *testing.T) {
	rates := map[string]*big.Rat{"EUR": big.NewRat(1, 1), "USD": big.NewRat(11, 10)}
	rate := func(c string) (*big.Rat, bool) { r, ok := rates[c]; return r, ok }
	m := &pb.ReleaseMarket{ReleaseId: 9, LastScrapedMs: 77, Listings: []*pb.ListingPrice{
		{ListingId: 1, Price: eur(1000)},
		{ListingId: 2, Price: &pb.Money{AmountMinor: 1100, Currency: "USD"}}, // 10.00 EUR
		{ListingId: 3, Price: eur(500)},
		{ListingId: 4, Price: eur(3000)},
		{ListingId: 5, Price: &pb.Money{AmountMinor: 9, Currency: "SEK"}}, // no rate: counted, not priced
	}}
	st := market.Summarize(m, rate, 1, "e")
	if st.ListingCount != 5 || st.MinPrice.AmountMinor != 500 || st.MedianPrice.AmountMinor != 1000 || st.LastScrapedMs != 77 {
		t.Fatalf("stats = %v", st)
	}
	empty := market.Summarize(&pb.ReleaseMarket{ReleaseId: 1}, rate, 1, "e")
	if empty.ListingCount != 0 || empty.MinPrice != nil || empty.MedianPrice != nil {
		t.Fatalf("empty stats = %v", empty)
	}
}

// summary is a stats record in one line.
func summary(st *pb.ReleaseStats) string {
	price := func(m *pb.Money) string {
		if m == nil {
			return "-"
		}
		return fmt.Sprintf("%d %s", m.AmountMinor, m.Currency)
	}
	return fmt.Sprintf("%d: %d listings, min %s, median %s, scraped %d",
		st.ReleaseId, st.ListingCount, price(st.MinPrice), price(st.MedianPrice), st.LastScrapedMs)
}

// The processor in memory, step by step: what each listing change and
// scrape-done makes it publish on release-stats.v1, exactly.
func TestProcessor(t *testing.T) {
	fx := market.NewFX(stream.GlobalConfig{})
	p, markets := market.New(market.Options{Mode: stream.ExactlyOnce, FX: fx})
	// As many tasks as listings.v1 has partitions: the runner gives the
	// repartition topic that count, and the scrape-done handler finds a
	// release's owner with it. Listing changes reach their release's task
	// through the repartition topic, looped back as Kafka would.
	tt := streamtest.New(t, p, streamtest.Partitions(int32(listings.Partitions)),
		streamtest.Loopback(market.Name+"-by-release-repartition"))
	streamtest.Global(tt, fx, topics.FxRates(), usd.Currency, usd, false)

	put := func(id int64, l *pb.Listing) func() { return func() { streamtest.Send(tt, listings, id, l) } }
	sold := func(id int64) func() { return func() { streamtest.SendTombstone(tt, listings, id) } }
	scraped := func(release, at int64, errText string) func() {
		return func() {
			streamtest.Broadcast(tt, scrapes, release, &pb.ScrapeDone{ReleaseId: release, ScrapedAtMs: at, Error: errText})
		}
	}
	steps := []struct {
		name  string
		do    func()
		stats []string
		dead  string // the reason of the step's dead letter
	}{
		{"a listing", put(1, listing(1, 100, 2000, "EUR")), []string{"100: 1 listings, min 2000 EUR, median 2000 EUR, scraped 0"}, ""},
		// 12.50 USD at 1.25 per EUR is 10.00 EUR; the median is the lower one.
		{"a listing in USD", put(2, listing(2, 100, 1250, "USD")), []string{"100: 2 listings, min 1000 EUR, median 1000 EUR, scraped 0"}, ""},
		{"a third", put(3, listing(3, 100, 4000, "EUR")), []string{"100: 3 listings, min 1000 EUR, median 2000 EUR, scraped 0"}, ""},
		{"another release", put(4, listing(4, 200, 700, "EUR")), []string{"200: 1 listings, min 700 EUR, median 700 EUR, scraped 0"}, ""},
		{"its second", put(5, listing(5, 200, 900, "EUR")), []string{"200: 2 listings, min 700 EUR, median 700 EUR, scraped 0"}, ""},
		{"sold", sold(3), []string{"100: 2 listings, min 1000 EUR, median 1000 EUR, scraped 0"}, ""},
		{"moved to another release", put(5, listing(5, 100, 900, "EUR")), []string{
			"200: 1 listings, min 700 EUR, median 700 EUR, scraped 0",
			"100: 3 listings, min 900 EUR, median 1000 EUR, scraped 0",
		}, ""},
		{"the same price again", put(5, listing(5, 100, 900, "EUR")), nil, ""},
		{"a new price", put(1, listing(1, 100, 2100, "EUR")), []string{"100: 3 listings, min 900 EUR, median 1000 EUR, scraped 0"}, ""},
		{"a listing never seen is gone", sold(999), nil, ""},
		{"a negative price", put(6, listing(6, 300, -5, "EUR")), nil, "negative price"},
		{"under another listing's key", put(8, listing(7, 300, 100, "EUR")), nil, "listing 7 arrived under key 8"},
		{"an unknown currency", put(7, listing(7, 300, 100, "XYZ")), nil, `unknown currency "XYZ"`},
		{"a currency without a rate: counted, not priced", put(9, listing(9, 400, 500, "GBP")), []string{"400: 1 listings, min -, median -, scraped 0"}, ""},
		// Every task sees a scrape-done; only the release's owner acts.
		{"a scrape", scraped(100, 12345, ""), []string{"100: 3 listings, min 900 EUR, median 1000 EUR, scraped 12345"}, ""},
		{"an older scrape", scraped(100, 12000, ""), nil, ""},
		{"a failed scrape", scraped(100, 20000, "HTTP 429"), nil, ""},
		{"a scrape of a release without listings", scraped(500, 777, ""), []string{"500: 0 listings, min -, median -, scraped 777"}, ""},
	}
	ids := map[string]bool{}
	for _, s := range steps {
		tt.Advance(time.Second) // each step at its own time: the stats carry the clock's
		s.do()
		var got []string
		for _, o := range streamtest.Read(tt, stats) {
			got = append(got, summary(o.Value))
			st := o.Value
			if o.Key != st.ReleaseId || o.Partition != stream.PartitionFor([]byte(fmt.Sprint(o.Key)), int32(stats.Partitions)) {
				t.Errorf("%s: stats of %d keyed %d in partition %d", s.name, st.ReleaseId, o.Key, o.Partition)
			}
			if st.EventTimeMs != tt.Now().UnixMilli() || ids[st.EventId] || !strings.HasPrefix(st.EventId, "market:") {
				t.Errorf("%s: stats event %q at %d (now %d): want a new id, at the clock's time", s.name, st.EventId, st.EventTimeMs, tt.Now().UnixMilli())
			}
			ids[st.EventId] = true
		}
		if !slices.Equal(got, s.stats) {
			t.Errorf("%s: stats\n%s\nwant\n%s", s.name, strings.Join(got, "\n"), strings.Join(s.stats, "\n"))
		}
		dls := tt.DeadLetters()
		switch {
		case s.dead == "" && len(dls) > 0:
			t.Errorf("%s: dead letters %v", s.name, dls)
		case s.dead != "" && (len(dls) != 1 || !strings.Contains(dls[0].Reason, s.dead) || dls[0].Topic != listings.Name):
			t.Errorf("%s: dead letters %v, want one for %q", s.name, dls, s.dead)
		}
	}

	for release, want := range map[int64]*pb.ReleaseMarket{
		100: {ReleaseId: 100, LastScrapedMs: 12345, Listings: []*pb.ListingPrice{
			{ListingId: 1, Price: eur(2100)}, {ListingId: 2, Price: &pb.Money{AmountMinor: 1250, Currency: "USD"}}, {ListingId: 5, Price: eur(900)}}},
		200: {ReleaseId: 200, Listings: []*pb.ListingPrice{{ListingId: 4, Price: eur(700)}}},
		300: nil, // only bad listings
	} {
		got, _ := streamtest.Get(tt, markets, release)
		if !proto.Equal(got, want) {
			t.Errorf("store[%d] = %v, want %v", release, got, want)
		}
	}
}

// On Kafka: listing changes go through the repartition topic, rates come
// from fx-rates.v1, and a scrape-done written before the processor started
// still dates its release (the broadcast is read from its start).
func TestProcessorOnKafka(t *testing.T) {
	c := proctest.Start(t)
	c.Produce(
		proctest.Record(t, topics.FxRates(), usd.Currency, usd),
		proctest.Record(t, scrapes, 100, &pb.ScrapeDone{ReleaseId: 100, ScrapedAtMs: 12345}),
		proctest.Record(t, listings, 1, listing(1, 100, 2000, "EUR")),
		proctest.Record(t, listings, 2, listing(2, 100, 1250, "USD")),
		proctest.Record(t, listings, 4, listing(4, 200, 700, "EUR")),
	)
	fx := market.NewFX(stream.GlobalConfig{Brokers: c.Addrs(), ClientOpts: proctest.ClientOpts(), Logger: proctest.Logger()})
	p, markets := market.New(market.Options{Mode: stream.ExactlyOnce, FX: fx})
	r := c.Run(p, stream.Config{})
	// Lookups read committed state: once the store has it all, so has
	// release-stats.v1 (written in the same transactions).
	ctx := context.Background()
	proctest.WaitFor(t, "both releases in the store", func() bool {
		a, _, _ := stream.Lookup(ctx, r, markets, 100)
		b, _, _ := stream.Lookup(ctx, r, markets, 200)
		return len(a.GetListings()) == 2 && a.GetLastScrapedMs() == 12345 && len(b.GetListings()) == 1
	})
	last := map[int64]string{}
	for _, m := range proctest.Read(c, stats) {
		last[m.Key] = summary(m.Value)
	}
	want := map[int64]string{
		100: "100: 2 listings, min 1000 EUR, median 1000 EUR, scraped 12345",
		200: "200: 1 listings, min 700 EUR, median 700 EUR, scraped 0",
	}
	for release, w := range want {
		if last[release] != w {
			t.Errorf("last stats of %d: %q, want %q", release, last[release], w)
		}
	}
}

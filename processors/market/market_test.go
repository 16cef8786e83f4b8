package market_test

import (
	"context"
	"io"
	"log/slog"
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/testutil"
	"github.com/cratestream/cratestream/processors/market"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

func eur(minor int64) *pb.Money { return &pb.Money{AmountMinor: minor, Currency: "EUR"} }

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

func TestMarketProcessor(t *testing.T) {
	ctx := context.Background()
	k := testutil.Kafka(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := stream.CreateTopics(ctx, kadm.NewClient(cl), topics.Catalogue(), 1); err != nil {
		t.Fatal(err)
	}
	rec := func(topic string, key int64, m proto.Message) *kgo.Record {
		r := &kgo.Record{Topic: topic, Key: []byte(strconv.FormatInt(key, 10))}
		if m != nil {
			b, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			r.Value = b
		}
		return r
	}
	listing := func(id, release int64, minor int64, cur string) *kgo.Record {
		return rec("listings.v1", id, &pb.Listing{ListingId: id, ReleaseId: release, Price: &pb.Money{AmountMinor: minor, Currency: cur}})
	}
	fx, _ := proto.Marshal(&pb.FxRate{Currency: "USD", UnitsPerEur: "1.25", Date: "2026-11-20"})
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "fx-rates.v1", Key: []byte("USD"), Value: fx}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx,
		listing(1, 100, 2000, "EUR"),
		listing(2, 100, 1250, "USD"), // 10.00 EUR
		listing(3, 100, 4000, "EUR"),
		listing(4, 200, 700, "EUR"),
		listing(5, 200, 900, "EUR"),
		rec("listings.v1", 3, nil),   // sold
		listing(5, 100, 900, "EUR"),  // moved to release 100
		rec("listings.v1", 999, nil), // tombstone of a listing never seen
		listing(6, 300, -5, "EUR"),   // invalid: dead-lettered
		rec("scrape-done.v1", 100, &pb.ScrapeDone{ReleaseId: 100, ScrapedAtMs: 12345}),
	).FirstErr(); err != nil {
		t.Fatal(err)
	}

	fxTable := market.NewFX(stream.GlobalConfig{Brokers: k.Addrs(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	p, _ := market.New(market.Options{Mode: stream.ExactlyOnce, FX: fxTable})
	r, err := stream.NewRunner(p, stream.Config{Brokers: k.Addrs(), InstanceID: "t", CommitInterval: 30 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry(),
		ClientOpts: []kgo.Opt{kgo.MetadataMinAge(100 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() { cancel(); <-done }()

	rd, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.ConsumeTopics("release-stats.v1"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	last := map[int64]*pb.ReleaseStats{}
	want := func() bool {
		a, b := last[100], last[200]
		return a != nil && b != nil && a.ListingCount == 3 && a.LastScrapedMs == 12345 && b.ListingCount == 1
	}
	deadline := time.Now().Add(30 * time.Second)
	for !want() && time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("runner stopped: %v", err)
		default:
		}
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := rd.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			var st pb.ReleaseStats
			if err := proto.Unmarshal(r.Value, &st); err == nil {
				last[st.ReleaseId] = &st
			}
		})
	}
	a, b := last[100], last[200]
	if !want() {
		t.Fatalf("stats: 100=%v 200=%v", a, b)
	}
	// Release 100: 20.00, 10.00 (USD 12.50 / 1.25) and 9.00 EUR.
	if a.MinPrice.AmountMinor != 900 || a.MedianPrice.AmountMinor != 1000 {
		t.Errorf("release 100 prices: %v", a)
	}
	if b.MinPrice.AmountMinor != 700 || b.MedianPrice.AmountMinor != 700 {
		t.Errorf("release 200 prices: %v", b)
	}
	if _, ok := last[300]; ok {
		t.Error("invalid listing reached the stats")
	}
	if r.Stats().DeadLetters != 1 {
		t.Errorf("%d dead letters, want 1", r.Stats().DeadLetters)
	}
}

package cli

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	chsink "github.com/cratestream/cratestream/connectors/clickhouse"
	"github.com/cratestream/cratestream/connectors/discogs/fakemarket"
	"github.com/cratestream/cratestream/connectors/ecb"
	"github.com/cratestream/cratestream/internal/ops"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/testutil"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// The marketplace ingestion end to end: scrape requests are answered by the
// real scraper reading the fake marketplace over HTTP; the market processor
// summarises releases; the sink fills ClickHouse; the dashboard queries
// agree with the marketplace's truth.
func TestMarketplacePipeline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	k := testutil.Kafka(t)
	redisAddr := testutil.Redis(t)
	chAddr := testutil.ClickHouse(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := stream.CreateTopics(ctx, kadm.NewClient(cl), topics.Catalogue(), 1); err != nil {
		t.Fatal(err)
	}
	if err := produceRates(ctx, cl, ecb.Default()); err != nil {
		t.Fatal(err)
	}

	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	fake, err := fakemarket.New(fakemarket.Config{NumReleases: 40, Seed: 5, Clock: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	srv := ops.NewServer()
	bound, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := &deps{env: &Env{Logger: logger, Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }},
		brokers: k.Addrs(), srv: srv, fake: fake,
		streamCf: stream.Config{Brokers: k.Addrs(), InstanceID: "e2e", StateDir: t.TempDir(), AdvertiseAddr: bound,
			Logger: logger, Metrics: srv.Registry, CommitInterval: 50 * time.Millisecond}}
	d.set.redis.addr, d.set.clickhouse.addr, d.set.scrapeParallel = redisAddr, chAddr, 4
	defer d.close()
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- startServices(sctx, d, []string{"market", "scraper", "clickhouse-sink"}) }()
	defer func() { stop(); <-done }()

	var recs []*kgo.Record
	releases := fake.Releases()
	for _, rel := range releases {
		b, _ := proto.Marshal(&pb.ScrapeRequest{RequestId: "e2e-" + strconv.FormatInt(rel, 10), ReleaseId: rel, Reason: "test"})
		recs = append(recs, &kgo.Record{Topic: topics.ScrapeRequests().Name, Key: []byte(strconv.FormatInt(rel, 10)), Value: b})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	total := 0
	busiest, most := int64(0), 0
	for _, rel := range releases {
		n := len(fake.Listings(rel, at))
		total += n
		if n > most {
			busiest, most = rel, n
		}
	}

	conn, err := chsink.Open(ctx, chsink.ConnOptions{Addr: []string{chAddr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := chsink.NewQueries(conn, chsink.QueryOptions{Timeout: 20 * time.Second})
	var ov *chsink.MarketOverview
	for {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("services stopped: %v", err)
		default:
		}
		ov, err = q.MarketOverview(ctx)
		if err == nil && int(ov.Listings) == total {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("ClickHouse holds %v listings, the marketplace %d (err %v)", ov, total, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The busiest release's price distribution matches the market's
	// listings converted with the same rates.
	pd, err := q.PriceDistribution(ctx, busiest)
	if err != nil {
		t.Fatal(err)
	}
	if int(pd.Listings) != most {
		t.Errorf("release %d: %d priced listings in ClickHouse, %d on the market", busiest, pd.Listings, most)
	}
	cheap, err := q.Cheapest(ctx, chsink.CheapestQuery{Releases: []int64{busiest}, Limit: 5})
	if err != nil || len(cheap) == 0 {
		t.Fatalf("cheapest = %v, %v", cheap, err)
	}
	if cheap[0].PriceEURMinor != pd.MinEUR {
		t.Errorf("cheapest %d EUR cents, distribution min %d", cheap[0].PriceEURMinor, pd.MinEUR)
	}
	marketIDs := map[int64]bool{}
	for _, l := range fake.Listings(busiest, at) {
		marketIDs[l.ListingId] = true
	}
	for _, l := range cheap {
		if !marketIDs[l.ListingID] {
			t.Errorf("cheapest returned listing %d, not on the market", l.ListingID)
		}
	}

	// release-stats.v1 says the same as ClickHouse for the busiest release.
	rd, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.ConsumeTopics(topics.ReleaseStats().Name),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var st *pb.ReleaseStats
	for st == nil || int(st.ListingCount) != most || st.LastScrapedMs == 0 {
		if ctx.Err() != nil {
			t.Fatalf("release stats of %d: %v", busiest, st)
		}
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		rd.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			if string(r.Key) == strconv.FormatInt(busiest, 10) {
				var s pb.ReleaseStats
				if proto.Unmarshal(r.Value, &s) == nil {
					st = &s
				}
			}
		})
		pcancel()
	}
	if st.MinPrice.GetAmountMinor() != pd.MinEUR {
		t.Errorf("release-stats min %d, ClickHouse min %d", st.MinPrice.GetAmountMinor(), pd.MinEUR)
	}
	if slices.Contains([]int64{pd.MedianEUR}, 0) {
		t.Errorf("median of %d is 0", busiest)
	}
}

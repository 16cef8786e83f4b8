package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/processors/cartbuilder"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// CartLatencyConfig configures CartLatency. Zero values get the defaults
// documented on each field.
type CartLatencyConfig struct {
	// Releases and ListingsPerRelease size the market; every release is a
	// candidate of every user, so each request is a Releases x
	// ListingsPerRelease cart problem (the 200 x 20). Default 200
	// and 20.
	Releases, ListingsPerRelease int
	// Users have candidates; requests go round robin. Default 50.
	Users int
	// Rate is requests per second, sent one at a time; For is how long.
	// Default 20/s for 10s.
	Rate float64
	For  time.Duration
	// CommitInterval of the cart builder's runner; 0 uses
	// cartbuilder.CommitInterval, what the service runs with.
	CommitInterval time.Duration
	// Progress receives progress lines; nil discards them.
	Progress io.Writer
	// CPUProfile, when set, receives a CPU profile of the paced phase.
	CPUProfile io.Writer
}

func (c *CartLatencyConfig) defaults() {
	if c.Releases <= 0 {
		c.Releases = 200
	}
	if c.ListingsPerRelease <= 0 {
		c.ListingsPerRelease = 20
	}
	if c.Users <= 0 {
		c.Users = 50
	}
	if c.Rate <= 0 {
		c.Rate = 20
	}
	if c.For <= 0 {
		c.For = 10 * time.Second
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = cartbuilder.CommitInterval
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// CartLatencyResult is the request-to-carts latency: from the produce of a
// cart request to a read_committed consumer of carts.v1 seeing its result.
type CartLatencyResult struct {
	Requests      int
	P50, P99, Max time.Duration
	// SolveP50/SolveP99 are the processor's own solve times (CartTimings).
	SolveP50, SolveP99 time.Duration
	// ToProduced is p50 and p99 from the request's produce to the
	// processor producing its result (the result record's timestamp);
	// ToVisible from there to the consumer seeing it (commit and fetch).
	ToProduced, ToVisible [2]time.Duration
	// Carts is the mean number of carts per result.
	Carts          float64
	CommitInterval time.Duration
	RedisKind      string
}

// CartLatency measures request-to-carts latency with fresh listings: an
// embedded cluster and Redis, Releases x ListingsPerRelease listings all
// fresh, candidates for Users users, the cart builder as the service runs
// it, then requests at Rate for For.
func CartLatency(ctx context.Context, cfg CartLatencyConfig) (CartLatencyResult, error) {
	cfg.defaults()
	res := CartLatencyResult{CommitInterval: cfg.CommitInterval}
	bc, err := newBenchCluster(ctx, topics.UserPartitions)
	if err != nil {
		return res, err
	}
	defer bc.close()
	rd, err := embedded.StartRedis(ctx, embedded.RedisOptions{AllowInProcess: true})
	if err != nil {
		return res, err
	}
	defer rd.Close()
	res.RedisKind = rd.Kind
	rds, err := redis.Open(ctx, redis.Options{Addr: rd.Addr})
	if err != nil {
		return res, err
	}
	defer rds.Close()

	fmt.Fprintf(cfg.Progress, "cart-latency: %d releases x %d listings, %d users (redis: %s)\n", cfg.Releases, cfg.ListingsPerRelease, cfg.Users, rd.Kind)
	recs, releases := cartMarket(cfg)
	if err := bc.produceAll(ctx, recs); err != nil {
		return res, err
	}
	now := time.Now()
	for _, r := range releases {
		if err := rds.MarkScraped(ctx, r, now); err != nil {
			return res, err
		}
	}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	gc := stream.GlobalConfig{Brokers: bc.k.Addrs(), Logger: quiet, ReadCommitted: true}
	tables := cartbuilder.NewTables(stream.NewGlobalTable(topics.Listings(), gc), stream.NewGlobalTable(topics.Sellers(), gc),
		stream.NewGlobalTable(topics.ReleaseStats(), gc), stream.NewGlobalTable(topics.FxRates(), gc))
	p, err := cartbuilder.New(cartbuilder.Options{Tables: tables, Redis: rds, Logger: quiet, MaxNodes: 50_000_000})
	if err != nil {
		return res, err
	}
	r, err := stream.NewRunner(p, stream.Config{Brokers: bc.k.Addrs(), InstanceID: "bench", Logger: quiet,
		Metrics: prometheus.NewRegistry(), CommitInterval: cfg.CommitInterval})
	if err != nil {
		return res, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() { cancel(); <-done }()
	for !r.Ready() {
		select {
		case err := <-done:
			return res, fmt.Errorf("cart builder stopped: %v", err)
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := bc.waitCommitted(ctx, cartbuilder.Name, topics.UserCandidates().Name); err != nil {
		return res, err
	}

	out, err := kgo.NewClient(kgo.SeedBrokers(bc.k.Addrs()...), kgo.ConsumeTopics(topics.Carts().Name),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return res, err
	}
	defer out.Close()
	pacer, err := kgo.NewClient(kgo.SeedBrokers(bc.k.Addrs()...), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return res, err
	}
	defer pacer.Close()

	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat, solve, toOut, toSeen []time.Duration
	carts, errs := 0, 0
	var firstErr string
	seen := make(chan string, 1024)
	cctx, ccancel := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			fs := out.PollFetches(cctx)
			at := time.Now()
			fs.EachRecord(func(rec *kgo.Record) {
				var cr pb.CartResult
				if proto.Unmarshal(rec.Value, &cr) != nil {
					return
				}
				mu.Lock()
				if t, ok := sent[cr.RequestId]; ok {
					delete(sent, cr.RequestId)
					lat = append(lat, at.Sub(t))
					// The result record's timestamp is when the processor
					// produced it: before it, the request's way in and its
					// handling; after it, the commit and the fetch.
					toOut = append(toOut, rec.Timestamp.Sub(t))
					toSeen = append(toSeen, at.Sub(rec.Timestamp))
					solve = append(solve, time.Duration(cr.Timings.GetSolveMs())*time.Millisecond)
					carts += len(cr.Carts)
					if cr.Error != "" {
						errs++
						firstErr = cr.Error
					}
				}
				mu.Unlock()
				select {
				case seen <- cr.RequestId:
				default:
				}
			})
		}
	}()
	defer func() { ccancel(); <-consumed }()

	send := func(id string, user int) error {
		req := &pb.CartRequest{EventId: "req:" + id, RequestId: id, UserId: cartUser(user % cfg.Users),
			Criteria: &pb.CartCriteria{Budget: &pb.Money{AmountMinor: 15000, Currency: "EUR"}, MinQty: 1, WantlistRatio: 0.3, TopN: 20}}
		mu.Lock()
		now := time.Now()
		sent[id] = now
		mu.Unlock()
		req.EventTimeMs = now.UnixMilli()
		b, err := proto.Marshal(req)
		if err != nil {
			return err
		}
		pacer.Produce(ctx, &kgo.Record{Topic: topics.CartRequests().Name, Key: []byte(req.UserId), Value: b}, nil)
		return nil
	}
	// Warm up: one request per user partition path, answered before the
	// measurement starts (first fetches, first transaction).
	fmt.Fprintln(cfg.Progress, "cart-latency: warming up")
	for i := 0; i < 5; i++ {
		id := "warmup-" + strconv.Itoa(i)
		if err := send(id, i); err != nil {
			return res, err
		}
		if err := waitSeen(ctx, seen, id, 30*time.Second); err != nil {
			return res, err
		}
	}
	mu.Lock()
	lat, solve, toOut, toSeen, carts, errs = lat[:0], solve[:0], toOut[:0], toSeen[:0], 0, 0
	mu.Unlock()

	fmt.Fprintf(cfg.Progress, "cart-latency: %.0f requests/s for %s (commit interval %s)\n", cfg.Rate, cfg.For, cfg.CommitInterval)
	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err == nil {
			defer pprof.StopCPUProfile()
		}
	}
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	begin := time.Now()
	n := 0
	for time.Since(begin) < cfg.For {
		if err := send("req-"+strconv.Itoa(n), n); err != nil {
			return res, err
		}
		n++
		select {
		case <-tick.C:
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	// Wait for the last results.
	wait := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		left := len(sent)
		mu.Unlock()
		if left == 0 {
			break
		}
		if time.Now().After(wait) {
			return res, fmt.Errorf("%d of %d requests unanswered after 30s", left, n)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if errs > 0 {
		return res, fmt.Errorf("%d of %d results have an error (%s)", errs, n, firstErr)
	}
	for _, s := range [][]time.Duration{lat, solve, toOut, toSeen} {
		slices.Sort(s)
	}
	pct := func(s []time.Duration, p int) time.Duration { return s[len(s)*p/100] }
	res.ToProduced = [2]time.Duration{pct(toOut, 50), pct(toOut, 99)}
	res.ToVisible = [2]time.Duration{pct(toSeen, 50), pct(toSeen, 99)}
	res.Requests = len(lat)
	res.P50, res.P99, res.Max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	res.SolveP50, res.SolveP99 = solve[len(solve)/2], solve[len(solve)*99/100]
	res.Carts = float64(carts) / float64(len(lat))
	fmt.Fprintf(cfg.Progress, "cart-latency: p50 %s p99 %s max %s; solve p50 %s p99 %s; request to result produced p50 %s p99 %s, produced to visible p50 %s p99 %s; %.1f carts per result\n",
		res.P50, res.P99, res.Max, res.SolveP50, res.SolveP99, res.ToProduced[0], res.ToProduced[1], res.ToVisible[0], res.ToVisible[1], res.Carts)
	return res, nil
}

func waitSeen(ctx context.Context, seen <-chan string, id string, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case got := <-seen:
			if got == id {
				return nil
			}
		case <-t.C:
			return fmt.Errorf("no result for %s after %s", id, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func cartUser(i int) string { return "collector-" + strconv.Itoa(i) }

// cartMarket returns the records of the benchmark's market (rates,
// sellers, listings, release stats, candidates) and its release ids.
func cartMarket(cfg CartLatencyConfig) ([]*kgo.Record, []int64) {
	rng := rand.New(rand.NewPCG(7, 11))
	var recs []*kgo.Record
	add := func(topic string, key []byte, m proto.Message) {
		b, _ := proto.Marshal(m)
		recs = append(recs, &kgo.Record{Topic: topic, Key: key, Value: b})
	}
	for cur, r := range map[string]string{"USD": "1.0587", "GBP": "0.8441", "JPY": "162.35", "SEK": "11.273"} {
		add(topics.FxRates().Name, []byte(cur), &pb.FxRate{Currency: cur, UnitsPerEur: r, Date: "2026-11-20"})
	}
	countries := []string{"NL", "DE", "FR", "GB", "US", "SE", "JP"}
	currencies := []string{"EUR", "EUR", "EUR", "GBP", "USD", "SEK", "JPY"}
	const sellers = 150
	for s := 0; s < sellers; s++ {
		name := "seller-" + strconv.Itoa(s)
		add(topics.Sellers().Name, []byte(name), &pb.Seller{Username: name, SellerId: int64(s + 1), RatingPercent: 90 + rng.Float64()*10,
			HasRating: true, RatingsCount: int64(rng.IntN(5000)), ShipsFrom: countries[s%len(countries)]})
	}
	releases := make([]int64, cfg.Releases)
	lid := int64(1_000_000)
	for i := range releases {
		rel := int64(10_000 + i)
		releases[i] = rel
		var prices []int64
		for j := 0; j < cfg.ListingsPerRelease; j++ {
			s := rng.IntN(sellers)
			cur := currencies[s%len(currencies)]
			eurCents := int64(300 + rng.IntN(4000))
			price := &pb.Money{AmountMinor: eurCents, Currency: "EUR"}
			switch cur {
			case "JPY":
				price = &pb.Money{AmountMinor: eurCents * 162 / 100, Currency: cur}
			case "GBP", "USD", "SEK":
				price = &pb.Money{AmountMinor: eurCents, Currency: cur}
			}
			prices = append(prices, eurCents)
			l := &pb.Listing{ListingId: lid, ReleaseId: rel, Seller: "seller-" + strconv.Itoa(s), SellerId: int64(s + 1), Price: price,
				ShippingState: pb.ShippingState_SHIPPING_STATE_PRICED, Shipping: &pb.Money{AmountMinor: price.AmountMinor / 4, Currency: cur},
				Media: pb.MediaGrade(1 + rng.IntN(5)), Sleeve: pb.SleeveGrade(1 + rng.IntN(5)), ShipsFrom: countries[s%len(countries)],
				Available: true, SeenAtMs: time.Now().UnixMilli()}
			add(topics.Listings().Name, []byte(strconv.FormatInt(lid, 10)), l)
			lid++
		}
		slices.Sort(prices)
		add(topics.ReleaseStats().Name, []byte(strconv.FormatInt(rel, 10)), &pb.ReleaseStats{ReleaseId: rel, ListingCount: int32(len(prices)),
			MinPrice: &pb.Money{AmountMinor: prices[0], Currency: "EUR"}, MedianPrice: &pb.Money{AmountMinor: prices[len(prices)/2], Currency: "EUR"}})
	}
	// Every user: all releases, 70% recommended (best first), 30% wanted.
	for u := 0; u < cfg.Users; u++ {
		perm := rng.Perm(len(releases))
		c := &pb.Candidates{UserId: cartUser(u), ModelVersion: "bench"}
		nRec := len(perm) * 7 / 10
		for i, k := range perm {
			cd := &pb.Candidate{ReleaseId: releases[k]}
			if i < nRec {
				cd.Score, cd.Source = 1-float64(i)/float64(nRec+1), pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION
			} else {
				cd.Source = pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST
			}
			c.Candidates = append(c.Candidates, cd)
		}
		add(topics.UserCandidates().Name, []byte(c.UserId), c)
	}
	return recs, releases
}

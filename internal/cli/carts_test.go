package cli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/discogs/fakemarket"
	"github.com/cratestream/cratestream/connectors/ecb"
	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/ops"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/testutil"
	"github.com/cratestream/cratestream/processors/cartbuilder"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

type cartEnv struct {
	t       *testing.T
	k       []string
	cl      *kgo.Client
	rds     *redis.Store
	redis   string
	fake    *fakemarket.Market
	state   string
	results *kgo.Client
	seen    map[string][]*pb.CartResult
	at      time.Time // the fake marketplace's clock
}

// newCartEnv is the stack the cart tests run the pipeline on: the embedded
// Kafka with every topic and the ECB rates, a private Redis and a fake
// marketplace of 60 releases at a fixed time.
func newCartEnv(ctx context.Context, t *testing.T) *cartEnv {
	t.Helper()
	e := &cartEnv{t: t, k: testutil.Kafka(t).Addrs(), redis: testutil.Redis(t), state: t.TempDir(),
		seen: map[string][]*pb.CartResult{}, at: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	var err error
	if e.cl, err = kgo.NewClient(kgo.SeedBrokers(e.k...), kgo.MetadataMinAge(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cl.Close)
	if _, err := stream.CreateTopics(ctx, kadm.NewClient(e.cl), topics.Catalogue(), 1); err != nil {
		t.Fatal(err)
	}
	if err := produceRates(ctx, e.cl, ecb.Default()); err != nil {
		t.Fatal(err)
	}
	if e.fake, err = fakemarket.New(fakemarket.Config{NumReleases: 60, Seed: 9, Clock: func() time.Time { return e.at }}); err != nil {
		t.Fatal(err)
	}
	return e
}

// busiest returns the n releases with the most listings, most first: a
// wantlist of them always finds sellers.
func (e *cartEnv) busiest(n int) []int64 {
	rs := e.fake.Releases()
	listings := map[int64]int{}
	for _, r := range rs {
		listings[r] = len(e.fake.Listings(r, e.at))
	}
	sort.SliceStable(rs, func(i, j int) bool { return listings[rs[i]] > listings[rs[j]] })
	return rs[:n]
}

// wantAdds are the interactions of user adding releases to the wantlist,
// in order.
func wantAdds(user string, releases []int64) []*pb.Interaction {
	var ins []*pb.Interaction
	for i, r := range releases {
		ins = append(ins, &pb.Interaction{EventId: "w" + strconv.Itoa(i), EventTimeMs: int64(1000 + i),
			UserId: user, ReleaseId: r, Kind: pb.InteractionKind_INTERACTION_KIND_WANT_ADD})
	}
	return ins
}

// cartRequest asks for the top five carts of user within 500 EUR, from the
// wantlist only.
func cartRequest(id, user string) *pb.CartRequest {
	return &pb.CartRequest{RequestId: id, UserId: user, EventTimeMs: time.Now().UnixMilli(),
		Criteria: &pb.CartCriteria{Budget: &pb.Money{AmountMinor: 50000, Currency: "EUR"}, MinQty: 1, WantlistRatio: 1, TopN: 5}}
}

func (e *cartEnv) deps(ctx context.Context) *deps {
	srv := ops.NewServer()
	bound, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("CRATESTREAM_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	d := &deps{env: &Env{Logger: logger, Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }},
		brokers: e.k, srv: srv, fake: e.fake,
		streamCf: stream.Config{Brokers: e.k, InstanceID: "carts", StateDir: e.state, AdvertiseAddr: bound,
			Logger: logger, Metrics: srv.Registry, CommitInterval: 30 * time.Millisecond}}
	d.set.redis.addr, d.set.scrapeParallel, d.set.cartDeadline = e.redis, 4, 20*time.Second
	d.set.lookup.value = "carts test lookup secret" // the gateway reads recommendations through lookups
	return d
}

// start runs services until the returned stop is called.
func (e *cartEnv) start(ctx context.Context, names ...string) (*deps, func()) {
	d := e.deps(ctx)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- startServices(sctx, d, names) }()
	return d, func() { cancel(); <-done; d.close() }
}

func (e *cartEnv) produce(topic, key string, m proto.Message) {
	b, err := proto.Marshal(m)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte(key), Value: b}).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// result waits for the carts of request id.
func (e *cartEnv) result(ctx context.Context, id string) *pb.CartResult {
	for len(e.seen[id]) == 0 {
		if dl, _ := ctx.Deadline(); time.Until(dl) < 5*time.Second {
			st, _, _ := e.rds.Status(context.Background(), id)
			dump := func(topic string, m func() proto.Message) {
				cl, _ := kgo.NewClient(kgo.SeedBrokers(e.k...), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
				pctx, c := context.WithTimeout(context.Background(), 2*time.Second)
				for pctx.Err() == nil {
					cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
						v := m()
						proto.Unmarshal(r.Value, v)
						e.t.Logf("%s p%d o%d %s: %.200v", topic, r.Partition, r.Offset, r.Key, v)
					})
				}
				c()
				cl.Close()
			}
			dump(topics.ScrapeRequests().Name, func() proto.Message { return &pb.ScrapeRequest{} })
			dump(topics.ScrapeDone().Name, func() proto.Message { return &pb.ScrapeDone{} })
			e.t.Fatalf("no carts for %s (status %v)", id, st)
		}
		e.poll(ctx, time.Second)
	}
	return e.seen[id][0]
}

func (e *cartEnv) poll(ctx context.Context, d time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	e.results.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
		var res pb.CartResult
		if proto.Unmarshal(r.Value, &res) == nil {
			e.seen[res.RequestId] = append(e.seen[res.RequestId], &res)
		}
	})
}

// Profile -> candidates -> cart request -> scrapes by the real scraper
// against the fake marketplace -> carts on carts.v1 and status in Redis;
// then a crash mid-request still gives exactly one result.
func TestCartsEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if d, ok := t.Deadline(); ok && time.Until(d) < 5*time.Minute {
		ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
		defer cancel()
	}
	e := newCartEnv(ctx, t)
	var err error
	if e.rds, err = redis.Open(ctx, redis.Options{Addr: e.redis}); err != nil {
		t.Fatal(err)
	}
	defer e.rds.Close()
	if e.results, err = kgo.NewClient(kgo.SeedBrokers(e.k...), kgo.ConsumeTopics(topics.Carts().Name), kgo.FetchIsolationLevel(kgo.ReadCommitted())); err != nil {
		t.Fatal(err)
	}
	defer e.results.Close()

	// alice wants the eight releases with the most listings.
	wanted := map[int64]bool{}
	busiest := e.busiest(8)
	for _, r := range busiest {
		wanted[r] = true
	}
	for _, in := range wantAdds("alice", busiest) {
		e.produce(topics.Interactions().Name, "alice", in)
	}
	_, stopMain := e.start(ctx, "profile", "recommend", "scraper", "cartbuilder")

	request := func(id string) { e.produce(topics.CartRequests().Name, "alice", cartRequest(id, "alice")) }
	e.waitCandidates(ctx, "alice", 8)

	request("cart-1")
	res := e.result(ctx, "cart-1")
	if res.Error != "" || len(res.Carts) == 0 {
		t.Fatalf("cart-1: %v", res)
	}
	for _, c := range res.Carts {
		sum := int64(0)
		for _, it := range c.Items {
			if !wanted[it.ReleaseId] {
				t.Errorf("cart holds release %d, not wanted", it.ReleaseId)
			}
			if it.Source != "wantlist" || it.Score != 1 {
				t.Errorf("item %d: source %q score %v", it.ListingId, it.Source, it.Score)
			}
			sum += it.Price.AmountMinor
		}
		if c.Total.AmountMinor > 50000 || c.Total.AmountMinor != c.Subtotal.AmountMinor+c.Shipping.AmountMinor {
			t.Errorf("cart %d: subtotal %v shipping %v total %v", c.Rank, c.Subtotal, c.Shipping, c.Total)
		}
		if sum != c.Subtotal.AmountMinor {
			t.Errorf("cart %d: items sum to %d, subtotal %d", c.Rank, sum, c.Subtotal.AmountMinor)
		}
	}
	if len(res.StaleReleases) != 0 {
		t.Errorf("stale after scraping: %v", res.StaleReleases)
	}
	st, ok, err := e.rds.Status(ctx, "cart-1")
	if err != nil || !ok || st.Stage != "done" || !st.Finished || st.Total != 8 || st.Done != 8 {
		t.Fatalf("status of cart-1 = %v %v %v", st, ok, err)
	}

	// Fresh listings now: a second request answers without scraping.
	request("cart-2")
	if r2 := e.result(ctx, "cart-2"); len(r2.Carts) == 0 || r2.Timings.WaitMs > 1000 {
		t.Errorf("cart-2 with fresh listings: %v", r2)
	}

	// A crash mid-request: stop everything, make the releases stale, ask,
	// kill the cart builder while it waits for scrapes (no scraper runs),
	// restart it and the scraper: exactly one result.
	stopMain()
	for r := range wanted {
		if err := e.rds.Client().Del(ctx, "cs:fresh:"+strconv.FormatInt(r, 10)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	d, stopCB := e.start(ctx, "cartbuilder")
	request("cart-3")
	for {
		st, ok, _ := e.rds.Status(ctx, "cart-3")
		if ok && st.Stage == "scraping" {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("cart-3 never started scraping")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // its pending state committed
	for _, r := range d.runners() {
		if r.Processor().Name() == cartbuilder.Name {
			r.Kill()
		}
	}
	stopCB()
	_, stopAgain := e.start(ctx, "cartbuilder", "scraper")
	defer stopAgain()
	r3 := e.result(ctx, "cart-3")
	if len(r3.Carts) == 0 {
		t.Fatalf("cart-3: %v", r3)
	}
	e.poll(ctx, 2*time.Second) // would show a duplicate
	if n := len(e.seen["cart-3"]); n != 1 {
		t.Fatalf("cart-3 answered %d times", n)
	}
	for _, id := range []string{"cart-1", "cart-2"} {
		if n := len(e.seen[id]); n != 1 {
			t.Errorf("%s answered %d times", id, n)
		}
	}
}

// waitCandidates waits until the recommend processor has published at
// least n candidates for user and the cart builder has read them: a request
// with none fails, and candidates and requests are different topics, with
// no order between them.
func (e *cartEnv) waitCandidates(ctx context.Context, user string, n int) {
	e.t.Helper()
	cands, err := kgo.NewClient(kgo.SeedBrokers(e.k...), kgo.ConsumeTopics(topics.UserCandidates().Name), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cands.Close()
	var seen *kgo.Record
	for got := 0; got < n; {
		if ctx.Err() != nil {
			e.t.Fatalf("%d candidates for %s, want %d", got, user, n)
		}
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		cands.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			var c pb.Candidates
			if proto.Unmarshal(r.Value, &c) == nil && c.UserId == user {
				got, seen = len(c.Candidates), r
			}
		})
		pcancel()
	}
	e.waitConsumed(ctx, cartbuilder.Name, seen)
}

// waitConsumed waits until group has committed past rec.
func (e *cartEnv) waitConsumed(ctx context.Context, group string, rec *kgo.Record) {
	adm := kadm.NewClient(e.cl)
	for {
		if committed, err := adm.FetchOffsets(ctx, group); err == nil {
			if c, ok := committed.Lookup(rec.Topic, rec.Partition); ok && c.At > rec.Offset {
				return
			}
		}
		if ctx.Err() != nil {
			e.t.Fatalf("%s never consumed %s/%d@%d", group, rec.Topic, rec.Partition, rec.Offset)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

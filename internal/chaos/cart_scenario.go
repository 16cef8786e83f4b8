package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/ecb"
	"github.com/cratestream/cratestream/connectors/redis"
	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// The cart builder's fixture: fresh releases (scraped recently, per their
// freshness keys in Redis) that every user's recommendations come from, and
// stale ones (never scraped) on some wantlists, whose requests wait for the
// deadline (no scraper runs) and are then built from the fresh ones.
const (
	cartUsers      = 60
	cartFresh      = 40 // releases 1001..1040
	cartStale      = 10 // releases 2001..2010
	cartDeadline   = 2 * time.Second
	cartRate       = 15 // requests per second
	cartRepeatProb = 0.1
)

func cartUser(i int) string { return "chaos-user-" + strconv.Itoa(i) }

// rec encodes a record of a typed topic.
func rec[K, V any](t stream.Topic[K, V], key K, value V) (*kgo.Record, error) {
	k, err := t.Key.Append(nil, key)
	if err != nil {
		return nil, err
	}
	v, err := t.Value.Append(nil, value)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: t.Name, Key: k, Value: v}, nil
}

func cartFixture(rng *rand.Rand) ([]*kgo.Record, error) {
	var recs []*kgo.Record
	add := func(r *kgo.Record, err error) error {
		if err != nil {
			return err
		}
		recs = append(recs, r)
		return nil
	}
	for _, fx := range ecb.Default() {
		if err := add(rec(topics.FxRates(), fx.Currency, fx)); err != nil {
			return nil, err
		}
	}
	for _, s := range []*pb.Seller{{Username: "s1", RatingPercent: 99.5, HasRating: true, ShipsFrom: "NL"},
		{Username: "s2", RatingPercent: 97, HasRating: true, ShipsFrom: "DE"}} {
		if err := add(rec(topics.Sellers(), s.Username, s)); err != nil {
			return nil, err
		}
	}
	eur := func(c int64) *pb.Money { return &pb.Money{AmountMinor: c, Currency: "EUR"} }
	releases := func(first int64, n int) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = first + int64(i)
		}
		return out
	}
	fresh, stale := releases(1001, cartFresh), releases(2001, cartStale)
	for _, r := range append(append([]int64{}, fresh...), stale...) {
		for i := range int64(3) {
			seller, from := "s1", "NL"
			if i%2 == 1 {
				seller, from = "s2", "DE"
			}
			l := &pb.Listing{ListingId: r*10 + i, ReleaseId: r, Seller: seller, Price: eur(500 + i*300),
				ShippingState: pb.ShippingState_SHIPPING_STATE_PRICED, Shipping: eur(400),
				Media: pb.MediaGrade_MEDIA_GRADE_NEAR_MINT, Sleeve: pb.SleeveGrade_SLEEVE_GRADE_VERY_GOOD_PLUS, ShipsFrom: from, Available: true}
			if err := add(rec(topics.Listings(), l.ListingId, l)); err != nil {
				return nil, err
			}
		}
		if err := add(rec(topics.ReleaseStats(), r, &pb.ReleaseStats{ReleaseId: r, ListingCount: 3, MedianPrice: eur(800)})); err != nil {
			return nil, err
		}
	}
	for u := range cartUsers {
		c := &pb.Candidates{UserId: cartUser(u)}
		for i, j := range rng.Perm(cartFresh)[:8] {
			c.Candidates = append(c.Candidates, &pb.Candidate{ReleaseId: fresh[j], Score: 0.9 - float64(i)/20,
				Source: pb.CandidateSource_CANDIDATE_SOURCE_RECOMMENDATION})
		}
		if u%3 == 0 {
			for _, j := range rng.Perm(cartStale)[:3] {
				c.Candidates = append(c.Candidates, &pb.Candidate{ReleaseId: stale[j], Source: pb.CandidateSource_CANDIDATE_SOURCE_WANTLIST})
			}
		}
		if err := add(rec(topics.UserCandidates(), c.UserId, c)); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// cartbuilder runs the real cart builder (two instances, exactly-once, a
// private redis-server) under kills while cart requests arrive, some of
// them twice: exactly one CartResult per request id, with carts.
func (s *scen) cartbuilder(ctx context.Context) error {
	if err := s.startCluster(ctx); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	rs, err := embedded.StartRedis(rctx, embedded.RedisOptions{})
	cancel()
	if err != nil {
		return err
	}
	s.cleanup = append(s.cleanup, rs.Close)
	rds, err := redis.Open(ctx, redis.Options{Addr: rs.Addr})
	if err != nil {
		return err
	}
	defer rds.Close()
	now := time.Now()
	for r := int64(1001); r < 1001+cartFresh; r++ {
		if err := rds.MarkScraped(ctx, r, now); err != nil {
			return err
		}
	}
	fixture, err := cartFixture(s.rng)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.cluster.Brokers()...))
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = cl.ProduceSync(pctx, fixture...).FirstErr()
	cancel()
	cl.Close()
	if err != nil {
		return fmt.Errorf("produce the fixture: %w", err)
	}

	for _, id := range []string{"a", "b"} {
		in := s.newInstance("cartbuilder", s.name+"-"+id, "--redis", rs.Addr, "--cart-deadline", cartDeadline.String())
		if err := in.start(""); err != nil {
			return err
		}
	}
	if err := s.waitGroupFormed(ctx, topics.UserPartitions); err != nil {
		return err
	}
	// Requests and candidates are separate inputs with no order between
	// them: ask only once the candidates are in the stores.
	if err := s.waitConsumed(ctx, "cartbuilder", topics.UserCandidates().Name); err != nil {
		return err
	}

	// Request n is new, or (now and then) a repeat of an earlier one: the
	// same request id must still get one result.
	reqRNG := rand.New(rand.NewPCG(s.cfg.Seed, 77))
	f, err := s.startFeederRate(cartRate, func(n int64) *kgo.Record {
		id := n
		if n > 0 && reqRNG.Float64() < cartRepeatProb {
			id = reqRNG.Int64N(n)
		}
		u := cartUser(int(id % cartUsers))
		ratio := 0.0
		if id%cartUsers%3 == 0 {
			ratio = 0.5 // includes stale wantlist releases: waits for the deadline
		}
		req := &pb.CartRequest{EventId: "chaos-req:" + strconv.FormatInt(id, 10), EventTimeMs: time.Now().UnixMilli(),
			RequestId: "chaos-" + strconv.FormatInt(id, 10), UserId: u,
			Criteria: &pb.CartCriteria{Budget: &pb.Money{AmountMinor: 5000, Currency: "EUR"}, MinQty: 1, WantlistRatio: ratio, TopN: 5}}
		v, _ := proto.Marshal(req)
		return &kgo.Record{Topic: topics.CartRequests().Name, Key: []byte(u), Value: v}
	})
	if err != nil {
		return err
	}
	plan := killPlan{partitions: topics.UserPartitions, failpoints: failpointsOf("exactly-once"), fpProb: 0.3, takeoverProb: 0.25,
		gapMin: time.Second, gapMax: 4 * time.Second}
	if err := s.chaos(ctx, plan); err != nil {
		_, _ = f.stop(ctx)
		return err
	}
	verdict, err := s.finish(ctx, f, checkArgs{kind: KindCartbuilder, mode: "exactly-once", redis: rs.Addr})
	s.res.add("mode", "exactly-once")
	s.killFields(len(s.insts))
	if verdict != nil {
		s.res.add("requests", verdict.Keys)
		s.report(verdict)
	}
	s.seconds()
	return err
}

// startFeederRate starts a feeder at its own rate on the scenario's cluster.
func (s *scen) startFeederRate(rate int, gen func(n int64) *kgo.Record) (*feeder, error) {
	return startFeeder(s.cluster.Brokers(), rate, gen)
}

// waitConsumed waits until group has committed offsets at the end of
// every partition of topic.
func (s *scen) waitConsumed(ctx context.Context, group, topic string) error {
	adm, closeAdm, err := s.admin()
	if err != nil {
		return err
	}
	defer closeAdm()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		ends, err := TopicEnds(ctx, adm, topic)
		if err == nil {
			committed, cerr := adm.FetchOffsets(ctx, group)
			if cerr == nil {
				done := true
				for p, end := range ends.HWM {
					if c, ok := committed.Lookup(topic, p); end > 0 && (!ok || c.At < end) {
						done = false
					}
				}
				if done {
					return nil
				}
			}
		}
		if err := s.reap(); err != nil {
			return err
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("group %s did not consume %s: %w", group, topic, err)
		}
	}
}

package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// side holds what a listing row is enriched with: the FX rates of
// fx-rates.v1 (for price_eur_minor) and every seller's rating of sellers.v1
// (for seller_rating). Listings are partitioned by listing id, so a group
// member cannot own the sellers or rates its listings need: each sink
// instance reads both compacted topics whole, outside the group, and keeps
// following them. Memory is one small entry per currency and per seller.
type side struct {
	mu      sync.RWMutex
	rates   map[string]fxRate
	ratings map[string]float32

	log     *slog.Logger
	m       *metrics
	fx      stream.Topic[string, *pb.FxRate]
	sellers stream.Topic[string, *pb.Seller]
}

func newSide(log *slog.Logger, m *metrics) *side {
	return &side{rates: map[string]fxRate{}, ratings: map[string]float32{}, log: log, m: m,
		fx: topics.FxRates(), sellers: topics.Sellers()}
}

// rate returns the units-per-EUR rate of currency.
func (s *side) rate(currency string) (fxRate, bool) {
	r, ok := s.rates[currency]
	return r, ok
}

func (s *side) apply(rec *kgo.Record) error {
	switch rec.Topic {
	case s.fx.Name:
		cur := string(rec.Key)
		if rec.Value == nil {
			s.mu.Lock()
			delete(s.rates, cur)
			s.mu.Unlock()
			return nil
		}
		v, err := s.fx.Value.Decode(rec.Value)
		if err != nil {
			return fmt.Errorf("decode fx rate: %w", err)
		}
		if v.Currency != "" {
			cur = v.Currency
		}
		if !isCurrencyCode(cur) {
			return fmt.Errorf("fx rate: bad currency %q", cur)
		}
		r, err := parseRate(cur, v.UnitsPerEur)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.rates[cur] = r
		s.mu.Unlock()
		s.m.fxRates.Set(float64(s.size(true)))
	case s.sellers.Name:
		name := string(rec.Key)
		if rec.Value == nil {
			s.mu.Lock()
			delete(s.ratings, name)
			s.mu.Unlock()
			return nil
		}
		v, err := s.sellers.Value.Decode(rec.Value)
		if err != nil {
			return fmt.Errorf("decode seller: %w", err)
		}
		if v.Username != "" {
			name = v.Username
		}
		var rating float32
		if v.HasRating && v.RatingPercent >= 0 && v.RatingPercent <= 100 {
			rating = float32(v.RatingPercent)
		}
		s.mu.Lock()
		s.ratings[name] = rating
		s.mu.Unlock()
		s.m.sellersCached.Set(float64(s.size(false)))
	}
	return nil
}

func (s *side) size(rates bool) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if rates {
		return len(s.rates)
	}
	return len(s.ratings)
}

// follow reads fx-rates.v1 and sellers.v1 from the start until ctx ends.
// ready is closed once everything present at the start has been applied
// (or loadTimeout passed: the sink then starts with what it has, and the
// missing rates and ratings arrive as it goes).
func (s *side) follow(ctx context.Context, brokers []string, extra []kgo.Opt, loadTimeout time.Duration, ready chan<- struct{}) error {
	names := []string{topics.FxRates().Name, topics.Sellers().Name}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(names...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		close(ready)
		return fmt.Errorf("side consumer: %w", err)
	}
	defer cl.Close()

	// What "caught up" means: every partition's end offset at start.
	// Transaction markers at a partition's tail are never delivered, so a
	// partition also counts as done once a fetch reports its last stable
	// offset reached.
	target := map[string]map[int32]int64{}
	lctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(lctx, names...)
	if err != nil {
		s.log.Warn("clickhouse sink: cannot list fx/seller end offsets; starting without waiting", "err", err)
	} else {
		starts, _ := adm.ListStartOffsets(lctx, names...)
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				return
			}
			if so, ok := starts.Lookup(o.Topic, o.Partition); ok && so.Err == nil && so.Offset >= o.Offset {
				return // empty
			}
			if target[o.Topic] == nil {
				target[o.Topic] = map[int32]int64{}
			}
			target[o.Topic][o.Partition] = o.Offset
		})
	}
	remaining := 0
	for _, ps := range target {
		remaining += len(ps)
	}
	done := func(topic string, p int32) {
		if _, ok := target[topic][p]; ok {
			delete(target[topic], p)
			remaining--
		}
	}
	signalled := false
	signal := func() {
		if !signalled {
			signalled = true
			close(ready)
		}
	}
	if remaining == 0 {
		signal()
	}
	defer signal()
	for {
		pctx := ctx
		var pcancel context.CancelFunc = func() {}
		if !signalled {
			pctx, pcancel = context.WithTimeout(ctx, 200*time.Millisecond)
		}
		fs := cl.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				s.log.Warn("clickhouse sink: fx/seller fetch", "topic", t, "partition", p, "err", err)
			}
		})
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			for _, rec := range p.Records {
				if err := s.apply(rec); err != nil {
					s.m.sideInvalid.WithLabelValues(rec.Topic).Inc()
					s.log.Warn("clickhouse sink: skipping bad fx/seller record", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "err", err)
				}
				if end, ok := target[rec.Topic][rec.Partition]; ok && rec.Offset+1 >= end {
					done(rec.Topic, rec.Partition)
				}
			}
			if end, ok := target[p.Topic][p.Partition]; ok && p.LastStableOffset >= end && len(p.Records) > 0 && p.Records[len(p.Records)-1].Offset+1 >= p.LastStableOffset {
				done(p.Topic, p.Partition)
			}
		})
		if !signalled && (remaining == 0 || lctx.Err() != nil) {
			if remaining > 0 {
				s.log.Warn("clickhouse sink: fx rates and seller ratings not fully loaded in time; starting anyway", "partitions_behind", remaining)
			}
			signal()
		}
	}
}

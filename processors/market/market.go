// Package market is the market processor: listings.v1 (keyed by listing)
// is re-keyed by release through an internal topic, each release's live
// listings are kept in a changelog-backed store, and every change emits the
// release's summary to release-stats.v1: listing count, minimum and median
// price converted to EUR through fx-rates.v1, and the last successful scrape
// (from scrape-done.v1).
package market

import (
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"

	"github.com/cratestream/cratestream/internal/money"
	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// Name is the processor's name and consumer group.
const Name = "market"

// Options configure the processor.
type Options struct {
	Mode stream.Mode
	// FX is the table of rates; the caller builds it so that it can be
	// shared, and the runner runs it.
	FX *stream.GlobalTable[string, *pb.FxRate]
}

// NewFX returns the global table of fx-rates.v1 the processor converts with.
func NewFX(cfg stream.GlobalConfig) *stream.GlobalTable[string, *pb.FxRate] {
	return stream.NewGlobalTable(topics.FxRates(), cfg)
}

// New returns the market processor and its per-release store.
func New(o Options) (*stream.Processor, *stream.Table[int64, *pb.ReleaseMarket]) {
	p := stream.NewProcessor(Name, o.Mode)
	if o.FX != nil {
		p.UseGlobal(o.FX)
	}
	listings := topics.Listings()
	int64s := stream.Codec[int64](stream.Int64Codec{})
	// listing id -> release id, so a tombstone (which carries no value)
	// can be routed to its release.
	releaseOf := stream.NewTable(p, "listing-release", int64s, int64s)
	changes := stream.RepartitionTopic(p, "by-release", int64s,
		stream.Codec[*pb.ListingChange](stream.Proto[pb.ListingChange]()), "cratestream.v1.ListingChange")
	markets := stream.NewTable(p, "releases", int64s, stream.Codec[*pb.ReleaseMarket](stream.Proto[pb.ReleaseMarket]()))
	stats := topics.ReleaseStats()
	p.Output(stats.TopicSpec)

	stream.Consume(p, listings, func(c *stream.Ctx, id int64, l *pb.Listing) error {
		prev, had, err := releaseOf.Get(c, id)
		if err != nil {
			return err
		}
		if c.Tombstone() {
			if !had {
				return nil // never seen: nothing to remove
			}
			if err := releaseOf.Delete(c, id); err != nil {
				return err
			}
			return stream.Emit(c, changes, prev, &pb.ListingChange{ListingId: id, ReleaseId: prev, Deleted: true})
		}
		if err := validate(id, l); err != nil {
			return err
		}
		if had && prev != l.ReleaseId {
			// Moved to another release (a corrected listing): remove
			// it from the old one.
			if err := stream.Emit(c, changes, prev, &pb.ListingChange{ListingId: id, ReleaseId: prev, Deleted: true}); err != nil {
				return err
			}
		}
		if err := releaseOf.Put(c, id, l.ReleaseId); err != nil {
			return err
		}
		return stream.Emit(c, changes, l.ReleaseId, &pb.ListingChange{ListingId: id, ReleaseId: l.ReleaseId, Listing: l})
	})

	stream.Consume(p, changes, func(c *stream.Ctx, release int64, ch *pb.ListingChange) error {
		m, _, err := markets.Get(c, release)
		if err != nil {
			return err
		}
		if m == nil {
			m = &pb.ReleaseMarket{ReleaseId: release}
		}
		if !apply(m, ch) {
			return nil
		}
		if err := markets.Put(c, release, m); err != nil {
			return err
		}
		return stream.Emit(c, stats, release, Summarize(m, rateLookup(o.FX), c.Now().UnixMilli(), eventID(c)))
	})

	stream.Broadcast(p, topics.ScrapeDone(), func(c *stream.Ctx, release int64, sd *pb.ScrapeDone) error {
		// Every task sees every scrape; only the owner of the release
		// acts.
		if stream.PartitionFor([]byte(strconv.FormatInt(release, 10)), int32(listings.Partitions)) != c.Partition() {
			return nil
		}
		if sd == nil || sd.Error != "" || sd.ScrapedAtMs == 0 {
			return nil
		}
		m, _, err := markets.Get(c, release)
		if err != nil {
			return err
		}
		if m == nil {
			m = &pb.ReleaseMarket{ReleaseId: release}
		}
		if sd.ScrapedAtMs <= m.LastScrapedMs {
			return nil
		}
		m.LastScrapedMs = sd.ScrapedAtMs
		if err := markets.Put(c, release, m); err != nil {
			return err
		}
		return stream.Emit(c, stats, release, Summarize(m, rateLookup(o.FX), c.Now().UnixMilli(), eventID(c)))
	}, stream.BroadcastFromStart) // scrapes older than this processor still date their releases
	return p, markets
}

func eventID(c *stream.Ctx) string {
	return fmt.Sprintf("market:%s:%d:%d", c.Topic(), c.Partition(), c.Offset())
}

func validate(id int64, l *pb.Listing) error {
	switch {
	case l.ListingId != id:
		return stream.Invalidf("listing %d arrived under key %d", l.ListingId, id)
	case l.ReleaseId <= 0:
		return stream.Invalidf("listing %d: release_id %d is not positive", id, l.ReleaseId)
	case l.Price == nil:
		return stream.Invalidf("listing %d has no price", id)
	case l.Price.AmountMinor < 0:
		return stream.Invalidf("listing %d: negative price %d", id, l.Price.AmountMinor)
	case !money.Known(l.Price.Currency):
		return stream.Invalidf("listing %d: unknown currency %q", id, l.Price.Currency)
	}
	return nil
}

// apply updates m with ch and reports whether anything changed.
func apply(m *pb.ReleaseMarket, ch *pb.ListingChange) bool {
	i := sort.Search(len(m.Listings), func(i int) bool { return m.Listings[i].ListingId >= ch.ListingId })
	found := i < len(m.Listings) && m.Listings[i].ListingId == ch.ListingId
	switch {
	case ch.Deleted && found:
		m.Listings = slices.Delete(m.Listings, i, i+1)
		return true
	case ch.Deleted:
		return false
	case found:
		old := m.Listings[i].Price
		if old.GetAmountMinor() == ch.Listing.Price.AmountMinor && old.GetCurrency() == ch.Listing.Price.Currency {
			return false
		}
		m.Listings[i].Price = ch.Listing.Price
		return true
	default:
		m.Listings = slices.Insert(m.Listings, i, &pb.ListingPrice{ListingId: ch.ListingId, Price: ch.Listing.Price})
		return true
	}
}

// RateFunc returns the rate of a currency (units per EUR).
type RateFunc func(currency string) (*big.Rat, bool)

func rateLookup(fx *stream.GlobalTable[string, *pb.FxRate]) RateFunc {
	return func(cur string) (*big.Rat, bool) {
		if cur == "EUR" {
			return big.NewRat(1, 1), true
		}
		if fx == nil {
			return nil, false
		}
		r, ok := fx.Get(cur)
		if !ok {
			return nil, false
		}
		rat, err := money.ParseRate(r.UnitsPerEur)
		return rat, err == nil
	}
}

// Summarize computes the stats of a release: the count of live listings,
// the minimum and the (lower) median of their prices in EUR. Listings in a
// currency without a rate count but do not enter the prices.
func Summarize(m *pb.ReleaseMarket, rate RateFunc, nowMs int64, eventID string) *pb.ReleaseStats {
	st := &pb.ReleaseStats{
		EventId:       eventID,
		EventTimeMs:   nowMs,
		ReleaseId:     m.ReleaseId,
		ListingCount:  int32(len(m.Listings)),
		LastScrapedMs: m.LastScrapedMs,
	}
	eur := make([]int64, 0, len(m.Listings))
	for _, l := range m.Listings {
		r, ok := rate(l.Price.GetCurrency())
		if !ok {
			continue
		}
		eur = append(eur, money.ToEUR(l.Price, r))
	}
	if len(eur) > 0 {
		slices.Sort(eur)
		st.MinPrice = &pb.Money{AmountMinor: eur[0], Currency: "EUR"}
		st.MedianPrice = &pb.Money{AmountMinor: eur[(len(eur)-1)/2], Currency: "EUR"}
	}
	return st
}

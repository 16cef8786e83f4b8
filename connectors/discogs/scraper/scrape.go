package scraper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/connectors/discogs/marketplace"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// Scrape fetches every page of release, produces its listings, sellers and
// tombstones, records the scrape in Redis and emits scrape-done for
// requestIDs. A failed scrape changes no listing and emits scrape-done
// with the error.
func (s *Scraper) Scrape(ctx context.Context, release int64, requestIDs []string) (*pb.ScrapeDone, error) {
	start := time.Now()
	now := s.cfg.Now()
	done := &pb.ScrapeDone{ReleaseId: release, RequestIds: requestIDs}
	listings, sellers, err := s.fetchAll(ctx, release, now)
	if err == nil {
		err = s.publish(ctx, release, listings, sellers, now, done)
	}
	s.m.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.m.scrapes.WithLabelValues("failed").Inc()
		done.Error = err.Error()
		s.cfg.Logger.Warn("scrape failed", "release", release, "err", err)
	} else {
		s.m.scrapes.WithLabelValues("ok").Inc()
	}
	if eerr := s.emitDone(ctx, done, now); eerr != nil {
		return done, fmt.Errorf("emit scrape-done of %d: %w", release, eerr)
	}
	return done, err
}

// fetchAll gets page 1, learns the page count, then fetches the rest
// concurrently.
func (s *Scraper) fetchAll(ctx context.Context, release int64, now time.Time) ([]*pb.Listing, []*pb.Seller, error) {
	first, err := s.fetchPage(ctx, release, 1, now)
	if err != nil {
		return nil, nil, err
	}
	pages := []*marketplace.Page{first}
	if first.Pages > 1 {
		rest := make([]*marketplace.Page, first.Pages-1)
		errs := make([]error, first.Pages-1)
		var wg sync.WaitGroup
		for i := range rest {
			wg.Go(func() { rest[i], errs[i] = s.fetchPage(ctx, release, i+2, now) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, nil, err
		}
		pages = append(pages, rest...)
	}
	seen := make(map[int64]bool)
	sellerSeen := make(map[string]bool)
	var listings []*pb.Listing
	var sellers []*pb.Seller
	for _, p := range pages {
		for _, l := range p.Listings {
			// A listing can move between pages while we read them.
			if !seen[l.ListingId] {
				seen[l.ListingId] = true
				listings = append(listings, l)
			}
		}
		for _, sl := range p.Sellers {
			if !sellerSeen[sl.Username] {
				sellerSeen[sl.Username] = true
				sellers = append(sellers, sl)
			}
		}
	}
	return listings, sellers, nil
}

// publish produces the scrape's records and waits for every ack, noting the
// end offset of each listings.v1 partition written.
func (s *Scraper) publish(ctx context.Context, release int64, listings []*pb.Listing, sellers []*pb.Seller, now time.Time, done *pb.ScrapeDone) error {
	prev, err := s.cfg.Redis.ListingIDs(ctx, release)
	if err != nil {
		return err
	}
	current := make([]int64, 0, len(listings))
	live := make(map[int64]bool, len(listings))
	var recs []*kgo.Record
	lt := topics.Listings().Name
	for _, l := range listings {
		l.ReleaseId = release
		b, err := proto.Marshal(l)
		if err != nil {
			return err
		}
		current = append(current, l.ListingId)
		live[l.ListingId] = true
		recs = append(recs, &kgo.Record{Topic: lt, Key: []byte(strconv.FormatInt(l.ListingId, 10)), Value: b})
	}
	for _, id := range prev {
		if !live[id] {
			// Sold or withdrawn: the tombstone removes it everywhere.
			recs = append(recs, &kgo.Record{Topic: lt, Key: []byte(strconv.FormatInt(id, 10))})
		}
	}
	st := topics.Sellers().Name
	for _, sl := range sellers {
		b, err := proto.Marshal(sl)
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: st, Key: []byte(sl.Username), Value: b})
	}
	ends := make(map[int32]int64)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	wg.Add(len(recs))
	for _, r := range recs {
		s.cfg.Producer.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			if r.Topic == lt && r.Offset+1 > ends[r.Partition] {
				ends[r.Partition] = r.Offset + 1
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("produce listings of %d: %w", release, firstErr)
	}
	s.m.listings.Add(float64(len(listings) + len(prev) - countLive(prev, live)))
	slices.Sort(current)
	if err := s.cfg.Redis.SetListingIDs(ctx, release, current); err != nil {
		return err
	}
	if err := s.cfg.Redis.MarkScraped(ctx, release, now); err != nil {
		return err
	}
	done.ListingsFound = int32(len(listings))
	done.ScrapedAtMs = now.UnixMilli()
	parts := make([]int32, 0, len(ends))
	for p := range ends {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		done.ListingEndOffsets = append(done.ListingEndOffsets, &pb.PartitionOffset{Partition: p, Offset: ends[p]})
	}
	return nil
}

func countLive(prev []int64, live map[int64]bool) int {
	n := 0
	for _, id := range prev {
		if live[id] {
			n++
		}
	}
	return n
}

func (s *Scraper) emitDone(ctx context.Context, done *pb.ScrapeDone, now time.Time) error {
	done.EventTimeMs = now.UnixMilli()
	done.EventId = fmt.Sprintf("scrape-done:%d:%d", done.ReleaseId, now.UnixMilli())
	b, err := proto.Marshal(done)
	if err != nil {
		return err
	}
	return s.cfg.Producer.ProduceSync(ctx, &kgo.Record{
		Topic: topics.ScrapeDone().Name, Key: []byte(strconv.FormatInt(done.ReleaseId, 10)), Value: b,
	}).FirstErr()
}

package scraper

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/batchconsumer"
	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// WorkerConfig configures the scrape worker.
type WorkerConfig struct {
	Brokers    []string
	ClientOpts []kgo.Opt
	// MaxBatch bounds the requests polled at once. Default 200.
	MaxBatch int
}

// Run consumes scrape-requests.v1 in the "scraper" group until ctx ends.
// The requests of a polled batch are grouped by release (one scrape answers
// every request for it), scraped concurrently, and the batch's offsets are
// committed once every scrape-done is written: a crash re-scrapes, which is
// harmless (listings are keyed; freshness only moves forward).
func (s *Scraper) Run(ctx context.Context, wc WorkerConfig) error {
	// The cart builder asks inside its transactions: the batch consumer
	// reads committed requests only, so a request it aborted (and will
	// ask again) is not scraped.
	return batchconsumer.Run(ctx, batchconsumer.Config{Brokers: wc.Brokers, ClientOpts: wc.ClientOpts, Group: "scraper",
		Topic: topics.ScrapeRequests().Name, MaxBatch: wc.MaxBatch, Logger: s.cfg.Logger}, s.scrapeBatch)
}

func (s *Scraper) scrapeBatch(ctx context.Context, recs []*kgo.Record) {
	byRelease := make(map[int64][]string)
	for _, r := range recs {
		var req pb.ScrapeRequest
		if err := proto.Unmarshal(r.Value, &req); err != nil || req.ReleaseId <= 0 {
			s.deadLetter(ctx, r, fmt.Errorf("undecodable scrape request or bad release id: %v", err))
			continue
		}
		byRelease[req.ReleaseId] = append(byRelease[req.ReleaseId], req.RequestId)
	}
	releases := make([]int64, 0, len(byRelease))
	for r := range byRelease {
		releases = append(releases, r)
	}
	sort.Slice(releases, func(i, j int) bool { return releases[i] < releases[j] })
	var wg sync.WaitGroup
	for _, rel := range releases {
		wg.Go(func() {
			if _, err := s.Scrape(ctx, rel, byRelease[rel]); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Warn("scrape", "release", rel, "err", err)
			}
		})
	}
	wg.Wait()
}

func (s *Scraper) deadLetter(ctx context.Context, r *kgo.Record, reason error) {
	dl := stream.NewDeadLetter(r, "scraper", "decode", reason, s.cfg.Now(), 900<<10)
	b, _ := proto.Marshal(dl)
	s.cfg.Producer.Produce(ctx, &kgo.Record{Topic: topics.DeadLetters().Name, Key: r.Key, Value: b}, nil)
	s.cfg.Logger.Warn("dead letter", "topic", r.Topic, "offset", r.Offset, "reason", reason)
}

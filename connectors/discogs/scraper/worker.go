package scraper

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

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
		if err := proto.Unmarshal(r.Value, &req); err != nil {
			s.deadLetter(ctx, r, "decode", fmt.Errorf("undecodable scrape request: %w", err))
			continue
		}
		if req.ReleaseId <= 0 {
			// The reason said "<nil>" when this shared the decode branch.
			s.deadLetter(ctx, r, "invalid", fmt.Errorf("scrape request %q: release id %d is not positive", req.RequestId, req.ReleaseId))
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

func (s *Scraper) deadLetter(ctx context.Context, r *kgo.Record, class string, reason error) {
	dl := stream.NewDeadLetter(r, "scraper", class, reason, s.cfg.Now(), maxDeadPage)
	b, _ := proto.Marshal(dl)
	s.cfg.Producer.Produce(ctx, &kgo.Record{Topic: topics.DeadLetters().Name, Key: r.Key, Value: b}, nil)
	s.cfg.Logger.Warn("dead letter", "topic", r.Topic, "offset", r.Offset, "reason", reason)
}

// maxDeadPage bounds the page kept in a dead letter, under the broker's
// default message size (1 MiB) with room for the rest.
const maxDeadPage = 900 << 10

// deadLetterPage sends a page the parser could not read to the dead-letter
// topic: keyed by release id like the listings, the page as value (when
// it fits), the URL and the parser's reason (row and field) as reason. No
// topic or offset: the input was a web page, not a record.
func (s *Scraper) deadLetterPage(ctx context.Context, release int64, page int, url string, pe *parseError, now time.Time) {
	dl := &pb.DeadLetter{
		EventId:      fmt.Sprintf("scraper/page/%d/%d/%d", release, page, now.UnixMilli()),
		EventTimeMs:  s.cfg.Now().UnixMilli(),
		Key:          []byte(strconv.FormatInt(release, 10)),
		Value:        pe.body,
		Reason:       fmt.Sprintf("parse %s: %v", url, pe.err),
		Processor:    "scraper",
		ReasonClass:  "invalid",
		RecordTimeMs: now.UnixMilli(),
	}
	if len(pe.body) > maxDeadPage {
		dl.Value = nil
		dl.Reason += " (page not kept: too large)"
	}
	b, err := proto.Marshal(dl)
	if err != nil {
		s.cfg.Logger.Error("dead letter of a page does not encode", "url", url, "err", err)
		return
	}
	s.cfg.Producer.Produce(ctx, &kgo.Record{Topic: topics.DeadLetters().Name, Key: dl.Key, Value: b}, nil)
	s.cfg.Logger.Warn("dead letter", "url", url, "reason", pe.err)
}

package importer

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/batchconsumer"
	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
	"github.com/cratestream/cratestream/schemas/topics"
)

// WorkerConfig configures the sync worker.
type WorkerConfig struct {
	Brokers    []string
	ClientOpts []kgo.Opt
	// Parallel is how many users are synced at once. Default 4.
	Parallel int
}

// Run consumes sync-requests.v1 in the "importer" group until ctx ends,
// syncing the users of each polled batch (Parallel at a time) and committing
// the batch's offsets once every sync has finished — successfully or with
// its failure reported: a failed sync is reported and not retried, the user
// asks again. Requests that cannot be decoded go to dlq.v1.
func (im *Importer) Run(ctx context.Context, wc WorkerConfig) error {
	if wc.Parallel <= 0 {
		wc.Parallel = 4
	}
	return batchconsumer.Run(ctx, batchconsumer.Config{Brokers: wc.Brokers, ClientOpts: wc.ClientOpts, Group: "importer",
		Topic: topics.SyncRequests().Name, MaxBatch: 100, Logger: im.cfg.Logger},
		func(ctx context.Context, recs []*kgo.Record) { im.syncBatch(ctx, recs, wc.Parallel) })
}

func (im *Importer) syncBatch(ctx context.Context, recs []*kgo.Record, parallel int) {
	var reqs []*pb.SyncRequest
	for _, r := range recs {
		var req pb.SyncRequest
		if err := proto.Unmarshal(r.Value, &req); err != nil || (req.UserId == "" && req.Username == "") {
			im.deadLetter(ctx, r, fmt.Errorf("undecodable or empty sync request: %v", err))
			continue
		}
		reqs = append(reqs, &req)
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, req := range reqs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := im.Sync(ctx, req); err != nil {
				im.cfg.Logger.Warn("sync failed", "request", req.RequestId, "user", req.UserId, "err", err)
			}
		})
	}
	wg.Wait()
}

func (im *Importer) deadLetter(ctx context.Context, r *kgo.Record, reason error) {
	dl := stream.NewDeadLetter(r, "importer", "decode", reason, im.cfg.Now(), 900<<10)
	b, _ := proto.Marshal(dl)
	im.cfg.Producer.Produce(ctx, &kgo.Record{Topic: topics.DeadLetters().Name, Key: r.Key, Value: b}, nil)
	im.cfg.Logger.Warn("dead letter", "topic", r.Topic, "offset", r.Offset, "reason", reason)
}

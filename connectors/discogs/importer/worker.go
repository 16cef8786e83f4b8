package importer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

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
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(wc.Brokers...),
		kgo.ConsumerGroup("importer"),
		kgo.ConsumeTopics(topics.SyncRequests().Name),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, wc.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.CloseAllowingRebalance()
	for {
		fs := cl.PollRecords(ctx, 100)
		if ctx.Err() != nil {
			return nil
		}
		if fs.IsClientClosed() {
			return errors.New("importer: client closed")
		}
		fs.EachError(func(t string, p int32, err error) {
			im.cfg.Logger.Warn("importer fetch", "topic", t, "partition", p, "err", err)
		})
		var reqs []*pb.SyncRequest
		fs.EachRecord(func(r *kgo.Record) {
			var req pb.SyncRequest
			if err := proto.Unmarshal(r.Value, &req); err != nil || (req.UserId == "" && req.Username == "") {
				im.deadLetter(ctx, r, fmt.Errorf("undecodable or empty sync request: %v", err))
				return
			}
			reqs = append(reqs, &req)
		})
		sem := make(chan struct{}, wc.Parallel)
		done := make(chan struct{}, len(reqs))
		for _, req := range reqs {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; done <- struct{}{} }()
				if _, err := im.Sync(ctx, req); err != nil {
					im.cfg.Logger.Warn("sync failed", "request", req.RequestId, "user", req.UserId, "err", err)
				}
			}()
		}
		for range reqs {
			<-done
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
			im.cfg.Logger.Warn("importer commit", "err", err)
		}
		cl.AllowRebalance()
	}
}

func (im *Importer) deadLetter(ctx context.Context, r *kgo.Record, reason error) {
	dl := stream.NewDeadLetter(r, "importer", "decode", reason, im.cfg.Now(), 900<<10)
	b, _ := proto.Marshal(dl)
	im.cfg.Producer.Produce(ctx, &kgo.Record{Topic: topics.DeadLetters().Name, Key: r.Key, Value: b}, nil)
	im.cfg.Logger.Warn("dead letter", "topic", r.Topic, "offset", r.Offset, "reason", reason)
}

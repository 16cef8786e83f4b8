// Package batchconsumer runs the workers that act on requests outside a
// stream processor (the scraper, the importer): a consumer group polls a
// batch, the worker handles all of it, and only then are the batch's offsets
// committed, so a crash redoes the batch rather than losing it.
package batchconsumer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures a batch consumer.
type Config struct {
	Brokers    []string
	ClientOpts []kgo.Opt
	Group      string
	Topic      string
	// MaxBatch bounds the records polled at once. Default 200.
	MaxBatch int
	Logger   *slog.Logger
}

// Run consumes Topic in Group until ctx ends, handing each polled batch to
// handle and committing its offsets once handle returned. handle owns error
// reporting (dead letters, failure statuses): a batch is never retried
// except after a crash or a rebalance before its commit. Requests come from
// transactional producers too, so only committed records are read.
func Run(ctx context.Context, c Config, handle func(context.Context, []*kgo.Record)) error {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 200
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ConsumerGroup(c.Group),
		kgo.ConsumeTopics(c.Topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	}, c.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.CloseAllowingRebalance()
	for {
		fs := cl.PollRecords(ctx, c.MaxBatch)
		if ctx.Err() != nil {
			return nil
		}
		if fs.IsClientClosed() {
			return errors.New(c.Group + ": client closed")
		}
		fs.EachError(func(t string, p int32, err error) {
			c.Logger.Warn(c.Group+" fetch", "topic", t, "partition", p, "err", err)
		})
		handle(ctx, fs.Records())
		if ctx.Err() != nil {
			return nil // uncommitted: the next owner redoes the batch
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			c.Logger.Warn(c.Group+" commit", "err", err)
		}
		cl.AllowRebalance()
	}
}

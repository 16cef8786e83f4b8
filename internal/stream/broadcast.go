package stream

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Broadcast positions live in each task's system store under
// "b/<topic>\x00<partition>" as the next offset to deliver (8 bytes).
const bcastPrefix = "b/"

func bcastKey(k tp) string {
	return bcastPrefix + k.topic + "\x00" + strconv.Itoa(int(k.partition))
}

func parseBcastKey(s string) (tp, bool) {
	if !strings.HasPrefix(s, bcastPrefix) {
		return tp{}, false
	}
	rest := s[len(bcastPrefix):]
	i := strings.IndexByte(rest, 0)
	if i < 0 {
		return tp{}, false
	}
	p, err := strconv.Atoi(rest[i+1:])
	if err != nil {
		return tp{}, false
	}
	return tp{rest[:i], int32(p)}, true
}

// The broadcast topics are read by a plain (group-less) consumer of every
// partition, polled without blocking by the processing loop and positioned
// at the smallest position of any task. It is (re)created by
// rewindBroadcast once the tasks' positions are known: kgo's SetOffsets
// skips partitions the client has not returned from a poll yet, so a client
// started "at the end" and rewound later would silently miss the records
// produced while the tasks were being restored.

// initBroadcastPositions gives tasks that never saw a broadcast topic the
// topic's current end as their position, then rewinds the broadcast
// consumer to the smallest position of any task.
func (r *Runner) initBroadcastPositions(ctx context.Context, fresh []*task) error {
	if len(r.bcast) == 0 {
		return nil
	}
	topics := make([]string, 0, len(r.bcast))
	for t := range r.bcast {
		topics = append(topics, t)
	}
	ends, err := r.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list broadcast end offsets: %w", err)
	}
	starts, err := r.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list broadcast start offsets: %w", err)
	}
	for topic, ps := range starts {
		if r.bcast[topic].startsAtStart() {
			ends[topic] = ps
		}
	}
	for _, t := range fresh {
		for topic, ps := range ends {
			for p, o := range ps {
				k := tp{topic, p}
				if _, ok := t.bpos[k]; !ok && o.Err == nil {
					t.bpos[k] = o.Offset
					t.bposUnsaved = true // persisted with the next commit
				}
			}
		}
	}
	r.rewindBroadcast()
	return nil
}

// rewindBroadcast points the broadcast consumer at the smallest position of
// any task, replacing the consumer; records a task has already seen are
// skipped on delivery.
func (r *Runner) rewindBroadcast() {
	if len(r.bcast) == 0 {
		return
	}
	set := make(map[string]map[int32]kgo.Offset)
	low := make(map[tp]int64)
	for _, t := range r.tasks {
		for k, off := range t.bpos {
			if cur, ok := low[k]; !ok || off < cur {
				low[k] = off
			}
		}
	}
	for k, off := range low {
		if set[k.topic] == nil {
			set[k.topic] = make(map[int32]kgo.Offset)
		}
		set[k.topic][k.partition] = kgo.NewOffset().At(off)
	}
	if r.bcl != nil {
		r.bcl.Close()
		r.bcl = nil
	}
	if len(set) == 0 {
		return
	}
	opts := append(r.baseOpts(), kgo.ConsumePartitions(set))
	if r.p.mode == ExactlyOnce {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		r.setFatal(&configError{fmt.Errorf("broadcast consumer: %w", err)})
		return
	}
	r.bcl = cl
}

// deliverBroadcast hands every buffered broadcast record to every task that
// has not seen it, advancing the task's position in its system store (in the
// same transaction as the handler's effects).
func (r *Runner) deliverBroadcast() *transientError {
	if r.bcl == nil || time.Now().Before(r.hold) {
		return nil
	}
	//lint:ignore SA1012 a nil context is kgo's documented "take what is buffered, never block"
	fs := r.bcl.PollRecords(nil, r.cfg.MaxPollRecords)
	parts := sortedPartitions(r.tasks)
	if err := r.saveBroadcastStarts(parts); err != nil {
		return &transientError{tp{"broadcast", -1}, -1, err}
	}
	var te *transientError
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		if te != nil || len(fp.Records) == 0 {
			return
		}
		in := r.bcast[fp.Topic]
		for _, rec := range fp.Records {
			if err := r.broadcastRecord(in, rec, parts); err != nil {
				// A broadcast partition is not paused: the whole
				// batch is retried after the backoff of the topic.
				te = &transientError{tp{fp.Topic, -1}, rec.Offset, err}
				return
			}
		}
		r.m.recordsIn.WithLabelValues(fp.Topic).Add(float64(len(fp.Records)))
	})
	return te
}

func be8(v int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return b[:]
}

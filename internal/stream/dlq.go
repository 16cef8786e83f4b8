package stream

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// NewDeadLetter describes rec for dlq.v1: its original bytes and position,
// the reason, the processor and the reason's class. The event id is derived
// from the record's position, so a replay of the same failure carries the
// same id. A record whose key and value exceed maxBytes (0: no limit) keeps
// its position and reason but not its value: the original may itself be what
// was too large, and the dead letter must still fit.
func NewDeadLetter(rec *kgo.Record, processor, class string, reason error, now time.Time, maxBytes int) *pb.DeadLetter {
	dl := &pb.DeadLetter{
		EventId:      fmt.Sprintf("%s/%s/%d/%d", processor, rec.Topic, rec.Partition, rec.Offset),
		EventTimeMs:  now.UnixMilli(),
		Topic:        rec.Topic,
		Partition:    rec.Partition,
		Offset:       rec.Offset,
		Key:          rec.Key,
		Value:        rec.Value,
		Reason:       reason.Error(),
		Processor:    processor,
		ReasonClass:  class,
		RecordTimeMs: rec.Timestamp.UnixMilli(),
	}
	if maxBytes > 0 && len(rec.Key)+len(rec.Value) > maxBytes {
		dl.Value = nil
		dl.Reason += " (original value not kept: too large)"
	}
	return dl
}

// deadLetter sends rec to the dead-letter topic with the reason, inside the
// current transaction in exactly-once mode.
func (r *Runner) deadLetter(rec *kgo.Record, err error) {
	class := classOf(err)
	dl := NewDeadLetter(rec, r.p.name, class, err, time.Now(), r.cfg.MaxRecordBytes-4096)
	b, merr := marshalOpts.Marshal(dl)
	if merr != nil {
		r.log.Error("encode dead letter", "err", merr)
		return
	}
	r.log.Warn("dead letter", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "class", class, "reason", err)
	r.produce(&kgo.Record{Topic: r.cfg.DLQTopic, Key: rec.Key, Value: b}, nil)
	r.m.dlq.WithLabelValues(class).Inc()
	r.dlqCount.Add(1)
}

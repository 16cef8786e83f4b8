package stream

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// deadLetter sends rec to the dead-letter topic with the reason, inside the
// current transaction in exactly-once mode. The event id is derived from the
// record's position, so a replay of the same failure carries the same id.
func (r *Runner) deadLetter(rec *kgo.Record, err error) {
	class := classOf(err)
	dl := &pb.DeadLetter{
		EventId:      fmt.Sprintf("%s/%s/%d/%d", r.p.name, rec.Topic, rec.Partition, rec.Offset),
		EventTimeMs:  time.Now().UnixMilli(),
		Topic:        rec.Topic,
		Partition:    rec.Partition,
		Offset:       rec.Offset,
		Key:          rec.Key,
		Value:        rec.Value,
		Reason:       err.Error(),
		Processor:    r.p.name,
		ReasonClass:  class,
		RecordTimeMs: rec.Timestamp.UnixMilli(),
	}
	// The original value may itself be what was too large: keep the
	// reason and position, drop the bytes, rather than failing the DLQ.
	if len(rec.Key)+len(rec.Value) > r.cfg.MaxRecordBytes-4096 {
		dl.Value = nil
		dl.Reason += " (original value not kept: too large)"
	}
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

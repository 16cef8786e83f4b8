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
// current transaction in exactly-once mode. It returns a *haltError when
// dead letters have become a storm.
func (e *engine) deadLetter(rec *kgo.Record, err error) error {
	class := classOf(err)
	dl := NewDeadLetter(rec, e.p.name, class, err, time.Now(), e.maxRecordBytes-4096)
	b, merr := marshalOpts.Marshal(dl)
	if merr != nil {
		// A DeadLetter of bytes and strings always encodes; if it does
		// not, dropping the record silently is the one wrong answer.
		return fmt.Errorf("encode dead letter of %s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, merr)
	}
	e.log.Warn("dead letter", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset, "class", class, "reason", err)
	e.out.produce(&kgo.Record{Topic: e.dlqTopic, Key: rec.Key, Value: b}, nil)
	e.m.dlq.WithLabelValues(class).Inc()
	e.dlqCount.Add(1)
	return e.guard.record(true)
}

// deadLetterGuard halts a processor whose input is mostly dead-lettered: a
// bug that makes every record panic, or a producer writing garbage, must
// not quietly drain a topic into dlq.v1. It counts handled records in
// windows of size records and trips when more than ratio of a window were
// dead letters.
type deadLetterGuard struct {
	size       int
	ratio      float64
	seen, dead int
}

func newDeadLetterGuard(size int, ratio float64) deadLetterGuard {
	return deadLetterGuard{size: size, ratio: ratio}
}

// record counts one handled record and returns a *haltError once the
// window's dead letters pass the limit.
func (g *deadLetterGuard) record(dead bool) error {
	if g.size <= 0 || g.ratio >= 1 {
		return nil
	}
	g.seen++
	if dead {
		g.dead++
	}
	if float64(g.dead) > g.ratio*float64(g.size) {
		return &haltError{reason: fmt.Sprintf("%d of the last %d records were dead-lettered (limit %.0f%% of %d); halted so that a bug or a bad producer does not drain the input into the dead-letter topic: fix the cause and restart",
			g.dead, g.seen, 100*g.ratio, g.size)}
	}
	if g.seen >= g.size {
		g.seen, g.dead = 0, 0
	}
	return nil
}

// haltError stops a processor until it is restarted.
type haltError struct{ reason string }

func (e *haltError) Error() string { return "halted: " + e.reason }

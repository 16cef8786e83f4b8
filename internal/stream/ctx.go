package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Ctx is what a handler gets: the context of the run, the task it runs in
// and the record it handles (nil for timers).
type Ctx struct {
	context.Context
	e   *engine
	t   *task
	rec *kgo.Record
	now time.Time
}

// Partition is the task's partition.
func (c *Ctx) Partition() int32 {
	if c.t == nil {
		if c.rec != nil {
			return c.rec.Partition
		}
		return -1
	}
	return c.t.partition
}

// Topic, Offset and Timestamp describe the record being handled; they are
// zero in a timer callback.
func (c *Ctx) Topic() string {
	if c.rec == nil {
		return ""
	}
	return c.rec.Topic
}

func (c *Ctx) Offset() int64 {
	if c.rec == nil {
		return -1
	}
	return c.rec.Offset
}

func (c *Ctx) Timestamp() time.Time {
	if c.rec == nil {
		return time.Time{}
	}
	return c.rec.Timestamp
}

// Tombstone reports whether the record has a nil value.
func (c *Ctx) Tombstone() bool { return c.rec != nil && c.rec.Value == nil }

// Now is the processing time of the current batch.
func (c *Ctx) Now() time.Time { return c.now }

// Processor is the name of the running processor.
func (c *Ctx) Processor() string { return c.e.p.name }

// Emit produces (key, value) to t: inside the transaction in exactly-once
// mode, partitioned like every Kafka client does.
func Emit[K, V any](c *Ctx, t Topic[K, V], key K, value V) error {
	kb, err := t.Key.Append(nil, key)
	if err != nil {
		return fmt.Errorf("emit to %s: encode key: %w", t.Name, err)
	}
	vb, err := t.Value.Append(nil, value)
	if err != nil {
		return fmt.Errorf("emit to %s: encode value: %w", t.Name, err)
	}
	return c.e.emit(t.Name, kb, vb)
}

// EmitTombstone produces a nil value for key to t (delete on compacted
// topics).
func EmitTombstone[K, V any](c *Ctx, t Topic[K, V], key K) error {
	kb, err := t.Key.Append(nil, key)
	if err != nil {
		return fmt.Errorf("emit to %s: encode key: %w", t.Name, err)
	}
	return c.e.emit(t.Name, kb, nil)
}

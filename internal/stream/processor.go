package stream

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Mode is a processor's delivery guarantee.
type Mode int

const (
	// AtLeastOnce commits input offsets after outputs and changelog writes
	// are acknowledged. A crash replays the records since the last commit:
	// state updates must be idempotent (or tolerate duplicates).
	AtLeastOnce Mode = iota
	// ExactlyOnce commits input offsets, changelog writes and outputs in
	// one Kafka transaction; downstream reads with read_committed.
	ExactlyOnce
)

func (m Mode) String() string {
	if m == ExactlyOnce {
		return "exactly-once"
	}
	return "at-least-once"
}

// ParseMode parses "exactly-once" / "at-least-once".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "exactly-once", "eos":
		return ExactlyOnce, nil
	case "at-least-once", "alo":
		return AtLeastOnce, nil
	}
	return 0, fmt.Errorf("unknown mode %q (want exactly-once or at-least-once)", s)
}

// Processor is the definition of one stream processor: its consumer group,
// inputs, state stores, timers and broadcast inputs. Build it with the
// package functions (Consume, NewTable, NewTimer, ...) and run it with a
// Runner. Each assigned partition of the (co-partitioned) inputs is a task
// with its own stores.
type Processor struct {
	name       string
	mode       Mode
	inputs     []input
	broadcasts []input
	stores     []storeDef
	timers     []timerDef
	outputs    []TopicSpec
	internal   []TopicSpec
	sys        *Table[string, []byte]
	globals    []Global
	errs       []error
}

// Global is reference data a processor reads while it runs (a GlobalTable):
// the runner starts it and waits until it has caught up before joining the
// group, so no record is processed against a half-loaded table.
type Global interface {
	Run(ctx context.Context) error
	CaughtUp() <-chan struct{}
	Topic() string
}

// UseGlobal makes the runner run g alongside the processor.
func (p *Processor) UseGlobal(g Global) { p.globals = append(p.globals, g) }

// NewProcessor starts the definition of a processor; name is its consumer
// group id and the prefix of its internal topics.
func NewProcessor(name string, mode Mode) *Processor {
	p := &Processor{name: name, mode: mode}
	// Every task has a system store for timers and broadcast positions,
	// so both survive restarts and commit atomically with the outputs.
	p.sys = NewTable(p, "system", StringCodec{}, BytesCodec{})
	return p
}

// Name is the processor's name and consumer group.
func (p *Processor) Name() string { return p.name }

// Mode is the processor's delivery guarantee.
func (p *Processor) Mode() Mode { return p.mode }

// Output declares a topic the processor produces to (documentation and
// provisioning; producing to undeclared topics also works).
func (p *Processor) Output(spec TopicSpec) { p.outputs = append(p.outputs, spec) }

func (p *Processor) errorf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("processor %s: "+format, append([]any{p.name}, args...)...))
}

// input is a consumed topic with its typed handler behind a byte-level
// interface, so the runner never sees interface{} values.
type input interface {
	topic() string
	// stateless inputs (repartition sources) are exempt from the
	// co-partitioning check and may not touch task state.
	stateless() bool
	startsAtStart() bool
	handle(c *Ctx, r *kgo.Record) error
}

type typedInput[K, V any] struct {
	t         Topic[K, V]
	fn        func(c *Ctx, key K, val V) error
	noTask    bool
	fromStart bool // broadcast: new tasks start at the log start
}

func (in *typedInput[K, V]) topic() string       { return in.t.Name }
func (in *typedInput[K, V]) stateless() bool     { return in.noTask }
func (in *typedInput[K, V]) startsAtStart() bool { return in.fromStart }

func (in *typedInput[K, V]) handle(c *Ctx, r *kgo.Record) error {
	k, err := in.t.Key.Decode(r.Key)
	if err != nil {
		return invalidClass("decode", fmt.Errorf("decode key: %w", err))
	}
	var v V
	if r.Value != nil {
		if v, err = in.t.Value.Decode(r.Value); err != nil {
			return invalidClass("decode", fmt.Errorf("decode %s value: %w", in.t.ValueType, err))
		}
	}
	return in.fn(c, k, v)
}

// Consume adds t as an input: fn runs for every record, in offset order per
// partition, with the task of that partition. A tombstone (nil value) arrives
// with the zero V and c.Tombstone() true.
func Consume[K, V any](p *Processor, t Topic[K, V], fn func(c *Ctx, key K, val V) error) {
	for _, in := range p.inputs {
		if in.topic() == t.Name {
			p.errorf("topic %s consumed twice", t.Name)
		}
	}
	p.inputs = append(p.inputs, &typedInput[K, V]{t: t, fn: fn})
}

// Broadcast adds t as a broadcast input: every task of every instance sees
// every record of t (a small control topic such as scrape-done). Each task
// keeps its position in its system store, so a record is delivered to a task
// once. A new task starts at the topic's end, or at its start with
// BroadcastFromStart.
func Broadcast[K, V any](p *Processor, t Topic[K, V], fn func(c *Ctx, key K, val V) error, opts ...BroadcastOption) {
	in := &typedInput[K, V]{t: t, fn: fn}
	for _, o := range opts {
		if o == BroadcastFromStart {
			in.fromStart = true
		}
	}
	p.broadcasts = append(p.broadcasts, in)
}

// BroadcastOption configures a broadcast input.
type BroadcastOption int

// BroadcastFromStart makes new tasks read the broadcast topic from its
// start (what retention kept) rather than from its end.
const BroadcastFromStart BroadcastOption = 1

// Repartition re-keys the records of from onto the internal topic to, which
// the runner creates with the processor's partition count; consume to with
// Consume to process them co-partitioned by the new key. Records for which
// key returns false are skipped.
func Repartition[K1, V, K2 any](p *Processor, from Topic[K1, V], to Topic[K2, V], key func(K1, V) (K2, bool)) {
	p.inputs = append(p.inputs, &typedInput[K1, V]{t: from, noTask: true, fn: func(c *Ctx, k K1, v V) error {
		nk, ok := key(k, v)
		if !ok {
			return nil
		}
		if c.Tombstone() {
			return EmitTombstone(c, to, nk)
		}
		return Emit(c, to, nk, v)
	}})
}

// RepartitionTopic declares an internal repartition topic of p, which the
// runner creates with the processor's partition count. Produce to it with
// Emit (or let Repartition do it) and consume it with Consume.
func RepartitionTopic[K, V any](p *Processor, name string, key Codec[K], value Codec[V], valueType string) Topic[K, V] {
	t := NewTopic(TopicSpec{
		Name:        p.name + "-" + name + "-repartition",
		Cleanup:     CleanupDelete,
		KeyEncoding: "repartitioned key",
		ValueType:   valueType,
		Description: "internal: " + name + " re-keyed for " + p.name,
	}, key, value)
	p.internal = append(p.internal, t.TopicSpec)
	return t
}

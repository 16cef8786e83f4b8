// Package streamtest runs a processor's handlers in memory, in the spirit of
// goka's tester: feed records to its inputs, move its clock to fire timers,
// read what it produced and what its tables hold — no broker, no goroutine,
// every step done when the call returns.
//
// Each record is one unit of work committed at once, as if every record had
// its own transaction: outputs, changelog records (under the changelog
// topic's name, so a processor whose output is its store's changelog shows
// it there) and dead letters appear in produced order. Records are keyed and
// partitioned like a Kafka producer's, over Partitions tasks (default 1).
// Global tables are filled with Global. What needs Kafka itself
// (rebalances, exactly-once across crashes, restore) stays in the kfake
// tests of package stream.
package streamtest

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/cratestream/cratestream/internal/stream"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// Tester runs one processor in memory.
type Tester struct {
	t    testing.TB
	d    *stream.Driver
	read map[string]int // records of each topic already returned by Read
	dlq  string
	loop map[string]bool
	// looped is how many produced records were considered for loopback.
	looped int
}

// Option configures a Tester.
type Option func(*options)

type options struct {
	stream.DriverConfig
	loopback []string
}

// Partitions sets the number of tasks and of partitions of every topic.
func Partitions(n int32) Option { return func(o *options) { o.Partitions = n } }

// Start sets the clock's start.
func Start(at time.Time) Option { return func(o *options) { o.Start = at } }

// DeadLetterLimit sets the dead-letter guard (stream.Config's
// MaxDeadLetterRatio and DeadLetterWindow).
func DeadLetterLimit(ratio float64, window int) Option {
	return func(o *options) { o.MaxDeadLetterRatio, o.DeadLetterWindow = ratio, window }
}

// Loopback makes the processor consume what it produces to topics, which
// must be its inputs: a repartition topic (stream.RepartitionTopic), which
// the runner's consumer reads back from Kafka. Each record produced there
// is fed as soon as the unit that produced it commits, as a unit of its
// own, before the step (Send, Broadcast, Advance...) returns, at the offset
// Read reports for it; records it produces there in turn follow. A
// transient failure of a looped record is the step's
// failure; the record is fed again at the next step.
func Loopback(topics ...string) Option {
	return func(o *options) { o.loopback = append(o.loopback, topics...) }
}

// New returns a tester of p. The processor's log is discarded unless
// CRATESTREAM_TEST_LOG is set.
func New(t testing.TB, p *stream.Processor, opts ...Option) *Tester {
	t.Helper()
	var o options
	if os.Getenv("CRATESTREAM_TEST_LOG") != "" {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, opt := range opts {
		opt(&o)
	}
	d, err := stream.NewDriver(p, o.DriverConfig)
	if err != nil {
		t.Fatalf("streamtest: %v", err)
	}
	dlq := o.DLQTopic
	if dlq == "" {
		dlq = "dlq.v1"
	}
	tt := &Tester{t: t, d: d, read: make(map[string]int), dlq: dlq, loop: make(map[string]bool)}
	for _, name := range o.loopback {
		tt.loop[name] = true
	}
	return tt
}

// step runs one step's unit and then feeds the looped records it produced.
func (tt *Tester) step(err error) error {
	if err != nil {
		return err
	}
	for produced := tt.d.Produced(); tt.looped < len(produced); produced = tt.d.Produced() {
		rec := produced[tt.looped]
		if tt.loop[rec.Topic] {
			if err := tt.d.FeedProduced(rec); err != nil {
				return err // rolled back; looped stays, so the next step retries it
			}
		}
		tt.looped++
	}
	return nil
}

// Driver is the tester's driver, for what the typed helpers do not cover.
func (tt *Tester) Driver() *stream.Driver { return tt.d }

// Now is the tester's clock.
func (tt *Tester) Now() time.Time { return tt.d.Now() }

// Advance moves the clock by d and runs the timers due by then; a
// transient failure of one fails the test (TryAdvance returns it).
func (tt *Tester) Advance(d time.Duration) {
	tt.t.Helper()
	if err := tt.TryAdvance(d); err != nil {
		tt.t.Fatalf("streamtest: advance %s: %v", d, err)
	}
}

// TryAdvance is Advance returning the failure.
func (tt *Tester) TryAdvance(d time.Duration) error { return tt.step(tt.d.Advance(d)) }

// Restart is a crash and restart: the committed state stays, what lives in
// memory beside it is rebuilt from it.
func (tt *Tester) Restart() {
	tt.t.Helper()
	if err := tt.d.Restart(); err != nil {
		tt.t.Fatalf("streamtest: restart: %v", err)
	}
}

// Send feeds (key, value) to topic, one of the processor's inputs; a
// transient failure fails the test (TrySend returns it). Bad input is not a
// failure: it goes to the dead-letter topic (DeadLetters).
func Send[K, V any](tt *Tester, topic stream.Topic[K, V], key K, value V) {
	tt.t.Helper()
	if err := TrySend(tt, topic, key, value); err != nil {
		tt.t.Fatalf("streamtest: send to %s: %v", topic.Name, err)
	}
}

// TrySend is Send returning a transient failure, whose effects were undone.
func TrySend[K, V any](tt *Tester, topic stream.Topic[K, V], key K, value V) error {
	tt.t.Helper()
	kb, vb := encode(tt, topic, key, &value)
	return tt.step(tt.d.Feed(tt.record(topic.Name, kb, vb)))
}

// SendTombstone feeds a nil value for key to topic.
func SendTombstone[K, V any](tt *Tester, topic stream.Topic[K, V], key K) {
	tt.t.Helper()
	kb, _ := encode(tt, topic, key, nil)
	if err := tt.step(tt.d.Feed(tt.record(topic.Name, kb, nil))); err != nil {
		tt.t.Fatalf("streamtest: send tombstone to %s: %v", topic.Name, err)
	}
}

// SendRaw feeds bytes as they are, for input that does not decode.
func (tt *Tester) SendRaw(topic string, key, value []byte) error {
	return tt.step(tt.d.Feed(tt.record(topic, key, value)))
}

// Broadcast feeds (key, value) to topic, one of the processor's broadcast
// inputs: every task sees it.
func Broadcast[K, V any](tt *Tester, topic stream.Topic[K, V], key K, value V) {
	tt.t.Helper()
	kb, vb := encode(tt, topic, key, &value)
	if err := tt.step(tt.d.Broadcast(tt.record(topic.Name, kb, vb))); err != nil {
		tt.t.Fatalf("streamtest: broadcast to %s: %v", topic.Name, err)
	}
}

func encode[K, V any](tt *Tester, topic stream.Topic[K, V], key K, value *V) (kb, vb []byte) {
	tt.t.Helper()
	kb, err := topic.Key.Append(nil, key)
	if err != nil {
		tt.t.Fatalf("streamtest: encode key for %s: %v", topic.Name, err)
	}
	if value == nil {
		return kb, nil
	}
	vb, err = topic.Value.Append(nil, *value)
	if err != nil {
		tt.t.Fatalf("streamtest: encode value for %s: %v", topic.Name, err)
	}
	if vb == nil {
		vb = []byte{} // an empty value is not a tombstone
	}
	return kb, vb
}

func (tt *Tester) record(topic string, key, value []byte) *kgo.Record {
	var p int32
	if key != nil {
		p = stream.PartitionFor(key, tt.d.Partitions())
	}
	return &kgo.Record{Topic: topic, Partition: p, Key: key, Value: value}
}

// Output is one record the processor produced, decoded.
type Output[K, V any] struct {
	Key       K
	Value     V
	Tombstone bool
	Partition int32
	Offset    int64
}

// Read returns the records produced to topic since the last Read of it.
func Read[K, V any](tt *Tester, topic stream.Topic[K, V]) []Output[K, V] {
	tt.t.Helper()
	all := All(tt, topic)
	out := all[min(tt.read[topic.Name], len(all)):]
	tt.read[topic.Name] = len(all)
	return out
}

// All returns every record produced to topic.
func All[K, V any](tt *Tester, topic stream.Topic[K, V]) []Output[K, V] {
	tt.t.Helper()
	var out []Output[K, V]
	for _, rec := range tt.d.Produced() {
		if rec.Topic != topic.Name {
			continue
		}
		k, err := topic.Key.Decode(rec.Key)
		if err != nil {
			tt.t.Fatalf("streamtest: decode key of %s@%d: %v", topic.Name, rec.Offset, err)
		}
		o := Output[K, V]{Key: k, Tombstone: rec.Value == nil, Partition: rec.Partition, Offset: rec.Offset}
		if rec.Value != nil {
			if o.Value, err = topic.Value.Decode(rec.Value); err != nil {
				tt.t.Fatalf("streamtest: decode value of %s@%d: %v", topic.Name, rec.Offset, err)
			}
		}
		out = append(out, o)
	}
	return out
}

// Count is the number of records produced to a topic so far.
func (tt *Tester) Count(topic string) int {
	n := 0
	for _, rec := range tt.d.Produced() {
		if rec.Topic == topic {
			n++
		}
	}
	return n
}

// DeadLetters returns the dead letters produced since the last call.
func (tt *Tester) DeadLetters() []*pb.DeadLetter {
	tt.t.Helper()
	var out []*pb.DeadLetter
	seen := 0
	for _, rec := range tt.d.Produced() {
		if rec.Topic != tt.dlq {
			continue
		}
		seen++
		if seen <= tt.read[tt.dlq] {
			continue
		}
		var dl pb.DeadLetter
		if err := proto.Unmarshal(rec.Value, &dl); err != nil {
			tt.t.Fatalf("streamtest: decode dead letter: %v", err)
		}
		out = append(out, &dl)
	}
	tt.read[tt.dlq] = seen
	return out
}

// Get returns the committed value of key in table: from the task of key's
// partition, or from whichever task holds it (a table keyed otherwise than
// its input, as requests by id in their user's task).
func Get[K comparable, V any](tt *Tester, table *stream.Table[K, V], key K) (V, bool) {
	tt.t.Helper()
	v, ok, err := stream.DriverGet(tt.d, table, key)
	if err != nil {
		tt.t.Fatalf("streamtest: get %v from %s: %v", key, table.Name(), err)
	}
	return v, ok
}

// Global puts a row into a global table the processor reads, at the next
// offset of its partition (a zero value with tombstone deletes it).
func Global[K comparable, V any](tt *Tester, g *stream.GlobalTable[K, V], topic stream.Topic[K, V], key K, value V, tombstone bool) {
	tt.t.Helper()
	kb, err := topic.Key.Append(nil, key)
	if err != nil {
		tt.t.Fatalf("streamtest: encode key for %s: %v", topic.Name, err)
	}
	p := stream.PartitionFor(kb, max(1, topic.Partitions))
	next := g.Positions()[p]
	g.Inject(p, next, key, value, tombstone)
}

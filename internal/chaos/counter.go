package chaos

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cratestream/cratestream/internal/stream"
)

// CounterName is the test processor's name (its consumer group and the
// service of `cratestream run`).
const CounterName = "chaos-counter"

// CounterPartitions is the partition count of the counter's topics.
const CounterPartitions = 6

// The counter's topics; the driver creates them.
var (
	CounterIn = stream.NewTopic(stream.TopicSpec{
		Name: "chaos-counter-in", Partitions: CounterPartitions, Cleanup: stream.CleanupDelete,
		KeyEncoding: "key, UTF-8", ValueType: "decimal sequence number",
		Description: "chaos suite: the counter's input, one unique sequence number per record",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[int64](stream.Int64Codec{}))
	CounterOut = stream.NewTopic(stream.TopicSpec{
		Name: "chaos-counter-out", Partitions: CounterPartitions, Cleanup: stream.CleanupDelete,
		KeyEncoding: "key, UTF-8", ValueType: `"<count> <input sequence number>"`,
		Description: "chaos suite: the counter's output, the running count per key",
	}, stream.Codec[string](stream.StringCodec{}), stream.Codec[CounterOutput](counterOutputCodec{}))
)

// CounterOutput is one output of the counter: the key's count after the
// input record Seq.
type CounterOutput struct {
	Count int64
	Seq   int64
}

type counterOutputCodec struct{}

func (counterOutputCodec) Append(dst []byte, v CounterOutput) ([]byte, error) {
	dst = strconv.AppendInt(dst, v.Count, 10)
	dst = append(dst, ' ')
	return strconv.AppendInt(dst, v.Seq, 10), nil
}

func (counterOutputCodec) Decode(b []byte) (CounterOutput, error) {
	c, s, ok := strings.Cut(string(b), " ")
	if !ok {
		return CounterOutput{}, fmt.Errorf("counter output %q: want \"<count> <seq>\"", b)
	}
	count, err1 := strconv.ParseInt(c, 10, 64)
	seq, err2 := strconv.ParseInt(s, 10, 64)
	if err1 != nil || err2 != nil {
		return CounterOutput{}, fmt.Errorf("counter output %q: want two decimal numbers", b)
	}
	return CounterOutput{Count: count, Seq: seq}, nil
}

// NewCounter returns the chaos suite's test processor: for each input record
// it increments its key's count and emits (key, count, input seq). Its state
// update is not idempotent, so one record applied twice or lost shows in
// every later output of its key: exactly-once output per key is exactly
// 1..n in the order of the inputs. With onDiskCache > 0 the counts live in
// Pebble (checkpointed, restored from the changelog's tail).
func NewCounter(mode stream.Mode, onDiskCache int64) *stream.Processor {
	p := stream.NewProcessor(CounterName, mode)
	var opts []stream.TableOption
	if onDiskCache > 0 {
		opts = append(opts, stream.OnDisk(onDiskCache))
	}
	counts := stream.NewTable(p, "counts", stream.Codec[string](stream.StringCodec{}), stream.Codec[int64](stream.Int64Codec{}), opts...)
	p.Output(CounterOut.TopicSpec)
	stream.Consume(p, CounterIn, func(c *stream.Ctx, key string, seq int64) error {
		if c.Tombstone() {
			return stream.Invalidf("tombstone on %s", CounterIn.Name)
		}
		n, _, err := counts.Get(c, key)
		if err != nil {
			return err
		}
		n++
		if err := counts.Put(c, key, n); err != nil {
			return err
		}
		return stream.Emit(c, CounterOut, key, CounterOutput{Count: n, Seq: seq})
	})
	return p
}

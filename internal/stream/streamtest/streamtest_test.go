package streamtest_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/internal/stream/streamtest"
)

var (
	str  = stream.Codec[string](stream.StringCodec{})
	i64  = stream.Codec[int64](stream.Int64Codec{})
	in   = stream.NewTopic(stream.TopicSpec{Name: "in", Partitions: 4}, str, i64)
	out  = stream.NewTopic(stream.TopicSpec{Name: "out", Partitions: 4}, str, i64)
	ctl  = stream.NewTopic(stream.TopicSpec{Name: "ctl", Partitions: 1}, str, i64)
	errX = errors.New("external system down")
)

// counter counts records per key and emits the running count.
func counter() (*stream.Processor, *stream.Table[string, int64]) {
	p := stream.NewProcessor("counter", stream.ExactlyOnce)
	counts := stream.NewTable(p, "counts", str, i64)
	stream.Consume(p, in, func(c *stream.Ctx, k string, v int64) error {
		switch {
		case v < 0:
			return stream.Invalidf("negative input %d", v)
		case v == 666:
			return errX
		case v == 999:
			panic("bug on 999")
		}
		n, _, err := counts.Get(c, k)
		if err != nil {
			return err
		}
		if err := counts.Put(c, k, n+1); err != nil {
			return err
		}
		return stream.Emit(c, out, k, n+1)
	})
	return p, counts
}

func TestCounterOutputsStateAndChangelog(t *testing.T) {
	p, counts := counter()
	tt := streamtest.New(t, p, streamtest.Partitions(4))
	for i := range 10 {
		streamtest.Send(tt, in, "k"+strconv.Itoa(i%3), int64(i))
	}
	got := map[string][]int64{}
	for _, o := range streamtest.Read(tt, out) {
		got[o.Key] = append(got[o.Key], o.Value)
		if want := stream.PartitionFor([]byte(o.Key), 4); o.Partition != want {
			t.Errorf("output %s in partition %d, want %d (producer partitioning)", o.Key, o.Partition, want)
		}
	}
	want := map[string][]int64{"k0": {1, 2, 3, 4}, "k1": {1, 2, 3}, "k2": {1, 2, 3}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("outputs %v, want %v", got, want)
	}
	if n, ok := streamtest.Get(tt, counts, "k0"); !ok || n != 4 {
		t.Errorf("counts[k0] = %d, %v", n, ok)
	}
	if _, ok := streamtest.Get(tt, counts, "nope"); ok {
		t.Error("counts[nope] exists")
	}
	if n := tt.Count("counter-counts-changelog"); n != 10 {
		t.Errorf("%d changelog records, want one per write (10)", n)
	}
	if again := streamtest.Read(tt, out); len(again) != 0 {
		t.Errorf("Read returned %d old records again", len(again))
	}
}

func TestBadInputIsDeadLettered(t *testing.T) {
	p, counts := counter()
	tt := streamtest.New(t, p)
	streamtest.Send(tt, in, "k", 1)
	streamtest.Send(tt, in, "k", -5)
	if err := tt.SendRaw("in", []byte("k"), []byte("not a number")); err != nil {
		t.Fatal(err)
	}
	streamtest.Send(tt, in, "k", 999) // a handler panic is bad input, not a crash
	streamtest.Send(tt, in, "k", 2)
	dls := tt.DeadLetters()
	var classes []string
	for _, dl := range dls {
		classes = append(classes, dl.ReasonClass)
		if dl.Topic != "in" || dl.Processor != "counter" || dl.Reason == "" {
			t.Errorf("dead letter %+v", dl)
		}
	}
	if got := strings.Join(classes, ","); got != "invalid,decode,panic" {
		t.Errorf("dead letter classes %q, want invalid,decode,panic", got)
	}
	if n, _ := streamtest.Get(tt, counts, "k"); n != 2 {
		t.Errorf("count %d, want 2 (bad records change nothing)", n)
	}
}

// A transient failure leaves nothing of its unit behind; the retry applies
// it once.
func TestTransientFailureLeavesNothing(t *testing.T) {
	p, counts := counter()
	tt := streamtest.New(t, p)
	streamtest.Send(tt, in, "k", 1)
	if err := streamtest.TrySend(tt, in, "k", 666); !errors.Is(err, errX) {
		t.Fatalf("TrySend = %v, want the handler's error", err)
	}
	if n, _ := streamtest.Get(tt, counts, "k"); n != 1 {
		t.Errorf("count %d after a failed record, want 1", n)
	}
	if outs := streamtest.Read(tt, out); len(outs) != 1 {
		t.Errorf("%d outputs, want 1", len(outs))
	}
}

// A processor whose every record panics halts at the dead-letter limit
// instead of draining its input into the dead-letter topic.
func TestDeadLetterStormHalts(t *testing.T) {
	p, _ := counter()
	tt := streamtest.New(t, p, streamtest.DeadLetterLimit(0.5, 20))
	var err error
	sent := 0
	for ; sent < 100 && err == nil; sent++ {
		err = streamtest.TrySend(tt, in, "k", 999)
	}
	if err == nil || !strings.Contains(err.Error(), "halted") {
		t.Fatalf("after %d panicking records: err = %v, want a halt", sent, err)
	}
	if n := len(tt.DeadLetters()); n > 10 {
		t.Errorf("%d dead letters kept, want at most the limit (10 of 20)", n)
	}
	if err := streamtest.TrySend(tt, in, "k", 1); err == nil {
		t.Error("a halted processor went on processing")
	}
	tt.Restart()
	streamtest.Send(tt, in, "k", 1)
}

// timers: a deadline per key, re-armed by each record; the callback emits
// the last value.
func timers(fail func(id string) error) *stream.Processor {
	p := stream.NewProcessor("timers", stream.ExactlyOnce)
	var tm *stream.Timer[int64]
	tm = stream.NewTimer(p, "later", i64, func(c *stream.Ctx, id string, v int64) error {
		if err := fail(id); err != nil {
			return err
		}
		return stream.Emit(c, out, id, v)
	})
	stream.Consume(p, in, func(c *stream.Ctx, k string, v int64) error {
		return tm.Schedule(c, k, c.Now().Add(time.Duration(v)*time.Second), v)
	})
	return p
}

func TestTimersFireOnTheClockAndSurviveRestarts(t *testing.T) {
	tt := streamtest.New(t, timers(func(string) error { return nil }))
	streamtest.Send(tt, in, "a", 5)
	streamtest.Send(tt, in, "b", 10)
	tt.Advance(4 * time.Second)
	if n := len(streamtest.Read(tt, out)); n != 0 {
		t.Fatalf("%d timers fired early", n)
	}
	tt.Restart()
	tt.Advance(2 * time.Second)
	if o := streamtest.Read(tt, out); len(o) != 1 || o[0].Key != "a" {
		t.Fatalf("after 6s: %+v, want a's timer", o)
	}
	tt.Restart()
	tt.Advance(10 * time.Second)
	if o := streamtest.Read(tt, out); len(o) != 1 || o[0].Key != "b" {
		t.Fatalf("after 16s: %+v, want b's timer only", o)
	}
}

// Two timers fire in one step; the second rejects its payload. The first
// must stay fired: its removal was taken back by the second's rollback, so
// it fired again after a restart.
func TestRejectedTimerDoesNotReviveAnother(t *testing.T) {
	tt := streamtest.New(t, timers(func(id string) error {
		if id == "bad" {
			return stream.Invalidf("timer %s rejected", id)
		}
		return nil
	}))
	streamtest.Send(tt, in, "good", 1)
	streamtest.Send(tt, in, "bad", 2)
	tt.Advance(5 * time.Second)
	tt.Restart()
	tt.Advance(5 * time.Second)
	if o := streamtest.Read(tt, out); len(o) != 1 || o[0].Key != "good" {
		t.Fatalf("outputs %+v, want the good timer once", o)
	}
}

// Every task sees every broadcast record once.
func TestBroadcastReachesEveryTask(t *testing.T) {
	p := stream.NewProcessor("bcast", stream.ExactlyOnce)
	stream.Consume(p, in, func(*stream.Ctx, string, int64) error { return nil })
	stream.Broadcast(p, ctl, func(c *stream.Ctx, k string, v int64) error {
		return stream.Emit(c, out, strconv.Itoa(int(c.Partition())), v)
	})
	tt := streamtest.New(t, p, streamtest.Partitions(3))
	streamtest.Broadcast(tt, ctl, "x", 7)
	seen := map[string]int{}
	for _, o := range streamtest.Read(tt, out) {
		seen[o.Key]++
	}
	if len(seen) != 3 || seen["0"] != 1 || seen["1"] != 1 || seen["2"] != 1 {
		t.Fatalf("tasks saw %v, want each of 0,1,2 once", seen)
	}
}

// A global table filled by the test is what the handler reads.
func TestGlobalTable(t *testing.T) {
	ref := stream.NewTopic(stream.TopicSpec{Name: "ref", Partitions: 2}, str, str)
	g := stream.NewGlobalTable(ref, stream.GlobalConfig{})
	p := stream.NewProcessor("join", stream.ExactlyOnce)
	p.UseGlobal(g)
	stream.Consume(p, in, func(c *stream.Ctx, k string, v int64) error {
		name, ok := g.Get(k)
		if !ok {
			return stream.Invalidf("unknown %s", k)
		}
		return stream.Emit(c, out, name, v)
	})
	tt := streamtest.New(t, p)
	streamtest.Global(tt, g, ref, "r1", "Blue Train", false)
	streamtest.Send(tt, in, "r1", 1)
	streamtest.Send(tt, in, "r2", 2)
	if o := streamtest.Read(tt, out); len(o) != 1 || o[0].Key != "Blue Train" {
		t.Fatalf("outputs %+v", o)
	}
	if n := len(tt.DeadLetters()); n != 1 {
		t.Errorf("%d dead letters, want r2's", n)
	}
}

// oddCodec encodes any int64 and decodes only even ones: a payload written
// by an older version that the current one cannot read.
type oddCodec struct{}

func (oddCodec) Append(dst []byte, v int64) ([]byte, error) {
	return strconv.AppendInt(dst, v, 10), nil
}
func (oddCodec) Decode(b []byte) (int64, error) {
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err == nil && v%2 != 0 {
		return 0, fmt.Errorf("odd payload %d", v)
	}
	return v, err
}

// A timer whose payload does not decode is dead-lettered (its topic names
// the timer, its key the id), not silently dropped; the other timers fire.
func TestUndecodableTimerIsDeadLettered(t *testing.T) {
	p := stream.NewProcessor("timers", stream.ExactlyOnce)
	tm := stream.NewTimer(p, "later", stream.Codec[int64](oddCodec{}), func(c *stream.Ctx, id string, v int64) error {
		return stream.Emit(c, out, id, v)
	})
	stream.Consume(p, in, func(c *stream.Ctx, k string, v int64) error {
		return tm.Schedule(c, k, c.Now().Add(time.Second), v)
	})
	tt := streamtest.New(t, p)
	streamtest.Send(tt, in, "even", 2)
	streamtest.Send(tt, in, "odd", 3)
	tt.Advance(2 * time.Second)
	if o := streamtest.Read(tt, out); len(o) != 1 || o[0].Key != "even" {
		t.Fatalf("outputs %+v, want the even timer's", o)
	}
	dls := tt.DeadLetters()
	if len(dls) != 1 || dls[0].Topic != "timer:later" || string(dls[0].Key) != "odd" || string(dls[0].Value) != "3" ||
		dls[0].ReasonClass != "decode" || !strings.Contains(dls[0].Reason, "odd payload") {
		t.Fatalf("dead letters %+v", dls)
	}
	tt.Restart()
	tt.Advance(time.Hour)
	if o := streamtest.Read(tt, out); len(o) != 0 {
		t.Fatalf("after a restart: %+v, want nothing (the bad timer is gone)", o)
	}
}

// letters re-keys in's records by their key's first letter through a
// repartition topic and sums them per letter on the other side; fail
// makes that side fail transiently.
func letters(fail func() error) (*stream.Processor, stream.Topic[string, int64], *stream.Table[string, int64]) {
	p := stream.NewProcessor("letters", stream.ExactlyOnce)
	byLetter := stream.RepartitionTopic(p, "by-letter", str, i64, "int64")
	stream.Repartition(p, in, byLetter, func(k string, _ int64) (string, bool) { return k[:1], k != "" })
	sums := stream.NewTable(p, "sums", str, i64)
	stream.Consume(p, byLetter, func(c *stream.Ctx, letter string, v int64) error {
		if err := fail(); err != nil {
			return err
		}
		n, _, err := sums.Get(c, letter)
		if err != nil {
			return err
		}
		if err := sums.Put(c, letter, n+v); err != nil {
			return err
		}
		return stream.Emit(c, out, letter+"@"+strconv.Itoa(int(c.Partition())), n+v)
	})
	return p, byLetter, sums
}

// A looped repartition topic is consumed in the task of the new key, each
// record right after the unit that produced it.
func TestLoopbackFeedsRepartitionedRecords(t *testing.T) {
	p, byLetter, sums := letters(func() error { return nil })
	tt := streamtest.New(t, p, streamtest.Partitions(4), streamtest.Loopback(byLetter.Name))
	for _, k := range []string{"apple", "banana", "avocado", "blueberry", "cherry"} {
		streamtest.Send(tt, in, k, int64(len(k)))
	}
	var got []string
	for _, o := range streamtest.Read(tt, out) {
		got = append(got, fmt.Sprintf("%s=%d", o.Key, o.Value))
	}
	task := func(letter string) string { return strconv.Itoa(int(stream.PartitionFor([]byte(letter), 4))) }
	want := []string{"a@" + task("a") + "=5", "b@" + task("b") + "=6", "a@" + task("a") + "=12", "b@" + task("b") + "=15", "c@" + task("c") + "=6"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("outputs %v, want %v (summed in the new key's task, in send order)", got, want)
	}
	if n, _ := streamtest.Get(tt, sums, "b"); n != 15 {
		t.Errorf("sums[b] = %d, want 15", n)
	}
}

// Without Loopback the repartitioned records stay in their topic.
func TestRepartitionedRecordsStayWithoutLoopback(t *testing.T) {
	p, byLetter, _ := letters(func() error { return nil })
	tt := streamtest.New(t, p)
	streamtest.Send(tt, in, "apple", 5)
	if n := len(streamtest.Read(tt, byLetter)); n != 1 {
		t.Fatalf("%d repartitioned records, want 1", n)
	}
	if n := len(streamtest.Read(tt, out)); n != 0 {
		t.Fatalf("%d outputs: the repartition topic was consumed without Loopback", n)
	}
}

// A looped record that fails transiently fails the step, and is fed again
// at the next one, once.
func TestLoopbackRetriesAFailedRecord(t *testing.T) {
	down := true
	p, byLetter, sums := letters(func() error {
		if down {
			return errX
		}
		return nil
	})
	tt := streamtest.New(t, p, streamtest.Loopback(byLetter.Name))
	if err := streamtest.TrySend(tt, in, "apple", 5); !errors.Is(err, errX) {
		t.Fatalf("TrySend = %v, want the looped record's failure", err)
	}
	down = false
	streamtest.Send(tt, in, "avocado", 7)
	if n, _ := streamtest.Get(tt, sums, "a"); n != 12 {
		t.Fatalf("sums[a] = %d, want 12 (the failed record fed again, once)", n)
	}
}

// A table keyed otherwise than the input that writes it is found in the
// task that holds it, and a looped record's offset is the one Read reports.
func TestGetAcrossTasksAndLoopedOffsets(t *testing.T) {
	p := stream.NewProcessor("byid", stream.ExactlyOnce)
	seen := stream.NewTable(p, "seen", str, i64)
	stream.Consume(p, in, func(c *stream.Ctx, k string, v int64) error {
		return seen.Put(c, "request-"+strconv.FormatInt(v, 10), c.Offset())
	})
	tt := streamtest.New(t, p, streamtest.Partitions(8))
	for i := range 20 {
		streamtest.Send(tt, in, "user"+strconv.Itoa(i), int64(i))
	}
	for i := range 20 {
		if _, ok := streamtest.Get(tt, seen, "request-"+strconv.Itoa(i)); !ok {
			t.Fatalf("request-%d not found in any task", i)
		}
	}

	loop := stream.NewProcessor("loop", stream.ExactlyOnce)
	rep := stream.RepartitionTopic(loop, "rep", str, i64, "int64")
	stream.Repartition(loop, in, rep, func(k string, v int64) (string, bool) { return "x", true })
	offs := stream.NewTable(loop, "offsets", i64, i64)
	stream.Consume(loop, rep, func(c *stream.Ctx, _ string, v int64) error { return offs.Put(c, v, c.Offset()) })
	lt := streamtest.New(t, loop, streamtest.Loopback(rep.Name))
	for i := range 3 {
		streamtest.Send(lt, in, "k", int64(i))
	}
	for i, o := range streamtest.All(lt, rep) {
		if got, ok := streamtest.Get(lt, offs, o.Value); !ok || got != o.Offset {
			t.Errorf("looped record %d: handler saw offset %d (%v), Read reports %d", i, got, ok, o.Offset)
		}
	}
}

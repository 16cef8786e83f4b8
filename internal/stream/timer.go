package stream

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Timers live in each task's system store under "t/<timer>\x00<id>" with the
// deadline (Unix ms, 8 bytes big endian) before the payload. Scheduling and
// firing are writes of the transaction that does them, so a deadline
// survives a crash or a rebalance exactly as the state around it does.
const timerPrefix = "t/"

type timerDef interface {
	timerName() string
	fire(c *Ctx, id string, payload []byte) error
}

// Timer is a named kind of per-task timer with a typed payload.
type Timer[T any] struct {
	name  string
	codec Codec[T]
	fn    func(c *Ctx, id string, payload T) error
	sys   *Table[string, []byte]
}

// NewTimer declares a timer of p; fn runs in the task that scheduled it once
// its deadline has passed (at the next processing tick), and the timer is
// removed unless fn schedules it again.
func NewTimer[T any](p *Processor, name string, codec Codec[T], fn func(c *Ctx, id string, payload T) error) *Timer[T] {
	if strings.ContainsRune(name, 0) {
		p.errorf("timer name %q contains NUL", name)
	}
	t := &Timer[T]{name: name, codec: codec, fn: fn, sys: p.sys}
	p.timers = append(p.timers, t)
	return t
}

func (t *Timer[T]) timerName() string { return t.name }

// undoTimer restores the index entry of key if the handler fails.
func (c *Ctx) undoTimer(key string) {
	idx := c.t.timers
	prev, had := idx.at[key]
	c.e.undo = append(c.e.undo, func() {
		if had {
			idx.set(key, prev)
		} else {
			idx.remove(key)
		}
	})
}

func (t *Timer[T]) fire(c *Ctx, id string, payload []byte) error {
	v, err := t.codec.Decode(payload)
	if err != nil {
		return invalidClass("decode", fmt.Errorf("timer %s/%s: decode payload: %w", t.name, id, err))
	}
	return t.fn(c, id, v)
}

func timerKey(name, id string) string { return timerPrefix + name + "\x00" + id }

// Schedule sets (or moves) timer id of the current task to fire at at.
func (t *Timer[T]) Schedule(c *Ctx, id string, at time.Time, payload T) error {
	if c.t == nil {
		return errNoTask
	}
	b := make([]byte, 8, 64)
	binary.BigEndian.PutUint64(b, uint64(at.UnixMilli()))
	b, err := t.codec.Append(b, payload)
	if err != nil {
		return fmt.Errorf("timer %s: encode payload: %w", t.name, err)
	}
	k := timerKey(t.name, id)
	if err := t.sys.Put(c, k, b); err != nil {
		return err
	}
	c.undoTimer(k)
	c.t.timers.set(k, at.UnixMilli())
	return nil
}

// Cancel removes timer id of the current task; it is not an error if none
// is pending.
func (t *Timer[T]) Cancel(c *Ctx, id string) error {
	if c.t == nil {
		return errNoTask
	}
	k := timerKey(t.name, id)
	c.undoTimer(k)
	c.t.timers.remove(k)
	return t.sys.Delete(c, k)
}

// Pending reports whether timer id is scheduled in the current task, and
// when.
func (t *Timer[T]) Pending(c *Ctx, id string) (time.Time, bool) {
	if c.t == nil {
		return time.Time{}, false
	}
	ms, ok := c.t.timers.at[timerKey(t.name, id)]
	return time.UnixMilli(ms), ok
}

// timerIndex is the in-memory index of a task's pending timers: a map of the
// current deadlines and a min-heap with lazy deletion.
type timerIndex struct {
	at map[string]int64
	h  timerHeap
}

type timerEntry struct {
	key string
	at  int64
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newTimerIndex() *timerIndex { return &timerIndex{at: make(map[string]int64)} }

func (x *timerIndex) set(key string, at int64) {
	x.at[key] = at
	heap.Push(&x.h, timerEntry{key, at})
}

func (x *timerIndex) remove(key string) { delete(x.at, key) }

// next returns the earliest live deadline.
func (x *timerIndex) next() (int64, bool) {
	for x.h.Len() > 0 {
		e := x.h[0]
		if at, ok := x.at[e.key]; ok && at == e.at {
			return e.at, true
		}
		heap.Pop(&x.h)
	}
	return 0, false
}

// due pops the keys whose deadline is at or before now.
func (x *timerIndex) due(now int64) []timerEntry {
	var out []timerEntry
	for x.h.Len() > 0 && x.h[0].at <= now {
		e := heap.Pop(&x.h).(timerEntry)
		if at, ok := x.at[e.key]; ok && at == e.at {
			out = append(out, e)
		}
	}
	return out
}

func parseTimerKey(k string) (name, id string, ok bool) {
	if !strings.HasPrefix(k, timerPrefix) {
		return "", "", false
	}
	rest := k[len(timerPrefix):]
	i := strings.IndexByte(rest, 0)
	if i < 0 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

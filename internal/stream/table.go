package stream

import (
	"errors"
	"fmt"

	"github.com/cratestream/cratestream/internal/kv"
)

// storeDef is a declared store, independent of its key and value types.
type storeDef interface {
	storeName() string
	changelogTopic() string
	// ownChangelog is false when the changelog is a catalogue topic the
	// processor does not create (user-profiles.v1 for the profile store).
	ownChangelog() bool
	onDisk() (bool, int64)
	newState(base kv.Store) storeState
}

// storeState is one task's instance of a store: a typed write overlay on a
// byte-level kv.Store. Writes stay in the overlay until the transaction (or
// at-least-once commit) that carries their changelog records succeeds; an
// abort discards them, so the store never holds effects of uncommitted input.
type storeState interface {
	// flush encodes the overlay's unflushed writes and hands each to emit
	// as a changelog record (nil value = delete).
	flush(emit func(key, value []byte)) error
	// commit applies the flushed writes to the base store, recording
	// checkpoint (the next changelog offset) when it is not NoCheckpoint.
	commit(checkpoint int64) error
	// discard drops the overlay and the flushed writes.
	discard()
	base() kv.Store
	pending() int
}

// TableOption configures a table.
type TableOption func(*tableOpts)

type tableOpts struct {
	changelog  string
	onDisk     bool
	cacheBytes int64
}

// WithChangelog makes an existing catalogue topic the table's changelog (it
// must be compacted and co-partitioned with the inputs). The table's writes
// are then the processor's output: user-profiles.v1 is the profile store's
// changelog.
func WithChangelog(topic string) TableOption {
	return func(o *tableOpts) { o.changelog = topic }
}

// OnDisk keeps the table in a Pebble store under the runner's state
// directory with a block cache of cacheBytes, checkpointed so that a restart
// replays only the changelog written since.
func OnDisk(cacheBytes int64) TableOption {
	return func(o *tableOpts) { o.onDisk, o.cacheBytes = true, cacheBytes }
}

// Table is a key-value store of each task of a processor, backed by a
// compacted changelog topic and restored from it on assignment.
type Table[K comparable, V any] struct {
	idx   int
	name  string
	key   Codec[K]
	value Codec[V]
	opts  tableOpts
	proc  string
}

// NewTable declares a table of p.
func NewTable[K comparable, V any](p *Processor, name string, key Codec[K], value Codec[V], opts ...TableOption) *Table[K, V] {
	t := &Table[K, V]{idx: len(p.stores), name: name, key: key, value: value, proc: p.name}
	for _, o := range opts {
		o(&t.opts)
	}
	for _, s := range p.stores {
		if s.storeName() == name {
			p.errorf("store %s declared twice", name)
		}
	}
	p.stores = append(p.stores, t)
	return t
}

// Name is the table's name.
func (t *Table[K, V]) Name() string { return t.name }

func (t *Table[K, V]) storeName() string { return t.name }
func (t *Table[K, V]) changelogTopic() string {
	if t.opts.changelog != "" {
		return t.opts.changelog
	}
	return t.proc + "-" + t.name + "-changelog"
}
func (t *Table[K, V]) ownChangelog() bool    { return t.opts.changelog == "" }
func (t *Table[K, V]) onDisk() (bool, int64) { return t.opts.onDisk, t.opts.cacheBytes }
func (t *Table[K, V]) newState(b kv.Store) storeState {
	return &tableState[K, V]{def: t, b: b, overlay: make(map[K]*pendingValue[V]), batch: kv.NewBatch()}
}

var errNoTask = errors.New("stream: table used outside a task (stateless input)")

func (t *Table[K, V]) state(c *Ctx) (*tableState[K, V], error) {
	if c.t == nil {
		return nil, errNoTask
	}
	return c.t.stores[t.idx].(*tableState[K, V]), nil
}

// Get returns the value of key in the current task's store, including
// writes of the current transaction.
func (t *Table[K, V]) Get(c *Ctx, key K) (V, bool, error) {
	var zero V
	s, err := t.state(c)
	if err != nil {
		return zero, false, err
	}
	return s.get(key)
}

// Put sets key to value. The table keeps value: do not modify it after Put
// unless you Put it again.
//
// If the handler then fails, its Puts and Deletes are undone; changes made
// in place to a value returned by Get are not, so validate input before
// modifying state.
func (t *Table[K, V]) Put(c *Ctx, key K, value V) error {
	s, err := t.state(c)
	if err != nil {
		return err
	}
	s.write(c, key, &pendingValue[V]{val: value, dirty: true, written: true})
	return nil
}

// Keys returns the keys of the current task's store, including writes of
// the open transaction, in no particular order.
func (t *Table[K, V]) Keys(c *Ctx) ([]K, error) {
	s, err := t.state(c)
	if err != nil {
		return nil, err
	}
	var out []K
	err = s.b.Range(nil, func(k, _ []byte) error {
		key, err := t.key.Decode(k)
		if err != nil {
			return fmt.Errorf("store %s: decode key: %w", t.name, err)
		}
		if e, ok := s.overlay[key]; ok && (e.deleted || e.absent) {
			return nil
		}
		out = append(out, key)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Written in this transaction and not yet in the base store. Entries
	// cached by Get are in the base already and were listed above.
	for k, e := range s.overlay {
		if e.deleted || e.absent || !e.written {
			continue
		}
		kb, err := t.key.Append(s.keyBuf[:0], k)
		if err != nil {
			return nil, err
		}
		s.keyBuf = kb
		if _, inBase, err := s.b.Get(kb); err != nil {
			return nil, fmt.Errorf("store %s: %w", t.name, err)
		} else if !inBase {
			out = append(out, k)
		}
	}
	return out, nil
}

// Delete removes key.
func (t *Table[K, V]) Delete(c *Ctx, key K) error {
	s, err := t.state(c)
	if err != nil {
		return err
	}
	s.write(c, key, &pendingValue[V]{deleted: true, dirty: true, written: true})
	return nil
}

func (s *tableState[K, V]) write(c *Ctx, key K, e *pendingValue[V]) {
	prev, had := s.overlay[key]
	s.overlay[key] = e
	c.e.undo = append(c.e.undo, func() {
		if had {
			s.overlay[key] = prev
		} else {
			delete(s.overlay, key)
		}
	})
}

type pendingValue[V any] struct {
	val     V
	deleted bool
	dirty   bool // written since the last flush
	written bool // written in this transaction (not a cached read)
	absent  bool // cached miss
}

type tableState[K comparable, V any] struct {
	def     *Table[K, V]
	b       kv.Store
	overlay map[K]*pendingValue[V]
	batch   *kv.Batch // flushed writes awaiting commit
	keyBuf  []byte
}

func (s *tableState[K, V]) base() kv.Store { return s.b }
func (s *tableState[K, V]) pending() int   { return len(s.overlay) }

func (s *tableState[K, V]) get(key K) (V, bool, error) {
	var zero V
	if e, ok := s.overlay[key]; ok {
		if e.deleted || e.absent {
			return zero, false, nil
		}
		return e.val, true, nil
	}
	var err error
	s.keyBuf, err = s.def.key.Append(s.keyBuf[:0], key)
	if err != nil {
		return zero, false, err
	}
	raw, ok, err := s.b.Get(s.keyBuf)
	if err != nil {
		return zero, false, fmt.Errorf("store %s: %w", s.def.name, err)
	}
	if !ok {
		s.overlay[key] = &pendingValue[V]{absent: true}
		return zero, false, nil
	}
	v, err := s.def.value.Decode(raw)
	if err != nil {
		return zero, false, fmt.Errorf("store %s: decode value: %w", s.def.name, err)
	}
	// Cache the decoded value: the next Get of this key in the same
	// commit window skips the decode.
	s.overlay[key] = &pendingValue[V]{val: v}
	return v, true, nil
}

func (s *tableState[K, V]) flush(emit func(key, value []byte)) error {
	for k, e := range s.overlay {
		if !e.dirty {
			continue
		}
		kb, err := s.def.key.Append(nil, k)
		if err != nil {
			return fmt.Errorf("store %s: encode key: %w", s.def.name, err)
		}
		if e.deleted {
			emit(kb, nil)
			s.batch.Delete(kb)
		} else {
			vb, err := s.def.value.Append(nil, e.val)
			if err != nil {
				return fmt.Errorf("store %s: encode value: %w", s.def.name, err)
			}
			emit(kb, vb)
			s.batch.Put(kb, vb)
		}
		e.dirty = false
	}
	return nil
}

func (s *tableState[K, V]) commit(checkpoint int64) error {
	s.batch.Checkpoint = checkpoint
	if s.batch.Len() > 0 || checkpoint != kv.NoCheckpoint {
		if err := s.b.Apply(s.batch); err != nil {
			return fmt.Errorf("store %s: %w", s.def.name, err)
		}
	}
	s.batch.Reset()
	clear(s.overlay)
	return nil
}

func (s *tableState[K, V]) discard() {
	s.batch.Reset()
	clear(s.overlay)
}

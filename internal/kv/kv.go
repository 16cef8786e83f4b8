// Package kv holds the byte-level key-value stores behind the stream
// runtime's state: an in-memory map and an on-disk Pebble database. Both
// record the changelog position their content reflects, so that a task can
// tell how much of its changelog it still has to replay.
package kv

import (
	"errors"
	"slices"
)

// NoCheckpoint is the checkpoint of a store that has not applied anything.
const NoCheckpoint int64 = -1

// ErrClosed is returned by every method of a closed store.
var ErrClosed = errors.New("kv: store closed")

// Store is the state of one task's store. Reads may run concurrently with
// each other and with Apply (the gateway's key lookups read while the task
// writes); writes come from one goroutine.
type Store interface {
	// Get returns the value of key. The returned slice must not be
	// modified; it stays valid after later writes.
	Get(key []byte) (value []byte, ok bool, err error)
	// Apply writes a batch atomically together with its checkpoint.
	Apply(b *Batch) error
	// Checkpoint returns the changelog offset to resume restoring from:
	// everything before it is reflected in the store. NoCheckpoint means
	// the store is empty and restore must start at the beginning.
	Checkpoint() (int64, error)
	// Range calls fn for every key with the prefix, in key order for
	// persistent stores and in no particular order for memory stores.
	Range(prefix []byte, fn func(key, value []byte) error) error
	// Len is the number of keys.
	Len() int
	// Wipe deletes every key and the checkpoint (a restore from scratch).
	Wipe() error
	// Persistent says whether the store survives a process restart.
	Persistent() bool
	Close() error
}

// Reserver is implemented by stores that can prepare for n keys (a restore
// that knows how much it will replay).
type Reserver interface {
	Reserve(n int)
}

type op struct {
	key, value []byte
	del        bool
}

// Batch is a set of writes applied atomically, with the changelog position
// they bring the store to.
type Batch struct {
	ops []op
	// Checkpoint is the changelog offset after this batch; NoCheckpoint
	// leaves the store's checkpoint unchanged.
	Checkpoint int64
}

// NewBatch returns an empty batch that leaves the checkpoint unchanged.
func NewBatch() *Batch { return &Batch{Checkpoint: NoCheckpoint} }

// Put sets key to value. The batch keeps the slices: do not modify them.
func (b *Batch) Put(key, value []byte) { b.ops = append(b.ops, op{key: key, value: value}) }

// Delete removes key.
func (b *Batch) Delete(key []byte) { b.ops = append(b.ops, op{key: key, del: true}) }

// Grow makes room for n more writes.
func (b *Batch) Grow(n int) { b.ops = slices.Grow(b.ops, n) }

// Len is the number of writes in the batch.
func (b *Batch) Len() int { return len(b.ops) }

// Reset empties the batch for reuse.
func (b *Batch) Reset() {
	clear(b.ops)
	b.ops = b.ops[:0]
	b.Checkpoint = NoCheckpoint
}

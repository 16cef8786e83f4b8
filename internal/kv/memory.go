package kv

import (
	"bytes"
	"hash/maphash"
	"sync"
)

// Memory is a Store in process memory, lost with the process and restored
// from the changelog on assignment.
//
// It holds no Go pointer per key: keys and values live in large byte chunks
// and the index maps a 64-bit hash to a slot of fixed-size integers. A
// million-key store is then a handful of objects for the garbage collector
// instead of millions, which keeps GC mark phases (and the tail latency they
// cause in the processing loop) short, and makes a restore little more than
// copying bytes. Overwritten values become garbage in their chunk; once the
// garbage outweighs the live data the chunks are compacted.
type Memory struct {
	mu    sync.RWMutex
	seed  maphash.Seed
	hash  func(seed maphash.Seed, b []byte) uint64 // maphash.Bytes; tests force collisions
	index map[uint64]uint32                        // key hash -> slot
	// over holds keys whose hash collides with another key's (about one
	// in 2^40 pairs; kept for correctness, not speed).
	over       map[string]uint32
	slots      []slot
	free       []uint32
	chunks     [][]byte
	live       int64 // bytes of keys and values reachable from slots
	garbage    int64
	n          int
	checkpoint int64
	closed     bool
}

// slot locates one entry: the key then the value, contiguous in a chunk.
type slot struct {
	chunk, off, klen, vlen uint32
}

const chunkSize = 4 << 20

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{seed: maphash.MakeSeed(), hash: maphash.Bytes, index: make(map[uint64]uint32), checkpoint: NoCheckpoint}
}

// Reserve sizes an empty store's index for n keys, so a restore does not
// rehash it again and again as it grows. An empty store may still hold the
// slots, free list and chunks of keys it once had (all deleted): they go
// with the index, since the free list names slots of the old slot list.
func (s *Memory) Reserve(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 && n > 0 {
		s.index = make(map[uint64]uint32, n)
		s.slots = make([]slot, 0, n)
		s.over, s.free, s.chunks = nil, nil, nil
		s.live, s.garbage = 0, 0
	}
}

func (s *Memory) keyOf(sl slot) []byte {
	c := s.chunks[sl.chunk]
	return c[sl.off : sl.off+sl.klen : sl.off+sl.klen]
}

func (s *Memory) valueOf(sl slot) []byte {
	c := s.chunks[sl.chunk]
	start := sl.off + sl.klen
	return c[start : start+sl.vlen : start+sl.vlen]
}

// find returns the slot of key.
func (s *Memory) find(h uint64, key []byte) (uint32, bool) {
	if i, ok := s.index[h]; ok && bytes.Equal(s.keyOf(s.slots[i]), key) {
		return i, true
	}
	if s.over != nil {
		i, ok := s.over[string(key)]
		return i, ok
	}
	return 0, false
}

func (s *Memory) Get(key []byte) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, false, ErrClosed
	}
	i, ok := s.find(s.hash(s.seed, key), key)
	if !ok {
		return nil, false, nil
	}
	return s.valueOf(s.slots[i]), true, nil
}

// write appends key and value to the current chunk and returns their slot.
func (s *Memory) write(key, value []byte) slot {
	need := len(key) + len(value)
	last := len(s.chunks) - 1
	if last < 0 || len(s.chunks[last])+need > cap(s.chunks[last]) {
		size := max(chunkSize, need)
		s.chunks = append(s.chunks, make([]byte, 0, size))
		last++
	}
	c := s.chunks[last]
	off := len(c)
	c = append(c, key...)
	c = append(c, value...)
	s.chunks[last] = c
	s.live += int64(need)
	return slot{chunk: uint32(last), off: uint32(off), klen: uint32(len(key)), vlen: uint32(len(value))}
}

func (s *Memory) put(key, value []byte) {
	h := s.hash(s.seed, key)
	if i, ok := s.find(h, key); ok {
		old := s.slots[i]
		s.garbage += int64(old.klen + old.vlen)
		s.live -= int64(old.klen + old.vlen)
		s.slots[i] = s.write(key, value)
		return
	}
	var i uint32
	if n := len(s.free); n > 0 {
		i = s.free[n-1]
		s.free = s.free[:n-1]
		s.slots[i] = s.write(key, value)
	} else {
		i = uint32(len(s.slots))
		s.slots = append(s.slots, s.write(key, value))
	}
	if _, taken := s.index[h]; taken {
		if s.over == nil {
			s.over = make(map[string]uint32)
		}
		s.over[string(key)] = i
	} else {
		s.index[h] = i
	}
	s.n++
}

func (s *Memory) del(key []byte) {
	h := s.hash(s.seed, key)
	i, ok := s.find(h, key)
	if !ok {
		return
	}
	if j, ok := s.index[h]; ok && j == i {
		delete(s.index, h)
	} else {
		delete(s.over, string(key))
	}
	old := s.slots[i]
	s.garbage += int64(old.klen + old.vlen)
	s.live -= int64(old.klen + old.vlen)
	s.slots[i] = slot{}
	s.free = append(s.free, i)
	s.n--
}

func (s *Memory) Apply(b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, o := range b.ops {
		if o.del {
			s.del(o.key)
		} else {
			s.put(o.key, o.value)
		}
	}
	if b.Checkpoint != NoCheckpoint {
		s.checkpoint = b.Checkpoint
	}
	if s.garbage > 32<<20 && s.garbage > s.live {
		s.compact()
	}
	return nil
}

// compact copies the live entries into fresh chunks. Slices handed out by
// Get keep pointing into the old chunks, which stay valid until unused.
func (s *Memory) compact() {
	old := s.chunks
	s.chunks = nil
	s.live, s.garbage = 0, 0
	free := s.freeSet()
	for i, sl := range s.slots {
		if free[uint32(i)] {
			continue
		}
		c := old[sl.chunk]
		entry := c[sl.off : sl.off+sl.klen+sl.vlen]
		s.slots[i] = s.write(entry[:sl.klen], entry[sl.klen:])
	}
}

func (s *Memory) freeSet() map[uint32]bool {
	free := make(map[uint32]bool, len(s.free))
	for _, i := range s.free {
		free[i] = true
	}
	return free
}

func (s *Memory) Checkpoint() (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.checkpoint, nil
}

func (s *Memory) Range(prefix []byte, fn func(k, v []byte) error) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	type kvp struct{ k, v []byte }
	var hits []kvp
	free := s.freeSet()
	for i, sl := range s.slots {
		if free[uint32(i)] {
			continue
		}
		if k := s.keyOf(sl); bytes.HasPrefix(k, prefix) {
			hits = append(hits, kvp{k, s.valueOf(sl)})
		}
	}
	s.mu.RUnlock()
	// fn runs without the lock so it may read the store again.
	for _, h := range hits {
		if err := fn(h.k, h.v); err != nil {
			return err
		}
	}
	return nil
}

func (s *Memory) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n
}

func (s *Memory) Wipe() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.index = make(map[uint64]uint32)
	s.over, s.slots, s.free, s.chunks = nil, nil, nil, nil
	s.live, s.garbage, s.n = 0, 0, 0
	s.checkpoint = NoCheckpoint
	return nil
}

func (s *Memory) Persistent() bool { return false }

func (s *Memory) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.index, s.over, s.slots, s.free, s.chunks = nil, nil, nil, nil, nil
	return nil
}

package kv

import (
	"bytes"
	"sync"
)

// Memory is a Store in a Go map. It is lost with the process and restored
// from the changelog on every assignment.
type Memory struct {
	mu         sync.RWMutex
	m          map[string][]byte
	checkpoint int64
	closed     bool
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{m: make(map[string][]byte), checkpoint: NoCheckpoint}
}

func (s *Memory) Get(key []byte) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, false, ErrClosed
	}
	v, ok := s.m[string(key)]
	return v, ok, nil
}

func (s *Memory) Apply(b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, o := range b.ops {
		if o.del {
			delete(s.m, string(o.key))
		} else {
			s.m[string(o.key)] = o.value
		}
	}
	if b.Checkpoint != NoCheckpoint {
		s.checkpoint = b.Checkpoint
	}
	return nil
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
	type kvp struct {
		k string
		v []byte
	}
	var hits []kvp
	for k, v := range s.m {
		if bytes.HasPrefix([]byte(k), prefix) {
			hits = append(hits, kvp{k, v})
		}
	}
	s.mu.RUnlock()
	// fn runs without the lock so it may read the store again.
	for _, h := range hits {
		if err := fn([]byte(h.k), h.v); err != nil {
			return err
		}
	}
	return nil
}

func (s *Memory) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

func (s *Memory) Wipe() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.m = make(map[string][]byte)
	s.checkpoint = NoCheckpoint
	return nil
}

func (s *Memory) Persistent() bool { return false }

func (s *Memory) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.m = nil
	return nil
}

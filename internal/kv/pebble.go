package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Keys are split into two namespaces so the checkpoint can never collide
// with a user key: user keys carry the prefix 'u', metadata 'm'.
var (
	checkpointKey = []byte("mcheckpoint")
	userPrefix    = byte('u')
)

// PebbleOptions configures an on-disk store.
type PebbleOptions struct {
	// CacheBytes is the block cache size; the store holds much more than
	// this on disk. Defaults to 8 MiB.
	CacheBytes int64
	// Logger receives Pebble's errors; nil discards its info messages and
	// logs errors to slog.Default.
	Logger *slog.Logger
}

// Pebble is a Store in a Pebble database on local disk. Its checkpoint is
// written in the same atomic batch as the data it describes, so after a crash
// the store and its checkpoint always agree and a restart replays only the
// changelog after it.
type Pebble struct {
	dir   string
	db    *pebble.DB
	cache *pebble.Cache
	mu    sync.RWMutex // guards db against Close during reads
	n     int          // key count, tracked approximately for metrics
	cp    int64
}

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(string, ...any) {}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble", "msg", fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	// Pebble calls Fatalf on unrecoverable corruption; it panics right
	// after if we return, which is what Pebble expects.
	p.l.Error("pebble fatal", "msg", fmt.Sprintf(format, args...))
}

// OpenPebble opens (or creates) the store in dir.
func OpenPebble(dir string, o PebbleOptions) (*Pebble, error) {
	if o.CacheBytes <= 0 {
		o.CacheBytes = 8 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cache := pebble.NewCache(o.CacheBytes)
	db, err := pebble.Open(dir, &pebble.Options{
		Cache:  cache,
		Logger: pebbleLogger{o.Logger},
	})
	if err != nil {
		cache.Unref()
		return nil, fmt.Errorf("open pebble store %s: %w", dir, err)
	}
	s := &Pebble{dir: dir, db: db, cache: cache, cp: NoCheckpoint}
	if v, closer, err := db.Get(checkpointKey); err == nil {
		if len(v) == 8 {
			s.cp = int64(binary.BigEndian.Uint64(v))
		}
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		s.Close()
		return nil, fmt.Errorf("read checkpoint of %s: %w", dir, err)
	}
	s.n, err = s.count()
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func userKey(k []byte) []byte {
	out := make([]byte, 1+len(k))
	out[0] = userPrefix
	copy(out[1:], k)
	return out
}

func (s *Pebble) count() (int, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{userPrefix}, UpperBound: []byte{userPrefix + 1}})
	if err != nil {
		return 0, err
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n, it.Close()
}

func (s *Pebble) Get(key []byte) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, false, ErrClosed
	}
	v, closer, err := s.db.Get(userKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("pebble get: %w", err)
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, true, nil
}

func (s *Pebble) Apply(b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	pb := s.db.NewBatch()
	defer pb.Close()
	for _, o := range b.ops {
		k := userKey(o.key)
		if o.del {
			if err := pb.Delete(k, nil); err != nil {
				return err
			}
			continue
		}
		if err := pb.Set(k, o.value, nil); err != nil {
			return err
		}
	}
	if b.Checkpoint != NoCheckpoint {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(b.Checkpoint))
		if err := pb.Set(checkpointKey, v[:], nil); err != nil {
			return err
		}
	}
	// NoSync: the changelog is the durable copy. A crash loses a suffix of
	// batches together with their checkpoints, and the restore replays them.
	if err := pb.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("pebble commit: %w", err)
	}
	if b.Checkpoint != NoCheckpoint {
		s.cp = b.Checkpoint
	}
	// The count is exact only if callers do not Put existing keys, so
	// recount lazily: Len is for metrics and tests, not logic.
	s.n = -1
	return nil
}

func (s *Pebble) Checkpoint() (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return 0, ErrClosed
	}
	return s.cp, nil
}

func (s *Pebble) Range(prefix []byte, fn func(k, v []byte) error) error {
	s.mu.RLock()
	if s.db == nil {
		s.mu.RUnlock()
		return ErrClosed
	}
	lower := userKey(prefix)
	upper := prefixEnd(lower)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		s.mu.RUnlock()
		return err
	}
	type kvp struct{ k, v []byte }
	var hits []kvp
	for it.First(); it.Valid(); it.Next() {
		hits = append(hits, kvp{append([]byte(nil), it.Key()[1:]...), append([]byte(nil), it.Value()...)})
	}
	err = it.Close()
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	for _, h := range hits {
		if err := fn(h.k, h.v); err != nil {
			return err
		}
	}
	return nil
}

func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func (s *Pebble) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return 0
	}
	if s.n < 0 {
		n, err := s.count()
		if err != nil {
			return 0
		}
		s.n = n
	}
	return s.n
}

func (s *Pebble) Wipe() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	if err := s.db.DeleteRange([]byte{0}, []byte{0xff}, pebble.Sync); err != nil {
		return fmt.Errorf("wipe %s: %w", s.dir, err)
	}
	s.cp = NoCheckpoint
	s.n = 0
	return nil
}

func (s *Pebble) Persistent() bool { return true }

// Close flushes and closes the database; the checkpoint written last is
// where the next open resumes.
func (s *Pebble) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	s.cache.Unref()
	return err
}

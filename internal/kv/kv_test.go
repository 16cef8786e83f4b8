package kv

import (
	"fmt"
	"hash/maphash"
	"sort"
	"testing"
)

func stores(t *testing.T) map[string]func() Store {
	dir := t.TempDir()
	return map[string]func() Store{
		"memory": func() Store { return NewMemory() },
		"pebble": func() Store {
			s, err := OpenPebble(dir, PebbleOptions{CacheBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

func TestStores(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := open()
			defer s.Close()
			if cp, _ := s.Checkpoint(); cp != NoCheckpoint {
				t.Fatalf("new store checkpoint = %d", cp)
			}
			b := NewBatch()
			b.Put([]byte("a/1"), []byte("x"))
			b.Put([]byte("a/2"), []byte("y"))
			b.Put([]byte("b/1"), []byte("z"))
			b.Checkpoint = 10
			if err := s.Apply(b); err != nil {
				t.Fatal(err)
			}
			b.Reset()
			b.Delete([]byte("a/2"))
			b.Put([]byte("a/1"), []byte("x2"))
			if err := s.Apply(b); err != nil { // checkpoint unchanged
				t.Fatal(err)
			}
			if v, ok, err := s.Get([]byte("a/1")); err != nil || !ok || string(v) != "x2" {
				t.Fatalf("a/1 = %q %v %v", v, ok, err)
			}
			if _, ok, _ := s.Get([]byte("a/2")); ok {
				t.Fatal("a/2 not deleted")
			}
			if cp, _ := s.Checkpoint(); cp != 10 {
				t.Fatalf("checkpoint = %d, want 10", cp)
			}
			var keys []string
			if err := s.Range([]byte("a/"), func(k, v []byte) error { keys = append(keys, string(k)); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[0] != "a/1" {
				t.Fatalf("range a/ = %v", keys)
			}
			if n := s.Len(); n != 2 {
				t.Fatalf("len = %d", n)
			}
			if err := s.Wipe(); err != nil {
				t.Fatal(err)
			}
			if cp, _ := s.Checkpoint(); cp != NoCheckpoint || s.Len() != 0 {
				t.Fatalf("after wipe: checkpoint %d len %d", cp, s.Len())
			}
		})
	}
}

// The Pebble store's data and checkpoint survive a reopen together.
func TestPebbleReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenPebble(dir, PebbleOptions{CacheBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ { // far more than the cache
		b := NewBatch()
		b.Put([]byte(fmt.Sprintf("k%05d", i)), make([]byte, 512))
		b.Checkpoint = int64(i + 1)
		if err := s.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenPebble(dir, PebbleOptions{CacheBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if cp, _ := s.Checkpoint(); cp != 2000 {
		t.Fatalf("checkpoint after reopen = %d", cp)
	}
	if s.Len() != 2000 {
		t.Fatalf("len after reopen = %d", s.Len())
	}
	var keys []string
	_ = s.Range([]byte("k0000"), func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
	if !sort.StringsAreSorted(keys) || len(keys) != 10 {
		t.Fatalf("range = %v", keys)
	}
	if _, _, err := (&Pebble{}).Get([]byte("x")); err != ErrClosed {
		t.Fatalf("closed store: %v", err)
	}
}

func BenchmarkMemoryApply(b *testing.B) {
	s := NewMemory()
	batch := NewBatch()
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("user%07d", i))
	}
	val := make([]byte, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		batch.Reset()
		for _, k := range keys {
			batch.Put(k, val)
		}
		_ = s.Apply(batch)
	}
	b.ReportMetric(float64(b.N*len(keys))/b.Elapsed().Seconds(), "puts/s")
}

// Keys whose hashes collide and values overwritten past the compaction
// threshold keep their exact contents.
func TestMemoryCollisionsAndCompaction(t *testing.T) {
	s := NewMemory()
	s.hash = func(_ maphash.Seed, b []byte) uint64 { return uint64(len(b)) } // everything of one length collides
	want := map[string]string{}
	for round := 0; round < 6; round++ {
		b := NewBatch()
		for i := 0; i < 20000; i++ {
			k := fmt.Sprintf("key%05d", i)
			v := fmt.Sprintf("%s-round%d-%0400d", k, round, i)
			if i%7 == round {
				b.Delete([]byte(k))
				delete(want, k)
				continue
			}
			b.Put([]byte(k), []byte(v))
			want[k] = v
		}
		if err := s.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != len(want) {
		t.Fatalf("len %d, want %d", s.Len(), len(want))
	}
	for k, v := range want {
		got, ok, _ := s.Get([]byte(k))
		if !ok || string(got) != v {
			t.Fatalf("%s = %.30q, %v", k, got, ok)
		}
	}
	if s.garbage > s.live+32<<20 {
		t.Errorf("garbage %d not compacted (live %d)", s.garbage, s.live)
	}
	n := 0
	_ = s.Range(nil, func(k, v []byte) error { n++; return nil })
	if n != len(want) {
		t.Errorf("range saw %d keys, want %d", n, len(want))
	}
}

// A value returned by Get stays intact after later writes and compactions.
func TestMemoryGetSurvivesCompaction(t *testing.T) {
	s := NewMemory()
	b := NewBatch()
	b.Put([]byte("k"), []byte("first"))
	_ = s.Apply(b)
	v, _, _ := s.Get([]byte("k"))
	for i := 0; i < 200; i++ {
		b.Reset()
		b.Put([]byte("k"), make([]byte, 1<<20))
		_ = s.Apply(b)
	}
	if string(v) != "first" {
		t.Fatalf("held value changed to %.10q", v)
	}
}

// A store whose keys were all deleted keeps slots on its free list; a
// Reserve (a restore of the changelog tail after a rebalance) must not leave
// that free list pointing past the new slot list.
func TestMemoryReserveAfterDeletes(t *testing.T) {
	s := NewMemory()
	b := NewBatch()
	b.Put([]byte("req-1"), []byte("pending"))
	b.Put([]byte("req-2"), []byte("pending"))
	if err := s.Apply(b); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	b.Delete([]byte("req-1"))
	b.Delete([]byte("req-2"))
	if err := s.Apply(b); err != nil {
		t.Fatal(err)
	}
	s.Reserve(10)
	for i := range 3 {
		b.Reset()
		k := fmt.Sprintf("req-%d", 3+i)
		b.Put([]byte(k), []byte("pending"))
		if err := s.Apply(b); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := s.Get([]byte(k)); err != nil || !ok || string(v) != "pending" {
			t.Fatalf("%s = %q, %v, %v", k, v, ok, err)
		}
	}
	if s.Len() != 3 {
		t.Fatalf("len = %d, want 3", s.Len())
	}
	var n int
	if err := s.Range(nil, func(_, _ []byte) error { n++; return nil }); err != nil || n != 3 {
		t.Fatalf("range saw %d keys (%v), want 3", n, err)
	}
}

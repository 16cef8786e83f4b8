package kv

import (
	"fmt"
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

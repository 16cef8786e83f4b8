package cartopt

import (
	"bytes"
	"testing"
)

// BenchmarkReadInput times ReadInput alone on the shared problems.
func BenchmarkReadInput(b *testing.B) {
	for _, name := range sharedFiles {
		data := readShared(b, name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ReadInput(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSolveJSON times the streaming parse plus solve (listings
// filtered as they are read, never held).
func BenchmarkSolveJSON(b *testing.B) {
	for _, name := range []string{"medium", "large"} {
		data := readShared(b, name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := SolveJSON(bytes.NewReader(data), Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

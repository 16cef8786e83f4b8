package cartopt

import (
	"bytes"
	"testing"
)

// BenchmarkSolve times parse plus solve, the work of `cratestream cart
// solve` minus process start, on the shared problems (issue targets: under
// 10 ms on medium, under 150 ms on large).
func BenchmarkSolve(b *testing.B) {
	for _, name := range sharedFiles {
		data := readShared(b, name)
		for _, multi := range []bool{false, true} {
			label := name
			if multi {
				label += "/multi"
			}
			b.Run(label, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					p, err := ReadInput(bytes.NewReader(data))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := Solve(p, Options{MultiSeller: multi}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

package cartopt

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cratestream/cratestream/internal/testutil"
)

func TestScratchFiles(t *testing.T) {
	dir := testutil.SharedDir(t, "carts")
	for _, name := range []string{"small", "medium", "shipping", "large"} {
		for _, multi := range []bool{false, true} {
			for _, obj := range []string{"seed", "sum"} {
				data, err := os.ReadFile(filepath.Join(dir, name+".json"))
				if err != nil {
					t.Fatal(err)
				}
				t0 := time.Now()
				p, err := ReadInput(bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				t1 := time.Now()
				r, err := Solve(p, Options{MultiSeller: multi, Objective: obj})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s multi=%v %s: parse %v solve %v carts %d", name, multi, obj, t1.Sub(t0), time.Since(t1), len(r.Carts))
				if name == "small" || (name == "shipping" && obj == "seed") {
					var b bytes.Buffer
					r.WriteJSON(&b)
					t.Log(b.String())
				}
			}
		}
	}
}

package schemas_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsFresh regenerates the protobuf Go code with the pinned
// buf and protoc-gen-go into a temporary directory and fails if it differs
// from the committed code: run `make generate` after editing a .proto.
func TestGeneratedCodeIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("builds buf; skipped with -short")
	}
	out := t.TempDir()
	cmd := exec.Command("./generate.sh", out)
	cmd.Stderr = os.Stderr
	if b, err := cmd.Output(); err != nil {
		t.Fatalf("generate.sh: %v\n%s", err, b)
	}
	committed, err := filepath.Glob("cratestreamv1/*.pb.go")
	if err != nil || len(committed) == 0 {
		t.Fatalf("no committed generated code: %v", err)
	}
	fresh, _ := filepath.Glob(filepath.Join(out, "cratestreamv1", "*.pb.go"))
	if len(fresh) != len(committed) {
		t.Fatalf("generate.sh produced %d files, %d are committed: run make generate", len(fresh), len(committed))
	}
	for _, c := range committed {
		want, err := os.ReadFile(filepath.Join(out, c))
		if err != nil {
			t.Fatalf("%s is committed but not generated: run make generate", c)
		}
		got, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run make generate", c)
		}
	}
}

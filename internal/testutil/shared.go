// Package testutil holds helpers shared by tests: where ../shared lives and
// how to start the servers tests need.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// SharedDir returns the workspace's shared directory (../shared next to the
// repository root), joined with elems. When it is absent the test is
// skipped with a clear message, unless CI=true, where it fails: CI always
// has it.
func SharedDir(t testing.TB, elems ...string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(append([]string{root, "..", "shared"}, elems...)...)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (CI=true): the shared fixtures must be present", dir)
		}
		t.Skipf("skipping: %s is absent (a clone outside the workspace has no ../shared)", dir)
	}
	return dir
}

// RepoRoot walks up from the working directory to the directory holding
// go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

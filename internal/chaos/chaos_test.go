package chaos_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cratestream/cratestream/internal/chaos"
	"github.com/cratestream/cratestream/internal/cli"
)

// TestMain makes this test binary the cratestream binary of the processes
// the suite starts (CRATESTREAM_TEST_AS_MAIN=1): the same cli.Main as
// cmd/cratestream, built once with the test, no separate go build.
func TestMain(m *testing.M) {
	if os.Getenv("CRATESTREAM_TEST_AS_MAIN") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestShortSuite runs the short chaos suite with real processes: the
// counter exactly-once with at least 5 kills (one at least inside a
// transaction), the zombie, and the cart builder exactly-once.
// CRATESTREAM_CHAOS_BINARY runs a prebuilt binary instead (e.g. one built
// with -race); CRATESTREAM_CHAOS_SEED repeats a run's choices;
// CRATESTREAM_TEST_LOG shows the driver's progress.
func TestShortSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs clusters and processors as processes and kills them (about two minutes)")
	}
	cfg := chaos.Config{Seed: uint64(time.Now().UnixNano()), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if s := os.Getenv("CRATESTREAM_CHAOS_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CRATESTREAM_CHAOS_SEED: %v", err)
		}
		cfg.Seed = seed
	}
	if os.Getenv("CRATESTREAM_TEST_LOG") != "" {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if bin := os.Getenv("CRATESTREAM_CHAOS_BINARY"); bin != "" {
		cfg.Bin = bin
	} else {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Bin, cfg.Env = exe, []string{"CRATESTREAM_TEST_AS_MAIN=1"}
	}
	// Kept when the suite fails: the processes' logs are the evidence.
	dir, err := os.MkdirTemp("", "cratestream-chaos-test-")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir = dir
	var out strings.Builder
	cfg.Out = &out
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	results, err := chaos.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seed %d, %s:\n%s", cfg.Seed, time.Since(start).Round(time.Second), out.String())
	failed := len(results) != len(chaos.ShortSuite)
	for _, r := range results {
		if !r.OK {
			failed = true
			t.Errorf("%s failed:\n  %s\n  logs: %s", r.Scenario, strings.Join(r.Problems, "\n  "), r.Dir)
		}
		atLeast := func(field string, n int) {
			t.Helper()
			if v, _ := strconv.Atoi(r.Get(field)); v < n {
				failed = true
				t.Errorf("%s: %s=%q, want at least %d", r.Scenario, field, r.Get(field), n)
			}
		}
		switch r.Scenario {
		case chaos.ScenarioCounter:
			atLeast("kills", 5)
			atLeast("mid_txn_kills", 1)
		case chaos.ScenarioZombie:
			atLeast("zombie_fenced", 1)
		case chaos.ScenarioCartbuilder:
			atLeast("kills", 5)
			atLeast("requests", 100)
		}
	}
	if failed {
		t.Logf("run directory kept: %s", dir)
		return
	}
	_ = os.RemoveAll(dir)
}

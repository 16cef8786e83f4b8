package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/cratestream/cratestream/internal/cartopt"
)

// CartSolveResult times one problem file: in process (read the file, parse,
// solve: what `cart solve` does after the process started) and as a whole
// `cratestream cart solve` process.
type CartSolveResult struct {
	File      string
	Listings  int
	Kept      int
	Carts     int
	SolveP50  time.Duration
	SolveMin  time.Duration
	ProcP50   time.Duration // zero when not measured
	ProcMin   time.Duration
	StartP50  time.Duration // the same binary printing its help: process start alone
	Reps      int
	MultiSell bool
}

// CartSolve solves path reps times in process and, when exe is not empty,
// runs `exe cart solve --input path` reps times.
func CartSolve(ctx context.Context, exe, path string, multi bool, reps int) (CartSolveResult, error) {
	r := CartSolveResult{File: path, Reps: reps, MultiSell: multi}
	var times []time.Duration
	for i := 0; i < reps; i++ {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		start := time.Now()
		data, err := os.ReadFile(path)
		if err != nil {
			return r, err
		}
		res, err := cartopt.SolveJSON(bytes.NewReader(data), cartopt.Options{MultiSeller: multi})
		if err != nil {
			return r, fmt.Errorf("%s: %w", path, err)
		}
		times = append(times, time.Since(start))
		r.Listings, r.Kept, r.Carts = res.Counts.ListingsIn, res.Counts.ListingsKept, len(res.Carts)
	}
	r.SolveP50, r.SolveMin = p50(times), slices.Min(times)
	if exe == "" {
		return r, nil
	}
	run := func(args ...string) ([]time.Duration, error) {
		var ts []time.Duration
		for i := 0; i < reps; i++ {
			cmd := exec.CommandContext(ctx, exe, args...)
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("%s %v: %w: %s", exe, args, err, out)
			}
			ts = append(ts, time.Since(start))
		}
		return ts, nil
	}
	args := []string{"cart", "solve", "--input", path}
	if multi {
		args = append(args, "--multi-seller")
	}
	ts, err := run(args...)
	if err != nil {
		return r, err
	}
	r.ProcP50, r.ProcMin = p50(ts), slices.Min(ts)
	if ts, err = run("help"); err != nil {
		return r, err
	}
	r.StartP50 = p50(ts)
	return r, nil
}

func p50(ts []time.Duration) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	return s[len(s)/2]
}

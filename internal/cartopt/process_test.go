package cartopt

import (
	"bufio"
	"os"
	"testing"
	"time"
)

// TestProcess runs one solve the way `cratestream cart solve` does — read
// the file, solve, print JSON — when CARTOPT_PROCESS names a problem file,
// so that the whole process can be timed from outside:
//
//	go test -c -o /tmp/cartopt.test ./internal/cartopt
//	time CARTOPT_PROCESS=../shared/carts/medium.json /tmp/cartopt.test -test.run TestProcess
func TestProcess(t *testing.T) {
	path := os.Getenv("CARTOPT_PROCESS")
	if path == "" {
		t.Skip("set CARTOPT_PROCESS to a problem file")
	}
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := ReadInput(f)
	if err != nil {
		t.Fatal(err)
	}
	parsed := time.Now()
	res, err := Solve(p, Options{MultiSeller: os.Getenv("CARTOPT_MULTI") != "", Objective: os.Getenv("CARTOPT_OBJECTIVE")})
	if err != nil {
		t.Fatal(err)
	}
	res.Elapsed = time.Since(start)
	if os.Getenv("CARTOPT_TIMES") != "" {
		t.Logf("parse %v solve %v (in Solve %v)", parsed.Sub(start), time.Since(parsed), res.Elapsed-parsed.Sub(start))
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	if err := res.WriteJSON(w); err != nil {
		t.Fatal(err)
	}
}

package stream

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Failpoints let the chaos suite kill a processor at the moments a random
// SIGKILL rarely hits: inside a transaction, between a commit and the store
// updates that follow it. A failpoint kills the whole process with SIGKILL,
// as a crash would: no deferred function runs, nothing is flushed or left.
const (
	// FailEOSBeforeEnd: exactly-once, the transaction's outputs and
	// changelog records are produced and flushed, the transaction is not
	// ended.
	FailEOSBeforeEnd = "eos-before-end"
	// FailEOSAfterEnd: exactly-once, the transaction committed, the
	// stores have not applied its writes.
	FailEOSAfterEnd = "eos-after-end"
	// FailALOBeforeCommit: at-least-once, the outputs are acknowledged,
	// the input offsets are not committed.
	FailALOBeforeCommit = "alo-before-commit"
)

var failpointNames = []string{FailEOSBeforeEnd, FailEOSAfterEnd, FailALOBeforeCommit}

// failpoints counts down the hits of each armed point.
type failpoints struct {
	mu   sync.Mutex
	left map[string]int
	kill func(name string) // SIGKILLs the process; tests replace it
}

// parseFailpoints parses "name:n[,name:n]".
func parseFailpoints(spec string) (*failpoints, error) {
	fp := &failpoints{left: make(map[string]int), kill: killSelf}
	for _, part := range strings.Split(spec, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		name, count, ok := strings.Cut(part, ":")
		n, err := strconv.Atoi(count)
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("failpoint %q: want name:n with n >= 1", part)
		}
		known := false
		for _, k := range failpointNames {
			known = known || k == name
		}
		if !known {
			return nil, fmt.Errorf("failpoint %q: unknown name (have %s)", name, strings.Join(failpointNames, ", "))
		}
		fp.left[name] = n
	}
	return fp, nil
}

// hit counts a pass through the named point and kills the process at the
// armed count.
func (fp *failpoints) hit(name string) {
	if fp == nil {
		return
	}
	fp.mu.Lock()
	n, armed := fp.left[name]
	if armed {
		n--
		fp.left[name] = n
	}
	fp.mu.Unlock()
	if armed && n == 0 {
		fp.kill(name)
	}
}

func killSelf(name string) {
	// The chaos driver reads this line from the process's log to tell a
	// failpoint kill from its own.
	fmt.Fprintf(os.Stderr, "cratestream: failpoint %s reached: SIGKILL pid %d\n", name, os.Getpid())
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way; nothing after the point may run
}

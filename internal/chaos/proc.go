package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cratestream/cratestream/internal/embedded"
)

// Proc is a child OS process of the driver. It runs in its own process
// group, so a signal reaches it and nothing else of ours, and with a
// parent-death signal (Linux), so the kernel kills it when the driver dies:
// no child outlives the driver, even a SIGKILLed one. Its stdout and stderr go to a
// log file whose path failures print.
type Proc struct {
	Name string
	Log  string // path of its output

	cmd  *exec.Cmd
	logf *os.File
	done chan struct{}
	werr error // Wait's result, set before done closes

	// signaled counts signals we sent that end a process (SIGKILL,
	// SIGTERM): an exit we did not cause is a crash or a failpoint.
	signaled atomic.Bool
	stopped  atomic.Bool // SIGSTOPped by us and not yet continued

	mu    sync.Mutex
	lines []string // stdout lines, when captured
	wake  chan struct{}
}

// ProcSpec is what to start.
type ProcSpec struct {
	Name string
	Bin  string
	Args []string
	// Env is appended to the driver's environment.
	Env []string
	// Log is the file stdout and stderr are appended to.
	Log string
	// CaptureStdout also keeps stdout's lines for WaitLine (they still go
	// to the log).
	CaptureStdout bool
}

// Start starts a process.
func Start(spec ProcSpec) (*Proc, error) {
	logf, err := os.OpenFile(spec.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", spec.Name, err)
	}
	fmt.Fprintf(logf, "=== %s: %s %s\n", time.Now().Format(time.RFC3339Nano), spec.Bin, strings.Join(spec.Args, " "))
	cmd := exec.Command(spec.Bin, spec.Args...)
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stderr = logf
	// Its own process group, and (on Linux) killed when the driver dies.
	cmd.SysProcAttr = embedded.ChildAttr()
	p := &Proc{Name: spec.Name, Log: spec.Log, cmd: cmd, logf: logf, done: make(chan struct{}), wake: make(chan struct{})}
	var stdout io.ReadCloser
	if spec.CaptureStdout {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			logf.Close()
			return nil, err
		}
	} else {
		cmd.Stdout = logf
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	var copied sync.WaitGroup
	if stdout != nil {
		copied.Add(1)
		go func() {
			defer copied.Done()
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 64<<10), 4<<20)
			for sc.Scan() {
				line := sc.Text()
				fmt.Fprintln(logf, line)
				p.mu.Lock()
				p.lines = append(p.lines, line)
				close(p.wake)
				p.wake = make(chan struct{})
				p.mu.Unlock()
			}
		}()
	}
	go func() {
		copied.Wait() // Wait closes the pipe: read it to the end first
		p.werr = cmd.Wait()
		fmt.Fprintf(logf, "=== %s: exited: %v\n", time.Now().Format(time.RFC3339Nano), exitText(p.werr))
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func exitText(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

// Pid is the process id (and process group id).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitErr is Wait's error once the process has exited.
func (p *Proc) ExitErr() error {
	<-p.done
	return p.werr
}

// KilledBySelf reports whether the process ended by a SIGKILL it was not
// sent by us: a failpoint (the runtime kills itself at a named point).
func (p *Proc) KilledBySelf() bool {
	if !p.Exited() || p.signaled.Load() {
		return false
	}
	var ee *exec.ExitError
	if errors.As(p.werr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	return false
}

// Crashed reports an exit we did not cause that is not a failpoint.
func (p *Proc) Crashed() bool {
	return p.Exited() && !p.signaled.Load() && !p.KilledBySelf()
}

func (p *Proc) signal(sig syscall.Signal) error {
	// The whole group: a child of the child (none today) goes too.
	if err := syscall.Kill(-p.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to %s: %w", sig, p.Name, err)
	}
	return nil
}

// Kill SIGKILLs the process and waits until it is gone.
func (p *Proc) Kill() error {
	if p.Exited() {
		return nil
	}
	p.signaled.Store(true)
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	return p.waitExit(30 * time.Second)
}

// Stop asks the process to stop (SIGTERM) and waits up to timeout; then it
// is killed. It reports whether the process stopped by itself in time with
// status 0.
func (p *Proc) Stop(timeout time.Duration) error {
	if p.Exited() {
		return p.cleanExit()
	}
	p.signaled.Store(true)
	if p.stopped.Load() {
		_ = p.signal(syscall.SIGCONT)
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.cleanExit()
	case <-time.After(timeout):
		_ = p.signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop within %s of SIGTERM (killed; log %s)", p.Name, timeout, p.Log)
	}
}

func (p *Proc) cleanExit() error {
	if p.werr != nil {
		return fmt.Errorf("%s exited with %v (log %s)", p.Name, p.werr, p.Log)
	}
	return nil
}

// dump makes a Go process print every goroutine's stack to its log and exit
// (SIGQUIT), for a process that is stuck.
func (p *Proc) dump(timeout time.Duration) error {
	if p.Exited() {
		return fmt.Errorf("%s has exited", p.Name)
	}
	p.signaled.Store(true)
	if err := p.signal(syscall.SIGQUIT); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		_ = p.signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not exit on SIGQUIT", p.Name)
	}
}

// Pause SIGSTOPs the process: it keeps its sockets and memory but runs
// nothing, like a VM stalled or a process stuck in a GC pause.
func (p *Proc) Pause() error {
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	p.stopped.Store(true)
	return nil
}

// Resume SIGCONTs a paused process.
func (p *Proc) Resume() error {
	p.stopped.Store(false)
	return p.signal(syscall.SIGCONT)
}

func (p *Proc) waitExit(timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s still running %s after SIGKILL", p.Name, timeout)
	}
}

// Lines are the stdout lines read so far (with CaptureStdout).
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// WaitLine waits for a stdout line with the prefix and returns it; it fails
// when the process exits first or ctx ends.
func (p *Proc) WaitLine(ctx context.Context, prefix string) (string, error) {
	seen := 0
	for {
		p.mu.Lock()
		for ; seen < len(p.lines); seen++ {
			if strings.HasPrefix(p.lines[seen], prefix) {
				l := p.lines[seen]
				p.mu.Unlock()
				return l, nil
			}
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-p.done:
			// Lines read before the exit are in; look once more.
			p.mu.Lock()
			n := len(p.lines)
			p.mu.Unlock()
			if seen < n {
				continue
			}
			return "", fmt.Errorf("%s exited (%v) before printing %q; log %s:\n%s", p.Name, exitText(p.werr), prefix, p.Log, Tail(p.Log, 3000))
		case <-ctx.Done():
			return "", fmt.Errorf("%s printed no %q line: %w; log %s", p.Name, prefix, ctx.Err(), p.Log)
		}
	}
}

// Tail returns the last n bytes of a file, for error messages.
func Tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(0, st.Size()-n)
	b := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(b, off)
	if off > 0 {
		return "…" + string(b)
	}
	return string(b)
}

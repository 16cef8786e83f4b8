package chaos

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Cluster is `cratestream dev kafka` running as a child process: the whole
// embedded cluster in one process, persisted in DataDir, on fixed ports so
// a restart comes back at the same addresses.
type Cluster struct {
	Bin     string
	DataDir string
	Listen  []string // host:port per broker
	Topics  bool     // --topics: create the catalogue
	LogDir  string
	// Env is added to the process's environment.
	Env []string
	// MinSessionTimeout is passed to --min-session-timeout (0: default).
	MinSessionTimeout time.Duration
	// CleanerInterval is passed to --cleaner-interval (0: default).
	CleanerInterval time.Duration

	proc     *Proc
	brokers  []string
	restarts int
}

// FreeListen returns n loopback addresses on ports free right now. The
// cluster keeps them across restarts.
func FreeListen(n int) ([]string, error) {
	var out []string
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		held = append(held, l) // held until all are picked: n distinct ports
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// Start starts (or restarts) the cluster process and waits for its brokers
// line.
func (c *Cluster) Start(ctx context.Context) error {
	if c.proc != nil && !c.proc.Exited() {
		return fmt.Errorf("cluster already running (pid %d)", c.proc.Pid())
	}
	args := []string{"dev", "kafka", "--brokers", strconv.Itoa(len(c.Listen)), "--data-dir", c.DataDir,
		"--listen", strings.Join(c.Listen, ",")}
	if c.Topics {
		args = append(args, "--topics")
	}
	if c.MinSessionTimeout > 0 {
		args = append(args, "--min-session-timeout", c.MinSessionTimeout.String())
	}
	if c.CleanerInterval > 0 {
		args = append(args, "--cleaner-interval", c.CleanerInterval.String())
	}
	p, err := Start(ProcSpec{Name: "dev kafka", Bin: c.Bin, Args: args, Env: c.Env,
		Log: filepath.Join(c.LogDir, "kafka.log"), CaptureStdout: true})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	line, err := p.WaitLine(ctx, "brokers=")
	if err != nil {
		_ = p.Kill()
		return err
	}
	brokers := strings.Split(strings.TrimPrefix(line, "brokers="), ",")
	if strings.Join(brokers, ",") != strings.Join(c.Listen, ",") {
		_ = p.Kill()
		return fmt.Errorf("dev kafka listens on %v, asked for %v", brokers, c.Listen)
	}
	if c.proc != nil {
		c.restarts++
	}
	c.proc, c.brokers = p, brokers
	return nil
}

// Brokers are the cluster's addresses.
func (c *Cluster) Brokers() []string { return c.brokers }

// Proc is the running cluster process.
func (c *Cluster) Proc() *Proc { return c.proc }

// Restarts counts starts after the first.
func (c *Cluster) Restarts() int { return c.restarts }

// Kill SIGKILLs the cluster process: every broker at once.
func (c *Cluster) Kill() error {
	if c.proc == nil {
		return nil
	}
	return c.proc.Kill()
}

// Stop stops the cluster cleanly (SIGTERM: it saves its state).
func (c *Cluster) Stop() error {
	if c.proc == nil {
		return nil
	}
	return c.proc.Stop(30 * time.Second)
}

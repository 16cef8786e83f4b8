package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// instance is one processor instance: `cratestream run <service>` with a
// stable instance id and state directory, restarted with both after every
// kill (a restarted instance fences its predecessor's transactions and, as a
// static group member, takes its partitions back).
type instance struct {
	s        *scen
	service  string
	id       string
	stateDir string
	extra    []string // flags before the service name
	logPath  string

	proc    *Proc
	logFrom int64  // size of the log at the latest start
	armed   string // the failpoint of the latest start
	ops     string // ops address of the latest start, once known
}

func (s *scen) newInstance(service, id string, extra ...string) *instance {
	in := &instance{s: s, service: service, id: id, stateDir: filepath.Join(s.dir, "state", id), extra: extra,
		logPath: filepath.Join(s.logDir(), id+".log")}
	s.insts = append(s.insts, in)
	return in
}

// start starts the instance; failpoint, when set, is its
// CRATESTREAM_FAILPOINT (name:n: it SIGKILLs itself at the n-th hit).
func (in *instance) start(failpoint string) error {
	s := in.s
	args := []string{"run", "--brokers", strings.Join(s.cluster.Brokers(), ","), "--instance-id", in.id,
		"--state-dir", in.stateDir, "--http", "127.0.0.1:0", "--advertise-host", "127.0.0.1",
		"--session-timeout", s.cfg.SessionTimeout.String()}
	args = append(args, in.extra...)
	args = append(args, in.service)
	// GOTRACEBACK=all: a stuck instance's SIGQUIT dump shows every
	// goroutine.
	env := append(slices.Clone(s.cfg.Env), "GOTRACEBACK=all")
	if os.Getenv("CRATESTREAM_LOG_LEVEL") != "debug" {
		// At least info: the driver reads the ops address from the log.
		env = append(env, "CRATESTREAM_LOG_LEVEL=info")
	}
	if failpoint != "" {
		env = append(env, "CRATESTREAM_FAILPOINT="+failpoint)
	}
	in.logFrom = 0
	if st, err := os.Stat(in.logPath); err == nil {
		in.logFrom = st.Size()
	}
	p, err := Start(ProcSpec{Name: in.id, Bin: s.cfg.Bin, Args: args, Env: env, Log: in.logPath})
	if err != nil {
		return err
	}
	in.proc, in.armed, in.ops = p, failpoint, ""
	if failpoint != "" {
		s.log.Info("started armed", "instance", in.id, "failpoint", failpoint, "pid", p.Pid())
	}
	return nil
}

func (in *instance) running() bool { return in.proc != nil && !in.proc.Exited() }

var opsLine = regexp.MustCompile(`ops=http://(\S+)`)

// opsAddr waits for the ops address the latest start logged.
func (in *instance) opsAddr(ctx context.Context) (string, error) {
	if in.ops != "" {
		return in.ops, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if b, err := os.ReadFile(in.logPath); err == nil && int64(len(b)) > in.logFrom {
			if m := opsLine.FindSubmatch(b[in.logFrom:]); m != nil {
				in.ops = string(m[1])
				return in.ops, nil
			}
		}
		if in.proc.Exited() {
			return "", fmt.Errorf("%s exited before serving (%v); log %s", in.id, in.proc.werr, in.logPath)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return "", fmt.Errorf("%s logged no ops address: %w; log %s", in.id, err, in.logPath)
		}
	}
}

// metrics scrapes the running instance.
func (in *instance) metrics(ctx context.Context) (metrics, error) {
	addr, err := in.opsAddr(ctx)
	if err != nil {
		return nil, err
	}
	return scrape(ctx, addr)
}

// tasks is how many partitions the instance processes now.
func (in *instance) tasks(ctx context.Context) (int, error) {
	m, err := in.metrics(ctx)
	if err != nil {
		return 0, err
	}
	return int(m.sum("cratestream_tasks")), nil
}

// kill SIGKILLs the instance.
func (in *instance) kill() error {
	if !in.running() {
		return nil
	}
	in.countRestored()
	in.s.kills++
	in.s.log.Info("SIGKILL", "instance", in.id, "pid", in.proc.Pid())
	return in.proc.Kill()
}

// countRestored adds the changelog records the running process replayed
// into its stores so far to the scenario's total. A process that a
// failpoint kills takes its count with it: the total is a lower bound.
func (in *instance) countRestored() {
	if in.ops == "" {
		return // never served: restored nothing we could see
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if m, err := scrape(ctx, in.ops); err == nil {
		in.s.restored += int64(m.sum("cratestream_restore_records_total"))
	}
}

// failpoints a mode's processes honour (see CRATESTREAM_FAILPOINT).
func failpointsOf(mode string) []string {
	if mode == "at-least-once" {
		return []string{"alo-before-commit"}
	}
	return []string{"eos-before-end", "eos-after-end"}
}

// midTransaction says whether a failpoint kills between producing the
// outputs and committing them.
func midTransaction(fp string) bool { return fp == "eos-before-end" || fp == "alo-before-commit" }

// reap looks at the instances that exited by themselves: a failpoint's
// SIGKILL is counted and the instance restarted; any other exit is a
// failure of the run (a crash, a panic, an error exit), reported with its
// log.
func (s *scen) reap() error {
	for _, in := range s.insts {
		if in.proc == nil || !in.proc.Exited() {
			continue
		}
		switch {
		case in.proc.KilledBySelf() && in.armed != "":
			name, _, _ := strings.Cut(in.armed, ":")
			s.fpKills[name]++
			s.kills++
			s.log.Info("failpoint killed the instance", "instance", in.id, "failpoint", in.armed)
		case in.proc.signaled.Load():
			// Killed by us and not restarted yet: restart below.
		default:
			return fmt.Errorf("instance %s exited by itself: %v (failpoint %q); log %s:\n%s", in.id, in.proc.werr, in.armed,
				in.logPath, Tail(in.logPath, 3000))
		}
		if err := in.start(""); err != nil {
			return err
		}
	}
	return nil
}

// anyExit returns a channel closed when any running instance exits.
func (s *scen) anyExit(stop <-chan struct{}) <-chan struct{} {
	ch := make(chan struct{})
	var procs []*Proc
	for _, in := range s.insts {
		if in.proc != nil {
			procs = append(procs, in.proc)
		}
	}
	go func() {
		cases := make(chan struct{}, len(procs))
		for _, p := range procs {
			go func() {
				select {
				case <-p.Done():
					cases <- struct{}{}
				case <-stop:
				}
			}()
		}
		select {
		case <-cases:
			close(ch)
		case <-stop:
		}
	}()
	return ch
}

// waitOrExit waits d, or less when an instance exits.
func (s *scen) waitOrExit(ctx context.Context, d time.Duration) error {
	stop := make(chan struct{})
	defer close(stop)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.anyExit(stop):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// waitGroupFormed waits until the instances process all partitions
// between them.
func (s *scen) waitGroupFormed(ctx context.Context, partitions int) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		total := 0
		for _, in := range s.insts {
			if in.running() {
				n, err := in.tasks(ctx)
				if err == nil {
					total += n
				}
			}
		}
		if total == partitions {
			return nil
		}
		if err := s.reap(); err != nil {
			return err
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("the instances process %d of %d partitions: %w", total, partitions, err)
		}
	}
}

// waitTakeover waits until the running instances other than victim
// process every partition: the victim's were moved to them.
func (s *scen) waitTakeover(ctx context.Context, victim *instance, partitions int) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SessionTimeout+30*time.Second)
	defer cancel()
	for {
		total := 0
		for _, in := range s.insts {
			if in == victim || !in.running() {
				continue
			}
			n, err := in.tasks(ctx)
			if err == nil {
				total += n
			}
		}
		if total == partitions {
			return true, nil
		}
		for _, in := range s.insts {
			if in != victim && in.proc != nil && in.proc.Exited() {
				return false, nil // a survivor died (failpoint): no takeover to see
			}
		}
		if sleep(ctx, 100*time.Millisecond) != nil {
			var logs []string
			for _, in := range s.insts {
				if in != victim {
					logs = append(logs, fmt.Sprintf("log %s:\n%s", in.logPath, Tail(in.logPath, 1500)))
				}
			}
			return false, fmt.Errorf("the other instances took over %d of %d partitions within %s of losing %s; %s", total, partitions,
				s.cfg.SessionTimeout+30*time.Second, victim.id, strings.Join(logs, "\n"))
		}
	}
}

// killPlan says what the chaos loop does.
type killPlan struct {
	partitions   int
	failpoints   []string // the mode's failpoints; each is hit once first
	fpProb       float64  // chance a restart is armed with a failpoint
	takeoverProb float64  // chance a restart waits for a takeover first
	brokerProb   float64  // chance a step kills the cluster instead
	corruptProb  float64  // chance a kill also corrupts a store file
	storeDir     func(in *instance) string
	gapMin       time.Duration
	gapMax       time.Duration
}

// chaos kills until the scenario is due: first each failpoint once (an
// armed restart that must die at it), then random steps.
func (s *scen) chaos(ctx context.Context, plan killPlan) error {
	hard := s.hardDeadline()
	for _, fp := range plan.failpoints {
		victim := s.insts[s.rng.IntN(len(s.insts))]
		if err := victim.kill(); err != nil {
			return err
		}
		if err := victim.start(fp + ":" + strconv.Itoa(3+s.rng.IntN(15))); err != nil {
			return err
		}
		// It must die at the failpoint by itself.
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		select {
		case <-victim.proc.Done():
		case <-wctx.Done():
		}
		cancel()
		if !victim.proc.KilledBySelf() {
			return fmt.Errorf("instance %s armed with failpoint %s did not kill itself within 60s (is CRATESTREAM_FAILPOINT honoured?); log %s",
				victim.id, victim.armed, victim.logPath)
		}
		if err := s.reap(); err != nil {
			return err
		}
	}
	for !s.due(s.kills + s.brokerRestarts) {
		if time.Now().After(hard) {
			return fmt.Errorf("only %d kills by the hard deadline", s.kills+s.brokerRestarts)
		}
		if err := s.waitOrExit(ctx, s.between(plan.gapMin, plan.gapMax)); err != nil {
			return err
		}
		if err := s.reap(); err != nil {
			return err
		}
		if s.rng.Float64() < plan.brokerProb {
			if err := s.killCluster(ctx); err != nil {
				return err
			}
			continue
		}
		var alive []*instance
		for _, in := range s.insts {
			if in.running() {
				alive = append(alive, in)
			}
		}
		if len(alive) == 0 {
			continue
		}
		victim := alive[s.rng.IntN(len(alive))]
		if err := victim.kill(); err != nil {
			return err
		}
		if plan.storeDir != nil && s.rng.Float64() < plan.corruptProb {
			if f, err := corruptStore(plan.storeDir(victim), s.rng); err != nil {
				s.log.Info("no store file to corrupt", "instance", victim.id, "err", err)
			} else {
				s.corrupted = append(s.corrupted, f)
				s.log.Info("corrupted a store file", "instance", victim.id, "file", f)
			}
		}
		if len(s.insts) > 1 && s.rng.Float64() < plan.takeoverProb {
			ok, err := s.waitTakeover(ctx, victim, plan.partitions)
			if err != nil {
				return err
			}
			if ok {
				s.takeovers++
				s.log.Info("takeover", "from", victim.id)
			}
		}
		fp := ""
		if len(plan.failpoints) > 0 && s.rng.Float64() < plan.fpProb {
			fp = plan.failpoints[s.rng.IntN(len(plan.failpoints))] + ":" + strconv.Itoa(1+s.rng.IntN(40))
		}
		if err := victim.start(fp); err != nil {
			return err
		}
	}
	return nil
}

// killCluster SIGKILLs the cluster process and restarts it from its data
// directory at the same addresses.
func (s *scen) killCluster(ctx context.Context) error {
	s.log.Info("SIGKILL cluster", "pid", s.cluster.Proc().Pid())
	if err := s.cluster.Kill(); err != nil {
		return err
	}
	if err := s.cluster.Start(ctx); err != nil {
		return fmt.Errorf("restart the cluster from its data directory: %w", err)
	}
	s.brokerRestarts++
	return nil
}

// calm restarts every instance that is down or armed, so the final phase
// runs without failpoints.
func (s *scen) calm() error {
	if err := s.reap(); err != nil {
		return err
	}
	for _, in := range s.insts {
		if in.armed != "" && in.running() {
			if err := in.kill(); err != nil {
				return err
			}
			if err := in.start(""); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkArgs are the checker's arguments.
type checkArgs struct {
	kind     string
	mode     string
	produced int64
	wait     time.Duration
	redis    string
}

// check runs `cratestream chaos check` as its own process and returns its
// verdict.
func (s *scen) check(ctx context.Context, a checkArgs) (*Verdict, error) {
	s.checks++
	args := []string{"chaos", "check", "--brokers", strings.Join(s.cluster.Brokers(), ","), "--mode", a.mode,
		"--produced", strconv.FormatInt(a.produced, 10), "--wait", a.wait.String()}
	if a.redis != "" {
		args = append(args, "--redis", a.redis)
	}
	args = append(args, a.kind)
	log := filepath.Join(s.logDir(), fmt.Sprintf("check-%d.log", s.checks))
	p, err := Start(ProcSpec{Name: "checker", Bin: s.cfg.Bin, Args: args, Env: s.cfg.Env, Log: log, CaptureStdout: true})
	if err != nil {
		return nil, err
	}
	limit := a.wait + 2*time.Minute
	select {
	case <-p.Done():
	case <-time.After(limit):
		_ = p.Kill()
		return nil, fmt.Errorf("checker ran over %s; log %s", limit, log)
	case <-ctx.Done():
		_ = p.Kill()
		return nil, ctx.Err()
	}
	for _, l := range p.Lines() {
		if strings.HasPrefix(l, "{") {
			var v Verdict
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				return nil, fmt.Errorf("checker output %q: %w", l, err)
			}
			return &v, nil
		}
	}
	return nil, fmt.Errorf("checker printed no verdict (%v); log %s:\n%s", p.werr, log, Tail(log, 2000))
}

// finish ends a scenario: it stops the input, lets the instances process
// everything without chaos, stops them cleanly (each must exit 0) and runs
// the final check, whose verdict fills the result.
func (s *scen) finish(ctx context.Context, f *feeder, a checkArgs) (*Verdict, error) {
	if f != nil {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		n, err := f.stop(fctx)
		cancel()
		if err != nil {
			return nil, err
		}
		a.produced = n
	}
	if err := s.calm(); err != nil {
		return nil, err
	}
	s.log.Info("waiting for the processors to finish", "inputs", a.produced)
	wa := a
	wa.wait = 3 * time.Minute
	v, err := s.check(ctx, wa)
	if err != nil {
		return nil, err
	}
	if !v.Complete {
		// Stuck: a goroutine dump of each instance (SIGQUIT: the Go
		// runtime prints every stack and exits) says where.
		var dumps []string
		for _, in := range s.insts {
			if in.running() && in.proc.dump(10*time.Second) == nil {
				dumps = append(dumps, in.logPath)
			}
		}
		return v, fmt.Errorf("the processors did not finish within %s (goroutine dumps in %v): %s", wa.wait, dumps, strings.Join(v.Problems, "; "))
	}
	if err := s.reap(); err != nil {
		return nil, err
	}
	for _, in := range s.insts {
		if _, err := in.opsAddr(ctx); err == nil {
			in.countRestored()
		}
		if err := in.proc.Stop(30 * time.Second); err != nil {
			s.problem("clean stop: %v", err)
		}
	}
	// With every processor stopped nothing can change any more: a late
	// duplicate would show now. Open transactions (a zombie's) must have
	// been aborted by the transaction timeout.
	a.wait = 30 * time.Second
	return s.check(ctx, a)
}

// report adds the verdict's fields to the result and its problems.
func (s *scen) report(v *Verdict) {
	r := s.res
	r.add("records", v.Inputs)
	r.add("outputs", v.Outputs)
	r.add("lost", v.Lost)
	r.add("duplicated", v.Duplicated)
	r.add("wrong", v.Wrong)
	if v.InputLost > 0 || v.InputDuplicated > 0 {
		r.add("input_lost", v.InputLost)
		r.add("input_duplicated", v.InputDuplicated)
	}
	if !v.OK() {
		for _, p := range v.Problems {
			s.problem("%s", p)
		}
		if len(v.Problems) == 0 {
			s.problem("verdict not ok: %+v", v)
		}
	}
}

// killFields are the kill counts of a result line.
func (s *scen) killFields(instances int) {
	r := s.res
	r.add("instances", instances)
	r.add("kills", s.kills)
	mid, after := 0, 0
	for fp, n := range s.fpKills {
		if midTransaction(fp) {
			mid += n
		} else {
			after += n
		}
	}
	r.add("mid_txn_kills", mid)
	r.add("after_commit_kills", after)
	r.add("takeovers", s.takeovers)
}

func (s *scen) seconds() { s.res.add("seconds", time.Since(s.start).Seconds()) }

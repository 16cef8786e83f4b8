package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scenarios.
const (
	// ScenarioCounter: the counter, exactly-once, two instances, SIGKILLs
	// at random moments and at failpoints inside the transaction,
	// restarts with the same instance id and state dir, and restarts
	// delayed past the session timeout so the other instance takes over.
	ScenarioCounter = "counter"
	// ScenarioZombie: an instance SIGSTOPped past its session timeout, its
	// partitions taken over, then SIGCONTed: its late writes are fenced.
	ScenarioZombie = "zombie"
	// ScenarioBroker: the cluster process SIGKILLed and restarted from its
	// data directory under the counter (a whole-cluster outage).
	ScenarioBroker = "broker"
	// ScenarioPebble: the counter with its store in Pebble, killed during
	// heavy writes, with store files corrupted while it is down.
	ScenarioPebble = "pebble"
	// ScenarioAtLeastOnce: the counter at least once: no loss, duplicates
	// counted.
	ScenarioAtLeastOnce = "at-least-once"
	// ScenarioCartbuilder: the real cart builder: exactly one CartResult
	// per request id.
	ScenarioCartbuilder = "cartbuilder"
	// ScenarioProfile: the real profile processor (stores in Pebble): the
	// final profiles are the fold of all interactions.
	ScenarioProfile = "profile"
)

// ShortSuite is what `cratestream chaos` runs without --duration (and what
// `make test` runs).
var ShortSuite = []string{ScenarioCounter, ScenarioZombie, ScenarioCartbuilder}

// AllScenarios run with --duration.
var AllScenarios = []string{ScenarioCounter, ScenarioZombie, ScenarioBroker, ScenarioPebble, ScenarioAtLeastOnce, ScenarioCartbuilder, ScenarioProfile}

// Config configures a chaos run.
type Config struct {
	// Bin is the cratestream binary every process runs.
	Bin string
	// Env is added to every process's environment.
	Env []string
	// Dir holds the run: per scenario the cluster's data, the instances'
	// state and every process's log.
	Dir string
	// Duration is the whole run's length, shared by the scenarios; 0 runs
	// the short suite (each scenario until its minimum of kills).
	Duration time.Duration
	// Scenarios to run; empty: ShortSuite without Duration, else all.
	Scenarios []string
	// MinKills per scenario; default 5 for the short suite, 20 with
	// Duration.
	MinKills int
	// ZombieRounds is the zombie scenario's minimum of rounds; default 1
	// for the short suite, MinKills with Duration.
	ZombieRounds int
	// Seed of the random choices (victims, moments, failpoints).
	Seed uint64
	// Rate is the input rate (records/s) of the counter and profile
	// scenarios; default 4000.
	Rate int
	// SessionTimeout is the processors' --session-timeout; default 3s.
	SessionTimeout time.Duration
	// Out receives one result line per scenario; Log the progress.
	Out io.Writer
	Log *slog.Logger
}

func (c *Config) defaults() error {
	if c.Bin == "" {
		return errors.New("chaos: no binary")
	}
	if c.Dir == "" {
		return errors.New("chaos: no run directory")
	}
	if len(c.Scenarios) == 0 {
		c.Scenarios = ShortSuite
		if c.Duration > 0 {
			c.Scenarios = AllScenarios
		}
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(AllScenarios, s) {
			return fmt.Errorf("chaos: unknown scenario %q (have %s)", s, strings.Join(AllScenarios, ", "))
		}
	}
	if c.MinKills <= 0 {
		c.MinKills = 5
		if c.Duration > 0 {
			c.MinKills = 20
		}
	}
	if c.ZombieRounds <= 0 {
		c.ZombieRounds = 1
		if c.Duration > 0 {
			c.ZombieRounds = c.MinKills
		}
	}
	if c.Rate <= 0 {
		c.Rate = 4000
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 3 * time.Second
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Field is one key=value of a result line.
type Field struct {
	Name  string
	Value string
}

// Result is the outcome of one scenario.
type Result struct {
	Scenario string
	Fields   []Field
	OK       bool
	// Problems say why it is not OK, with positions and log paths.
	Problems []string
	// Dir holds the scenario's logs and data.
	Dir string
}

func (r *Result) add(name string, v any) {
	var s string
	switch x := v.(type) {
	case float64:
		s = strconv.FormatFloat(x, 'f', 1, 64)
	default:
		s = fmt.Sprint(x)
	}
	r.Fields = append(r.Fields, Field{name, s})
}

// Get returns a field's value.
func (r *Result) Get(name string) string {
	for _, f := range r.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// Line is the result line: chaos=<scenario> then the fields, then ok=.
func (r *Result) Line() string {
	var b strings.Builder
	b.WriteString("chaos=" + r.Scenario)
	for _, f := range r.Fields {
		b.WriteString(" " + f.Name + "=" + f.Value)
	}
	b.WriteString(" ok=" + strconv.FormatBool(r.OK))
	return b.String()
}

// Run runs the scenarios one after the other, each on its own cluster
// process, and writes each result line to cfg.Out as it ends. A scenario
// that cannot run (a process that does not start) is a failed result, not an
// error: error is only for a bad configuration.
func Run(ctx context.Context, cfg Config) ([]*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	// The short suite gives each scenario 20s of chaos at least: kills
	// come every second or two, so they hit processes in every state
	// (restoring, processing, committing), not just the first ones.
	share := 20 * time.Second
	if cfg.Duration > 0 {
		share = cfg.Duration / time.Duration(len(cfg.Scenarios))
	}
	var out []*Result
	for i, name := range cfg.Scenarios {
		if ctx.Err() != nil {
			break
		}
		s := &scen{
			cfg: cfg, name: name, share: share,
			rng:     rand.New(rand.NewPCG(cfg.Seed, uint64(i))),
			dir:     filepath.Join(cfg.Dir, name),
			log:     cfg.Log.With("scenario", name),
			fpKills: map[string]int{},
			res:     &Result{Scenario: name, Dir: filepath.Join(cfg.Dir, name)},
		}
		r := s.run(ctx)
		fmt.Fprintln(cfg.Out, r.Line())
		if !r.OK {
			for _, p := range r.Problems {
				fmt.Fprintln(cfg.Out, "  "+p)
			}
			fmt.Fprintln(cfg.Out, "  logs: "+r.Dir)
		}
		out = append(out, r)
	}
	return out, nil
}

// scen is one running scenario.
type scen struct {
	cfg   Config
	name  string
	share time.Duration // its part of --duration
	rng   *rand.Rand
	dir   string
	log   *slog.Logger
	res   *Result

	start   time.Time
	cluster *Cluster
	insts   []*instance
	cleanup []func()

	kills          int // processor SIGKILLs, by us or a failpoint
	fpKills        map[string]int
	takeovers      int
	brokerRestarts int
	corrupted      []string
	restored       int64 // changelog records replayed by the instances (a lower bound)
	checks         int
}

func (s *scen) logDir() string { return filepath.Join(s.dir, "logs") }

func (s *scen) problem(format string, args ...any) {
	s.res.Problems = append(s.res.Problems, fmt.Sprintf(format, args...))
}

func (s *scen) run(ctx context.Context) *Result {
	s.start = time.Now()
	defer func() {
		// Nothing outlives the scenario: processes in reverse order of
		// start (the cluster last).
		for _, in := range s.insts {
			if in.proc != nil && !in.proc.Exited() {
				_ = in.proc.Kill()
			}
		}
		for i := len(s.cleanup) - 1; i >= 0; i-- {
			s.cleanup[i]()
		}
	}()
	if err := os.MkdirAll(s.logDir(), 0o755); err != nil {
		s.problem("%v", err)
		return s.res
	}
	var err error
	switch s.name {
	case ScenarioCounter:
		err = s.counter(ctx, counterVariant{mode: "exactly-once", keys: 1000})
	case ScenarioBroker:
		err = s.counter(ctx, counterVariant{mode: "exactly-once", keys: 1000, brokerKills: true})
	case ScenarioPebble:
		err = s.counter(ctx, counterVariant{mode: "exactly-once", keys: 20000, onDisk: true})
	case ScenarioAtLeastOnce:
		err = s.counter(ctx, counterVariant{mode: "at-least-once", keys: 1000})
	case ScenarioZombie:
		err = s.zombie(ctx)
	case ScenarioCartbuilder:
		err = s.cartbuilder(ctx)
	case ScenarioProfile:
		err = s.profile(ctx)
	}
	if err != nil {
		s.problem("%v", err)
	}
	// A race the detector found (--race) is a report in a log, not an
	// exit status: killed processes never exit by themselves.
	for _, in := range s.insts {
		if b, err := os.ReadFile(in.logPath); err == nil && strings.Contains(string(b), "WARNING: DATA RACE") {
			s.problem("data race reported in %s", in.logPath)
		}
	}
	s.res.OK = len(s.res.Problems) == 0
	return s.res
}

// startCluster starts the scenario's cluster process with the catalogue.
func (s *scen) startCluster(ctx context.Context) error {
	listen, err := FreeListen(3)
	if err != nil {
		return err
	}
	s.cluster = &Cluster{Bin: s.cfg.Bin, Env: s.cfg.Env, DataDir: filepath.Join(s.dir, "kafka"), Listen: listen, Topics: true,
		LogDir: s.logDir(), MinSessionTimeout: time.Second,
		// Compaction off: the checks read every changelog version.
		CleanerInterval: 24 * time.Hour}
	if err := s.cluster.Start(ctx); err != nil {
		return err
	}
	s.cleanup = append(s.cleanup, func() {
		if err := s.cluster.Stop(); err != nil {
			s.log.Warn("cluster stop", "err", err)
		}
	})
	s.log.Info("cluster started", "brokers", s.cluster.Brokers(), "log", s.cluster.Proc().Log)
	return nil
}

// due reports whether the scenario has done enough: its minimum of kills
// and its share of the duration.
func (s *scen) due(kills int) bool {
	least := s.cfg.MinKills
	if s.name == ScenarioZombie {
		least = s.cfg.ZombieRounds
	}
	return kills >= least && time.Since(s.start) >= s.share
}

// hardDeadline bounds a scenario that cannot reach its kills.
func (s *scen) hardDeadline() time.Time {
	return s.start.Add(2*s.share + 5*time.Minute + time.Duration(s.cfg.MinKills)*20*time.Second)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *scen) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

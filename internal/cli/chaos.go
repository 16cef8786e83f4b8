package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cratestream/cratestream/internal/chaos"
	"github.com/cratestream/cratestream/internal/stream"
)

func chaosCommand() command {
	c := command{
		name:    "chaos",
		summary: "prove the delivery guarantees with real process kills (the chaos suite)",
		usage: `Usage: cratestream chaos [flags]
       cratestream chaos check [flags] counter|cartbuilder|profile

Runs the chaos suite: every scenario starts its own Kafka cluster process
(cratestream dev kafka), its processors as separate processes (cratestream run
<service> --instance-id X --state-dir D ...) and feeds them input while it
SIGKILLs them at random moments and at failpoints inside the transaction
(CRATESTREAM_FAILPOINT), restarts them with the same instance id and state
dir, freezes them (SIGSTOP) past their session timeout, kills the cluster
process, corrupts their on-disk stores. Then a separate checker process
(cratestream chaos check) reads every input and output as a read_committed
consumer and counts every output against every input.

Scenarios (--scenarios; without --duration the short suite: counter, zombie,
cartbuilder):
  counter        the chaos-counter processor (a running count per key: not
                 idempotent), exactly-once, two instances, kills and takeovers
  zombie         an instance SIGSTOPped past its session timeout, its
                 partitions taken over, then SIGCONTed: it must be fenced
  broker         the cluster process SIGKILLed and restarted from its data dir
                 (all brokers live in that one process: a whole-cluster outage,
                 not a failover)
  pebble         the counter with its stores in Pebble (--on-disk-cache),
                 killed during heavy writes, store files corrupted while down
  at-least-once  the counter at least once: no loss; duplicates counted
  cartbuilder    the real cart builder with a private redis-server: exactly one
                 CartResult (with carts) per request id, final status in Redis
  profile        the real profile processor (Pebble): the final profiles are
                 the fold of all interactions

Output: one line per scenario, for programs; a failed scenario is followed
by its problems and its log directory:

  chaos=counter mode=exactly-once instances=2 kills=24 mid_txn_kills=5 after_commit_kills=3 takeovers=4 records=120000 outputs=120000 lost=0 duplicated=0 wrong=0 seconds=61.2 ok=true

  kills               SIGKILLs of processor processes: by the driver at a random
                      moment, or by the process itself at a failpoint
  mid_txn_kills       of those, at a failpoint between producing the outputs and
                      committing them (eos-before-end, alo-before-commit)
  after_commit_kills  of those, at eos-after-end (committed, stores not updated)
  takeovers           kills after which the other instance took over every
                      partition before the victim restarted
  records, outputs    input records written (and read back), output records read
  lost                counter: inputs without an output; cartbuilder: requests
                      without a CartResult; profile: users whose latest profile
                      is not the fold of their interactions
  duplicated          outputs beyond one per input (profile: records that do not
                      advance their user's version)
  wrong               outputs with wrong content (counter: a count that is not
                      the number of the key's inputs so far, or below it at least
                      once; cartbuilder: a result without carts)
  zombie_rounds, zombie_fenced, zombie_open_records
                      freezes, those after which the zombie aborted its
                      transaction, records its open transactions held
  broker_restarts     cluster process kills (with outage=whole-cluster)
  stores_corrupted, stores_rebuilt
                      store files damaged while down; rebuilds the runtime logged
  count_gaps          at least once: counts 1..n that no output carries (allowed:
                      the output of a first application may die with the process)
  requests, users     distinct cart requests; users with profiles
  seconds, ok

Exit status 1 when any scenario loses an input, or in exactly-once mode
duplicates or gets an output wrong, or cannot run. Logs of every process stay
in the run directory (--dir; a temporary one is removed after a clean run).`,
	}
	c.run = func(ctx context.Context, env *Env, args []string) error {
		if len(args) > 0 && args[0] == "check" {
			return chaosCheck(ctx, env, c, args[1:])
		}
		fs := newFlags(env, c)
		duration := fs.Duration("duration", 0, "length of the whole run, shared by the scenarios (0: the short suite, each scenario until its --kills)")
		seed := fs.Uint64("seed", 0, "seed of the random choices (0: from the clock; printed)")
		scenarios := fs.String("scenarios", "", "comma-separated scenarios (default: counter,zombie,cartbuilder without --duration, all with it)")
		kills := fs.Int("kills", 0, "minimum kills per scenario (default 5, 20 with --duration)")
		zombies := fs.Int("zombie-rounds", 0, "minimum zombie rounds (default 1, --kills with --duration)")
		rate := fs.Int("rate", 4000, "input records per second of the counter and profile scenarios")
		session := fs.Duration("session-timeout", 3*time.Second, "the processors' --session-timeout: how soon a dead or frozen instance's partitions move")
		dir := fs.String("dir", "", "run directory for data and logs (default: a temporary one, removed after a clean run)")
		binary := fs.String("binary", "", "cratestream binary the processes run (default: this one)")
		race := fs.Bool("race", false, "build the processes' binary with -race from the source (run from the repository)")
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			return usagef("unexpected arguments %q", fs.Args())
		}
		cfg := chaos.Config{Duration: *duration, Seed: *seed, MinKills: *kills, ZombieRounds: *zombies, Rate: *rate,
			SessionTimeout: *session, Out: env.Stdout, Log: env.Logger}
		if *scenarios != "" {
			cfg.Scenarios = strings.Split(*scenarios, ",")
		}
		if cfg.Seed == 0 {
			cfg.Seed = uint64(time.Now().UnixNano())
		}
		temp := *dir == ""
		if temp {
			d, err := os.MkdirTemp("", "cratestream-chaos-")
			if err != nil {
				return err
			}
			*dir = d
		}
		cfg.Dir = *dir
		switch {
		case *race:
			bin, err := buildRace(ctx, env, *dir)
			if err != nil {
				return err
			}
			cfg.Bin = bin
		case *binary != "":
			cfg.Bin = *binary
		default:
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			cfg.Bin = exe
		}
		env.Logger.Info("chaos run", "dir", cfg.Dir, "seed", cfg.Seed, "binary", cfg.Bin, "duration", cfg.Duration)
		results, err := chaos.Run(ctx, cfg)
		if err != nil {
			return usagef("%v", err)
		}
		failed := 0
		for _, r := range results {
			if !r.OK {
				failed++
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted; logs in %s", cfg.Dir)
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d scenarios failed (seed %d); logs in %s", failed, len(results), cfg.Seed, cfg.Dir)
		}
		if temp {
			_ = os.RemoveAll(cfg.Dir)
		}
		return nil
	}
	return c
}

// buildRace builds the binary with the race detector from the module this
// command runs in.
func buildRace(ctx context.Context, env *Env, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("--race builds from the source: run it inside the cratestream repository (go env GOMOD: %q, %v)", mod, err)
	}
	bin := filepath.Join(dir, "cratestream-race")
	env.Logger.Info("building the processes' binary with -race", "module", filepath.Dir(mod))
	cmd := exec.CommandContext(ctx, "go", "build", "-race", "-o", bin, "./cmd/cratestream")
	cmd.Dir = filepath.Dir(mod)
	cmd.Stdout, cmd.Stderr = env.Stderr, env.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build -race: %w", err)
	}
	return bin, nil
}

// chaosCheck is the checker: a separate process reading the inputs and
// outputs read_committed.
func chaosCheck(ctx context.Context, env *Env, c command, args []string) error {
	fs := newFlags(env, c)
	brokers := brokersFlag(fs, env)
	mode := fs.String("mode", "exactly-once", "the processor's delivery mode: exactly-once or at-least-once")
	produced := fs.Int64("produced", -1, "input records the driver had acknowledged (-1: unknown)")
	wait := fs.Duration("wait", time.Minute, "how long to wait until every input has its output and no transaction is open")
	redisAddr := fs.String("redis", "", "cartbuilder: also check the final status of every request in this Redis")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want: chaos check [flags] counter|cartbuilder|profile (one JSON verdict on stdout; exit 1 unless ok)")
	}
	switch fs.Arg(0) {
	case chaos.KindCounter, chaos.KindCartbuilder, chaos.KindProfile:
	default:
		return usagef("unknown check %q (want counter, cartbuilder or profile)", fs.Arg(0))
	}
	bs, err := splitBrokers(*brokers)
	if err != nil {
		return err
	}
	m, err := stream.ParseMode(*mode)
	if err != nil {
		return usagef("%v", err)
	}
	v, err := chaos.Check(ctx, chaos.CheckOptions{Kind: fs.Arg(0), Brokers: bs, Mode: m, Produced: *produced, Wait: *wait, Redis: *redisAddr})
	if err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, string(b))
	if !v.OK() {
		return errVerdict
	}
	return nil
}

var errVerdict = errors.New("the verdict is not ok (see the JSON on stdout)")

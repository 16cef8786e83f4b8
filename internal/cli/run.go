package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cratestream/cratestream/internal/ops"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/processors/profile"
)

// processorSpec builds one processor for `run` and `demo`.
type processorSpec struct {
	summary     string
	defaultMode stream.Mode
	build       func(o buildOptions) *stream.Processor
}

type buildOptions struct {
	mode        stream.Mode
	onDiskCache int64
}

func processorRegistry() map[string]processorSpec {
	return map[string]processorSpec{
		profile.Name: {
			summary:     "interactions.v1 -> per-user profile store -> user-profiles.v1",
			defaultMode: stream.ExactlyOnce,
			build: func(o buildOptions) *stream.Processor {
				p, _ := profile.New(profile.Options{Mode: o.mode, OnDiskCacheBytes: o.onDiskCache})
				return p
			},
		},
	}
}

func processorNames() []string {
	var names []string
	for n := range processorRegistry() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func runCommand() command {
	c := command{
		name:    "run",
		summary: "run one or more processors against a Kafka cluster",
		usage: `Usage: cratestream run [flags] <processor...>

Runs the named processors in this process until SIGINT/SIGTERM, then commits,
leaves the consumer groups and closes the stores. Scale out by running more
instances with distinct --instance-id: partitions are the unit of parallelism.

Processors: ` + strings.Join(processorNames(), ", ") + `

The ops HTTP server (--http) serves /metrics (Prometheus), /healthz, /readyz
and key lookups under /v1/stores/<processor>/<store>/<base64url key>.`,
	}
	c.run = func(ctx context.Context, env *Env, args []string) error {
		fs := newFlags(env, c)
		brokers := brokersFlag(fs, env)
		host, _ := os.Hostname()
		instance := fs.String("instance-id", envOr(env, "CRATESTREAM_INSTANCE_ID", host), "stable id of this instance (transactional id suffix; env CRATESTREAM_INSTANCE_ID)")
		stateDir := fs.String("state-dir", envOr(env, "CRATESTREAM_STATE_DIR", "data/state"), "directory of on-disk stores (env CRATESTREAM_STATE_DIR)")
		httpAddr := fs.String("http", envOr(env, "CRATESTREAM_HTTP", ":9464"), "ops HTTP listen address (env CRATESTREAM_HTTP)")
		advertise := fs.String("advertise-host", envOr(env, "CRATESTREAM_ADVERTISE_HOST", host), "host other instances use to reach this one's ops server")
		mode := fs.String("mode", "", "override the processors' delivery mode: exactly-once or at-least-once")
		commitEvery := fs.Duration("commit-interval", 100*time.Millisecond, "how often state and offsets commit")
		onDisk := fs.Int64("on-disk-cache", 0, "keep stores on disk (Pebble) with this block cache in bytes; 0 keeps them in memory")
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return usagef("name at least one processor (%s)", strings.Join(processorNames(), ", "))
		}
		bs, err := splitBrokers(*brokers)
		if err != nil {
			return err
		}
		srv := ops.NewServer()
		bound, err := srv.Listen(*httpAddr)
		if err != nil {
			return err
		}
		runners, err := buildRunners(fs.Args(), *mode, buildOptions{onDiskCache: *onDisk}, stream.Config{
			Brokers:        bs,
			InstanceID:     *instance,
			StateDir:       *stateDir,
			CommitInterval: *commitEvery,
			AdvertiseAddr:  ops.AdvertiseAddr(bound, *advertise),
			Logger:         env.Logger,
			Metrics:        srv.Registry,
		})
		if err != nil {
			return err
		}
		for _, r := range runners {
			srv.AddRunner(r)
		}
		env.Logger.Info("cratestream running", "processors", fs.Args(), "brokers", bs, "ops", "http://"+bound)
		return runAll(ctx, srv, runners)
	}
	return c
}

func envOr(env *Env, key, def string) string {
	if v := env.Getenv(key); v != "" {
		return v
	}
	return def
}

// buildRunners builds a runner per named processor.
func buildRunners(names []string, modeOverride string, bo buildOptions, cfg stream.Config) ([]*stream.Runner, error) {
	reg := processorRegistry()
	var runners []*stream.Runner
	for _, n := range names {
		spec, ok := reg[n]
		if !ok {
			return nil, usagef("unknown processor %q (have %s)", n, strings.Join(processorNames(), ", "))
		}
		o := bo
		o.mode = spec.defaultMode
		if modeOverride != "" {
			m, err := stream.ParseMode(modeOverride)
			if err != nil {
				return nil, usagef("%v", err)
			}
			o.mode = m
		}
		r, err := stream.NewRunner(spec.build(o), cfg)
		if err != nil {
			return nil, fmt.Errorf("processor %s: %w", n, err)
		}
		runners = append(runners, r)
	}
	return runners, nil
}

// runAll runs the ops server and the runners until ctx ends or one fails.
func runAll(ctx context.Context, srv *ops.Server, runners []*stream.Runner) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx) })
	for _, r := range runners {
		g.Go(func() error {
			if err := r.Run(gctx); err != nil {
				return fmt.Errorf("processor %s: %w", r.Processor().Name(), err)
			}
			return nil
		})
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/cratestream/cratestream/internal/chaos"
	"github.com/cratestream/cratestream/internal/ops"
	"github.com/cratestream/cratestream/internal/stream"
)

func runCommand() command {
	c := command{
		name:    "run",
		summary: "run one or more processors and workers against a Kafka cluster",
		usage: `Usage: cratestream run [flags] <service...>

Runs the named services in this process until SIGINT/SIGTERM, then commits,
leaves the consumer groups and closes the stores. Scale out by running more
instances with distinct --instance-id: partitions are the unit of parallelism.

Services: ` + strings.Join(serviceNames(), ", ") + `
Test service of the chaos suite (cratestream chaos): ` + chaos.CounterName + `

The ops HTTP server (--http) serves /metrics (Prometheus), /healthz, /readyz
and key lookups under /v1/stores/<processor>/<store>/<base64url key>.`,
	}
	c.run = func(ctx context.Context, env *Env, args []string) error {
		fs := newFlags(env, c)
		var set settings
		set.register(fs, env)
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return usagef("name at least one service (%s)", strings.Join(serviceNames(), ", "))
		}
		for _, n := range fs.Args() {
			svc, ok := findService(n)
			if !ok {
				return usagef("unknown service %q (have %s)", n, strings.Join(serviceNames(), ", "))
			}
			if _, err := serviceMode(svc, set.mode); err != nil {
				return err
			}
		}
		kc, err := set.kafka.connect(ctx, env.Logger)
		if err != nil {
			return err
		}
		if secret, err := set.lookup.get(); err != nil {
			return err
		} else if secret == "" {
			env.Logger.Warn("no lookup secret (CRATESTREAM_LOOKUP_SECRET): this instance serves no store lookups to other instances or the gateway")
		}
		bs := kc.brokers
		srv := ops.NewServer()
		bound, err := srv.Listen(set.httpAddr)
		if err != nil {
			return err
		}
		d := &deps{env: env, set: set, brokers: bs, kopts: kc.opts, srv: srv, streamCf: stream.Config{
			Brokers:        bs,
			ClientOpts:     kc.opts,
			InstanceID:     set.instance,
			StateDir:       set.stateDir,
			CommitInterval: set.commitEvery,
			SessionTimeout: set.sessionTimeout,
			// Honoured only when set: the chaos suite's way to kill a
			// processor inside a transaction.
			Failpoints:    env.Getenv("CRATESTREAM_FAILPOINT"),
			AdvertiseAddr: ops.AdvertiseAddr(bound, set.advertiseHost),
			Logger:        env.Logger,
			Metrics:       srv.Registry,
		}}
		defer d.close()
		env.Logger.Info("cratestream running", "services", fs.Args(), "brokers", bs, "kafka_security", kc.sec.String(), "ops", "http://"+bound)
		return startServices(ctx, d, fs.Args())
	}
	return c
}

func envOr(env *Env, key, def string) string {
	if v := env.Getenv(key); v != "" {
		return v
	}
	return def
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// runAll runs the ops server, the runners and the workers until ctx ends or
// one fails.
func runAll(ctx context.Context, srv *ops.Server, runners []*stream.Runner, workers []service, d *deps) error {
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
	for _, w := range workers {
		g.Go(func() error {
			if err := w.run(gctx, d); err != nil && gctx.Err() == nil {
				return fmt.Errorf("%s: %w", w.name, err)
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

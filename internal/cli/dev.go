package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/internal/embedded"
	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/schemas/topics"
)

func devCommand() command {
	c := command{
		name:    "dev",
		summary: "development infrastructure as its own process: dev kafka",
		usage: `Usage: cratestream dev kafka [flags]

Runs the embedded Kafka cluster (franz-go kfake: the real wire protocol,
consumer groups, transactions, compaction) as its own process, so that
processors run as separate processes against it (cratestream run ...), as
they would against a real cluster. All brokers live in this one process:
killing it is a whole-cluster outage, not a broker failover.

The cluster persists to --data-dir (empty: memory only). Ports are fixed
(--port-base, or --listen), so a restart from the same data directory comes
back at the same addresses with its topics, records, committed offsets and
transactions.

When the cluster is ready (and the catalogue created, with --topics) it prints
exactly one line to stdout, for programs:

  brokers=127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094

Everything else (what it created, where its data is) goes to stderr. SIGINT or
SIGTERM stops it cleanly: it saves its state and exits 0.

Example:

  cratestream dev kafka --topics &
  export CRATESTREAM_BROKERS=127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094
  cratestream run --instance-id profile-0 --http 127.0.0.1:9464 profile`,
	}
	c.run = func(ctx context.Context, env *Env, args []string) error {
		if len(args) == 0 {
			return usagef("want a component: kafka")
		}
		switch args[0] {
		case "kafka":
			return devKafka(ctx, env, c, args[1:])
		case "-h", "--help", "help":
			return devKafka(ctx, env, c, []string{"--help"})
		default:
			return usagef("unknown dev component %q (want kafka)", args[0])
		}
	}
	return c
}

func devKafka(ctx context.Context, env *Env, c command, args []string) error {
	fs := newFlags(env, c)
	brokers := fs.Int("brokers", 3, "number of brokers (all in this process)")
	dataDir := fs.String("data-dir", "data/kafka", "directory the cluster persists to; empty keeps it in memory")
	portBase := fs.Int("port-base", 9092, "broker i listens on 127.0.0.1:<port-base+i>; 0 picks free ports (a restart then comes back elsewhere)")
	listen := fs.String("listen", "", "comma-separated host:port, one per broker (overrides --port-base); the host is also what the broker advertises")
	createTopics := fs.Bool("topics", false, "create the topic catalogue (schemas/topics) before printing the brokers line")
	minSession := fs.Duration("min-session-timeout", time.Second, "group.min.session.timeout.ms: the shortest consumer session allowed (Kafka's default is 6s)")
	retention := fs.Duration("retention", 6*time.Hour, "log.retention.ms of delete-policy topics")
	cleaner := fs.Duration("cleaner-interval", 30*time.Second, "how often compaction and retention run")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments %q: dev kafka takes only flags", fs.Args())
	}
	if *brokers <= 0 {
		return usagef("--brokers must be positive")
	}
	o := embedded.KafkaOptions{Brokers: *brokers, DataDir: *dataDir, MinSessionTimeout: *minSession,
		Retention: *retention, CleanerInterval: *cleaner, Logger: env.Logger}
	switch {
	case *listen != "":
		for _, a := range strings.Split(*listen, ",") {
			if a = strings.TrimSpace(a); a != "" {
				o.Listen = append(o.Listen, a)
			}
		}
		if len(o.Listen) != *brokers {
			return usagef("--listen has %d addresses for %d brokers", len(o.Listen), *brokers)
		}
	case *portBase < 0 || *portBase+*brokers-1 > 65535:
		return usagef("--port-base %d: ports out of range", *portBase)
	case *portBase > 0:
		for i := range *brokers {
			o.Listen = append(o.Listen, "127.0.0.1:"+strconv.Itoa(*portBase+i))
		}
	}
	k, err := embedded.StartKafka(o)
	if err != nil {
		return err
	}
	defer func() {
		// Close saves the cluster's state: the next start from the
		// data directory continues from here.
		k.Close()
		env.Logger.Info("dev kafka stopped", "data_dir", *dataDir)
	}()
	addrs := k.Addrs()
	if *createTopics {
		if err := createCatalogue(ctx, env, addrs); err != nil {
			return err
		}
	}
	env.Logger.Info("dev kafka running", "brokers", len(addrs), "data_dir", *dataDir)
	fmt.Fprintln(env.Stdout, "brokers="+strings.Join(addrs, ","))
	<-ctx.Done()
	return nil
}

// createCatalogue creates the catalogue's missing topics on the cluster.
func createCatalogue(ctx context.Context, env *Env, addrs []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	created, err := stream.CreateTopics(ctx, kadm.NewClient(cl), topics.Catalogue(), -1)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	env.Logger.Info("topic catalogue", "topics", len(topics.Catalogue()), "created", len(created))
	return nil
}

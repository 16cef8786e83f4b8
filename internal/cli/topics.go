package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/cratestream/cratestream/internal/stream"
	"github.com/cratestream/cratestream/schemas/topics"
)

func topicsCommand() command {
	c := command{
		name:    "topics",
		summary: "create, check or list the topic catalogue",
		usage: `Usage: cratestream topics create|check|list [flags]

  create  creates every catalogue topic that does not exist (existing topics are left alone)
          and prints "created <name>" for each one it created.
  check   compares the cluster with the catalogue; prints "ok <name>" per topic and exits 1
          with one line per drift (missing topic, wrong partition count, wrong cleanup policy).
  list    prints the catalogue as a table: name, partitions, cleanup, retention, key, value.`,
	}
	c.run = func(ctx context.Context, env *Env, args []string) error {
		fs := newFlags(env, c)
		var kf kafkaFlags
		kf.register(fs, env)
		replication := fs.Int("replication", -1, "replication factor of created topics (-1: broker default)")
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return usagef("want one of create, check, list")
		}
		specs := topics.Catalogue()
		if fs.Arg(0) == "list" {
			tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tCLEANUP\tRETENTION\tKEY\tVALUE")
			for _, s := range specs {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", s.Name, s.Partitions, s.Cleanup, retention(s.Retention), s.KeyEncoding, s.ValueType)
			}
			return tw.Flush()
		}
		kc, err := kf.connect(ctx, env.Logger)
		if err != nil {
			return err
		}
		cl, err := kc.client()
		if err != nil {
			return err
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		switch fs.Arg(0) {
		case "create":
			created, err := stream.CreateTopics(ctx, adm, specs, int16(*replication))
			for _, n := range created {
				fmt.Fprintln(env.Stdout, "created", n)
			}
			if err != nil {
				return err
			}
			return stream.CheckTopics(ctx, adm, specs)
		case "check":
			err := stream.CheckTopics(ctx, adm, specs)
			var de *stream.DriftError
			bad := map[string]bool{}
			if errors.As(err, &de) {
				for _, d := range de.Drifts {
					bad[d.Topic] = true
				}
			} else if err != nil {
				return err
			}
			for _, s := range specs {
				if !bad[s.Name] {
					fmt.Fprintln(env.Stdout, "ok", s.Name)
				}
			}
			return err
		default:
			return usagef("unknown topics action %q (want create, check, list)", fs.Arg(0))
		}
	}
	return c
}

func retention(d time.Duration) string {
	switch {
	case d < 0:
		return "infinite"
	case d == 0:
		return "broker default"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	default:
		return d.String()
	}
}

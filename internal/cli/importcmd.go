package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cratestream/cratestream/connectors/discogs/api"
	"github.com/cratestream/cratestream/connectors/discogs/importer"
	"github.com/cratestream/cratestream/connectors/redis"
	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

func importCommand() command {
	c := command{
		name:    "import",
		summary: "import Discogs dumps, ECB rates or a user's wantlist and collection into Kafka",
		usage: `Usage: cratestream import <kind> [flags] ARG

Kinds:
  user USERNAME        fetch the user's Discogs wantlist and collection through the API v2 and
                       produce interactions.v1 events (additions; removals too with --redis,
                       which remembers the previous sync). Prints
                         user=NAME wantlist=N collection=M skipped=BOOL
  releases FILE        stream a Discogs monthly releases dump (.xml or .xml.gz) to releases.v1
  masters FILE         stream a masters dump to masters.v1
  fx FILE              ECB daily reference rates XML to fx-rates.v1 ("default": the built-in table)

Dumps: invalid records go to dlq.v1 with the reason; progress (records/s, bytes/s) goes to
stderr; --resume-after ID continues after a record; --dry-run validates without producing and
ends with "releases=N invalid=M" (or "masters=...").`,
	}
	c.run = func(ctx context.Context, env *Env, args []string) error {
		if len(args) == 0 {
			fs := newFlags(env, c)
			if err := parse(fs, args); err != nil {
				return err
			}
			return usagef("want a kind: user, releases, masters, fx")
		}
		kind, rest := args[0], args[1:]
		switch kind {
		case "user":
			return importUser(ctx, env, c, rest)
		case "releases", "masters":
			return importDump(ctx, env, c, kind, rest)
		case "fx":
			return importFX(ctx, env, c, rest)
		case "-h", "--help", "help":
			return parse(newFlags(env, c), []string{"--help"})
		default:
			return usagef("unknown import kind %q (want user, releases, masters, fx)", kind)
		}
	}
	return c
}

func importUser(ctx context.Context, env *Env, c command, args []string) error {
	fs := newFlags(env, c)
	var kf kafkaFlags
	kf.register(fs, env)
	var rf endpointFlags
	rf.register(fs, env, "redis", "Redis host:port: remember syncs (skip recent ones, emit removals)")
	apiURL := fs.String("discogs-api", envOr(env, "DISCOGS_API_URL", "https://api.discogs.com"), "Discogs API base URL")
	token := fs.String("discogs-token", env.Getenv("DISCOGS_TOKEN"), "Discogs personal access token (env DISCOGS_TOKEN)")
	ua := fs.String("user-agent", envOr(env, "CRATESTREAM_USER_AGENT", "cratestream/1.0 (+https://github.com/cratestream/cratestream)"), "User-Agent")
	force := fs.Bool("force", false, "sync even if the user was synced recently")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want: import user [flags] USERNAME")
	}
	user := strings.ToLower(fs.Arg(0)) // Discogs usernames ignore case
	kc, err := kf.connect(ctx, env.Logger)
	if err != nil {
		return err
	}
	client, err := api.New(api.Config{BaseURL: *apiURL, UserAgent: *ua, Token: *token})
	if err != nil {
		return err
	}
	prod, err := kc.client(kgo.ProducerLinger(5 * time.Millisecond))
	if err != nil {
		return err
	}
	defer prod.Close()
	cfg := importer.Config{API: client, Producer: prod, Logger: env.Logger}
	if rf.addr != "" {
		ro, err := rf.redisOptions()
		if err != nil {
			return err
		}
		r, err := redis.Open(ctx, ro)
		if err != nil {
			return err
		}
		defer r.Close()
		cfg.Redis = r
	}
	im, err := importer.New(cfg)
	if err != nil {
		return err
	}
	done, err := im.Sync(ctx, &pb.SyncRequest{RequestId: fmt.Sprintf("cli-%s-%d", user, time.Now().UnixMilli()),
		UserId: user, Username: user, Force: *force})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "user=%s wantlist=%d collection=%d skipped=%v\n", user, done.Wantlist, done.Collection, done.Skipped)
	return nil
}

func importDump(ctx context.Context, env *Env, c command, kind string, args []string) error {
	fs := newFlags(env, c)
	var kf kafkaFlags
	kf.register(fs, env)
	dry := fs.Bool("dry-run", false, "validate without producing; print "+kind+"=N invalid=M")
	progressFile := fs.String("progress-file", "", "where the resume position is kept (default: ./<file name>.progress)")
	noResume := fs.Bool("restart", false, "ignore a saved position and start from the beginning")
	every := fs.Duration("progress", 2*time.Second, "progress interval on stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want: import %s [flags] FILE.xml[.gz]", kind)
	}
	var prod *kgo.Client
	if !*dry {
		kc, err := kf.connect(ctx, env.Logger)
		if err != nil {
			return err
		}
		prod, err = kc.client(kgo.ProducerLinger(10*time.Millisecond),
			kgo.ProducerBatchMaxBytes(4<<20), kgo.MaxBufferedRecords(100000))
		if err != nil {
			return err
		}
		defer prod.Close()
	}
	return runDumpImport(ctx, env, dumpImport{kind: kind, path: fs.Arg(0), producer: prod, dryRun: *dry,
		progressFile: *progressFile, restart: *noResume, every: *every})
}

func importFX(ctx context.Context, env *Env, c command, args []string) error {
	fs := newFlags(env, c)
	var kf kafkaFlags
	kf.register(fs, env)
	dry := fs.Bool("dry-run", false, "parse and print the rates without producing")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want: import fx [flags] FILE.xml|default")
	}
	rates, err := loadRates(fs.Arg(0))
	if err != nil {
		return err
	}
	if !*dry {
		kc, err := kf.connect(ctx, env.Logger)
		if err != nil {
			return err
		}
		prod, err := kc.client()
		if err != nil {
			return err
		}
		defer prod.Close()
		if err := produceRates(ctx, prod, rates); err != nil {
			return err
		}
	}
	for _, r := range rates {
		fmt.Fprintf(env.Stdout, "%s %s %s\n", r.Date, r.Currency, r.UnitsPerEur)
	}
	fmt.Fprintf(env.Stdout, "fx=%d date=%s\n", len(rates), rates[0].Date)
	return nil
}

package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	chsink "github.com/cratestream/cratestream/connectors/clickhouse"
	"github.com/cratestream/cratestream/internal/bench"
	"github.com/cratestream/cratestream/internal/stream"
)

func benchCommand() command {
	c := command{
		name:    "bench",
		summary: "run a named end-to-end benchmark and print its result lines",
		usage: `Usage: cratestream bench [flags] <name>

Runs a benchmark on the embedded 3-broker cluster. Progress goes to stderr;
results go to stdout, one line each, in the stable form

  bench=<name> key=value ...

Benchmarks:
  profile   interactions per second through the profile processor, preloaded
            (--events over --users uniformly drawn users, --partitions partitions):
              bench=profile mode=at-least-once events_per_s=N p50_ms=F p99_ms=F paced_rate=N
              bench=profile mode=exactly-once events_per_s=N
            p50/p99 are produce-to-visible latencies (a consumer of user-profiles.v1 sees
            the profile) at --paced-rate events/s for --paced-for; then runs "restore".
  restore   restore rate of a --restore-keys key changelog into a new instance:
              bench=restore records=N seconds=F records_per_s=N
  parse     marketplace pages (250 listings) parsed per second for --for:
              bench=parse pages=N pages_per_s=N listings_per_s=N
  dump      a --dump-releases release dump decoded, plain and gzip; peak RSS shows constant memory:
              bench=dump format=plain|gzip releases=N releases_per_s=N mb_per_s=N peak_rss_mb=N
  als       seconds per ALS iteration at 64 factors on a generated 1M interactions / 100K users /
            50K items set, and on lastfm-2k when --lastfm exists:
              bench=als dataset=generated|lastfm-2k users=N items=N interactions=N factors=64 seconds_per_iter=F
  foldin    one serving request: fold in a 50-item history, top 100 of 100K items:
              bench=foldin items=100000 history=50 top=100 ms=F
  recommend candidates per second through the recommend processor (trained model, embedded cluster):
              bench=recommend profiles=N model_items=N seconds=F candidates_per_s=N
  sink      --sink-listings listings from listings.v1 into ClickHouse, end to end (100K-row batches):
              bench=sink rows=N seconds=F rows_per_s=N
  cart      cart solve on the shared problem files (--carts-dir: medium, shipping, large), --reps
            times in process (read + parse + solve) and as whole processes of this binary
            (start_p50_ms is the same binary printing its help: process start alone):
              bench=cart file=medium multi_seller=false listings=N kept=N carts=N solve_p50_ms=F solve_min_ms=F process_p50_ms=F process_min_ms=F start_p50_ms=F
  cart-latency
            request-to-carts latency through the cart builder with fresh listings (embedded
            cluster and Redis, --cart-releases x 20 listings, every release a candidate of
            --cart-users users): requests one at a time at --cart-rate for --cart-for, from the
            produce of the request to a read_committed consumer of carts.v1 seeing the result:
              bench=cart-latency requests=N p50_ms=F p99_ms=F max_ms=F
  search    the dashboard's filtered search over --search-listings listings (500 releases by
            popularity, grade >= VG+, price and rating limits, cheapest 100), on the table as
            loaded and after OPTIMIZE ... FINAL:
              bench=search listings=N queries=N rows_per_query=N p50_ms=F p99_ms=F loaded_parts=N loaded_p50_ms=F loaded_p99_ms=F`,
	}
	c.run = func(ctx context.Context, env *Env, args []string) error {
		fs := newFlags(env, c)
		events := fs.Int("events", 2_000_000, "preloaded interactions (profile)")
		users := fs.Int("users", 1_000_000, "distinct users (profile)")
		partitions := fs.Int("partitions", 12, "partitions of interactions.v1 and user-profiles.v1")
		pacedRate := fs.Int("paced-rate", 20000, "events/s of the latency measurement")
		pacedFor := fs.Duration("paced-for", 10*time.Second, "duration of the latency measurement")
		restoreKeys := fs.Int("restore-keys", 1_000_000, "keys in the restored changelog")
		quiet := fs.Bool("quiet", false, "no progress on stderr")
		cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the first measured phase to this file")
		benchFor := fs.Duration("for", 5*time.Second, "how long the parse benchmark runs")
		dumpN := fs.Int("dump-releases", 500000, "releases in the synthesised dump (about 4.3 kB each)")
		lastfm := fs.String("lastfm", "../shared/datasets/hetrec2011-lastfm-2k/user_artists.dat", "lastfm-2k interactions for the als benchmark")
		recUsers := fs.Int("recommend-users", 100000, "profiles for the recommend benchmark")
		recReleases := fs.Int("recommend-releases", 50000, "releases for the recommend benchmark")
		sinkN := fs.Int("sink-listings", 1_000_000, "listings preloaded for the sink benchmark")
		searchN := fs.Int("search-listings", 10_000_000, "listings in the search benchmark's table")
		cartsDir := fs.String("carts-dir", "../shared/carts", "directory of the cart problem files (cart)")
		reps := fs.Int("reps", 20, "repetitions (cart)")
		cartRate := fs.Float64("cart-rate", 20, "requests/s (cart-latency)")
		cartFor := fs.Duration("cart-for", 10*time.Second, "duration of the measurement (cart-latency)")
		cartUsers := fs.Int("cart-users", 50, "users with candidates (cart-latency)")
		cartReleases := fs.Int("cart-releases", 200, "releases, 20 listings each (cart-latency)")
		cartCommit := fs.Duration("cart-commit-interval", 0, "the cart builder's commit interval (cart-latency; default: the service's)")
		chAddr := fs.String("clickhouse", env.Getenv("CRATESTREAM_CLICKHOUSE"), "use this ClickHouse (default: a private clickhouse-server)")
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return usagef("name one benchmark: profile or restore")
		}
		var progress io.Writer = env.Stderr
		if *quiet {
			progress = io.Discard
		}
		cfg := bench.ProfileConfig{
			Events: *events, Users: *users, Partitions: *partitions,
			PacedRate: *pacedRate, PacedFor: *pacedFor, RestoreKeys: *restoreKeys,
			Progress: progress,
		}
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			cfg.CPUProfile = f
		}
		switch fs.Arg(0) {
		case "parse":
			r, err := bench.Parse(*benchFor)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, bench.Line("parse", "pages", r.Pages, "pages_per_s", int(r.PagesPerSec), "listings_per_s", int(r.ListingsSec)))
			return nil
		case "dump":
			for _, gz := range []bool{false, true} {
				r, err := bench.Dump(*dumpN, gz)
				if err != nil {
					return err
				}
				fmt.Fprintln(progress, "dump", r)
				fmt.Fprintln(env.Stdout, bench.Line("dump", "format", r.Format, "releases", r.Releases, "releases_per_s", int(r.ReleasesPerS),
					"mb_per_s", int(r.MBPerS), "peak_rss_mb", int(r.PeakRSSMB)))
			}
			return nil
		case "als":
			m, err := bench.ALSGenerated()
			if err != nil {
				return err
			}
			d, err := bench.ALSIteration(ctx, m, 64, 3)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, bench.Line("als", "dataset", "generated", "users", m.Rows, "items", m.Cols, "interactions", m.NNZ(),
				"factors", 64, "seconds_per_iter", d))
			if exists(*lastfm) {
				lm, err := bench.ALSFile(*lastfm)
				if err != nil {
					return err
				}
				d, err := bench.ALSIteration(ctx, lm, 64, 10)
				if err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout, bench.Line("als", "dataset", "lastfm-2k", "users", lm.Rows, "items", lm.Cols, "interactions", lm.NNZ(),
					"factors", 64, "seconds_per_iter", d))
			} else {
				fmt.Fprintf(progress, "als: %s absent, lastfm-2k skipped\n", *lastfm)
			}
			return nil
		case "cart":
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			for _, name := range []string{"medium", "shipping", "large"} {
				path := filepath.Join(*cartsDir, name+".json")
				if !exists(path) {
					return fmt.Errorf("cart: %s not found (set --carts-dir)", path)
				}
				for _, multi := range []bool{false, true} {
					fmt.Fprintf(progress, "cart: %s multi_seller=%v\n", name, multi)
					r, err := bench.CartSolve(ctx, exe, path, multi, *reps)
					if err != nil {
						return err
					}
					fmt.Fprintln(env.Stdout, bench.Line("cart", "file", name, "multi_seller", multi, "listings", r.Listings, "kept", r.Kept, "carts", r.Carts,
						"solve_p50_ms", ms(r.SolveP50), "solve_min_ms", ms(r.SolveMin), "process_p50_ms", ms(r.ProcP50), "process_min_ms", ms(r.ProcMin),
						"start_p50_ms", ms(r.StartP50)))
				}
			}
			return nil
		case "cart-latency":
			r, err := bench.CartLatency(ctx, bench.CartLatencyConfig{Releases: *cartReleases, Users: *cartUsers, Rate: *cartRate,
				For: *cartFor, CommitInterval: *cartCommit, Progress: progress, CPUProfile: cfg.CPUProfile})
			if err != nil {
				return fmt.Errorf("cart-latency: %w", err)
			}
			fmt.Fprintln(env.Stdout, bench.Line("cart-latency", "requests", r.Requests, "p50_ms", ms(r.P50), "p99_ms", ms(r.P99), "max_ms", ms(r.Max)))
			return nil
		case "foldin":
			d, err := bench.FoldIn(100_000, 500)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, bench.Line("foldin", "items", 100000, "history", 50, "top", 100, "ms", ms(d)))
			return nil
		case "recommend":
			r, err := bench.Recommend(ctx, *recUsers, *recReleases, progress)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, bench.Line("recommend", "profiles", r.Profiles, "model_items", r.ModelItems, "seconds", r.Elapsed,
				"candidates_per_s", int(r.PerSecond)))
			return nil
		case "sink":
			r, err := chsink.BenchSinkThroughput(ctx, chsink.SinkBenchConfig{Listings: *sinkN, ClickHouseAddr: *chAddr, Progress: progress})
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, bench.Line("sink", "rows", r.Rows, "seconds", r.Elapsed, "rows_per_s", int(r.RowsPerSec)))
			return nil
		case "search":
			r, err := chsink.BenchSearch(ctx, chsink.SearchBenchConfig{Listings: *searchN, ClickHouseAddr: *chAddr, Progress: progress})
			if err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, bench.Line("search", "listings", r.Listings, "queries", r.Queries, "rows_per_query", int(r.RowsPerQuery),
				"p50_ms", ms(r.P50), "p99_ms", ms(r.P99), "loaded_parts", r.LoadedParts, "loaded_p50_ms", ms(r.LoadedP50), "loaded_p99_ms", ms(r.LoadedP99)))
			return nil
		case "profile":
			for _, m := range []stream.Mode{stream.AtLeastOnce, stream.ExactlyOnce} {
				r, err := bench.ProfileThroughput(ctx, cfg, m)
				if err != nil {
					return fmt.Errorf("profile %s: %w", m, err)
				}
				kv := []any{"mode", m, "events", r.Events, "events_per_s", int(r.EventsPerSec)}
				if m == stream.AtLeastOnce {
					kv = append(kv, "p50_ms", ms(r.P50), "p99_ms", ms(r.P99), "paced_rate", int(r.PacedRate))
				}
				fmt.Fprintln(env.Stdout, bench.Line("profile", kv...))
			}
			return benchRestore(ctx, env, cfg)
		case "restore":
			return benchRestore(ctx, env, cfg)
		default:
			return usagef("unknown benchmark %q (have %s)", fs.Arg(0), strings.Join([]string{"profile", "restore", "parse", "dump", "sink", "search", "als", "foldin", "recommend", "cart", "cart-latency"}, ", "))
		}
	}
	return c
}

func benchRestore(ctx context.Context, env *Env, cfg bench.ProfileConfig) error {
	r, err := bench.Restore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintln(env.Stdout, bench.Line("restore", "records", r.Keys, "seconds", r.Elapsed, "records_per_s", int(r.RecordsPerSec)))
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

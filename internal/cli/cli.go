// Package cli is the cratestream command line: one binary, one subcommand
// per job. Output another program reads (JSON, benchmark lines) is stable and
// documented in each command's help.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
)

// Env is what a command runs with.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Logger         *slog.Logger
}

type command struct {
	name    string
	summary string
	usage   string // full help: flags are appended
	run     func(ctx context.Context, env *Env, args []string) error
}

func commands() []command {
	return []command{
		demoCommand(),
		runCommand(),
		topicsCommand(),
		benchCommand(),
		scrapeCommand(),
		cartCommand(),
		importCommand(),
		queryCommand(),
		evalCommand(),
		trainCommand(),
		devCommand(),
		chaosCommand(),
	}
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// Main runs the command line and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	env := &Env{Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}
	level := slog.LevelInfo
	if lv := os.Getenv("CRATESTREAM_LOG_LEVEL"); lv != "" {
		_ = level.UnmarshalText([]byte(lv))
	}
	env.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			return Main(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		printUsage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		var ue *usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "cratestream %s: %v\nRun 'cratestream %s --help' for usage.\n", c.name, err, c.name)
			return 2
		default:
			fmt.Fprintf(stderr, "cratestream %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "cratestream: unknown command %q\n\n", args[0])
	printUsage(stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "cratestream — stream processing for record collectors and the marketplaces they buy from.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: cratestream <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'cratestream <command> --help' for a command's flags and output format.")
	fmt.Fprintln(w, "Environment: CRATESTREAM_BROKERS (comma-separated seed brokers), CRATESTREAM_LOG_LEVEL (debug|info|warn|error).")
}

// newFlags returns a flag set whose help prints the command's usage text.
func newFlags(env *Env, c command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(env.Stdout, strings.TrimSpace(c.usage))
		fmt.Fprintln(env.Stdout)
		fmt.Fprintln(env.Stdout, "Flags:")
		fs.SetOutput(env.Stdout)
		fs.PrintDefaults()
		fs.SetOutput(env.Stderr)
	}
	return fs
}

// parse parses flags; --help returns flag.ErrHelp (exit 0), a bad flag a
// usage error.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	return nil
}

// brokersFlag reads --brokers with CRATESTREAM_BROKERS as the default.
func brokersFlag(fs *flag.FlagSet, env *Env) *string {
	return fs.String("brokers", env.Getenv("CRATESTREAM_BROKERS"), "comma-separated seed brokers (env CRATESTREAM_BROKERS)")
}

func splitBrokers(s string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, usagef("no brokers: pass --brokers host:port[,host:port] or set CRATESTREAM_BROKERS (or run `cratestream demo` for the embedded stack)")
	}
	return out, nil
}

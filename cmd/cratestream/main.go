// Command cratestream is the one binary of cratestream: processors, the
// embedded demo stack, provisioning, importers and benchmarks.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/cratestream/cratestream/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

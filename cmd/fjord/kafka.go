package main

import (
	"context"
	"os"

	"github.com/fjord-io/fjord/internal/mskcli"
)

// runKafka runs `fjord kafka <verb> [flags]`, the control plane's client.
func runKafka(ctx context.Context, args []string) error {
	return mskcli.Main(ctx, args, os.Stdout, os.Stderr)
}

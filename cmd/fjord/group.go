package main

import (
	"context"
	"os"

	"github.com/fjord-io/fjord/internal/datacli"
)

// runGroup runs `fjord group <subcommand> [flags]`, the consumer-group tool
// (kafka-consumer-groups.sh without a JVM).
func runGroup(ctx context.Context, args []string) error {
	return datacli.Group(ctx, args, dataEnv())
}

// dataEnv is the process environment of `fjord group` and `fjord topic`:
// the standard streams and the default bootstrap from FJORD_BOOTSTRAP.
func dataEnv() datacli.Env {
	return datacli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Bootstrap: os.Getenv("FJORD_BOOTSTRAP")}
}

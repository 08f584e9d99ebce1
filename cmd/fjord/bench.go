package main

import (
	"context"
	"errors"
)

// runBench is replaced by its owner; placeholder while the subcommand is built.
func runBench(ctx context.Context, args []string) error {
	return errors.New("bench: not built yet")
}

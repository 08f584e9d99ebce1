package main

import (
	"context"
	"errors"
)

// runServer is replaced by its owner; placeholder while the subcommand is built.
func runServer(ctx context.Context, args []string) error {
	return errors.New("server: not built yet")
}

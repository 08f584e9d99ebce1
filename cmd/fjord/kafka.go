package main

import (
	"context"
	"errors"
)

// runKafka is replaced by its owner; placeholder while the subcommand is built.
func runKafka(ctx context.Context, args []string) error {
	return errors.New("kafka: not built yet")
}

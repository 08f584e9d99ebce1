package main

import (
	"context"

	"github.com/fjord-io/fjord/internal/datacli"
)

// runTopic runs `fjord topic <subcommand> [flags]`: kafka-topics.sh, topic
// configs, and the console producer and consumer, without a JVM.
func runTopic(ctx context.Context, args []string) error {
	return datacli.Topic(ctx, args, dataEnv())
}

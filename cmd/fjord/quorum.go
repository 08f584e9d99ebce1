package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/fjord-io/fjord/internal/quorum"
)

func runQuorum(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fjord quorum", flag.ContinueOnError)
	var cfg quorum.Config
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.Name, "name", "", "member name, unique within the quorum")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "member data directory; reuse it to keep the metadata across restarts")
	fs.StringVar(&cfg.ListenClient, "listen-client", "127.0.0.1:2379", "loopback address clients (brokers) connect to")
	fs.StringVar(&cfg.ListenPeer, "listen-peer", "127.0.0.1:2380", "loopback address the other members connect to")
	fs.StringVar(&cfg.InitialCluster, "initial-cluster", "", "every member as name=http://127.0.0.1:PORT, comma separated; 1 or 3 members (default: this member alone)")
	fs.StringVar(&cfg.InitialClusterState, "initial-cluster-state", "new", "new to bootstrap a quorum, existing to join a running one")
	fs.StringVar(&cfg.LogLevel, "etcd-log-level", "error", "etcd's own log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	setupLogging(*logLevel)
	if err := cfg.Validate(); err != nil {
		return err
	}
	return quorum.Run(ctx, cfg)
}

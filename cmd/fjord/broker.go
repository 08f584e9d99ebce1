package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/fjord-io/fjord/internal/broker"
)

func runBroker(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fjord broker", flag.ContinueOnError)
	var (
		cfg      broker.Config
		nodeID   = fs.Int("node-id", 0, "broker id (node.id)")
		props    = fs.String("config", "", "server.properties file")
		logLevel = fs.String("log-level", "info", "debug, info, warn or error")
	)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:9092", "address to accept Kafka clients on")
	fs.StringVar(&cfg.Advertised, "advertised", "", "address clients are told to connect to (default: --listen)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "data directory (default: log.dirs from --config)")
	fs.StringVar(&cfg.Rack, "rack", "", "rack or zone of this broker (broker.rack)")
	fs.StringVar(&cfg.ClusterID, "cluster-id", "", "cluster id to use when the cluster is new")
	endpoints := fs.String("metadata-endpoints", "", "etcd client URLs of the cluster's metadata quorum, comma separated (http://127.0.0.1:2379,...); empty runs a standalone broker")
	fs.StringVar(&cfg.Cluster, "cluster", "fjord", "cluster name within the metadata quorum (keys under /fjord/NAME/)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	setupLogging(*logLevel)
	cfg.NodeID = int32(*nodeID)
	for _, e := range strings.Split(*endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			cfg.MetadataEndpoints = append(cfg.MetadataEndpoints, e)
		}
	}
	cfg.Props = map[string]string{}
	if *props != "" {
		p, err := broker.ReadProperties(*props)
		if err != nil {
			return err
		}
		cfg.Props = p
	}
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	return b.Run(ctx)
}

func setupLogging(level string) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})))
}

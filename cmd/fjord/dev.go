package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/fjord-io/fjord/internal/devcluster"
)

func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fjord dev", flag.ContinueOnError)
	var cfg devcluster.Config
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.IntVar(&cfg.Brokers, "brokers", 1, "number of brokers")
	fs.IntVar(&cfg.Port, "port", 9092, "port of broker 0; broker i listens on port+i")
	fs.StringVar(&cfg.DataDir, "data-dir", "fjord-data", "data directory; reuse it to keep data across restarts")
	fs.StringVar(&cfg.ConfigFile, "config", "", "server.properties file for every broker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	setupLogging(*logLevel)
	cfg.LogLevel = *logLevel
	return devcluster.Run(ctx, cfg)
}

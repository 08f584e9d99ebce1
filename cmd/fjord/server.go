package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fjord-io/fjord/internal/controlplane"
)

// runServer runs the control plane: `fjord server [--listen ADDR] [--data-dir DIR] [--region REGION]`.
func runServer(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fjord server", flag.ContinueOnError)
	var cfg controlplane.Config
	defaultDir := "fjord-data"
	if home, err := os.UserHomeDir(); err == nil {
		defaultDir = filepath.Join(home, ".fjord")
	}
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "address of the MSK API")
	fs.StringVar(&cfg.DataDir, "data-dir", defaultDir, "directory for state, root credentials and broker data")
	fs.StringVar(&cfg.Region, "region", "us-east-1", "AWS region the API serves; requests must be signed for it")
	fs.StringVar(&cfg.Account, "account", "000000000000", "12-digit account ID used in ARNs")
	fs.StringVar(&cfg.BrokerBinary, "broker-binary", "", "executable to run brokers with (default: this fjord binary)")
	ports := fs.String("broker-ports", "21092-21999", "range of 127.0.0.1 ports for brokers, LOW-HIGH")
	quorumPorts := fs.String("quorum-ports", "22000-22999", "range of 127.0.0.1 ports for the clusters' metadata quorum members (two each), LOW-HIGH")
	fs.DurationVar(&cfg.CreateTimeout, "create-timeout", 2*time.Minute, "how long a cluster may take to become ACTIVE before it is FAILED")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var err error
	if cfg.PortMin, cfg.PortMax, err = portRange("broker-ports", *ports); err != nil {
		return err
	}
	if cfg.QuorumPortMin, cfg.QuorumPortMax, err = portRange("quorum-ports", *quorumPorts); err != nil {
		return err
	}
	cfg.RootAccessKeyID = os.Getenv("FJORD_ROOT_ACCESS_KEY_ID")
	cfg.RootSecretAccessKey = os.Getenv("FJORD_ROOT_SECRET_ACCESS_KEY")
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", *logLevel, err)
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return controlplane.Run(ctx, cfg)
}

// portRange parses the LOW-HIGH value of flag name.
func portRange(name, v string) (lo, hi int, err error) {
	l, h, ok := strings.Cut(v, "-")
	lo, err1 := strconv.Atoi(l)
	hi, err2 := strconv.Atoi(h)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("--%s %q is not LOW-HIGH", name, v)
	}
	return lo, hi, nil
}

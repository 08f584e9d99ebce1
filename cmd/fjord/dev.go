package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/fjord-io/fjord/internal/devcluster"
)

const devUsage = `usage: fjord dev [flags]

Runs a local cluster in the foreground on 127.0.0.1, each broker its own
"fjord broker" process, and prints "bootstrap: host:port,..." once every
broker answers and knows the others. SIGINT or SIGTERM stops it.

With --brokers N > 1 it also runs a metadata quorum of "fjord quorum"
processes (1 member for 2 brokers, 3 for 3 or more), and gives every broker
DATA_DIR/server.properties: dev defaults (default.replication.factor and
offsets.topic.replication.factor = min(N, 3), min.insync.replicas=2 from 3
brokers, leader.imbalance.check.interval.seconds=5) under --config.

Ports, for broker i and quorum member j:
  broker i           PORT+i
  quorum member j    PORT+N+2j (clients), PORT+N+2j+1 (peers)
so --port 9092 --brokers 3 uses 9092-9094 for brokers and 9095-9100 for the
quorum. A data dir with a quorum must be reused with the same --brokers and
--port.

Every process is restarted if it dies. Its PID is in DATA_DIR/broker-i/broker.pid
or DATA_DIR/quorum-j/quorum.pid. To keep one down, create the file "hold"
in its directory (DATA_DIR/broker-i/hold): it is stopped if running and not
started again until the file is removed.

flags:
`

func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fjord dev", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), devUsage)
		fs.PrintDefaults()
	}
	var cfg devcluster.Config
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.IntVar(&cfg.Brokers, "brokers", 1, "number of brokers; more than 1 adds a metadata quorum")
	fs.IntVar(&cfg.Port, "port", 9092, "port of broker 0; broker i listens on port+i, the quorum on the ports after")
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

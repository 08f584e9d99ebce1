package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"

	"github.com/fjord-io/fjord/internal/bench"
)

const benchUsage = `usage:
  fjord bench --bootstrap HOST:PORT [workload flags] [--json]
      run one workload against a running cluster
  fjord bench compare [workload flags] [--exe PATH] [--work-dir DIR] [--json]
      run the workload against a Fjord broker and franz-go's in-memory kfake,
      each in its own process, at max rate and at half Fjord's max rate,
      and print a markdown table (default --duration 20s: kfake holds
      every record in memory)

`

// runBench runs `fjord bench`: one workload against --bootstrap, or with
// `compare` the Fjord-vs-kfake comparison. The hidden `kfake-serve --port P`
// runs a kfake broker for compare.
func runBench(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "compare":
			return runBenchCompare(ctx, args[1:])
		case "kfake-serve":
			return runBenchKfake(ctx, args[1:])
		}
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), benchUsage); fs.PrintDefaults() }
	bootstrap := fs.String("bootstrap", "", "comma-separated `host:port` seed brokers (required)")
	cfg := bench.DefaultConfig()
	workloadFlags(fs, &cfg)
	fs.StringVar(&cfg.Topic, "topic", "", "topic to use, created if missing (default: a fresh fjord-bench-<nanos>)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "target produce `records/s` across producers, scheduled open-loop; 0 = max")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's CPU profile to `file`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *bootstrap == "" {
		return fmt.Errorf("--bootstrap is required")
	}
	cfg.Bootstrap = strings.Split(*bootstrap, ",")
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return res.WriteJSON(os.Stdout)
	}
	return res.WriteText(os.Stdout)
}

func runBenchCompare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench compare", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), benchUsage); fs.PrintDefaults() }
	cfg := bench.DefaultCompareConfig()
	workloadFlags(fs, &cfg.Workload)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	fs.StringVar(&cfg.Exe, "exe", exe, "fjord `binary` that runs both brokers")
	fs.StringVar(&cfg.WorkDir, "work-dir", filepath.Join(os.TempDir(), "fjord-bench-compare"),
		"`dir` for Fjord's data (removed afterwards) and both brokers' logs")
	fs.Func("fjord-arg", "extra `arg` for Fjord's broker command line (repeatable)", func(s string) error {
		cfg.FjordArgs = append(cfg.FjordArgs, s)
		return nil
	})
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "rest before each half-rate run, after syncing the disks")
	asJSON := fs.Bool("json", false, "print the comparison as one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.Log = os.Stderr
	cmp, err := bench.Compare(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return cmp.WriteJSON(os.Stdout)
	}
	return cmp.WriteMarkdown(os.Stdout)
}

func runBenchKfake(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench kfake-serve", flag.ContinueOnError)
	port := fs.Int("port", 9092, "port to listen on, on 127.0.0.1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return bench.ServeKfake(ctx, *port)
}

// workloadFlags registers the flags shared by bench and bench compare,
// with cfg's values as defaults.
func workloadFlags(fs *flag.FlagSet, cfg *bench.Config) {
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of the topic")
	fs.IntVar(&cfg.ReplicationFactor, "replication-factor", cfg.ReplicationFactor, "replication factor of the topic")
	fs.IntVar(&cfg.RecordSize, "record-size", cfg.RecordSize, "record value `bytes` (random, incompressible; at least 8)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured window")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured warmup before the window")
	fs.Func("acks", "acks: all (or -1), 1 or 0 (default all)", func(s string) error {
		switch s {
		case "all", "-1":
			cfg.Acks = -1
		case "1":
			cfg.Acks = 1
		case "0":
			cfg.Acks = 0
		default:
			return fmt.Errorf("must be all, -1, 1 or 0")
		}
		return nil
	})
	fs.Func("topic-config", "`key=value` config of a topic the run creates (repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("want key=value")
		}
		if cfg.TopicConfigs == nil {
			cfg.TopicConfigs = map[string]string{}
		}
		cfg.TopicConfigs[k] = v
		return nil
	})
	fs.StringVar(&cfg.Compression, "compression", cfg.Compression, "none, gzip, snappy, lz4 or zstd")
	fs.IntVar(&cfg.Producers, "producers", cfg.Producers, "producer clients")
	fs.IntVar(&cfg.Consumers, "consumers", cfg.Consumers, "consumer clients, splitting the partitions (0 = produce only)")
	fs.DurationVar(&cfg.Linger, "linger", cfg.Linger, "producer linger")
	fs.IntVar(&cfg.BatchMaxBytes, "batch-max-bytes", cfg.BatchMaxBytes, "max bytes of one record batch")
	fs.IntVar(&cfg.MaxBufferedRecords, "max-buffered", cfg.MaxBufferedRecords, "records a producer holds unacknowledged before it blocks")
	fs.BoolVar(&cfg.Idempotent, "idempotent", cfg.Idempotent, "idempotent produce (acks=all only)")
	fs.DurationVar(&cfg.ReportInterval, "report-interval", cfg.ReportInterval, "progress line interval (0 = none)")
	fs.IntVar(&cfg.MaxInflight, "max-inflight", cfg.MaxInflight, "produce requests in flight per broker without idempotence")
}

// Command fjord is the single Fjord binary: the control plane, a broker, a
// local development cluster, and the tools that talk to them.
//
// This file only wires subcommands; each subcommand's flags are parsed in its
// own file in this directory and its work is done under internal/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name  string
	usage string
	run   func(ctx context.Context, args []string) error
}

var commands = []command{
	{"server", "run the control plane: the MSK API, reconcilers and console", runServer},
	{"broker", "run one Kafka broker", runBroker},
	{"dev", "run a local cluster in the foreground", runDev},
	{"kafka", "call the control plane the way `aws kafka` does", runKafka},
	{"bench", "run a produce/consume workload against any bootstrap", runBench},
	{"quorum", "run one member of the etcd metadata quorum", runQuorum},
	{"group", "list, describe, delete consumer groups and reset their offsets", runGroup},
	{"topic", "create, list, describe, alter, delete topics; produce and consume", runTopic},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	for _, c := range commands {
		if c.name != name {
			continue
		}
		err := c.run(ctx, args)
		switch {
		case err == nil:
			os.Exit(0)
		case errors.Is(err, flag.ErrHelp):
			os.Exit(0)
		default:
			fmt.Fprintf(os.Stderr, "fjord %s: %v\n", name, err)
			os.Exit(1)
		}
	}
	if name != "help" && name != "-h" && name != "--help" {
		fmt.Fprintf(os.Stderr, "fjord: unknown command %q\n\n", name)
	}
	usage()
	os.Exit(2)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: fjord <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", c.name, c.usage)
	}
}

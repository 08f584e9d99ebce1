package datacli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fjord-io/fjord/internal/broker"
	"github.com/fjord-io/fjord/internal/datacli"
)

// startBroker runs an in-process Fjord broker until the test ends and
// returns its address.
func startBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	b, err := broker.New(broker.Config{
		NodeID: 0, Listen: addr, Advertised: addr, DataDir: t.TempDir(),
		Props: map[string]string{"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "1"},
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return addr
}

// result is one command's output.
type result struct {
	stdout, stderr string
	err            error
}

// run runs `fjord <tool> args...` against addr with stdin.
func run(t *testing.T, addr, stdin, tool string, args ...string) result {
	t.Helper()
	var out, errw bytes.Buffer
	env := datacli.Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errw, Bootstrap: addr}
	var err error
	switch tool {
	case "group":
		err = datacli.Group(t.Context(), args, env)
	case "topic":
		err = datacli.Topic(t.Context(), args, env)
	default:
		t.Fatalf("no tool %q", tool)
	}
	return result{out.String(), errw.String(), err}
}

// must runs a command that has to succeed and returns its stdout.
func must(t *testing.T, addr, tool string, args ...string) string {
	t.Helper()
	r := run(t, addr, "", tool, args...)
	if r.err != nil {
		t.Fatalf("fjord %s %s: %v\nstdout:\n%s\nstderr:\n%s", tool, strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r.stdout
}

// mustJSON runs a command with --output json and decodes its stdout into v.
func mustJSON(t *testing.T, addr string, v any, tool string, args ...string) {
	t.Helper()
	out := must(t, addr, tool, append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("fjord %s %s: decode %q: %v", tool, strings.Join(args, " "), out, err)
	}
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

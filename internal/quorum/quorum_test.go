package quorum

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) {
	// After members of a three-member quorum stop, etcd can leave one idle
	// HTTP keep-alive connection between two of them open (client and server
	// side). A process runs one member, so this matters only to tests.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		goleak.IgnoreAnyFunction("net/http.(*connReader).backgroundRead"),
	)
}

// freeAddrs returns n loopback addresses with ports that were free a moment
// ago. etcd cannot take ready-made listeners, and peers must know each
// other's ports before they start.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

func newClient(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestValidate(t *testing.T) {
	ok := Config{Name: "a", DataDir: "/d", ListenClient: "127.0.0.1:2379", ListenPeer: "127.0.0.1:2380"}
	three := "a=http://127.0.0.1:2380,b=http://127.0.0.1:2480,c=http://127.0.0.1:2580"
	for _, tc := range []struct {
		name   string
		change func(*Config)
		err    string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"three members", func(c *Config) { c.InitialCluster = three }, ""},
		{"joining", func(c *Config) { c.InitialCluster = three; c.InitialClusterState = "existing" }, ""},
		{"ephemeral client port", func(c *Config) { c.ListenClient = "127.0.0.1:0" }, ""},
		{"no name", func(c *Config) { c.Name = "" }, "name is required"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data directory"},
		{"public client", func(c *Config) { c.ListenClient = "0.0.0.0:2379" }, "loopback"},
		{"hostname peer", func(c *Config) { c.ListenPeer = "localhost:2380" }, "loopback"},
		{"peer port 0", func(c *Config) { c.ListenPeer = "127.0.0.1:0" }, "port is required"},
		{"two members", func(c *Config) { c.InitialCluster = "a=http://127.0.0.1:2380,b=http://127.0.0.1:2480" }, "use 1 or 3"},
		{"not listed", func(c *Config) { c.InitialCluster = "b=http://127.0.0.1:2380" }, "does not list"},
		{"wrong peer URL", func(c *Config) { c.InitialCluster = "a=http://127.0.0.1:9999" }, "listens on"},
		{"https", func(c *Config) { c.InitialCluster = "a=https://127.0.0.1:2380" }, "want name=http"},
		{"duplicate", func(c *Config) {
			c.InitialCluster = "a=http://127.0.0.1:2380,a=http://127.0.0.1:2480,c=http://127.0.0.1:2580"
		}, "twice"},
		{"bad state", func(c *Config) { c.InitialClusterState = "old" }, "new or existing"},
		{"bad log level", func(c *Config) { c.LogLevel = "loud" }, "log level"},
	} {
		c := ok
		tc.change(&c)
		err := c.Validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.err)
		}
	}
}

// TestRunRestart runs one member, stops it through its context, and runs it
// again on the same data directory: what was written is still there.
func TestRunRestart(t *testing.T) {
	addrs := freeAddrs(t, 2)
	cfg := Config{Name: "solo", DataDir: filepath.Join(t.TempDir(), "m"), ListenClient: addrs[0], ListenPeer: addrs[1]}
	run := func(f func(c *clientv3.Client)) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, cfg) }()
		c := newClient(t, "http://"+addrs[0])
		f(c)
		c.Close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
	run(func(c *clientv3.Client) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if _, err := c.Put(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
	})
	run(func(c *clientv3.Client) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		resp, err := c.Get(ctx, "k")
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
			t.Fatalf("after restart: %v, %v", resp, err)
		}
	})
}

// TestThreeMembers checks the quorum arithmetic: three members stay writable
// with one stopped and refuse writes with two stopped.
func TestThreeMembers(t *testing.T) {
	addrs := freeAddrs(t, 6)
	var initial []string
	cfgs := make([]Config, 3)
	for i := range cfgs {
		cfgs[i] = Config{
			Name:         fmt.Sprintf("m%d", i),
			DataDir:      filepath.Join(t.TempDir(), fmt.Sprint(i)),
			ListenClient: addrs[2*i],
			ListenPeer:   addrs[2*i+1],
		}
		initial = append(initial, fmt.Sprintf("m%d=http://%s", i, addrs[2*i+1]))
	}
	members := make([]*Member, 3)
	errs := make([]error, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range cfgs {
		cfgs[i].InitialCluster = strings.Join(initial, ",")
		wg.Go(func() { members[i], errs[i] = Start(ctx, cfgs[i]) })
	}
	wg.Wait()
	for i, m := range members {
		if m != nil {
			t.Cleanup(m.Close)
		}
		if errs[i] != nil {
			t.Fatalf("start member %d: %v", i, errs[i])
		}
	}

	var endpoints []string
	for _, m := range members {
		endpoints = append(endpoints, m.ClientURL())
	}
	c := newClient(t, endpoints...)
	put := func(key string, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		_, err := c.Put(ctx, key, "v")
		return err
	}
	if err := put("all three", 20*time.Second); err != nil {
		t.Fatalf("put with three members: %v", err)
	}
	members[2].Close()
	if err := put("two left", 20*time.Second); err != nil {
		t.Fatalf("put with two of three members: %v", err)
	}
	members[1].Close()
	if err := put("one left", 3*time.Second); err == nil {
		t.Fatal("put with one of three members succeeded")
	}
}

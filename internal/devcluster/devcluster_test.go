package devcluster

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/fjord-io/fjord/internal/probe"
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) != "" {
		os.Exit(fakeMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		brokers        int
		members        int
		lastPort       int
		initialCluster string
		clientURLs     []string
	}{
		{1, 0, 9092, "", []string{}},
		{2, 1, 9095, "quorum-0=http://127.0.0.1:9095", []string{"http://127.0.0.1:9094"}},
		{3, 3, 9100,
			"quorum-0=http://127.0.0.1:9096,quorum-1=http://127.0.0.1:9098,quorum-2=http://127.0.0.1:9100",
			[]string{"http://127.0.0.1:9095", "http://127.0.0.1:9097", "http://127.0.0.1:9099"}},
		{5, 3, 9102,
			"quorum-0=http://127.0.0.1:9098,quorum-1=http://127.0.0.1:9100,quorum-2=http://127.0.0.1:9102",
			[]string{"http://127.0.0.1:9097", "http://127.0.0.1:9099", "http://127.0.0.1:9101"}},
	} {
		c := Config{Brokers: tc.brokers, Port: 9092}
		if got := c.members(); got != tc.members {
			t.Errorf("%d brokers: %d quorum members, want %d", tc.brokers, got, tc.members)
		}
		if got := c.lastPort(); got != tc.lastPort {
			t.Errorf("%d brokers: last port %d, want %d", tc.brokers, got, tc.lastPort)
		}
		if got := c.initialCluster(); got != tc.initialCluster {
			t.Errorf("%d brokers: initial cluster %q, want %q", tc.brokers, got, tc.initialCluster)
		}
		if diff := cmp.Diff(tc.clientURLs, c.clientURLs()); diff != "" {
			t.Errorf("%d brokers: client URLs (-want +got):\n%s", tc.brokers, diff)
		}
		var want []string
		for i := range tc.brokers {
			want = append(want, "127.0.0.1:"+strconv.Itoa(9092+i))
		}
		if diff := cmp.Diff(want, c.brokerAddrs()); diff != "" {
			t.Errorf("%d brokers: broker addresses (-want +got):\n%s", tc.brokers, diff)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string // "" means valid
	}{
		{"one broker", Config{Brokers: 1, Port: 9092, DataDir: "d"}, ""},
		{"default brokers", Config{Port: 9092, DataDir: "d"}, ""},
		{"three brokers", Config{Brokers: 3, Port: 9092, DataDir: "d"}, ""},
		{"negative", Config{Brokers: -1, Port: 9092, DataDir: "d"}, "at least one broker"},
		{"no port", Config{Brokers: 1, DataDir: "d"}, "out of range"},
		{"last broker port too high", Config{Brokers: 2, Port: 65535, DataDir: "d"}, "out of range"},
		{"quorum ports too high", Config{Brokers: 3, Port: 65530, DataDir: "d"}, "uses ports 65530-65538"},
		{"no data dir", Config{Brokers: 1, Port: 9092}, "no data directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

func TestDevProperties(t *testing.T) {
	for _, tc := range []struct {
		brokers int
		want    map[string]string
	}{
		{2, map[string]string{
			"default.replication.factor":              "2",
			"offsets.topic.replication.factor":        "2",
			"leader.imbalance.check.interval.seconds": "5",
		}},
		{3, map[string]string{
			"default.replication.factor":              "3",
			"offsets.topic.replication.factor":        "3",
			"min.insync.replicas":                     "2",
			"leader.imbalance.check.interval.seconds": "5",
		}},
		{6, map[string]string{
			"default.replication.factor":              "3",
			"offsets.topic.replication.factor":        "3",
			"min.insync.replicas":                     "2",
			"leader.imbalance.check.interval.seconds": "5",
		}},
	} {
		path := filepath.Join(t.TempDir(), "server.properties")
		if err := writeProperties(path, "", tc.brokers); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, parseProperties(b)); diff != "" {
			t.Errorf("%d brokers (-want +got):\n%s", tc.brokers, diff)
		}
	}
}

// TestDevPropertiesUnderUserConfig: the user's --config file wins over the
// dev defaults and is copied as it is, continuation lines and all.
func TestDevPropertiesUnderUserConfig(t *testing.T) {
	dir := t.TempDir()
	user := "# mine\nmin.insync.replicas = 1\nlog.retention.hours:1\nlong.value=a,\\\n  b\nleader.imbalance.check.interval.seconds=300"
	userFile := filepath.Join(dir, "user.properties")
	if err := os.WriteFile(userFile, []byte(user), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "server.properties")
	if err := writeProperties(path, userFile, 3); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"default.replication.factor":              "3",
		"offsets.topic.replication.factor":        "3",
		"min.insync.replicas":                     "1",
		"log.retention.hours":                     "1",
		"long.value":                              "a,b",
		"leader.imbalance.check.interval.seconds": "300",
	}
	if diff := cmp.Diff(want, parseProperties(b)); diff != "" {
		t.Errorf("merged properties (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(b), user+"\n") {
		t.Errorf("the user's file is not copied as it is:\n%s", b)
	}
	if strings.Count(string(b), "\nmin.insync.replicas") != 1 {
		t.Errorf("a default the user sets is written too:\n%s", b)
	}
	if err := writeProperties(path, filepath.Join(dir, "missing"), 3); err == nil {
		t.Error("no error for a missing --config file")
	}
}

// freePorts returns the first of n consecutive loopback ports that were
// free a moment ago.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		first := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		ok := first+n-1 <= 65535
		for p := first; ok && p < first+n; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return first
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// lines is an io.Writer that hands each write to a channel.
type lines chan string

func (l lines) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

// running is a cluster under Run in a test.
type running struct {
	cfg    Config
	out    lines
	cancel context.CancelFunc
	done   chan error
}

// startRun runs a cluster of the fake processes and waits for its bootstrap
// line. It stops the cluster in t.Cleanup.
func startRun(t *testing.T, brokers int, configFile string) *running {
	t.Helper()
	t.Setenv(fakeEnv, "1")
	cfg := Config{
		Brokers:    brokers,
		Port:       freePorts(t, brokers+2*quorumSize(brokers)),
		DataDir:    t.TempDir(),
		Binary:     os.Args[0],
		ConfigFile: configFile,
		LogLevel:   "warn",
	}
	r := &running{cfg: cfg, out: make(lines, 10), done: make(chan error, 1)}
	cfg.Out = r.out
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- Run(ctx, cfg) }()
	t.Cleanup(func() { r.stop(t) })
	want := "bootstrap: " + strings.Join(cfg.brokerAddrs(), ",") + "\n"
	select {
	case line := <-r.out:
		if line != want {
			t.Fatalf("printed %q, want %q", line, want)
		}
	case err := <-r.done:
		r.done <- err
		t.Fatalf("Run returned %v before printing the bootstrap line", err)
	case <-time.After(time.Minute):
		t.Fatal("no bootstrap line within a minute")
	}
	return r
}

// stop stops the cluster and waits for Run to return. It is idempotent.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of its context ending")
	}
}

func (r *running) brokerDir(i int) string {
	return filepath.Join(r.cfg.DataDir, "broker-"+strconv.Itoa(i))
}

func (r *running) memberDir(j int) string {
	return filepath.Join(r.cfg.DataDir, memberName(j))
}

// pid reads a PID file; 0 if there is none.
func pid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

// alive reports whether pid is a live process (not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// waitUntil polls cond every 50 ms for up to bound.
func waitUntil(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRunOneBroker: one broker runs standalone, as before there was a
// quorum: no quorum members, no metadata flags, the user's config as it is.
func TestRunOneBroker(t *testing.T) {
	userFile := filepath.Join(t.TempDir(), "user.properties")
	if err := os.WriteFile(userFile, []byte("num.partitions=3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRun(t, 1, userFile)
	a, err := readFakeArgs(r.brokerDir(0))
	if err != nil {
		t.Fatal(err)
	}
	if a.MetadataEndpoints != "" || a.Cluster != "" || a.Config != userFile {
		t.Errorf("standalone broker started with %q", a.Args)
	}
	if p := pid(filepath.Join(r.brokerDir(0), "broker.pid")); !alive(p) {
		t.Errorf("broker.pid names pid %d, which is not running", p)
	}
	for _, name := range []string{memberName(0), "server.properties", layoutFile} {
		if _, err := os.Stat(filepath.Join(r.cfg.DataDir, name)); err == nil {
			t.Errorf("a one-broker cluster has %s", name)
		}
	}
}

// TestRunThreeBrokers runs three (fake) brokers over a real three-member
// quorum: their flags, PID files, a quorum member killed and restarted
// (it rejoins with its data), a broker held down and released, and the
// stop order.
func TestRunThreeBrokers(t *testing.T) {
	r := startRun(t, 3, "")
	cfg := r.cfg
	endpoints := strings.Join(cfg.clientURLs(), ",")
	propsFile := filepath.Join(cfg.DataDir, "server.properties")
	for i := range 3 {
		a, err := readFakeArgs(r.brokerDir(i))
		if err != nil {
			t.Fatal(err)
		}
		want := fakeArgs{
			Args: a.Args, NodeID: i,
			Listen: cfg.brokerAddr(i), Advertised: cfg.brokerAddr(i),
			DataDir: r.brokerDir(i), Rack: zones[i], ClusterID: a.ClusterID,
			Config: propsFile, LogLevel: "warn",
			MetadataEndpoints: endpoints, Cluster: "dev",
		}
		if diff := cmp.Diff(want, a); diff != "" || a.ClusterID == "" {
			t.Errorf("broker %d's flags (-want +got):\n%s", i, diff)
		}
		if p := pid(filepath.Join(r.brokerDir(i), "broker.pid")); !alive(p) {
			t.Errorf("broker %d's broker.pid names pid %d, which is not running", i, p)
		}
	}
	b, err := os.ReadFile(propsFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := parseProperties(b); !maps.Equal(got, devProperties(3)) {
		t.Errorf("server.properties holds %v, want %v", got, devProperties(3))
	}

	hc := &http.Client{Timeout: 2 * time.Second}
	healthy := func(j int) bool {
		return probe.QuorumHealthy(t.Context(), hc, cfg.clientURLs()[j]) == nil
	}
	for j := range 3 {
		if !healthy(j) {
			t.Errorf("quorum member %d is not healthy", j)
		}
	}

	// A killed member is restarted on its data directory and rejoins.
	cl, err := clientv3.New(clientv3.Config{Endpoints: cfg.clientURLs()[:1], DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := cl.Put(ctx, "/test/before-kill", "kept"); err != nil {
		t.Fatal(err)
	}
	memberPID := filepath.Join(r.memberDir(1), "quorum.pid")
	old := pid(memberPID)
	if !alive(old) {
		t.Fatalf("quorum member 1's quorum.pid names pid %d, which is not running", old)
	}
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "quorum member 1 to be restarted", func() bool {
		p := pid(memberPID)
		return p != 0 && p != old && alive(p) && healthy(1)
	})
	one, err := clientv3.New(clientv3.Config{Endpoints: cfg.clientURLs()[1:2], DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	resp, err := one.Get(ctx, "/test/before-kill")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "kept" {
		t.Fatalf("restarted member 1 answers %v, %v", resp, err)
	}

	// A held broker is stopped and stays down until released.
	brokerPID := filepath.Join(r.brokerDir(2), "broker.pid")
	old = pid(brokerPID)
	hold := filepath.Join(r.brokerDir(2), holdFile)
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "held broker 2 to stop", func() bool { return !alive(old) && pid(brokerPID) == 0 })
	time.Sleep(2 * holdPoll)
	if p := pid(brokerPID); p != 0 {
		t.Fatalf("held broker 2 was started again (pid %d)", p)
	}
	if err := os.Remove(hold); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "released broker 2 to start", func() bool { p := pid(brokerPID); return p != 0 && alive(p) })

	// Stopping stops every broker before any quorum member.
	var pids []int
	for i := range 3 {
		pids = append(pids, pid(filepath.Join(r.brokerDir(i), "broker.pid")))
		pids = append(pids, pid(filepath.Join(r.memberDir(i), "quorum.pid")))
	}
	r.stop(t)
	for _, p := range pids {
		if alive(p) {
			t.Errorf("pid %d outlived Run", p)
		}
	}
	var lastBroker, firstMember time.Time
	for i := range 3 {
		bt, err := stoppedAt(r.brokerDir(i))
		if err != nil {
			t.Fatalf("broker %d: %v", i, err)
		}
		mt, err := stoppedAt(r.memberDir(i))
		if err != nil {
			t.Fatalf("quorum member %d: %v", i, err)
		}
		if bt.After(lastBroker) {
			lastBroker = bt
		}
		if firstMember.IsZero() || mt.Before(firstMember) {
			firstMember = mt
		}
	}
	if !lastBroker.Before(firstMember) {
		t.Errorf("a quorum member stopped at %v, before the last broker at %v", firstMember, lastBroker)
	}
}

// TestRunTwoBrokers: two brokers share a quorum of one member.
func TestRunTwoBrokers(t *testing.T) {
	r := startRun(t, 2, "")
	for i := range 2 {
		a, err := readFakeArgs(r.brokerDir(i))
		if err != nil {
			t.Fatal(err)
		}
		if a.MetadataEndpoints != r.cfg.clientURLs()[0] || a.Cluster != "dev" {
			t.Errorf("broker %d started with %q", i, a.Args)
		}
	}
	if _, err := os.Stat(r.memberDir(1)); err == nil {
		t.Error("a two-broker cluster has a second quorum member")
	}
}

// TestRunRefusesOtherLayout: a data directory whose quorum was created with
// another port or broker count is refused before anything starts.
func TestRunRefusesOtherLayout(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, layoutFile), []byte("brokers=3 port=9092\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []Config{
		{Brokers: 3, Port: 19092, DataDir: dir, Binary: "/nonexistent"},
		{Brokers: 4, Port: 9092, DataDir: dir, Binary: "/nonexistent"},
		{Brokers: 1, Port: 9092, DataDir: dir, Binary: "/nonexistent"},
	} {
		err := Run(t.Context(), cfg)
		if err == nil || !strings.Contains(err.Error(), "--brokers 3 --port 9092") {
			t.Errorf("brokers %d port %d: Run returned %v", cfg.Brokers, cfg.Port, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "broker-0")); err == nil {
		t.Error("a refused Run created broker directories")
	}
}

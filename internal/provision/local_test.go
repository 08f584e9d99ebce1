package provision_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fjord-io/fjord/internal/provision"
	"github.com/fjord-io/fjord/internal/provision/provisiontest"
)

func TestMain(m *testing.M) {
	provisiontest.MaybeRunBroker()
	os.Exit(m.Run())
}

// quorumPorts is the quorum port range of this test process: its own, so
// that test binaries of other packages running at once do not race it for
// the default range.
var quorumPorts = func() [2]int {
	lo := 27000 + os.Getpid()%100*40
	return [2]int{lo, lo + 39}
}()

func newLocal(t *testing.T, dataDir string) *provision.Local {
	t.Helper()
	l, err := provision.NewLocal(provision.LocalConfig{
		DataDir:       dataDir,
		Binary:        os.Args[0],
		Env:           []string{provisiontest.EnvVar + "=1"},
		QuorumPortMin: quorumPorts[0],
		QuorumPortMax: quorumPorts[1],
		StopTimeout:   5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitProbe waits until b answers.
func waitProbe(t *testing.T, l *provision.Local, b provision.Broker) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := l.Probe(t.Context(), b)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered: %v", b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitQuorum waits until q is healthy.
func waitQuorum(t *testing.T, l *provision.Local, q provision.Quorum) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := l.ProbeQuorum(t.Context(), q)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became healthy: %v", q, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ensureQuorum starts the quorum of a cluster of n brokers and waits for it.
func ensureQuorum(t *testing.T, l *provision.Local, clusterID string, n int) provision.Quorum {
	t.Helper()
	q := provision.Quorum{ClusterID: clusterID, Members: provision.QuorumSize(n)}
	if _, err := l.EnsureQuorum(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	waitQuorum(t, l, q)
	return q
}

func pidOf(t *testing.T, dir string, b provision.Broker) int {
	t.Helper()
	return readPid(t, filepath.Join(dir, "clusters", b.ClusterID, "broker-1", "broker.pid"))
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestLocalLifecycle(t *testing.T) {
	dir := t.TempDir()
	l := newLocal(t, dir)
	ctx := t.Context()
	b := provision.Broker{ClusterID: uuid.NewString(), NodeID: 1, Brokers: 1, Port: freePort(t), Rack: "use1-az1", ServerProperties: []byte("num.partitions=3\n")}
	t.Cleanup(func() { l.Remove(context.Background(), b.ClusterID) })

	if _, err := l.Ensure(ctx, b); err == nil || !strings.Contains(err.Error(), "quorum is not provisioned") {
		t.Fatalf("Ensure before EnsureQuorum = %v; want an error", err)
	}
	ensureQuorum(t, l, b.ClusterID, 1)
	members := quorumFlags(t, dir, b.ClusterID)
	if len(members) != 1 {
		t.Fatalf("quorum members = %v, want 1", members)
	}
	started, err := l.Ensure(ctx, b)
	if err != nil || !started {
		t.Fatalf("Ensure = %v, %v; want a start", started, err)
	}
	waitProbe(t, l, b)
	flags, err := os.ReadFile(filepath.Join(dir, "clusters", b.ClusterID, "broker-1", "data", provisiontest.FlagsFile))
	if err != nil {
		t.Fatal(err)
	}
	wants := []string{"node-id=1", "rack=use1-az1", "listen=127.0.0.1:", "cluster-id=" + b.KafkaClusterID(),
		"metadata-endpoints=http://" + members[0]["listen-client"] + "\n", "cluster=" + b.ClusterID + "\n",
		"default.replication.factor=1\n", "auto.create.topics.enable=false\n", "num.partitions=1\n", "\nnum.partitions=3\n"}
	for _, want := range wants {
		if !strings.Contains(string(flags), want) {
			t.Errorf("broker flags %q lack %q", flags, want)
		}
	}
	if strings.Index(string(flags), "num.partitions=1") > strings.Index(string(flags), "num.partitions=3") {
		t.Errorf("broker flags %q: the configuration's num.partitions must come last, to win", flags)
	}
	pid := pidOf(t, dir, b)

	// Ensure again: the running process is kept.
	if started, err := l.Ensure(ctx, b); err != nil || started {
		t.Fatalf("second Ensure = %v, %v; want no start", started, err)
	}
	// A restarted control plane that lost the pid file adopts the process.
	os.Remove(filepath.Join(dir, "clusters", b.ClusterID, "broker-1", "broker.pid"))
	l2 := newLocal(t, dir)
	if started, err := l2.Ensure(ctx, b); err != nil || started {
		t.Fatalf("Ensure after restart = %v, %v; want adoption", started, err)
	}
	if got := pidOf(t, dir, b); got != pid {
		t.Errorf("adopted pid %d, want %d", got, pid)
	}

	// A crashed broker is restarted.
	syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for l.Probe(ctx, b) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// The dead broker's port can take a moment to be released; the
	// reconciler retries Ensure, and so does this test.
	for {
		started, err := l.Ensure(ctx, b)
		if err == nil && started {
			break
		}
		if err == nil || time.Now().After(deadline) {
			t.Fatalf("Ensure after crash = %v, %v; want a start", started, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitProbe(t, l, b)

	if err := l.Remove(ctx, b.ClusterID); err != nil {
		t.Fatal(err)
	}
	if err := l.Probe(ctx, b); err == nil {
		t.Error("Probe after Remove succeeded")
	}
	if procs := clusterProcs(t, dir); len(procs) != 0 {
		t.Errorf("processes after Remove: %v", procs)
	}
	if _, err := os.Stat(filepath.Join(dir, "clusters", b.ClusterID)); !os.IsNotExist(err) {
		t.Errorf("cluster directory still exists: %v", err)
	}
	if _, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(b.Port)); err != nil {
		t.Errorf("port %d not freed: %v", b.Port, err)
	}
}

func TestLocalSweep(t *testing.T) {
	dir := t.TempDir()
	l := newLocal(t, dir)
	ctx := t.Context()
	keep := provision.Broker{ClusterID: uuid.NewString(), NodeID: 1, Brokers: 1, Port: freePort(t), Rack: "a"}
	orphan := provision.Broker{ClusterID: uuid.NewString(), NodeID: 1, Brokers: 1, Port: freePort(t), Rack: "a"}
	t.Cleanup(func() {
		l.Remove(context.Background(), keep.ClusterID)
		l.Remove(context.Background(), orphan.ClusterID)
	})
	for _, b := range []provision.Broker{keep, orphan} {
		ensureQuorum(t, l, b.ClusterID, 1)
		if _, err := l.Ensure(ctx, b); err != nil {
			t.Fatal(err)
		}
		waitProbe(t, l, b)
	}
	if err := l.Sweep(ctx, map[string]bool{keep.ClusterID: true}); err != nil {
		t.Fatal(err)
	}
	if err := l.Probe(ctx, keep); err != nil {
		t.Errorf("kept broker stopped: %v", err)
	}
	if err := l.Probe(ctx, orphan); err == nil {
		t.Error("orphan still answers")
	}
	if _, err := os.Stat(filepath.Join(dir, "clusters", orphan.ClusterID)); !os.IsNotExist(err) {
		t.Errorf("orphan directory still exists: %v", err)
	}
	for proc := range clusterProcs(t, dir) {
		if strings.HasPrefix(proc, orphan.ClusterID) {
			t.Errorf("orphan process %s still runs", proc)
		}
	}
}

func TestProbeReportsExit(t *testing.T) {
	l := newLocal(t, t.TempDir())
	b := provision.Broker{ClusterID: uuid.NewString(), NodeID: 1, Port: freePort(t), Rack: "a"}
	err := l.Probe(t.Context(), b)
	if err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("Probe of a broker never started = %v", err)
	}
}

// TestLocalQuorum runs a three-member quorum and three brokers on it:
// ports recorded once and kept, adoption after a restart, a dead member
// restarted, readiness only once every broker is listed, and Remove.
func TestLocalQuorum(t *testing.T) {
	dir := t.TempDir()
	l := newLocal(t, dir)
	ctx := t.Context()
	id := uuid.NewString()
	t.Cleanup(func() { l.Remove(context.Background(), id) })
	q := ensureQuorum(t, l, id, 3)
	if q.Members != 3 {
		t.Fatalf("QuorumSize(3) = %d, want 3", q.Members)
	}
	members := quorumFlags(t, dir, id)
	if len(members) != 3 {
		t.Fatalf("quorum members = %v, want 3", members)
	}
	ports := map[string]bool{}
	var endpoints []string
	for j, m := range members {
		name := "quorum-" + strconv.Itoa(j)
		if m["name"] != name || m["initial-cluster"] != members[0]["initial-cluster"] || m["initial-cluster-state"] != "new" ||
			!strings.Contains(m["initial-cluster"], name+"=http://"+m["listen-peer"]) {
			t.Errorf("member %d flags = %v", j, m)
		}
		for _, addr := range []string{m["listen-client"], m["listen-peer"]} {
			_, p, _ := net.SplitHostPort(addr)
			port, _ := strconv.Atoi(p)
			if port < quorumPorts[0] || port > quorumPorts[1] {
				t.Errorf("member %d port %d is outside %v", j, port, quorumPorts)
			}
			ports[addr] = true
		}
		endpoints = append(endpoints, "http://"+m["listen-client"])
	}
	if len(ports) != 6 {
		t.Errorf("member addresses = %v, want 6 distinct", ports)
	}
	recorded, err := os.ReadFile(filepath.Join(dir, "clusters", id, "quorum.json"))
	if err != nil {
		t.Fatal(err)
	}
	pids := memberPids(t, dir, id)

	// Readiness needs every broker in the metadata.
	brokers := make([]provision.Broker, 3)
	for i := range brokers {
		brokers[i] = provision.Broker{ClusterID: id, NodeID: i + 1, Brokers: 3, Port: freePort(t), Rack: "use1-az" + strconv.Itoa(i+1)}
	}
	if _, err := l.Ensure(ctx, brokers[0]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := l.Probe(ctx, brokers[0])
		if err != nil && strings.Contains(err.Error(), "not yet all of [1 2 3]") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Probe of the only broker started = %v; want it not ready for want of the others", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, b := range brokers[1:] {
		if _, err := l.Ensure(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range brokers {
		waitProbe(t, l, b)
	}
	flags, err := os.ReadFile(filepath.Join(dir, "clusters", id, "broker-2", "data", provisiontest.FlagsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"metadata-endpoints=" + strings.Join(endpoints, ",") + "\n", "cluster=" + id + "\n",
		"default.replication.factor=3\n", "min.insync.replicas=2\n", "offsets.topic.replication.factor=3\n"} {
		if !strings.Contains(string(flags), want) {
			t.Errorf("broker flags %q lack %q", flags, want)
		}
	}

	// A restarted control plane that lost a pid file adopts the members
	// and keeps their ports.
	os.Remove(filepath.Join(dir, "clusters", id, "quorum-1", "quorum.pid"))
	l2 := newLocal(t, dir)
	if started, err := l2.EnsureQuorum(ctx, q); err != nil || started {
		t.Fatalf("EnsureQuorum after restart = %v, %v; want adoption", started, err)
	}
	if got := memberPids(t, dir, id); !slices.Equal(got, pids) {
		t.Errorf("member pids after restart = %v, want %v", got, pids)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "clusters", id, "quorum.json")); string(again) != string(recorded) {
		t.Errorf("quorum.json changed across the restart:\n%s\nnow:\n%s", recorded, again)
	}

	// Another cluster's quorum gets ports of its own.
	other := uuid.NewString()
	t.Cleanup(func() { l2.Remove(context.Background(), other) })
	ensureQuorum(t, l2, other, 2)
	for _, m := range quorumFlags(t, dir, other) {
		if ports[m["listen-client"]] || ports[m["listen-peer"]] {
			t.Errorf("second quorum reuses the first's ports: %v", m)
		}
	}

	// A dead member is reported, then restarted.
	syscall.Kill(pids[0], syscall.SIGKILL)
	deadline = time.Now().Add(5 * time.Second)
	for {
		err := l2.ProbeQuorum(ctx, q)
		if err != nil && strings.Contains(err.Error(), "not running") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ProbeQuorum with a member killed = %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		started, err := l2.EnsureQuorum(ctx, q)
		if err == nil && started {
			break
		}
		if err == nil || time.Now().After(deadline) {
			t.Fatalf("EnsureQuorum after a member died = %v, %v; want a start", started, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitQuorum(t, l2, q)

	if err := l2.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	for proc := range clusterProcs(t, dir) {
		if strings.HasPrefix(proc, id) {
			t.Errorf("process %s still runs after Remove", proc)
		}
	}
	for addr := range ports {
		if ln, err := net.Listen("tcp", addr); err != nil {
			t.Errorf("quorum address %s not freed: %v", addr, err)
		} else {
			ln.Close()
		}
	}
}

func TestMSKDefaults(t *testing.T) {
	for _, tt := range []struct {
		brokers          int
		rf, minISR, auto string
	}{
		{1, "1", "1", "false"},
		{2, "2", "1", "false"},
		{3, "3", "2", "false"},
		{6, "3", "2", "false"},
	} {
		p := provision.MSKDefaults(tt.brokers)
		got := []string{p["default.replication.factor"], p["offsets.topic.replication.factor"], p["min.insync.replicas"], p["auto.create.topics.enable"], p["num.partitions"]}
		if want := []string{tt.rf, tt.rf, tt.minISR, tt.auto, "1"}; !slices.Equal(got, want) {
			t.Errorf("MSKDefaults(%d) = %v, want %v", tt.brokers, got, want)
		}
	}
}

// quorumFlags returns the flags each stand-in member of a cluster's quorum
// recorded, by member index, once every member with a directory has.
func quorumFlags(t *testing.T, dir, clusterID string) []map[string]string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(dir, "clusters", clusterID, "quorum-*"))
	var files []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		files, _ = filepath.Glob(filepath.Join(dir, "clusters", clusterID, "quorum-*", "data", provisiontest.FlagsFile))
		if len(files) == len(dirs) || time.Now().After(deadline) {
			break
		}
	}
	slices.Sort(files)
	var out []map[string]string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, line := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				m[k] = v
			}
		}
		out = append(out, m)
	}
	return out
}

// memberPids returns the pids in the pid files of a cluster's quorum members.
func memberPids(t *testing.T, dir, clusterID string) []int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "clusters", clusterID, "quorum-*", "quorum.pid"))
	slices.Sort(files)
	var pids []int
	for _, f := range files {
		pids = append(pids, readPid(t, f))
	}
	return pids
}

// clusterProcs returns the live process-group leaders whose --data-dir lies
// under dir's clusters, by directory ("<cluster>/broker-1", "<cluster>/quorum-0").
func clusterProcs(t *testing.T, dir string) map[string]int {
	t.Helper()
	root := filepath.Join(dir, "clusters") + "/"
	out := map[string]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(raw), "\x00")
		i := slices.Index(args, "--data-dir")
		if i < 0 || i+1 >= len(args) || !strings.HasPrefix(args[i+1], root) {
			continue
		}
		if stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat"); strings.Contains(string(stat), ") Z ") {
			continue
		}
		out[strings.TrimSuffix(strings.TrimPrefix(args[i+1], root), "/data")] = pid
	}
	return out
}

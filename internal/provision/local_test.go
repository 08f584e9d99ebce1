package provision_test

import (
	"net"
	"os"
	"path/filepath"
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

func newLocal(t *testing.T, dataDir string) *provision.Local {
	t.Helper()
	l, err := provision.NewLocal(provision.LocalConfig{
		DataDir:     dataDir,
		Binary:      os.Args[0],
		Env:         []string{provisiontest.EnvVar + "=1"},
		StopTimeout: 5 * time.Second,
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

func pidOf(t *testing.T, dir string, b provision.Broker) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "clusters", b.ClusterID, "broker-1", "broker.pid"))
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
	b := provision.Broker{ClusterID: uuid.NewString(), NodeID: 1, Port: freePort(t), Rack: "use1-az1", ServerProperties: []byte("num.partitions=3\n")}
	t.Cleanup(func() { l.Remove(t.Context(), b.ClusterID) })

	started, err := l.Ensure(ctx, b)
	if err != nil || !started {
		t.Fatalf("Ensure = %v, %v; want a start", started, err)
	}
	waitProbe(t, l, b)
	flags, err := os.ReadFile(filepath.Join(dir, "clusters", b.ClusterID, "broker-1", "data", provisiontest.FlagsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"node-id=1", "rack=use1-az1", "listen=127.0.0.1:", "config=num.partitions=3", "cluster-id=" + b.KafkaClusterID()} {
		if !strings.Contains(string(flags), want) {
			t.Errorf("broker flags %q lack %q", flags, want)
		}
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
	keep := provision.Broker{ClusterID: uuid.NewString(), NodeID: 1, Port: freePort(t), Rack: "a"}
	orphan := provision.Broker{ClusterID: uuid.NewString(), NodeID: 1, Port: freePort(t), Rack: "a"}
	t.Cleanup(func() { l.Remove(t.Context(), keep.ClusterID); l.Remove(t.Context(), orphan.ClusterID) })
	for _, b := range []provision.Broker{keep, orphan} {
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
}

func TestProbeReportsExit(t *testing.T) {
	l := newLocal(t, t.TempDir())
	b := provision.Broker{ClusterID: uuid.NewString(), NodeID: 1, Port: freePort(t), Rack: "a"}
	err := l.Probe(t.Context(), b)
	if err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("Probe of a broker never started = %v", err)
	}
}

package reconcile_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/fjord-io/fjord/internal/cluster"
	"github.com/fjord-io/fjord/internal/provision"
	"github.com/fjord-io/fjord/internal/provision/provisiontest"
	"github.com/fjord-io/fjord/internal/reconcile"
	"github.com/fjord-io/fjord/internal/store"
)

func TestMain(m *testing.M) {
	provisiontest.MaybeRunBroker()
	goleak.VerifyTestMain(m)
}

type env struct {
	dir         string
	store       *store.SQLite
	ports       [2]int // brokers'
	quorumPorts [2]int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenSQLite(t.Context(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Port ranges of its own per test, away from the ephemeral range.
	base := 22000 + (os.Getpid()%100)*40 + len(t.Name())%10*4
	e := &env{dir: dir, store: st, ports: [2]int{base, base + 19}, quorumPorts: [2]int{base + 20, base + 39}}
	t.Cleanup(func() { killAll(t, dir) })
	return e
}

// start runs a reconciler (with a fresh provisioner, as a restarted control
// plane would have) until the returned stop is called.
func (e *env) start(t *testing.T, binary string, extraEnv ...string) (stop func()) {
	t.Helper()
	prov, err := provision.NewLocal(provision.LocalConfig{
		DataDir: e.dir, Binary: binary, Env: append([]string{provisiontest.EnvVar + "=1"}, extraEnv...), StopTimeout: 5 * time.Second,
		QuorumPortMin: e.quorumPorts[0], QuorumPortMax: e.quorumPorts[1],
	})
	if err != nil {
		t.Fatal(err)
	}
	r := reconcile.New(reconcile.Config{PortMin: e.ports[0], PortMax: e.ports[1], CreateTimeout: 20 * time.Second, ResyncInterval: 200 * time.Millisecond}, e.store, prov)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// create stores a cluster as the API does.
func (e *env) create(t *testing.T, name string, brokers int, subnets ...string) cluster.Cluster {
	t.Helper()
	a := cluster.ARN{Partition: "aws", Region: "us-east-1", Account: "000000000000", Resource: cluster.ResourceCluster, Name: name, ID: cluster.NewID()}
	op := a
	op.Resource, op.Sub = cluster.ResourceOperation, uuid.NewString()
	spec := cluster.Spec{KafkaVersion: "3.9.x", NumberOfBrokerNodes: brokers, InstanceType: "kafka.m5.large", ClientSubnets: subnets, EnhancedMonitoring: "DEFAULT", StorageMode: "LOCAL", ClientBroker: "PLAINTEXT"}
	c := cluster.Cluster{ARN: a.String(), Name: name, Spec: spec, State: cluster.Creating, CurrentVersion: cluster.NewVersion(), CreationTime: time.Now(), ActiveOperationARN: op.String()}
	if err := e.store.CreateCluster(t.Context(), c, cluster.Operation{ARN: op.String(), ClusterARN: c.ARN, Type: cluster.OpCreate, State: cluster.OpPending, CreationTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return c
}

// delete marks a cluster DELETING as the API does.
func (e *env) delete(t *testing.T, arn string) string {
	t.Helper()
	var opARN string
	_, err := e.store.UpdateCluster(t.Context(), arn, func(c *cluster.Cluster) (*cluster.Operation, error) {
		a, _ := cluster.ParseARN("", cluster.ResourceCluster, arn)
		a.Resource, a.Sub = cluster.ResourceOperation, uuid.NewString()
		opARN = a.String()
		c.State, c.ActiveOperationARN = cluster.Deleting, opARN
		return &cluster.Operation{ARN: opARN, ClusterARN: arn, Type: cluster.OpDelete, State: cluster.OpPending, CreationTime: time.Now()}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return opARN
}

func (e *env) waitState(t *testing.T, arn string, want cluster.State) cluster.Cluster {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := e.store.Cluster(t.Context(), arn)
		if err == nil && c.State == want {
			return c
		}
		if want == "" && err != nil && strings.Contains(err.Error(), "does not exist") {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster %s never reached %q: state %q, err %v", arn, want, c.State, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// brokerProcs returns the pids of the broker processes under dir, by
// directory ("<cluster-uuid>/broker-1").
func brokerProcs(t *testing.T, dir string) map[string]int {
	t.Helper()
	return procsOf(t, dir, "broker-")
}

// quorumProcs returns the pids of the quorum members under dir, by
// directory ("<cluster-uuid>/quorum-0").
func quorumProcs(t *testing.T, dir string) map[string]int {
	t.Helper()
	return procsOf(t, dir, "quorum-")
}

// procsOf returns the pids of the processes under dir whose directory name
// starts with kind ("" for all), by directory.
func procsOf(t *testing.T, dir, kind string) map[string]int {
	t.Helper()
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
		for i, a := range args {
			if a == "--data-dir" && i+1 < len(args) && strings.HasPrefix(args[i+1], dir+"/") {
				stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
				if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
					continue
				}
				rel, _ := filepath.Rel(filepath.Join(dir, "clusters"), filepath.Dir(args[i+1]))
				if strings.HasPrefix(filepath.Base(rel), kind) {
					out[rel] = pid
				}
			}
		}
	}
	return out
}

func killAll(t *testing.T, dir string) {
	for _, pid := range procsOf(t, dir, "") {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}
}

func TestCreateAndDelete(t *testing.T) {
	e := newEnv(t)
	e.start(t, os.Args[0])
	c := e.create(t, "orders", 3, "subnet-a", "subnet-b", "subnet-c")
	active := e.waitState(t, c.ARN, cluster.Active)
	if active.CurrentVersion == c.CurrentVersion || active.ActiveOperationARN != "" {
		t.Errorf("ACTIVE cluster: version %s (was %s), active op %q", active.CurrentVersion, c.CurrentVersion, active.ActiveOperationARN)
	}

	nodes, err := e.store.Nodes(t.Context(), c.ARN)
	if err != nil {
		t.Fatal(err)
	}
	var zones, subnets []string
	ports := map[int]bool{}
	for _, n := range nodes {
		zones, subnets = append(zones, n.Zone), append(subnets, n.ClientSubnet)
		ports[n.Port] = true
	}
	if diff := cmp.Diff([]string{"use1-az1", "use1-az2", "use1-az3"}, zones); diff != "" {
		t.Errorf("zones (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"subnet-a", "subnet-b", "subnet-c"}, subnets); diff != "" {
		t.Errorf("subnets (-want +got):\n%s", diff)
	}
	if len(ports) != 3 {
		t.Errorf("ports = %v, want 3 distinct", ports)
	}
	procs := brokerProcs(t, e.dir)
	if len(procs) != 3 {
		t.Fatalf("broker processes = %v, want 3", procs)
	}
	if members := quorumProcs(t, e.dir); len(members) != 3 {
		t.Fatalf("quorum members = %v, want 3", members)
	}
	// Every broker is on the quorum, with MSK's defaults for three brokers.
	for dir := range procs {
		flags, err := os.ReadFile(filepath.Join(e.dir, "clusters", dir, "data", provisiontest.FlagsFile))
		if err != nil {
			t.Fatal(err)
		}
		endpoints := regexp.MustCompile(`(?m)^metadata-endpoints=(.*)$`).FindStringSubmatch(string(flags))
		if endpoints == nil || len(strings.Split(endpoints[1], ",")) != 3 || !strings.Contains(string(flags), "\nmin.insync.replicas=2\n") {
			t.Errorf("broker %s flags:\n%s", dir, flags)
		}
	}

	op, err := e.store.Operation(t.Context(), c.ActiveOperationARN)
	if err != nil {
		t.Fatal(err)
	}
	want := []cluster.Step{
		{Name: reconcile.StepPlaceBrokers, Status: cluster.StepComplete},
		{Name: reconcile.StepStartQuorum, Status: cluster.StepComplete},
		{Name: reconcile.StepStartBrokers, Status: cluster.StepComplete},
		{Name: reconcile.StepWaitBrokers, Status: cluster.StepComplete},
	}
	if diff := cmp.Diff(want, op.Steps); diff != "" || op.State != cluster.OpComplete || op.EndTime.IsZero() {
		t.Errorf("create operation %s ended %v, steps (-want +got):\n%s", op.State, op.EndTime, diff)
	}

	delOp := e.delete(t, c.ARN)
	e.waitState(t, c.ARN, "")
	if procs := procsOf(t, e.dir, ""); len(procs) != 0 {
		t.Errorf("processes after delete: %v", procs)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "clusters", strings.Split(c.ARN, "/")[2][:36])); !os.IsNotExist(err) {
		t.Errorf("cluster data still there: %v", err)
	}
	if used, _ := e.store.UsedPorts(t.Context()); len(used) != 0 {
		t.Errorf("ports still held: %v", used)
	}
	op, err = e.store.Operation(t.Context(), delOp)
	if err != nil || op.State != cluster.OpComplete {
		t.Errorf("delete operation = %+v, %v", op, err)
	}
}

// TestRestartWhileCreating stops the control plane while brokers start and
// checks that a new one adopts them: the cluster ends ACTIVE with exactly its
// brokers and quorum member, none restarted.
func TestRestartWhileCreating(t *testing.T) {
	e := newEnv(t)
	stop := e.start(t, os.Args[0], provisiontest.DelayEnvVar+"=1500ms")
	c := e.create(t, "slow", 2, "subnet-a", "subnet-b")
	deadline := time.Now().Add(10 * time.Second)
	for len(brokerProcs(t, e.dir)) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("brokers never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := procsOf(t, e.dir, "")
	stop()
	if got, _ := e.store.Cluster(t.Context(), c.ARN); got.State != cluster.Creating {
		t.Fatalf("state after stop = %s, want CREATING", got.State)
	}
	// Lose pid files too, as a crash between start and write would.
	for dir := range before {
		os.Remove(filepath.Join(e.dir, "clusters", dir, "broker.pid"))
		os.Remove(filepath.Join(e.dir, "clusters", dir, "quorum.pid"))
	}

	e.start(t, os.Args[0])
	e.waitState(t, c.ARN, cluster.Active)
	if diff := cmp.Diff(before, procsOf(t, e.dir, "")); diff != "" {
		t.Errorf("processes changed across the restart (-before +after):\n%s", diff)
	}
}

func TestSweepOrphans(t *testing.T) {
	e := newEnv(t)
	stop := e.start(t, os.Args[0])
	c := e.create(t, "doomed", 1, "subnet-a")
	e.waitState(t, c.ARN, cluster.Active)
	stop()
	// The record vanishes while the control plane is down.
	if err := e.store.RemoveCluster(t.Context(), c.ARN); err != nil {
		t.Fatal(err)
	}
	e.start(t, os.Args[0])
	deadline := time.Now().Add(10 * time.Second)
	for len(procsOf(t, e.dir, "")) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("orphans still running: %v", procsOf(t, e.dir, ""))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBrokerThatNeverAnswersFails(t *testing.T) {
	e := newEnv(t)
	prov, err := provision.NewLocal(provision.LocalConfig{DataDir: e.dir, Binary: "/bin/false", QuorumPortMin: e.quorumPorts[0], QuorumPortMax: e.quorumPorts[1]})
	if err != nil {
		t.Fatal(err)
	}
	r := reconcile.New(reconcile.Config{PortMin: e.ports[0], PortMax: e.ports[1], CreateTimeout: 500 * time.Millisecond}, e.store, prov)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c := e.create(t, "broken", 1, "subnet-a")
	failed := e.waitState(t, c.ARN, cluster.Failed)
	// /bin/false is every process, quorum members included: the cluster
	// fails at the quorum (its members exit, or are not listening yet when
	// probed) or at the brokers, each with a message saying so.
	if msg := failed.StateInfo.Message; failed.StateInfo.Code == "" ||
		!strings.Contains(msg, "not running") && !strings.Contains(msg, "quorum") {
		t.Errorf("stateInfo = %+v", failed.StateInfo)
	}
	ops, _, _ := e.store.Operations(t.Context(), c.ARN, store.Page{})
	if len(ops) != 1 || ops[0].State != cluster.OpFailed || ops[0].ErrorCode == "" {
		t.Errorf("operations = %+v", ops)
	}
	// A FAILED cluster can be deleted.
	e.delete(t, c.ARN)
	e.waitState(t, c.ARN, "")
}

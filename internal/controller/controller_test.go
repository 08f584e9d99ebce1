package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/fjord-io/fjord/internal/metadata"
	"github.com/fjord-io/fjord/internal/quorum/quorumtest"
)

// One single-member quorum (quorumtest) serves every test in the package;
// each test uses its own cluster name, so its keys are its own.
func TestMain(m *testing.M) {
	code := m.Run()
	quorumtest.Stop()
	if code == 0 { // every store, proxy and controller has stopped
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// etcdEndpoint returns the shared quorum member's client address, host:port.
func etcdEndpoint(t *testing.T) string { return strings.TrimPrefix(quorumtest.URL(t), "http://") }

// clusters numbers clusters, so that tests run with -count use new ones.
var clusters atomic.Int64

// cluster is one test's cluster: the controller's store, and brokers that
// each register through a store of their own.
type cluster struct {
	t       *testing.T
	name    string
	ctrl    *metadata.Etcd
	brokers map[int32]*broker
	log     *slog.Logger
}

// broker is one incarnation of a broker process: its store reaches etcd
// through its own proxy, so the test can cut it off as a crash would.
type broker struct {
	store *metadata.Etcd
	proxy *proxy
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{
		t:       t,
		name:    fmt.Sprintf("%s.%d", strings.ReplaceAll(t.Name(), "/", "."), clusters.Add(1)),
		brokers: make(map[int32]*broker),
		log:     slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
	c.ctrl = c.open(etcdEndpoint(t))
	return c
}

// open opens a store on the test's cluster through endpoint, closed when
// the test ends.
func (c *cluster) open(endpoint string) *metadata.Etcd {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 20*time.Second)
	defer cancel()
	s, err := metadata.OpenEtcd(ctx, metadata.EtcdConfig{
		Endpoints:      []string{"http://" + endpoint},
		Cluster:        c.name,
		SessionTTL:     time.Second,
		RequestTimeout: 2 * time.Second,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { s.Close() })
	return s
}

// start starts an incarnation of broker node: it registers, with the data
// directory id of the node, taking over a previous incarnation's
// registration. It returns the new registration's epoch.
func (c *cluster) start(node int32) int64 {
	c.t.Helper()
	p := startProxy(c.t, etcdEndpoint(c.t))
	s := c.open(p.addr())
	b := metadata.Broker{NodeID: node, Host: "127.0.0.1", Port: 9092 + node, Rack: fmt.Sprintf("zone-%d", node%3), DirID: fmt.Sprintf("dir-%d", node)}
	if _, err := s.RegisterBroker(c.t.Context(), b); err != nil {
		c.t.Fatal(err)
	}
	c.brokers[node] = &broker{store: s, proxy: p}
	var epoch int64
	c.eventually(fmt.Sprintf("the controller's store to see broker %d's registration", node), func() bool {
		for _, reg := range s.Brokers() {
			if reg.NodeID == node {
				epoch = reg.Epoch
			}
		}
		return epoch != 0 && c.epoch(node) == epoch
	})
	return epoch
}

// stop stops broker node cleanly: its registration goes at once.
func (c *cluster) stop(node int32) {
	c.t.Helper()
	c.brokers[node].store.Close()
	c.eventually(fmt.Sprintf("broker %d to be gone", node), func() bool { return c.epoch(node) == 0 })
}

// crash cuts broker node off etcd: it stops renewing its lease, and its
// registration stays until the lease expires or a new incarnation takes it
// over.
func (c *cluster) crash(node int32) {
	c.brokers[node].proxy.cut()
}

// epoch returns node's registration epoch as the controller's store sees
// it, or 0 if it is not registered.
func (c *cluster) epoch(node int32) int64 {
	for _, b := range c.ctrl.Brokers() {
		if b.NodeID == node {
			return b.Epoch
		}
	}
	return 0
}

func (c *cluster) unfenced(nodes ...int32) bool {
	for _, n := range nodes {
		if e := c.epoch(n); e == 0 || c.ctrl.UnfencedEpoch(n) != e {
			return false
		}
	}
	return true
}

// controller returns a controller on the controller's store whose passes
// the test runs itself, after a first pass that unfences the brokers.
func (c *cluster) controller() *controller {
	c.t.Helper()
	ctrl := &controller{s: c.ctrl}
	ctrl.cfg.setDefaults()
	if r := ctrl.pass(c.t.Context(), false); r.failed > 0 || r.changed > 0 || len(r.unfenced) != len(c.brokers) {
		c.t.Fatalf("first pass: %+v", r)
	}
	return ctrl
}

// run runs the controller on the controller's store until the test ends.
func (c *cluster) run(cfg Config) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, c.ctrl, cfg, c.log)
	}()
	c.t.Cleanup(func() {
		cancel()
		<-done
	})
}

func (c *cluster) createTopic(name string, configs map[string]string, parts ...metadata.Partition) {
	c.t.Helper()
	for i := range parts {
		parts[i].Index = int32(i)
	}
	if _, err := c.ctrl.CreateTopic(metadata.Topic{Name: name, Partitions: parts, Configs: configs}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) partition(topic string, index int32) metadata.Partition {
	t, ok := c.ctrl.Topic(topic)
	if !ok || int(index) >= len(t.Partitions) {
		c.t.Fatalf("no partition %s-%d", topic, index)
	}
	return t.Partitions[index]
}

// waitPartition waits for a partition to be as want says, as the
// controller's store sees it.
func (c *cluster) waitPartition(topic string, index int32, want metadata.Partition) {
	c.t.Helper()
	want.Index = index
	var got metadata.Partition
	deadline := time.Now().Add(20 * time.Second)
	for {
		if got = c.partition(topic, index); cmp.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("partition %s-%d (-want +got):\n%s", topic, index, cmp.Diff(want, got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventually fails the test unless cond holds within 20 seconds.
func (c *cluster) eventually(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func part(leader, epoch int32, replicas, isr []int32) metadata.Partition {
	return metadata.Partition{Leader: leader, LeaderEpoch: epoch, Replicas: replicas, ISR: isr}
}

func ids(ids ...int32) []int32 { return ids }

// proxy forwards TCP connections to etcd until cut, when it closes them
// all: a broker behind it is cut off as by a crash or a network partition.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	cutoff bool
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		if !p.track(in, out) {
			return
		}
		for _, pair := range [][2]net.Conn{{in, out}, {out, in}} {
			p.wg.Go(func() {
				io.Copy(pair[0], pair[1])
				pair[0].Close()
				pair[1].Close()
			})
		}
	}
}

func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cutoff {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// cut closes the listener and every connection, and waits for the
// forwarding goroutines. It is idempotent.
func (p *proxy) cut() {
	p.mu.Lock()
	p.cutoff = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// interfering is a store on which another writer changes a partition
// between the controller's read and its compare-and-swap, once.
type interfering struct {
	Store
	once   sync.Once
	before func()
}

func (s *interfering) UpdatePartitions(updates []metadata.PartitionUpdate) []error {
	wrapped := make([]metadata.PartitionUpdate, len(updates))
	for i, u := range updates {
		wrapped[i] = u
		wrapped[i].Fn = func(p *metadata.Partition) error {
			s.once.Do(s.before)
			return u.Fn(p)
		}
	}
	return s.Store.UpdatePartitions(wrapped)
}

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig(nil)
	want := Config{AutoLeaderRebalance: true, ImbalanceCheckInterval: 300 * time.Second, ImbalancePercentage: 10}
	if err != nil || cfg != want {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
	cfg, err = ParseConfig(map[string]string{
		"unclean.leader.election.enable":          "TRUE",
		"auto.leader.rebalance.enable":            "false",
		"leader.imbalance.check.interval.seconds": "30",
		"leader.imbalance.per.broker.percentage":  "0",
	})
	want = Config{UncleanLeaderElection: true, ImbalanceCheckInterval: 30 * time.Second}
	if err != nil || cfg != want {
		t.Errorf("set: %+v, %v", cfg, err)
	}
	for k, v := range map[string]string{
		"unclean.leader.election.enable":          "yes",
		"auto.leader.rebalance.enable":            "",
		"leader.imbalance.check.interval.seconds": "0",
		"leader.imbalance.per.broker.percentage":  "101",
	} {
		if _, err := ParseConfig(map[string]string{k: v}); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: %v", k, v, err)
		}
	}
}

// TestLeaderLoss: a leader's broker goes; the next ISR member in replica
// order leads, at a new epoch, and the ISR shrinks everywhere.
func TestLeaderLoss(t *testing.T) {
	c := newCluster(t)
	for n := int32(1); n <= 3; n++ {
		c.start(n)
	}
	c.run(Config{})
	c.eventually("brokers 1-3 to be unfenced", func() bool { return c.unfenced(1, 2, 3) })
	c.createTopic("t", nil,
		part(1, 4, ids(1, 2, 3), ids(1, 2, 3)),
		part(2, 7, ids(2, 1, 3), ids(3, 1, 2)),
		part(3, 0, ids(3, 2, 1), ids(3, 1, 2)))
	// Nothing changes while every broker is up.
	for i, want := range []metadata.Partition{
		part(1, 4, ids(1, 2, 3), ids(1, 2, 3)),
		part(2, 7, ids(2, 1, 3), ids(3, 1, 2)),
		part(3, 0, ids(3, 2, 1), ids(3, 1, 2)),
	} {
		c.waitPartition("t", int32(i), want)
	}

	c.stop(1)
	c.waitPartition("t", 0, part(2, 5, ids(1, 2, 3), ids(2, 3)))
	c.waitPartition("t", 1, part(2, 7, ids(2, 1, 3), ids(3, 2)))
	c.waitPartition("t", 2, part(3, 0, ids(3, 2, 1), ids(3, 2)))
}

// TestLastISRMember: when the only ISR member goes, the partition has no
// leader and keeps its ISR; when the broker comes back it leads again, at a
// new epoch. Single-replica topics come back online the same way.
func TestLastISRMember(t *testing.T) {
	c := newCluster(t)
	c.start(1)
	c.start(2)
	c.run(Config{})
	c.eventually("brokers 1-2 to be unfenced", func() bool { return c.unfenced(1, 2) })
	c.createTopic("t", nil, part(1, 0, ids(1, 2), ids(1)))
	c.createTopic("solo", nil, part(1, 3, ids(1), ids(1)))

	c.stop(1)
	c.waitPartition("t", 0, part(-1, 1, ids(1, 2), ids(1)))
	c.waitPartition("solo", 0, part(-1, 4, ids(1), ids(1)))

	epoch := c.start(1)
	c.waitPartition("t", 0, part(1, 2, ids(1, 2), ids(1)))
	c.waitPartition("solo", 0, part(1, 5, ids(1), ids(1)))
	if !c.unfenced(1) || c.ctrl.UnfencedEpoch(1) != epoch {
		t.Errorf("broker 1 at epoch %d, unfenced epoch %d", epoch, c.ctrl.UnfencedEpoch(1))
	}
}

// TestRestartFencing: a broker that crashes and restarts at once (taking
// over its registration by data directory) is never seen gone, but its new
// epoch fences it: it leaves every ISR, loses its leaderships, and is then
// unfenced; single-replica partitions it leads come back at a new epoch.
func TestRestartFencing(t *testing.T) {
	c := newCluster(t)
	for n := int32(1); n <= 3; n++ {
		c.start(n)
	}
	c.run(Config{})
	c.eventually("brokers 1-3 to be unfenced", func() bool { return c.unfenced(1, 2, 3) })
	c.createTopic("t", nil,
		part(1, 0, ids(1, 2, 3), ids(1, 2, 3)),
		part(2, 0, ids(2, 1, 3), ids(2, 1, 3)))
	c.createTopic("solo", nil, part(1, 0, ids(1), ids(1)))
	old := c.epoch(1)

	c.crash(1)
	epoch := c.start(1) // same data directory: takes the registration over
	if epoch == old {
		t.Fatalf("restart kept epoch %d", epoch)
	}
	c.eventually("the restarted broker to be unfenced", func() bool { return c.ctrl.UnfencedEpoch(1) == epoch })
	// Unfencing came after every partition was processed, and the
	// controller's store reads its own writes.
	for i, want := range []metadata.Partition{
		part(2, 1, ids(1, 2, 3), ids(2, 3)),
		part(2, 0, ids(2, 1, 3), ids(2, 3)),
	} {
		if got := c.partition("t", int32(i)); !cmp.Equal(got, metadata.Partition{Index: int32(i), Leader: want.Leader, LeaderEpoch: want.LeaderEpoch, Replicas: want.Replicas, ISR: want.ISR}) {
			t.Errorf("t-%d when broker 1 was unfenced: %+v, want %+v", i, got, want)
		}
	}
	c.waitPartition("solo", 0, part(1, 2, ids(1), ids(1)))
}

// TestBrokerLeaseExpiry: a broker that stops renewing its lease is gone
// once the lease expires.
func TestBrokerLeaseExpiry(t *testing.T) {
	c := newCluster(t)
	c.start(1)
	c.start(2)
	c.run(Config{})
	c.eventually("brokers 1-2 to be unfenced", func() bool { return c.unfenced(1, 2) })
	c.createTopic("t", nil, part(1, 0, ids(1, 2), ids(1, 2)))
	c.crash(1)
	c.waitPartition("t", 0, part(2, 1, ids(1, 2), ids(2)))
}

// TestUncleanElection: with no ISR member left, a partition is led by an
// out-of-sync replica only where unclean.leader.election.enable is true,
// from the broker default or the topic's override.
func TestUncleanElection(t *testing.T) {
	c := newCluster(t)
	c.start(1)
	c.start(2)
	c.run(Config{UncleanLeaderElection: true})
	c.eventually("brokers 1-2 to be unfenced", func() bool { return c.unfenced(1, 2) })
	c.createTopic("default", nil, part(1, 0, ids(1, 2), ids(1)))
	c.createTopic("off", map[string]string{"unclean.leader.election.enable": "false"}, part(1, 0, ids(1, 2), ids(1)))

	c.stop(1)
	c.waitPartition("default", 0, part(2, 1, ids(1, 2), ids(2)))
	c.waitPartition("off", 0, part(-1, 1, ids(1, 2), ids(1)))

	if err := c.ctrl.SetConfigs("off", map[string]string{"unclean.leader.election.enable": "true"}); err != nil {
		t.Fatal(err)
	}
	c.waitPartition("off", 0, part(2, 2, ids(1, 2), ids(2)))
}

// TestPreferredLeaderRebalance: leadership moves back to preferred replicas
// once a broker leads too few of the partitions it is preferred for.
func TestPreferredLeaderRebalance(t *testing.T) {
	c := newCluster(t)
	c.start(1)
	c.start(2)
	c.run(Config{AutoLeaderRebalance: true, ImbalanceCheckInterval: 100 * time.Millisecond, ImbalancePercentage: 10})
	c.eventually("brokers 1-2 to be unfenced", func() bool { return c.unfenced(1, 2) })
	c.createTopic("t", nil,
		part(2, 0, ids(1, 2), ids(1, 2)),
		part(2, 0, ids(1, 2), ids(2, 1)),
		part(2, 0, ids(1, 2), ids(2)), // broker 1 is out of sync: stays
		part(2, 0, ids(2, 1), ids(1, 2)))
	c.waitPartition("t", 0, part(1, 1, ids(1, 2), ids(1, 2)))
	c.waitPartition("t", 1, part(1, 1, ids(1, 2), ids(2, 1)))
	c.waitPartition("t", 2, part(2, 0, ids(1, 2), ids(2)))
	c.waitPartition("t", 3, part(2, 0, ids(2, 1), ids(1, 2)))
}

// TestElectLeaders covers the ElectLeaders API's outcomes.
func TestElectLeaders(t *testing.T) {
	c := newCluster(t)
	for n := int32(1); n <= 3; n++ {
		c.start(n)
	}
	c.controller() // unfences the brokers
	c.createTopic("p", nil,
		part(2, 0, ids(1, 2), ids(1, 2)), // elected
		part(1, 0, ids(1, 2), ids(1, 2)), // already preferred
		part(1, 0, ids(3, 1), ids(1)),    // preferred out of sync
		part(1, 0, ids(4, 1), ids(4, 1))) // preferred never registered
	c.createTopic("u", nil,
		part(3, 0, ids(3, 2), ids(3)), // will lose its only ISR member
		part(1, 0, ids(1, 2), ids(1)), // has a leader
		part(3, 0, ids(3), ids(3)))    // will have no replica left

	got := ElectLeaders(t.Context(), c.ctrl, true, []TopicPartition{
		{"p", 0}, {"p", 1}, {"p", 2}, {"p", 3}, {"p", 9}, {"nope", 0}, {"p", 0},
	})
	want := map[TopicPartition]error{
		{"p", 0}:    nil,
		{"p", 1}:    ErrElectionNotNeeded,
		{"p", 2}:    ErrPreferredLeaderNotAvailable,
		{"p", 3}:    ErrPreferredLeaderNotAvailable,
		{"p", 9}:    ErrUnknownTopicOrPartition,
		{"nope", 0}: ErrUnknownTopicOrPartition,
	}
	checkResults(t, "preferred", got, want)
	if p := c.partition("p", 0); p.Leader != 1 || p.LeaderEpoch != 1 {
		t.Errorf("p-0 after preferred election: %+v", p)
	}

	// All partitions: those that needed no election are left out.
	if err := c.ctrl.UpdatePartition("p", 1, func(p *metadata.Partition) error { p.Leader = 2; return nil }); err != nil {
		t.Fatal(err)
	}
	got = ElectLeaders(t.Context(), c.ctrl, true, nil)
	checkResults(t, "preferred, all", got, map[TopicPartition]error{
		{"p", 1}: nil,
		{"p", 2}: ErrPreferredLeaderNotAvailable,
		{"p", 3}: ErrPreferredLeaderNotAvailable,
	})

	// Unclean: broker 3 goes, leaving u-0 and u-2 without a leader (the
	// controller is not running, so nobody else elects).
	c.stop(3)
	for _, i := range []int32{0, 2} {
		if err := c.ctrl.UpdatePartition("u", i, func(p *metadata.Partition) error { p.Leader = -1; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	got = ElectLeaders(t.Context(), c.ctrl, false, []TopicPartition{{"u", 0}, {"u", 1}, {"u", 2}, {"u", 3}})
	checkResults(t, "unclean", got, map[TopicPartition]error{
		{"u", 0}: nil,
		{"u", 1}: ErrElectionNotNeeded,
		{"u", 2}: ErrEligibleLeadersNotAvailable,
		{"u", 3}: ErrUnknownTopicOrPartition,
	})
	if p := c.partition("u", 0); p.Leader != 2 || !slices.Equal(p.ISR, ids(2)) || p.LeaderEpoch != 2 {
		t.Errorf("u-0 after unclean election: %+v", p)
	}
}

func checkResults(t *testing.T, what string, got, want map[TopicPartition]error) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d results, want %d: %v", what, len(got), len(want), got)
	}
	for tp, w := range want {
		g, ok := got[tp]
		switch {
		case !ok:
			t.Errorf("%s: no result for %v", what, tp)
		case w == nil && g != nil, w != nil && !errors.Is(g, w):
			t.Errorf("%s: %v: %v, want %v", what, tp, g, w)
		}
	}
}

// TestStaleDecision: a decision made on a partition that another writer
// changes before the swap is recomputed on the new state and, no longer
// needed, writes nothing.
func TestStaleDecision(t *testing.T) {
	c := newCluster(t)
	for n := int32(1); n <= 3; n++ {
		c.start(n)
	}
	other := c.open(etcdEndpoint(t))
	ctrl := c.controller()
	c.createTopic("t", nil, part(1, 0, ids(1, 2, 3), ids(1, 2, 3)))
	c.stop(1)

	// The controller would elect 2 and shrink the ISR to [2 3]; another
	// writer elects 3 and shrinks it to [3 2] first.
	ctrl.s = &interfering{Store: c.ctrl, before: func() {
		if err := other.UpdatePartition("t", 0, func(p *metadata.Partition) error {
			p.Leader, p.ISR = 3, ids(3, 2)
			return nil
		}); err != nil {
			t.Error(err)
		}
	}}
	if r := ctrl.pass(t.Context(), false); r.failed > 0 || r.changed != 0 {
		t.Errorf("pass on stale state: %+v", r)
	}
	c.waitPartition("t", 0, part(3, 1, ids(1, 2, 3), ids(3, 2)))

	// The same for a preferred election: someone else moved the leader to
	// the preferred replica meanwhile.
	c.start(1)
	ctrl.s = c.ctrl
	if r := ctrl.pass(t.Context(), false); r.failed > 0 || !c.unfenced(1) {
		t.Fatalf("pass after broker 1 came back: %+v", r)
	}
	if err := c.ctrl.UpdatePartition("t", 0, func(p *metadata.Partition) error { p.ISR = ids(3, 2, 1); return nil }); err != nil {
		t.Fatal(err)
	}
	c.eventually("the other store to see broker 1 back in the ISR", func() bool {
		t, _ := other.Topic("t")
		return slices.Equal(t.Partitions[0].ISR, ids(3, 2, 1))
	})
	s := &interfering{Store: c.ctrl, before: func() {
		if err := other.UpdatePartition("t", 0, func(p *metadata.Partition) error { p.Leader = 1; return nil }); err != nil {
			t.Error(err)
		}
	}}
	got := ElectLeaders(t.Context(), s, true, []TopicPartition{{"t", 0}})
	checkResults(t, "stale preferred", got, map[TopicPartition]error{{"t", 0}: ErrElectionNotNeeded})
	c.waitPartition("t", 0, part(1, 2, ids(1, 2, 3), ids(3, 2, 1)))
}

// TestFailover1000 fails 1,000 partitions over in one pass.
func TestFailover1000(t *testing.T) {
	const n = 1000
	c := newCluster(t)
	c.start(1)
	c.start(2)
	ctrl := c.controller()
	parts := make([]metadata.Partition, n)
	for i := range parts {
		parts[i] = part(1, 0, ids(1, 2), ids(1, 2))
	}
	c.createTopic("big", nil, parts...)
	c.stop(1)
	r := ctrl.pass(t.Context(), false)
	t.Logf("%d partitions failed over in one pass in %v (%d in flight)", r.changed, r.took, ctrl.cfg.MaxInFlight)
	if r.failed > 0 || r.changed != n || r.elected != n || r.offline != 0 {
		t.Fatalf("failover pass: %+v", r)
	}
	topic, _ := c.ctrl.Topic("big")
	for _, p := range topic.Partitions {
		if p.Leader != 2 || p.LeaderEpoch != 1 || !slices.Equal(p.ISR, ids(2)) {
			t.Fatalf("after failover: %+v", p)
		}
	}
	if r := ctrl.pass(t.Context(), false); r.changed != 0 || r.failed != 0 {
		t.Errorf("second pass changed something: %+v", r)
	}
}

// TestFailover10000 fails over 10,000 partitions of replication factor 3
// (10 topics of 1,000) in one pass: the broker that goes leads a third of
// them and leaves every ISR.
func TestFailover10000(t *testing.T) {
	const topics, perTopic = 10, 1000
	c := newCluster(t)
	for n := int32(1); n <= 3; n++ {
		c.start(n)
	}
	ctrl := c.controller()
	led := 0
	for ti := range topics {
		parts := make([]metadata.Partition, perTopic)
		for i := range parts {
			replicas := []int32{1, 2, 3}
			for range (ti*perTopic + i) % 3 {
				replicas = append(replicas[1:], replicas[0])
			}
			parts[i] = part(replicas[0], 0, replicas, ids(1, 2, 3))
			if replicas[0] == 1 {
				led++
			}
		}
		c.createTopic(fmt.Sprintf("t%d", ti), nil, parts...)
	}
	c.stop(1)
	r := ctrl.pass(t.Context(), false)
	t.Logf("%d partitions failed over in one pass in %v (%d leaders elected; batches of %d, %d in flight)",
		r.changed, r.took, r.elected, batchSize, ctrl.cfg.MaxInFlight)
	if r.failed > 0 || r.changed != topics*perTopic || r.elected != led || r.offline != 0 {
		t.Fatalf("failover pass: %+v", r)
	}
	for ti := range topics {
		topic, _ := c.ctrl.Topic(fmt.Sprintf("t%d", ti))
		for _, p := range topic.Partitions {
			wantEpoch := int32(0)
			if p.Replicas[0] == 1 {
				wantEpoch = 1
			}
			if p.Leader == 1 || p.Leader != within(p.Replicas, ids(2, 3))[0] || p.LeaderEpoch != wantEpoch ||
				!slices.Equal(p.ISR, ids(2, 3)) {
				t.Fatalf("%s-%d after failover: %+v", topic.Name, p.Index, p)
			}
		}
	}
	if r := ctrl.pass(t.Context(), false); r.changed != 0 || r.failed != 0 {
		t.Errorf("second pass changed something: %+v", r)
	}
}

package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fjord-io/fjord/internal/broker"
	"github.com/fjord-io/fjord/internal/quorum/quorumtest"
)

// The replication tests run brokers in this process against one embedded
// etcd member shared by the package's tests, each test on its own cluster
// name. The e2e tests drive the same code as separate processes with kill -9.

func TestMain(m *testing.M) {
	code := m.Run()
	quorumtest.Stop()
	os.Exit(code)
}

func etcdEndpoint(t *testing.T) string { return quorumtest.URL(t) }

// testCluster is a replicated cluster of in-process brokers.
type testCluster struct {
	t        *testing.T
	name     string
	endpoint string
	props    map[string]string
	mu       sync.Mutex
	brokers  map[int32]*runningBroker
	dirs     map[int32]string
	addrs    map[int32]string
}

type runningBroker struct {
	cancel context.CancelFunc
	done   chan error
}

func newTestCluster(t *testing.T, n int, props map[string]string) *testCluster {
	t.Helper()
	c := &testCluster{
		t:        t,
		name:     fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano()),
		endpoint: etcdEndpoint(t),
		props:    map[string]string{"broker.session.timeout.ms": "2000", "leader.imbalance.check.interval.seconds": "1"},
		brokers:  make(map[int32]*runningBroker),
		dirs:     make(map[int32]string),
		addrs:    make(map[int32]string),
	}
	for k, v := range props {
		c.props[k] = v
	}
	for id := range int32(n) {
		c.dirs[id] = t.TempDir()
		c.start(id)
	}
	t.Cleanup(func() {
		for id := range c.dirs {
			c.stop(id)
		}
	})
	c.waitBrokers(n)
	return c
}

// start runs broker id (again, on its data directory and, if it ran
// before, its address).
func (c *testCluster) start(id int32) {
	c.t.Helper()
	addr := c.addrs[id]
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // a restarted broker's port may linger for a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	addr = ln.Addr().String()
	c.addrs[id] = addr
	b, err := broker.New(broker.Config{
		NodeID: id, Listen: addr, Advertised: addr, DataDir: c.dirs[id],
		Rack:              "zone-" + string(rune('a'+id%3)),
		MetadataEndpoints: []string{c.endpoint}, Cluster: c.name, Props: c.props,
	})
	if err != nil {
		ln.Close()
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rb := &runningBroker{cancel: cancel, done: make(chan error, 1)}
	go func() { rb.done <- b.Serve(ctx, ln) }()
	c.mu.Lock()
	c.brokers[id] = rb
	c.mu.Unlock()
}

// stop shuts broker id down cleanly and waits for it.
func (c *testCluster) stop(id int32) {
	c.mu.Lock()
	rb := c.brokers[id]
	delete(c.brokers, id)
	c.mu.Unlock()
	if rb == nil {
		return
	}
	rb.cancel()
	if err := <-rb.done; err != nil {
		c.t.Errorf("broker %d: serve: %v", id, err)
	}
}

func (c *testCluster) bootstrap() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id := range c.brokers {
		out = append(out, c.addrs[id])
	}
	return out
}

func (c *testCluster) client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.bootstrap()...)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// waitBrokers waits until the metadata lists n brokers and every partition
// has a leader.
func (c *testCluster) waitBrokers(n int) {
	c.t.Helper()
	adm := kadm.NewClient(c.client())
	eventually(c.t, 30*time.Second, fmt.Sprintf("%d brokers registered", n), func() bool {
		m, err := adm.Metadata(c.t.Context())
		return err == nil && len(m.Brokers) == n
	})
}

// eventually fails the test unless cond holds within timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// partitionState reads a topic's leaders and ISRs from a live broker (a
// fresh client: a long-lived one may keep asking a stopped broker),
// retrying for a few seconds; nil if no broker answered for the topic.
func partitionState(t *testing.T, c *testCluster, topic string) map[int32]kadm.PartitionDetail {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ps := readPartitionState(t, c, topic); ps != nil || time.Now().After(deadline) {
			return ps
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readPartitionState(t *testing.T, c *testCluster, topic string) map[int32]kadm.PartitionDetail {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.bootstrap()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	m, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		return nil
	}
	td, ok := m.Topics[topic]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		return nil
	}
	return td.Partitions
}

func allInSync(parts map[int32]kadm.PartitionDetail, n int) bool {
	if len(parts) == 0 {
		return false
	}
	for _, p := range parts {
		if p.Leader < 0 || len(p.ISR) != n {
			return false
		}
	}
	return true
}

// produceN produces n keyed records to topic with acks=all and returns
// them by partition, in offset order.
func produceN(t *testing.T, cl *kgo.Client, topic string, from, n int) map[int32][]string {
	t.Helper()
	out := make(map[int32][]string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for i := from; i < from+n; i++ {
		wg.Add(1)
		v := "v" + strconv.Itoa(i)
		cl.Produce(t.Context(), &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i)), Value: []byte(v)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			out[r.Partition] = append(out[r.Partition], fmt.Sprintf("%d:%s", r.Offset, r.Value))
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
	for _, vs := range out {
		slices.SortFunc(vs, func(a, b string) int { return offsetOf(a) - offsetOf(b) })
	}
	return out
}

func offsetOf(s string) int {
	n := 0
	for _, c := range s {
		if c == ':' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// consumeAll reads topic from the start up to the partitions' end offsets.
func consumeAll(t *testing.T, c *testCluster, topic string) map[int32][]string {
	t.Helper()
	adm := kadm.NewClient(c.client())
	ends, err := adm.ListEndOffsets(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	ends.Each(func(o kadm.ListedOffset) { want += int(o.Offset) })
	starts.Each(func(o kadm.ListedOffset) { want -= int(o.Offset) })
	cl := c.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	out := make(map[int32][]string)
	got := 0
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for got < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", got, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], fmt.Sprintf("%d:%s", r.Offset, r.Value))
			got++
		})
	}
	return out
}

func TestReplicatedProduceConsume(t *testing.T) { testReplicatedProduceConsume(t, nil) }

// Leaders without room for fetch sessions answer followers' fetches
// sessionless, and followers keep asking for one.
func TestReplicatedProduceConsumeSessionless(t *testing.T) {
	testReplicatedProduceConsume(t, map[string]string{"max.incremental.fetch.session.cache.slots": "0"})
}

func testReplicatedProduceConsume(t *testing.T, props map[string]string) {
	c := newTestCluster(t, 3, props)
	adm := kadm.NewClient(c.client())
	ctx := t.Context()
	if _, err := adm.CreateTopic(ctx, 6, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "rep"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "all partitions led with a full ISR", func() bool { return allInSync(partitionState(t, c, "rep"), 3) })
	sent := produceN(t, c.client(kgo.RequiredAcks(kgo.AllISRAcks())), "rep", 0, 3000)
	got := consumeAll(t, c, "rep")
	for p, vs := range sent {
		if !slices.Equal(vs, got[p]) {
			t.Errorf("partition %d: sent %d records, consumed %d", p, len(vs), len(got[p]))
		}
	}
	// Every replica has every record: the log end offsets agree.
	eventually(t, 10*time.Second, "replicas to agree", func() bool {
		offs, err := adm.DescribeAllLogDirs(ctx, nil)
		if err != nil {
			return false
		}
		sizes := map[int32]map[int64]bool{}
		offs.Each(func(d kadm.DescribedLogDir) {
			d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
				if p.Topic != "rep" {
					return
				}
				if sizes[p.Partition] == nil {
					sizes[p.Partition] = map[int64]bool{}
				}
				sizes[p.Partition][p.Size] = true
			})
		})
		for p := range int32(6) {
			if len(sizes[p]) != 1 {
				return false
			}
		}
		return true
	})
}

func TestLeaderFailoverKeepsAcknowledgedRecords(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	adm := kadm.NewClient(c.client())
	ctx := t.Context()
	if _, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "fo"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "all partitions led with a full ISR", func() bool { return allInSync(partitionState(t, c, "fo"), 3) })
	prod := c.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(100), kgo.RetryTimeout(30*time.Second))
	sent := produceN(t, prod, "fo", 0, 1000)

	leader := partitionState(t, c, "fo")[0].Leader
	start := time.Now()
	c.stop(leader)
	eventually(t, 30*time.Second, "a new leader for partition 0", func() bool {
		ps := partitionState(t, c, "fo")
		return ps != nil && ps[0].Leader >= 0 && ps[0].Leader != leader
	})
	t.Logf("new leader after %v", time.Since(start))
	more := produceN(t, prod, "fo", 1000, 1000)
	for p, vs := range more {
		sent[p] = append(sent[p], vs...)
	}
	got := consumeAll(t, c, "fo")
	for p, vs := range sent {
		if !slices.Equal(vs, got[p]) {
			t.Errorf("partition %d: sent %d records, consumed %d", p, len(vs), len(got[p]))
		}
	}

	// The broker comes back, catches up and rejoins every ISR; preferred
	// leadership returns to it.
	c.start(leader)
	eventually(t, 30*time.Second, "the restarted broker back in every ISR", func() bool { return allInSync(partitionState(t, c, "fo"), 3) })
	eventually(t, 30*time.Second, "preferred leaders restored", func() bool {
		for _, p := range partitionState(t, c, "fo") {
			if p.Leader != p.Replicas[0] {
				return false
			}
		}
		return true
	})
}

func TestNotEnoughReplicas(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	adm := kadm.NewClient(c.client())
	ctx := t.Context()
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "ner"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a full ISR", func() bool { return allInSync(partitionState(t, c, "ner"), 3) })
	leader := partitionState(t, c, "ner")[0].Leader
	for id := range int32(3) {
		if id != leader {
			c.stop(id)
		}
	}
	eventually(t, 30*time.Second, "the ISR to shrink to the leader", func() bool {
		ps := partitionState(t, c, "ner")
		return ps != nil && len(ps[0].ISR) == 1
	})
	cl := c.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(0), kgo.DisableIdempotentWrite())
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ner", Value: []byte("x")}).FirstErr()
	if err == nil || !errors.Is(err, errNotEnoughReplicas) {
		t.Fatalf("acks=all with one in-sync replica of min 2: %v, want NOT_ENOUGH_REPLICAS", err)
	}
}

var errNotEnoughReplicas = kerr.NotEnoughReplicas

func TestElectPreferredLeaders(t *testing.T) {
	c := newTestCluster(t, 3, map[string]string{"auto.leader.rebalance.enable": "false"})
	adm := kadm.NewClient(c.client())
	ctx := t.Context()
	if _, err := adm.CreateTopic(ctx, 3, 3, nil, "el"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a full ISR", func() bool { return allInSync(partitionState(t, c, "el"), 3) })
	leader := partitionState(t, c, "el")[0].Leader
	c.stop(leader)
	c.start(leader)
	eventually(t, 30*time.Second, "the restarted broker back in every ISR", func() bool { return allInSync(partitionState(t, c, "el"), 3) })
	if ps := partitionState(t, c, "el"); ps[0].Leader == ps[0].Replicas[0] {
		t.Fatalf("partition 0 is led by its preferred replica %d without an election", ps[0].Leader)
	}
	res, err := kadm.NewClient(c.client()).ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"el": {0: {}, 1: {}, 2: {}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ps := range res {
		for p, r := range ps {
			if r.Err != nil && !errors.Is(r.Err, kerr.ElectionNotNeeded) {
				t.Errorf("partition %d: %v", p, r.Err)
			}
		}
	}
	eventually(t, 10*time.Second, "preferred leaders", func() bool {
		for _, d := range partitionState(t, c, "el") {
			if d.Leader != d.Replicas[0] {
				return false
			}
		}
		return true
	})
	// Again: nothing to do.
	res, err = kadm.NewClient(c.client()).ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"el": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res["el"][0]; !errors.Is(r.Err, kerr.ElectionNotNeeded) {
		t.Errorf("second election: %v, want ELECTION_NOT_NEEDED", r.Err)
	}
}

// A follower that was away while its leader's log start moved past the
// follower's log end starts over at the leader's log start, catches up and
// rejoins the ISR.
func TestFollowerBehindLeaderLogStart(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	adm := kadm.NewClient(c.client())
	ctx := t.Context()
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, "ls"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a full ISR", func() bool { return allInSync(partitionState(t, c, "ls"), 3) })
	ps := partitionState(t, c, "ls")
	away := ps[0].Replicas[2]
	if away == ps[0].Leader {
		away = ps[0].Replicas[1]
	}
	prod := c.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MetadataMinAge(100*time.Millisecond))
	produceN(t, prod, "ls", 0, 100)
	c.stop(away)
	eventually(t, 30*time.Second, "the stopped broker out of the ISR", func() bool {
		ps := partitionState(t, c, "ls")
		return ps != nil && len(ps[0].ISR) == 2
	})
	produceN(t, prod, "ls", 100, 100)
	if _, err := adm.DeleteRecords(ctx, kadm.Offsets{"ls": {0: {Topic: "ls", Partition: 0, At: 150}}}); err != nil {
		t.Fatal(err)
	}
	c.start(away)
	eventually(t, 30*time.Second, "the returning broker back in the ISR", func() bool { return allInSync(partitionState(t, c, "ls"), 3) })
	// It alone now holds the partition: it has exactly [150, 200).
	for id := range int32(3) {
		if id != away {
			c.stop(id)
		}
	}
	eventually(t, 30*time.Second, "the returning broker leads", func() bool {
		ps := partitionState(t, c, "ls")
		return ps != nil && ps[0].Leader == away
	})
	got := consumeAll(t, c, "ls")
	if n := len(got[0]); n != 50 || offsetOf(got[0][0]) != 150 {
		t.Fatalf("consumed %d records starting %v, want 50 from offset 150", n, got[0][:min(1, n)])
	}
}

package metadata

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/fjord-io/fjord/internal/quorum/quorumtest"
)

// One single-member quorum (quorumtest) serves every test in the package;
// each test uses its own cluster name, so its keys are its own.
func TestMain(m *testing.M) {
	code := m.Run()
	quorumtest.Stop()
	if code == 0 { // every store and the member are closed: nothing may be left running
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func etcdEndpoint(t *testing.T) string { return quorumtest.URL(t) }

// openEtcd opens a store on the cluster named after the test (plus suffix),
// closed when the test ends.
func openEtcd(t *testing.T, cfg EtcdConfig) *Etcd {
	t.Helper()
	cfg.Endpoints = []string{etcdEndpoint(t)}
	if cfg.Cluster == "" {
		cfg.Cluster = clusterName(t)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	e, err := OpenEtcd(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func clusterName(t *testing.T) string {
	return strings.ReplaceAll(t.Name(), "/", ".")
}

// eventually fails the test unless cond holds within timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// store is the method set Local and Etcd share; the broker uses it.
type store interface {
	ClusterID() string
	Version() uint64
	Topic(name string) (Topic, bool)
	TopicByID(id uuid.UUID) (Topic, bool)
	Topics() []Topic
	CreateTopic(t Topic) (Topic, error)
	DeleteTopic(name string) (Topic, error)
	AddPartitions(name string, parts []Partition) error
	SetConfigs(name string, configs map[string]string) error
	AllocateProducerIDs(n int64) (int64, error)
}

var (
	_ store = (*Local)(nil)
	_ store = (*Etcd)(nil)
)

func partitions(from, to int32) []Partition {
	var ps []Partition
	for i := from; i < to; i++ {
		ps = append(ps, Partition{Index: i, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}})
	}
	return ps
}

// TestStores runs one script against both stores: they must behave alike.
func TestStores(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) store
	}{
		{"local", func(t *testing.T) store {
			l, err := OpenLocal(filepath.Join(t.TempDir(), "meta.json"), "cluster-1")
			if err != nil {
				t.Fatal(err)
			}
			return l
		}},
		{"etcd", func(t *testing.T) store { return openEtcd(t, EtcdConfig{ClusterID: "cluster-1"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) { testStore(t, tc.open(t)) })
	}
}

func testStore(t *testing.T, s store) {
	if got := s.ClusterID(); got != "cluster-1" {
		t.Errorf("cluster id %q", got)
	}
	v0 := s.Version()
	in := Topic{Name: "orders", Partitions: partitions(0, 3), Configs: map[string]string{"retention.ms": "1000"}}
	created, err := s.CreateTopic(in)
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == uuid.Nil {
		t.Fatal("no id assigned")
	}
	in.ID = created.ID
	if diff := cmp.Diff(in, created); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
	if s.Version() <= v0 {
		t.Error("version did not increase")
	}
	if got, ok := s.Topic("orders"); !ok || !cmp.Equal(got, created) {
		t.Errorf("Topic: %v, %v", got, ok)
	}
	if got, ok := s.TopicByID(created.ID); !ok || got.Name != "orders" {
		t.Errorf("TopicByID: %v, %v", got, ok)
	}
	if _, err := s.CreateTopic(Topic{Name: "orders"}); !errors.Is(err, ErrTopicExists) {
		t.Errorf("create again: %v", err)
	}
	if _, err := s.CreateTopic(Topic{Name: "no/slash"}); !errors.Is(err, ErrInvalidTopic) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := s.CreateTopic(Topic{Name: "audit", Internal: true}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tp := range s.Topics() {
		names = append(names, tp.Name)
	}
	if !slices.Equal(names, []string{"audit", "orders"}) {
		t.Errorf("Topics: %v", names)
	}

	if err := s.AddPartitions("orders", partitions(3, 5)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Topic("orders"); len(got.Partitions) != 5 || got.Partitions[4].Index != 4 {
		t.Errorf("after AddPartitions: %+v", got.Partitions)
	}
	if err := s.AddPartitions("nope", partitions(0, 1)); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("add to unknown: %v", err)
	}
	if err := s.SetConfigs("orders", map[string]string{"cleanup.policy": "compact"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Topic("orders"); !cmp.Equal(got.Configs, map[string]string{"cleanup.policy": "compact"}) {
		t.Errorf("after SetConfigs: %v", got.Configs)
	}
	if err := s.SetConfigs("nope", nil); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("configs of unknown: %v", err)
	}

	deleted, err := s.DeleteTopic("orders")
	if err != nil {
		t.Fatal(err)
	}
	if deleted.ID != created.ID || len(deleted.Partitions) != 5 {
		t.Errorf("deleted %+v", deleted)
	}
	if _, ok := s.Topic("orders"); ok {
		t.Error("deleted topic still there")
	}
	if _, ok := s.TopicByID(created.ID); ok {
		t.Error("deleted topic still there by id")
	}
	if _, err := s.DeleteTopic("orders"); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("delete again: %v", err)
	}
	// The name is free again, for a new topic with a new id.
	again, err := s.CreateTopic(Topic{Name: "orders", Partitions: partitions(0, 1)})
	if err != nil || again.ID == created.ID {
		t.Fatalf("recreate: %v, %v", again.ID, err)
	}

	for _, tc := range []struct{ n, want int64 }{{1000, 0}, {1, 1000}, {10, 1001}} {
		if first, err := s.AllocateProducerIDs(tc.n); err != nil || first != tc.want {
			t.Fatalf("allocate %d: %d, %v; want %d", tc.n, first, err, tc.want)
		}
	}
	if _, err := s.AllocateProducerIDs(0); err == nil {
		t.Fatal("allocate 0: no error")
	}
}

// TestEtcdShared checks that stores on one cluster share it: the first
// cluster id sticks, and each store's cache follows the others' changes.
func TestEtcdShared(t *testing.T) {
	a := openEtcd(t, EtcdConfig{ClusterID: "first"})
	b := openEtcd(t, EtcdConfig{ClusterID: "second"})
	other := openEtcd(t, EtcdConfig{Cluster: clusterName(t) + "-other"})
	if a.ClusterID() != "first" || b.ClusterID() != "first" {
		t.Errorf("cluster ids %q, %q", a.ClusterID(), b.ClusterID())
	}
	if other.ClusterID() == "first" || len(other.ClusterID()) != 22 {
		t.Errorf("new cluster got id %q", other.ClusterID())
	}

	created, err := a.CreateTopic(Topic{Name: "t", Partitions: partitions(0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "b to see the topic", func() bool {
		got, ok := b.Topic("t")
		return ok && cmp.Equal(got, created)
	})
	if err := b.AddPartitions("t", partitions(2, 3)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a to see the partition", func() bool {
		got, _ := a.Topic("t")
		return len(got.Partitions) == 3
	})
	if _, err := b.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a to see the delete", func() bool {
		_, ok := a.Topic("t")
		return !ok
	})
	if len(other.Topics()) != 0 {
		t.Errorf("another cluster sees %v", other.Topics())
	}

	// Producer ids from two brokers never overlap.
	var mu sync.Mutex
	seen := make(map[int64]bool)
	var wg sync.WaitGroup
	for _, s := range []*Etcd{a, b} {
		wg.Go(func() {
			for range 20 {
				first, err := s.AllocateProducerIDs(10)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[first] {
					t.Errorf("block %d handed out twice", first)
				}
				seen[first] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first, err := a.AllocateProducerIDs(1); err != nil || first != 400 {
		t.Errorf("after 40 blocks of 10: %d, %v", first, err)
	}
}

func TestEtcdCreateTopicChecks(t *testing.T) {
	e := openEtcd(t, EtcdConfig{})
	if _, err := e.CreateTopic(Topic{Name: "t", Partitions: []Partition{{Index: 1}}}); err == nil {
		t.Error("partition 0 with index 1 accepted")
	}
	id := uuid.New()
	if _, err := e.CreateTopic(Topic{Name: "a", ID: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateTopic(Topic{Name: "b", ID: id}); err == nil || errors.Is(err, ErrTopicExists) {
		t.Errorf("duplicate id: %v", err)
	}
	if _, ok := e.Topic("b"); ok {
		t.Error("topic with a duplicate id was created")
	}
	if err := e.AddPartitions("a", []Partition{{Index: 5}}); err == nil {
		t.Error("partition index 5 added to a topic of 0")
	}
	// A topic the size of a big cluster is one transaction.
	big := Topic{Name: "big", Partitions: partitions(0, 2000)}
	if _, err := e.CreateTopic(big); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.Topic("big"); len(got.Partitions) != 2000 || got.Partitions[1999].Leader != 1 {
		t.Errorf("big topic has %d partitions", len(got.Partitions))
	}
}

func TestEtcdUpdatePartition(t *testing.T) {
	a := openEtcd(t, EtcdConfig{})
	b := openEtcd(t, EtcdConfig{})
	if _, err := a.CreateTopic(Topic{Name: "t", Partitions: []Partition{
		{Index: 0, Leader: 1, LeaderEpoch: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}},
	}}); err != nil {
		t.Fatal(err)
	}
	get := func(s *Etcd) Partition {
		tp, _ := s.Topic("t")
		return tp.Partitions[0]
	}

	// Shrinking the ISR keeps the epoch; a new leader bumps it.
	if err := a.UpdatePartition("t", 0, func(p *Partition) error { p.ISR = []int32{1, 2}; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := a.UpdatePartition("t", 0, func(p *Partition) error { p.Leader = 2; p.ISR = []int32{2}; return nil }); err != nil {
		t.Fatal(err)
	}
	want := Partition{Index: 0, Leader: 2, LeaderEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{2}}
	if diff := cmp.Diff(want, get(a)); diff != "" {
		t.Errorf("after leader change (-want +got):\n%s", diff)
	}

	// Broken rules and fn's errors change nothing.
	v := a.Version()
	errFn := errors.New("not leader")
	for name, fn := range map[string]func(*Partition) error{
		"fn error":          func(p *Partition) error { p.ISR = nil; return errFn },
		"index":             func(p *Partition) error { p.Index = 7; return nil },
		"epoch back":        func(p *Partition) error { p.LeaderEpoch = 0; return nil },
		"ISR not replica":   func(p *Partition) error { p.ISR = []int32{2, 9}; return nil },
		"leader not in ISR": func(p *Partition) error { p.Leader = 3; p.LeaderEpoch = 5; return nil },
		"no change":         func(p *Partition) error { return nil },
	} {
		err := a.UpdatePartition("t", 0, fn)
		switch {
		case name == "no change" && err != nil, name != "no change" && err == nil:
			t.Errorf("%s: %v", name, err)
		case name == "fn error" && err != errFn:
			t.Errorf("fn's error came back as %v", err)
		}
	}
	if a.Version() != v || !cmp.Equal(get(a), want) {
		t.Errorf("refused updates changed the partition: %+v", get(a))
	}
	if err := a.UpdatePartition("t", 1, func(*Partition) error { return nil }); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("unknown partition: %v", err)
	}
	if err := a.UpdatePartition("nope", 0, func(*Partition) error { return nil }); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("unknown topic: %v", err)
	}

	// A conflicting write between fn's read and the swap: fn runs again on
	// the newer state, and both changes land.
	calls := 0
	err := a.UpdatePartition("t", 0, func(p *Partition) error {
		calls++
		if calls == 1 {
			if err := b.UpdatePartition("t", 0, func(p *Partition) error { p.ISR = append(p.ISR, 1); return nil }); err != nil {
				return err
			}
		}
		p.ISR = append(p.ISR, 3)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || !slices.Equal(get(a).ISR, []int32{2, 1, 3}) {
		t.Errorf("after a conflict: %d calls, ISR %v", calls, get(a).ISR)
	}
	eventually(t, 10*time.Second, "b to see a's update", func() bool { return slices.Equal(get(b).ISR, []int32{2, 1, 3}) })

	// Concurrent updates from two brokers: none is lost.
	var wg sync.WaitGroup
	for i, s := range []*Etcd{a, b, a, b} {
		wg.Go(func() {
			for j := range 10 {
				r := int32(100 + 10*i + j)
				if err := s.UpdatePartition("t", 0, func(p *Partition) error {
					p.Replicas = append(p.Replicas, r)
					return nil
				}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	// Each store's cache is read-your-writes, not read-everyone's-writes:
	// the last update may have come from the other store and still be on
	// its way down a's watch (that race once showed 42 of 43 replicas here).
	// Every update is committed, so both caches reach all 43.
	for name, s := range map[string]*Etcd{"a": a, "b": b} {
		eventually(t, 10*time.Second, name+" to see all 40 concurrent updates", func() bool {
			return len(get(s).Replicas) == 3+40
		})
	}
}

func TestEtcdWatch(t *testing.T) {
	a := openEtcd(t, EtcdConfig{})
	b := openEtcd(t, EtcdConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	ch := b.Watch(ctx)
	closed := b.Watch(t.Context())
	if _, err := a.CreateTopic(Topic{Name: "t", Partitions: partitions(0, 1)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification of a topic created elsewhere")
	}
	// The topic is there by the time the notification is.
	if _, ok := b.Topic("t"); !ok {
		t.Error("notified before the cache changed")
	}
	cancel()
	eventually(t, 5*time.Second, "the channel to close with its context", func() bool {
		select {
		case _, ok := <-ch:
			return !ok
		default:
			return false
		}
	})
	b.Close()
	for range closed { // drains, then ends: Close closes it
	}
	if _, ok := <-b.Watch(t.Context()); ok {
		t.Error("Watch on a closed store gave an open channel")
	}
}

func TestEtcdBrokers(t *testing.T) {
	a := openEtcd(t, EtcdConfig{SessionTTL: time.Second})
	b := openEtcd(t, EtcdConfig{SessionTTL: time.Second})
	crashed := openEtcd(t, EtcdConfig{SessionTTL: time.Second})

	actx, stopA := context.WithCancel(t.Context())
	one := Broker{NodeID: 1, Host: "127.0.0.1", Port: 9092, Rack: "zone-a"}
	if _, err := a.RegisterBroker(actx, one); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RegisterBroker(t.Context(), Broker{NodeID: 4}); err == nil {
		t.Error("a store registered two brokers")
	}
	if _, err := crashed.RegisterBroker(t.Context(), Broker{NodeID: 3, Host: "127.0.0.1", Port: 9094}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "b to see brokers 1 and 3", func() bool {
		bs := b.Brokers()
		if len(bs) != 2 || bs[0].Epoch <= 0 {
			return false
		}
		got := bs[0]
		got.Epoch = 0 // the registration's create revision
		return cmp.Equal(got, one) && bs[1].NodeID == 3
	})

	// Node id 1 is taken while a holds it.
	if _, err := b.RegisterBroker(t.Context(), Broker{NodeID: 1}); !errors.Is(err, ErrBrokerIDInUse) {
		t.Fatalf("second registration of node 1: %v", err)
	}
	// Ending a's context revokes its lease at once; a registration waiting
	// for the id then goes through.
	type result struct {
		lease clientv3.LeaseID
		err   error
	}
	registered := make(chan result, 1)
	go func() {
		lease, err := b.RegisterBroker(t.Context(), Broker{NodeID: 1, Host: "127.0.0.1", Port: 9192})
		registered <- result{lease, err}
	}()
	time.Sleep(100 * time.Millisecond)
	stopA()
	r := <-registered
	if r.err != nil {
		t.Fatalf("registering node 1 after a let go: %v", r.err)
	}
	eventually(t, 10*time.Second, "a to see b's broker 1", func() bool {
		bs := a.Brokers()
		return len(bs) == 2 && bs[0].Port == 9192
	})

	// A lease lost while the broker runs (here: revoked behind its back) is
	// replaced, and the broker registered again.
	if _, err := a.client.Revoke(t.Context(), r.lease); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "b to register again on a new lease", func() bool {
		b.mu.Lock()
		s := b.mu.session
		b.mu.Unlock()
		if s == nil || s.Lease() == r.lease {
			return false
		}
		bs := a.Brokers()
		return len(bs) == 2 && bs[0].Port == 9192
	})

	// A broker that stops renewing its lease (here: its connection to etcd
	// is gone) drops out once the lease expires.
	crashed.client.Close()
	eventually(t, 15*time.Second, "the crashed broker's registration to expire", func() bool {
		bs := b.Brokers()
		return len(bs) == 1 && bs[0].NodeID == 1
	})
}

func TestEtcdCampaign(t *testing.T) {
	type node struct {
		store  *Etcd
		ctx    context.Context
		cancel context.CancelFunc
		ch     <-chan bool
	}
	nodes := make([]*node, 3)
	for i := range nodes {
		n := &node{store: openEtcd(t, EtcdConfig{SessionTTL: time.Second})}
		n.ctx, n.cancel = context.WithCancel(t.Context())
		if _, err := n.store.Campaign(n.ctx, int32(i)); err == nil {
			t.Fatal("campaign before registering")
		}
		if _, err := n.store.RegisterBroker(t.Context(), Broker{NodeID: int32(i), Host: "127.0.0.1", Port: 9092 + int32(i)}); err != nil {
			t.Fatal(err)
		}
		ch, err := n.store.Campaign(n.ctx, int32(i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.store.Campaign(n.ctx, int32(i)); err == nil {
			t.Fatal("two campaigns at once")
		}
		n.ch = ch
		nodes[i] = n
	}
	// leader waits for exactly one of the candidates still running to win,
	// and checks that every store agrees.
	leader := func(candidates ...int) int {
		t.Helper()
		won := -1
		for won == -1 {
			for _, i := range candidates {
				select {
				case v := <-nodes[i].ch:
					if !v {
						t.Fatalf("node %d lost controllership unexpectedly", i)
					}
					won = i
				default:
				}
			}
			if won == -1 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		for _, i := range candidates {
			select {
			case v := <-nodes[i].ch:
				t.Fatalf("node %d also got %v", i, v)
			case <-time.After(50 * time.Millisecond):
			}
		}
		eventually(t, 10*time.Second, "every store to agree on the controller", func() bool {
			for _, n := range nodes {
				if n.store.Controller() != int32(won) {
					return false
				}
			}
			return true
		})
		return won
	}
	all := []int{0, 1, 2}
	first := leader(all...)

	// Cancelling the controller's campaign resigns: another node takes over.
	nodes[first].cancel()
	if _, ok := <-nodes[first].ch; ok {
		t.Fatal("resigned controller's channel still open")
	}
	rest := slices.DeleteFunc(slices.Clone(all), func(i int) bool { return i == first })
	second := leader(rest...)

	// A controller whose session lapses (its connection is gone) loses the
	// election once its lease expires.
	nodes[second].store.client.Close()
	last := slices.DeleteFunc(slices.Clone(rest), func(i int) bool { return i == second })
	select {
	case v := <-nodes[last[0]].ch:
		if !v {
			t.Fatal("got false")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no handover after the controller's session lapsed")
	}
	eventually(t, 10*time.Second, "the survivor to see itself as controller", func() bool {
		return nodes[last[0]].store.Controller() == int32(last[0])
	})
}

func TestEtcdFencing(t *testing.T) {
	ctrl := openEtcd(t, EtcdConfig{SessionTTL: time.Second})
	first := openEtcd(t, EtcdConfig{SessionTTL: time.Second})
	b := Broker{NodeID: 1, Host: "127.0.0.1", Port: 9092, DirID: "dir-1"}
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	if _, err := first.RegisterBroker(ctx, b); err != nil {
		t.Fatal(err)
	}
	var reg Broker
	eventually(t, 10*time.Second, "the controller's store to see broker 1", func() bool {
		bs := ctrl.Brokers()
		if len(bs) == 1 {
			reg = bs[0]
		}
		return len(bs) == 1
	})
	if reg.Epoch <= 0 || !ctrl.Fenced(reg) || ctrl.UnfencedEpoch(1) != 0 {
		t.Fatalf("a new registration is not fenced: epoch %d, unfenced %d", reg.Epoch, ctrl.UnfencedEpoch(1))
	}
	for _, epoch := range []int64{0, reg.Epoch + 1000} {
		if err := ctrl.Unfence(1, epoch); !errors.Is(err, ErrStaleBrokerEpoch) {
			t.Errorf("unfence at epoch %d: %v", epoch, err)
		}
	}
	if err := ctrl.Unfence(2, reg.Epoch); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Errorf("unfence an unregistered node: %v", err)
	}
	for range 2 { // idempotent
		if err := ctrl.Unfence(1, reg.Epoch); err != nil {
			t.Fatal(err)
		}
	}
	if ctrl.Fenced(reg) || ctrl.UnfencedEpoch(1) != reg.Epoch {
		t.Errorf("still fenced after Unfence: unfenced epoch %d", ctrl.UnfencedEpoch(1))
	}
	eventually(t, 10*time.Second, "the broker's own store to see itself unfenced", func() bool {
		bs := first.Brokers()
		return len(bs) == 1 && !first.Fenced(bs[0])
	})

	// A new registration of the node (a restart) has a new epoch: fenced
	// again, while the old epoch stays recorded.
	second := openEtcd(t, EtcdConfig{SessionTTL: time.Second})
	stop()
	if _, err := second.RegisterBroker(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	var again Broker
	eventually(t, 10*time.Second, "the controller's store to see the new incarnation", func() bool {
		bs := ctrl.Brokers()
		if len(bs) == 1 {
			again = bs[0]
		}
		return len(bs) == 1 && again.Epoch != reg.Epoch
	})
	if !ctrl.Fenced(again) || ctrl.UnfencedEpoch(1) != reg.Epoch {
		t.Errorf("a restarted broker is not fenced: epoch %d, unfenced %d", again.Epoch, ctrl.UnfencedEpoch(1))
	}
	if err := ctrl.Unfence(1, reg.Epoch); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Errorf("unfence the previous incarnation: %v", err)
	}
	if err := ctrl.Unfence(1, again.Epoch); err != nil || ctrl.Fenced(again) {
		t.Errorf("unfence the new incarnation: %v", err)
	}
	// The cache is rebuilt from etcd on open, fencing included.
	late := openEtcd(t, EtcdConfig{})
	if late.UnfencedEpoch(1) != again.Epoch {
		t.Errorf("a new store loads unfenced epoch %d, want %d", late.UnfencedEpoch(1), again.Epoch)
	}
}

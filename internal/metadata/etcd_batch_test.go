package metadata

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// batchStore is what the UpdatePartitions tests use of Local and Etcd.
type batchStore interface {
	Version() uint64
	Topic(name string) (Topic, bool)
	CreateTopic(t Topic) (Topic, error)
	UpdatePartitions(updates []PartitionUpdate) []error
}

var (
	_ batchStore = (*Local)(nil)
	_ batchStore = (*Etcd)(nil)
)

// TestUpdatePartitionsStores runs one batch against both stores: each
// update has UpdatePartition's outcome, and updates of one partition apply
// in order.
func TestUpdatePartitionsStores(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) batchStore
	}{
		{"local", func(t *testing.T) batchStore {
			l, err := OpenLocal(filepath.Join(t.TempDir(), "meta.json"), "")
			if err != nil {
				t.Fatal(err)
			}
			return l
		}},
		{"etcd", func(t *testing.T) batchStore { return openEtcd(t, EtcdConfig{MaxTxnOps: 3}) }},
	} {
		t.Run(tc.name, func(t *testing.T) { testUpdatePartitions(t, tc.open(t)) })
	}
}

func testUpdatePartitions(t *testing.T, s batchStore) {
	three := func(n int32) []Partition {
		ps := make([]Partition, n)
		for i := range ps {
			ps[i] = Partition{Index: int32(i), Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}
		}
		return ps
	}
	for _, tp := range []Topic{{Name: "t", Partitions: three(5)}, {Name: "u", Partitions: three(1)}} {
		if _, err := s.CreateTopic(tp); err != nil {
			t.Fatal(err)
		}
	}
	if errs := s.UpdatePartitions(nil); len(errs) != 0 {
		t.Errorf("empty batch: %v", errs)
	}

	errFn := errors.New("not leader")
	isr := func(ids ...int32) func(*Partition) error {
		return func(p *Partition) error { p.ISR = ids; return nil }
	}
	errs := s.UpdatePartitions([]PartitionUpdate{
		{"t", 0, isr(1, 2)},
		{"t", 1, func(p *Partition) error { p.Leader, p.ISR = 2, []int32{2, 3}; return nil }},
		{"t", 2, func(p *Partition) error { p.ISR = nil; return errFn }},
		{"t", 3, isr(1, 9)}, // 9 is no replica
		{"t", 3, func(*Partition) error { return nil }},
		{"t", 9, isr(1)},
		{"nope", 0, isr(1)},
		{"t", 0, func(p *Partition) error { // sees the first update of t-0
			if !slices.Equal(p.ISR, []int32{1, 2}) {
				return errors.New("the earlier update of t-0 is not visible")
			}
			p.Leader = 2
			return nil
		}},
		{"u", 0, isr(1)},
		{"t", 4, func(p *Partition) error { p.Leader = 3; return nil }}, // 3 then shrinks away
		{"t", 4, isr(1, 2)},
	})
	for i, want := range []error{nil, nil, errFn, errors.New("rule"), nil, ErrUnknownTopic, ErrUnknownTopic, nil, nil, nil, errors.New("rule")} {
		switch got := errs[i]; {
		case want == nil && got != nil, want != nil && got == nil:
			t.Errorf("update %d: %v, want %v", i, got, want)
		case want == errFn || errors.Is(want, ErrUnknownTopic):
			if !errors.Is(got, want) {
				t.Errorf("update %d: %v, want %v", i, got, want)
			}
		}
	}
	tp, _ := s.Topic("t")
	u, _ := s.Topic("u")
	want := []Partition{
		{Index: 0, Leader: 2, LeaderEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}},
		{Index: 1, Leader: 2, LeaderEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{2, 3}},
		{Index: 2, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}},
		{Index: 3, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}},
		{Index: 4, Leader: 3, LeaderEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}},
		{Index: 0, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1}},
	}
	if diff := cmp.Diff(want, append(tp.Partitions, u.Partitions...)); diff != "" {
		t.Errorf("after the batch (-want +got):\n%s", diff)
	}

	// A batch that changes nothing writes nothing.
	v := s.Version()
	errs = s.UpdatePartitions([]PartitionUpdate{
		{"t", 0, func(*Partition) error { return nil }},
		{"t", 1, func(*Partition) error { return errFn }},
	})
	if errs[0] != nil || errs[1] != errFn || s.Version() != v {
		t.Errorf("no-op batch: %v, version %d → %d", errs, v, s.Version())
	}
}

// countingKV counts an etcd client's transactions and their largest
// number of operations (compares, then-operations or else-operations).
type countingKV struct {
	clientv3.KV
	txns   atomic.Int64
	maxOps atomic.Int64
}

func (kv *countingKV) Txn(ctx context.Context) clientv3.Txn {
	kv.txns.Add(1)
	return countingTxn{kv.KV.Txn(ctx), kv}
}

type countingTxn struct {
	clientv3.Txn
	kv *countingKV
}

func (t countingTxn) count(n int) {
	for {
		cur := t.kv.maxOps.Load()
		if int64(n) <= cur || t.kv.maxOps.CompareAndSwap(cur, int64(n)) {
			return
		}
	}
}

func (t countingTxn) If(cs ...clientv3.Cmp) clientv3.Txn {
	t.count(len(cs))
	return countingTxn{t.Txn.If(cs...), t.kv}
}

func (t countingTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	t.count(len(ops))
	return countingTxn{t.Txn.Then(ops...), t.kv}
}

func (t countingTxn) Else(ops ...clientv3.Op) clientv3.Txn {
	t.count(len(ops))
	return countingTxn{t.Txn.Else(ops...), t.kv}
}

// countTxns makes e's client count its transactions.
func countTxns(e *Etcd) *countingKV {
	kv := &countingKV{KV: e.client.KV}
	e.client.KV = kv
	return kv
}

// TestEtcdUpdatePartitionsChunks: a batch is written in transactions of at
// most MaxTxnOps partitions, 128 by default (an external etcd's limit), each
// holding as many as it can.
func TestEtcdUpdatePartitionsChunks(t *testing.T) {
	for _, tc := range []struct {
		maxOps, partitions int
		wantTxns           int64
	}{
		{0, 1000, 8}, // default: 128
		{16, 100, 7},
	} {
		t.Run(fmt.Sprintf("MaxTxnOps=%d", tc.maxOps), func(t *testing.T) {
			e := openEtcd(t, EtcdConfig{MaxTxnOps: tc.maxOps})
			if _, err := e.CreateTopic(Topic{Name: "t", Partitions: partitions(0, int32(tc.partitions))}); err != nil {
				t.Fatal(err)
			}
			kv := countTxns(e)
			updates := make([]PartitionUpdate, tc.partitions)
			for i := range updates {
				updates[i] = PartitionUpdate{"t", int32(i), func(p *Partition) error { p.Leader, p.ISR = 2, []int32{2}; return nil }}
			}
			start := time.Now()
			for i, err := range e.UpdatePartitions(updates) {
				if err != nil {
					t.Fatalf("update %d: %v", i, err)
				}
			}
			t.Logf("%d partitions in %d transactions in %v", tc.partitions, kv.txns.Load(), time.Since(start))
			limit := int64(tc.maxOps)
			if limit == 0 {
				limit = 128
			}
			if kv.txns.Load() != tc.wantTxns || kv.maxOps.Load() != limit {
				t.Errorf("MaxTxnOps %d: %d transactions of up to %d operations, want %d of up to %d",
					tc.maxOps, kv.txns.Load(), kv.maxOps.Load(), tc.wantTxns, limit)
			}
			tp, _ := e.Topic("t") // read your writes
			for _, p := range tp.Partitions {
				if p.Leader != 2 || p.LeaderEpoch != 1 || !slices.Equal(p.ISR, []int32{2}) {
					t.Fatalf("after the batch: %+v", p)
				}
			}
		})
	}
}

// TestEtcdUpdatePartitionsConflict: partitions changed by another writer
// between the read and the transaction are recomputed on the new state,
// and only they; a partition that keeps changing is written on its own.
func TestEtcdUpdatePartitionsConflict(t *testing.T) {
	a := openEtcd(t, EtcdConfig{})
	b := openEtcd(t, EtcdConfig{})
	if _, err := a.CreateTopic(Topic{Name: "t", Partitions: partitions(0, 10)}); err != nil {
		t.Fatal(err)
	}
	// Each update adds replica 100+i; the other writer adds 200+k to
	// partitions 3 (once) and 7 (on the first batchAttempts calls).
	var mu sync.Mutex
	calls := make(map[int32]int)
	interfere := map[int32]int{3: 1, 7: batchAttempts}
	var updates []PartitionUpdate
	for i := range int32(10) {
		updates = append(updates, PartitionUpdate{"t", i, func(p *Partition) error {
			mu.Lock()
			calls[i]++
			n := calls[i]
			mu.Unlock()
			if n <= interfere[i] {
				if err := b.UpdatePartition("t", i, func(p *Partition) error {
					p.Replicas = append(p.Replicas, 200+int32(n))
					return nil
				}); err != nil {
					return err
				}
			}
			p.Replicas = append(p.Replicas, 100+i)
			return nil
		}})
	}
	for i, err := range a.UpdatePartitions(updates) {
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	tp, _ := a.Topic("t")
	for i, p := range tp.Partitions {
		want := []int32{1, 2}
		for n := 1; n <= interfere[int32(i)]; n++ {
			want = append(want, 200+int32(n))
		}
		want = append(want, 100+int32(i))
		if !slices.Equal(p.Replicas, want) {
			t.Errorf("partition %d: replicas %v, want %v", i, p.Replicas, want)
		}
	}
	if calls[3] != 2 || calls[7] <= batchAttempts {
		t.Errorf("the changed partitions' functions ran %d and %d times", calls[3], calls[7])
	}
	for i, n := range calls {
		if i != 3 && i != 7 && n != 1 {
			t.Errorf("partition %d, unchanged meanwhile, was computed %d times", i, n)
		}
	}
}

// TestEtcdUpdatePartitionsSpeed logs how long 2,000 partition changes take
// batched and one by one (32 at a time, as the controller did).
func TestEtcdUpdatePartitionsSpeed(t *testing.T) {
	const n = 2000
	e := openEtcd(t, EtcdConfig{})
	for _, name := range []string{"batched", "single"} {
		if _, err := e.CreateTopic(Topic{Name: name, Partitions: partitions(0, n)}); err != nil {
			t.Fatal(err)
		}
	}
	shrink := func(p *Partition) error { p.ISR = []int32{1}; return nil }
	updates := make([]PartitionUpdate, n)
	for i := range updates {
		updates[i] = PartitionUpdate{"batched", int32(i), shrink}
	}
	start := time.Now()
	for _, err := range e.UpdatePartitions(updates) {
		if err != nil {
			t.Fatal(err)
		}
	}
	batched := time.Since(start)

	start = time.Now()
	work := make(chan int32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range work {
				if err := e.UpdatePartition("single", i, shrink); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range int32(n) {
		work <- i
	}
	close(work)
	wg.Wait()
	t.Logf("%d ISR changes: batched %v, one by one (32 in flight) %v", n, batched, time.Since(start))
}

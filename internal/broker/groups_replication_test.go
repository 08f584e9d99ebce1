package broker_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// committedOffsets reads a group's committed offsets by partition of topic
// with a fresh client (a long-lived one may keep asking a stopped broker).
func committedOffsets(t *testing.T, c *testCluster, group, topic string) (map[int32]int64, error) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.bootstrap()...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	if err := resp.Error(); err != nil {
		return nil, err
	}
	out := make(map[int32]int64)
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

func sum(offsets map[int32]int64) int64 {
	var n int64
	for _, o := range offsets {
		n += o
	}
	return n
}

// TestGroupCoordinatorFailover: the coordinator of a group is the leader of
// its __consumer_offsets partition. When that broker stops, the partition's
// new leader loads the group: its committed offsets are all there, they
// never go backwards, and the consumer carries on.
func TestGroupCoordinatorFailover(t *testing.T) {
	c := newTestCluster(t, 3, map[string]string{
		"offsets.topic.replication.factor": "3",
		"offsets.topic.num.partitions":     "3",
		"group.initial.rebalance.delay.ms": "0",
	})
	ctx := t.Context()
	const topic, group = "gfo", "gfo-app"
	adm := kadm.NewClient(c.client())
	if _, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "all partitions led with a full ISR", func() bool { return allInSync(partitionState(t, c, topic), 3) })
	// Clients look for moved leaders at once, not after kgo's default 5 s.
	fresh := kgo.MetadataMinAge(100 * time.Millisecond)
	prod := c.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(100), kgo.RetryTimeout(30*time.Second), fresh)
	produceN(t, prod, topic, 0, 300)

	out := make(chan *kgo.Record, 4096)
	cctx, cancel := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		consumeGroup(cctx, t, c.bootstrap()[0], group, topic, out, kgo.SeedBrokers(c.bootstrap()...), fresh)
	}()
	t.Cleanup(func() { cancel(); <-consumed }) // before the cluster stops
	seen := make(map[string]bool)
	read := func(n int) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for len(seen) < n {
			select {
			case r := <-out:
				seen[string(r.Value)] = true
			case <-timeout:
				t.Fatalf("consumed %d distinct records of %d", len(seen), n)
			}
		}
	}
	read(300)
	var before map[int32]int64
	eventually(t, 10*time.Second, "commits covering the first 300 records", func() bool {
		var err error
		before, err = committedOffsets(t, c, group, topic)
		return err == nil && sum(before) == 300
	})

	// Watch the committed offsets from now on: they never go backwards.
	wctx, stopWatch := context.WithCancel(ctx)
	var watch sync.WaitGroup
	watch.Go(func() {
		last := before
		for wctx.Err() == nil {
			if now, err := committedOffsets(t, c, group, topic); err == nil {
				for p, o := range last {
					if now[p] < o {
						t.Errorf("partition %d: committed offset went back from %d to %d", p, o, now[p])
					}
				}
				last = now
			}
			select {
			case <-wctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	defer func() { stopWatch(); watch.Wait() }()

	coord := adm.FindGroupCoordinators(ctx, group)[group]
	if coord.Err != nil {
		t.Fatalf("find coordinator: %v", coord.Err)
	}
	start := time.Now()
	c.stop(coord.NodeID)
	eventually(t, 10*time.Second, "a new coordinator with the group's offsets", func() bool {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.bootstrap()...))
		if err != nil {
			return false
		}
		defer cl.Close()
		fc := kadm.NewClient(cl).FindGroupCoordinators(ctx, group)[group]
		if fc.Err != nil || fc.NodeID == coord.NodeID {
			return false
		}
		after, err := committedOffsets(t, c, group, topic)
		if err != nil {
			return false
		}
		for p, o := range before {
			if after[p] < o {
				t.Fatalf("partition %d: broker %d coordinates with offset %d, below the committed %d", p, fc.NodeID, after[p], o)
			}
		}
		t.Logf("broker %d coordinates after %v", fc.NodeID, time.Since(start))
		return true
	})

	// The consumer carries on: it reads what comes next and commits it.
	produceN(t, prod, topic, 300, 300)
	read(600)
	for i := range 600 {
		if !seen["v"+strconv.Itoa(i)] {
			t.Fatalf("record v%d never consumed", i)
		}
	}
	eventually(t, 15*time.Second, "commits covering all 600 records", func() bool {
		offs, err := committedOffsets(t, c, group, topic)
		return err == nil && sum(offs) == 600
	})
}

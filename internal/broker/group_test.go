package broker_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fjord-io/fjord/internal/broker"
)

var groupProps = map[string]string{"group.initial.rebalance.delay.ms": "0"}

// consumeGroup runs a group consumer that commits after processing each
// poll, sending what it read to out, until ctx is done. It leaves the group
// on return.
func consumeGroup(ctx context.Context, t *testing.T, addr, group, topic string, out chan<- *kgo.Record, opts ...kgo.Opt) {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
	}, opts...)...)
	if err != nil {
		t.Error(err)
		return
	}
	defer cl.Close()
	// With BlockRebalanceOnPoll every poll must be followed by
	// AllowRebalance, or Close waits for it forever.
	defer cl.AllowRebalance()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			select {
			case out <- r:
			case <-ctx.Done():
			}
		})
		if err := cl.CommitUncommittedOffsets(context.Background()); err != nil {
			t.Logf("commit: %v", err)
		}
		cl.AllowRebalance()
	}
}

func TestConsumerGroupSplitsAndResumes(t *testing.T) {
	dir := t.TempDir()
	addr := startBroker(t, dir, groupProps)
	ctx := t.Context()
	adm := kadm.NewClient(newClient(t, addr))
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, addr, kgo.DefaultProduceTopic("orders"))
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			prod.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 1000)

	out := make(chan *kgo.Record, 4096)
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			consumeGroup(cctx, t, addr, "g1", "orders", out)
		}()
	}
	seen := map[string]int{}
	byPartition := map[int32]bool{}
	for len(seen) < 1000 {
		r := <-out
		seen[string(r.Value)]++
		byPartition[r.Partition] = true
	}
	if len(byPartition) != 4 {
		t.Errorf("read from partitions %v, want all 4", byPartition)
	}
	// Wait for both members to be in the group, then check they split the
	// partitions.
	var described kadm.DescribedGroup
	for {
		dg, err := adm.DescribeGroups(ctx, "g1")
		if err != nil {
			t.Fatal(err)
		}
		described = dg["g1"]
		if described.State == "Stable" && len(described.Members) == 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	owned := map[int32]string{}
	for _, m := range described.Members {
		ca, _ := m.Assigned.AsConsumer()
		for _, tp := range ca.Topics {
			for _, p := range tp.Partitions {
				if prev, ok := owned[p]; ok {
					t.Errorf("partition %d assigned to %s and %s", p, prev, m.MemberID)
				}
				owned[p] = m.MemberID
			}
		}
	}
	if len(owned) != 4 {
		t.Errorf("assigned partitions %v, want 4", owned)
	}
	cancel()
	wg.Wait()
	close(out)
	for r := range out {
		seen[string(r.Value)]++
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("record %s read %d times", v, n)
		}
	}

	// Committed offsets survive a restart: a new member of the group reads
	// only what was produced after.
	lag, err := adm.Lag(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	if total := lag["g1"].Lag.Total(); total != 0 {
		t.Errorf("lag after consuming everything = %d, want 0", total)
	}
}

func TestCommittedOffsetsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	b, err := broker.New(broker.Config{Listen: addr, Advertised: addr, DataDir: dir, Props: groupProps})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Serve(sctx, ln) }()

	cl := newClient(t, addr, kgo.DefaultProduceTopic("resume"), kgo.AllowAutoTopicCreation())
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	offsets := kadm.Offsets{}
	offsets.AddOffset("resume", 0, 7, -1)
	if r, err := adm.CommitOffsets(ctx, "g-resume", offsets); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	cl.Close()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	addr = startBroker(t, dir, groupProps)
	out := make(chan *kgo.Record, 16)
	cctx, cancel := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		consumeGroup(cctx, t, addr, "g-resume", "resume", out)
	}()
	t.Cleanup(func() { cancel(); <-consumed }) // runs before the broker stops
	first := <-out
	if string(first.Value) != "7" || first.Offset != 7 {
		t.Fatalf("resumed at offset %d value %s, want the committed offset 7", first.Offset, first.Value)
	}
}

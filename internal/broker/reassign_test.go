package broker_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/metadata"
)

// TestReassignPartitions moves a partition holding acknowledged records to
// a new broker and off its leader (KIP-455, through kadm as
// kafka-reassign-partitions would), checks that the new broker alone serves
// every record and that the removed replica's log is gone, and cancels a
// reassignment that cannot complete.
func TestReassignPartitions(t *testing.T) {
	c := newTestCluster(t, 4, map[string]string{"auto.leader.rebalance.enable": "false"})
	ctx := t.Context()
	adm := kadm.NewClient(c.client())
	createAssigned(t, c, "ra", [][]int32{{0, 1, 2}, {1, 2, 0}})
	eventually(t, 30*time.Second, "a full ISR", func() bool { return allInSync(partitionState(t, c, "ra"), 3) })
	sent := produceN(t, c.client(kgo.RequiredAcks(kgo.AllISRAcks())), "ra", 0, 2000)
	if len(sent[0]) == 0 || len(sent[1]) == 0 {
		t.Fatalf("records by partition: %d, %d", len(sent[0]), len(sent[1]))
	}

	// Requests Kafka refuses.
	for _, tc := range []struct {
		p       int32
		target  []int32
		want    error
		comment string
	}{
		{5, []int32{0}, kerr.UnknownTopicOrPartition, "unknown partition"},
		{0, []int32{}, kerr.InvalidReplicaAssignment, "empty"},
		{0, []int32{3, 3, 1}, kerr.InvalidReplicaAssignment, "a broker twice"},
		{0, []int32{3, 9}, kerr.InvalidReplicaAssignment, "broker 9 is not registered"},
		{1, nil, kerr.NoReassignmentInProgress, "cancel with nothing in progress"},
	} {
		res, err := adm.AlterPartitionAssignments(ctx, kadm.AlterPartitionAssignmentsReq{"ra": {tc.p: tc.target}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res["ra"][tc.p].Err; !errors.Is(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.comment, got, tc.want)
		}
	}
	if got := listReassignments(t, c, nil); len(got) != 0 {
		t.Fatalf("reassignments after refused requests: %v", got)
	}

	// Cancel: a reassignment to a registered broker that never fetches
	// stays in progress until cancelled, and the cancellation restores the
	// original replicas and leader.
	before := partitionState(t, c, "ra")[1]
	fake := registerFakeBroker(t, c, 7)
	alter(t, adm, "ra", 1, []int32{7, 2, 0})
	want := map[int32]string{1: fmt.Sprint([]int32{7, 2, 0, 1}, []int32{7}, []int32{1})}
	if got := listReassignments(t, c, nil); !maps.Equal(got, want) {
		t.Errorf("listed %v, want %v", got, want)
	}
	if got := listReassignments(t, c, map[string][]int32{"ra": {0, 1, 2}, "nope": {0}}); !maps.Equal(got, want) {
		t.Errorf("listed ra-0..2 and nope-0: %v, want %v", got, want)
	}
	time.Sleep(500 * time.Millisecond) // the reassignment does not complete
	alter(t, adm, "ra", 1, nil)
	if got := listReassignments(t, c, nil); len(got) != 0 {
		t.Errorf("listed after cancel: %v", got)
	}
	// Every broker's cache gets the cancellation by watch, a moment later
	// than the one that answered.
	eventually(t, 10*time.Second, "the original replicas and leader back after the cancel", func() bool {
		after := partitionState(t, c, "ra")[1]
		return sameSet(after.Replicas, before.Replicas) && after.Leader == before.Leader
	})
	fake.Close()

	// Move partition 0 to broker 3, off its leader.
	ps := partitionState(t, c, "ra")[0]
	dropped := ps.Leader
	target := append([]int32{3}, slices.DeleteFunc(slices.Clone(ps.Replicas), func(r int32) bool { return r == dropped })...)
	alter(t, adm, "ra", 0, target)
	eventually(t, 20*time.Second, fmt.Sprintf("ra-0 on %v with a full ISR, no reassignment listed", target), func() bool {
		p, ok := partitionState(t, c, "ra")[0]
		return ok && slices.Equal(p.Replicas, target) && len(p.ISR) == 3 && len(listReassignments(t, c, nil)) == 0
	})
	eventually(t, 10*time.Second, fmt.Sprintf("broker %d to delete its replica", dropped), func() bool {
		_, err := os.Stat(filepath.Join(c.dirs[dropped], "ra-0"))
		return errors.Is(err, os.ErrNotExist)
	})
	if _, err := os.Stat(filepath.Join(c.dirs[3], "ra-0", partitionMetaFile)); err != nil {
		t.Errorf("broker 3's replica: %v", err)
	}

	// Broker 3 alone has every acknowledged record of partition 0.
	for id := range int32(3) {
		c.stop(id)
	}
	eventually(t, 20*time.Second, "broker 3 to lead ra-0", func() bool {
		p, ok := partitionState(t, c, "ra")[0]
		return ok && p.Leader == 3
	})
	got := consumePartition(t, c, "ra", 0, len(sent[0]))
	if !slices.Equal(got, sent[0]) {
		t.Errorf("broker 3 serves %d records of ra-0, %d were acknowledged; first difference at %d",
			len(got), len(sent[0]), firstDiff(got, sent[0]))
	}
}

const partitionMetaFile = "partition.metadata"

// createAssigned creates a topic with an explicit replica assignment.
func createAssigned(t *testing.T, c *testCluster, topic string, assignment [][]int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for i, rs := range assignment {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), rs
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(t.Context(), c.client())
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// alter reassigns one partition (nil target: cancels) and fails the test
// unless the request succeeds.
func alter(t *testing.T, adm *kadm.Client, topic string, p int32, target []int32) {
	t.Helper()
	res, err := adm.AlterPartitionAssignments(t.Context(), kadm.AlterPartitionAssignmentsReq{topic: {p: target}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[topic][p]; r.Err != nil {
		t.Fatalf("reassign %s-%d to %v: %v: %s", topic, p, target, r.Err, r.ErrMessage)
	}
}

// listReassignments lists the reassignments of the named partitions (nil:
// all) as a live broker reports them: partition → "replicas adding
// removing". Only topic "ra" is expected.
func listReassignments(t *testing.T, c *testCluster, only map[string][]int32) map[int32]string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.bootstrap()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	req.TimeoutMillis = 5000
	for topic, ps := range only {
		rt := kmsg.NewListPartitionReassignmentsRequestTopic()
		rt.Topic, rt.Partitions = topic, ps
		req.Topics = append(req.Topics, rt)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatal(err)
	}
	out := make(map[int32]string)
	for _, rt := range resp.Topics {
		if rt.Topic != "ra" {
			t.Errorf("unexpected reassignment of topic %s", rt.Topic)
		}
		for _, p := range rt.Partitions {
			out[p.Partition] = fmt.Sprint(p.Replicas, p.AddingReplicas, p.RemovingReplicas)
		}
	}
	return out
}

// registerFakeBroker registers a broker that never starts: a reassignment
// to it stays in progress.
func registerFakeBroker(t *testing.T, c *testCluster, id int32) *metadata.Etcd {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	e, err := metadata.OpenEtcd(ctx, metadata.EtcdConfig{Endpoints: []string{c.endpoint}, Cluster: c.name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if _, err := e.RegisterBroker(ctx, metadata.Broker{NodeID: id, Host: "127.0.0.1", Port: 1, DirID: "fake"}); err != nil {
		t.Fatal(err)
	}
	// Every broker must have it, the controller included: each learns it
	// by watch, some later than others.
	eventually(t, 10*time.Second, fmt.Sprintf("broker %d in every broker's metadata", id), func() bool {
		for _, addr := range c.bootstrap() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
			if err != nil {
				return false
			}
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = []kmsg.MetadataRequestTopic{}
			r, err := cl.SeedBrokers()[0].Request(t.Context(), req)
			cl.Close()
			if err != nil || !slices.ContainsFunc(r.(*kmsg.MetadataResponse).Brokers,
				func(b kmsg.MetadataResponseBroker) bool { return b.NodeID == id }) {
				return false
			}
		}
		return true
	})
	return e
}

// consumePartition reads n records of one partition from its start.
func consumePartition(t *testing.T, c *testCluster, topic string, p int32, n int) []string {
	t.Helper()
	cl := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out []string
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s-%d", len(out), n, topic, p)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, fmt.Sprintf("%d:%s", r.Offset, r.Value)) })
	}
	return out
}

func sameSet(a, b []int32) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestReassignStandalone: a standalone broker's partitions have their one
// replica, which is the only valid target.
func TestReassignStandalone(t *testing.T) {
	addr := startBroker(t, t.TempDir(), nil)
	ctx := t.Context()
	adm := kadm.NewClient(newClient(t, addr))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "solo"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		target []int32
		want   error
	}{
		{[]int32{0}, nil},
		{[]int32{0, 1}, kerr.InvalidReplicaAssignment},
		{nil, kerr.NoReassignmentInProgress},
	} {
		res, err := adm.AlterPartitionAssignments(ctx, kadm.AlterPartitionAssignmentsReq{"solo": {0: tc.target}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res["solo"][0].Err; !errors.Is(got, tc.want) {
			t.Errorf("target %v: %v, want %v", tc.target, got, tc.want)
		}
	}
	resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, newClient(t, addr))
	if err != nil || len(resp.Topics) != 0 {
		t.Errorf("list: %v, %v", resp, err)
	}
}

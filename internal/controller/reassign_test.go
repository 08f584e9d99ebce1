package controller

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-io/fjord/internal/metadata"
)

// reassigning is a partition with a reassignment in progress.
func reassigning(leader, epoch int32, replicas, isr, adding, removing []int32) metadata.Partition {
	p := part(leader, epoch, replicas, isr)
	p.AddingReplicas, p.RemovingReplicas = adding, removing
	return p
}

// TestReassignRules applies the reassignment rules to partitions, without a
// store: brokers 1 to 5 are eligible, except 5, which is fenced.
func TestReassignRules(t *testing.T) {
	v := &view{registered: map[int32]bool{1: true, 2: true, 3: true, 4: true, 5: true}, fenced: map[int32]int64{5: 9}}
	for _, tc := range []struct {
		name string
		in   metadata.Partition
		op   func(p *metadata.Partition) error
		want metadata.Partition
		err  error
	}{{
		name: "start: target first, then the removed replicas",
		in:   part(1, 0, ids(1, 2, 3), ids(1, 2, 3)),
		op:   func(p *metadata.Partition) error { return v.reassign(p, ids(4, 2, 3)) },
		want: reassigning(1, 0, ids(4, 2, 3, 1), ids(1, 2, 3), ids(4), ids(1)),
	}, {
		name: "start: more replicas",
		in:   part(2, 0, ids(1, 2), ids(2, 1)),
		op:   func(p *metadata.Partition) error { return v.reassign(p, ids(1, 2, 3)) },
		want: reassigning(2, 0, ids(1, 2, 3), ids(2, 1), ids(3), nil),
	}, {
		name: "start: the same replicas change nothing",
		in:   part(1, 0, ids(1, 2, 3), ids(3, 1)),
		op:   func(p *metadata.Partition) error { return v.reassign(p, ids(1, 2, 3)) },
		want: part(1, 0, ids(1, 2, 3), ids(3, 1)),
	}, {
		name: "start: a new order applies at once",
		in:   part(1, 0, ids(1, 2, 3), ids(1, 2, 3)),
		op:   func(p *metadata.Partition) error { return v.reassign(p, ids(3, 1, 2)) },
		want: part(1, 0, ids(3, 1, 2), ids(1, 2, 3)),
	}, {
		name: "start: removing only completes at once, the leader hands over",
		in:   part(1, 0, ids(1, 2, 3), ids(1, 3, 2)),
		op:   func(p *metadata.Partition) error { return v.reassign(p, ids(2, 3)) },
		want: part(2, 0, ids(2, 3), ids(3, 2)),
	}, {
		name: "start: removing only, but no target replica in the ISR: waits",
		in:   part(1, 0, ids(1, 2, 3), ids(1)),
		op:   func(p *metadata.Partition) error { return v.reassign(p, ids(2, 3)) },
		want: reassigning(1, 0, ids(2, 3, 1), ids(1), nil, ids(1)),
	}, {
		name: "start over: the original replicas are reassigned, an adding one not in the new target leaves",
		in:   reassigning(1, 0, ids(4, 2, 3, 1), ids(1, 2, 3, 4), ids(4), ids(1)),
		op:   func(p *metadata.Partition) error { return v.reassign(p, ids(5, 2, 1)) },
		want: reassigning(1, 0, ids(5, 2, 1, 3), ids(1, 2, 3), ids(5), ids(3)),
	}, {
		name: "start over with the original replicas: no reassignment left",
		in:   reassigning(1, 0, ids(4, 2, 3, 1), ids(1, 2, 3), ids(4), ids(1)),
		op:   func(p *metadata.Partition) error { return v.reassign(p, ids(1, 2, 3)) },
		want: part(1, 0, ids(1, 2, 3), ids(1, 2, 3)),
	}, {
		name: "start over: a leader the old target added, and the new one drops, hands over",
		in:   reassigning(4, 0, ids(4, 2, 3, 1), ids(4, 2), ids(4), ids(1)),
		op:   func(p *metadata.Partition) error { return v.reassign(p, ids(3, 2, 1)) },
		want: part(2, 0, ids(3, 2, 1), ids(2)),
	}, {
		name: "start over: no in-sync replica would remain",
		in:   reassigning(4, 0, ids(4, 2, 3, 1), ids(4), ids(4), ids(1)),
		op:   func(p *metadata.Partition) error { return v.reassign(p, ids(3, 2, 1)) },
		err:  ErrInvalidReplicaAssignment,
	}, {
		name: "complete: waits for the adding replicas",
		in:   reassigning(1, 0, ids(4, 5, 2, 1), ids(1, 2, 4), ids(4, 5), ids(1)),
		op:   completed(v, false),
		want: reassigning(1, 0, ids(4, 5, 2, 1), ids(1, 2, 4), ids(4, 5), ids(1)),
	}, {
		name: "complete: the leader stays when it is kept",
		in:   reassigning(2, 0, ids(4, 2, 3, 1), ids(1, 2, 3, 4), ids(4), ids(1)),
		op:   completed(v, true),
		want: part(2, 0, ids(4, 2, 3), ids(2, 3, 4)),
	}, {
		name: "complete: a removed leader hands over to the first target replica in the ISR",
		in:   reassigning(1, 0, ids(4, 2, 3, 1), ids(1, 3, 4), ids(4), ids(1)),
		op:   completed(v, true),
		want: part(4, 0, ids(4, 2, 3), ids(3, 4)),
	}, {
		name: "complete: a fenced replica does not take over",
		in:   reassigning(1, 0, ids(5, 2, 1), ids(1, 5, 2), ids(5), ids(1)),
		op:   completed(v, true),
		want: part(2, 0, ids(5, 2), ids(5, 2)),
	}, {
		name: "complete: a removed leader with no eligible successor keeps leading",
		in:   reassigning(1, 0, ids(5, 1), ids(1, 5), ids(5), ids(1)),
		op:   completed(v, false),
		want: reassigning(1, 0, ids(5, 1), ids(1, 5), ids(5), ids(1)),
	}, {
		name: "complete: an offline partition completes, still offline",
		in:   reassigning(-1, 0, ids(5, 1), ids(1, 5), ids(5), ids(1)),
		op:   completed(v, true),
		want: part(-1, 0, ids(5), ids(5)),
	}, {
		name: "cancel: back to the original replicas",
		in:   reassigning(1, 0, ids(4, 2, 3, 1), ids(1, 2, 3, 4), ids(4), ids(1)),
		op:   v.cancelReassignment,
		want: part(1, 0, ids(2, 3, 1), ids(1, 2, 3)),
	}, {
		name: "cancel: a leader being added hands back",
		in:   reassigning(4, 0, ids(4, 2, 1), ids(4, 2), ids(4), ids(1)),
		op:   v.cancelReassignment,
		want: part(2, 0, ids(2, 1), ids(2)),
	}, {
		name: "cancel: only adding replicas in the ISR",
		in:   reassigning(4, 0, ids(4, 2, 1), ids(4), ids(4), ids(1)),
		op:   v.cancelReassignment,
		err:  ErrInvalidReplicaAssignment,
	}, {
		name: "cancel: nothing in progress",
		in:   part(1, 0, ids(1, 2), ids(1, 2)),
		op:   v.cancelReassignment,
		err:  ErrNoReassignmentInProgress,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.in
			err := tc.op(&p)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, p); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// completed returns an op that completes a partition's reassignment and
// checks whether it did.
func completed(v *view, want bool) func(*metadata.Partition) error {
	return func(p *metadata.Partition) error {
		if got := v.completeReassignment(p); got != want {
			return errors.New("completeReassignment reported the wrong outcome")
		}
		return nil
	}
}

// TestReassignCheckTarget checks Kafka's rules for a target list.
func TestReassignCheckTarget(t *testing.T) {
	v := &view{registered: map[int32]bool{1: true, 2: true}, fenced: map[int32]int64{2: 1}}
	for _, tc := range []struct {
		target []int32
		ok     bool
	}{
		{nil, true}, // a cancellation
		{[]int32{}, false},
		{ids(1, 2), true}, // fenced brokers are registered
		{ids(1, 1), false},
		{ids(1, 3), false},
	} {
		err := v.checkTarget(tc.target)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidReplicaAssignment)) {
			t.Errorf("target %v: %v", tc.target, err)
		}
	}
}

// TestReassignCompletion runs a reassignment through the controller on
// etcd: Reassign starts it, the new replica joins the ISR (as its leader
// would have it join), and the controller completes it, moving leadership
// off the removed replica.
func TestReassignCompletion(t *testing.T) {
	c := newCluster(t)
	for n := int32(1); n <= 4; n++ {
		c.start(n)
	}
	c.run(Config{})
	c.eventually("brokers 1-4 to be unfenced", func() bool { return c.unfenced(1, 2, 3, 4) })
	c.createTopic("t", nil, part(1, 0, ids(1, 2, 3), ids(1, 2, 3)), part(1, 0, ids(1, 2, 3), ids(1, 2, 3)))

	res := Reassign(t.Context(), c.ctrl, []Reassignment{
		{TopicPartition{"t", 0}, ids(4, 2, 3)},
		{TopicPartition{"t", 1}, ids(2, 3)}, // removes only: done at once
	})
	for tp, err := range res {
		if err != nil {
			t.Errorf("%v: %v", tp, err)
		}
	}
	// Replicas were only added: the same leader and epoch (as in Kafka).
	c.waitPartition("t", 0, reassigning(1, 0, ids(4, 2, 3, 1), ids(1, 2, 3), ids(4), ids(1)))
	c.waitPartition("t", 1, part(2, 1, ids(2, 3), ids(2, 3)))

	// Broker 4 catches up and joins the ISR; the controller completes the
	// reassignment: the leader, being removed, hands over to broker 4.
	if err := c.ctrl.UpdatePartition("t", 0, func(p *metadata.Partition) error {
		p.ISR = append(p.ISR, 4)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c.waitPartition("t", 0, part(4, 1, ids(4, 2, 3), ids(2, 3, 4)))

	// Nothing is left to cancel.
	res = Reassign(t.Context(), c.ctrl, []Reassignment{{TopicPartition: TopicPartition{"t", 0}}})
	if err := res[TopicPartition{"t", 0}]; !errors.Is(err, ErrNoReassignmentInProgress) {
		t.Errorf("cancel after completion: %v", err)
	}
}

// TestReassignCancel cancels a reassignment the controller has not
// completed, with the controller's passes run by the test.
func TestReassignCancel(t *testing.T) {
	c := newCluster(t)
	for n := int32(1); n <= 4; n++ {
		c.start(n)
	}
	ctrl := c.controller()
	c.createTopic("t", nil, part(1, 0, ids(1, 2, 3), ids(1, 2, 3)))
	tp := TopicPartition{"t", 0}

	// Requests Kafka refuses change nothing.
	for _, tc := range []struct {
		r    Reassignment
		want error
	}{
		{Reassignment{tp, []int32{}}, ErrInvalidReplicaAssignment},
		{Reassignment{tp, ids(4, 4, 2)}, ErrInvalidReplicaAssignment},
		{Reassignment{tp, ids(4, 9)}, ErrInvalidReplicaAssignment},
		{Reassignment{TopicPartition: tp}, ErrNoReassignmentInProgress},
		{Reassignment{TopicPartition{"t", 1}, ids(1)}, ErrUnknownTopicOrPartition},
		{Reassignment{TopicPartition{"nope", 0}, ids(1)}, ErrUnknownTopicOrPartition},
		{Reassignment{TopicPartition{"nope", 0}, []int32{}}, ErrUnknownTopicOrPartition}, // checked first, as in Kafka
	} {
		if err := Reassign(t.Context(), c.ctrl, []Reassignment{tc.r})[tc.r.TopicPartition]; !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.r, err, tc.want)
		}
	}
	c.waitPartition("t", 0, part(1, 0, ids(1, 2, 3), ids(1, 2, 3)))

	if err := Reassign(t.Context(), c.ctrl, []Reassignment{{tp, ids(4, 2, 3)}})[tp]; err != nil {
		t.Fatal(err)
	}
	c.waitPartition("t", 0, reassigning(1, 0, ids(4, 2, 3, 1), ids(1, 2, 3), ids(4), ids(1)))
	// Broker 4 has not caught up: a pass leaves the reassignment be.
	if r := ctrl.pass(t.Context(), false); r.changed != 0 || r.reassigned != 0 {
		t.Errorf("pass before broker 4 caught up: %+v", r)
	}
	if err := Reassign(t.Context(), c.ctrl, []Reassignment{{TopicPartition: tp}})[tp]; err != nil {
		t.Fatal(err)
	}
	// The replicas keep the reassignment's order, as in Kafka.
	c.waitPartition("t", 0, part(1, 1, ids(2, 3, 1), ids(1, 2, 3)))

	// A cancellation racing with completion: the controller completes
	// between the cancellation's read and its compare-and-swap; the
	// cancellation, re-checked, finds nothing in progress.
	if err := Reassign(t.Context(), c.ctrl, []Reassignment{{tp, ids(4, 2, 3)}})[tp]; err != nil {
		t.Fatal(err)
	}
	if err := c.ctrl.UpdatePartition("t", 0, func(p *metadata.Partition) error {
		p.ISR = append(p.ISR, 4)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s := &interfering{Store: c.ctrl, before: func() {
		if r := ctrl.pass(context.Background(), false); r.reassigned != 1 {
			t.Errorf("interfering pass: %+v", r)
		}
	}}
	if err := Reassign(t.Context(), s, []Reassignment{{TopicPartition: tp}})[tp]; !errors.Is(err, ErrNoReassignmentInProgress) {
		t.Errorf("cancel racing with completion: %v", err)
	}
	c.waitPartition("t", 0, part(4, 2, ids(4, 2, 3), ids(2, 3, 4)))
}

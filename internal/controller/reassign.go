package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/fjord-io/fjord/internal/metadata"
)

// Partition reassignment, Kafka's KIP-455. A reassignment of a partition
// with replicas R to the target T is recorded in one compare-and-swap:
// Replicas becomes T followed by the replicas of R not in T, AddingReplicas
// T − R, RemovingReplicas R − T. The brokers then do the work: every broker
// in Replicas hosts the partition, so the added ones start following the
// leader and join the ISR once caught up. The controller completes the
// reassignment (completeReassignment, on every pass) once every adding
// replica is in the ISR: Replicas becomes T, the ISR loses the removed
// replicas, and a leader being removed hands over to the first replica of T
// in the ISR; the removed replicas' brokers then delete their logs.

// Errors of Reassign, one per Kafka error code of the
// AlterPartitionReassignments API; the broker maps them with errors.Is.
var (
	// ErrInvalidReplicaAssignment: the target is empty, names a broker
	// twice or names a broker that is not registered, or the change would
	// leave no in-sync replica. INVALID_REPLICA_ASSIGNMENT.
	ErrInvalidReplicaAssignment = errors.New("controller: invalid replica assignment")
	// ErrNoReassignmentInProgress: a cancellation of a partition that is not
	// being reassigned. NO_REASSIGNMENT_IN_PROGRESS.
	ErrNoReassignmentInProgress = errors.New("controller: no reassignment in progress")
)

// Assignments is the metadata Reassign reads and changes: *metadata.Etcd,
// or *metadata.Local for a standalone broker.
type Assignments interface {
	Brokers() []metadata.Broker
	UpdatePartitions(updates []metadata.PartitionUpdate) []error
}

var (
	_ Assignments = (*metadata.Etcd)(nil)
	_ Assignments = (*metadata.Local)(nil)
)

// Reassignment asks for one partition to move to Replicas, in that order
// (the first is the preferred leader). Nil Replicas cancels the partition's
// reassignment in progress.
type Reassignment struct {
	TopicPartition
	Replicas []int32
}

// Reassign starts or cancels reassignments (the AlterPartitionReassignments
// API). Any broker can run it: each change is a compare-and-swap on the
// partition's metadata whose function re-checks its preconditions against
// the partition as committed, so it cannot overwrite the controller's
// concurrent decisions.
//
// A new target for a partition already being reassigned replaces the old
// target, as in Kafka: the partition's original replicas (Replicas minus
// AddingReplicas) are reassigned to the new target, and replicas the old
// target was adding that the new one does not name leave at once. A target
// equal to the current replicas, with no reassignment in progress, changes
// nothing; one that only removes replicas completes at once. Cancelling
// reverts to the original replicas, provided the reassignment has not
// completed.
//
// The result has an entry per partition of reqs: nil on success, otherwise
// an error wrapping ErrInvalidReplicaAssignment, ErrNoReassignmentInProgress
// or ErrUnknownTopicOrPartition, or ctx's error for partitions not attempted
// before ctx ended. A partition must appear in reqs at most once.
func Reassign(ctx context.Context, s Assignments, reqs []Reassignment) map[TopicPartition]error {
	v := assignmentView(s)
	results := make(map[TopicPartition]error, len(reqs))
	started := updateEach(ctx, s, batchesInFlight, len(reqs), func(i int) metadata.PartitionUpdate {
		r := reqs[i]
		return metadata.PartitionUpdate{Topic: r.Topic, Index: r.Partition, Fn: func(p *metadata.Partition) error {
			if r.Replicas == nil {
				return v.cancelReassignment(p)
			}
			if err := v.checkTarget(r.Replicas); err != nil {
				return err
			}
			return v.reassign(p, r.Replicas)
		}}
	}, func(i int, err error) {
		r := reqs[i]
		if errors.Is(err, metadata.ErrUnknownTopic) {
			err = fmt.Errorf("%w: %s-%d", ErrUnknownTopicOrPartition, r.Topic, r.Partition)
		} else if err != nil {
			err = fmt.Errorf("%s-%d: %w", r.Topic, r.Partition, err)
		}
		results[r.TopicPartition] = err
	})
	for _, r := range reqs[started:] {
		results[r.TopicPartition] = ctx.Err()
	}
	return results
}

// assignmentView returns the brokers' state as Reassign sees it: with a
// store that fences brokers (etcd), the controller's view; otherwise every
// registered broker is eligible.
func assignmentView(s Assignments) *view {
	if fs, ok := s.(Store); ok {
		return observe(fs)
	}
	v := &view{registered: make(map[int32]bool), fenced: make(map[int32]int64)}
	for _, b := range s.Brokers() {
		v.registered[b.NodeID] = true
	}
	return v
}

// checkTarget applies Kafka's rules for a manual assignment to a target
// replica list (nil: a cancellation, which has none).
func (v *view) checkTarget(target []int32) error {
	if target == nil {
		return nil
	}
	if len(target) == 0 {
		return fmt.Errorf("%w: the target replica list is empty", ErrInvalidReplicaAssignment)
	}
	for i, r := range target {
		if slices.Contains(target[i+1:], r) {
			return fmt.Errorf("%w: the target replicas %v name broker %d twice", ErrInvalidReplicaAssignment, target, r)
		}
		if !v.registered[r] {
			return fmt.Errorf("%w: broker %d of the target replicas %v is not registered", ErrInvalidReplicaAssignment, r, target)
		}
	}
	return nil
}

// reassign starts a reassignment of p to target (see Reassign).
func (v *view) reassign(p *metadata.Partition, target []int32) error {
	original := without(p.Replicas, p.AddingReplicas)
	removing := without(original, target)
	replicas := append(slices.Clone(target), removing...)
	isr := within(p.ISR, replicas)
	if len(isr) == 0 {
		return fmt.Errorf("%w: no in-sync replica of %v would remain in %v", ErrInvalidReplicaAssignment, p.ISR, replicas)
	}
	p.Replicas, p.ISR = replicas, isr
	p.AddingReplicas, p.RemovingReplicas = orNil(without(target, original)), orNil(removing)
	if p.Leader != -1 && !slices.Contains(isr, p.Leader) {
		// The leader was being added by the target this one replaces.
		p.Leader, _ = v.firstEligible(replicas, isr)
	}
	v.completeReassignment(p) // nothing to add: done at once
	return nil
}

// cancelReassignment reverts p to its replicas before the reassignment in
// progress.
func (v *view) cancelReassignment(p *metadata.Partition) error {
	if !p.Reassigning() {
		return fmt.Errorf("%w: replicas %v", ErrNoReassignmentInProgress, p.Replicas)
	}
	replicas := without(p.Replicas, p.AddingReplicas)
	isr := within(p.ISR, replicas)
	if len(isr) == 0 {
		// Kafka reverts with an unclean election if the topic allows it.
		return fmt.Errorf("%w: reverting to %v would leave no in-sync replica of %v", ErrInvalidReplicaAssignment, replicas, p.ISR)
	}
	p.Replicas, p.ISR = replicas, isr
	p.AddingReplicas, p.RemovingReplicas = nil, nil
	if p.Leader != -1 && !slices.Contains(isr, p.Leader) {
		p.Leader, _ = v.firstEligible(replicas, isr)
	}
	return nil
}

// completeReassignment completes p's reassignment in progress if every
// adding replica is in the ISR, and reports whether it did: Replicas
// becomes the target, the ISR keeps its members in the target, and a leader
// outside the target hands over to the first target replica that is in the
// ISR and eligible. While no such replica exists, a leader being removed
// keeps leading and the reassignment waits, rather than leave the
// partition without a leader.
func (v *view) completeReassignment(p *metadata.Partition) bool {
	if !p.Reassigning() {
		return false
	}
	for _, r := range p.AddingReplicas {
		if !slices.Contains(p.ISR, r) {
			return false
		}
	}
	target := without(p.Replicas, p.RemovingReplicas)
	isr := within(p.ISR, target)
	if len(target) == 0 || len(isr) == 0 {
		return false
	}
	leader := p.Leader
	if leader == -1 || !slices.Contains(target, leader) {
		r, ok := v.firstEligible(target, isr)
		if !ok && leader != -1 {
			return false
		}
		leader = r
	}
	p.Replicas, p.ISR, p.Leader = target, isr, leader
	p.AddingReplicas, p.RemovingReplicas = nil, nil
	return true
}

// assignmentChanged reports whether a pass changed a partition: its leader,
// ISR or assignment.
func assignmentChanged(before, after metadata.Partition) bool {
	return before.Leader != after.Leader || !slices.Equal(before.ISR, after.ISR) ||
		!slices.Equal(before.Replicas, after.Replicas) ||
		!slices.Equal(before.AddingReplicas, after.AddingReplicas) ||
		!slices.Equal(before.RemovingReplicas, after.RemovingReplicas)
}

// without returns the ids of a not in b, in a's order, as a new slice.
func without(a, b []int32) []int32 {
	out := make([]int32, 0, len(a))
	for _, r := range a {
		if !slices.Contains(b, r) {
			out = append(out, r)
		}
	}
	return out
}

// within returns the ids of a that are in b, in a's order, as a new slice.
func within(a, b []int32) []int32 {
	out := make([]int32, 0, len(a))
	for _, r := range a {
		if slices.Contains(b, r) {
			out = append(out, r)
		}
	}
	return out
}

func orNil(ids []int32) []int32 {
	if len(ids) == 0 {
		return nil
	}
	return ids
}

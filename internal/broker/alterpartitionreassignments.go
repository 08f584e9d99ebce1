package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/controller"
)

// AlterPartitionReassignments (key 45), v0: KIP-455 partition
// reassignment. Each partition names its target replicas, in order, or null
// to cancel its reassignment in progress. Any broker can answer: each
// change is a compare-and-swap on the partition's metadata
// (controller.Reassign), which records the reassignment; the brokers then
// move the data (new replicas follow the leader and join the ISR) and the
// controller completes it. The answer comes once the reassignment is
// recorded, not when it completes; ListPartitionReassignments follows it.
//
// Per partition: UNKNOWN_TOPIC_OR_PARTITION; INVALID_REPLICA_ASSIGNMENT for
// an empty target, a broker named twice or not registered, or a change that
// would leave no in-sync replica; NO_REASSIGNMENT_IN_PROGRESS for a
// cancellation with nothing to cancel; INVALID_REQUEST for a partition named
// twice; REQUEST_TIMED_OUT for partitions not reached within TimeoutMillis.
// Replication throttles (*.replication.throttled.*) are not applied.

func (b *Broker) handleAlterPartitionReassignments(ctx context.Context, req *kmsg.AlterPartitionAssignmentsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	seen := make(map[controller.TopicPartition]int)
	var reqs []controller.Reassignment
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			tp := controller.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			if seen[tp]++; seen[tp] == 1 {
				reqs = append(reqs, controller.Reassignment{TopicPartition: tp, Replicas: rp.Replicas})
			}
		}
	}
	var todo []controller.Reassignment
	for _, r := range reqs {
		if seen[r.TopicPartition] == 1 {
			todo = append(todo, r)
		}
	}

	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	results := controller.Reassign(rctx, b.meta, todo)
	cancel()

	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			tp := controller.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			err := results[tp]
			if seen[tp] > 1 {
				err = kerrf(kerr.InvalidRequest, "partition %s-%d appears more than once in the request", tp.Topic, tp.Partition)
			}
			if err != nil {
				sp.ErrorCode = reassignmentCode(err)
				sp.ErrorMessage = errorMessage(err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// reassignmentCode maps Reassign's errors to Kafka codes.
func reassignmentCode(err error) int16 {
	for _, m := range []struct {
		err  error
		code *kerr.Error
	}{
		{controller.ErrInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
		{controller.ErrNoReassignmentInProgress, kerr.NoReassignmentInProgress},
		{controller.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
		{context.DeadlineExceeded, kerr.RequestTimedOut},
	} {
		if errors.Is(err, m.err) {
			return m.code.Code
		}
	}
	return errorCode(err)
}

package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions (key 37), v0-v3: grows a topic to Count partitions; it
// can never shrink one. ValidateOnly checks without changing anything.

func (b *Broker) handleCreatePartitions(req *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		if err := b.createPartitions(rt, req.ValidateOnly); err != nil {
			st.ErrorCode = errorCode(err)
			st.ErrorMessage = errorMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (b *Broker) createPartitions(rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	ts := b.parts.topic(rt.Topic)
	if ts == nil {
		return kerrf(kerr.UnknownTopicOrPartition, "topic %q does not exist", rt.Topic)
	}
	have := int32(len(ts.meta.Partitions))
	if rt.Count <= have {
		return kerrf(kerr.InvalidPartitions, "topic %q has %d partitions; the new count must be larger, not %d", rt.Topic, have, rt.Count)
	}
	if rt.Assignment != nil && len(rt.Assignment) != int(rt.Count-have) {
		return kerrf(kerr.InvalidReplicaAssignment, "give an assignment for each of the %d new partitions", rt.Count-have)
	}
	rf := int16(len(ts.meta.Partitions[0].Replicas))
	var assignment [][]int32
	for _, a := range rt.Assignment {
		assignment = append(assignment, a.Replicas)
	}
	if assignment != nil {
		if err := b.checkAssignment(assignment); err != nil {
			return err
		}
		if len(assignment[0]) != int(rf) {
			return kerrf(kerr.InvalidReplicaAssignment, "topic %q has replication factor %d; give %d replicas per new partition", rt.Topic, rf, rf)
		}
	} else {
		var err error
		if assignment, err = b.assign(have, rt.Count-have, rf); err != nil {
			return err
		}
	}
	if validateOnly {
		return nil
	}
	add := newPartitionsFor(have, assignment)
	return b.parts.addPartitions(rt.Topic, add)
}

package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/metadata"
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
	for _, a := range rt.Assignment {
		for _, r := range a.Replicas {
			if r != b.cfg.NodeID {
				return kerrf(kerr.InvalidReplicaAssignment, "broker %d does not exist; this cluster has only broker %d", r, b.cfg.NodeID)
			}
		}
	}
	if validateOnly {
		return nil
	}
	var add []metadata.Partition
	for i := have; i < rt.Count; i++ {
		add = append(add, b.newPartition(i))
	}
	return b.parts.addPartitions(rt.Topic, add)
}

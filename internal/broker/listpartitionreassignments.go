package broker

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/metadata"
)

// ListPartitionReassignments (key 46), v0: the partitions being reassigned
// (KIP-455), with their replicas (the target's, then those being removed),
// adding and removing replicas, read from this broker's metadata cache.
// Topics null lists every partition being reassigned; otherwise the named
// partitions that are, and unknown topics and partitions are left out, as
// Kafka does.

func (b *Broker) handleListPartitionReassignments(req *kmsg.ListPartitionReassignmentsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	var topics []metadata.Topic
	var only map[string][]int32 // nil: every partition
	if req.Topics == nil {
		topics = b.meta.Topics()
	} else {
		only = make(map[string][]int32, len(req.Topics))
		for _, rt := range req.Topics {
			if _, ok := only[rt.Topic]; !ok {
				if t, ok := b.meta.Topic(rt.Topic); ok {
					topics = append(topics, t)
				}
			}
			only[rt.Topic] = append(only[rt.Topic], rt.Partitions...)
		}
		slices.SortFunc(topics, func(a, b metadata.Topic) int { return strings.Compare(a.Name, b.Name) })
	}
	for _, t := range topics {
		st := kmsg.NewListPartitionReassignmentsResponseTopic()
		st.Topic = t.Name
		for _, p := range t.Partitions {
			if !p.Reassigning() || (only != nil && !slices.Contains(only[t.Name], p.Index)) {
				continue
			}
			sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			sp.Partition = p.Index
			sp.Replicas, sp.AddingReplicas, sp.RemovingReplicas = p.Replicas, p.AddingReplicas, p.RemovingReplicas
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 {
			resp.Topics = append(resp.Topics, st)
		}
	}
	return resp
}

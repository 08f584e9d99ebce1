package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/metadata"
	"github.com/fjord-io/fjord/internal/topicconfig"
)

// CreateTopics (key 19), v0-v7: creates topics with their partition count,
// replication factor (-1 for the broker defaults, v4+), manual assignments and
// config overrides, all validated before anything is written. ValidateOnly
// (v1+) checks without creating. v5+ answers with the resolved configs, v7+
// with the topic id.

func (b *Broker) handleCreateTopics(req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions = -1
		st.ReplicationFactor = -1
		var err error
		if seen[rt.Topic] > 1 {
			err = kerrf(kerr.InvalidRequest, "topic %q appears more than once in the request", rt.Topic)
		} else {
			err = b.createTopic(req, rt, &st)
		}
		if err != nil {
			st.ErrorCode = errorCode(err)
			st.ErrorMessage = errorMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (b *Broker) createTopic(req *kmsg.CreateTopicsRequest, rt kmsg.CreateTopicsRequestTopic, st *kmsg.CreateTopicsResponseTopic) error {
	if err := metadata.ValidateTopicName(rt.Topic); err != nil {
		return err
	}
	if isInternalTopic(rt.Topic) {
		return kerrf(kerr.InvalidRequest, "%s is an internal topic the broker creates itself", rt.Topic)
	}
	if b.parts.topic(rt.Topic) != nil {
		return kerrf(kerr.TopicAlreadyExists, "topic %q already exists", rt.Topic)
	}
	n, rf := rt.NumPartitions, rt.ReplicationFactor
	var assignment [][]int32
	if len(rt.ReplicaAssignment) > 0 {
		if n != -1 || rf != -1 {
			return kerrf(kerr.InvalidRequest, "give either a replica assignment or numPartitions and replicationFactor, not both")
		}
		n, rf = int32(len(rt.ReplicaAssignment)), int16(len(rt.ReplicaAssignment[0].Replicas))
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) {
				return kerrf(kerr.InvalidReplicaAssignment, "assignments must cover partitions 0..%d in order", n-1)
			}
			assignment = append(assignment, a.Replicas)
		}
		if err := b.checkAssignment(assignment); err != nil {
			return err
		}
	}
	if n == -1 {
		n = b.settings.numPartitions
	}
	if rf == -1 {
		rf = b.settings.defaultReplication
	}
	if n <= 0 {
		return kerrf(kerr.InvalidPartitions, "number of partitions must be at least 1, not %d", n)
	}
	if rf <= 0 {
		return kerrf(kerr.InvalidReplicationFactor, "replication factor must be at least 1, not %d", rf)
	}
	if assignment == nil {
		var err error
		if assignment, err = b.assign(0, n, rf); err != nil {
			return err
		}
	}
	configs := make(map[string]string, len(rt.Configs))
	for _, c := range rt.Configs {
		if c.Value == nil {
			continue
		}
		configs[c.Name] = *c.Value
	}
	if err := topicconfig.ValidateAll(configs); err != nil {
		return err
	}
	t := metadata.Topic{Name: rt.Topic, Configs: configs, Partitions: newPartitionsFor(0, assignment)}
	if !req.ValidateOnly {
		ts, err := b.parts.createTopic(t)
		if err != nil {
			return err
		}
		t = ts.meta
		st.TopicID = t.ID
	}
	st.NumPartitions = n
	st.ReplicationFactor = rf
	for _, v := range b.parts.resolve(configs).All() {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name = v.Def.Name
		val := v.Value
		c.Value = &val
		c.Source = int8(v.Source)
		st.Configs = append(st.Configs, c)
	}
	return nil
}

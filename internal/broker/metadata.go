package broker

import (
	"errors"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/metadata"
)

// Metadata (key 3), v0-v12: brokers, cluster id, controller, and topics with
// their partitions' leaders, epochs, replicas and ISR. A null topic list (or
// an empty one at v0) means every topic. Unknown topics are created when
// auto.create.topics.enable is set and the request allows it (v4+), as Kafka
// does.

// authorizedOpsOmitted is Kafka's value for "authorized operations not
// requested".
const authorizedOpsOmitted = -2147483648

func (b *Broker) handleMetadata(req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = b.metadataBrokers()
	clusterID := b.meta.ClusterID()
	resp.ClusterID = &clusterID
	resp.ControllerID = b.meta.Controller()
	resp.AuthorizedOperations = authorizedOpsOmitted

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, ts := range b.parts.all() {
			resp.Topics = append(resp.Topics, metadataTopic(ts.meta))
		}
		return resp
	}
	allowCreate := b.settings.autoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var ts *topicState
		switch {
		case rt.Topic != nil:
			ts = b.parts.topic(*rt.Topic)
			if ts == nil && allowCreate {
				ts, _ = b.autoCreate(*rt.Topic)
			}
		case rt.TopicID != uuid.Nil:
			ts = b.parts.topicByID(rt.TopicID)
		}
		if ts == nil {
			t := kmsg.NewMetadataResponseTopic()
			t.Topic = rt.Topic
			t.TopicID = rt.TopicID
			t.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if rt.Topic == nil {
				t.ErrorCode = kerr.UnknownTopicID.Code
			} else if metadata.ValidateTopicName(*rt.Topic) != nil {
				t.ErrorCode = kerr.InvalidTopicException.Code
			}
			t.AuthorizedOperations = authorizedOpsOmitted
			resp.Topics = append(resp.Topics, t)
			continue
		}
		resp.Topics = append(resp.Topics, metadataTopic(ts.meta))
	}
	return resp
}

// autoCreate creates a topic with the broker's defaults for a Metadata
// request. A concurrent create of the same name is not an error.
func (b *Broker) autoCreate(name string) (*topicState, error) {
	if metadata.ValidateTopicName(name) != nil || isInternalTopic(name) {
		return nil, metadata.ErrInvalidTopic
	}
	t, err := b.newTopic(name, b.settings.numPartitions, b.settings.defaultReplication, nil)
	if err != nil {
		b.log.Warn("auto-create topic failed", "topic", name, "err", err)
		return nil, err
	}
	ts, err := b.parts.createTopic(t)
	if errors.Is(err, metadata.ErrTopicExists) {
		return b.parts.topic(name), nil
	}
	if err != nil {
		b.log.Warn("auto-create topic failed", "topic", name, "err", err)
	}
	return ts, err
}

func isInternalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}

func (b *Broker) metadataBrokers() []kmsg.MetadataResponseBroker {
	var out []kmsg.MetadataResponseBroker
	for _, mb := range b.meta.Brokers() {
		br := kmsg.NewMetadataResponseBroker()
		br.NodeID = mb.NodeID
		br.Host = mb.Host
		br.Port = mb.Port
		if mb.Rack != "" {
			rack := mb.Rack
			br.Rack = &rack
		}
		out = append(out, br)
	}
	return out
}

func metadataTopic(t metadata.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = t.Internal
	mt.AuthorizedOperations = authorizedOpsOmitted
	for _, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.Index
		mp.Leader = p.Leader
		mp.LeaderEpoch = p.LeaderEpoch
		mp.Replicas = p.Replicas
		mp.ISR = p.ISR
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

package broker

import (
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics (key 20), v0-v6: deletes topics by name, or by topic id (v6+),
// and their logs.

func (b *Broker) handleDeleteTopics(req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   uuid.UUID
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			targets = append(targets, target{name: &n})
		}
	}
	for _, t := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic = t.name
		st.TopicID = t.id
		var err error
		name := ""
		switch {
		case t.name != nil && *t.name != "":
			name = *t.name
		case t.id != uuid.Nil:
			if ts := b.parts.topicByID(t.id); ts != nil {
				name = ts.meta.Name
				st.Topic = &name
			} else {
				err = kerrf(kerr.UnknownTopicID, "no topic has id %s", t.id)
			}
		default:
			err = kerrf(kerr.InvalidRequest, "name a topic or give its id")
		}
		switch {
		case err != nil:
		case !b.settings.deleteTopicEnable:
			err = kerrf(kerr.TopicDeletionDisabled, "topic deletion is disabled (delete.topic.enable=false)")
		case isInternalTopic(name):
			err = kerrf(kerr.InvalidRequest, "%s is an internal topic and cannot be deleted", name)
		default:
			meta, derr := b.parts.deleteTopic(name)
			if err = derr; err == nil {
				st.TopicID = meta.ID
			}
		}
		if err != nil {
			st.ErrorCode = errorCode(err)
			st.ErrorMessage = errorMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

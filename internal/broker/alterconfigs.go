package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/topicconfig"
)

// AlterConfigs (key 33), v0-v2: replaces a topic's whole set of config
// overrides, validated first. Broker properties are static in Fjord for now:
// altering them is refused with a message that says so.

func (b *Broker) handleAlterConfigs(req *kmsg.AlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		configs := make(map[string]string, len(rr.Configs))
		for _, c := range rr.Configs {
			if c.Value != nil {
				configs[c.Name] = *c.Value
			}
		}
		if err := b.alterTopicConfigs(rr.ResourceType, rr.ResourceName, configs, req.ValidateOnly); err != nil {
			sr.ErrorCode, sr.ErrorMessage = errorCode(err), errorMessage(err)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// alterTopicConfigs validates and applies a topic's complete new set of
// overrides.
func (b *Broker) alterTopicConfigs(rtype kmsg.ConfigResourceType, name string, configs map[string]string, validateOnly bool) error {
	switch rtype {
	case resourceTopic:
	case resourceBroker:
		return kerrf(kerr.InvalidRequest, "dynamic broker configs are not supported yet; set them in server.properties")
	default:
		return kerrf(kerr.InvalidRequest, "resource type %d is not supported; use 2 (topic)", rtype)
	}
	if b.parts.topic(name) == nil {
		return kerrf(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	if err := topicconfig.ValidateAll(configs); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	return b.parts.setConfigs(name, configs)
}

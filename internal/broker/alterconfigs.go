package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/topicconfig"
)

// AlterConfigs (key 33), v0-v2: replaces a topic's whole set of config
// overrides, or a broker's (or the cluster default's) whole set of dynamic
// broker configs (brokerconfigs.go), validated first. Other broker configs
// are read-only: altering one is refused with INVALID_REQUEST, as Kafka
// refuses its non-dynamic configs.

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
		var err error
		switch rr.ResourceType {
		case resourceTopic:
			err = b.alterTopicConfigs(rr.ResourceName, configs, req.ValidateOnly)
		case resourceBroker:
			err = b.setBrokerConfigs(rr.ResourceName, configs, req.ValidateOnly)
		default:
			err = kerrf(kerr.InvalidRequest, "resource type %d is not supported; use 2 (topic) or 4 (broker)", rr.ResourceType)
		}
		if err != nil {
			sr.ErrorCode, sr.ErrorMessage = errorCode(err), errorMessage(err)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// alterTopicConfigs validates and applies a topic's complete new set of
// overrides.
func (b *Broker) alterTopicConfigs(name string, configs map[string]string, validateOnly bool) error {
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

package broker

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/topicconfig"
)

// IncrementalAlterConfigs (key 44), v0-v1: changes single topic configs:
// SET, DELETE (back to the default), and APPEND / SUBTRACT for list configs
// (KIP-339); and single dynamic broker configs of a broker or of the
// cluster default, SET and DELETE (brokerconfigs.go).

const (
	opSet      = 0
	opDelete   = 1
	opAppend   = 2
	opSubtract = 3
)

func (b *Broker) handleIncrementalAlterConfigs(req *kmsg.IncrementalAlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		err := b.incrementalAlter(rr, req.ValidateOnly)
		if err != nil {
			sr.ErrorCode, sr.ErrorMessage = errorCode(err), errorMessage(err)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func (b *Broker) incrementalAlter(rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	switch rr.ResourceType {
	case resourceTopic:
	case resourceBroker:
		return b.incrementalAlterBrokerConfigs(rr, validateOnly)
	default:
		return kerrf(kerr.InvalidRequest, "resource type %d is not supported; use 2 (topic) or 4 (broker)", rr.ResourceType)
	}
	ts := b.parts.topic(rr.ResourceName)
	if ts == nil {
		return kerrf(kerr.UnknownTopicOrPartition, "topic %q does not exist", rr.ResourceName)
	}
	configs := make(map[string]string, len(ts.meta.Configs))
	for k, v := range ts.meta.Configs {
		configs[k] = v
	}
	for _, c := range rr.Configs {
		def, ok := topicconfig.Lookup(c.Name)
		if !ok {
			return kerrf(kerr.InvalidConfig, "unknown topic config %q", c.Name)
		}
		val := ""
		if c.Value != nil {
			val = *c.Value
		}
		switch c.Op {
		case opSet:
			configs[c.Name] = val
		case opDelete:
			delete(configs, c.Name)
		case opAppend, opSubtract:
			if def.Type != topicconfig.TypeList {
				return kerrf(kerr.InvalidConfig, "%s is not a list; APPEND and SUBTRACT apply only to list configs", c.Name)
			}
			cur, ok := configs[c.Name]
			if !ok {
				v, _ := ts.cfg.Get(c.Name)
				cur = v.Value
			}
			configs[c.Name] = editList(cur, val, c.Op == opAppend)
		default:
			return kerrf(kerr.InvalidRequest, "unknown operation %d for %s", c.Op, c.Name)
		}
	}
	return b.alterTopicConfigs(rr.ResourceName, configs, validateOnly)
}

// editList appends items not yet present, or removes the given items.
func editList(cur, items string, add bool) string {
	var out []string
	have := map[string]bool{}
	for _, s := range strings.Split(cur, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
			have[s] = true
		}
	}
	for _, s := range strings.Split(items, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
		case add && !have[s]:
			out = append(out, s)
			have[s] = true
		case !add && have[s]:
			for i := range out {
				if out[i] == s {
					out = append(out[:i], out[i+1:]...)
					break
				}
			}
			delete(have, s)
		}
	}
	return strings.Join(out, ",")
}

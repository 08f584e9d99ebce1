package broker

import (
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/metadata"
	"github.com/fjord-io/fjord/internal/topicconfig"
)

// DescribeConfigs (key 32), v0-v4: topic configs resolved over broker
// properties and Kafka's defaults, with their source, synonyms (v1+), type
// and documentation (v3+); this broker's own configs (resource name: its
// id): its properties, read-only, and the dynamic broker configs
// (brokerconfigs.go) with their source; and the cluster-wide dynamic
// defaults that are set (resource name "").

const (
	resourceTopic  = 2
	resourceBroker = 4
)

func (b *Broker) handleDescribeConfigs(req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		want := func(name string) bool {
			if rr.ConfigNames == nil {
				return true
			}
			for _, n := range rr.ConfigNames {
				if n == name {
					return true
				}
			}
			return false
		}
		switch rr.ResourceType {
		case resourceTopic:
			ts := b.parts.topic(rr.ResourceName)
			if ts == nil {
				err := kerrf(kerr.UnknownTopicOrPartition, "topic %q does not exist", rr.ResourceName)
				sr.ErrorCode, sr.ErrorMessage = errorCode(err), errorMessage(err)
				break
			}
			for _, v := range ts.cfg.All() {
				if want(v.Def.Name) {
					sr.Configs = append(sr.Configs, describeTopicConfig(req, v))
				}
			}
		case resourceBroker:
			node, err := b.brokerEntity(rr.ResourceName)
			if err != nil {
				sr.ErrorCode, sr.ErrorMessage = errorCode(err), errorMessage(err)
				break
			}
			if node == metadata.DefaultBrokerConfigs {
				sr.Configs = b.describeDefaultBrokerConfigs(req, want)
				break
			}
			for _, c := range b.brokerConfigs(req) {
				if want(c.Name) {
					if !req.IncludeSynonyms {
						c.ConfigSynonyms = nil
					}
					sr.Configs = append(sr.Configs, c)
				}
			}
		default:
			err := kerrf(kerr.InvalidRequest, "resource type %d is not supported; use 2 (topic) or 4 (broker)", rr.ResourceType)
			sr.ErrorCode, sr.ErrorMessage = errorCode(err), errorMessage(err)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

func describeTopicConfig(req *kmsg.DescribeConfigsRequest, v topicconfig.Value) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name = v.Def.Name
	val := v.Value
	c.Value = &val
	c.Source = kmsg.ConfigSource(v.Source)
	c.IsDefault = v.Source == topicconfig.SourceDefault
	c.ConfigType = kmsg.ConfigType(v.Def.Type)
	if req.IncludeDocumentation {
		doc := v.Def.Doc
		c.Documentation = &doc
	}
	if req.IncludeSynonyms {
		for _, s := range v.Synonyms {
			syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			syn.Name = s.Name
			sv := s.Value
			syn.Value = &sv
			syn.Source = kmsg.ConfigSource(s.Source)
			c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
		}
	}
	return c
}

// brokerConfigs lists this broker's configs: every property set in its
// server.properties, plus the ones the broker reads with their defaults,
// read-only; and the dynamic configs, resolved.
func (b *Broker) brokerConfigs(req *kmsg.DescribeConfigsRequest) []kmsg.DescribeConfigsResponseResourceConfig {
	dynamic := b.describeDynamicBrokerConfigs(req)
	defaults := map[string]string{
		"node.id":                         strconv.Itoa(int(b.cfg.NodeID)),
		"broker.id":                       strconv.Itoa(int(b.cfg.NodeID)),
		"broker.rack":                     b.cfg.Rack,
		"log.dirs":                        b.cfg.DataDir,
		"num.partitions":                  "1",
		"default.replication.factor":      "1",
		"auto.create.topics.enable":       "true",
		"delete.topic.enable":             "true",
		"socket.request.max.bytes":        "104857600",
		"log.retention.check.interval.ms": "300000",
		"log.cleaner.backoff.ms":          "15000",
	}
	for _, d := range topicconfig.Defs() {
		if len(d.BrokerKeys) > 0 {
			defaults[d.BrokerKeys[0].Name] = d.Default
		}
	}
	names := make([]string, 0, len(defaults)+len(dynamic)+len(b.cfg.Props))
	for k := range dynamic {
		defaults[k] = "" // listed, and described from dynamic
	}
	for k := range defaults {
		names = append(names, k)
	}
	for k := range b.cfg.Props {
		if _, ok := defaults[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	out := make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(names))
	for _, n := range names {
		if c, ok := dynamic[n]; ok {
			out = append(out, c)
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name = n
		c.ReadOnly = true
		val, ok := b.cfg.Props[n]
		c.Source = kmsg.ConfigSourceStaticBrokerConfig
		if !ok {
			val = defaults[n]
			c.Source = kmsg.ConfigSourceDefaultConfig
			c.IsDefault = true
		}
		v := val
		c.Value = &v
		syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		syn.Name, syn.Value, syn.Source = n, &v, c.Source
		c.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{syn}
		out = append(out, c)
	}
	return out
}

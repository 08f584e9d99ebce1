package broker

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/metadata"
)

// Dynamic broker configs (KIP-226), as Kafka keeps them: set with
// AlterConfigs or IncrementalAlterConfigs on a BROKER resource, named by a
// broker id (that broker's own configs; only the broker itself accepts
// them, as in Kafka) or empty (the cluster default, Kafka's <default>
// entity). They are stored in the cluster metadata, so every broker sees
// every change through its metadata watch. A broker's value of a dynamic
// config is, in order of precedence: its own dynamic config
// (DYNAMIC_BROKER_CONFIG), the cluster default
// (DYNAMIC_DEFAULT_BROKER_CONFIG), server.properties
// (STATIC_BROKER_CONFIG), Kafka's default (DEFAULT_CONFIG).
//
// Only the replication throttle rates (KIP-73, throttle.go) are dynamic
// for now, with replica.alter.log.dirs.io.max.bytes.per.second, which
// kafka-reassign-partitions sets and clears alongside them (Fjord keeps one
// log directory per broker, so it throttles nothing). Every other broker
// config is read-only: altering one is refused with INVALID_REQUEST, as
// Kafka refuses its non-dynamic configs.

// Names of the dynamic broker configs.
const (
	leaderThrottledRate   = "leader.replication.throttled.rate"
	followerThrottledRate = "follower.replication.throttled.rate"
)

// dynamicBrokerDef describes one dynamic broker config. Every one is a
// long, at least 0, for now.
type dynamicBrokerDef struct {
	name, def, doc string
}

var dynamicBrokerDefs = []dynamicBrokerDef{
	{name: followerThrottledRate, def: strconv.FormatInt(math.MaxInt64, 10),
		doc: "Bytes per second this broker fetches, as a follower, for the replicas listed for it in the topics' follower.replication.throttled.replicas and not in their ISR."},
	{name: leaderThrottledRate, def: strconv.FormatInt(math.MaxInt64, 10),
		doc: "Bytes per second this broker sends, as a leader, to followers outside the ISR of the replicas listed for it in the topics' leader.replication.throttled.replicas."},
	{name: "replica.alter.log.dirs.io.max.bytes.per.second", def: strconv.FormatInt(math.MaxInt64, 10),
		doc: "Bytes per second for moving replicas between log directories; accepted for compatibility: a Fjord broker has one log directory."},
}

func lookupDynamicBrokerDef(name string) (dynamicBrokerDef, bool) {
	i := slices.IndexFunc(dynamicBrokerDefs, func(d dynamicBrokerDef) bool { return d.name == name })
	if i < 0 {
		return dynamicBrokerDef{}, false
	}
	return dynamicBrokerDefs[i], true
}

// brokerConfigStore is what the metadata stores offer for dynamic broker
// configs: node metadata.DefaultBrokerConfigs (-1) is the cluster default.
type brokerConfigStore interface {
	BrokerConfigs(node int32) map[string]string
	SetBrokerConfigs(node int32, configs map[string]string) error
	Version() uint64
}

var (
	_ brokerConfigStore = (*metadata.Local)(nil)
	_ brokerConfigStore = (*metadata.Etcd)(nil)
)

// dynamicStore returns the metadata store as a brokerConfigStore; both
// stores are one.
func (b *Broker) dynamicStore() brokerConfigStore { return b.meta.(brokerConfigStore) }

// brokerEntity resolves a BROKER resource name to the entity it names:
// metadata.DefaultBrokerConfigs for "", else this broker's id. Another
// broker's id is refused, as Kafka refuses it: ask that broker.
func (b *Broker) brokerEntity(name string) (int32, error) {
	if name == "" {
		return metadata.DefaultBrokerConfigs, nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return 0, kerrf(kerr.InvalidRequest, "node id must be an integer, but it is: %q", name)
	}
	if int32(id) != b.cfg.NodeID {
		return 0, kerrf(kerr.InvalidRequest, "unexpected broker id, expected %d or empty string, but received %s", b.cfg.NodeID, name)
	}
	return int32(id), nil
}

// validateBrokerConfigs checks a set of dynamic broker configs: every name
// must be dynamic and every value a long of at least 0. Kafka answers
// INVALID_REQUEST for both (KAFKA-13609).
func validateBrokerConfigs(configs map[string]string) error {
	var static []string
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		if _, ok := lookupDynamicBrokerDef(name); !ok {
			static = append(static, name)
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(configs[name]), 10, 64); err != nil || n < 0 {
			return kerrf(kerr.InvalidRequest, "invalid value %q for configuration %s: must be a long of at least 0", configs[name], name)
		}
	}
	if len(static) > 0 {
		var dyn []string
		for _, d := range dynamicBrokerDefs {
			dyn = append(dyn, d.name)
		}
		return kerrf(kerr.InvalidRequest, "cannot update these configs dynamically: %s (the dynamic broker configs are %s; set the others in server.properties)",
			strings.Join(static, ", "), strings.Join(dyn, ", "))
	}
	return nil
}

// setBrokerConfigs validates and stores the complete new set of dynamic
// configs of the BROKER resource name.
func (b *Broker) setBrokerConfigs(name string, configs map[string]string, validateOnly bool) error {
	node, err := b.brokerEntity(name)
	if err != nil {
		return err
	}
	for k, v := range configs {
		configs[k] = strings.TrimSpace(v)
	}
	if err := validateBrokerConfigs(configs); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	return b.dynamicStore().SetBrokerConfigs(node, configs)
}

// incrementalAlterBrokerConfigs applies SET and DELETE to the dynamic
// configs of a BROKER resource; APPEND and SUBTRACT apply to lists only,
// and no dynamic broker config is a list.
func (b *Broker) incrementalAlterBrokerConfigs(rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	node, err := b.brokerEntity(rr.ResourceName)
	if err != nil {
		return err
	}
	configs := b.dynamicStore().BrokerConfigs(node)
	if configs == nil {
		configs = map[string]string{}
	}
	for _, c := range rr.Configs {
		switch c.Op {
		case opSet:
			val := ""
			if c.Value != nil {
				val = *c.Value
			}
			configs[c.Name] = val
		case opDelete:
			if _, ok := lookupDynamicBrokerDef(c.Name); !ok {
				return validateBrokerConfigs(map[string]string{c.Name: ""})
			}
			delete(configs, c.Name)
		case opAppend, opSubtract:
			return kerrf(kerr.InvalidConfig, "config value append is not allowed for config key: %s (not a list)", c.Name)
		default:
			return kerrf(kerr.InvalidRequest, "unknown operation %d for %s", c.Op, c.Name)
		}
	}
	return b.setBrokerConfigs(rr.ResourceName, configs, validateOnly)
}

// configLayer is one source of a broker config's value.
type configLayer struct {
	value  string
	source kmsg.ConfigSource
}

// dynamicLayers lists the sources of a dynamic config's value, highest
// precedence first; the last is always Kafka's default. perBroker is this
// broker's dynamic configs (nil leaves them out, for the default entity),
// dflt the cluster default's.
func (b *Broker) dynamicLayers(d dynamicBrokerDef, perBroker, dflt map[string]string) []configLayer {
	var out []configLayer
	if v, ok := perBroker[d.name]; ok {
		out = append(out, configLayer{v, kmsg.ConfigSourceDynamicBrokerConfig})
	}
	if v, ok := dflt[d.name]; ok {
		out = append(out, configLayer{v, kmsg.ConfigSourceDynamicDefaultBrokerConfig})
	}
	if v, ok := b.cfg.Props[d.name]; ok {
		out = append(out, configLayer{v, kmsg.ConfigSourceStaticBrokerConfig})
	}
	return append(out, configLayer{d.def, kmsg.ConfigSourceDefaultConfig})
}

// dynamicRate returns this broker's value of a dynamic rate config, in
// bytes per second; math.MaxInt64 means unlimited.
func (b *Broker) dynamicRate(name string) int64 {
	d, _ := lookupDynamicBrokerDef(name)
	st := b.dynamicStore()
	for _, l := range b.dynamicLayers(d, st.BrokerConfigs(b.cfg.NodeID), st.BrokerConfigs(metadata.DefaultBrokerConfigs)) {
		if n, err := strconv.ParseInt(strings.TrimSpace(l.value), 10, 64); err == nil && n >= 0 {
			return n // an invalid server.properties value falls through to the default
		}
	}
	return math.MaxInt64
}

// describeDynamic describes a dynamic config from its layers.
func describeDynamic(d dynamicBrokerDef, layers []configLayer, synonyms, docs bool) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name = d.name
	v := layers[0].value
	c.Value = &v
	c.Source = layers[0].source
	c.IsDefault = c.Source == kmsg.ConfigSourceDefaultConfig
	c.ConfigType = kmsg.ConfigTypeLong
	if docs {
		doc := d.doc
		c.Documentation = &doc
	}
	if synonyms {
		for _, l := range layers {
			syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			sv := l.value
			syn.Name, syn.Value, syn.Source = d.name, &sv, l.source
			c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
		}
	}
	return c
}

// describeDefaultBrokerConfigs describes the cluster default entity (the
// BROKER resource ""): the dynamic default configs that are set, as Kafka
// does.
func (b *Broker) describeDefaultBrokerConfigs(req *kmsg.DescribeConfigsRequest, want func(string) bool) []kmsg.DescribeConfigsResponseResourceConfig {
	dflt := b.dynamicStore().BrokerConfigs(metadata.DefaultBrokerConfigs)
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, d := range dynamicBrokerDefs {
		if _, ok := dflt[d.name]; ok && want(d.name) {
			out = append(out, describeDynamic(d, b.dynamicLayers(d, nil, dflt), req.IncludeSynonyms, req.IncludeDocumentation))
		}
	}
	return out
}

// describeDynamicBrokerConfigs describes this broker's value of every
// dynamic config, by name.
func (b *Broker) describeDynamicBrokerConfigs(req *kmsg.DescribeConfigsRequest) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	st := b.dynamicStore()
	own, dflt := st.BrokerConfigs(b.cfg.NodeID), st.BrokerConfigs(metadata.DefaultBrokerConfigs)
	out := make(map[string]kmsg.DescribeConfigsResponseResourceConfig, len(dynamicBrokerDefs))
	for _, d := range dynamicBrokerDefs {
		out[d.name] = describeDynamic(d, b.dynamicLayers(d, own, dflt), req.IncludeSynonyms, req.IncludeDocumentation)
	}
	return out
}

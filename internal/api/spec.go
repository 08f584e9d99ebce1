package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/fjord-io/fjord/internal/cluster"
)

// toSpec validates a provisioned cluster request and turns it into a Spec.
// prefix is the member path of p in the request ("" or "provisioned.").
// Every member Fjord cannot honour yet is refused with an Unsupported error
// that names it; none is silently dropped.
func toSpec(prefix string, p *provisionedRequest) (cluster.Spec, error) {
	var s cluster.Spec
	f := func(name string) string { return prefix + name }
	if p.BrokerNodeGroupInfo == nil {
		return s, cluster.Invalidf(f("brokerNodeGroupInfo"), "%s is required: give at least clientSubnets and instanceType", f("brokerNodeGroupInfo"))
	}
	if p.KafkaVersion == nil {
		return s, cluster.Invalidf(f("kafkaVersion"), "%s is required; one of %s", f("kafkaVersion"), strings.Join(cluster.KafkaVersions, ", "))
	}
	if p.NumberOfBrokerNodes == nil {
		return s, cluster.Invalidf(f("numberOfBrokerNodes"), "%s is required: a multiple of the number of client subnets", f("numberOfBrokerNodes"))
	}
	b := p.BrokerNodeGroupInfo
	s.KafkaVersion = *p.KafkaVersion
	s.NumberOfBrokerNodes = *p.NumberOfBrokerNodes
	s.ClientSubnets = b.ClientSubnets
	if b.InstanceType != nil {
		s.InstanceType = *b.InstanceType
	}
	bf := func(name string) string { return f("brokerNodeGroupInfo." + name) }
	if b.BrokerAZDistribution != nil && *b.BrokerAZDistribution != "DEFAULT" {
		return s, cluster.Invalidf(bf("brokerAZDistribution"), "%s must be DEFAULT", bf("brokerAZDistribution"))
	}
	if len(b.SecurityGroups) > 0 {
		return s, cluster.Unsupportedf(bf("securityGroups"), "%s is not supported yet: local brokers listen on 127.0.0.1 only; omit it", bf("securityGroups"))
	}
	if len(b.ZoneIds) > 0 {
		return s, cluster.Unsupportedf(bf("zoneIds"), "%s is not supported yet: Fjord places brokers by clientSubnets; omit zoneIds", bf("zoneIds"))
	}
	if si := b.StorageInfo; si != nil && si.EBSStorageInfo != nil {
		if path, on := anyEnabled(si.EBSStorageInfo.ProvisionedThroughput); on {
			n := bf("storageInfo.ebsStorageInfo.provisionedThroughput" + path)
			return s, cluster.Unsupportedf(n, "%s is not supported yet; omit provisionedThroughput", n)
		}
		if v := si.EBSStorageInfo.VolumeSize; v != nil {
			if *v < 1 {
				n := bf("storageInfo.ebsStorageInfo.volumeSize")
				return s, cluster.Invalidf(n, "%s must be between 1 and 16384 GiB, not %d", n, *v)
			}
			s.VolumeSizeGiB = *v
		}
	}
	if ci := b.ConnectivityInfo; ci != nil {
		if ci.PublicAccess != nil && ci.PublicAccess.Type != nil && *ci.PublicAccess.Type != "DISABLED" {
			n := bf("connectivityInfo.publicAccess.type")
			return s, cluster.Unsupportedf(n, "%s %s is not supported yet; public access must be DISABLED", n, *ci.PublicAccess.Type)
		}
		if path, on := anyEnabled(ci.VPCConnectivity); on {
			n := bf("connectivityInfo.vpcConnectivity" + path)
			return s, cluster.Unsupportedf(n, "%s: multi-VPC connectivity is not supported yet; omit vpcConnectivity", n)
		}
		if ci.NetworkType != nil && *ci.NetworkType != "IPV4" {
			n := bf("connectivityInfo.networkType")
			return s, cluster.Unsupportedf(n, "%s %s is not supported yet; use IPV4", n, *ci.NetworkType)
		}
	}
	if len(p.Rebalancing) > 0 && string(p.Rebalancing) != "null" {
		return s, cluster.Unsupportedf(f("rebalancing"), "%s is not supported yet: it applies to Express brokers, which Fjord does not offer", f("rebalancing"))
	}
	if err := checkClientAuthentication(f("clientAuthentication"), p.ClientAuthentication); err != nil {
		return s, err
	}
	s.ClientBroker = "PLAINTEXT"
	if e := p.EncryptionInfo; e != nil {
		if len(e.EncryptionAtRest) > 0 && string(e.EncryptionAtRest) != "null" {
			n := f("encryptionInfo.encryptionAtRest")
			return s, cluster.Unsupportedf(n, "%s is not supported yet: broker data is not encrypted at rest; omit it", n)
		}
		if t := e.EncryptionInTransit; t != nil {
			if t.ClientBroker != nil {
				n := f("encryptionInfo.encryptionInTransit.clientBroker")
				switch *t.ClientBroker {
				case "PLAINTEXT":
				case "TLS", "TLS_PLAINTEXT":
					return s, cluster.Unsupportedf(n, "%s %s is not supported yet: brokers speak PLAINTEXT only; set PLAINTEXT or omit it", n, *t.ClientBroker)
				default:
					return s, cluster.Invalidf(n, "%s must be TLS, TLS_PLAINTEXT or PLAINTEXT, not %q", n, *t.ClientBroker)
				}
			}
			if t.InCluster != nil && *t.InCluster {
				n := f("encryptionInfo.encryptionInTransit.inCluster")
				return s, cluster.Unsupportedf(n, "%s=true is not supported yet: set it to false", n)
			}
		}
	}
	s.EnhancedMonitoring = "DEFAULT"
	if m := p.EnhancedMonitoring; m != nil {
		n := f("enhancedMonitoring")
		switch *m {
		case "DEFAULT":
		case "PER_BROKER", "PER_TOPIC_PER_BROKER", "PER_TOPIC_PER_PARTITION":
			return s, cluster.Unsupportedf(n, "%s %s is not supported yet; use DEFAULT", n, *m)
		default:
			return s, cluster.Invalidf(n, "%s must be DEFAULT, PER_BROKER, PER_TOPIC_PER_BROKER or PER_TOPIC_PER_PARTITION, not %q", n, *m)
		}
	}
	if m := p.OpenMonitoring; m != nil {
		n := f("openMonitoring.prometheus")
		if m.Prometheus == nil {
			return s, cluster.Invalidf(n, "%s is required when openMonitoring is given", n)
		}
		for name, e := range map[string]*exporter{"jmxExporter": m.Prometheus.JMXExporter, "nodeExporter": m.Prometheus.NodeExporter} {
			if e != nil && e.EnabledInBroker != nil && *e.EnabledInBroker {
				return s, cluster.Unsupportedf(n+"."+name, "%s.%s is not supported yet; set enabledInBroker to false or omit it", n, name)
			}
		}
	}
	if path, on := anyEnabled(p.LoggingInfo); on {
		n := f("loggingInfo" + path)
		return s, cluster.Unsupportedf(n, "%s: broker log delivery is not supported yet; broker logs are in DATA_DIR/clusters/<id>/broker-N/broker.log", n)
	}
	s.StorageMode = "LOCAL"
	if m := p.StorageMode; m != nil {
		n := f("storageMode")
		switch *m {
		case "LOCAL":
		case "TIERED":
			return s, cluster.Unsupportedf(n, "%s TIERED is not supported yet; use LOCAL", n)
		default:
			return s, cluster.Invalidf(n, "%s must be LOCAL or TIERED, not %q", n, *m)
		}
	}
	if c := p.ConfigurationInfo; c != nil {
		n := f("configurationInfo")
		if c.ARN == nil || *c.ARN == "" {
			return s, cluster.Invalidf(n+".arn", "%s.arn is required", n)
		}
		if c.Revision == nil {
			return s, cluster.Invalidf(n+".revision", "%s.revision is required", n)
		}
		s.Configuration = &cluster.Configuration{ARN: *c.ARN, Revision: *c.Revision}
	}
	return s, s.Validate(prefix)
}

func checkClientAuthentication(field string, a *clientAuthentication) error {
	if a == nil {
		return nil
	}
	on := func(e *enabled) bool { return e != nil && e.Enabled != nil && *e.Enabled }
	if a.SASL != nil {
		if on(a.SASL.SCRAM) {
			return cluster.Unsupportedf(field+".sasl.scram", "%s.sasl.scram is not supported yet; use unauthenticated access", field)
		}
		if on(a.SASL.IAM) {
			return cluster.Unsupportedf(field+".sasl.iam", "%s.sasl.iam is not supported yet; use unauthenticated access", field)
		}
	}
	if a.TLS != nil && ((a.TLS.Enabled != nil && *a.TLS.Enabled) || len(a.TLS.CertificateAuthorityArnList) > 0) {
		return cluster.Unsupportedf(field+".tls", "%s.tls is not supported yet; use unauthenticated access", field)
	}
	if u := a.Unauthenticated; u != nil && u.Enabled != nil && !*u.Enabled {
		return cluster.Unsupportedf(field+".unauthenticated", "%s.unauthenticated.enabled=false leaves no way in: Fjord brokers support only unauthenticated access so far", field)
	}
	return nil
}

// anyEnabled reports whether the JSON value raw sets any "enabled" or
// "enabledInBroker" member to true, and where.
func anyEnabled(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return "", true
	}
	return walkEnabled("", v)
}

func walkEnabled(path string, v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", false
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if (k == "enabled" || k == "enabledInBroker") && m[k] == true {
			return fmt.Sprintf("%s.%s", path, k), true
		}
		if p, on := walkEnabled(path+"."+k, m[k]); on {
			return p, true
		}
	}
	return "", false
}

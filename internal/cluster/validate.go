package cluster

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// KafkaVersions are the Apache Kafka versions Fjord offers, oldest first,
// spelled as MSK spells them. Versions ending in ".kraft" run in KRaft
// metadata mode; Fjord brokers never need ZooKeeper, so no cluster has a
// zookeeperConnectString.
var KafkaVersions = []string{
	"3.6.0", "3.7.x", "3.7.x.kraft", "3.8.x", "3.8.x.kraft", "3.9.x", "3.9.x.kraft", "4.0.x.kraft", "4.1.x.kraft",
}

// DefaultKafkaVersion is the version a client gets when it does not choose.
const DefaultKafkaVersion = "3.9.x.kraft"

// InstanceTypes are the broker instance types Fjord accepts. On the local
// provider every type runs the same process; the type is recorded and shown.
var InstanceTypes = []string{
	"kafka.t3.small",
	"kafka.m5.large", "kafka.m5.xlarge", "kafka.m5.2xlarge", "kafka.m5.4xlarge", "kafka.m5.8xlarge",
	"kafka.m5.12xlarge", "kafka.m5.16xlarge", "kafka.m5.24xlarge",
	"kafka.m7g.large", "kafka.m7g.xlarge", "kafka.m7g.2xlarge", "kafka.m7g.4xlarge", "kafka.m7g.8xlarge",
	"kafka.m7g.12xlarge", "kafka.m7g.16xlarge",
}

// DefaultInstanceType is the instance type a client gets when it does not choose.
const DefaultInstanceType = "kafka.m5.large"

// MaxBrokerNodes is the model's limit on numberOfBrokerNodes.
const MaxBrokerNodes = 15

// MaxSubnets is the largest number of client subnets (zones) a cluster may use.
const MaxSubnets = 6

var namePattern = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z-]*$`)

// CheckName checks a cluster or configuration name: 1 to 64 letters, digits
// and hyphens, starting with a letter or digit.
func CheckName(field, name string) error {
	switch {
	case name == "":
		return Invalidf(field, "%s is required", field)
	case len(name) > 64:
		return Invalidf(field, "%s %q is %d characters long; the limit is 64", field, name, len(name))
	case !namePattern.MatchString(name):
		return Invalidf(field, "%s %q may contain only letters, digits and hyphens, and must start with a letter or digit", field, name)
	}
	return nil
}

// CheckKafkaVersion checks that v is one of KafkaVersions.
func CheckKafkaVersion(field, v string) error {
	if v == "" {
		return Invalidf(field, "%s is required; one of %s", field, strings.Join(KafkaVersions, ", "))
	}
	if !slices.Contains(KafkaVersions, v) {
		return Unsupportedf(field, "%s %q is not supported; use one of %s", field, v, strings.Join(KafkaVersions, ", "))
	}
	return nil
}

// CompatibleVersions returns the versions a cluster running v can be
// upgraded to: every later version in the same metadata mode.
func CompatibleVersions(v string) []string {
	i := slices.Index(KafkaVersions, v)
	if i < 0 {
		return nil
	}
	kraft := strings.HasSuffix(v, ".kraft")
	var out []string
	for _, t := range KafkaVersions[i+1:] {
		if strings.HasSuffix(t, ".kraft") == kraft {
			out = append(out, t)
		}
	}
	return out
}

// Validate checks the parts of s that do not depend on other resources. Field
// names in its errors are relative to prefix ("" for CreateCluster,
// "provisioned." for CreateClusterV2).
func (s *Spec) Validate(prefix string) error {
	if err := CheckKafkaVersion(prefix+"kafkaVersion", s.KafkaVersion); err != nil {
		return err
	}
	subnets := prefix + "brokerNodeGroupInfo.clientSubnets"
	if len(s.ClientSubnets) == 0 {
		return Invalidf(subnets, "%s is required: list the subnets (zones) to spread brokers over", subnets)
	}
	if len(s.ClientSubnets) > MaxSubnets {
		return Invalidf(subnets, "%s has %d subnets; at most %d are allowed", subnets, len(s.ClientSubnets), MaxSubnets)
	}
	seen := map[string]bool{}
	for _, sn := range s.ClientSubnets {
		if strings.TrimSpace(sn) == "" {
			return Invalidf(subnets, "%s contains an empty subnet ID", subnets)
		}
		if seen[sn] {
			return Invalidf(subnets, "%s lists %q twice; each subnet is one zone", subnets, sn)
		}
		seen[sn] = true
	}
	n := prefix + "numberOfBrokerNodes"
	if s.NumberOfBrokerNodes < 1 || s.NumberOfBrokerNodes > MaxBrokerNodes {
		return Invalidf(n, "%s must be between 1 and %d, not %d", n, MaxBrokerNodes, s.NumberOfBrokerNodes)
	}
	if s.NumberOfBrokerNodes%len(s.ClientSubnets) != 0 {
		return Invalidf(n, "%s (%d) must be a multiple of the number of client subnets (%d): brokers are spread evenly over the subnets' zones; use %s",
			n, s.NumberOfBrokerNodes, len(s.ClientSubnets), multiples(len(s.ClientSubnets)))
	}
	it := prefix + "brokerNodeGroupInfo.instanceType"
	switch {
	case s.InstanceType == "":
		return Invalidf(it, "%s is required, for example %s", it, DefaultInstanceType)
	case strings.HasPrefix(s.InstanceType, "express."):
		return Unsupportedf(it, "%s %s: Express brokers are not supported yet; use a kafka.* type such as %s", it, s.InstanceType, DefaultInstanceType)
	case !slices.Contains(InstanceTypes, s.InstanceType):
		return Invalidf(it, "%s %q is not a broker instance type; use one of %s", it, s.InstanceType, strings.Join(InstanceTypes, ", "))
	}
	if s.VolumeSizeGiB < 0 || s.VolumeSizeGiB > 16384 {
		vs := prefix + "brokerNodeGroupInfo.storageInfo.ebsStorageInfo.volumeSize"
		return Invalidf(vs, "%s must be between 1 and 16384 GiB, not %d", vs, s.VolumeSizeGiB)
	}
	return nil
}

func multiples(k int) string {
	var m []string
	for i := k; i <= MaxBrokerNodes && len(m) < 3; i += k {
		m = append(m, fmt.Sprint(i))
	}
	return strings.Join(m, ", ") + " ..."
}

// Placement returns the subnet and zone of broker id (1-based) of a cluster
// spread round-robin over subnets in region. Zone names follow AWS zone IDs:
// subnet i of us-east-1 is zone "use1-az{i+1}".
func Placement(region string, subnets []string, id int) (subnet, zone string) {
	i := (id - 1) % len(subnets)
	return subnets[i], fmt.Sprintf("%s-az%d", regionCode(region), i+1)
}

// regionCode shortens a region name the way AWS zone IDs do:
// "us-east-1" becomes "use1", "ap-southeast-2" becomes "apse2".
func regionCode(region string) string {
	parts := strings.Split(region, "-")
	if len(parts) < 3 {
		return region
	}
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1 : len(parts)-1] {
		switch p {
		case "east", "west", "north", "south", "central":
			b.WriteByte(p[0])
		case "northeast", "northwest", "southeast", "southwest":
			b.WriteByte(p[0])
			b.WriteByte(p[5])
		default:
			b.WriteString(p)
		}
	}
	b.WriteString(parts[len(parts)-1])
	return b.String()
}

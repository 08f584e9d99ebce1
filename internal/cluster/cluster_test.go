package cluster_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-io/fjord/internal/cluster"
)

func TestParseARN(t *testing.T) {
	tests := []struct {
		resource, in string
		want         cluster.ARN
		ok           bool
	}{
		{cluster.ResourceCluster, "arn:aws:kafka:us-east-1:123456789012:cluster/demo/abcd-1", cluster.ARN{Partition: "aws", Region: "us-east-1", Account: "123456789012", Resource: "cluster", Name: "demo", ID: "abcd-1"}, true},
		{cluster.ResourceOperation, "arn:aws:kafka:us-east-1:123456789012:cluster-operation/demo/abcd-1/op", cluster.ARN{Partition: "aws", Region: "us-east-1", Account: "123456789012", Resource: "cluster-operation", Name: "demo", ID: "abcd-1", Sub: "op"}, true},
		{cluster.ResourceCluster, "arn:aws:kafka:us-east-1:123456789012:configuration/demo/abcd-1", cluster.ARN{}, false},
		{cluster.ResourceCluster, "arn:aws:s3:us-east-1:123456789012:cluster/demo/abcd-1", cluster.ARN{}, false},
		{cluster.ResourceCluster, "arn:aws:kafka:us-east-1:123456789012:cluster/demo", cluster.ARN{}, false},
		{cluster.ResourceCluster, "arn:aws:kafka:us-east-1:123456789012:cluster//abcd-1", cluster.ARN{}, false},
		{cluster.ResourceCluster, "demo", cluster.ARN{}, false},
	}
	for _, tt := range tests {
		got, err := cluster.ParseARN("arn", tt.resource, tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseARN(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if !tt.ok {
			var ce *cluster.Error
			if !errors.As(err, &ce) || ce.Kind != cluster.Invalid || ce.Field != "arn" {
				t.Errorf("ParseARN(%q) error = %#v, want an Invalid error about arn", tt.in, err)
			}
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseARN(%q) (-want +got):\n%s", tt.in, diff)
		}
		if got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
	a := cluster.ARN{ID: cluster.NewID()}
	if len(a.UUID()) != 36 {
		t.Errorf("UUID() of %q = %q", a.ID, a.UUID())
	}
}

func TestSpecValidate(t *testing.T) {
	good := func() cluster.Spec {
		return cluster.Spec{KafkaVersion: "3.9.x", NumberOfBrokerNodes: 6, InstanceType: "kafka.m5.large", ClientSubnets: []string{"a", "b", "c"}}
	}
	tests := []struct {
		name   string
		change func(*cluster.Spec)
		field  string // "" means valid
		kind   cluster.Kind
		msg    string
	}{
		{"valid", func(*cluster.Spec) {}, "", 0, ""},
		{"not a multiple", func(s *cluster.Spec) { s.NumberOfBrokerNodes = 4 }, "numberOfBrokerNodes", cluster.Invalid, "use 3, 6, 9"},
		{"zero brokers", func(s *cluster.Spec) { s.NumberOfBrokerNodes = 0 }, "numberOfBrokerNodes", cluster.Invalid, "between 1 and 15"},
		{"too many brokers", func(s *cluster.Spec) { s.NumberOfBrokerNodes = 18 }, "numberOfBrokerNodes", cluster.Invalid, "between 1 and 15"},
		{"no subnets", func(s *cluster.Spec) { s.ClientSubnets = nil }, "brokerNodeGroupInfo.clientSubnets", cluster.Invalid, "required"},
		{"duplicate subnet", func(s *cluster.Spec) { s.ClientSubnets = []string{"a", "a", "b"} }, "brokerNodeGroupInfo.clientSubnets", cluster.Invalid, "twice"},
		{"unknown version", func(s *cluster.Spec) { s.KafkaVersion = "0.8" }, "kafkaVersion", cluster.Unsupported, "3.9.x"},
		{"express", func(s *cluster.Spec) { s.InstanceType = "express.m7g.large" }, "brokerNodeGroupInfo.instanceType", cluster.Unsupported, "Express"},
		{"bad instance", func(s *cluster.Spec) { s.InstanceType = "m5.large" }, "brokerNodeGroupInfo.instanceType", cluster.Invalid, "kafka.m5.large"},
	}
	for _, tt := range tests {
		s := good()
		tt.change(&s)
		err := s.Validate("")
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: Validate = %v", tt.name, err)
			}
			continue
		}
		var ce *cluster.Error
		if !errors.As(err, &ce) || ce.Field != tt.field || ce.Kind != tt.kind || !strings.Contains(ce.Message, tt.msg) {
			t.Errorf("%s: Validate = %#v, want %v error on %s mentioning %q", tt.name, err, tt.kind, tt.field, tt.msg)
		}
	}
}

func TestPlacement(t *testing.T) {
	subnets := []string{"s1", "s2", "s3"}
	var got []string
	for id := 1; id <= 6; id++ {
		sn, zone := cluster.Placement("ap-southeast-2", subnets, id)
		got = append(got, sn+"/"+zone)
	}
	want := []string{"s1/apse2-az1", "s2/apse2-az2", "s3/apse2-az3", "s1/apse2-az1", "s2/apse2-az2", "s3/apse2-az3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("placement (-want +got):\n%s", diff)
	}
}

func TestStateAdmit(t *testing.T) {
	if err := cluster.Active.Admit(cluster.CallUpdate); err != nil {
		t.Errorf("ACTIVE refuses updates: %v", err)
	}
	if err := cluster.Deleting.Admit(cluster.CallDelete); err == nil || err.Error() != "You can't delete cluster in DELETING state. The cluster is being deleted." {
		t.Errorf("DELETING admits delete: %v", err)
	}
	if err := cluster.Failed.Admit(cluster.CallDelete); err != nil {
		t.Errorf("FAILED refuses delete: %v", err)
	}
	for _, s := range []cluster.State{cluster.Creating, cluster.Failed, cluster.Updating, cluster.Healing} {
		if s.Allows(cluster.CallUpdate) {
			t.Errorf("%s allows updates", s)
		}
	}
	if cluster.Creating.Allows(cluster.CallBootstrap) || !cluster.Updating.Allows(cluster.CallBootstrap) {
		t.Error("bootstrap brokers must be available exactly while data flows")
	}
}

func TestParseProperties(t *testing.T) {
	keys, err := cluster.ParseProperties("serverProperties", []byte("# comment\n\nnum.partitions=3\nlog.retention.hours: 24\n"))
	if err != nil || !cmp.Equal(keys, []string{"num.partitions", "log.retention.hours"}) {
		t.Errorf("ParseProperties = %v, %v", keys, err)
	}
	for _, bad := range []string{"just words\n", "=value\n", "a=1\na=2\n"} {
		if _, err := cluster.ParseProperties("serverProperties", []byte(bad)); err == nil {
			t.Errorf("ParseProperties(%q) accepted", bad)
		}
	}
}

func TestCompatibleVersions(t *testing.T) {
	got := cluster.CompatibleVersions("3.8.x.kraft")
	if !cmp.Equal(got, []string{"3.9.x.kraft", "4.0.x.kraft", "4.1.x.kraft"}) {
		t.Errorf("CompatibleVersions(3.8.x.kraft) = %v", got)
	}
	if got := cluster.CompatibleVersions("3.9.x"); len(got) != 0 {
		t.Errorf("CompatibleVersions(3.9.x) = %v, want none (ZooKeeper mode ends at 3.9)", got)
	}
}

package mskcli

import (
	"context"
	"flag"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafka"
	"github.com/aws/aws-sdk-go-v2/service/kafka/types"

	"github.com/fjord-io/fjord/internal/cluster"
)

// defaultSubnets spreads n brokers over as many zones as divide n, up to 3.
func defaultSubnets(n int) []string {
	k := 1
	switch {
	case n%3 == 0:
		k = 3
	case n%2 == 0:
		k = 2
	}
	out := make([]string, k)
	for i := range out {
		out[i] = fmt.Sprintf("subnet-%d", i+1)
	}
	return out
}

func defineCreateCluster(fs *flag.FlagSet) func(context.Context, *cli) error {
	name := fs.String("cluster-name", "", "name of the cluster (required)")
	brokers := fs.Int("number-of-broker-nodes", 0, "number of brokers, a multiple of the number of subnets (required)")
	version := fs.String("kafka-version", cluster.DefaultKafkaVersion, "Apache Kafka version")
	groupInfo := fs.String("broker-node-group-info", "", `BrokerNodeGroupInfo JSON, e.g. {"InstanceType":"kafka.m5.large","ClientSubnets":["subnet-1","subnet-2","subnet-3"]}`)
	var subnets listFlag
	fs.Var(&subnets, "client-subnets", "client subnets (zones), comma-separated; default: 3, 2 or 1 subnets, whichever divides the broker count")
	instance := fs.String("instance-type", cluster.DefaultInstanceType, "broker instance type")
	configInfo := fs.String("configuration-info", "", `ConfigurationInfo JSON: {"Arn":"...","Revision":1}`)
	tags := fs.String("tags", "", `tags, as {"k":"v"} or k=v,k2=v2`)
	encryption := fs.String("encryption-info", "", "EncryptionInfo JSON")
	clientAuth := fs.String("client-authentication", "", "ClientAuthentication JSON")
	monitoring := fs.String("enhanced-monitoring", "", "DEFAULT, PER_BROKER, PER_TOPIC_PER_BROKER or PER_TOPIC_PER_PARTITION")
	openMonitoring := fs.String("open-monitoring", "", "OpenMonitoringInfo JSON")
	logging := fs.String("logging-info", "", "LoggingInfo JSON")
	storageMode := fs.String("storage-mode", "", "LOCAL or TIERED")
	wait := fs.Bool("wait", false, "show progress until the cluster is ACTIVE")
	return func(ctx context.Context, c *cli) error {
		if *name == "" {
			return fmt.Errorf("--cluster-name is required")
		}
		if *brokers <= 0 {
			return fmt.Errorf("--number-of-broker-nodes is required: a positive multiple of the number of subnets")
		}
		in := &kafka.CreateClusterInput{ClusterName: name, KafkaVersion: version, NumberOfBrokerNodes: aws.Int32(int32(*brokers))}
		if *groupInfo != "" {
			in.BrokerNodeGroupInfo = &types.BrokerNodeGroupInfo{}
			if err := jsonParam("broker-node-group-info", *groupInfo, in.BrokerNodeGroupInfo); err != nil {
				return err
			}
		} else {
			if len(subnets) == 0 {
				subnets = defaultSubnets(*brokers)
			}
			in.BrokerNodeGroupInfo = &types.BrokerNodeGroupInfo{ClientSubnets: subnets, InstanceType: instance}
		}
		for _, p := range []struct {
			flag, val string
			dst       any
		}{
			{"configuration-info", *configInfo, &in.ConfigurationInfo},
			{"encryption-info", *encryption, &in.EncryptionInfo},
			{"client-authentication", *clientAuth, &in.ClientAuthentication},
			{"open-monitoring", *openMonitoring, &in.OpenMonitoring},
			{"logging-info", *logging, &in.LoggingInfo},
		} {
			if p.val != "" {
				if err := jsonParam(p.flag, p.val, p.dst); err != nil {
					return err
				}
			}
		}
		if *tags != "" {
			t, err := tagsParam(*tags)
			if err != nil {
				return err
			}
			in.Tags = t
		}
		in.EnhancedMonitoring = types.EnhancedMonitoring(*monitoring)
		in.StorageMode = types.StorageMode(*storageMode)
		out, err := c.client.CreateCluster(ctx, in)
		if err != nil {
			return err
		}
		if err := c.render(out); err != nil {
			return err
		}
		if *wait {
			return c.waitActive(ctx, *out.ClusterArn)
		}
		return nil
	}
}

func defineCreateClusterV2(fs *flag.FlagSet) func(context.Context, *cli) error {
	name := fs.String("cluster-name", "", "name of the cluster (required)")
	provisioned := fs.String("provisioned", "", "ProvisionedRequest JSON (required unless --serverless)")
	serverless := fs.String("serverless", "", "ServerlessRequest JSON")
	tags := fs.String("tags", "", `tags, as {"k":"v"} or k=v,k2=v2`)
	wait := fs.Bool("wait", false, "show progress until the cluster is ACTIVE")
	return func(ctx context.Context, c *cli) error {
		if *name == "" {
			return fmt.Errorf("--cluster-name is required")
		}
		in := &kafka.CreateClusterV2Input{ClusterName: name}
		if *provisioned != "" {
			in.Provisioned = &types.ProvisionedRequest{}
			if err := jsonParam("provisioned", *provisioned, in.Provisioned); err != nil {
				return err
			}
		}
		if *serverless != "" {
			in.Serverless = &types.ServerlessRequest{}
			if err := jsonParam("serverless", *serverless, in.Serverless); err != nil {
				return err
			}
		}
		if *tags != "" {
			t, err := tagsParam(*tags)
			if err != nil {
				return err
			}
			in.Tags = t
		}
		out, err := c.client.CreateClusterV2(ctx, in)
		if err != nil {
			return err
		}
		if err := c.render(out); err != nil {
			return err
		}
		if *wait {
			return c.waitActive(ctx, *out.ClusterArn)
		}
		return nil
	}
}

func defineDeleteCluster(fs *flag.FlagSet) func(context.Context, *cli) error {
	arn := fs.String("cluster-arn", "", "ARN of the cluster (required)")
	version := fs.String("current-version", "", "the cluster's currentVersion, to refuse the delete if it changed")
	wait := fs.Bool("wait", false, "show progress until the cluster is gone")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"cluster-arn": *arn}); err != nil {
			return err
		}
		in := &kafka.DeleteClusterInput{ClusterArn: arn}
		if *version != "" {
			in.CurrentVersion = version
		}
		out, err := c.client.DeleteCluster(ctx, in)
		if err != nil {
			return err
		}
		if err := c.render(out); err != nil {
			return err
		}
		if *wait {
			return c.waitDeleted(ctx, *arn)
		}
		return nil
	}
}

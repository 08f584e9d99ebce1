package mskcli

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafka"
	"github.com/aws/aws-sdk-go-v2/service/kafka/types"
)

// verb is one `fjord kafka` command.
type verb struct {
	help string
	// define declares the verb's flags and returns the function that runs it
	// once they are parsed.
	define func(fs *flag.FlagSet) func(ctx context.Context, c *cli) error
}

func (v verb) run(ctx context.Context, c *cli, name string, args []string) error {
	fs := flag.NewFlagSet("fjord kafka "+name, flag.ContinueOnError)
	fs.SetOutput(c.errw)
	do := v.define(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %v", name, fs.Args())
	}
	return do(ctx, c)
}

// required returns an error naming the first empty flag.
func required(flags map[string]string) error {
	for name, v := range flags {
		if v == "" {
			return fmt.Errorf("--%s is required", name)
		}
	}
	return nil
}

// pageFlags declares --max-results and --next-token. Without --max-results
// a list verb fetches every page, as the AWS CLI does.
type pageFlags struct {
	max  int
	next string
}

func (p *pageFlags) define(fs *flag.FlagSet) {
	fs.IntVar(&p.max, "max-results", 0, "page size (1-100); with it only one page is fetched")
	fs.StringVar(&p.next, "next-token", "", "token from a previous page")
}

func (p *pageFlags) input() (*int32, *string) {
	var m *int32
	if p.max > 0 {
		m = aws.Int32(int32(p.max))
	}
	var n *string
	if p.next != "" {
		n = aws.String(p.next)
	}
	return m, n
}

// all reports whether every page should be fetched.
func (p *pageFlags) all() bool { return p.max == 0 }

// pager is what the SDK's paginator of every list operation provides.
type pager[O any] interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*kafka.Options)) (O, error)
}

// renderPages renders the one page asked for with --max-results, or else
// every page, each merged into all by add.
func renderPages[O any](ctx context.Context, c *cli, p *pageFlags, one func() (O, error), pg pager[O], all O, add func(all, page O)) error {
	if !p.all() {
		out, err := one()
		if err != nil {
			return err
		}
		return c.render(out)
	}
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return err
		}
		add(all, page)
	}
	return c.render(all)
}

var verbs = map[string]verb{
	"create-cluster":                  {"create a provisioned cluster (only a name and a broker count are required)", defineCreateCluster},
	"create-cluster-v2":               {"create a cluster from a provisioned (or serverless) description", defineCreateClusterV2},
	"describe-cluster":                {"describe a cluster", defineDescribeCluster},
	"describe-cluster-v2":             {"describe a cluster (V2 shape)", defineDescribeClusterV2},
	"list-clusters":                   {"list clusters", defineListClusters},
	"list-clusters-v2":                {"list clusters (V2 shape)", defineListClustersV2},
	"delete-cluster":                  {"delete a cluster", defineDeleteCluster},
	"get-bootstrap-brokers":           {"print a cluster's bootstrap broker string", defineGetBootstrapBrokers},
	"list-nodes":                      {"list a cluster's brokers", defineListNodes},
	"list-cluster-operations":         {"list a cluster's operations", defineListClusterOperations},
	"list-cluster-operations-v2":      {"list a cluster's operations (V2 shape)", defineListClusterOperationsV2},
	"describe-cluster-operation":      {"describe a cluster operation", defineDescribeClusterOperation},
	"describe-cluster-operation-v2":   {"describe a cluster operation (V2 shape)", defineDescribeClusterOperationV2},
	"create-configuration":            {"create a configuration from a server.properties file", defineCreateConfiguration},
	"describe-configuration":          {"describe a configuration", defineDescribeConfiguration},
	"list-configurations":             {"list configurations", defineListConfigurations},
	"update-configuration":            {"add a revision to a configuration", defineUpdateConfiguration},
	"delete-configuration":            {"delete a configuration no cluster uses", defineDeleteConfiguration},
	"list-configuration-revisions":    {"list a configuration's revisions", defineListConfigurationRevisions},
	"describe-configuration-revision": {"describe one revision, with its server.properties", defineDescribeConfigurationRevision},
	"tag-resource":                    {"add tags to a cluster or configuration", defineTagResource},
	"untag-resource":                  {"remove tags from a cluster or configuration", defineUntagResource},
	"list-tags-for-resource":          {"list the tags of a cluster or configuration", defineListTagsForResource},
	"list-kafka-versions":             {"list the Kafka versions clusters can run", defineListKafkaVersions},
	"get-compatible-kafka-versions":   {"list the versions a cluster (or each version) can move to", defineGetCompatibleKafkaVersions},
}

func defineDescribeCluster(fs *flag.FlagSet) func(context.Context, *cli) error {
	arn := fs.String("cluster-arn", "", "ARN of the cluster (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"cluster-arn": *arn}); err != nil {
			return err
		}
		out, err := c.client.DescribeCluster(ctx, &kafka.DescribeClusterInput{ClusterArn: arn})
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func defineDescribeClusterV2(fs *flag.FlagSet) func(context.Context, *cli) error {
	arn := fs.String("cluster-arn", "", "ARN of the cluster (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"cluster-arn": *arn}); err != nil {
			return err
		}
		out, err := c.client.DescribeClusterV2(ctx, &kafka.DescribeClusterV2Input{ClusterArn: arn})
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func defineListClusters(fs *flag.FlagSet) func(context.Context, *cli) error {
	var p pageFlags
	p.define(fs)
	filter := fs.String("cluster-name-filter", "", "only clusters whose name starts with this")
	return func(ctx context.Context, c *cli) error {
		max, next := p.input()
		in := &kafka.ListClustersInput{MaxResults: max, NextToken: next}
		if *filter != "" {
			in.ClusterNameFilter = filter
		}
		return renderPages(ctx, c, &p,
			func() (*kafka.ListClustersOutput, error) { return c.client.ListClusters(ctx, in) },
			kafka.NewListClustersPaginator(c.client, in),
			&kafka.ListClustersOutput{ClusterInfoList: []types.ClusterInfo{}},
			func(all, page *kafka.ListClustersOutput) {
				all.ClusterInfoList = append(all.ClusterInfoList, page.ClusterInfoList...)
			})
	}
}

func defineListClustersV2(fs *flag.FlagSet) func(context.Context, *cli) error {
	var p pageFlags
	p.define(fs)
	filter := fs.String("cluster-name-filter", "", "only clusters whose name starts with this")
	typ := fs.String("cluster-type-filter", "", "PROVISIONED or SERVERLESS")
	return func(ctx context.Context, c *cli) error {
		max, next := p.input()
		in := &kafka.ListClustersV2Input{MaxResults: max, NextToken: next}
		if *filter != "" {
			in.ClusterNameFilter = filter
		}
		if *typ != "" {
			in.ClusterTypeFilter = typ
		}
		return renderPages(ctx, c, &p,
			func() (*kafka.ListClustersV2Output, error) { return c.client.ListClustersV2(ctx, in) },
			kafka.NewListClustersV2Paginator(c.client, in),
			&kafka.ListClustersV2Output{ClusterInfoList: []types.Cluster{}},
			func(all, page *kafka.ListClustersV2Output) {
				all.ClusterInfoList = append(all.ClusterInfoList, page.ClusterInfoList...)
			})
	}
}

func defineGetBootstrapBrokers(fs *flag.FlagSet) func(context.Context, *cli) error {
	arn := fs.String("cluster-arn", "", "ARN of the cluster (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"cluster-arn": *arn}); err != nil {
			return err
		}
		out, err := c.client.GetBootstrapBrokers(ctx, &kafka.GetBootstrapBrokersInput{ClusterArn: arn})
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func defineListNodes(fs *flag.FlagSet) func(context.Context, *cli) error {
	var p pageFlags
	p.define(fs)
	arn := fs.String("cluster-arn", "", "ARN of the cluster (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"cluster-arn": *arn}); err != nil {
			return err
		}
		max, next := p.input()
		in := &kafka.ListNodesInput{ClusterArn: arn, MaxResults: max, NextToken: next}
		return renderPages(ctx, c, &p,
			func() (*kafka.ListNodesOutput, error) { return c.client.ListNodes(ctx, in) },
			kafka.NewListNodesPaginator(c.client, in),
			&kafka.ListNodesOutput{NodeInfoList: []types.NodeInfo{}},
			func(all, page *kafka.ListNodesOutput) {
				all.NodeInfoList = append(all.NodeInfoList, page.NodeInfoList...)
			})
	}
}

func defineListClusterOperations(fs *flag.FlagSet) func(context.Context, *cli) error {
	var p pageFlags
	p.define(fs)
	arn := fs.String("cluster-arn", "", "ARN of the cluster (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"cluster-arn": *arn}); err != nil {
			return err
		}
		max, next := p.input()
		in := &kafka.ListClusterOperationsInput{ClusterArn: arn, MaxResults: max, NextToken: next}
		return renderPages(ctx, c, &p,
			func() (*kafka.ListClusterOperationsOutput, error) { return c.client.ListClusterOperations(ctx, in) },
			kafka.NewListClusterOperationsPaginator(c.client, in),
			&kafka.ListClusterOperationsOutput{ClusterOperationInfoList: []types.ClusterOperationInfo{}},
			func(all, page *kafka.ListClusterOperationsOutput) {
				all.ClusterOperationInfoList = append(all.ClusterOperationInfoList, page.ClusterOperationInfoList...)
			})
	}
}

func defineListClusterOperationsV2(fs *flag.FlagSet) func(context.Context, *cli) error {
	var p pageFlags
	p.define(fs)
	arn := fs.String("cluster-arn", "", "ARN of the cluster (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"cluster-arn": *arn}); err != nil {
			return err
		}
		max, next := p.input()
		out, err := c.client.ListClusterOperationsV2(ctx, &kafka.ListClusterOperationsV2Input{ClusterArn: arn, MaxResults: max, NextToken: next})
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func defineDescribeClusterOperation(fs *flag.FlagSet) func(context.Context, *cli) error {
	arn := fs.String("cluster-operation-arn", "", "ARN of the operation (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"cluster-operation-arn": *arn}); err != nil {
			return err
		}
		out, err := c.client.DescribeClusterOperation(ctx, &kafka.DescribeClusterOperationInput{ClusterOperationArn: arn})
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func defineDescribeClusterOperationV2(fs *flag.FlagSet) func(context.Context, *cli) error {
	arn := fs.String("cluster-operation-arn", "", "ARN of the operation (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"cluster-operation-arn": *arn}); err != nil {
			return err
		}
		out, err := c.client.DescribeClusterOperationV2(ctx, &kafka.DescribeClusterOperationV2Input{ClusterOperationArn: arn})
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func defineTagResource(fs *flag.FlagSet) func(context.Context, *cli) error {
	arn := fs.String("resource-arn", "", "ARN of the cluster or configuration (required)")
	tags := fs.String("tags", "", `tags, as {"k":"v"} or k=v,k2=v2 (required)`)
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"resource-arn": *arn, "tags": *tags}); err != nil {
			return err
		}
		t, err := tagsParam(*tags)
		if err != nil {
			return err
		}
		out, err := c.client.TagResource(ctx, &kafka.TagResourceInput{ResourceArn: arn, Tags: t})
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func defineUntagResource(fs *flag.FlagSet) func(context.Context, *cli) error {
	arn := fs.String("resource-arn", "", "ARN of the cluster or configuration (required)")
	var keys listFlag
	fs.Var(&keys, "tag-keys", "tag keys to remove, comma-separated or repeated (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"resource-arn": *arn, "tag-keys": keys.String()}); err != nil {
			return err
		}
		out, err := c.client.UntagResource(ctx, &kafka.UntagResourceInput{ResourceArn: arn, TagKeys: keys})
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func defineListTagsForResource(fs *flag.FlagSet) func(context.Context, *cli) error {
	arn := fs.String("resource-arn", "", "ARN of the cluster or configuration (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"resource-arn": *arn}); err != nil {
			return err
		}
		out, err := c.client.ListTagsForResource(ctx, &kafka.ListTagsForResourceInput{ResourceArn: arn})
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func defineListKafkaVersions(fs *flag.FlagSet) func(context.Context, *cli) error {
	var p pageFlags
	p.define(fs)
	return func(ctx context.Context, c *cli) error {
		max, next := p.input()
		out, err := c.client.ListKafkaVersions(ctx, &kafka.ListKafkaVersionsInput{MaxResults: max, NextToken: next})
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func defineGetCompatibleKafkaVersions(fs *flag.FlagSet) func(context.Context, *cli) error {
	arn := fs.String("cluster-arn", "", "ARN of a cluster (default: every version)")
	return func(ctx context.Context, c *cli) error {
		in := &kafka.GetCompatibleKafkaVersionsInput{}
		if *arn != "" {
			in.ClusterArn = arn
		}
		out, err := c.client.GetCompatibleKafkaVersions(ctx, in)
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func parseRevision(s string) (*int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("--revision must be a positive number, not %q", s)
	}
	return aws.Int64(n), nil
}

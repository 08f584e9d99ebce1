package mskcli

import (
	"context"
	"flag"

	"github.com/aws/aws-sdk-go-v2/service/kafka"
	"github.com/aws/aws-sdk-go-v2/service/kafka/types"
)

func defineCreateConfiguration(fs *flag.FlagSet) func(context.Context, *cli) error {
	name := fs.String("name", "", "name of the configuration (required)")
	desc := fs.String("description", "", "description")
	var versions listFlag
	fs.Var(&versions, "kafka-versions", "Kafka versions it is for, comma-separated or repeated")
	props := fs.String("server-properties", "", "server.properties: fileb://PATH, file://PATH or the text itself (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"name": *name, "server-properties": *props}); err != nil {
			return err
		}
		text, err := readParam(*props)
		if err != nil {
			return err
		}
		in := &kafka.CreateConfigurationInput{Name: name, ServerProperties: text, KafkaVersions: versions}
		if *desc != "" {
			in.Description = desc
		}
		out, err := c.client.CreateConfiguration(ctx, in)
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func defineUpdateConfiguration(fs *flag.FlagSet) func(context.Context, *cli) error {
	arn := fs.String("arn", "", "ARN of the configuration (required)")
	desc := fs.String("description", "", "description of the new revision")
	props := fs.String("server-properties", "", "server.properties: fileb://PATH, file://PATH or the text itself (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"arn": *arn, "server-properties": *props}); err != nil {
			return err
		}
		text, err := readParam(*props)
		if err != nil {
			return err
		}
		in := &kafka.UpdateConfigurationInput{Arn: arn, ServerProperties: text}
		if *desc != "" {
			in.Description = desc
		}
		out, err := c.client.UpdateConfiguration(ctx, in)
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func defineDescribeConfiguration(fs *flag.FlagSet) func(context.Context, *cli) error {
	arn := fs.String("arn", "", "ARN of the configuration (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"arn": *arn}); err != nil {
			return err
		}
		out, err := c.client.DescribeConfiguration(ctx, &kafka.DescribeConfigurationInput{Arn: arn})
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func defineDeleteConfiguration(fs *flag.FlagSet) func(context.Context, *cli) error {
	arn := fs.String("arn", "", "ARN of the configuration (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"arn": *arn}); err != nil {
			return err
		}
		out, err := c.client.DeleteConfiguration(ctx, &kafka.DeleteConfigurationInput{Arn: arn})
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

func defineListConfigurations(fs *flag.FlagSet) func(context.Context, *cli) error {
	var p pageFlags
	p.define(fs)
	return func(ctx context.Context, c *cli) error {
		max, next := p.input()
		in := &kafka.ListConfigurationsInput{MaxResults: max, NextToken: next}
		return renderPages(ctx, c, &p,
			func() (*kafka.ListConfigurationsOutput, error) { return c.client.ListConfigurations(ctx, in) },
			kafka.NewListConfigurationsPaginator(c.client, in),
			&kafka.ListConfigurationsOutput{Configurations: []types.Configuration{}},
			func(all, page *kafka.ListConfigurationsOutput) {
				all.Configurations = append(all.Configurations, page.Configurations...)
			})
	}
}

func defineListConfigurationRevisions(fs *flag.FlagSet) func(context.Context, *cli) error {
	var p pageFlags
	p.define(fs)
	arn := fs.String("arn", "", "ARN of the configuration (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"arn": *arn}); err != nil {
			return err
		}
		max, next := p.input()
		in := &kafka.ListConfigurationRevisionsInput{Arn: arn, MaxResults: max, NextToken: next}
		return renderPages(ctx, c, &p,
			func() (*kafka.ListConfigurationRevisionsOutput, error) {
				return c.client.ListConfigurationRevisions(ctx, in)
			},
			kafka.NewListConfigurationRevisionsPaginator(c.client, in),
			&kafka.ListConfigurationRevisionsOutput{Revisions: []types.ConfigurationRevision{}},
			func(all, page *kafka.ListConfigurationRevisionsOutput) {
				all.Revisions = append(all.Revisions, page.Revisions...)
			})
	}
}

func defineDescribeConfigurationRevision(fs *flag.FlagSet) func(context.Context, *cli) error {
	arn := fs.String("arn", "", "ARN of the configuration (required)")
	rev := fs.String("revision", "", "revision number (required)")
	return func(ctx context.Context, c *cli) error {
		if err := required(map[string]string{"arn": *arn, "revision": *rev}); err != nil {
			return err
		}
		n, err := parseRevision(*rev)
		if err != nil {
			return err
		}
		out, err := c.client.DescribeConfigurationRevision(ctx, &kafka.DescribeConfigurationRevisionInput{Arn: arn, Revision: n})
		if err != nil {
			return err
		}
		return c.render(out)
	}
}

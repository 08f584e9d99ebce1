// Package mskcli is `fjord kafka`: a client of the control plane that
// mirrors `aws kafka`. Verbs and flags have the AWS CLI's names; requests are
// SigV4-signed with the credentials the AWS CLI would use (environment,
// shared credentials file and profile, or --credentials-file); output is the
// AWS CLI's JSON.
package mskcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kafka"
	"github.com/aws/smithy-go"
)

// DefaultEndpoint is where the control plane listens by default.
const DefaultEndpoint = "http://127.0.0.1:8080"

// globals are the options every verb takes, as in the AWS CLI.
type globals struct {
	endpoint        string
	region          string
	profile         string
	credentialsFile string
}

// cli is one invocation.
type cli struct {
	client *kafka.Client
	out    io.Writer // results, as JSON
	errw   io.Writer // progress of --wait
}

// Main runs `fjord kafka` with args (the words after "kafka"). Results go to
// stdout, --wait progress and usage to stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	g, rest, err := parseGlobals(args)
	if err != nil {
		return err
	}
	if len(rest) == 0 || rest[0] == "help" || rest[0] == "-h" || rest[0] == "--help" {
		usage(stderr)
		if len(rest) == 0 {
			return errors.New("no verb given")
		}
		return nil
	}
	v, ok := verbs[rest[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown verb %q", rest[0])
	}
	client, err := newClient(ctx, g)
	if err != nil {
		return err
	}
	c := &cli{client: client, out: stdout, errw: stderr}
	return explain(v.run(ctx, c, rest[0], rest[1:]))
}

// explain words an API error as the AWS CLI does:
// "An error occurred (NotFoundException) when calling the DescribeCluster operation: ...".
func explain(err error) error {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return err
	}
	op := "the"
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		op = "the " + oe.Operation()
	}
	return fmt.Errorf("An error occurred (%s) when calling %s operation: %s", api.ErrorCode(), op, api.ErrorMessage())
}

// parseGlobals takes the global options out of args, wherever they appear.
func parseGlobals(args []string) (globals, []string, error) {
	var g globals
	var rest []string
	targets := map[string]*string{
		"--endpoint-url": &g.endpoint, "--region": &g.region, "--profile": &g.profile, "--credentials-file": &g.credentialsFile,
	}
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		dst, ok := targets[name]
		if !ok {
			if name == "--output" || name == "--no-cli-pager" {
				if name == "--output" && !hasVal {
					i++
				}
				continue // JSON is the only output; accepted for aws compatibility
			}
			rest = append(rest, args[i])
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return g, nil, fmt.Errorf("%s needs a value", name)
			}
			i++
			val = args[i]
		}
		*dst = val
	}
	return g, rest, nil
}

func newClient(ctx context.Context, g globals) (*kafka.Client, error) {
	var opts []func(*config.LoadOptions) error
	if g.region != "" {
		opts = append(opts, config.WithRegion(g.region))
	}
	if g.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(g.profile))
	}
	if g.credentialsFile != "" {
		opts = append(opts, config.WithSharedCredentialsFiles([]string{g.credentialsFile}))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE=DATA_DIR/credentials, or pass --credentials-file DATA_DIR/credentials (%v)", err)
	}
	endpoint := g.endpoint
	if endpoint == "" {
		endpoint = firstEnv("AWS_ENDPOINT_URL_KAFKA", "AWS_ENDPOINT_URL")
	}
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	return kafka.NewFromConfig(cfg, func(o *kafka.Options) { o.BaseEndpoint = aws.String(endpoint) }), nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fjord kafka [--endpoint-url URL] [--region REGION] [--profile NAME] [--credentials-file FILE] <verb> [flags]")
	fmt.Fprintln(w, "\nverbs (as in `aws kafka`; `fjord kafka <verb> -h` lists a verb's flags):")
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-32s %s\n", n, verbs[n].help)
	}
}

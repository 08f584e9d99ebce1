package controlplane_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kafka"
	"github.com/aws/aws-sdk-go-v2/service/kafka/types"
	"go.uber.org/goleak"

	"github.com/fjord-io/fjord/internal/controlplane"
	"github.com/fjord-io/fjord/internal/provision/provisiontest"
)

func TestMain(m *testing.M) {
	provisiontest.MaybeRunBroker()
	goleak.VerifyTestMain(m)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// run starts the control plane and returns a function that stops it and
// waits for Run to return.
func run(t *testing.T, cfg controlplane.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- controlplane.Run(ctx, cfg) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", cfg.Listen)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("control plane never listened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func client(addr, id, secret string) *kafka.Client {
	return kafka.New(kafka.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
	})
}

var credLine = regexp.MustCompile(`(?m)^aws_access_key_id = (\S+)\naws_secret_access_key = (\S+)$`)

func readCredentials(t *testing.T, dir string) (string, string) {
	t.Helper()
	path := filepath.Join(dir, "credentials")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials mode = %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	m := credLine.FindStringSubmatch(string(b))
	if m == nil || !regexp.MustCompile(`(?m)^\[default\]$`).Match(b) {
		t.Fatalf("credentials file is not in shared-credentials format:\n%s", b)
	}
	return m[1], m[2]
}

func TestRootCredentials(t *testing.T) {
	dir := t.TempDir()
	cfg := controlplane.Config{Listen: freeAddr(t), DataDir: dir, BrokerBinary: os.Args[0]}
	stop := run(t, cfg)
	id, secret := readCredentials(t, dir)
	if _, err := client(cfg.Listen, id, secret).ListClusters(t.Context(), &kafka.ListClustersInput{}); err != nil {
		t.Fatalf("ListClusters with the root key: %v", err)
	}
	stop()

	// A restart keeps the key.
	stop = run(t, cfg)
	if id2, secret2 := readCredentials(t, dir); id2 != id || secret2 != secret {
		t.Errorf("root key changed across a restart")
	}
	stop()

	// The environment's key replaces it.
	cfg.RootAccessKeyID, cfg.RootSecretAccessKey = "AKIAFROMENVIRONMENT1", "secret-from-the-environment"
	run(t, cfg)
	if _, err := os.Stat(filepath.Join(dir, "credentials")); !os.IsNotExist(err) {
		t.Errorf("stale credentials file kept: %v", err)
	}
	if _, err := client(cfg.Listen, cfg.RootAccessKeyID, cfg.RootSecretAccessKey).ListClusters(t.Context(), &kafka.ListClustersInput{}); err != nil {
		t.Fatalf("ListClusters with the environment's key: %v", err)
	}
	_, err := client(cfg.Listen, id, secret).ListClusters(t.Context(), &kafka.ListClustersInput{})
	var api interface{ ErrorCode() string }
	if !errors.As(err, &api) || api.ErrorCode() != "UnrecognizedClientException" {
		t.Fatalf("ListClusters with the replaced key: err = %v, want UnrecognizedClientException", err)
	}
}

func TestCreateClusterEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cfg := controlplane.Config{
		Listen: freeAddr(t), DataDir: dir, BrokerBinary: os.Args[0], BrokerEnv: []string{provisiontest.EnvVar + "=1"},
		PortMin: 23100, PortMax: 23199,
	}
	run(t, cfg)
	id, secret := readCredentials(t, dir)
	c := client(cfg.Listen, id, secret)
	ctx := t.Context()
	out, err := c.CreateCluster(ctx, &kafka.CreateClusterInput{
		ClusterName: aws.String("e2e"), KafkaVersion: aws.String("3.9.x"), NumberOfBrokerNodes: aws.Int32(2),
		BrokerNodeGroupInfo: &types.BrokerNodeGroupInfo{ClientSubnets: []string{"a", "b"}, InstanceType: aws.String("kafka.t3.small")},
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := c.DescribeCluster(ctx, &kafka.DescribeClusterInput{ClusterArn: out.ClusterArn})
		if err != nil {
			t.Fatal(err)
		}
		if d.ClusterInfo.State == types.ClusterStateActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster still %s", d.ClusterInfo.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := c.DeleteCluster(ctx, &kafka.DeleteClusterInput{ClusterArn: out.ClusterArn}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := c.DescribeCluster(ctx, &kafka.DescribeClusterInput{ClusterArn: out.ClusterArn})
		var nf *types.NotFoundException
		if errors.As(err, &nf) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster never went away: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunRejectsBadPortRanges(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		portMin, portMax, qMin, qMax int
		want                         string
	}{
		{"overlap", 23000, 23099, 23050, 23149, "overlap broker ports"},
		{"inside", 23000, 23099, 23010, 23020, "overlap broker ports"},
		{"reversed", 23000, 23099, 24100, 24000, "quorum port range 24100-24000 is invalid"},
		{"privileged", 23000, 23099, 80, 90, "quorum port range 80-90 is invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := controlplane.Run(t.Context(), controlplane.Config{
				DataDir: t.TempDir(), BrokerBinary: os.Args[0],
				PortMin: tc.portMin, PortMax: tc.portMax, QuorumPortMin: tc.qMin, QuorumPortMax: tc.qMax,
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

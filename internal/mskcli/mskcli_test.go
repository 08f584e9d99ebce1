package mskcli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fjord-io/fjord/internal/controlplane"
	"github.com/fjord-io/fjord/internal/mskcli"
	"github.com/fjord-io/fjord/internal/provision/provisiontest"
)

func TestMain(m *testing.M) {
	provisiontest.MaybeRunBroker()
	os.Exit(m.Run())
}

type env struct {
	endpoint, creds string
}

func start(t *testing.T) *env {
	t.Helper()
	// No credentials or configuration from the machine running the test.
	home := t.TempDir()
	for k, v := range map[string]string{
		"HOME": home, "AWS_CONFIG_FILE": filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "none"),
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_KAFKA": "",
	} {
		t.Setenv(k, v)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- controlplane.Run(ctx, controlplane.Config{
			Listen: addr, DataDir: dir, BrokerBinary: os.Args[0], BrokerEnv: []string{provisiontest.EnvVar + "=1"},
			PortMin: 23200, PortMax: 23299,
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	creds := filepath.Join(dir, "credentials")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(creds); err == nil {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("control plane did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &env{endpoint: "http://" + addr, creds: creds}
}

// kafka runs `fjord kafka args...` and returns its decoded JSON output and stderr.
func (e *env) kafka(t *testing.T, args ...string) (map[string]any, string, error) {
	t.Helper()
	var out, errw bytes.Buffer
	all := append([]string{"--endpoint-url", e.endpoint, "--credentials-file", e.creds}, args...)
	err := mskcli.Main(t.Context(), all, &out, &errw)
	var m map[string]any
	if out.Len() > 0 {
		if jerr := json.Unmarshal(out.Bytes(), &m); jerr != nil {
			t.Fatalf("fjord kafka %v printed non-JSON %q", args, out.String())
		}
	}
	return m, errw.String(), err
}

func (e *env) must(t *testing.T, args ...string) map[string]any {
	t.Helper()
	m, stderr, err := e.kafka(t, args...)
	if err != nil {
		t.Fatalf("fjord kafka %v: %v\n%s", args, err, stderr)
	}
	return m
}

func TestVerbs(t *testing.T) {
	e := start(t)
	created, progress, err := e.kafka(t, "create-cluster", "--cluster-name", "cli", "--number-of-broker-nodes", "2", "--tags", "team=data", "--wait")
	if err != nil {
		t.Fatalf("create-cluster --wait: %v\n%s", err, progress)
	}
	if !strings.Contains(progress, "is ACTIVE") || !strings.Contains(progress, "CREATING") {
		t.Errorf("--wait progress = %q", progress)
	}
	arn := created["ClusterArn"].(string)

	info := e.must(t, "describe-cluster", "--cluster-arn", arn)["ClusterInfo"].(map[string]any)
	bng := info["BrokerNodeGroupInfo"].(map[string]any)
	if info["State"] != "ACTIVE" || len(bng["ClientSubnets"].([]any)) != 2 || bng["InstanceType"] != "kafka.m5.large" ||
		info["CurrentBrokerSoftwareInfo"].(map[string]any)["KafkaVersion"] != "3.9.x.kraft" {
		t.Errorf("describe-cluster = %v", info)
	}
	if bs := e.must(t, "get-bootstrap-brokers", "--cluster-arn", arn)["BootstrapBrokerString"].(string); strings.Count(bs, "127.0.0.1:") != 2 {
		t.Errorf("bootstrap = %s", bs)
	}
	if nodes := e.must(t, "list-nodes", "--cluster-arn", arn)["NodeInfoList"].([]any); len(nodes) != 2 {
		t.Errorf("list-nodes = %v", nodes)
	}
	if l := e.must(t, "list-clusters", "--cluster-name-filter", "cl")["ClusterInfoList"].([]any); len(l) != 1 {
		t.Errorf("list-clusters = %v", l)
	}
	if ops := e.must(t, "list-cluster-operations", "--cluster-arn", arn)["ClusterOperationInfoList"].([]any); len(ops) != 1 {
		t.Errorf("list-cluster-operations = %v", ops)
	}

	e.must(t, "tag-resource", "--resource-arn", arn, "--tags", `{"env":"dev"}`)
	e.must(t, "untag-resource", "--resource-arn", arn, "--tag-keys", "team")
	if tags := e.must(t, "list-tags-for-resource", "--resource-arn", arn)["Tags"].(map[string]any); len(tags) != 1 || tags["env"] != "dev" {
		t.Errorf("tags = %v", tags)
	}

	props := filepath.Join(t.TempDir(), "server.properties")
	os.WriteFile(props, []byte("auto.create.topics.enable=true\n"), 0o600)
	cfg := e.must(t, "create-configuration", "--name", "auto-create", "--kafka-versions", "3.9.x.kraft", "--server-properties", "fileb://"+props)
	cfgARN := cfg["Arn"].(string)
	e.must(t, "update-configuration", "--arn", cfgARN, "--server-properties", "auto.create.topics.enable=false")
	rev := e.must(t, "describe-configuration-revision", "--arn", cfgARN, "--revision", "2")
	if got, _ := base64.StdEncoding.DecodeString(rev["ServerProperties"].(string)); string(got) != "auto.create.topics.enable=false" {
		t.Errorf("revision 2 properties = %q", got)
	}
	if revs := e.must(t, "list-configuration-revisions", "--arn", cfgARN)["Revisions"].([]any); len(revs) != 2 {
		t.Errorf("revisions = %v", revs)
	}
	if v := e.must(t, "list-kafka-versions")["KafkaVersions"].([]any); len(v) == 0 {
		t.Error("no kafka versions")
	}

	_, _, err = e.kafka(t, "describe-cluster", "--cluster-arn", strings.Replace(arn, "/cli/", "/nope/", 1))
	if err == nil || !strings.Contains(err.Error(), "An error occurred (NotFoundException) when calling the DescribeCluster operation") {
		t.Errorf("describe of unknown cluster: err = %v", err)
	}
	_, _, err = e.kafka(t, "create-cluster", "--cluster-name", "odd", "--number-of-broker-nodes", "4", "--client-subnets", "a,b,c")
	if err == nil || !strings.Contains(err.Error(), "BadRequestException") || !strings.Contains(err.Error(), "multiple") {
		t.Errorf("create with 4 brokers over 3 subnets: err = %v", err)
	}

	_, progress, err = e.kafka(t, "delete-cluster", "--cluster-arn", arn, "--wait")
	if err != nil || !strings.Contains(progress, "deleted") {
		t.Fatalf("delete-cluster --wait: %v\n%s", err, progress)
	}
	e.must(t, "delete-configuration", "--arn", cfgARN)
	if l := e.must(t, "list-clusters")["ClusterInfoList"]; l != nil && len(l.([]any)) != 0 {
		t.Errorf("clusters after delete = %v", l)
	}
}

func TestNoCredentials(t *testing.T) {
	e := start(t)
	var out, errw bytes.Buffer
	err := mskcli.Main(t.Context(), []string{"--endpoint-url", e.endpoint, "list-clusters"}, &out, &errw)
	if err == nil || !strings.Contains(err.Error(), "no credentials") {
		t.Fatalf("err = %v", err)
	}
}

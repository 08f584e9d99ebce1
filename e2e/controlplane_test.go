package e2e

// Acceptance tests of the control plane (`fjord server`): the real AWS CLI,
// boto3 and aws-sdk-go-v2 against a fjord server process this package built,
// kcat against the brokers it starts, bad input, and a kill -9 of the server
// while a cluster is CREATING.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kafka"
	"github.com/aws/aws-sdk-go-v2/service/kafka/types"
	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cpServer is a `fjord server` process under test.
type cpServer struct {
	dataDir string
	addr    string
	creds   string // DATA_DIR/credentials
	args    []string
	cmd     *exec.Cmd
	done    chan error
	log     *bytes.Buffer
}

// cpFreeAddr returns a 127.0.0.1 address nothing listens on.
func cpFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startCPServer starts `fjord server` on a free port with the given data
// directory and broker port range LOW-HIGH; its quorum ports are the same
// range 1000 higher, out of the default range that other packages' tests
// (internal/reconcile) may be using at the same time. The server is killed
// by PID, and every broker and quorum process under dataDir with it, when
// the test ends.
func startCPServer(t *testing.T, dataDir, ports string, extra ...string) *cpServer {
	t.Helper()
	lo, hi, _ := strings.Cut(ports, "-")
	qlo, err1 := strconv.Atoi(lo)
	qhi, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil {
		t.Fatalf("broker ports %q are not LOW-HIGH", ports)
	}
	quorumPorts := fmt.Sprintf("%d-%d", qlo+1000, qhi+1000)
	s := &cpServer{dataDir: dataDir, addr: cpFreeAddr(t), creds: filepath.Join(dataDir, "credentials")}
	s.args = append([]string{"server", "--listen", s.addr, "--data-dir", dataDir, "--broker-ports", ports,
		"--quorum-ports", quorumPorts}, extra...)
	s.start(t)
	t.Cleanup(func() {
		s.kill()
		for _, pid := range cpProcs(dataDir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return s
}

func (s *cpServer) start(t *testing.T) {
	t.Helper()
	s.log = &bytes.Buffer{}
	s.cmd = exec.Command(fjordBin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.Env = cpCleanEnv()
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", s.addr); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("fjord server exited: %v\n%s", err, s.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("fjord server never listened on %s\n%s", s.addr, s.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the server to exit.
func (s *cpServer) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Errorf("fjord server exited with %v\n%s", err, s.log)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("fjord server ignored SIGTERM\n%s", s.log)
		s.kill()
	}
}

// kill sends SIGKILL, if the server is still running, and waits for it.
func (s *cpServer) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case err := <-s.done:
		s.done <- err
		return
	default:
	}
	s.cmd.Process.Kill()
	err := <-s.done
	s.done <- err
}

func (s *cpServer) endpoint() string { return "http://" + s.addr }

// cpCleanEnv is the environment without any AWS settings of the machine.
func cpCleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "FJORD_ROOT_") {
			env = append(env, kv)
		}
	}
	return env
}

// awsEnv points AWS tools at the server's root credentials file.
func (s *cpServer) awsEnv(extra ...string) []string {
	env := append(cpCleanEnv(),
		"AWS_SHARED_CREDENTIALS_FILE="+s.creds, "AWS_CONFIG_FILE="+os.DevNull,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=")
	return append(env, extra...)
}

func cpRequireTool(t *testing.T, name string, check ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil && len(check) > 0 {
		err = exec.Command(path, check...).Run()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required: %v", name, err)
		}
		t.Skipf("%s not available: %v", name, err)
	}
	return path
}

// awsCLI runs `aws --endpoint-url ... kafka args...` and returns its stdout,
// stderr and error.
func (s *cpServer) awsCLI(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "aws", append([]string{"--endpoint-url", s.endpoint(), "--output", "json", "kafka"}, args...)...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// aws runs the AWS CLI and decodes its JSON output, failing the test on error.
func (s *cpServer) aws(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, stderr, err := s.awsCLI(t, s.awsEnv(), args...)
	if err != nil {
		t.Fatalf("aws kafka %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	var m map[string]any
	if strings.TrimSpace(out) != "" {
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("aws kafka %s printed %q", args[0], out)
		}
	}
	return m
}

// sdk returns an aws-sdk-go-v2 client reading the server's credentials file
// the way any SDK program would.
func (s *cpServer) sdk(t *testing.T) *kafka.Client {
	t.Helper()
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", s.creds)
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KAFKA"} {
		t.Setenv(k, "")
	}
	cfg, err := config.LoadDefaultConfig(t.Context(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	return kafka.NewFromConfig(cfg, func(o *kafka.Options) { o.BaseEndpoint = aws.String(s.endpoint()) })
}

// cpBrokers returns the live broker processes whose data directory is under
// dataDir, by broker directory (CLUSTER-UUID/broker-N). Several processes for
// one directory would show as one: TestControlPlaneKillWhileCreating counts
// processes per cluster too.
func cpBrokers(dataDir string) map[string]int {
	out := cpProcs(dataDir)
	for dir := range out {
		if !strings.HasPrefix(filepath.Base(dir), "broker-") {
			delete(out, dir)
		}
	}
	return out
}

// cpProcs returns the live processes the control plane started under
// dataDir, brokers and quorum members, by directory (CLUSTER-UUID/broker-N,
// CLUSTER-UUID/quorum-J).
func cpProcs(dataDir string) map[string]int {
	root := filepath.Join(dataDir, "clusters") + "/"
	out := map[string]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(raw), "\x00")
		i := slices.Index(args, "--data-dir")
		if i < 0 || i+1 >= len(args) || !strings.HasPrefix(args[i+1], root) {
			continue
		}
		// Brokers lead their process group; a child forked by a launcher
		// shares the command line for a moment, but not the group.
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 3 || f[0] == "Z" || f[2] != e.Name() {
			continue
		}
		out[strings.TrimSuffix(strings.TrimPrefix(args[i+1], root), "/data")] = pid
	}
	return out
}

// clusterBrokers keeps the entries of cpBrokers (or cpProcs) that belong to
// the cluster.
func clusterBrokers(procs map[string]int, clusterARN string) map[string]int {
	id := clusterUUID(clusterARN)
	out := map[string]int{}
	for dir, pid := range procs {
		if strings.HasPrefix(dir, id+"/") {
			out[dir] = pid
		}
	}
	return out
}

// cpWaitState polls until the cluster is in state want ("" means deleted).
func cpWaitState(t *testing.T, c *kafka.Client, arn string, want types.ClusterState, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d, err := c.DescribeCluster(t.Context(), &kafka.DescribeClusterInput{ClusterArn: aws.String(arn)})
		var nf *types.NotFoundException
		switch {
		case want == "" && errors.As(err, &nf):
			return
		case err != nil:
			t.Fatalf("DescribeCluster: %v", err)
		case d.ClusterInfo.State == want:
			return
		case d.ClusterInfo.State == types.ClusterStateFailed:
			t.Fatalf("cluster FAILED: %+v", *d.ClusterInfo.StateInfo.Message)
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster is %s after %v, want %q", d.ClusterInfo.State, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kcatRoundTrip creates a topic with the cluster's defaults, produces n
// records to it on broker and consumes them back, and returns the topic's
// partition count.
func kcatRoundTrip(t *testing.T, broker, topic string, n int) int {
	t.Helper()
	kcat := cpRequireTool(t, "kcat", "-V")
	var in strings.Builder
	var want []string
	for i := range n {
		fmt.Fprintf(&in, "k%d:value-%d\n", i, i)
		want = append(want, fmt.Sprintf("k%d=value-%d", i, i))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	// MSK's default configuration creates no topic on first use: create it
	// with the cluster's defaults (num.partitions, default.replication.factor).
	created, err := newAdmin(t, broker).CreateTopic(ctx, -1, -1, nil, topic)
	if err == nil {
		err = created.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	produce := exec.CommandContext(ctx, kcat, "-b", broker, "-t", topic, "-p", "0", "-K", ":", "-P")
	produce.Stdin = strings.NewReader(in.String())
	if out, err := produce.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
	consume := exec.CommandContext(ctx, kcat, "-b", broker, "-t", topic, "-p", "0", "-o", "beginning", "-c", strconv.Itoa(n), "-f", "%k=%s\n", "-C", "-q")
	out, err := consume.Output()
	if err != nil {
		t.Fatalf("kcat consume: %v\n%s", err, out)
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSpace(string(out)), "\n")); diff != "" {
		t.Errorf("consumed records (-produced +consumed):\n%s", diff)
	}
	meta, err := exec.CommandContext(ctx, kcat, "-b", broker, "-t", topic, "-L", "-J").Output()
	if err != nil {
		t.Fatalf("kcat -L: %v", err)
	}
	var md struct {
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []any  `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(meta, &md); err != nil || len(md.Topics) != 1 {
		t.Fatalf("kcat -L -J = %s (%v)", meta, err)
	}
	return len(md.Topics[0].Partitions)
}

// TestControlPlaneAWSCLI walks a cluster's life with the real AWS CLI.
func TestControlPlaneAWSCLI(t *testing.T) {
	cpRequireTool(t, "aws", "--version")
	dir := t.TempDir()
	s := startCPServer(t, dir, "25100-25199")

	props := filepath.Join(t.TempDir(), "server.properties")
	os.WriteFile(props, []byte("num.partitions=3\n"), 0o600)
	cfg := s.aws(t, "create-configuration", "--name", "three-partitions", "--kafka-versions", "3.9.x", "--server-properties", "fileb://"+props)
	cfgARN := cfg["Arn"].(string)
	rev := s.aws(t, "update-configuration", "--arn", cfgARN, "--server-properties", "fileb://"+props, "--description", "same again")
	if rev["LatestRevision"].(map[string]any)["Revision"].(float64) != 2 {
		t.Fatalf("update-configuration = %v", rev)
	}
	if revs := s.aws(t, "list-configuration-revisions", "--arn", cfgARN)["Revisions"].([]any); len(revs) != 2 {
		t.Fatalf("revisions = %v", revs)
	}
	s.aws(t, "describe-configuration", "--arn", cfgARN)

	created := s.aws(t, "create-cluster", "--cluster-name", "cli", "--kafka-version", "3.9.x", "--number-of-broker-nodes", "3",
		"--broker-node-group-info", `{"ClientSubnets":["subnet-a","subnet-b","subnet-c"],"InstanceType":"kafka.m5.large"}`,
		"--configuration-info", `{"Arn":"`+cfgARN+`","Revision":2}`, "--tags", "team=data")
	arn := created["ClusterArn"].(string)
	if created["State"] != "CREATING" {
		t.Fatalf("create-cluster = %v", created)
	}
	deadline := time.Now().Add(60 * time.Second)
	var info map[string]any
	for {
		info = s.aws(t, "describe-cluster", "--cluster-arn", arn)["ClusterInfo"].(map[string]any)
		if info["State"] == "ACTIVE" {
			break
		}
		if info["State"] == "FAILED" || time.Now().After(deadline) {
			t.Fatalf("cluster = %v", info)
		}
		time.Sleep(100 * time.Millisecond)
	}
	bootstrap := s.aws(t, "get-bootstrap-brokers", "--cluster-arn", arn)["BootstrapBrokerString"].(string)
	brokers := strings.Split(bootstrap, ",")
	if len(brokers) != 3 {
		t.Fatalf("bootstrap = %s", bootstrap)
	}
	if parts := kcatRoundTrip(t, brokers[0], "orders", 5); parts != 3 {
		t.Errorf("topic created with the defaults has %d partitions; the configuration says num.partitions=3", parts)
	}

	if l := s.aws(t, "list-clusters")["ClusterInfoList"].([]any); len(l) != 1 {
		t.Errorf("list-clusters = %v", l)
	}
	if l := s.aws(t, "list-clusters-v2", "--cluster-name-filter", "cl")["ClusterInfoList"].([]any); len(l) != 1 {
		t.Errorf("list-clusters-v2 = %v", l)
	}
	nodes := s.aws(t, "list-nodes", "--cluster-arn", arn)["NodeInfoList"].([]any)
	var zones []string
	for _, n := range nodes {
		zones = append(zones, n.(map[string]any)["BrokerNodeInfo"].(map[string]any)["ClientSubnet"].(string))
	}
	if diff := cmp.Diff([]string{"subnet-a", "subnet-b", "subnet-c"}, zones); diff != "" {
		t.Errorf("nodes' subnets (-want +got):\n%s", diff)
	}
	if procs := clusterBrokers(cpBrokers(dir), arn); len(procs) != 3 {
		t.Errorf("broker processes = %v, want 3", procs)
	}
	ops := s.aws(t, "list-cluster-operations", "--cluster-arn", arn)["ClusterOperationInfoList"].([]any)
	s.aws(t, "describe-cluster-operation", "--cluster-operation-arn", ops[0].(map[string]any)["OperationArn"].(string))

	s.aws(t, "tag-resource", "--resource-arn", arn, "--tags", "env=test,owner=me")
	s.aws(t, "untag-resource", "--resource-arn", arn, "--tag-keys", "team", "owner")
	if tags := s.aws(t, "list-tags-for-resource", "--resource-arn", arn)["Tags"].(map[string]any); !cmp.Equal(tags, map[string]any{"env": "test"}) {
		t.Errorf("tags = %v", tags)
	}
	s.aws(t, "list-kafka-versions")
	s.aws(t, "get-compatible-kafka-versions", "--cluster-arn", arn)

	s.aws(t, "delete-cluster", "--cluster-arn", arn, "--current-version", info["CurrentVersion"].(string))
	cpWaitState(t, s.sdk(t), arn, "", 60*time.Second)
	if procs := clusterBrokers(cpBrokers(dir), arn); len(procs) != 0 {
		t.Errorf("broker processes after delete: %v", procs)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "clusters"))
	if len(entries) != 0 {
		t.Errorf("cluster data left behind: %v", entries)
	}
	for _, b := range brokers {
		if ln, err := net.Listen("tcp", b); err != nil {
			t.Errorf("port of %s not freed: %v", b, err)
		} else {
			ln.Close()
		}
	}
	s.aws(t, "delete-configuration", "--arn", cfgARN)
	s.stop(t)
}

// TestControlPlaneBoto3 does the same with boto3 (testdata/controlplane/boto3_flow.py).
func TestControlPlaneBoto3(t *testing.T) {
	python := cpRequireTool(t, "python3", "-c", "import boto3")
	dir := t.TempDir()
	s := startCPServer(t, dir, "25200-25299")
	run := func(args ...string) map[string]any {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), python, append([]string{"testdata/controlplane/boto3_flow.py", s.endpoint()}, args...)...)
		cmd.Env = s.awsEnv()
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("boto3_flow.py %s: %v\n%s%s", args[0], err, out.String(), errb.String())
		}
		var m map[string]any
		if err := json.Unmarshal(out.Bytes(), &m); err != nil {
			t.Fatalf("boto3_flow.py printed %q", out.String())
		}
		return m
	}
	up := run("up", "boto")
	arn := up["clusterArn"].(string)
	if procs := clusterBrokers(cpBrokers(dir), arn); len(procs) != 3 {
		t.Errorf("broker processes = %v, want 3", procs)
	}
	if parts := kcatRoundTrip(t, strings.Split(up["bootstrap"].(string), ",")[0], "payments", 3); parts != 3 {
		t.Errorf("topic has %d partitions, want 3 (num.partitions of the configuration)", parts)
	}
	run("down", arn, up["configurationArn"].(string))
	if procs := clusterBrokers(cpBrokers(dir), arn); len(procs) != 0 {
		t.Errorf("broker processes after delete: %v", procs)
	}
	s.stop(t)
}

// TestControlPlaneGoSDK does the same through aws-sdk-go-v2/service/kafka.
func TestControlPlaneGoSDK(t *testing.T) {
	dir := t.TempDir()
	s := startCPServer(t, dir, "25300-25399")
	c := s.sdk(t)
	ctx := t.Context()
	cfg, err := c.CreateConfiguration(ctx, &kafka.CreateConfigurationInput{Name: aws.String("sdk"), ServerProperties: []byte("num.partitions=2\n")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateConfiguration(ctx, &kafka.UpdateConfigurationInput{Arn: cfg.Arn, ServerProperties: []byte("num.partitions=3\n")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.CreateClusterV2(ctx, &kafka.CreateClusterV2Input{
		ClusterName: aws.String("sdk"),
		Provisioned: &types.ProvisionedRequest{
			KafkaVersion: aws.String("3.9.x.kraft"), NumberOfBrokerNodes: aws.Int32(3),
			BrokerNodeGroupInfo: &types.BrokerNodeGroupInfo{ClientSubnets: []string{"subnet-a", "subnet-b", "subnet-c"}, InstanceType: aws.String("kafka.m7g.large")},
			ConfigurationInfo:   &types.ConfigurationInfo{Arn: cfg.Arn, Revision: aws.Int64(2)},
		},
		Tags: map[string]string{"team": "data"},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ClusterArn)
	cpWaitState(t, c, arn, types.ClusterStateActive, 60*time.Second)

	bb, err := c.GetBootstrapBrokers(ctx, &kafka.GetBootstrapBrokersInput{ClusterArn: out.ClusterArn})
	if err != nil {
		t.Fatal(err)
	}
	if parts := kcatRoundTrip(t, strings.Split(aws.ToString(bb.BootstrapBrokerString), ",")[0], "sdk-topic", 4); parts != 3 {
		t.Errorf("topic has %d partitions, want 3", parts)
	}
	d, err := c.DescribeClusterV2(ctx, &kafka.DescribeClusterV2Input{ClusterArn: out.ClusterArn})
	if err != nil || aws.ToInt64(d.ClusterInfo.Provisioned.CurrentBrokerSoftwareInfo.ConfigurationRevision) != 2 {
		t.Fatalf("DescribeClusterV2 = %+v, %v", d, err)
	}
	nodes, err := c.ListNodes(ctx, &kafka.ListNodesInput{ClusterArn: out.ClusterArn})
	if err != nil || len(nodes.NodeInfoList) != 3 {
		t.Fatalf("ListNodes = %+v, %v", nodes, err)
	}
	ops, err := c.ListClusterOperationsV2(ctx, &kafka.ListClusterOperationsV2Input{ClusterArn: out.ClusterArn})
	if err != nil || len(ops.ClusterOperationInfoList) != 1 {
		t.Fatalf("ListClusterOperationsV2 = %+v, %v", ops, err)
	}
	if _, err := c.DescribeClusterOperationV2(ctx, &kafka.DescribeClusterOperationV2Input{ClusterOperationArn: ops.ClusterOperationInfoList[0].OperationArn}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TagResource(ctx, &kafka.TagResourceInput{ResourceArn: out.ClusterArn, Tags: map[string]string{"env": "dev"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagResource(ctx, &kafka.UntagResourceInput{ResourceArn: out.ClusterArn, TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListTagsForResource(ctx, &kafka.ListTagsForResourceInput{ResourceArn: out.ClusterArn})
	if err != nil || !cmp.Equal(tags.Tags, map[string]string{"env": "dev"}) {
		t.Fatalf("tags = %v, %v", tags, err)
	}
	if _, err := c.DeleteCluster(ctx, &kafka.DeleteClusterInput{ClusterArn: out.ClusterArn}); err != nil {
		t.Fatal(err)
	}
	cpWaitState(t, c, arn, "", 60*time.Second)
	if procs := clusterBrokers(cpBrokers(dir), arn); len(procs) != 0 {
		t.Errorf("broker processes after delete: %v", procs)
	}
	if _, err := c.DeleteConfiguration(ctx, &kafka.DeleteConfigurationInput{Arn: cfg.Arn}); err != nil {
		t.Fatal(err)
	}
	s.stop(t)
}

// signedRequest sends a request signed with the given key at the given time
// (unsigned if id is empty) and returns the status, error type and message.
func signedRequest(t *testing.T, s *cpServer, method, path, body, id, secret string, at time.Time) (int, string, string) {
	t.Helper()
	r, err := http.NewRequestWithContext(t.Context(), method, s.endpoint()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	if id != "" {
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(t.Context(), creds, r, hex.EncodeToString(sum[:]), "kafka", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Message string `json:"message"`
	}
	json.Unmarshal(b, &e)
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), e.Message
}

// TestControlPlaneBadInput checks that each kind of bad request gets MSK's
// exception, status code and a message saying what to fix, and changes nothing.
func TestControlPlaneBadInput(t *testing.T) {
	cpRequireTool(t, "aws", "--version")
	dir := t.TempDir()
	s := startCPServer(t, dir, "25400-25499")
	c := s.sdk(t)
	ctx := t.Context()
	created, err := c.CreateCluster(ctx, &kafka.CreateClusterInput{
		ClusterName: aws.String("victim"), KafkaVersion: aws.String("3.9.x"), NumberOfBrokerNodes: aws.Int32(1),
		BrokerNodeGroupInfo: &types.BrokerNodeGroupInfo{ClientSubnets: []string{"subnet-a"}, InstanceType: aws.String("kafka.m5.large")},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(created.ClusterArn)
	cpWaitState(t, c, arn, types.ClusterStateActive, 60*time.Second)
	snapshot := func() string {
		l, err := c.ListClusters(ctx, &kafka.ListClustersInput{})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, ci := range l.ClusterInfoList {
			fmt.Fprintf(&b, "%s %s %s %v\n", aws.ToString(ci.ClusterArn), ci.State, aws.ToString(ci.CurrentVersion), ci.Tags)
		}
		cfgs, _ := c.ListConfigurations(ctx, &kafka.ListConfigurationsInput{})
		fmt.Fprintf(&b, "configurations: %d\nbrokers: %v\n", len(cfgs.Configurations), cpBrokers(dir))
		return b.String()
	}
	before := snapshot()

	raw, _ := os.ReadFile(s.creds)
	var id, secret string
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, " = "); ok {
			switch k {
			case "aws_access_key_id":
				id = v
			case "aws_secret_access_key":
				secret = v
			}
		}
	}
	ghost := strings.Replace(arn, "/victim/", "/ghost/", 1)
	escaped := strings.NewReplacer(":", "%3A", "/", "%2F").Replace(arn)
	now := time.Now()
	valid := `"kafkaVersion":"3.9.x","brokerNodeGroupInfo":{"clientSubnets":["a","b","c"],"instanceType":"kafka.m5.large"}`
	raws := []struct {
		name, method, path, body string
		id, secret               string
		at                       time.Time
		status                   int
		code, msg                string
	}{
		{"missing clusterName", "POST", "/v1/clusters", `{"numberOfBrokerNodes":3,` + valid + `}`, id, secret, now, 400, "BadRequestException", "clusterName is required"},
		{"missing numberOfBrokerNodes", "POST", "/api/v2/clusters", `{"clusterName":"x","provisioned":{` + valid + `}}`, id, secret, now, 400, "BadRequestException", "provisioned.numberOfBrokerNodes is required"},
		{"missing serverProperties", "POST", "/v1/configurations", `{"name":"x"}`, id, secret, now, 400, "BadRequestException", "serverProperties is required"},
		{"missing tags", "POST", "/v1/tags/" + escaped, `{}`, id, secret, now, 400, "BadRequestException", "tags is required"},
		{"unsigned", "POST", "/v1/clusters", `{"clusterName":"x","numberOfBrokerNodes":3,` + valid + `}`, "", "", now, 403, "MissingAuthenticationTokenException", "sign the request"},
		{"wrong secret", "DELETE", "/v1/clusters/" + escaped, "", id, "not-the-secret", now, 403, "InvalidSignatureException", "Check your AWS Secret Access Key"},
		{"stale timestamp", "DELETE", "/v1/clusters/" + escaped, "", id, secret, now.Add(-20 * time.Minute), 403, "InvalidSignatureException", "Signature expired"},
	}
	for _, tt := range raws {
		status, code, msg := signedRequest(t, s, tt.method, tt.path, tt.body, tt.id, tt.secret, tt.at)
		if status != tt.status || code != tt.code || !strings.Contains(msg, tt.msg) {
			t.Errorf("%s: got %d %s %q, want %d %s containing %q", tt.name, status, code, msg, tt.status, tt.code, tt.msg)
		}
	}

	clis := []struct {
		name string
		env  []string
		args []string
		want []string // in the CLI's error output
	}{
		{"broker count not a multiple of subnets", nil, []string{"create-cluster", "--cluster-name", "odd", "--kafka-version", "3.9.x", "--number-of-broker-nodes", "4",
			"--broker-node-group-info", `{"ClientSubnets":["a","b","c"],"InstanceType":"kafka.m5.large"}`}, []string{"(BadRequestException)", "multiple of the number of client subnets (3)"}},
		{"unknown ARN", nil, []string{"describe-cluster", "--cluster-arn", ghost}, []string{"(NotFoundException)", "does not exist"}},
		{"unknown ARN delete", nil, []string{"delete-cluster", "--cluster-arn", ghost}, []string{"(NotFoundException)", "does not exist"}},
		{"stale currentVersion", nil, []string{"delete-cluster", "--cluster-arn", arn, "--current-version", "K0000000000000"}, []string{"(BadRequestException)", "isn't current"}},
		{"unsupported member", nil, []string{"create-cluster", "--cluster-name", "tls", "--kafka-version", "3.9.x", "--number-of-broker-nodes", "1",
			"--broker-node-group-info", `{"ClientSubnets":["a"],"InstanceType":"kafka.m5.large"}`, "--encryption-info", `{"EncryptionInTransit":{"ClientBroker":"TLS"}}`},
			[]string{"(BadRequestException)", "not supported yet"}},
		{"not implemented", nil, []string{"update-broker-count", "--cluster-arn", arn, "--current-version", "x", "--target-number-of-broker-nodes", "2"}, []string{"(BadRequestException)", "UpdateBrokerCount"}},
		{"wrongly signed", s.awsEnv("AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY=wrong"), []string{"tag-resource", "--resource-arn", arn, "--tags", "a=b"}, []string{"(InvalidSignatureException)"}},
		{"unknown key", s.awsEnv("AWS_ACCESS_KEY_ID=AKIAUNKNOWNUNKNOWN00", "AWS_SECRET_ACCESS_KEY=x"), []string{"list-clusters"}, []string{"(UnrecognizedClientException)"}},
	}
	for _, tt := range clis {
		env := tt.env
		if env == nil {
			env = s.awsEnv()
		}
		_, stderr, err := s.awsCLI(t, env, tt.args...)
		if err == nil {
			t.Errorf("%s: aws kafka %s succeeded", tt.name, tt.args[0])
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: aws error output %q lacks %q", tt.name, stderr, w)
			}
		}
	}
	if diff := cmp.Diff(before, snapshot()); diff != "" {
		t.Errorf("bad requests changed state (-before +after):\n%s", diff)
	}
	s.stop(t)
}

// TestControlPlaneKillWhileCreating kills the server with SIGKILL while a
// cluster is CREATING (its brokers take two seconds to start), restarts it,
// and checks the cluster ends ACTIVE with exactly its brokers: the ones the
// first server started, adopted rather than duplicated.
func TestControlPlaneKillWhileCreating(t *testing.T) {
	dir := t.TempDir()
	slow := filepath.Join(t.TempDir(), "slow-broker.sh")
	script := "#!/bin/sh\n# A broker that takes two seconds to start.\nsleep 2\nexec " + fjordBin + " \"$@\"\n"
	if err := os.WriteFile(slow, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	s := startCPServer(t, dir, "25500-25599", "--broker-binary", slow)
	c := s.sdk(t)
	out, err := c.CreateCluster(t.Context(), &kafka.CreateClusterInput{
		ClusterName: aws.String("phoenix"), KafkaVersion: aws.String("3.9.x"), NumberOfBrokerNodes: aws.Int32(3),
		BrokerNodeGroupInfo: &types.BrokerNodeGroupInfo{ClientSubnets: []string{"a", "b", "c"}, InstanceType: aws.String("kafka.m5.large")},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ClusterArn)
	deadline := time.Now().Add(10 * time.Second)
	for len(clusterBrokers(cpBrokers(dir), arn)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("brokers never started\n%s", s.log)
		}
		time.Sleep(5 * time.Millisecond)
	}
	d, err := c.DescribeCluster(t.Context(), &kafka.DescribeClusterInput{ClusterArn: out.ClusterArn})
	if err != nil || d.ClusterInfo.State != types.ClusterStateCreating {
		t.Fatalf("before the kill: %+v, %v", d, err)
	}
	s.kill()
	before := clusterBrokers(cpBrokers(dir), arn)
	t.Logf("killed the server while CREATING; brokers running: %v", before)

	s.start(t)
	cpWaitState(t, c, arn, types.ClusterStateActive, 60*time.Second)
	after := clusterBrokers(cpBrokers(dir), arn)
	if len(after) != 3 {
		t.Fatalf("brokers after restart = %v, want exactly 3", after)
	}
	for dir, pid := range before {
		if after[dir] != pid {
			t.Errorf("broker %s was pid %d before the restart and %d after: not adopted", dir, pid, after[dir])
		}
	}
	nodes, err := c.ListNodes(t.Context(), &kafka.ListNodesInput{ClusterArn: out.ClusterArn})
	if err != nil || len(nodes.NodeInfoList) != 3 {
		t.Fatalf("ListNodes = %+v, %v", nodes, err)
	}
	if _, err := c.DeleteCluster(t.Context(), &kafka.DeleteClusterInput{ClusterArn: out.ClusterArn}); err != nil {
		t.Fatal(err)
	}
	cpWaitState(t, c, arn, "", 60*time.Second)
	if procs := clusterBrokers(cpBrokers(dir), arn); len(procs) != 0 {
		t.Errorf("broker processes after delete: %v", procs)
	}
	s.stop(t)
}

// TestControlPlaneReplicated creates a three-broker cluster through the MSK
// API and checks that it is one replicated cluster, not three: its brokers
// share a three-member metadata quorum, sit in the three zones of its
// subnets, replicate a topic three ways with MSK's defaults, and fail over
// when the leader of a partition is killed. Deleting the cluster leaves no
// process behind.
func TestControlPlaneReplicated(t *testing.T) {
	dir := t.TempDir()
	s := startCPServer(t, dir, "25700-25799")
	c := s.sdk(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	out, err := c.CreateCluster(ctx, &kafka.CreateClusterInput{
		ClusterName: aws.String("replicated"), KafkaVersion: aws.String("3.9.x"), NumberOfBrokerNodes: aws.Int32(3),
		BrokerNodeGroupInfo: &types.BrokerNodeGroupInfo{ClientSubnets: []string{"subnet-a", "subnet-b", "subnet-c"}, InstanceType: aws.String("kafka.m5.large")},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ClusterArn)
	start := time.Now()
	cpWaitState(t, c, arn, types.ClusterStateActive, 30*time.Second)
	t.Logf("ACTIVE after %v", time.Since(start).Round(time.Millisecond))
	procs := clusterBrokers(cpProcs(dir), arn)
	var quorum []string
	for d := range procs {
		if strings.HasPrefix(filepath.Base(d), "quorum-") {
			quorum = append(quorum, d)
		}
	}
	if len(procs) != 6 || len(quorum) != 3 {
		t.Fatalf("processes of the cluster = %v; want 3 brokers and 3 quorum members", procs)
	}

	bb, err := c.GetBootstrapBrokers(ctx, &kafka.GetBootstrapBrokersInput{ClusterArn: out.ClusterArn})
	if err != nil {
		t.Fatal(err)
	}
	addrs := strings.Split(aws.ToString(bb.BootstrapBrokerString), ",")
	if len(addrs) != 3 {
		t.Fatalf("bootstrap brokers = %v, want 3", addrs)
	}
	adm := kadm.NewClient(newKgo(t, addrs[0], kgo.SeedBrokers(addrs...), kgo.MetadataMinAge(100*time.Millisecond)))

	// Every broker knows the others, each in its subnet's zone.
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var racks []string
	for _, b := range md.Brokers {
		racks = append(racks, fmt.Sprintf("%d:%s", b.NodeID, aws.ToString(b.Rack)))
	}
	slices.Sort(racks)
	if diff := cmp.Diff([]string{"1:use1-az1", "2:use1-az2", "3:use1-az3"}, racks); diff != "" {
		t.Errorf("brokers and racks in Metadata (-want +got):\n%s", diff)
	}

	// A topic replicated three ways, with MSK's min.insync.replicas=2.
	const topic = "orders"
	created, err := adm.CreateTopic(ctx, 3, 3, nil, topic)
	if err == nil {
		err = created.Err
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	l := waitPartitions(t, adm, topic, 15*time.Second, "a leader and 3 in-sync replicas for every partition", fullISR)
	t.Logf("topic %s:%v", topic, l)
	// kadm sends DescribeConfigs to any broker and leaves a resource's
	// error in rc.Err. A new partition's ISR is its whole replica set from
	// the start (as in Kafka), so the full ISR waited for above does not
	// mean every broker has applied the new topic yet: one that has not
	// answers UNKNOWN_TOPIC_OR_PARTITION for a few milliseconds, as a
	// Kafka broker behind on metadata does. Retry that, and say so.
	for attempt := 1; ; attempt++ {
		cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := cfgs.On(topic, nil)
		if err == nil {
			err = rc.Err
		}
		if err == nil {
			if v := configValue(rc.Configs, "min.insync.replicas"); v != "2" {
				t.Errorf("min.insync.replicas of %s = %q, want MSK's 2 (%d configs described)", topic, v, len(rc.Configs))
			}
			break
		}
		if attempt == 10 {
			t.Fatalf("describe configs of %s: %v", topic, err)
		}
		t.Logf("describe configs of %s, attempt %d: %v", topic, attempt, err)
		time.Sleep(200 * time.Millisecond)
	}

	// acks=all produce and consume back, then again once partition 0's
	// leader is killed.
	cl := newKgo(t, addrs[0], kgo.SeedBrokers(addrs...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(100*time.Millisecond))
	produce := func(from, n int) {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: []byte("value-" + strconv.Itoa(i))})
		}
		if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
			t.Fatalf("acks=all produce of records %d-%d: %v", from, from+n-1, err)
		}
	}
	consume := func(n int) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		cons := newKgo(t, addrs[0], kgo.SeedBrokers(addrs...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
		var got []string
		for len(got) < n {
			fs := cons.PollFetches(cctx)
			if cctx.Err() != nil {
				t.Fatalf("consumed %d of %d records: %v", len(got), n, cctx.Err())
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		cons.Close()
		for i, v := range got {
			if want := "value-" + strconv.Itoa(i); v != want {
				t.Fatalf("record %d = %q, want %q", i, v, want)
			}
		}
	}
	produce(0, 10)
	consume(10)

	leader := l[0].Leader
	pidFile := filepath.Join(dir, "clusters", clusterUUID(arn), "broker-"+strconv.Itoa(int(leader)), "broker.pid")
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || !isFjordProcess(pid) {
		t.Fatalf("%s names pid %d (%v), not a running fjord process", pidFile, pid, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	l = waitPartitions(t, adm, topic, 15*time.Second, fmt.Sprintf("a new leader for partition 0 (broker %d was killed)", leader), func(l layout) bool {
		d := l[0]
		return d.Err == nil && d.Leader >= 0 && d.Leader != leader
	})
	t.Logf("killed broker %d (pid %d); partition 0 led by %d after %v:%v", leader, pid, l[0].Leader, time.Since(killed).Round(time.Millisecond), l)
	produce(10, 10)
	consume(20)

	if _, err := c.DeleteCluster(ctx, &kafka.DeleteClusterInput{ClusterArn: out.ClusterArn}); err != nil {
		t.Fatal(err)
	}
	deleting := time.Now()
	cpWaitState(t, c, arn, "", 30*time.Second)
	t.Logf("deleted after %v", time.Since(deleting).Round(time.Millisecond))
	if left := clusterBrokers(cpProcs(dir), arn); len(left) != 0 {
		t.Errorf("processes after delete: %v", left)
	}
	if _, err := os.Stat(filepath.Join(dir, "clusters", clusterUUID(arn))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster data left behind: %v", err)
	}
	s.stop(t)
}

// clusterUUID returns the UUID in a cluster ARN (…:cluster/NAME/UUID-N): the
// name of the cluster's directory.
func clusterUUID(arn string) string {
	id := arn[strings.LastIndexByte(arn, '/')+1:]
	return id[:strings.LastIndexByte(id, '-')]
}

// configValue returns the value of config name in cs, or "" if absent.
func configValue(cs []kadm.Config, name string) string {
	for _, c := range cs {
		if c.Key == name {
			return aws.ToString(c.Value)
		}
	}
	return ""
}

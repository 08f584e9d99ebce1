package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kafka"
	"github.com/aws/aws-sdk-go-v2/service/kafka/types"

	"github.com/fjord-io/fjord/internal/api"
	"github.com/fjord-io/fjord/internal/cluster"
	"github.com/fjord-io/fjord/internal/sigv4"
	"github.com/fjord-io/fjord/internal/store"
)

const (
	region = "us-east-1"
	keyID  = "AKIAFJORDAPITEST0001"
	secret = "api-test-secret-key-0123456789abcdefghij"
)

type env struct {
	url    string
	store  *store.SQLite
	client *kafka.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := store.OpenSQLite(t.Context(), t.TempDir()+"/state.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.SetRootKey(t.Context(), store.AccessKey{ID: keyID, Secret: secret, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	v := &sigv4.Verifier{Service: "kafka", Region: region, Secret: func(ctx context.Context, id string) (string, error) {
		k, err := st.AccessKey(ctx, id)
		if errors.Is(err, store.ErrNoAccessKey) {
			return "", sigv4.ErrUnknownKey
		}
		return k.Secret, err
	}}
	srv := httptest.NewServer(api.New(api.Config{Region: region, Account: "000000000000", Store: st, Verifier: v}))
	t.Cleanup(srv.Close)
	client := kafka.New(kafka.Options{
		Region:       region,
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		HTTPClient:   srv.Client(),
	})
	return &env{url: srv.URL, store: st, client: client}
}

func brokerInfo(subnets ...string) *types.BrokerNodeGroupInfo {
	return &types.BrokerNodeGroupInfo{ClientSubnets: subnets, InstanceType: aws.String("kafka.m5.large")}
}

func createCluster(t *testing.T, e *env, name string, brokers int32, subnets ...string) *kafka.CreateClusterOutput {
	t.Helper()
	out, err := e.client.CreateCluster(t.Context(), &kafka.CreateClusterInput{
		ClusterName:         aws.String(name),
		KafkaVersion:        aws.String("3.9.x"),
		NumberOfBrokerNodes: aws.Int32(brokers),
		BrokerNodeGroupInfo: brokerInfo(subnets...),
		Tags:                map[string]string{"team": "data"},
	})
	if err != nil {
		t.Fatalf("CreateCluster %s: %v", name, err)
	}
	return out
}

// activate plays the reconciler: it records nodes and marks the cluster ACTIVE.
func activate(t *testing.T, e *env, arn string, ports ...int) {
	t.Helper()
	ctx := t.Context()
	for i, p := range ports {
		if err := e.store.AddNode(ctx, cluster.Node{ClusterARN: arn, BrokerID: i + 1, NodeARN: arn + "-node", ClientSubnet: "subnet-a", Zone: "use1-az1", Port: p, AddedTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.UpdateCluster(ctx, arn, func(c *cluster.Cluster) (*cluster.Operation, error) {
		c.State, c.ActiveOperationARN, c.CurrentVersion = cluster.Active, "", cluster.NewVersion()
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestClusterLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	created := createCluster(t, e, "orders", 3, "subnet-a", "subnet-b", "subnet-c")
	if created.State != types.ClusterStateCreating || !strings.HasPrefix(*created.ClusterArn, "arn:aws:kafka:us-east-1:000000000000:cluster/orders/") {
		t.Fatalf("CreateCluster = %+v", created)
	}
	arn := created.ClusterArn

	d, err := e.client.DescribeCluster(ctx, &kafka.DescribeClusterInput{ClusterArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	ci := d.ClusterInfo
	if ci.State != types.ClusterStateCreating || *ci.NumberOfBrokerNodes != 3 || *ci.CurrentBrokerSoftwareInfo.KafkaVersion != "3.9.x" ||
		ci.Tags["team"] != "data" || ci.CreationTime == nil || *ci.CurrentVersion == "" || ci.ActiveOperationArn == nil ||
		ci.EncryptionInfo.EncryptionInTransit.ClientBroker != types.ClientBrokerPlaintext || !*ci.ClientAuthentication.Unauthenticated.Enabled {
		t.Fatalf("DescribeCluster = %+v", ci)
	}
	d2, err := e.client.DescribeClusterV2(ctx, &kafka.DescribeClusterV2Input{ClusterArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	if d2.ClusterInfo.ClusterType != types.ClusterTypeProvisioned || *d2.ClusterInfo.Provisioned.NumberOfBrokerNodes != 3 {
		t.Fatalf("DescribeClusterV2 = %+v", d2.ClusterInfo)
	}

	// The create operation is listed and describable in both versions.
	ops, err := e.client.ListClusterOperations(ctx, &kafka.ListClusterOperationsInput{ClusterArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	if len(ops.ClusterOperationInfoList) != 1 || *ops.ClusterOperationInfoList[0].OperationType != cluster.OpCreate {
		t.Fatalf("ListClusterOperations = %+v", ops.ClusterOperationInfoList)
	}
	opARN := ops.ClusterOperationInfoList[0].OperationArn
	if *opARN != *ci.ActiveOperationArn {
		t.Errorf("operation %s is not the active operation %s", *opARN, *ci.ActiveOperationArn)
	}
	if _, err := e.client.DescribeClusterOperation(ctx, &kafka.DescribeClusterOperationInput{ClusterOperationArn: opARN}); err != nil {
		t.Fatal(err)
	}
	opv2, err := e.client.DescribeClusterOperationV2(ctx, &kafka.DescribeClusterOperationV2Input{ClusterOperationArn: opARN})
	if err != nil {
		t.Fatal(err)
	}
	if *opv2.ClusterOperationInfo.Provisioned.TargetClusterInfo.NumberOfBrokerNodes != 3 {
		t.Errorf("DescribeClusterOperationV2 target = %+v", opv2.ClusterOperationInfo.Provisioned.TargetClusterInfo)
	}
	if l, err := e.client.ListClusterOperationsV2(ctx, &kafka.ListClusterOperationsV2Input{ClusterArn: arn}); err != nil || len(l.ClusterOperationInfoList) != 1 {
		t.Fatalf("ListClusterOperationsV2 = %+v, %v", l, err)
	}

	// Bootstrap brokers exist only once data can flow.
	_, err = e.client.GetBootstrapBrokers(ctx, &kafka.GetBootstrapBrokersInput{ClusterArn: arn})
	var conflict *types.ConflictException
	if !errors.As(err, &conflict) {
		t.Fatalf("GetBootstrapBrokers while CREATING: err = %v, want ConflictException", err)
	}
	stale := *ci.CurrentVersion
	activate(t, e, *arn, 19001, 19002, 19003)
	bb, err := e.client.GetBootstrapBrokers(ctx, &kafka.GetBootstrapBrokersInput{ClusterArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := *bb.BootstrapBrokerString, "127.0.0.1:19001,127.0.0.1:19002,127.0.0.1:19003"; got != want {
		t.Errorf("bootstrap = %s, want %s", got, want)
	}
	nodes, err := e.client.ListNodes(ctx, &kafka.ListNodesInput{ClusterArn: arn, MaxResults: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.NodeInfoList) != 2 || nodes.NextToken == nil || *nodes.NodeInfoList[1].BrokerNodeInfo.BrokerId != 2 {
		t.Fatalf("ListNodes page 1 = %+v", nodes)
	}
	nodes, err = e.client.ListNodes(ctx, &kafka.ListNodesInput{ClusterArn: arn, NextToken: nodes.NextToken})
	if err != nil || len(nodes.NodeInfoList) != 1 || nodes.NextToken != nil {
		t.Fatalf("ListNodes page 2 = %+v, %v", nodes, err)
	}

	// A second cluster, through V2; then list with pagination and filters.
	v2, err := e.client.CreateClusterV2(ctx, &kafka.CreateClusterV2Input{
		ClusterName: aws.String("payments"),
		Provisioned: &types.ProvisionedRequest{
			BrokerNodeGroupInfo: brokerInfo("subnet-a"), KafkaVersion: aws.String("3.9.x.kraft"), NumberOfBrokerNodes: aws.Int32(1),
		},
	})
	if err != nil || v2.ClusterType != types.ClusterTypeProvisioned {
		t.Fatalf("CreateClusterV2 = %+v, %v", v2, err)
	}
	var names []string
	p := kafka.NewListClustersPaginator(e.client, &kafka.ListClustersInput{MaxResults: aws.Int32(1)})
	for p.HasMorePages() {
		pg, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range pg.ClusterInfoList {
			names = append(names, *c.ClusterName)
		}
	}
	if strings.Join(names, ",") != "orders,payments" {
		t.Errorf("ListClusters pages = %v", names)
	}
	l2, err := e.client.ListClustersV2(ctx, &kafka.ListClustersV2Input{ClusterNameFilter: aws.String("pay")})
	if err != nil || len(l2.ClusterInfoList) != 1 || *l2.ClusterInfoList[0].ClusterName != "payments" {
		t.Fatalf("ListClustersV2 filtered = %+v, %v", l2, err)
	}

	// Delete: a stale version is refused and changes nothing; then it works once.
	_, err = e.client.DeleteCluster(ctx, &kafka.DeleteClusterInput{ClusterArn: arn, CurrentVersion: aws.String(stale)})
	var bad *types.BadRequestException
	if !errors.As(err, &bad) || !strings.Contains(*bad.Message, "isn't current") {
		t.Fatalf("DeleteCluster with stale version: err = %v", err)
	}
	d, _ = e.client.DescribeCluster(ctx, &kafka.DescribeClusterInput{ClusterArn: arn})
	if d.ClusterInfo.State != types.ClusterStateActive {
		t.Fatalf("state after refused delete = %s", d.ClusterInfo.State)
	}
	del, err := e.client.DeleteCluster(ctx, &kafka.DeleteClusterInput{ClusterArn: arn, CurrentVersion: d.ClusterInfo.CurrentVersion})
	if err != nil || del.State != types.ClusterStateDeleting {
		t.Fatalf("DeleteCluster = %+v, %v", del, err)
	}
	_, err = e.client.DeleteCluster(ctx, &kafka.DeleteClusterInput{ClusterArn: arn})
	if !errors.As(err, &bad) || !strings.Contains(*bad.Message, "DELETING state") {
		t.Fatalf("second DeleteCluster: err = %v", err)
	}
}

func TestConfigurations(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c, err := e.client.CreateConfiguration(ctx, &kafka.CreateConfigurationInput{
		Name:             aws.String("retention"),
		Description:      aws.String("one day"),
		KafkaVersions:    []string{"3.9.x"},
		ServerProperties: []byte("log.retention.hours=24\nauto.create.topics.enable=true\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if *c.LatestRevision.Revision != 1 || c.State != types.ConfigurationStateActive {
		t.Fatalf("CreateConfiguration = %+v", c)
	}
	u, err := e.client.UpdateConfiguration(ctx, &kafka.UpdateConfigurationInput{Arn: c.Arn, ServerProperties: []byte("log.retention.hours=48\n"), Description: aws.String("two days")})
	if err != nil || *u.LatestRevision.Revision != 2 {
		t.Fatalf("UpdateConfiguration = %+v, %v", u, err)
	}
	d, err := e.client.DescribeConfiguration(ctx, &kafka.DescribeConfigurationInput{Arn: c.Arn})
	if err != nil || *d.LatestRevision.Revision != 2 || d.KafkaVersions[0] != "3.9.x" {
		t.Fatalf("DescribeConfiguration = %+v, %v", d, err)
	}
	r, err := e.client.DescribeConfigurationRevision(ctx, &kafka.DescribeConfigurationRevisionInput{Arn: c.Arn, Revision: aws.Int64(1)})
	if err != nil || string(r.ServerProperties) != "log.retention.hours=24\nauto.create.topics.enable=true\n" {
		t.Fatalf("DescribeConfigurationRevision = %q, %v", r.ServerProperties, err)
	}
	revs, err := e.client.ListConfigurationRevisions(ctx, &kafka.ListConfigurationRevisionsInput{Arn: c.Arn})
	if err != nil || len(revs.Revisions) != 2 || *revs.Revisions[1].Description != "two days" {
		t.Fatalf("ListConfigurationRevisions = %+v, %v", revs, err)
	}
	list, err := e.client.ListConfigurations(ctx, &kafka.ListConfigurationsInput{})
	if err != nil || len(list.Configurations) != 1 {
		t.Fatalf("ListConfigurations = %+v, %v", list, err)
	}
	_, err = e.client.CreateConfiguration(ctx, &kafka.CreateConfigurationInput{Name: aws.String("retention"), ServerProperties: []byte("a=b")})
	var conflict *types.ConflictException
	if !errors.As(err, &conflict) {
		t.Fatalf("duplicate CreateConfiguration: err = %v", err)
	}

	// A cluster may use a revision that exists, for its Kafka version.
	in := &kafka.CreateClusterInput{
		ClusterName: aws.String("configured"), KafkaVersion: aws.String("3.9.x"), NumberOfBrokerNodes: aws.Int32(1),
		BrokerNodeGroupInfo: brokerInfo("subnet-a"),
		ConfigurationInfo:   &types.ConfigurationInfo{Arn: c.Arn, Revision: aws.Int64(3)},
	}
	var bad *types.BadRequestException
	if _, err := e.client.CreateCluster(ctx, in); !errors.As(err, &bad) || *bad.InvalidParameter != "configurationInfo.revision" {
		t.Fatalf("CreateCluster with missing revision: err = %v", err)
	}
	in.ConfigurationInfo.Revision = aws.Int64(2)
	created, err := e.client.CreateCluster(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	dc, _ := e.client.DescribeCluster(ctx, &kafka.DescribeClusterInput{ClusterArn: created.ClusterArn})
	if *dc.ClusterInfo.CurrentBrokerSoftwareInfo.ConfigurationRevision != 2 {
		t.Errorf("cluster configuration = %+v", dc.ClusterInfo.CurrentBrokerSoftwareInfo)
	}
	if _, err := e.client.DeleteConfiguration(ctx, &kafka.DeleteConfigurationInput{Arn: c.Arn}); !errors.As(err, &bad) || !strings.Contains(*bad.Message, "in use") {
		t.Fatalf("DeleteConfiguration in use: err = %v", err)
	}
	if err := e.store.RemoveCluster(ctx, *created.ClusterArn); err != nil {
		t.Fatal(err)
	}
	del, err := e.client.DeleteConfiguration(ctx, &kafka.DeleteConfigurationInput{Arn: c.Arn})
	if err != nil || del.State != types.ConfigurationStateDeleting {
		t.Fatalf("DeleteConfiguration = %+v, %v", del, err)
	}
	var nf *types.NotFoundException
	if _, err := e.client.DescribeConfiguration(ctx, &kafka.DescribeConfigurationInput{Arn: c.Arn}); !errors.As(err, &nf) {
		t.Fatalf("DescribeConfiguration after delete: err = %v", err)
	}
}

func TestTags(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	arn := createCluster(t, e, "tagged", 1, "subnet-a").ClusterArn
	if _, err := e.client.TagResource(ctx, &kafka.TagResourceInput{ResourceArn: arn, Tags: map[string]string{"env": "dev", "owner": "me"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UntagResource(ctx, &kafka.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"team", "owner"}}); err != nil {
		t.Fatal(err)
	}
	got, err := e.client.ListTagsForResource(ctx, &kafka.ListTagsForResourceInput{ResourceArn: arn})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tags) != 1 || got.Tags["env"] != "dev" {
		t.Errorf("tags = %v, want env=dev only", got.Tags)
	}
	missing := strings.Replace(*arn, "/tagged/", "/nope/", 1)
	var nf *types.NotFoundException
	if _, err := e.client.TagResource(ctx, &kafka.TagResourceInput{ResourceArn: &missing, Tags: map[string]string{"a": "b"}}); !errors.As(err, &nf) {
		t.Fatalf("TagResource on unknown ARN: err = %v", err)
	}
}

func TestKafkaVersions(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	v, err := e.client.ListKafkaVersions(ctx, &kafka.ListKafkaVersionsInput{})
	if err != nil || len(v.KafkaVersions) != len(cluster.KafkaVersions) || v.KafkaVersions[0].Status != types.KafkaVersionStatusActive {
		t.Fatalf("ListKafkaVersions = %+v, %v", v, err)
	}
	arn := createCluster(t, e, "versions", 1, "subnet-a").ClusterArn
	cv, err := e.client.GetCompatibleKafkaVersions(ctx, &kafka.GetCompatibleKafkaVersionsInput{ClusterArn: arn})
	if err != nil || len(cv.CompatibleKafkaVersions) != 1 || *cv.CompatibleKafkaVersions[0].SourceVersion != "3.9.x" {
		t.Fatalf("GetCompatibleKafkaVersions = %+v, %v", cv, err)
	}
	all, err := e.client.GetCompatibleKafkaVersions(ctx, &kafka.GetCompatibleKafkaVersionsInput{})
	if err != nil || len(all.CompatibleKafkaVersions) != len(cluster.KafkaVersions) {
		t.Fatalf("GetCompatibleKafkaVersions (all) = %+v, %v", all, err)
	}
}

// call sends a raw request signed (unless sign is false) with key/sec at signing time at.
func call(t *testing.T, e *env, method, path, body string, key, sec string, at time.Time, sign bool) (int, http.Header, map[string]any) {
	t.Helper()
	r, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if sign {
		sum := sha256.Sum256([]byte(body))
		if err := v4.NewSigner().SignHTTP(t.Context(), aws.Credentials{AccessKeyID: key, SecretAccessKey: sec}, r, hex.EncodeToString(sum[:]), "kafka", region, at); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: body %q is not JSON", method, path, b)
		}
	}
	return resp.StatusCode, resp.Header, m
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	good := createCluster(t, e, "good", 2, "subnet-a", "subnet-b")
	escaped := func(arn string) string {
		return strings.NewReplacer(":", "%3A", "/", "%2F").Replace(arn)
	}
	unknownARN := strings.Replace(*good.ClusterArn, "/good/", "/ghost/", 1)
	valid := `"kafkaVersion":"3.9.x","brokerNodeGroupInfo":{"clientSubnets":["subnet-a","subnet-b","subnet-c"],"instanceType":"kafka.m5.large"}`
	now := time.Now()
	tests := []struct {
		name, method, path, body string
		key, sec                 string
		at                       time.Time
		unsigned                 bool
		status                   int
		code, param, msg         string
	}{
		{name: "missing clusterName", method: "POST", path: "/v1/clusters", body: `{"numberOfBrokerNodes":3,` + valid + `}`,
			status: 400, code: "BadRequestException", param: "clusterName", msg: "clusterName is required"},
		{name: "missing brokerNodeGroupInfo", method: "POST", path: "/v1/clusters", body: `{"clusterName":"x","kafkaVersion":"3.9.x","numberOfBrokerNodes":3}`,
			status: 400, code: "BadRequestException", param: "brokerNodeGroupInfo", msg: "is required"},
		{name: "broker count not a multiple of subnets", method: "POST", path: "/v1/clusters", body: `{"clusterName":"x","numberOfBrokerNodes":4,` + valid + `}`,
			status: 400, code: "BadRequestException", param: "numberOfBrokerNodes", msg: "must be a multiple of the number of client subnets (3)"},
		{name: "v2 broker count", method: "POST", path: "/api/v2/clusters", body: `{"clusterName":"x","provisioned":{"numberOfBrokerNodes":2,` + valid + `}}`,
			status: 400, code: "BadRequestException", param: "provisioned.numberOfBrokerNodes", msg: "multiple"},
		{name: "wrong type", method: "POST", path: "/v1/clusters", body: `{"clusterName":"x","numberOfBrokerNodes":"3",` + valid + `}`,
			status: 400, code: "BadRequestException", param: "numberOfBrokerNodes", msg: "must be a number"},
		{name: "unknown member", method: "POST", path: "/v1/clusters", body: `{"clusterName":"x","numberOfBrokers":3,` + valid + `}`,
			status: 400, code: "BadRequestException", param: "numberOfBrokers", msg: "not a member"},
		{name: "unsupported TLS", method: "POST", path: "/v1/clusters", body: `{"clusterName":"x","numberOfBrokerNodes":3,"encryptionInfo":{"encryptionInTransit":{"clientBroker":"TLS"}},` + valid + `}`,
			status: 400, code: "BadRequestException", param: "encryptionInfo.encryptionInTransit.clientBroker", msg: "not supported yet"},
		{name: "unsupported security groups", method: "POST", path: "/v1/clusters", body: `{"clusterName":"x","numberOfBrokerNodes":3,"kafkaVersion":"3.9.x","brokerNodeGroupInfo":{"clientSubnets":["a"],"instanceType":"kafka.m5.large","securityGroups":["sg-1"]}}`,
			status: 400, code: "BadRequestException", param: "brokerNodeGroupInfo.securityGroups", msg: "not supported yet"},
		{name: "unsupported serverless", method: "POST", path: "/api/v2/clusters", body: `{"clusterName":"x","serverless":{"vpcConfigs":[{"subnetIds":["a"]}]}}`,
			status: 400, code: "BadRequestException", param: "serverless", msg: "not supported yet"},
		{name: "unsupported kafka version", method: "POST", path: "/v1/clusters", body: `{"clusterName":"x","numberOfBrokerNodes":3,"kafkaVersion":"1.1.1","brokerNodeGroupInfo":{"clientSubnets":["a"],"instanceType":"kafka.m5.large"}}`,
			status: 400, code: "BadRequestException", param: "kafkaVersion", msg: "3.9.x"},
		{name: "name taken", method: "POST", path: "/v1/clusters", body: `{"clusterName":"good","numberOfBrokerNodes":3,` + valid + `}`,
			status: 409, code: "ConflictException", param: "clusterName", msg: "already exists"},
		{name: "unknown cluster ARN", method: "GET", path: "/v1/clusters/" + escaped(unknownARN),
			status: 404, code: "NotFoundException", param: "clusterArn", msg: "does not exist"},
		{name: "delete unknown cluster ARN", method: "DELETE", path: "/v1/clusters/" + escaped(unknownARN),
			status: 404, code: "NotFoundException", param: "clusterArn", msg: "does not exist"},
		{name: "malformed ARN", method: "GET", path: "/v1/clusters/not-an-arn",
			status: 400, code: "BadRequestException", param: "clusterArn", msg: "not a valid cluster ARN"},
		{name: "stale currentVersion", method: "DELETE", path: "/v1/clusters/" + escaped(*good.ClusterArn) + "?currentVersion=K0000000000000",
			status: 400, code: "BadRequestException", param: "currentVersion", msg: "isn't current"},
		{name: "bad maxResults", method: "GET", path: "/v1/clusters?maxResults=500",
			status: 400, code: "BadRequestException", param: "maxResults", msg: "1 to 100"},
		{name: "bad nextToken", method: "GET", path: "/v1/clusters?nextToken=garbage",
			status: 400, code: "BadRequestException", param: "nextToken", msg: "omit it"},
		{name: "not implemented", method: "PUT", path: "/v1/clusters/" + escaped(*good.ClusterArn) + "/nodes/count", body: `{"currentVersion":"x","targetNumberOfBrokerNodes":4}`,
			status: 400, code: "BadRequestException", msg: "does not support the UpdateBrokerCount operation yet"},
		{name: "unknown path", method: "GET", path: "/v1/nothing",
			status: 404, code: "NotFoundException", msg: "no MSK operation"},
		{name: "unsigned", method: "GET", path: "/v1/clusters", unsigned: true,
			status: 403, code: "MissingAuthenticationTokenException", msg: "Missing Authentication Token"},
		{name: "unsigned create", method: "POST", path: "/v1/clusters", body: `{"clusterName":"sneaky","numberOfBrokerNodes":3,` + valid + `}`, unsigned: true,
			status: 403, code: "MissingAuthenticationTokenException", msg: "sign the request"},
		{name: "wrong secret", method: "POST", path: "/v1/clusters", body: `{"clusterName":"sneaky","numberOfBrokerNodes":3,` + valid + `}`, sec: "wrong",
			status: 403, code: "InvalidSignatureException", msg: "signature we calculated does not match"},
		{name: "unknown key", method: "GET", path: "/v1/clusters", key: "AKIAUNKNOWN000000000",
			status: 403, code: "UnrecognizedClientException", msg: "security token included in the request is invalid"},
		{name: "stale timestamp", method: "GET", path: "/v1/clusters", at: now.Add(-20 * time.Minute),
			status: 403, code: "InvalidSignatureException", msg: "Signature expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, sec, at := keyID, secret, now
			if tt.key != "" {
				key = tt.key
			}
			if tt.sec != "" {
				sec = tt.sec
			}
			if !tt.at.IsZero() {
				at = tt.at
			}
			status, hdr, body := call(t, e, tt.method, tt.path, tt.body, key, sec, at, !tt.unsigned)
			if status != tt.status || hdr.Get("X-Amzn-ErrorType") != tt.code {
				t.Fatalf("got %d %s %v, want %d %s", status, hdr.Get("X-Amzn-ErrorType"), body, tt.status, tt.code)
			}
			msg, _ := body["message"].(string)
			if !strings.Contains(msg, tt.msg) {
				t.Errorf("message %q does not contain %q", msg, tt.msg)
			}
			if p, _ := body["invalidParameter"].(string); p != tt.param {
				t.Errorf("invalidParameter = %q, want %q", p, tt.param)
			}
			if hdr.Get("X-Amzn-RequestId") == "" {
				t.Error("no x-amzn-RequestId header")
			}
		})
	}
	// None of the refused calls changed anything.
	list, err := e.client.ListClusters(t.Context(), &kafka.ListClustersInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.ClusterInfoList) != 1 || list.ClusterInfoList[0].State != types.ClusterStateCreating {
		t.Fatalf("clusters after bad input = %+v", list.ClusterInfoList)
	}
}

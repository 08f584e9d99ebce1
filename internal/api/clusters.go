package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/fjord-io/fjord/internal/cluster"
)

func (h *Handler) createCluster(ctx context.Context, req *request) (any, error) {
	var in createClusterRequest
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	c, err := h.create(ctx, in.ClusterName, in.Tags, "", &in.provisionedRequest)
	if err != nil {
		return nil, err
	}
	return createClusterResponse{ClusterARN: c.ARN, ClusterName: c.Name, State: string(c.State)}, nil
}

func (h *Handler) createClusterV2(ctx context.Context, req *request) (any, error) {
	var in createClusterV2Request
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	if len(in.Serverless) > 0 && string(in.Serverless) != "null" {
		return nil, cluster.Unsupportedf("serverless", "serverless clusters are not supported yet; create a provisioned cluster instead")
	}
	if in.Provisioned == nil {
		return nil, cluster.Invalidf("provisioned", "provisioned is required: give brokerNodeGroupInfo, kafkaVersion and numberOfBrokerNodes in it")
	}
	c, err := h.create(ctx, in.ClusterName, in.Tags, "provisioned.", in.Provisioned)
	if err != nil {
		return nil, err
	}
	return createClusterResponse{ClusterARN: c.ARN, ClusterName: c.Name, State: string(c.State), ClusterType: "PROVISIONED"}, nil
}

// create validates and stores a new cluster in CREATING, with its CREATE
// operation. The reconciler takes it from there.
func (h *Handler) create(ctx context.Context, name *string, tags map[string]string, prefix string, p *provisionedRequest) (cluster.Cluster, error) {
	if name == nil {
		return cluster.Cluster{}, cluster.Invalidf("clusterName", "clusterName is required")
	}
	if err := cluster.CheckName("clusterName", *name); err != nil {
		return cluster.Cluster{}, err
	}
	if err := checkTags(tags); err != nil {
		return cluster.Cluster{}, err
	}
	spec, err := toSpec(prefix, p)
	if err != nil {
		return cluster.Cluster{}, err
	}
	if err := h.checkConfiguration(ctx, prefix+"configurationInfo", spec); err != nil {
		return cluster.Cluster{}, err
	}
	now := h.now()
	arn := cluster.ARN{Partition: h.cfg.Partition, Region: h.cfg.Region, Account: h.cfg.Account,
		Resource: cluster.ResourceCluster, Name: *name, ID: cluster.NewID()}
	opARN := arn
	opARN.Resource, opARN.Sub = cluster.ResourceOperation, uuid.NewString()
	c := cluster.Cluster{
		ARN: arn.String(), Name: *name, Spec: spec, State: cluster.Creating, CurrentVersion: cluster.NewVersion(),
		CreationTime: now, ActiveOperationARN: opARN.String(), Tags: tags,
	}
	target := spec
	op := cluster.Operation{
		ARN: opARN.String(), ClusterARN: c.ARN, Type: cluster.OpCreate, State: cluster.OpPending,
		CreationTime: now, Target: &target,
	}
	if err := h.cfg.Store.CreateCluster(ctx, c, op); err != nil {
		return cluster.Cluster{}, err
	}
	return c, nil
}

// checkConfiguration checks that the configuration revision spec names
// exists and allows the cluster's Kafka version.
func (h *Handler) checkConfiguration(ctx context.Context, field string, spec cluster.Spec) error {
	ref := spec.Configuration
	if ref == nil {
		return nil
	}
	if _, err := cluster.ParseARN(field+".arn", cluster.ResourceConfiguration, ref.ARN); err != nil {
		return err
	}
	cfg, err := h.cfg.Store.Configuration(ctx, ref.ARN)
	var ce *cluster.Error
	if errors.As(err, &ce) && ce.Kind == cluster.NotFound {
		return cluster.Invalidf(field+".arn", "%s.arn: configuration %s does not exist; create it first or fix the ARN", field, ref.ARN)
	}
	if err != nil {
		return err
	}
	if ref.Revision < 1 || ref.Revision > cfg.LatestRevision.Revision {
		return cluster.Invalidf(field+".revision", "%s.revision %d does not exist; configuration %s has revisions 1 to %d", field, ref.Revision, cfg.Name, cfg.LatestRevision.Revision)
	}
	if len(cfg.KafkaVersions) > 0 && !slices.Contains(cfg.KafkaVersions, spec.KafkaVersion) {
		return cluster.Invalidf(field+".arn", "configuration %s is for Kafka %s, not %s; choose a configuration made for %s", cfg.Name, strings.Join(cfg.KafkaVersions, ", "), spec.KafkaVersion, spec.KafkaVersion)
	}
	return nil
}

// clusterFor reads the cluster the clusterArn label names.
func (h *Handler) clusterFor(ctx context.Context, req *request) (cluster.Cluster, error) {
	arn := req.params["clusterArn"]
	if _, err := cluster.ParseARN("clusterArn", cluster.ResourceCluster, arn); err != nil {
		return cluster.Cluster{}, err
	}
	return h.cfg.Store.Cluster(ctx, arn)
}

func (h *Handler) describeCluster(ctx context.Context, req *request) (any, error) {
	c, err := h.clusterFor(ctx, req)
	if err != nil {
		return nil, err
	}
	return map[string]any{"clusterInfo": toClusterInfo(c)}, nil
}

func (h *Handler) describeClusterV2(ctx context.Context, req *request) (any, error) {
	c, err := h.clusterFor(ctx, req)
	if err != nil {
		return nil, err
	}
	return map[string]any{"clusterInfo": toClusterV2(c)}, nil
}

func (h *Handler) listClusters(ctx context.Context, req *request) (any, error) {
	p, err := page(req)
	if err != nil {
		return nil, err
	}
	cs, next, err := h.cfg.Store.Clusters(ctx, req.http.URL.Query().Get("clusterNameFilter"), p)
	if err != nil {
		return nil, err
	}
	out := make([]clusterInfo, len(cs))
	for i, c := range cs {
		out[i] = toClusterInfo(c)
	}
	return list("clusterInfoList", out, next), nil
}

func (h *Handler) listClustersV2(ctx context.Context, req *request) (any, error) {
	p, err := page(req)
	if err != nil {
		return nil, err
	}
	q := req.http.URL.Query()
	out := []clusterV2{}
	switch t := q.Get("clusterTypeFilter"); t {
	case "", "PROVISIONED":
	case "SERVERLESS":
		return map[string]any{"clusterInfoList": out}, nil
	default:
		return nil, cluster.Invalidf("clusterTypeFilter", "clusterTypeFilter must be PROVISIONED or SERVERLESS, not %q", t)
	}
	cs, next, err := h.cfg.Store.Clusters(ctx, q.Get("clusterNameFilter"), p)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		out = append(out, toClusterV2(c))
	}
	return list("clusterInfoList", out, next), nil
}

// list is the body of a paginated list response: the items under key, and
// nextToken only when there is a next page.
func list(key string, items any, next string) map[string]any {
	m := map[string]any{key: items}
	if next != "" {
		m["nextToken"] = next
	}
	return m
}

func (h *Handler) deleteCluster(ctx context.Context, req *request) (any, error) {
	arn := req.params["clusterArn"]
	if _, err := cluster.ParseARN("clusterArn", cluster.ResourceCluster, arn); err != nil {
		return nil, err
	}
	version := req.http.URL.Query().Get("currentVersion")
	now := h.now()
	c, err := h.cfg.Store.UpdateCluster(ctx, arn, func(c *cluster.Cluster) (*cluster.Operation, error) {
		if err := c.State.Admit(cluster.CallDelete); err != nil {
			return nil, err
		}
		if version != "" && version != c.CurrentVersion {
			return nil, staleVersion(version, c)
		}
		a, _ := cluster.ParseARN("clusterArn", cluster.ResourceCluster, arn)
		a.Resource, a.Sub = cluster.ResourceOperation, uuid.NewString()
		source := c.Spec
		op := &cluster.Operation{ARN: a.String(), ClusterARN: arn, Type: cluster.OpDelete, State: cluster.OpPending, CreationTime: now, Source: &source}
		c.State, c.CurrentVersion, c.ActiveOperationARN, c.StateInfo = cluster.Deleting, cluster.NewVersion(), op.ARN, cluster.StateInfo{}
		return op, nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"clusterArn": c.ARN, "state": string(c.State)}, nil
}

func staleVersion(sent string, c *cluster.Cluster) error {
	return cluster.Invalidf("currentVersion", "The version of the cluster isn't current: currentVersion %s is stale, the cluster is now at %s (%s). Describe the cluster and retry with its currentVersion.",
		sent, c.CurrentVersion, c.State)
}

func (h *Handler) getBootstrapBrokers(ctx context.Context, req *request) (any, error) {
	c, err := h.clusterFor(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := c.State.Admit(cluster.CallBootstrap); err != nil {
		var ce *cluster.Error
		if errors.As(err, &ce) {
			ce.Kind = cluster.Conflict
		}
		return nil, err
	}
	nodes, err := h.cfg.Store.Nodes(ctx, c.ARN)
	if err != nil {
		return nil, err
	}
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", n.Port)
	}
	return map[string]string{"bootstrapBrokerString": strings.Join(addrs, ",")}, nil
}

func (h *Handler) listNodes(ctx context.Context, req *request) (any, error) {
	p, err := page(req)
	if err != nil {
		return nil, err
	}
	c, err := h.clusterFor(ctx, req)
	if err != nil {
		return nil, err
	}
	nodes, err := h.cfg.Store.Nodes(ctx, c.ARN)
	if err != nil {
		return nil, err
	}
	nodes, next, err := pageSlice(nodes, p)
	if err != nil {
		return nil, err
	}
	out := make([]nodeInfo, len(nodes))
	for i, n := range nodes {
		out[i] = nodeInfo{
			AddedToClusterTime: n.AddedTime.UTC().Format("2006-01-02T15:04:05.000Z"),
			InstanceType:       strings.TrimPrefix(c.Spec.InstanceType, "kafka."),
			NodeARN:            n.NodeARN,
			NodeType:           "BROKER",
			BrokerNodeInfo: &brokerNodeInfo{
				BrokerID:                  float64(n.BrokerID),
				ClientSubnet:              n.ClientSubnet,
				ClientVPCIPAddress:        "127.0.0.1",
				CurrentBrokerSoftwareInfo: softwareInfo(c.Spec),
				Endpoints:                 []string{fmt.Sprintf("127.0.0.1:%d", n.Port)},
			},
		}
	}
	return list("nodeInfoList", out, next), nil
}

func softwareInfo(s cluster.Spec) brokerSoftwareInfo {
	b := brokerSoftwareInfo{KafkaVersion: s.KafkaVersion}
	if s.Configuration != nil {
		b.ConfigurationARN, b.ConfigurationRevision = s.Configuration.ARN, s.Configuration.Revision
	}
	return b
}

func toBrokerNodeGroupInfo(s cluster.Spec) outBrokerNodeGroupInfo {
	b := outBrokerNodeGroupInfo{BrokerAZDistribution: "DEFAULT", ClientSubnets: s.ClientSubnets, InstanceType: s.InstanceType}
	if s.VolumeSizeGiB > 0 {
		b.StorageInfo = &outStorageInfo{}
		b.StorageInfo.EBSStorageInfo.VolumeSize = s.VolumeSizeGiB
	}
	return b
}

func toClientAuthentication(cluster.Spec) outClientAuthentication {
	var a outClientAuthentication
	a.Unauthenticated.Enabled = true
	return a
}

func toEncryptionInfo(s cluster.Spec) outEncryptionInfo {
	var e outEncryptionInfo
	e.EncryptionInTransit.ClientBroker = s.ClientBroker
	return e
}

func toStateInfo(c cluster.Cluster) *stateInfo {
	if c.StateInfo.Code == "" && c.StateInfo.Message == "" {
		return nil
	}
	return &stateInfo{Code: c.StateInfo.Code, Message: c.StateInfo.Message}
}

func tagsOf(c cluster.Cluster) map[string]string {
	if c.Tags == nil {
		return map[string]string{}
	}
	return c.Tags
}

func toClusterInfo(c cluster.Cluster) clusterInfo {
	return clusterInfo{
		ActiveOperationARN:        c.ActiveOperationARN,
		BrokerNodeGroupInfo:       toBrokerNodeGroupInfo(c.Spec),
		ClientAuthentication:      toClientAuthentication(c.Spec),
		ClusterARN:                c.ARN,
		ClusterName:               c.Name,
		CreationTime:              ptrTime(c.CreationTime),
		CurrentBrokerSoftwareInfo: softwareInfo(c.Spec),
		CurrentVersion:            c.CurrentVersion,
		EncryptionInfo:            toEncryptionInfo(c.Spec),
		EnhancedMonitoring:        c.Spec.EnhancedMonitoring,
		NumberOfBrokerNodes:       c.Spec.NumberOfBrokerNodes,
		State:                     string(c.State),
		StateInfo:                 toStateInfo(c),
		Tags:                      tagsOf(c),
		StorageMode:               c.Spec.StorageMode,
		CustomerActionStatus:      "NONE",
	}
}

func toClusterV2(c cluster.Cluster) clusterV2 {
	return clusterV2{
		ActiveOperationARN: c.ActiveOperationARN,
		ClusterType:        "PROVISIONED",
		ClusterARN:         c.ARN,
		ClusterName:        c.Name,
		CreationTime:       ptrTime(c.CreationTime),
		CurrentVersion:     c.CurrentVersion,
		State:              string(c.State),
		StateInfo:          toStateInfo(c),
		Tags:               tagsOf(c),
		Provisioned: provisioned{
			BrokerNodeGroupInfo:       toBrokerNodeGroupInfo(c.Spec),
			CurrentBrokerSoftwareInfo: softwareInfo(c.Spec),
			ClientAuthentication:      toClientAuthentication(c.Spec),
			EncryptionInfo:            toEncryptionInfo(c.Spec),
			EnhancedMonitoring:        c.Spec.EnhancedMonitoring,
			NumberOfBrokerNodes:       c.Spec.NumberOfBrokerNodes,
			StorageMode:               c.Spec.StorageMode,
			CustomerActionStatus:      "NONE",
		},
	}
}

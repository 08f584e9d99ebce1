package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/fjord-io/fjord/internal/cluster"
)

// route is one operation of the MSK model: its method and path template.
type route struct {
	method string
	path   []string // template segments; "{x}" matches one segment as label x
	op     string
	handle handlerFunc
}

// table lists every operation of the MSK model (64). Operations Fjord does
// not implement yet answer BadRequestException saying so.
func (h *Handler) table() []route {
	rs := []struct {
		method, path, op string
		fn               handlerFunc
	}{
		{"GET", "/api/v2/clusters", "ListClustersV2", h.listClustersV2},
		{"POST", "/api/v2/clusters", "CreateClusterV2", h.createClusterV2},
		{"GET", "/api/v2/clusters/{clusterArn}", "DescribeClusterV2", h.describeClusterV2},
		{"GET", "/api/v2/clusters/{clusterArn}/operations", "ListClusterOperationsV2", h.listClusterOperationsV2},
		{"GET", "/api/v2/operations/{clusterOperationArn}", "DescribeClusterOperationV2", h.describeClusterOperationV2},
		{"GET", "/replication/v1/replicators", "ListReplicators", nil},
		{"POST", "/replication/v1/replicators", "CreateReplicator", nil},
		{"DELETE", "/replication/v1/replicators/{replicatorArn}", "DeleteReplicator", nil},
		{"GET", "/replication/v1/replicators/{replicatorArn}", "DescribeReplicator", nil},
		{"PUT", "/replication/v1/replicators/{replicatorArn}/replication-info", "UpdateReplicationInfo", nil},
		{"GET", "/v1/clusters", "ListClusters", h.listClusters},
		{"POST", "/v1/clusters", "CreateCluster", h.createCluster},
		{"DELETE", "/v1/clusters/{clusterArn}", "DeleteCluster", h.deleteCluster},
		{"GET", "/v1/clusters/{clusterArn}", "DescribeCluster", h.describeCluster},
		{"GET", "/v1/clusters/{clusterArn}/bootstrap-brokers", "GetBootstrapBrokers", h.getBootstrapBrokers},
		{"PUT", "/v1/clusters/{clusterArn}/client-vpc-connection", "RejectClientVpcConnection", nil},
		{"GET", "/v1/clusters/{clusterArn}/client-vpc-connections", "ListClientVpcConnections", nil},
		{"PUT", "/v1/clusters/{clusterArn}/configuration", "UpdateClusterConfiguration", nil},
		{"PUT", "/v1/clusters/{clusterArn}/connectivity", "UpdateConnectivity", nil},
		{"PUT", "/v1/clusters/{clusterArn}/monitoring", "UpdateMonitoring", nil},
		{"GET", "/v1/clusters/{clusterArn}/nodes", "ListNodes", h.listNodes},
		{"PUT", "/v1/clusters/{clusterArn}/nodes/count", "UpdateBrokerCount", nil},
		{"PUT", "/v1/clusters/{clusterArn}/nodes/storage", "UpdateBrokerStorage", nil},
		{"PUT", "/v1/clusters/{clusterArn}/nodes/type", "UpdateBrokerType", nil},
		{"GET", "/v1/clusters/{clusterArn}/operations", "ListClusterOperations", h.listClusterOperations},
		{"DELETE", "/v1/clusters/{clusterArn}/policy", "DeleteClusterPolicy", nil},
		{"GET", "/v1/clusters/{clusterArn}/policy", "GetClusterPolicy", nil},
		{"PUT", "/v1/clusters/{clusterArn}/policy", "PutClusterPolicy", nil},
		{"PUT", "/v1/clusters/{clusterArn}/rebalancing", "UpdateRebalancing", nil},
		{"PUT", "/v1/clusters/{clusterArn}/reboot-broker", "RebootBroker", nil},
		{"GET", "/v1/clusters/{clusterArn}/scram-secrets", "ListScramSecrets", nil},
		{"PATCH", "/v1/clusters/{clusterArn}/scram-secrets", "BatchDisassociateScramSecret", nil},
		{"POST", "/v1/clusters/{clusterArn}/scram-secrets", "BatchAssociateScramSecret", nil},
		{"PATCH", "/v1/clusters/{clusterArn}/security", "UpdateSecurity", nil},
		{"PUT", "/v1/clusters/{clusterArn}/storage", "UpdateStorage", nil},
		{"GET", "/v1/clusters/{clusterArn}/topics", "ListTopics", nil},
		{"POST", "/v1/clusters/{clusterArn}/topics", "CreateTopic", nil},
		{"DELETE", "/v1/clusters/{clusterArn}/topics/{topicName}", "DeleteTopic", nil},
		{"GET", "/v1/clusters/{clusterArn}/topics/{topicName}", "DescribeTopic", nil},
		{"PUT", "/v1/clusters/{clusterArn}/topics/{topicName}", "UpdateTopic", nil},
		{"GET", "/v1/clusters/{clusterArn}/topics/{topicName}/partitions", "DescribeTopicPartitions", nil},
		{"PUT", "/v1/clusters/{clusterArn}/version", "UpdateClusterKafkaVersion", nil},
		{"GET", "/v1/compatible-kafka-versions", "GetCompatibleKafkaVersions", h.getCompatibleKafkaVersions},
		{"GET", "/v1/configurations", "ListConfigurations", h.listConfigurations},
		{"POST", "/v1/configurations", "CreateConfiguration", h.createConfiguration},
		{"DELETE", "/v1/configurations/{arn}", "DeleteConfiguration", h.deleteConfiguration},
		{"GET", "/v1/configurations/{arn}", "DescribeConfiguration", h.describeConfiguration},
		{"PUT", "/v1/configurations/{arn}", "UpdateConfiguration", h.updateConfiguration},
		{"GET", "/v1/configurations/{arn}/revisions", "ListConfigurationRevisions", h.listConfigurationRevisions},
		{"GET", "/v1/configurations/{arn}/revisions/{revision}", "DescribeConfigurationRevision", h.describeConfigurationRevision},
		{"GET", "/v1/kafka-versions", "ListKafkaVersions", h.listKafkaVersions},
		{"GET", "/v1/operations/{clusterOperationArn}", "DescribeClusterOperation", h.describeClusterOperation},
		{"DELETE", "/v1/tags/{resourceArn}", "UntagResource", h.untagResource},
		{"GET", "/v1/tags/{resourceArn}", "ListTagsForResource", h.listTagsForResource},
		{"POST", "/v1/tags/{resourceArn}", "TagResource", h.tagResource},
		{"POST", "/v1/vpc-connection", "CreateVpcConnection", nil},
		{"DELETE", "/v1/vpc-connection/{arn}", "DeleteVpcConnection", nil},
		{"GET", "/v1/vpc-connection/{arn}", "DescribeVpcConnection", nil},
		{"GET", "/v1/vpc-connections", "ListVpcConnections", nil},
	}
	out := make([]route, len(rs))
	for i, r := range rs {
		fn := r.fn
		if fn == nil {
			fn = notImplemented
		}
		out[i] = route{method: r.method, path: strings.Split(strings.Trim(r.path, "/"), "/"), op: r.op, handle: fn}
	}
	return out
}

func notImplemented(_ context.Context, req *request) (any, error) {
	return nil, cluster.Unsupportedf("", "Fjord does not support the %s operation yet; nothing was changed.", req.op)
}

// match finds the route for r by its escaped path, so that a label holding a
// percent-encoded ARN ("arn%3Aaws%3Akafka...%2F...") stays one segment.
func (h *Handler) match(r *http.Request) (route, map[string]string, error) {
	segs := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	pathMatched := false
	for _, rt := range h.routes {
		params, ok := matchPath(rt.path, segs)
		if !ok {
			continue
		}
		pathMatched = true
		if rt.method == r.Method {
			return rt, params, nil
		}
	}
	if pathMatched {
		return route{}, nil, cluster.NotFoundf("", "no MSK operation is %s %s; check the HTTP method", r.Method, r.URL.EscapedPath())
	}
	return route{}, nil, cluster.NotFoundf("", "no MSK operation matches the path %s", r.URL.EscapedPath())
}

func matchPath(tmpl, segs []string) (map[string]string, bool) {
	if len(tmpl) != len(segs) {
		return nil, false
	}
	var params map[string]string
	for i, t := range tmpl {
		if strings.HasPrefix(t, "{") {
			v, err := url.PathUnescape(segs[i])
			if err != nil || v == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[strings.Trim(t, "{}")] = v
			continue
		}
		if t != segs[i] {
			return nil, false
		}
	}
	return params, true
}

package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeCluster (key 60), v0-v1: the cluster id, controller and brokers.
// Only the broker endpoint type (1) is served; asking for controllers (2)
// gets UNSUPPORTED_ENDPOINT_TYPE, as from a Kafka broker.

func (b *Broker) handleDescribeCluster(req *kmsg.DescribeClusterRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterAuthorizedOperations = authorizedOpsOmitted
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "this broker serves only the brokers endpoint type (1)"
		resp.ErrorMessage = &msg
		return resp
	}
	resp.EndpointType = 1
	resp.ClusterID = b.meta.ClusterID()
	resp.ControllerID = b.meta.Controller()
	for _, mb := range b.metadataBrokers() {
		br := kmsg.NewDescribeClusterResponseBroker()
		br.NodeID, br.Host, br.Port, br.Rack = mb.NodeID, mb.Host, mb.Port, mb.Rack
		resp.Brokers = append(resp.Brokers, br)
	}
	return resp
}

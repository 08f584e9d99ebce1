package api

import (
	"context"

	"github.com/fjord-io/fjord/internal/cluster"
)

func (h *Handler) operationFor(ctx context.Context, req *request) (cluster.Operation, error) {
	arn := req.params["clusterOperationArn"]
	if _, err := cluster.ParseARN("clusterOperationArn", cluster.ResourceOperation, arn); err != nil {
		return cluster.Operation{}, err
	}
	return h.cfg.Store.Operation(ctx, arn)
}

// operationsFor lists the operations of the cluster the clusterArn label
// names. Operations outlive their cluster, so a deleted cluster's operations
// are still listed.
func (h *Handler) operationsFor(ctx context.Context, req *request) ([]cluster.Operation, string, error) {
	p, err := page(req)
	if err != nil {
		return nil, "", err
	}
	arn := req.params["clusterArn"]
	if _, err := cluster.ParseARN("clusterArn", cluster.ResourceCluster, arn); err != nil {
		return nil, "", err
	}
	ops, next, err := h.cfg.Store.Operations(ctx, arn, p)
	if err != nil {
		return nil, "", err
	}
	if len(ops) == 0 && p.NextToken == "" {
		if _, err := h.cfg.Store.Cluster(ctx, arn); err != nil {
			return nil, "", err
		}
	}
	return ops, next, nil
}

func (h *Handler) listClusterOperations(ctx context.Context, req *request) (any, error) {
	ops, next, err := h.operationsFor(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]clusterOperationInfo, len(ops))
	for i, op := range ops {
		out[i] = toOperationInfo(op)
	}
	return list("clusterOperationInfoList", out, next), nil
}

func (h *Handler) listClusterOperationsV2(ctx context.Context, req *request) (any, error) {
	ops, next, err := h.operationsFor(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]clusterOperationV2Summary, len(ops))
	for i, op := range ops {
		out[i] = toOperationSummary(op)
	}
	return list("clusterOperationInfoList", out, next), nil
}

func (h *Handler) describeClusterOperation(ctx context.Context, req *request) (any, error) {
	op, err := h.operationFor(ctx, req)
	if err != nil {
		return nil, err
	}
	return map[string]any{"clusterOperationInfo": toOperationInfo(op)}, nil
}

func (h *Handler) describeClusterOperationV2(ctx context.Context, req *request) (any, error) {
	op, err := h.operationFor(ctx, req)
	if err != nil {
		return nil, err
	}
	out := clusterOperationV2{clusterOperationV2Summary: toOperationSummary(op), ErrorInfo: toErrorInfo(op)}
	out.Provisioned.OperationSteps = toSteps(op)
	out.Provisioned.SourceClusterInfo = toMutable(op.Source)
	out.Provisioned.TargetClusterInfo = toMutable(op.Target)
	return map[string]any{"clusterOperationInfo": out}, nil
}

func toOperationInfo(op cluster.Operation) clusterOperationInfo {
	return clusterOperationInfo{
		ClusterARN:        op.ClusterARN,
		CreationTime:      ptrTime(op.CreationTime),
		EndTime:           ptrTime(op.EndTime),
		ErrorInfo:         toErrorInfo(op),
		OperationARN:      op.ARN,
		OperationState:    op.State,
		OperationSteps:    toSteps(op),
		OperationType:     op.Type,
		SourceClusterInfo: toMutable(op.Source),
		TargetClusterInfo: toMutable(op.Target),
	}
}

func toOperationSummary(op cluster.Operation) clusterOperationV2Summary {
	return clusterOperationV2Summary{
		ClusterARN:     op.ClusterARN,
		ClusterType:    "PROVISIONED",
		StartTime:      ptrTime(op.CreationTime),
		EndTime:        ptrTime(op.EndTime),
		OperationARN:   op.ARN,
		OperationState: op.State,
		OperationType:  op.Type,
	}
}

func toErrorInfo(op cluster.Operation) *errorInfo {
	if op.ErrorCode == "" && op.ErrorString == "" {
		return nil
	}
	return &errorInfo{ErrorCode: op.ErrorCode, ErrorString: op.ErrorString}
}

func toSteps(op cluster.Operation) []operationStep {
	out := make([]operationStep, len(op.Steps))
	for i, s := range op.Steps {
		out[i].StepName = s.Name
		out[i].StepInfo.StepStatus = s.Status
	}
	return out
}

func toMutable(s *cluster.Spec) *mutableClusterInfo {
	if s == nil {
		return nil
	}
	m := &mutableClusterInfo{
		NumberOfBrokerNodes: s.NumberOfBrokerNodes,
		EnhancedMonitoring:  s.EnhancedMonitoring,
		KafkaVersion:        s.KafkaVersion,
		InstanceType:        s.InstanceType,
		StorageMode:         s.StorageMode,
	}
	if s.Configuration != nil {
		m.ConfigurationInfo = &outConfigurationInfo{ARN: s.Configuration.ARN, Revision: s.Configuration.Revision}
	}
	if s.VolumeSizeGiB > 0 {
		m.BrokerEBSVolumeInfo = []brokerEBSVolumeInfo{{KafkaBrokerNodeID: "ALL", VolumeSizeGB: s.VolumeSizeGiB}}
	}
	return m
}

package api

import (
	"context"

	"github.com/fjord-io/fjord/internal/cluster"
)

func (h *Handler) listKafkaVersions(_ context.Context, req *request) (any, error) {
	p, err := page(req)
	if err != nil {
		return nil, err
	}
	all := make([]kafkaVersion, len(cluster.KafkaVersions))
	for i, v := range cluster.KafkaVersions {
		all[i] = kafkaVersion{Version: v, Status: "ACTIVE"}
	}
	out, next, err := pageSlice(all, p)
	if err != nil {
		return nil, err
	}
	return list("kafkaVersions", out, next), nil
}

func (h *Handler) getCompatibleKafkaVersions(ctx context.Context, req *request) (any, error) {
	out := []compatibleKafkaVersion{}
	if arn := req.http.URL.Query().Get("clusterArn"); arn != "" {
		if _, err := cluster.ParseARN("clusterArn", cluster.ResourceCluster, arn); err != nil {
			return nil, err
		}
		c, err := h.cfg.Store.Cluster(ctx, arn)
		if err != nil {
			return nil, err
		}
		v := c.Spec.KafkaVersion
		out = append(out, compatibleKafkaVersion{SourceVersion: v, TargetVersions: nonNil(cluster.CompatibleVersions(v))})
		return map[string]any{"compatibleKafkaVersions": out}, nil
	}
	for _, v := range cluster.KafkaVersions {
		out = append(out, compatibleKafkaVersion{SourceVersion: v, TargetVersions: nonNil(cluster.CompatibleVersions(v))})
	}
	return map[string]any{"compatibleKafkaVersions": out}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

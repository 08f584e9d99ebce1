package api

import (
	"context"
	"strconv"

	"github.com/fjord-io/fjord/internal/cluster"
)

func (h *Handler) createConfiguration(ctx context.Context, req *request) (any, error) {
	var in createConfigurationRequest
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	if in.Name == nil {
		return nil, cluster.Invalidf("name", "name is required")
	}
	if err := cluster.CheckName("name", *in.Name); err != nil {
		return nil, err
	}
	if in.ServerProperties == nil {
		return nil, cluster.Invalidf("serverProperties", "serverProperties is required: the base64-encoded text of a server.properties file")
	}
	if _, err := cluster.ParseProperties("serverProperties", in.ServerProperties); err != nil {
		return nil, err
	}
	for _, v := range in.KafkaVersions {
		if err := cluster.CheckKafkaVersion("kafkaVersions", v); err != nil {
			return nil, err
		}
	}
	now := h.now()
	arn := cluster.ARN{Partition: h.cfg.Partition, Region: h.cfg.Region, Account: h.cfg.Account,
		Resource: cluster.ResourceConfiguration, Name: *in.Name, ID: cluster.NewID()}
	c := cluster.ConfigurationRecord{
		ARN: arn.String(), Name: *in.Name, Description: deref(in.Description), KafkaVersions: in.KafkaVersions,
		CreationTime: now, State: cluster.ConfigActive,
		LatestRevision: cluster.Revision{Revision: 1, Description: deref(in.Description), CreationTime: now, ServerProperties: in.ServerProperties},
	}
	if c.KafkaVersions == nil {
		c.KafkaVersions = []string{}
	}
	if err := h.cfg.Store.CreateConfiguration(ctx, c); err != nil {
		return nil, err
	}
	return map[string]any{
		"arn": c.ARN, "creationTime": ptrTime(c.CreationTime), "latestRevision": toRevision(c.LatestRevision),
		"name": c.Name, "state": c.State,
	}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (h *Handler) configurationARN(req *request) (string, error) {
	arn := req.params["arn"]
	_, err := cluster.ParseARN("arn", cluster.ResourceConfiguration, arn)
	return arn, err
}

func (h *Handler) describeConfiguration(ctx context.Context, req *request) (any, error) {
	arn, err := h.configurationARN(req)
	if err != nil {
		return nil, err
	}
	c, err := h.cfg.Store.Configuration(ctx, arn)
	if err != nil {
		return nil, err
	}
	return toConfiguration(c), nil
}

func (h *Handler) listConfigurations(ctx context.Context, req *request) (any, error) {
	p, err := page(req)
	if err != nil {
		return nil, err
	}
	cs, next, err := h.cfg.Store.Configurations(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]configuration, len(cs))
	for i, c := range cs {
		out[i] = toConfiguration(c)
	}
	return list("configurations", out, next), nil
}

func (h *Handler) updateConfiguration(ctx context.Context, req *request) (any, error) {
	arn, err := h.configurationARN(req)
	if err != nil {
		return nil, err
	}
	var in updateConfigurationRequest
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	if in.ServerProperties == nil {
		return nil, cluster.Invalidf("serverProperties", "serverProperties is required: the base64-encoded text of a server.properties file")
	}
	if _, err := cluster.ParseProperties("serverProperties", in.ServerProperties); err != nil {
		return nil, err
	}
	r, err := h.cfg.Store.AddRevision(ctx, arn, cluster.Revision{Description: deref(in.Description), CreationTime: h.now(), ServerProperties: in.ServerProperties})
	if err != nil {
		return nil, err
	}
	return map[string]any{"arn": arn, "latestRevision": toRevision(r)}, nil
}

func (h *Handler) deleteConfiguration(ctx context.Context, req *request) (any, error) {
	arn, err := h.configurationARN(req)
	if err != nil {
		return nil, err
	}
	if err := h.cfg.Store.DeleteConfiguration(ctx, arn); err != nil {
		return nil, err
	}
	return map[string]any{"arn": arn, "state": cluster.ConfigDeleting}, nil
}

func (h *Handler) listConfigurationRevisions(ctx context.Context, req *request) (any, error) {
	arn, err := h.configurationARN(req)
	if err != nil {
		return nil, err
	}
	p, err := page(req)
	if err != nil {
		return nil, err
	}
	rs, next, err := h.cfg.Store.Revisions(ctx, arn, p)
	if err != nil {
		return nil, err
	}
	out := make([]configurationRevision, len(rs))
	for i, r := range rs {
		out[i] = toRevision(r)
	}
	return list("revisions", out, next), nil
}

func (h *Handler) describeConfigurationRevision(ctx context.Context, req *request) (any, error) {
	arn, err := h.configurationARN(req)
	if err != nil {
		return nil, err
	}
	n, err := strconv.ParseInt(req.params["revision"], 10, 64)
	if err != nil || n < 1 {
		return nil, cluster.Invalidf("revision", "revision must be a positive number, not %q", req.params["revision"])
	}
	r, err := h.cfg.Store.Revision(ctx, arn, n)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"arn": arn, "creationTime": ptrTime(r.CreationTime), "description": r.Description,
		"revision": r.Revision, "serverProperties": r.ServerProperties,
	}, nil
}

func toRevision(r cluster.Revision) configurationRevision {
	return configurationRevision{CreationTime: ptrTime(r.CreationTime), Description: r.Description, Revision: r.Revision}
}

func toConfiguration(c cluster.ConfigurationRecord) configuration {
	v := c.KafkaVersions
	if v == nil {
		v = []string{}
	}
	return configuration{
		ARN: c.ARN, CreationTime: ptrTime(c.CreationTime), Description: c.Description, KafkaVersions: v,
		LatestRevision: toRevision(c.LatestRevision), Name: c.Name, State: c.State,
	}
}

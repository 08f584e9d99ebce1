package api

import (
	"context"
	"strings"

	"github.com/fjord-io/fjord/internal/cluster"
)

// resourceARN checks the resourceArn label names a taggable resource:
// a cluster or a configuration.
func resourceARN(req *request) (string, error) {
	arn := req.params["resourceArn"]
	if _, err := cluster.ParseARN("resourceArn", cluster.ResourceCluster, arn); err == nil {
		return arn, nil
	}
	if _, err := cluster.ParseARN("resourceArn", cluster.ResourceConfiguration, arn); err == nil {
		return arn, nil
	}
	return "", cluster.Invalidf("resourceArn", "resourceArn %q is not the ARN of a cluster or a configuration", arn)
}

// checkTags applies AWS's tag rules: keys of 1 to 128 characters not starting
// with "aws:", values of at most 256.
func checkTags(tags map[string]string) error {
	for k, v := range tags {
		switch {
		case k == "" || len(k) > 128:
			return cluster.Invalidf("tags", "tag key %q must be 1 to 128 characters long", k)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return cluster.Invalidf("tags", "tag key %q uses the reserved prefix aws:", k)
		case len(v) > 256:
			return cluster.Invalidf("tags", "the value of tag %q is %d characters long; the limit is 256", k, len(v))
		}
	}
	return nil
}

func (h *Handler) tagResource(ctx context.Context, req *request) (any, error) {
	arn, err := resourceARN(req)
	if err != nil {
		return nil, err
	}
	var in tagResourceRequest
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	if in.Tags == nil {
		return nil, cluster.Invalidf("tags", "tags is required: an object of key/value pairs")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if err := h.cfg.Store.TagResource(ctx, arn, in.Tags); err != nil {
		return nil, err
	}
	return noContent{}, nil
}

func (h *Handler) untagResource(ctx context.Context, req *request) (any, error) {
	arn, err := resourceARN(req)
	if err != nil {
		return nil, err
	}
	keys := req.http.URL.Query()["tagKeys"]
	if len(keys) == 0 {
		return nil, cluster.Invalidf("tagKeys", "tagKeys is required: name the tag keys to remove")
	}
	if err := h.cfg.Store.UntagResource(ctx, arn, keys); err != nil {
		return nil, err
	}
	return noContent{}, nil
}

func (h *Handler) listTagsForResource(ctx context.Context, req *request) (any, error) {
	arn, err := resourceARN(req)
	if err != nil {
		return nil, err
	}
	tags, err := h.cfg.Store.Tags(ctx, arn)
	if err != nil {
		return nil, err
	}
	return map[string]any{"tags": tags}, nil
}

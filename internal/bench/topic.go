package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// prepareTopic creates cfg.Topic if it does not exist, waits until every
// partition has a leader, and returns each partition's end offset, where
// the consumers start.
func prepareTopic(ctx context.Context, cfg Config) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Bootstrap...))
	if err != nil {
		return nil, fmt.Errorf("admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	var configs map[string]*string
	for k, v := range cfg.TopicConfigs {
		if configs == nil {
			configs = map[string]*string{}
		}
		configs[k] = kadm.StringPtr(v)
	}
	_, err = adm.CreateTopic(ctx, int32(cfg.Partitions), int16(cfg.ReplicationFactor), configs, cfg.Topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return nil, fmt.Errorf("create topic %s: %w", cfg.Topic, err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		ready, err := topicReady(ctx, adm, cfg)
		if errors.Is(err, errPartitionCount) {
			return nil, fmt.Errorf("topic %s: %w", cfg.Topic, err)
		}
		if err == nil && ready {
			break
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("partitions without a leader")
			}
			return nil, fmt.Errorf("wait for topic %s: %w", cfg.Topic, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}

	ends, err := adm.ListEndOffsets(ctx, cfg.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", cfg.Topic, err)
	}
	starts := make(map[int32]int64, cfg.Partitions)
	for p := range int32(cfg.Partitions) {
		o, ok := ends.Lookup(cfg.Topic, p)
		if !ok {
			return nil, fmt.Errorf("no end offset for %s/%d", cfg.Topic, p)
		}
		starts[p] = o.Offset
	}
	return starts, nil
}

var errPartitionCount = errors.New("topic exists with another partition count")

// topicReady reports whether cfg.Topic has cfg.Partitions partitions, each
// with a leader. A topic with a different partition count is
// errPartitionCount; other errors may pass.
func topicReady(ctx context.Context, adm *kadm.Client, cfg Config) (bool, error) {
	md, err := adm.Metadata(ctx, cfg.Topic)
	if err != nil {
		return false, err
	}
	td, ok := md.Topics[cfg.Topic]
	if !ok || td.Err != nil {
		return false, td.Err
	}
	if len(td.Partitions) != cfg.Partitions {
		if len(td.Partitions) > 0 {
			return false, fmt.Errorf("%w: has %d, want %d", errPartitionCount, len(td.Partitions), cfg.Partitions)
		}
		return false, nil
	}
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return false, nil
		}
	}
	return true, nil
}

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

	// Wait until every partition has a leader that knows it leads: the
	// broker that answers Metadata may learn of the new topic before the
	// leaders do, and they answer UNKNOWN_TOPIC_OR_PARTITION until then.
	deadline := time.Now().Add(30 * time.Second)
	for {
		starts, err := topicStarts(ctx, adm, cfg)
		if errors.Is(err, errPartitionCount) {
			return nil, fmt.Errorf("topic %s: %w", cfg.Topic, err)
		}
		if err == nil {
			return starts, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("wait for topic %s: %w", cfg.Topic, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// topicStarts returns the end offset of each of cfg.Topic's partitions, or
// why it cannot yet.
func topicStarts(ctx context.Context, adm *kadm.Client, cfg Config) (map[int32]int64, error) {
	if err := topicReady(ctx, adm, cfg); err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, cfg.Topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	starts := make(map[int32]int64, cfg.Partitions)
	for p := range int32(cfg.Partitions) {
		o, ok := ends.Lookup(cfg.Topic, p)
		if !ok {
			return nil, fmt.Errorf("no end offset for partition %d", p)
		}
		starts[p] = o.Offset
	}
	return starts, nil
}

var errPartitionCount = errors.New("topic exists with another partition count")

// topicReady returns nil once cfg.Topic has cfg.Partitions partitions, each
// with a leader. A topic with a different partition count is
// errPartitionCount.
func topicReady(ctx context.Context, adm *kadm.Client, cfg Config) error {
	md, err := adm.Metadata(ctx, cfg.Topic)
	if err != nil {
		return err
	}
	td, ok := md.Topics[cfg.Topic]
	if !ok {
		return errors.New("not in metadata yet")
	}
	if td.Err != nil {
		return td.Err
	}
	if len(td.Partitions) != cfg.Partitions {
		if len(td.Partitions) > 0 {
			return fmt.Errorf("%w: has %d, want %d", errPartitionCount, len(td.Partitions), cfg.Partitions)
		}
		return errors.New("no partitions in metadata yet")
	}
	for _, p := range td.Partitions {
		if p.Err != nil {
			return fmt.Errorf("partition %d: %w", p.Partition, p.Err)
		}
		if p.Leader < 0 {
			return fmt.Errorf("partition %d has no leader yet", p.Partition)
		}
	}
	return nil
}

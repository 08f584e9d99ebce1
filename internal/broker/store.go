package broker

import (
	"context"

	"github.com/google/uuid"

	"github.com/fjord-io/fjord/internal/metadata"
)

// store is the cluster metadata a broker runs on: *metadata.Local for a
// standalone broker, *metadata.Etcd for a replicated cluster. Reads come
// from a local cache; Watch signals changes, so the broker learns new
// metadata without polling.
type store interface {
	ClusterID() string
	Topic(name string) (metadata.Topic, bool)
	TopicByID(id uuid.UUID) (metadata.Topic, bool)
	Topics() []metadata.Topic
	CreateTopic(metadata.Topic) (metadata.Topic, error)
	DeleteTopic(name string) (metadata.Topic, error)
	AddPartitions(name string, parts []metadata.Partition) error
	SetConfigs(name string, configs map[string]string) error
	UpdatePartition(topic string, index int32, fn func(*metadata.Partition) error) error
	UpdatePartitions(updates []metadata.PartitionUpdate) []error
	AllocateProducerIDs(n int64) (int64, error)
	Brokers() []metadata.Broker
	Controller() int32
	Watch(ctx context.Context) <-chan struct{}
}

var (
	_ store = (*metadata.Local)(nil)
	_ store = (*metadata.Etcd)(nil)
)

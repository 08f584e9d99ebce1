package broker

import (
	"math/rand/v2"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/fjord-io/fjord/internal/controller"
	"github.com/fjord-io/fjord/internal/metadata"
)

// assign places n new partitions, the first with index first, with rf
// replicas each on the live, unfenced brokers, rack-aware
// (controller.Assign).
func (b *Broker) assign(first, n int32, rf int16) ([][]int32, error) {
	brokers := b.eligibleBrokers()
	if int(rf) > len(brokers) {
		return nil, kerrf(kerr.InvalidReplicationFactor, "replication factor %d is larger than the number of available brokers (%d)", rf, len(brokers))
	}
	return controller.Assign(brokers, int(n), int(rf), int(first), rand.Uint64())
}

// eligibleBrokers are the registered brokers the controller has unfenced:
// those that may hold replicas now.
func (b *Broker) eligibleBrokers() []metadata.Broker {
	brokers := b.meta.Brokers()
	if b.etcd == nil {
		return brokers
	}
	return slices.DeleteFunc(brokers, b.etcd.Fenced)
}

// checkAssignment validates a manual replica assignment: every replica a
// registered broker, none twice in one partition, one replication factor.
func (b *Broker) checkAssignment(assignment [][]int32) error {
	live := make(map[int32]bool)
	for _, br := range b.meta.Brokers() {
		live[br.NodeID] = true
	}
	for i, replicas := range assignment {
		if len(replicas) == 0 {
			return kerrf(kerr.InvalidReplicaAssignment, "partition %d has no replicas", i)
		}
		if len(replicas) != len(assignment[0]) {
			return kerrf(kerr.InvalidReplicaAssignment, "every partition needs the same number of replicas (%d), partition %d has %d", len(assignment[0]), i, len(replicas))
		}
		seen := make(map[int32]bool, len(replicas))
		for _, r := range replicas {
			if !live[r] {
				return kerrf(kerr.InvalidReplicaAssignment, "broker %d is not a live broker of this cluster", r)
			}
			if seen[r] {
				return kerrf(kerr.InvalidReplicaAssignment, "broker %d appears twice in the replicas of partition %d", r, i)
			}
			seen[r] = true
		}
	}
	return nil
}

// newPartitions turns an assignment into partitions led by their first
// replica with every replica in sync (they are all empty).
func newPartitionsFor(first int32, assignment [][]int32) []metadata.Partition {
	out := make([]metadata.Partition, len(assignment))
	for i, replicas := range assignment {
		out[i] = metadata.Partition{
			Index:    first + int32(i),
			Leader:   replicas[0],
			Replicas: slices.Clone(replicas),
			ISR:      slices.Clone(replicas),
		}
	}
	return out
}

// newTopic builds a topic placed on the live brokers.
func (b *Broker) newTopic(name string, partitions int32, rf int16, configs map[string]string) (metadata.Topic, error) {
	assignment, err := b.assign(0, partitions, rf)
	if err != nil {
		return metadata.Topic{}, err
	}
	return metadata.Topic{Name: name, Configs: configs, Partitions: newPartitionsFor(0, assignment)}, nil
}

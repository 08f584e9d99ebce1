package controller

import (
	"context"
	"errors"
	"fmt"

	"github.com/fjord-io/fjord/internal/metadata"
)

// Errors of ElectLeaders, one per Kafka error code of the ElectLeaders API;
// the broker maps them with errors.Is.
var (
	// ErrElectionNotNeeded: the preferred replica already leads, or (unclean
	// election) the partition has an eligible leader. ELECTION_NOT_NEEDED.
	ErrElectionNotNeeded = errors.New("controller: election not needed")
	// ErrPreferredLeaderNotAvailable: the preferred replica is offline,
	// fenced or out of the ISR. PREFERRED_LEADER_NOT_AVAILABLE.
	ErrPreferredLeaderNotAvailable = errors.New("controller: preferred leader not available")
	// ErrEligibleLeadersNotAvailable: no replica is registered and
	// unfenced. ELIGIBLE_LEADERS_NOT_AVAILABLE.
	ErrEligibleLeadersNotAvailable = errors.New("controller: eligible leaders not available")
	// ErrUnknownTopicOrPartition: UNKNOWN_TOPIC_OR_PARTITION.
	ErrUnknownTopicOrPartition = errors.New("controller: unknown topic or partition")
)

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// ElectLeaders elects leaders on request (the ElectLeaders API). With
// preferred, each partition's preferred replica (Replicas[0]) becomes leader
// if it is eligible and in the ISR. Otherwise (an unclean election) a
// partition without an eligible leader gets the first eligible ISR member,
// or failing that the first eligible replica, with the ISR reduced to it.
//
// The result has an entry per requested partition: nil when the leader
// changed, otherwise an error wrapping one of the Err* sentinels of this
// package, or ctx's error for partitions not attempted before ctx ended.
// partitions == nil means every partition of the cluster, and then
// partitions where no election was needed are left out, as Kafka does.
func ElectLeaders(ctx context.Context, s Store, preferred bool, partitions []TopicPartition) map[TopicPartition]error {
	all := partitions == nil
	if all {
		for _, t := range s.Topics() {
			for _, p := range t.Partitions {
				partitions = append(partitions, TopicPartition{t.Name, p.Index})
			}
		}
	}
	seen := make(map[TopicPartition]bool, len(partitions))
	var todo []TopicPartition
	for _, tp := range partitions {
		if !seen[tp] {
			seen[tp] = true
			todo = append(todo, tp)
		}
	}

	v := observe(s)
	results := make(map[TopicPartition]error, len(todo))
	updateEach(ctx, s, batchesInFlight, len(todo), func(i int) metadata.PartitionUpdate {
		tp := todo[i]
		return metadata.PartitionUpdate{Topic: tp.Topic, Index: tp.Partition, Fn: func(p *metadata.Partition) error {
			if preferred {
				return v.preferred(p)
			}
			return v.unclean(p)
		}}
	}, func(i int, err error) {
		tp := todo[i]
		if errors.Is(err, metadata.ErrUnknownTopic) {
			err = fmt.Errorf("%w: %s-%d", ErrUnknownTopicOrPartition, tp.Topic, tp.Partition)
		}
		results[tp] = err
	})
	for _, tp := range todo {
		err, ok := results[tp]
		switch {
		case !ok:
			results[tp] = ctx.Err()
		case all && errors.Is(err, ErrElectionNotNeeded):
			delete(results, tp)
		}
	}
	return results
}

// unclean elects a leader for p, which must have no eligible leader: from
// the ISR if it can, else any eligible replica, which becomes the ISR.
func (v *view) unclean(p *metadata.Partition) error {
	if p.Leader != -1 && v.eligible(p.Leader) {
		return fmt.Errorf("%w: replica %d leads", ErrElectionNotNeeded, p.Leader)
	}
	if r, ok := v.firstEligible(p.Replicas, p.ISR); ok {
		p.Leader = r
		return nil
	}
	if r, ok := v.firstEligible(p.Replicas, nil); ok {
		p.Leader, p.ISR = r, []int32{r}
		return nil
	}
	return fmt.Errorf("%w: no replica of %v is registered and unfenced", ErrEligibleLeadersNotAvailable, p.Replicas)
}

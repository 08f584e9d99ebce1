package broker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/controller"
)

// ElectLeaders (key 43), v0-v2: preferred (type 0; v0 knows only that) or
// unclean (type 1) leader elections for the named partitions, or for every
// partition when the list is null. Any broker can run them: each election
// is a compare-and-swap on the partition's metadata
// (controller.ElectLeaders), so it cannot overwrite the controller's
// concurrent decisions. A standalone broker's partitions have one replica,
// which always leads: every election is ELECTION_NOT_NEEDED.

func (b *Broker) handleElectLeaders(ctx context.Context, req *kmsg.ElectLeadersRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	preferred := req.Version == 0 || req.ElectionType == 0
	if !preferred && req.ElectionType != 1 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	var tps []controller.TopicPartition
	if req.Topics != nil {
		tps = []controller.TopicPartition{}
		for _, rt := range req.Topics {
			for _, p := range rt.Partitions {
				tps = append(tps, controller.TopicPartition{Topic: rt.Topic, Partition: p})
			}
		}
	}
	var results map[controller.TopicPartition]error
	if b.etcd != nil {
		timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		ectx, cancel := context.WithTimeout(ctx, timeout)
		results = controller.ElectLeaders(ectx, b.etcd, preferred, tps)
		cancel()
	} else {
		results = b.standaloneElections(tps)
	}

	byTopic := make(map[string][]int32)
	for tp := range results {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
	}
	topics := make([]string, 0, len(byTopic))
	for t := range byTopic {
		topics = append(topics, t)
	}
	slices.SortFunc(topics, strings.Compare)
	for _, t := range topics {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = t
		ps := byTopic[t]
		slices.Sort(ps)
		for _, p := range ps {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition = p
			if err := results[controller.TopicPartition{Topic: t, Partition: p}]; err != nil {
				sp.ErrorCode = electionCode(err)
				sp.ErrorMessage = errorMessage(err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// standaloneElections answers elections on a standalone broker.
func (b *Broker) standaloneElections(tps []controller.TopicPartition) map[controller.TopicPartition]error {
	out := make(map[controller.TopicPartition]error)
	if tps == nil {
		return out // every partition already has its only replica as leader
	}
	for _, tp := range tps {
		if t, ok := b.meta.Topic(tp.Topic); !ok || tp.Partition < 0 || int(tp.Partition) >= len(t.Partitions) {
			out[tp] = controller.ErrUnknownTopicOrPartition
		} else {
			out[tp] = controller.ErrElectionNotNeeded
		}
	}
	return out
}

func electionCode(err error) int16 {
	for _, m := range []struct {
		err  error
		code *kerr.Error
	}{
		{controller.ErrElectionNotNeeded, kerr.ElectionNotNeeded},
		{controller.ErrPreferredLeaderNotAvailable, kerr.PreferredLeaderNotAvailable},
		{controller.ErrEligibleLeadersNotAvailable, kerr.EligibleLeadersNotAvailable},
		{controller.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
		{context.DeadlineExceeded, kerr.RequestTimedOut},
	} {
		if errors.Is(err, m.err) {
			return m.code.Code
		}
	}
	return errorCode(err)
}

package group

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit (key 8), v0-v9: stores a group's consumed positions. A member
// commits with its generation; a standalone consumer (generation -1, no
// member id) may commit for an empty group. Commits are written to the
// group's __consumer_offsets partition, as durably as an acks=all produce,
// before they are acknowledged; a write that fails answers Kafka's codes
// (NOT_COORDINATOR when the partition's leadership moved,
// COORDINATOR_NOT_AVAILABLE without enough in-sync replicas,
// REQUEST_TIMED_OUT after offsets.commit.timeout.ms).
//
// OffsetFetch (key 9), v0-v9: a group's committed offsets, per partition or
// all (null topics); v8+ asks for several groups at once. A partition with no
// commit answers offset -1. A group this coordinator does not serve answers
// NOT_COORDINATOR (COORDINATOR_LOAD_IN_PROGRESS while it loads): per
// partition in v0-v1, for the request in v2-v7, per group in v8+.
//
// OffsetDelete (key 47), v0: removes committed offsets of partitions the group
// is not consuming.
//
// All three answer NOT_COORDINATOR for a group this coordinator does not
// serve, and COORDINATOR_LOAD_IN_PROGRESS while its partition loads.

// OffsetCommit handles an OffsetCommit request.
func (c *Coordinator) OffsetCommit(req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	answer := func(code func(topic string, p kmsg.OffsetCommitRequestTopicPartition) *kerr.Error) *kmsg.OffsetCommitResponse {
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				if e := code(rt.Topic, rp); e != nil {
					sp.ErrorCode = e.Code
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	all := func(e *kerr.Error) *kmsg.OffsetCommitResponse {
		return answer(func(string, kmsg.OffsetCommitRequestTopicPartition) *kerr.Error { return e })
	}
	if req.Group == "" {
		return all(kerr.InvalidGroupID)
	}
	standalone := req.Generation < 0 && req.MemberID == ""
	g, code := c.lookup(req.Group, standalone)
	switch {
	case code != nil:
		return all(code)
	case g == nil:
		return all(kerr.UnknownMemberID)
	}
	g.mu.Lock()
	switch {
	case g.state == Dead:
		code = kerr.CoordinatorNotAvailable
	case standalone && g.state != Empty:
		code = kerr.IllegalGeneration
	case standalone:
	case g.state == CompletingRebalance:
		code = kerr.RebalanceInProgress
	default:
		var m *member
		if m, code = g.checkMemberLocked(req.MemberID, req.InstanceID, req.Generation); code == nil {
			m.deadline = time.Now().Add(m.sessionTimeout)
		}
	}
	g.mu.Unlock()
	if code != nil {
		return all(code)
	}

	now := time.Now()
	var recs []Record
	type pending struct {
		key partitionKey
		val committed
	}
	var apply []pending
	perPartition := map[partitionKey]*kerr.Error{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			k := partitionKey{rt.Topic, rp.Partition}
			meta := ""
			if rp.Metadata != nil {
				meta = *rp.Metadata
			}
			switch {
			case len(meta) > c.cfg.MaxMetadataBytes:
				perPartition[k] = kerr.OffsetMetadataTooLarge
				continue
			case c.cfg.TopicExists != nil && !c.cfg.TopicExists(rt.Topic, rp.Partition):
				perPartition[k] = kerr.UnknownTopicOrPartition
				continue
			}
			v := committed{offset: rp.Offset, leaderEpoch: rp.LeaderEpoch, metadata: meta, timestamp: now.UnixMilli()}
			if req.Version < 6 {
				v.leaderEpoch = -1
			}
			recs = append(recs, offsetRecord(g.name, k, &v))
			apply = append(apply, pending{k, v})
		}
	}
	if len(recs) > 0 {
		g.writeMu.Lock()
		err := c.appendLocked(context.Background(), g, recs)
		if err == nil {
			g.mu.Lock()
			for _, p := range apply {
				g.offsets[p.key] = p.val
			}
			g.mu.Unlock()
		}
		g.writeMu.Unlock()
		if err != nil {
			c.lg.Warn("persist offsets", "group", g.name, "err", err)
			return all(appendCode(err, true))
		}
	}
	return answer(func(topic string, p kmsg.OffsetCommitRequestTopicPartition) *kerr.Error {
		return perPartition[partitionKey{topic, p.Partition}]
	})
}

// OffsetFetch handles an OffsetFetch request.
func (c *Coordinator) OffsetFetch(req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group = rg.Group
			var topics map[string][]int32
			if rg.Topics != nil {
				topics = map[string][]int32{}
				for _, t := range rg.Topics {
					topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
				}
			}
			fetched, code := c.fetchOffsets(rg.Group, topics, rg.Topics == nil)
			if code != nil {
				sg.ErrorCode = code.Code
			}
			for topic, parts := range fetched {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = topic
				for _, p := range parts {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata = p.partition, p.offset, p.leaderEpoch, p.metadata
					st.Partitions = append(st.Partitions, sp)
				}
				sg.Topics = append(sg.Topics, st)
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}
	var topics map[string][]int32
	if req.Topics != nil {
		topics = map[string][]int32{}
		for _, t := range req.Topics {
			topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
		}
	}
	fetched, code := c.fetchOffsets(req.Group, topics, req.Topics == nil && req.Version >= 2)
	if code != nil {
		if req.Version >= 2 {
			resp.ErrorCode = code.Code
			return resp
		}
		// v0-v1 have no request-level error: every partition carries it.
		for _, t := range req.Topics {
			st := kmsg.NewOffsetFetchResponseTopic()
			st.Topic = t.Topic
			for _, p := range t.Partitions {
				sp := kmsg.NewOffsetFetchResponseTopicPartition()
				sp.Partition, sp.Offset, sp.LeaderEpoch, sp.ErrorCode = p, -1, -1, code.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	for topic, parts := range fetched {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = topic
		for _, p := range parts {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata = p.partition, p.offset, p.leaderEpoch, p.metadata
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

type fetchedOffset struct {
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    *string
}

// fetchOffsets returns the committed offsets of the asked partitions, or of
// every partition when all is set, or the code answering for a group this
// coordinator does not serve.
func (c *Coordinator) fetchOffsets(name string, topics map[string][]int32, all bool) (map[string][]fetchedOffset, *kerr.Error) {
	out := map[string][]fetchedOffset{}
	g, code := c.lookup(name, false)
	if code != nil {
		return nil, code
	}
	if g != nil {
		g.mu.Lock()
		defer g.mu.Unlock()
	}
	if all {
		if g == nil {
			return out, nil
		}
		for k, v := range g.offsets {
			meta := v.metadata
			out[k.topic] = append(out[k.topic], fetchedOffset{k.partition, v.offset, v.leaderEpoch, &meta})
		}
		return out, nil
	}
	for topic, parts := range topics {
		for _, p := range parts {
			f := fetchedOffset{partition: p, offset: -1, leaderEpoch: -1}
			if g != nil {
				if v, ok := g.offsets[partitionKey{topic, p}]; ok {
					meta := v.metadata
					f = fetchedOffset{p, v.offset, v.leaderEpoch, &meta}
				}
			}
			if f.metadata == nil {
				empty := ""
				f.metadata = &empty
			}
			out[topic] = append(out[topic], f)
		}
	}
	return out, nil
}

// OffsetDelete handles an OffsetDelete request.
func (c *Coordinator) OffsetDelete(req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	g, code := c.lookup(req.Group, false)
	if code != nil {
		resp.ErrorCode = code.Code
		return resp
	}
	if g == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	}
	g.mu.Lock()
	subscribed := g.subscribedTopicsLocked()
	var recs []Record
	var drop []partitionKey
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			k := partitionKey{rt.Topic, rp.Partition}
			switch {
			case subscribed[rt.Topic]:
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				if _, ok := g.offsets[k]; ok {
					recs = append(recs, offsetRecord(g.name, k, nil))
					drop = append(drop, k)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	g.mu.Unlock()
	if len(recs) > 0 {
		g.writeMu.Lock()
		err := c.appendLocked(context.Background(), g, recs)
		if err == nil {
			g.mu.Lock()
			for _, k := range drop {
				delete(g.offsets, k)
			}
			g.mu.Unlock()
		}
		g.writeMu.Unlock()
		if err != nil {
			c.lg.Warn("delete offsets", "group", g.name, "err", err)
			resp.ErrorCode = appendCode(err, false).Code
			resp.Topics = nil
		}
	}
	return resp
}

// subscribedTopicsLocked returns the topics the group's members subscribe to,
// from their consumer-protocol metadata.
func (g *group) subscribedTopicsLocked() map[string]bool {
	out := map[string]bool{}
	if g.protocolType != "consumer" {
		return out
	}
	for _, m := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadataFor(g.protocol)); err == nil {
			for _, t := range meta.Topics {
				out[t] = true
			}
		}
	}
	return out
}

// expireOffsets removes the offsets of groups that have been empty longer
// than the retention (offsets.retention.minutes), as Kafka does.
func (c *Coordinator) expireOffsets(ctx context.Context, now time.Time) {
	groups, _ := c.all()
	for _, g := range groups {
		g.mu.Lock()
		if g.state != Empty || now.Sub(g.stateSince) < c.cfg.OffsetsRetention {
			g.mu.Unlock()
			continue
		}
		var recs []Record
		var drop []partitionKey
		for k, v := range g.offsets {
			if now.Sub(time.UnixMilli(v.timestamp)) >= c.cfg.OffsetsRetention {
				recs = append(recs, offsetRecord(g.name, k, nil))
				drop = append(drop, k)
			}
		}
		g.mu.Unlock()
		if len(recs) == 0 {
			continue
		}
		g.writeMu.Lock()
		if err := c.appendLocked(ctx, g, recs); err == nil {
			g.mu.Lock()
			for _, k := range drop {
				delete(g.offsets, k)
			}
			g.mu.Unlock()
		}
		g.writeMu.Unlock()
	}
}

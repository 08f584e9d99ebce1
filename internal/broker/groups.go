package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/commitlog"
	"github.com/fjord-io/fjord/internal/group"
	"github.com/fjord-io/fjord/internal/metadata"
	"github.com/fjord-io/fjord/internal/partition"
	"github.com/fjord-io/fjord/internal/record"
)

// The group APIs are handled by internal/group, one file per API there; this
// file connects them to the broker: FindCoordinator, the __consumer_offsets
// topic the coordinator persists to, the request delegations, and the
// coordinator following the leadership of the offsets partitions (led).
//
// As in Kafka, a group's coordinator is the leader of its __consumer_offsets
// partition. When this broker becomes a partition's leader the coordinator
// replays the partition and serves its groups; when it stops leading, the
// coordinator forgets them and answers NOT_COORDINATOR, and clients find the
// new leader with FindCoordinator.

const offsetsTopic = "__consumer_offsets"

// groupConfig reads the coordinator's settings from server.properties.
func groupConfig(props map[string]string, topicExists func(string, int32) bool) (group.Config, error) {
	cfg := group.DefaultConfig()
	cfg.TopicExists = topicExists
	var err error
	ms := func(key string, d *time.Duration, unit time.Duration) {
		if v, ok := props[key]; ok && err == nil {
			n, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil || n < 0 {
				err = fmt.Errorf("property %s=%q: not a non-negative number", key, v)
				return
			}
			*d = time.Duration(n) * unit
		}
	}
	ms("group.initial.rebalance.delay.ms", &cfg.InitialRebalanceDelay, time.Millisecond)
	ms("group.min.session.timeout.ms", &cfg.MinSessionTimeout, time.Millisecond)
	ms("group.max.session.timeout.ms", &cfg.MaxSessionTimeout, time.Millisecond)
	ms("offsets.retention.minutes", &cfg.OffsetsRetention, time.Minute)
	ms("offsets.commit.timeout.ms", &cfg.CommitTimeout, time.Millisecond)
	if err == nil && cfg.CommitTimeout <= 0 {
		return cfg, fmt.Errorf("property offsets.commit.timeout.ms=%q: must be at least 1", props["offsets.commit.timeout.ms"])
	}
	if v, ok := props["offsets.topic.num.partitions"]; ok && err == nil {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 {
			return cfg, fmt.Errorf("property offsets.topic.num.partitions=%q: must be at least 1", v)
		}
		cfg.Partitions = int32(n)
	}
	if v, ok := props["group.max.size"]; ok && err == nil {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 {
			return cfg, fmt.Errorf("property group.max.size=%q: must be at least 1", v)
		}
		cfg.MaxGroupSize = n
	}
	return cfg, err
}

// partitionExists reports whether a topic partition exists in the cluster
// (hosted here or not), for offset commits.
func (b *Broker) partitionExists(topic string, p int32) bool {
	t, ok := b.meta.Topic(topic)
	return ok && p >= 0 && int(p) < len(t.Partitions)
}

// offsetsLog is the coordinator's storage: the partitions of
// __consumer_offsets, created on first use as Kafka does. The coordinator
// reads and writes only the partitions this broker leads; mu guards the
// set of those, which led keeps.
type offsetsLog struct {
	b          *Broker
	partitions int32
	createMu   sync.Mutex

	mu struct {
		sync.Mutex
		leading map[int32]*partition.Partition
	}
}

// led is the partitions' leadership hook (partitions.led): the coordinator
// serves a __consumer_offsets partition's groups while this broker leads it.
// It runs within the partition sync and does not block on I/O: loading
// happens in the coordinator's loader.
func (o *offsetsLog) led(p *partition.Partition, leading bool) {
	if p.Topic != offsetsTopic {
		return
	}
	o.mu.Lock()
	if o.mu.leading == nil {
		o.mu.leading = make(map[int32]*partition.Partition)
	}
	if leading {
		o.mu.leading[p.Index] = p
	} else if o.mu.leading[p.Index] == p {
		delete(o.mu.leading, p.Index)
	}
	o.mu.Unlock()
	if leading {
		o.b.groups.LoadPartition(p.Index)
	} else {
		o.b.groups.UnloadPartition(p.Index)
	}
}

// leader returns the replica of partition index this broker leads, or an
// error coded NOT_LEADER_OR_FOLLOWER.
func (o *offsetsLog) leader(index int32) (*partition.Partition, error) {
	o.mu.Lock()
	p := o.mu.leading[index]
	o.mu.Unlock()
	if p == nil || !p.IsLeader() {
		return nil, kerrf(kerr.NotLeaderForPartition, "broker %d does not lead %s-%d", o.b.cfg.NodeID, offsetsTopic, index)
	}
	return p, nil
}

func (o *offsetsLog) ensureTopic() (*topicState, error) {
	if ts := o.b.parts.topic(offsetsTopic); ts != nil {
		return ts, nil
	}
	o.createMu.Lock()
	defer o.createMu.Unlock()
	if ts := o.b.parts.topic(offsetsTopic); ts != nil {
		return ts, nil
	}
	rf := o.b.settings.offsetsReplication
	if o.b.etcd == nil {
		rf = 1 // a standalone broker is the only replica there can be
	}
	t, err := o.b.newTopic(offsetsTopic, o.partitions, rf, map[string]string{
		"cleanup.policy":   "compact",
		"segment.bytes":    o.b.cfg.Props["offsets.topic.segment.bytes"],
		"compression.type": "producer",
	})
	if err != nil {
		return nil, fmt.Errorf("create %s (offsets.topic.replication.factor=%d): %w", offsetsTopic, rf, err)
	}
	if t.Configs["segment.bytes"] == "" {
		t.Configs["segment.bytes"] = "104857600"
	}
	t.Internal = true
	ts, err := o.b.parts.createTopic(t)
	if errors.Is(err, metadata.ErrTopicExists) {
		return o.b.parts.topic(offsetsTopic), nil
	}
	return ts, err
}

// Append writes records as one batch to a partition of __consumer_offsets
// this broker leads, as an acks=all produce: it needs min.insync.replicas
// in-sync replicas, and returns once the high watermark covers the batch.
// Errors carry the codes such a produce gets; the coordinator maps them.
func (o *offsetsLog) Append(ctx context.Context, index int32, recs []group.Record) error {
	p, err := o.leader(index)
	if err != nil {
		return err
	}
	if isr, minISR := int64(p.ISRSize()), p.Config().Int64("min.insync.replicas"); isr < minISR {
		return kerrf(kerr.NotEnoughReplicas, "%s-%d has %d in-sync replicas, fewer than its min.insync.replicas=%d", offsetsTopic, index, isr, minISR)
	}
	now := time.Now()
	h := record.Header{
		LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp:  now.UnixMilli(),
		MaxTimestamp:    now.UnixMilli(),
		ProducerID:      -1,
		ProducerEpoch:   -1,
		BaseSequence:    -1,
	}
	rs := make([]record.Record, len(recs))
	for i, r := range recs {
		rs[i] = record.Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value}
	}
	batch, err := record.Build(h, rs)
	if err != nil {
		return err
	}
	if int64(len(batch)) > p.Config().Int64("max.message.bytes") {
		return kerrf(kerr.MessageTooLarge, "batch of %d bytes exceeds max.message.bytes=%d of %s", len(batch), p.Config().Int64("max.message.bytes"), offsetsTopic)
	}
	epoch := p.LeaderEpoch()
	info, err := p.AppendLeader(batch, now)
	switch {
	case errors.Is(err, partition.ErrNotLeader), errors.Is(err, commitlog.ErrClosed):
		return kerrf(kerr.NotLeaderForPartition, "broker %d no longer leads %s-%d", o.b.cfg.NodeID, offsetsTopic, index)
	case err != nil:
		return fmt.Errorf("append to %s-%d: %w: %w", offsetsTopic, index, kerr.KafkaStorageError, err)
	}
	return awaitHighWatermark(ctx, p, epoch, info.LastOffset+1)
}

// awaitHighWatermark waits until p's high watermark reaches end, which an
// append at epoch ended at: the acks=all wait of one append, as
// awaitReplication does for produce. It fails coded NOT_LEADER_OR_FOLLOWER
// when the leadership moves meanwhile, NOT_ENOUGH_REPLICAS_AFTER_APPEND when
// the ISR is below min.insync.replicas, and REQUEST_TIMED_OUT when ctx's
// deadline passes. The records stay in the log either way.
func awaitHighWatermark(ctx context.Context, p *partition.Partition, epoch int32, end int64) error {
	wake := make(chan struct{}, 1)
	defer p.Wait(wake)()
	for {
		switch {
		case !p.IsLeader() || p.LeaderEpoch() != epoch:
			return kerrf(kerr.NotLeaderForPartition, "leadership of %s-%d moved while the append waited for its replicas", p.Topic, p.Index)
		case p.HighWatermark() >= end:
			if minISR := p.Config().Int64("min.insync.replicas"); int64(p.ISRSize()) < minISR {
				return kerrf(kerr.NotEnoughReplicasAfterAppend, "%s-%d has %d in-sync replicas, fewer than its min.insync.replicas=%d", p.Topic, p.Index, p.ISRSize(), minISR)
			}
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return kerrf(kerr.RequestTimedOut, "%s-%d: the in-sync replicas did not all confirm the append in time (offsets.commit.timeout.ms)", p.Topic, p.Index)
			}
			return fmt.Errorf("wait for the replicas of %s-%d: %w", p.Topic, p.Index, ctx.Err())
		}
	}
}

// Replay reads a partition of __consumer_offsets this broker leads from its
// start to its log end offset, as Kafka's coordinator loads a partition.
func (o *offsetsLog) Replay(ctx context.Context, index int32, fn func(group.Record) error) error {
	p, err := o.leader(index)
	if err != nil {
		return err
	}
	l := p.Log()
	end := l.LogEndOffset()
	buf := make([]byte, 0, 1<<20)
	for off := l.LogStartOffset(); off < end; {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, err := l.Read(off, 1<<20, end, true)
		if err != nil {
			return err
		}
		if v.Len() == 0 {
			v.Release()
			break
		}
		buf = buf[:v.Len()]
		err = v.ReadAt(buf)
		v.Release()
		if err != nil {
			return err
		}
		for pos := 0; pos < len(buf); {
			h, recs, err := record.Records(buf[pos:])
			if err != nil {
				return err
			}
			for _, r := range recs {
				if h.BaseOffset+int64(r.OffsetDelta) < off {
					continue // the read may start inside a batch replayed already
				}
				if err := fn(group.Record{Key: r.Key, Value: r.Value}); err != nil {
					return err
				}
			}
			pos += h.Size()
			off = max(off, h.NextOffset())
		}
	}
	return nil
}

// FindCoordinator (key 10), v0-v6: a group's coordinator is the leader of
// its __consumer_offsets partition (Kafka's abs(hash) % partitions), from
// the cluster metadata; a partition without a live leader answers
// COORDINATOR_NOT_AVAILABLE, and the client asks again. The offsets topic is
// created on the first group lookup. Transactional ids (type 1) are answered
// with this broker, which has no transaction coordinator yet. v4+ batches
// keys.
func (b *Broker) handleFindCoordinator(req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	var topicErr error
	if req.CoordinatorType == 0 {
		_, topicErr = b.groupLog.ensureTopic()
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		var coord metadata.Broker
		var err error
		switch {
		case req.CoordinatorType == 1:
			coord = b.self
		case req.CoordinatorType != 0:
			err = kerrf(kerr.InvalidRequest, "coordinator type %d is neither 0 (group) nor 1 (transaction)", req.CoordinatorType)
		case topicErr != nil:
			err = kerrf(kerr.CoordinatorNotAvailable, "%v", topicErr)
		default:
			coord, err = b.groupCoordinator(key)
		}
		if err != nil {
			c.ErrorCode, c.ErrorMessage = errorCode(err), errorMessage(err)
			c.NodeID, c.Port = -1, -1
		} else {
			c.NodeID, c.Host, c.Port = coord.NodeID, coord.Host, coord.Port
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
		resp.Coordinators = nil
	}
	return resp
}

// groupCoordinator returns the broker that coordinates group: the current
// leader of its __consumer_offsets partition, from the metadata. It fails
// coded COORDINATOR_NOT_AVAILABLE when the partition has no live leader.
func (b *Broker) groupCoordinator(group string) (metadata.Broker, error) {
	t, ok := b.meta.Topic(offsetsTopic)
	index := b.groups.PartitionFor(group)
	if !ok || int(index) >= len(t.Partitions) {
		return metadata.Broker{}, kerrf(kerr.CoordinatorNotAvailable, "%s-%d does not exist yet", offsetsTopic, index)
	}
	leader := t.Partitions[index].Leader
	if leader < 0 {
		return metadata.Broker{}, kerrf(kerr.CoordinatorNotAvailable, "%s-%d has no leader at the moment", offsetsTopic, index)
	}
	for _, br := range b.meta.Brokers() {
		if br.NodeID == leader {
			return br, nil
		}
	}
	return metadata.Broker{}, kerrf(kerr.CoordinatorNotAvailable, "broker %d, leader of %s-%d, is not registered", leader, offsetsTopic, index)
}

func (b *Broker) handleJoinGroup(ctx context.Context, cs *connState, clientID string, req *kmsg.JoinGroupRequest) (kmsg.Response, error) {
	return b.groups.JoinGroup(ctx, req, clientID, cs.remote), nil
}

func (b *Broker) handleSyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) (kmsg.Response, error) {
	return b.groups.SyncGroup(ctx, req), nil
}

func (b *Broker) handleHeartbeat(req *kmsg.HeartbeatRequest) kmsg.Response {
	return b.groups.Heartbeat(req)
}

func (b *Broker) handleLeaveGroup(req *kmsg.LeaveGroupRequest) kmsg.Response {
	return b.groups.LeaveGroup(req)
}

func (b *Broker) handleOffsetCommit(req *kmsg.OffsetCommitRequest) kmsg.Response {
	return b.groups.OffsetCommit(req)
}

func (b *Broker) handleOffsetFetch(req *kmsg.OffsetFetchRequest) kmsg.Response {
	return b.groups.OffsetFetch(req)
}

func (b *Broker) handleListGroups(req *kmsg.ListGroupsRequest) kmsg.Response {
	return b.groups.ListGroups(req)
}

func (b *Broker) handleDescribeGroups(req *kmsg.DescribeGroupsRequest) kmsg.Response {
	return b.groups.DescribeGroups(req)
}

func (b *Broker) handleDeleteGroups(req *kmsg.DeleteGroupsRequest) kmsg.Response {
	return b.groups.DeleteGroups(req)
}

func (b *Broker) handleOffsetDelete(req *kmsg.OffsetDeleteRequest) kmsg.Response {
	return b.groups.OffsetDelete(req)
}

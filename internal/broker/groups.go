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

	"github.com/fjord-io/fjord/internal/group"
	"github.com/fjord-io/fjord/internal/metadata"
	"github.com/fjord-io/fjord/internal/record"
)

// The group APIs are handled by internal/group, one file per API there; this
// file connects them to the broker: FindCoordinator, the __consumer_offsets
// topic the coordinator persists to, and the request delegations.

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

// offsetsLog is the coordinator's storage: the partitions of
// __consumer_offsets, created on first use as Kafka does.
type offsetsLog struct {
	b          *Broker
	partitions int32
	createMu   sync.Mutex
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

// Append writes records as one batch to a partition of __consumer_offsets.
func (o *offsetsLog) Append(partition int32, recs []group.Record) error {
	ts, err := o.ensureTopic()
	if err != nil {
		return err
	}
	if int(partition) >= len(ts.parts) || ts.parts[partition] == nil {
		return fmt.Errorf("%s-%d is not hosted here", offsetsTopic, partition)
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
	_, err = ts.parts[partition].AppendLeader(batch, now)
	return err
}

// Replay reads a partition of __consumer_offsets from its start.
func (o *offsetsLog) Replay(partition int32, fn func(group.Record) error) error {
	p := o.b.parts.get(offsetsTopic, partition)
	if p == nil {
		return nil
	}
	l := p.Log()
	buf := make([]byte, 0, 1<<20)
	for off := l.LogStartOffset(); off < l.LogEndOffset(); {
		v, err := l.Read(off, 1<<20, l.LogEndOffset(), true)
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
				if err := fn(group.Record{Key: r.Key, Value: r.Value}); err != nil {
					return err
				}
			}
			pos += h.Size()
			off = h.LastOffset() + 1
		}
	}
	return nil
}

// FindCoordinator (key 10), v0-v6: this broker coordinates every group (and
// would every transactional id); v4+ batches keys. The offsets topic is
// created on the first group lookup.
func (b *Broker) handleFindCoordinator(req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	code := int16(0)
	var msg *string
	if req.CoordinatorType == 0 {
		if _, err := b.groupLog.ensureTopic(); err != nil {
			code, msg = kerr.CoordinatorNotAvailable.Code, errorMessage(err)
		}
	} else if req.CoordinatorType != 1 {
		code = kerr.InvalidRequest.Code
	}
	if req.Version < 4 {
		resp.ErrorCode, resp.ErrorMessage = code, msg
		resp.NodeID, resp.Host, resp.Port = b.cfg.NodeID, b.host, b.port
		return resp
	}
	for _, key := range req.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.ErrorCode, c.ErrorMessage = code, msg
		c.NodeID, c.Host, c.Port = b.cfg.NodeID, b.host, b.port
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp
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

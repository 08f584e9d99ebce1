package group

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Records of __consumer_offsets use Kafka's schemas, so the topic reads the
// same to Kafka's tools: keys v0/v1 are offset commits, key v2 is a group's
// metadata; values are OffsetCommitValue v3 and GroupMetadataValue v3.

func groupKey(name string) []byte {
	k := kmsg.GroupMetadataKey{Version: 2, Group: name}
	return k.AppendTo(nil)
}

// offsetRecord is the record of a committed offset, or its tombstone when v
// is nil.
func offsetRecord(group string, k partitionKey, v *committed) Record {
	key := kmsg.OffsetCommitKey{Version: 1, Group: group, Topic: k.topic, Partition: k.partition}
	r := Record{Key: key.AppendTo(nil)}
	if v != nil {
		val := kmsg.NewOffsetCommitValue()
		val.Version = 3
		val.Offset, val.LeaderEpoch, val.Metadata, val.CommitTimestamp = v.offset, v.leaderEpoch, v.metadata, v.timestamp
		r.Value = val.AppendTo(nil)
	}
	return r
}

// groupRecordLocked is the metadata record of the group's current
// generation, with the given assignments.
func groupRecordLocked(g *group, assignments map[string][]byte, now time.Time) Record {
	val := kmsg.NewGroupMetadataValue()
	val.Version = 3
	val.ProtocolType = g.protocolType
	val.Generation = g.generation
	if g.protocol != "" {
		p, l := g.protocol, g.leader
		val.Protocol, val.Leader = &p, &l
	}
	val.CurrentStateTimestamp = now.UnixMilli()
	for _, m := range g.members {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.ClientID, vm.ClientHost = m.id, m.clientID, m.clientHost
		if m.instanceID != "" {
			iid := m.instanceID
			vm.InstanceID = &iid
		}
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		vm.Subscription = m.metadataFor(g.protocol)
		vm.Assignment = assignments[m.id]
		val.Members = append(val.Members, vm)
	}
	return Record{Key: groupKey(g.name), Value: val.AppendTo(nil)}
}

// persistGroupAsync marks the group's metadata for writing, for state
// changes made where the group lock is held. The request that made the change
// calls flushGroup before it answers; Run writes whatever is left.
func (c *Coordinator) persistGroupAsync(g *group) { g.dirty = true }

// flushDirty writes the metadata of every group marked by persistGroupAsync.
func (c *Coordinator) flushDirty(ctx context.Context) {
	groups, _ := c.all()
	for _, g := range groups {
		c.flushGroup(ctx, g)
	}
}

// flushGroup writes the group's metadata if it is marked dirty. It takes the
// group's locks itself; call it without holding them.
func (c *Coordinator) flushGroup(ctx context.Context, g *group) {
	g.writeMu.Lock()
	defer g.writeMu.Unlock()
	g.mu.Lock()
	if !g.dirty || g.state == Dead {
		g.mu.Unlock()
		return
	}
	g.dirty = false
	assignments := make(map[string][]byte, len(g.members))
	for id, m := range g.members {
		assignments[id] = m.assignment
	}
	rec := groupRecordLocked(g, assignments, time.Now())
	g.mu.Unlock()
	if err := c.appendLocked(ctx, g, []Record{rec}); err != nil {
		c.lg.Warn("persist group", "group", g.name, "err", err)
		g.mu.Lock()
		g.dirty = g.state != Dead
		g.mu.Unlock()
	}
}

// errDead means the group was unloaded with its partition, or deleted,
// before its write: nothing was written.
var errDead = errors.New("group is no longer coordinated here")

// appendLocked writes recs to g's partition, waiting at most the commit
// timeout; the caller holds g.writeMu. A dead group writes nothing: this,
// under writeMu, is what makes UnloadPartition final.
func (c *Coordinator) appendLocked(ctx context.Context, g *group, recs []Record) error {
	g.mu.Lock()
	dead := g.state == Dead
	g.mu.Unlock()
	if dead {
		return errDead
	}
	ctx, cancel := c.withCommitTimeout(ctx)
	defer cancel()
	p := c.PartitionFor(g.name)
	if err := c.log.Append(ctx, p, recs); err != nil {
		return fmt.Errorf("append to __consumer_offsets-%d: %w", p, err)
	}
	return nil
}

// appendCode is the code a request answers when its write failed, mapped
// from the produce error as Kafka's GroupMetadataManager maps it: for an
// offset commit (commit set) or for the group's metadata. A dead group
// answers COORDINATOR_NOT_AVAILABLE, as Kafka answers for a Dead group.
func appendCode(err error, commit bool) *kerr.Error {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return kerr.CoordinatorNotAvailable
	}
	switch ke {
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend:
		return kerr.CoordinatorNotAvailable
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator
	case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidFetchSize:
		if commit {
			return kerr.InvalidCommitOffsetSize
		}
		return kerr.UnknownServerError
	case kerr.RequestTimedOut:
		if commit {
			return kerr.RequestTimedOut
		}
		return kerr.CoordinatorNotAvailable
	}
	return ke
}

// replay rebuilds the groups and committed offsets stored in one partition.
// Groups that had members come back Stable, their members alive for one
// session timeout so they can keep heartbeating across a change of
// coordinator.
func (c *Coordinator) replay(ctx context.Context, p int32) (map[string]*group, error) {
	now := time.Now()
	groups := make(map[string]*group)
	get := func(name string) *group {
		g, ok := groups[name]
		if !ok {
			g = newGroup(name, now)
			groups[name] = g
		}
		return g
	}
	err := c.log.Replay(ctx, p, func(r Record) error {
		if len(r.Key) < 2 {
			return nil
		}
		switch binary.BigEndian.Uint16(r.Key) {
		case 0, 1:
			var k kmsg.OffsetCommitKey
			if err := k.ReadFrom(r.Key); err != nil {
				return fmt.Errorf("offset key: %w", err)
			}
			pk := partitionKey{k.Topic, k.Partition}
			if r.Value == nil {
				if g, ok := groups[k.Group]; ok {
					delete(g.offsets, pk)
				}
				return nil
			}
			var v kmsg.OffsetCommitValue
			if err := v.ReadFrom(r.Value); err != nil {
				return fmt.Errorf("offset value: %w", err)
			}
			get(k.Group).offsets[pk] = committed{offset: v.Offset, leaderEpoch: v.LeaderEpoch, metadata: v.Metadata, timestamp: v.CommitTimestamp}
		case 2:
			var k kmsg.GroupMetadataKey
			if err := k.ReadFrom(r.Key); err != nil {
				return fmt.Errorf("group key: %w", err)
			}
			if r.Value == nil {
				delete(groups, k.Group)
				return nil
			}
			var v kmsg.GroupMetadataValue
			if err := v.ReadFrom(r.Value); err != nil {
				return fmt.Errorf("group value: %w", err)
			}
			restoreGroup(get(k.Group), &v, now)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load __consumer_offsets-%d: %w", p, err)
	}
	return groups, nil
}

func restoreGroup(g *group, v *kmsg.GroupMetadataValue, now time.Time) {
	g.protocolType = v.ProtocolType
	g.generation = v.Generation
	g.protocol, g.leader = "", ""
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.Leader != nil {
		g.leader = *v.Leader
	}
	g.members = make(map[string]*member, len(v.Members))
	g.static = make(map[string]string)
	for i, vm := range v.Members {
		m := &member{
			id: vm.MemberID, clientID: vm.ClientID, clientHost: vm.ClientHost,
			protocolType:     v.ProtocolType,
			protocols:        []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: vm.Subscription}},
			sessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
			rebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
			assignment:       vm.Assignment,
			order:            i,
		}
		m.deadline = now.Add(m.sessionTimeout)
		if vm.InstanceID != nil {
			m.instanceID = *vm.InstanceID
			g.static[m.instanceID] = m.id
		}
		g.members[m.id] = m
	}
	g.nextOrder = len(v.Members)
	if len(g.members) > 0 {
		g.setState(Stable, now)
	} else {
		g.setState(Empty, now)
	}
}

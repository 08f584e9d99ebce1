package group

import (
	"encoding/binary"
	"fmt"
	"time"

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
func (c *Coordinator) flushDirty() {
	for _, g := range c.all() {
		c.flushGroup(g)
	}
}

// flushGroup writes the group's metadata if it is marked dirty. It takes the
// group's locks itself; call it without holding them.
func (c *Coordinator) flushGroup(g *group) {
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
	if err := c.log.Append(c.PartitionFor(g.name), []Record{rec}); err != nil {
		c.lg.Warn("persist group", "group", g.name, "err", err)
		g.mu.Lock()
		g.dirty = true
		g.mu.Unlock()
	}
}

// Load rebuilds every group and committed offset from the log. Groups that
// had members come back Stable, their members alive for one session timeout
// so they can keep heartbeating across a coordinator restart.
func (c *Coordinator) Load() error {
	now := time.Now()
	for p := int32(0); p < c.cfg.Partitions; p++ {
		err := c.log.Replay(p, func(r Record) error {
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
					if g := c.get(k.Group, false); g != nil {
						delete(g.offsets, pk)
					}
					return nil
				}
				var v kmsg.OffsetCommitValue
				if err := v.ReadFrom(r.Value); err != nil {
					return fmt.Errorf("offset value: %w", err)
				}
				g := c.get(k.Group, true)
				g.offsets[pk] = committed{offset: v.Offset, leaderEpoch: v.LeaderEpoch, metadata: v.Metadata, timestamp: v.CommitTimestamp}
			case 2:
				var k kmsg.GroupMetadataKey
				if err := k.ReadFrom(r.Key); err != nil {
					return fmt.Errorf("group key: %w", err)
				}
				if r.Value == nil {
					c.mu.Lock()
					delete(c.groups, k.Group)
					c.mu.Unlock()
					return nil
				}
				var v kmsg.GroupMetadataValue
				if err := v.ReadFrom(r.Value); err != nil {
					return fmt.Errorf("group value: %w", err)
				}
				restoreGroup(c.get(k.Group, true), &v, now)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("load __consumer_offsets-%d: %w", p, err)
		}
	}
	return nil
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

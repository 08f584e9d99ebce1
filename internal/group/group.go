// Package group is the consumer-group coordinator: Kafka's classic rebalance
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) with KIP-394 member
// ids and KIP-345 static membership, committed offsets, the group admin APIs,
// and persistence of all of it in the __consumer_offsets topic.
//
// The coordinator speaks the protocol's semantics directly: its methods take a
// kmsg request and return a kmsg response with Kafka error codes set, one
// file per API. JoinGroup and SyncGroup block until the rebalance they take
// part in moves on, as Kafka parks them in purgatory.
package group

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Log is the coordinator's durable storage: the partitions of
// __consumer_offsets. The broker implements it.
type Log interface {
	// Append writes records to one partition. It returns once they are as
	// durable as an acks=all produce.
	Append(partition int32, recs []Record) error
	// Replay calls fn for every record of the partition, in offset order.
	Replay(partition int32, fn func(r Record) error) error
}

// Record is one key/value of __consumer_offsets; a nil Value is a tombstone.
type Record struct {
	Key, Value []byte
}

// Config holds the coordinator's settings, with Kafka's property names.
type Config struct {
	// Partitions is offsets.topic.num.partitions.
	Partitions int32
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout are group.min/max.session.timeout.ms.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// OffsetsRetention is offsets.retention.minutes: how long an empty
	// group's offsets are kept.
	OffsetsRetention time.Duration
	// MaxGroupSize is group.max.size.
	MaxGroupSize int
	// MaxMetadataBytes is offset.metadata.max.bytes.
	MaxMetadataBytes int
	// TopicExists says whether a partition exists, for commits.
	TopicExists func(topic string, partition int32) bool
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		Partitions:            50,
		InitialRebalanceDelay: 3 * time.Second,
		MinSessionTimeout:     6 * time.Second,
		MaxSessionTimeout:     30 * time.Minute,
		OffsetsRetention:      7 * 24 * time.Hour,
		MaxGroupSize:          1 << 30,
		MaxMetadataBytes:      4096,
	}
}

// State is a group's state, named as DescribeGroups and ListGroups report it.
type State string

const (
	Empty               State = "Empty"
	PreparingRebalance  State = "PreparingRebalance"
	CompletingRebalance State = "CompletingRebalance"
	Stable              State = "Stable"
	Dead                State = "Dead"
)

// Coordinator coordinates every group. Groups are independent: each has its
// own lock, never held across I/O; the coordinator's lock guards only the
// group map.
type Coordinator struct {
	cfg Config
	log Log
	lg  *slog.Logger

	mu     sync.Mutex
	groups map[string]*group
}

// New returns a coordinator over log. Call Load before serving requests.
func New(cfg Config, log Log, lg *slog.Logger) *Coordinator {
	return &Coordinator{cfg: cfg, log: log, lg: lg, groups: make(map[string]*group)}
}

type member struct {
	id, instanceID, clientID, clientHost string
	protocolType                         string
	protocols                            []kmsg.JoinGroupRequestProtocol
	sessionTimeout, rebalanceTimeout     time.Duration
	assignment                           []byte
	deadline                             time.Time // session expiry
	order                                int       // join order, for choosing a leader

	// joinCh and syncCh are set while the member's JoinGroup or SyncGroup
	// waits; the coordinator answers through them exactly once.
	joinCh      chan *kmsg.JoinGroupResponse
	joinVersion int16
	syncCh      chan *kmsg.SyncGroupResponse
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

type partitionKey struct {
	topic     string
	partition int32
}

type committed struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	timestamp   int64
}

// group is one consumer group. mu guards every field; writeMu serializes the
// group's writes to the log so they apply in log order, and is the only lock
// held across I/O.
type group struct {
	name    string
	writeMu sync.Mutex
	mu      sync.Mutex

	state        State
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string    // instance id → member id
	pending      map[string]time.Time // KIP-394 member ids handed out, not yet joined
	nextOrder    int
	stateSince   time.Time

	rebalanceDeadline time.Time // PreparingRebalance: when to complete regardless
	delayUntil        time.Time // initial rebalance delay of an empty group

	offsets map[partitionKey]committed
	dirty   bool // metadata changed; Run writes it (persistGroupAsync)
}

func newGroup(name string, now time.Time) *group {
	return &group{
		name:       name,
		state:      Empty,
		members:    make(map[string]*member),
		static:     make(map[string]string),
		pending:    make(map[string]time.Time),
		offsets:    make(map[partitionKey]committed),
		stateSince: now,
	}
}

func (g *group) setState(s State, now time.Time) {
	g.state = s
	g.stateSince = now
}

// get returns a group, creating it when create is set.
func (c *Coordinator) get(name string, create bool) *group {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.groups[name]
	if !ok && create {
		g = newGroup(name, time.Now())
		c.groups[name] = g
	}
	return g
}

func (c *Coordinator) all() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g)
	}
	return out
}

// PartitionFor returns the __consumer_offsets partition that stores a group:
// Kafka's abs(groupId.hashCode()) % partitions, so tools that compute it agree.
func (c *Coordinator) PartitionFor(group string) int32 {
	var h int32
	for _, r := range []rune(group) {
		if r > 0xFFFF { // Java hashes UTF-16 code units
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	if h == -2147483648 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % c.cfg.Partitions
}

// tick is how often the coordinator checks session and rebalance deadlines.
const tick = 100 * time.Millisecond

// Run expires sessions, completes rebalances whose time is up, and expires
// old offsets, until ctx is done.
func (c *Coordinator) Run(ctx context.Context) {
	t := time.NewTicker(tick)
	defer t.Stop()
	lastExpiry := time.Now()
	for {
		select {
		case <-ctx.Done():
			c.flushDirty()
			c.shutdown()
			return
		case now := <-t.C:
			c.flushDirty()
			for _, g := range c.all() {
				g.mu.Lock()
				c.checkTimersLocked(g, now)
				g.mu.Unlock()
			}
			if now.Sub(lastExpiry) > time.Minute {
				lastExpiry = now
				c.expireOffsets(now)
			}
		}
	}
}

// shutdown answers every waiting JoinGroup and SyncGroup so their
// connections can close.
func (c *Coordinator) shutdown() {
	for _, g := range c.all() {
		g.mu.Lock()
		for _, m := range g.members {
			c.failJoinLocked(m, errCoordinatorNotAvailable)
			c.failSyncLocked(m, errCoordinatorNotAvailable)
		}
		g.mu.Unlock()
	}
}

// checkTimersLocked applies the deadlines of one group.
func (c *Coordinator) checkTimersLocked(g *group, now time.Time) {
	for id, exp := range g.pending {
		if now.After(exp) {
			delete(g.pending, id)
		}
	}
	switch g.state {
	case PreparingRebalance:
		// A member that has not rejoined and whose session runs out is gone,
		// as in Kafka: the rebalance need not wait for its rebalance timeout.
		// Members with a JoinGroup waiting do not expire.
		for _, m := range g.members {
			if m.joinCh == nil && now.After(m.deadline) {
				c.lg.Info("group member session expired during rebalance", "group", g.name, "member", m.id)
				c.removeMemberLocked(g, m)
			}
		}
		if len(g.members) == 0 || now.After(g.rebalanceDeadline) || (c.allJoinedLocked(g) && !now.Before(g.delayUntil)) {
			c.completeJoinLocked(g, now)
		}
	case CompletingRebalance, Stable:
		var expired []*member
		for _, m := range g.members {
			if now.After(m.deadline) {
				expired = append(expired, m)
			}
		}
		for _, m := range expired {
			c.lg.Info("group member session expired", "group", g.name, "member", m.id)
			c.removeMemberLocked(g, m)
		}
		if len(expired) > 0 {
			c.prepareRebalanceLocked(g, now)
		}
	}
}

func (g *group) String() string {
	return fmt.Sprintf("group %s (%s, generation %d)", g.name, g.state, g.generation)
}

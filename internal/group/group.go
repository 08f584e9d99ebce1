// Package group is the consumer-group coordinator: Kafka's classic rebalance
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) with KIP-394 member
// ids and KIP-345 static membership, committed offsets, the group admin APIs,
// and persistence of all of it in the __consumer_offsets topic. As in Kafka,
// a coordinator serves the groups of the __consumer_offsets partitions its
// broker leads (LoadPartition, UnloadPartition; ownership.go).
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

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Log is the coordinator's durable storage: the partitions of
// __consumer_offsets. The broker implements it.
//
// Errors that wrap a *kerr.Error are the codes an acks=all produce to the
// partition would get (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS,
// REQUEST_TIMED_OUT, ...); the coordinator maps them to the group APIs'
// codes as Kafka's GroupMetadataManager does (appendCode).
type Log interface {
	// Append writes records to one partition. It returns once they are as
	// durable as an acks=all produce, or fails when ctx ends first (a
	// deadline coded REQUEST_TIMED_OUT).
	Append(ctx context.Context, partition int32, recs []Record) error
	// Replay calls fn for every record of the partition, in offset order,
	// up to its log end offset.
	Replay(ctx context.Context, partition int32, fn func(r Record) error) error
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
	// CommitTimeout is offsets.commit.timeout.ms: how long a write to
	// __consumer_offsets waits for the in-sync replicas; 0 waits as long as
	// the request does.
	CommitTimeout time.Duration
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
		CommitTimeout:         5 * time.Second,
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

// Coordinator coordinates the groups stored in the __consumer_offsets
// partitions it owns: those LoadPartition gave it (the partitions this
// broker leads), once replayed. A request for any other group answers
// NOT_COORDINATOR, and COORDINATOR_LOAD_IN_PROGRESS while its partition
// replays, as in Kafka.
//
// Groups are independent: each has its own lock, never held across I/O. The
// coordinator's mu guards only the partition map, each owned partition's
// group map, and the queue of partitions to load.
type Coordinator struct {
	cfg Config
	log Log
	lg  *slog.Logger

	// loadKick wakes the loader (Run) when a partition is queued.
	loadKick chan struct{}

	mu struct {
		sync.Mutex
		parts map[int32]*ownedPartition
		loads []pendingLoad
	}
}

// ownedPartition is one __consumer_offsets partition the coordinator serves,
// or is loading to serve.
type ownedPartition struct {
	index   int32
	loading bool
	groups  map[string]*group
}

// New returns a coordinator over log that owns no partition yet: give it
// partitions with LoadPartition, and run it with Run.
func New(cfg Config, log Log, lg *slog.Logger) *Coordinator {
	c := &Coordinator{cfg: cfg, log: log, lg: lg, loadKick: make(chan struct{}, 1)}
	c.mu.parts = make(map[int32]*ownedPartition)
	return c
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

// lookup returns the named group, creating it when create is set (nil when
// it does not exist), or the code a request for it answers when this
// coordinator does not serve it: NOT_COORDINATOR, or
// COORDINATOR_LOAD_IN_PROGRESS while its partition loads.
func (c *Coordinator) lookup(name string, create bool) (*group, *kerr.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	op := c.mu.parts[c.PartitionFor(name)]
	switch {
	case op == nil:
		return nil, kerr.NotCoordinator
	case op.loading:
		return nil, kerr.CoordinatorLoadInProgress
	}
	g, ok := op.groups[name]
	if !ok && create {
		g = newGroup(name, time.Now())
		op.groups[name] = g
	}
	return g, nil
}

// all returns the groups of the partitions the coordinator serves, and
// whether any partition is still loading.
func (c *Coordinator) all() (groups []*group, loading bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, op := range c.mu.parts {
		if op.loading {
			loading = true
			continue
		}
		for _, g := range op.groups {
			groups = append(groups, g)
		}
	}
	return groups, loading
}

// forget removes a deleted group from its partition's map.
func (c *Coordinator) forget(g *group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if op := c.mu.parts[c.PartitionFor(g.name)]; op != nil && op.groups[g.name] == g {
		delete(op.groups, g.name)
	}
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

// tick is how often the coordinator checks session and rebalance deadlines
// and writes deferred group metadata.
const tick = 100 * time.Millisecond

// Run serves the coordinator until ctx is done: it loads the partitions
// LoadPartition queues, expires sessions and completes rebalances whose
// time is up, and writes deferred group metadata and expires old offsets.
// The writes have their own goroutine, so a write waiting for the in-sync
// replicas never holds up the deadlines. On return every goroutine Run
// started has ended and every waiting JoinGroup and SyncGroup is answered.
func (c *Coordinator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { c.runLoader(ctx) })
	wg.Go(func() { c.runWriter(ctx) })
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			c.shutdown()
			return
		case now := <-t.C:
			groups, _ := c.all()
			for _, g := range groups {
				g.mu.Lock()
				c.checkTimersLocked(g, now)
				g.mu.Unlock()
			}
		}
	}
}

// runWriter writes the metadata of groups marked by persistGroupAsync every
// tick, and about every minute expires old offsets, until ctx is done; then
// it writes what is left, within one commit timeout.
func (c *Coordinator) runWriter(ctx context.Context) {
	t := time.NewTicker(tick)
	defer t.Stop()
	lastExpiry := time.Now()
	for {
		select {
		case <-ctx.Done():
			final, cancel := c.withCommitTimeout(context.WithoutCancel(ctx))
			defer cancel()
			c.flushDirty(final)
			return
		case now := <-t.C:
			c.flushDirty(ctx)
			if now.Sub(lastExpiry) > time.Minute {
				lastExpiry = now
				c.expireOffsets(ctx, now)
			}
		}
	}
}

// shutdown answers every waiting JoinGroup and SyncGroup so their
// connections can close.
func (c *Coordinator) shutdown() {
	groups, _ := c.all()
	for _, g := range groups {
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

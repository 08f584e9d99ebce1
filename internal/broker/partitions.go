package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/fjord-io/fjord/internal/commitlog"
	"github.com/fjord-io/fjord/internal/metadata"
	"github.com/fjord-io/fjord/internal/partition"
	"github.com/fjord-io/fjord/internal/topicconfig"
)

// topicState is a topic as this broker hosts it.
type topicState struct {
	meta  metadata.Topic
	cfg   topicconfig.Set
	parts []*partition.Partition // by partition index
}

// partitions owns the partitions this broker hosts and keeps them in step
// with the metadata store: sync, run on every metadata change, opens the
// logs of the partitions assigned to this broker, deletes those of deleted
// topics, applies config changes, and makes each replica leader or follower
// as the metadata says. mu guards the maps only and is never held across
// disk I/O; adminMu serializes sync and topic changes (create, delete,
// grow, alter), which do their I/O outside mu.
type partitions struct {
	dir   string
	node  int32
	meta  store
	props map[string]string
	log   *slog.Logger
	// mayLead reports whether this broker may lead partitions: it is
	// registered and not fenced (a standalone broker always may).
	mayLead func() bool
	// follow and unfollow hand follower replicas to the replica fetchers.
	follow   func(p *partition.Partition, leader, epoch int32)
	unfollow func(p *partition.Partition)
	// led is told when this broker starts or stops leading a partition
	// (the group coordinator follows __consumer_offsets' leadership). A
	// new epoch while leading is reported as a stop and a start, since
	// another leader may have changed the partition in between.
	led func(p *partition.Partition, leading bool)

	adminMu sync.Mutex
	mu      struct {
		sync.RWMutex
		topics map[string]*topicState
		byID   map[uuid.UUID]*topicState
	}
}

// partitionMetaFile records which topic id a partition directory belongs to,
// so a directory left by a deleted topic is never mistaken for a new topic
// of the same name.
const partitionMetaFile = "partition.metadata"

func newPartitions(dir string, node int32, meta store, props map[string]string, log *slog.Logger) *partitions {
	ps := &partitions{dir: dir, node: node, meta: meta, props: props, log: log,
		mayLead: func() bool { return true }, follow: func(*partition.Partition, int32, int32) {}, unfollow: func(*partition.Partition) {},
		led: func(*partition.Partition, bool) {}}
	ps.mu.topics = make(map[string]*topicState)
	ps.mu.byID = make(map[uuid.UUID]*topicState)
	return ps
}

// open opens every partition the metadata assigns to this broker and
// removes the directories of partitions it no longer hosts. A partition
// that fails to open fails the open: a broker with unreadable logs must not
// serve.
func (ps *partitions) open() error {
	if err := ps.sync(true); err != nil {
		ps.close()
		return err
	}
	live := make(map[string]uuid.UUID)
	for _, ts := range ps.all() {
		for i, p := range ts.parts {
			if p != nil {
				live[partitionDirName(ts.meta.Name, int32(i))] = ts.meta.ID
			}
		}
	}
	if err := ps.removeStaleDirs(live); err != nil {
		ps.close()
		return err
	}
	return nil
}

func partitionDirName(topic string, index int32) string {
	return topic + "-" + strconv.Itoa(int(index))
}

// removeStaleDirs deletes partition directories that belong to no live topic
// (a topic deleted while this broker was down, or a delete cut short).
func (ps *partitions) removeStaleDirs(live map[string]uuid.UUID) error {
	entries, err := os.ReadDir(ps.dir)
	if err != nil {
		return fmt.Errorf("list data dir: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		path := filepath.Join(ps.dir, e.Name())
		if _, err := os.Stat(filepath.Join(path, partitionMetaFile)); err != nil {
			continue // not a partition directory of ours
		}
		if _, ok := live[e.Name()]; ok {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("remove stale partition %s: %w", e.Name(), err)
		}
	}
	return nil
}

func (ps *partitions) resolve(overrides map[string]string) topicconfig.Set {
	return topicconfig.Resolve(overrides, ps.props)
}

// sync brings the hosted partitions in line with the metadata store. It is
// level-based and idempotent: any number of metadata changes are handled by
// one run. With strict, the first partition that fails to open fails the
// run; otherwise failures are logged and retried on the next run.
func (ps *partitions) sync(strict bool) error {
	ps.adminMu.Lock()
	defer ps.adminMu.Unlock()
	return ps.syncLocked(strict)
}

func (ps *partitions) syncLocked(strict bool) error {
	now := time.Now()
	mayLead := ps.mayLead()
	want := ps.meta.Topics()
	seen := make(map[string]bool, len(want))
	var errs []error
	for _, t := range want {
		seen[t.Name] = true
		old := ps.topic(t.Name)
		if old != nil && old.meta.ID != t.ID {
			ps.removeTopic(old) // deleted and created again
			old = nil
		}
		ts := &topicState{meta: t, cfg: ps.resolve(t.Configs), parts: make([]*partition.Partition, len(t.Partitions))}
		cfgChanged := old != nil && !maps.Equal(old.meta.Configs, t.Configs)
		// Roles are applied once the topic is installed: a partition that
		// leads, or whose follower fetches put it in the ISR, must be
		// found by requests at once, not answered UNKNOWN_TOPIC_OR_PARTITION
		// while the topic's other partitions are still being opened.
		var roles []int
		for i, pm := range t.Partitions {
			var p *partition.Partition
			if old != nil && i < len(old.parts) {
				p = old.parts[i]
			}
			hosted := slices.Contains(pm.Replicas, ps.node)
			switch {
			case p == nil && hosted:
				var err error
				if p, err = ps.openPartition(t, pm, ts.cfg); err != nil {
					if strict {
						ps.install(ts)
						return err
					}
					errs = append(errs, err)
					continue
				}
			case p != nil && !hosted:
				// Reassigned away from this broker.
				ps.unfollow(p)
				if p.IsLeader() {
					p.BecomeFollower(ps.node, p.LeaderEpoch(), -1, nil)
					ps.led(p, false)
				}
				p.Close()
				if err := p.Log().Delete(); err != nil {
					errs = append(errs, err)
				}
				p = nil
			case p != nil && cfgChanged:
				p.SetConfig(ts.cfg)
			}
			if p != nil {
				roles = append(roles, i)
			}
			ts.parts[i] = p
		}
		ps.install(ts)
		for _, i := range roles {
			ps.applyRole(ts.parts[i], t.Partitions[i], mayLead, now)
		}
	}
	for _, ts := range ps.all() {
		if !seen[ts.meta.Name] {
			ps.removeTopic(ts)
		}
	}
	if len(errs) > 0 {
		err := errors.Join(errs...)
		ps.log.Warn("some partitions could not be opened; retrying on the next metadata change", "err", err)
		return err
	}
	return nil
}

// applyRole makes p leader or follower as pm says.
func (ps *partitions) applyRole(p *partition.Partition, pm metadata.Partition, mayLead bool, now time.Time) {
	if pm.Leader == ps.node && mayLead {
		if !p.IsLeader() || p.Leader() != ps.node || p.LeaderEpoch() != pm.LeaderEpoch {
			was := p.IsLeader()
			ps.unfollow(p)
			p.BecomeLeader(ps.node, pm.LeaderEpoch, pm.Replicas, pm.ISR, now)
			ps.log.Debug("leading", "topic", p.Topic, "partition", p.Index, "epoch", pm.LeaderEpoch)
			if was {
				ps.led(p, false) // led again at a newer epoch: state may have moved on meanwhile
			}
			ps.led(p, true)
			return
		}
		p.SetReplicas(pm.Replicas, now)
		p.SetISR(pm.ISR)
		return
	}
	leader := pm.Leader
	if leader == ps.node {
		leader = -1 // ours, but fenced: wait for the controller
	}
	if p.IsLeader() || p.Leader() != leader || p.LeaderEpoch() != pm.LeaderEpoch {
		was := p.IsLeader()
		p.BecomeFollower(ps.node, pm.LeaderEpoch, leader, pm.Replicas)
		if was {
			ps.led(p, false)
		}
		if leader >= 0 {
			ps.follow(p, leader, pm.LeaderEpoch)
		} else {
			ps.unfollow(p)
		}
	}
}

// removeTopic forgets a hosted topic and deletes its logs.
func (ps *partitions) removeTopic(ts *topicState) {
	ps.mu.Lock()
	if ps.mu.topics[ts.meta.Name] == ts {
		delete(ps.mu.topics, ts.meta.Name)
	}
	if ps.mu.byID[ts.meta.ID] == ts {
		delete(ps.mu.byID, ts.meta.ID)
	}
	ps.mu.Unlock()
	for _, p := range ts.parts {
		if p != nil {
			ps.unfollow(p)
			if p.IsLeader() {
				p.BecomeFollower(ps.node, p.LeaderEpoch(), -1, nil) // wakes waiters
				ps.led(p, false)
			}
			p.Refresh()
			if err := p.Log().Delete(); err != nil {
				ps.log.Warn("delete partition log", "topic", p.Topic, "partition", p.Index, "err", err)
			}
		}
	}
}

func (ps *partitions) openPartition(t metadata.Topic, pm metadata.Partition, cfg topicconfig.Set) (*partition.Partition, error) {
	dir := filepath.Join(ps.dir, partitionDirName(t.Name, pm.Index))
	metaPath := filepath.Join(dir, partitionMetaFile)
	want := "version: 0\ntopic_id: " + t.ID.String() + "\n"
	if b, err := os.ReadFile(metaPath); err == nil && string(b) != want {
		// A directory from an older topic of the same name.
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("remove old partition %s: %w", dir, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create partition dir: %w", err)
	}
	if _, err := os.Stat(metaPath); err != nil {
		if err := os.WriteFile(metaPath, []byte(want), 0o644); err != nil {
			return nil, fmt.Errorf("write partition metadata: %w", err)
		}
	}
	l, err := commitlog.Open(dir, cfg.LogConfig())
	if err != nil {
		return nil, fmt.Errorf("open log %s-%d: %w", t.Name, pm.Index, err)
	}
	p, err := partition.New(t.Name, pm.Index, l, pm.LeaderEpoch, cfg)
	if err != nil {
		l.Close()
		return nil, err
	}
	// Until its role is applied, the replica leads nothing.
	p.BecomeFollower(ps.node, pm.LeaderEpoch, -1, pm.Replicas)
	return p, nil
}

func (ps *partitions) install(ts *topicState) {
	ps.mu.Lock()
	ps.mu.topics[ts.meta.Name] = ts
	ps.mu.byID[ts.meta.ID] = ts
	ps.mu.Unlock()
}

// topic returns the named topic, or nil.
func (ps *partitions) topic(name string) *topicState {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.mu.topics[name]
}

// topicByID returns the topic with the given id, or nil.
func (ps *partitions) topicByID(id uuid.UUID) *topicState {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.mu.byID[id]
}

// get returns a hosted partition, or nil.
func (ps *partitions) get(topic string, index int32) *partition.Partition {
	ts := ps.topic(topic)
	if ts == nil || index < 0 || int(index) >= len(ts.parts) {
		return nil
	}
	return ts.parts[index]
}

// leader returns the replica of a partition this broker leads: an error
// coded UNKNOWN_TOPIC_OR_PARTITION when the partition does not exist, and
// NOT_LEADER_OR_FOLLOWER when this broker does not lead it (the client
// refreshes its metadata and finds the leader).
func (ps *partitions) leader(topic string, index int32) (*partition.Partition, error) {
	ts := ps.topic(topic)
	switch {
	case ts == nil || index < 0 || int(index) >= len(ts.parts):
		return nil, kerrf(kerr.UnknownTopicOrPartition, "topic %q partition %d does not exist", topic, index)
	case ts.parts[index] == nil:
		return nil, kerrf(kerr.NotLeaderForPartition, "broker %d holds no replica of %s-%d", ps.node, topic, index)
	case !ts.parts[index].IsLeader():
		return nil, kerrf(kerr.NotLeaderForPartition, "broker %d does not lead %s-%d", ps.node, topic, index)
	}
	return ts.parts[index], nil
}

// all returns every topic, sorted by name.
func (ps *partitions) all() []*topicState {
	ps.mu.RLock()
	out := make([]*topicState, 0, len(ps.mu.topics))
	for _, ts := range ps.mu.topics {
		out = append(out, ts)
	}
	ps.mu.RUnlock()
	sortTopics(out)
	return out
}

// createTopic records a topic in the metadata store and opens the logs of
// the partitions this broker hosts; the other replicas' brokers open theirs
// when the change reaches them.
func (ps *partitions) createTopic(t metadata.Topic) (*topicState, error) {
	ps.adminMu.Lock()
	defer ps.adminMu.Unlock()
	created, err := ps.meta.CreateTopic(t)
	if err != nil {
		return nil, err
	}
	if err := ps.syncLocked(true); err != nil {
		// Leave metadata and disk consistent: the topic does not exist.
		if _, derr := ps.meta.DeleteTopic(created.Name); derr != nil {
			err = errors.Join(err, derr)
		}
		ps.syncLocked(false)
		return nil, err
	}
	if ts := ps.topic(created.Name); ts != nil {
		return ts, nil
	}
	return &topicState{meta: created, cfg: ps.resolve(created.Configs), parts: make([]*partition.Partition, len(created.Partitions))}, nil
}

// deleteTopic removes a topic from the metadata store, then its logs.
func (ps *partitions) deleteTopic(name string) (metadata.Topic, error) {
	ps.adminMu.Lock()
	defer ps.adminMu.Unlock()
	t, err := ps.meta.DeleteTopic(name)
	if err != nil {
		return t, err
	}
	ps.syncLocked(false)
	return t, nil
}

// addPartitions grows a topic.
func (ps *partitions) addPartitions(name string, add []metadata.Partition) error {
	ps.adminMu.Lock()
	defer ps.adminMu.Unlock()
	if err := ps.meta.AddPartitions(name, add); err != nil {
		return err
	}
	return ps.syncLocked(false)
}

// setConfigs replaces a topic's overrides and applies them to its logs.
func (ps *partitions) setConfigs(name string, configs map[string]string) error {
	ps.adminMu.Lock()
	defer ps.adminMu.Unlock()
	if err := ps.meta.SetConfigs(name, configs); err != nil {
		return err
	}
	ps.syncLocked(false)
	return nil
}

// maintain runs retention and compaction until ctx is done.
func (ps *partitions) maintain(ctx context.Context, st settings, log *slog.Logger) {
	tick := time.NewTicker(st.retentionCheckInterval)
	defer tick.Stop()
	lastClean := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			clean := now.Sub(lastClean) >= st.cleanerBackoff
			if clean {
				lastClean = now
			}
			for _, ts := range ps.all() {
				for _, p := range ts.parts {
					if p == nil || ctx.Err() != nil {
						continue
					}
					ps.maintainOne(p, now, clean, st.producerIDExpiration, log)
				}
			}
		}
	}
}

func (ps *partitions) maintainOne(p *partition.Partition, now time.Time, clean bool, producerExpiration time.Duration, log *slog.Logger) {
	cfg := p.Config()
	if err := p.MaintainProducers(now, producerExpiration); err != nil {
		log.Warn("producer state maintenance failed", "topic", p.Topic, "partition", p.Index, "err", err)
	}
	if n, err := p.Log().EnforceRetention(now); err != nil {
		if !errors.Is(err, commitlog.ErrClosed) {
			log.Warn("retention failed", "topic", p.Topic, "partition", p.Index, "err", err)
		}
	} else if n > 0 {
		p.Refresh()
	}
	// Kafka leaves fsync to the OS and to replication by default, but
	// flushes rolled segments; this makes older segments durable within one
	// check interval.
	if err := p.Log().Flush(); err != nil && !errors.Is(err, commitlog.ErrClosed) {
		log.Warn("flush failed", "topic", p.Topic, "partition", p.Index, "err", err)
	}
	if clean && cfg.Compact() {
		p.Log().SetCompactionLimit(p.HighWatermark())
		if err := p.Log().Compact(now); err != nil && !errors.Is(err, commitlog.ErrClosed) {
			log.Warn("compaction failed", "topic", p.Topic, "partition", p.Index, "err", err)
		}
	}
}

// close closes every partition.
func (ps *partitions) close() {
	for _, ts := range ps.all() {
		for _, p := range ts.parts {
			if p != nil {
				p.Close()
			}
		}
	}
}

func sortTopics(ts []*topicState) {
	slices.SortFunc(ts, func(a, b *topicState) int { return strings.Compare(a.meta.Name, b.meta.Name) })
}

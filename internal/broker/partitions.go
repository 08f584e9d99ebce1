package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

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
// with the metadata store. mu guards the maps only and is never held across
// disk I/O; adminMu serializes topic changes (create, delete, grow, alter),
// which do their I/O outside mu.
type partitions struct {
	dir   string
	node  int32
	meta  *metadata.Local
	props map[string]string

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

func openPartitions(dir string, node int32, meta *metadata.Local, props map[string]string) (*partitions, error) {
	ps := &partitions{dir: dir, node: node, meta: meta, props: props}
	ps.mu.topics = make(map[string]*topicState)
	ps.mu.byID = make(map[uuid.UUID]*topicState)
	live := make(map[string]uuid.UUID)
	for _, t := range meta.Topics() {
		ts, err := ps.openTopic(t)
		if err != nil {
			ps.close()
			return nil, err
		}
		ps.install(ts)
		for _, p := range t.Partitions {
			live[partitionDirName(t.Name, p.Index)] = t.ID
		}
	}
	if err := ps.removeStaleDirs(live); err != nil {
		ps.close()
		return nil, err
	}
	return ps, nil
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

// openTopic opens (creating as needed) the logs of every partition of t that
// this broker hosts.
func (ps *partitions) openTopic(t metadata.Topic) (*topicState, error) {
	ts := &topicState{meta: t, cfg: ps.resolve(t.Configs), parts: make([]*partition.Partition, len(t.Partitions))}
	for i, pm := range t.Partitions {
		p, err := ps.openPartition(t, pm, ts.cfg)
		if err != nil {
			for _, q := range ts.parts[:i] {
				if q != nil {
					q.Log().Close()
				}
			}
			return nil, err
		}
		ts.parts[i] = p
	}
	return ts, nil
}

func (ps *partitions) openPartition(t metadata.Topic, pm metadata.Partition, cfg topicconfig.Set) (*partition.Partition, error) {
	if !contains(pm.Replicas, ps.node) {
		return nil, nil
	}
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

// createTopic records a topic in the metadata store and opens its logs.
func (ps *partitions) createTopic(t metadata.Topic) (*topicState, error) {
	ps.adminMu.Lock()
	defer ps.adminMu.Unlock()
	created, err := ps.meta.CreateTopic(t)
	if err != nil {
		return nil, err
	}
	ts, err := ps.openTopic(created)
	if err != nil {
		// Leave metadata and disk consistent: the topic does not exist.
		if _, derr := ps.meta.DeleteTopic(created.Name); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	ps.install(ts)
	return ts, nil
}

// deleteTopic removes a topic from the metadata store, then its logs.
func (ps *partitions) deleteTopic(name string) (metadata.Topic, error) {
	ps.adminMu.Lock()
	defer ps.adminMu.Unlock()
	t, err := ps.meta.DeleteTopic(name)
	if err != nil {
		return t, err
	}
	ps.mu.Lock()
	ts := ps.mu.topics[name]
	delete(ps.mu.topics, name)
	delete(ps.mu.byID, t.ID)
	ps.mu.Unlock()
	var errs []error
	if ts != nil {
		for _, p := range ts.parts {
			if p != nil {
				p.Refresh()
				if err := p.Log().Delete(); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return t, errors.Join(errs...)
}

// addPartitions grows a topic.
func (ps *partitions) addPartitions(name string, add []metadata.Partition) error {
	ps.adminMu.Lock()
	defer ps.adminMu.Unlock()
	old := ps.topic(name)
	if old == nil {
		return fmt.Errorf("%w: %s", metadata.ErrUnknownTopic, name)
	}
	if err := ps.meta.AddPartitions(name, add); err != nil {
		return err
	}
	t, _ := ps.meta.Topic(name)
	parts := append([]*partition.Partition(nil), old.parts...)
	for _, pm := range add {
		p, err := ps.openPartition(t, pm, old.cfg)
		if err != nil {
			return err
		}
		parts = append(parts, p)
	}
	ps.install(&topicState{meta: t, cfg: old.cfg, parts: parts})
	return nil
}

// setConfigs replaces a topic's overrides and applies them to its logs.
func (ps *partitions) setConfigs(name string, configs map[string]string) error {
	ps.adminMu.Lock()
	defer ps.adminMu.Unlock()
	old := ps.topic(name)
	if old == nil {
		return fmt.Errorf("%w: %s", metadata.ErrUnknownTopic, name)
	}
	if err := ps.meta.SetConfigs(name, configs); err != nil {
		return err
	}
	t, _ := ps.meta.Topic(name)
	cfg := ps.resolve(t.Configs)
	for _, p := range old.parts {
		if p != nil {
			p.SetConfig(cfg)
		}
	}
	ps.install(&topicState{meta: t, cfg: cfg, parts: old.parts})
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

func contains(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func sortTopics(ts []*topicState) {
	slices.SortFunc(ts, func(a, b *topicState) int { return strings.Compare(a.meta.Name, b.meta.Name) })
}

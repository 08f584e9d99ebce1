// Package metadata holds a cluster's metadata: its brokers, topics, partition
// assignments and topic configs.
//
// Local is the single-node store: one JSON document in the data directory,
// rewritten atomically on every change. The replicated store on an etcd quorum
// (issue 4) keeps the same model and the same sentinel errors.
package metadata

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"

	"github.com/google/uuid"

	"github.com/fjord-io/fjord/internal/atomicfile"
)

// Sentinel errors; the broker maps them to Kafka error codes.
var (
	ErrTopicExists   = errors.New("metadata: topic already exists")
	ErrUnknownTopic  = errors.New("metadata: unknown topic")
	ErrInvalidTopic  = errors.New("metadata: invalid topic name")
	ErrPartitionsDec = errors.New("metadata: partition count can only grow")
)

// Broker is a registered broker.
type Broker struct {
	NodeID int32  `json:"nodeId"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
	Rack   string `json:"rack,omitempty"`
	// DirID identifies the broker's data directory (a random id kept in
	// it). A broker restarted on the same directory has the same DirID,
	// which lets it take over its previous incarnation's registration at
	// once instead of waiting for that lease to expire.
	DirID string `json:"dirId,omitempty"`
	// Epoch changes with every registration (incarnation) of the broker:
	// it is the etcd revision that created the registration. The
	// controller treats a changed epoch as a restart (Kafka's broker
	// epoch). Not stored in the value; zero for Local.
	Epoch int64 `json:"-"`
}

// Partition is one partition's assignment and leadership.
//
// A reassignment in progress (KIP-455, as Kafka's PartitionRecord keeps it)
// has AddingReplicas or RemovingReplicas set: Replicas is then the target
// replicas, in the target's order, followed by the replicas being removed;
// AddingReplicas are the target replicas that were not replicas before, and
// RemovingReplicas the replicas that are not in the target. So the target
// is Replicas minus RemovingReplicas, and the assignment before the
// reassignment is Replicas minus AddingReplicas.
type Partition struct {
	Index       int32   `json:"index"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leaderEpoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	// AddingReplicas and RemovingReplicas describe a reassignment in
	// progress; both are empty otherwise.
	AddingReplicas   []int32 `json:"addingReplicas,omitempty"`
	RemovingReplicas []int32 `json:"removingReplicas,omitempty"`
}

// Reassigning reports whether a reassignment of the partition is in
// progress.
func (p Partition) Reassigning() bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

// Topic is a topic with its partitions and config overrides.
type Topic struct {
	Name       string            `json:"name"`
	ID         uuid.UUID         `json:"id"`
	Internal   bool              `json:"internal,omitempty"`
	Partitions []Partition       `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// Clone returns a deep copy.
func (t Topic) Clone() Topic {
	c := t
	c.Partitions = make([]Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		c.Partitions[i] = clonePartition(p)
	}
	c.Configs = make(map[string]string, len(t.Configs))
	for k, v := range t.Configs {
		c.Configs[k] = v
	}
	return c
}

// ValidateTopicName applies Kafka's topic name rules.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTopic, name)
	case len(name) > 249:
		return fmt.Errorf("%w: the name is longer than 249 characters", ErrInvalidTopic)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q contains %q; use only ASCII letters, digits, '.', '_' and '-'", ErrInvalidTopic, name, c)
		}
	}
	return nil
}

type document struct {
	ClusterID string   `json:"clusterId"`
	Topics    []*Topic `json:"topics"`
	// NextProducerID is the first producer id never handed out.
	NextProducerID int64 `json:"nextProducerId,omitempty"`
	// BrokerConfigs are the dynamic broker configs by entity: a node id,
	// or "default" (brokerconfigs.go).
	BrokerConfigs map[string]map[string]string `json:"brokerConfigs,omitempty"`
}

// Local is a metadata store for a single-broker cluster, persisted as one
// JSON file. It is safe for concurrent use; every change is durable (written,
// fsynced and renamed into place) before the call returns.
type Local struct {
	path string

	mu struct {
		sync.Mutex
		clusterID string
		topics    map[string]*Topic
		byID      map[uuid.UUID]*Topic
		version   uint64
		nextPID   int64 // first producer id never handed out
		self      *Broker
		subs      map[chan struct{}]struct{}
		// brokerConfigs are the dynamic broker configs by entity, as in
		// the document.
		brokerConfigs map[string]map[string]string
	}
}

// OpenLocal opens or creates the store at path. clusterID is used only when
// the store is new.
func OpenLocal(path, clusterID string) (*Local, error) {
	l := &Local{path: path}
	l.mu.topics = make(map[string]*Topic)
	l.mu.byID = make(map[uuid.UUID]*Topic)
	l.mu.subs = make(map[chan struct{}]struct{})
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if clusterID == "" {
			clusterID = newClusterID()
		}
		l.mu.clusterID = clusterID
		if err := l.persistLocked(); err != nil {
			return nil, err
		}
		return l, nil
	case err != nil:
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	var doc document
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decode metadata %s: %w", path, err)
	}
	l.mu.clusterID = doc.ClusterID
	l.mu.nextPID = doc.NextProducerID
	l.mu.brokerConfigs = doc.BrokerConfigs
	for _, t := range doc.Topics {
		l.mu.topics[t.Name] = t
		l.mu.byID[t.ID] = t
	}
	return l, nil
}

// newClusterID returns a cluster id in Kafka's form: a UUID as 22 characters of
// URL-safe base64.
func newClusterID() string {
	id := uuid.New()
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// ClusterID returns the cluster's id.
func (l *Local) ClusterID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.clusterID
}

// Version increases with every change; callers use it to notice changes.
func (l *Local) Version() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.version
}

// Topic returns a copy of the named topic.
func (l *Local) Topic(name string) (Topic, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.mu.topics[name]
	if !ok {
		return Topic{}, false
	}
	return t.Clone(), true
}

// TopicByID returns a copy of the topic with the given id.
func (l *Local) TopicByID(id uuid.UUID) (Topic, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.mu.byID[id]
	if !ok {
		return Topic{}, false
	}
	return t.Clone(), true
}

// Topics returns copies of all topics, sorted by name.
func (l *Local) Topics() []Topic {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Topic, 0, len(l.mu.topics))
	for _, t := range l.mu.topics {
		out = append(out, t.Clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CreateTopic adds a topic; its ID is assigned when zero.
func (l *Local) CreateTopic(t Topic) (Topic, error) {
	if err := ValidateTopicName(t.Name); err != nil {
		return Topic{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.mu.topics[t.Name]; ok {
		return Topic{}, fmt.Errorf("%w: %s", ErrTopicExists, t.Name)
	}
	c := t.Clone()
	if c.ID == uuid.Nil {
		c.ID = uuid.New()
	}
	l.mu.topics[c.Name] = &c
	l.mu.byID[c.ID] = &c
	if err := l.persistLocked(); err != nil {
		delete(l.mu.topics, c.Name)
		delete(l.mu.byID, c.ID)
		return Topic{}, err
	}
	return c.Clone(), nil
}

// DeleteTopic removes a topic.
func (l *Local) DeleteTopic(name string) (Topic, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.mu.topics[name]
	if !ok {
		return Topic{}, fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	delete(l.mu.topics, name)
	delete(l.mu.byID, t.ID)
	if err := l.persistLocked(); err != nil {
		l.mu.topics[name] = t
		l.mu.byID[t.ID] = t
		return Topic{}, err
	}
	return t.Clone(), nil
}

// AddPartitions appends partitions to a topic.
func (l *Local) AddPartitions(name string, parts []Partition) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.mu.topics[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	old := t.Partitions
	t.Partitions = append(append([]Partition(nil), old...), parts...)
	if err := l.persistLocked(); err != nil {
		t.Partitions = old
		return err
	}
	return nil
}

// SetConfigs replaces a topic's config overrides.
func (l *Local) SetConfigs(name string, configs map[string]string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.mu.topics[name]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
	}
	old := t.Configs
	t.Configs = make(map[string]string, len(configs))
	for k, v := range configs {
		t.Configs[k] = v
	}
	if err := l.persistLocked(); err != nil {
		t.Configs = old
		return err
	}
	return nil
}

// SetBroker records the one broker of a Local cluster, for Brokers and
// Controller. It is not persisted: the broker sets it on every start.
func (l *Local) SetBroker(b Broker) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.self = &b
}

// Brokers returns the broker set by SetBroker, if any.
func (l *Local) Brokers() []Broker {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.self == nil {
		return nil
	}
	return []Broker{*l.mu.self}
}

// Controller returns the broker set by SetBroker (a single broker is its
// own controller), or -1.
func (l *Local) Controller() int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.self == nil {
		return -1
	}
	return l.mu.self.NodeID
}

// UpdatePartition changes one partition under the rules of
// Etcd.UpdatePartition; with one writer there is never a conflict, so fn
// runs once.
func (l *Local) UpdatePartition(topic string, index int32, fn func(*Partition) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.mu.topics[topic]
	if !ok || index < 0 || int(index) >= len(t.Partitions) {
		return fmt.Errorf("%w: topic %s has no partition %d", ErrUnknownTopic, topic, index)
	}
	cur := t.Partitions[index]
	next := clonePartition(cur)
	if err := fn(&next); err != nil {
		return err
	}
	if err := checkPartitionChange(cur, &next); err != nil {
		return fmt.Errorf("update partition %s-%d: %w", topic, index, err)
	}
	if partitionsEqual(cur, next) {
		return nil
	}
	t.Partitions[index] = next
	if err := l.persistLocked(); err != nil {
		t.Partitions[index] = cur
		return err
	}
	return nil
}

// UpdatePartitions makes a batch of changes under the rules of
// Etcd.UpdatePartitions, in order, and writes the document once. It
// returns one error per update.
func (l *Local) UpdatePartitions(updates []PartitionUpdate) []error {
	errs := make([]error, len(updates))
	l.mu.Lock()
	defer l.mu.Unlock()
	type undo struct {
		t     *Topic
		index int32
		was   Partition
	}
	var undos []undo
	var written []int
	for i, u := range updates {
		t, ok := l.mu.topics[u.Topic]
		if !ok || u.Index < 0 || int(u.Index) >= len(t.Partitions) {
			errs[i] = fmt.Errorf("%w: topic %s has no partition %d", ErrUnknownTopic, u.Topic, u.Index)
			continue
		}
		cur := t.Partitions[u.Index]
		next := clonePartition(cur)
		if err := u.Fn(&next); err != nil {
			errs[i] = err
			continue
		}
		if err := checkPartitionChange(cur, &next); err != nil {
			errs[i] = fmt.Errorf("update partition %s-%d: %w", u.Topic, u.Index, err)
			continue
		}
		if partitionsEqual(cur, next) {
			continue
		}
		undos = append(undos, undo{t, u.Index, cur})
		written = append(written, i)
		t.Partitions[u.Index] = next
	}
	if len(written) == 0 {
		return errs
	}
	if err := l.persistLocked(); err != nil {
		for _, u := range slices.Backward(undos) {
			u.t.Partitions[u.index] = u.was
		}
		for _, i := range written {
			errs[i] = err
		}
	}
	return errs
}

// Watch returns a channel that receives a value after each change, like
// Etcd.Watch; it is closed when ctx ends.
func (l *Local) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	l.mu.Lock()
	l.mu.subs[ch] = struct{}{}
	l.mu.Unlock()
	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		delete(l.mu.subs, ch)
		l.mu.Unlock()
		close(ch)
	})
	return ch
}

// persistLocked writes the document atomically. The file is small (a few
// hundred bytes per topic) and changes are rare admin operations, so it is
// written under the lock: every change is durable, in order, before it is
// visible.
func (l *Local) persistLocked() error {
	doc := document{ClusterID: l.mu.clusterID, NextProducerID: l.mu.nextPID, BrokerConfigs: l.mu.brokerConfigs}
	for _, t := range l.mu.topics {
		doc.Topics = append(doc.Topics, t)
	}
	sort.Slice(doc.Topics, func(i, j int) bool { return doc.Topics[i].Name < doc.Topics[j].Name })
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode metadata: %w", err)
	}
	if err := atomicfile.Write(l.path, b); err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	l.mu.version++
	for ch := range l.mu.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return nil
}

package metadata

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdCache is an Etcd store's copy of its cluster's keys, decoded. It is
// guarded by Etcd.mu. Topic and partition keys are kept apart and joined on
// read, so the order in which a transaction's events are applied does not
// matter.
type etcdCache struct {
	brokers     map[int32]Broker
	topics      map[string]topicEntry
	parts       map[string]map[int32]partEntry // by topic name, then index
	byID        map[uuid.UUID]string
	controllers map[string]candidate // election key → candidate
	unfenced    map[int32]int64      // node id → broker epoch last unfenced
	// brokerConfigs are the dynamic broker configs by node id (-1: the
	// cluster default); see brokerconfigs.go.
	brokerConfigs map[int32]map[string]string
}

type topicEntry struct {
	rec    topicRecord
	modRev int64
}

type partEntry struct {
	p      Partition
	modRev int64
}

type candidate struct {
	node      int32
	createRev int64
}

func newEtcdCache() *etcdCache {
	return &etcdCache{
		brokers:     make(map[int32]Broker),
		topics:      make(map[string]topicEntry),
		parts:       make(map[string]map[int32]partEntry),
		byID:        make(map[uuid.UUID]string),
		controllers: make(map[string]candidate),
		unfenced:    make(map[int32]int64),
	}
}

// relative strips the cluster prefix from an etcd key.
func (e *Etcd) relative(key []byte) string {
	return strings.TrimPrefix(string(key), e.prefix)
}

// put applies a put of the key rel (relative to the cluster prefix).
// Undecodable values are logged and skipped: the cache cannot refuse a
// change that etcd has committed.
func (c *etcdCache) put(rel string, value []byte, modRev, createRev int64) {
	kind, rest, _ := strings.Cut(rel, "/")
	var err error
	switch kind {
	case "brokers":
		var b Broker
		if err = json.Unmarshal(value, &b); err == nil {
			b.Epoch = createRev
			c.brokers[b.NodeID] = b
		}
	case "controller":
		var node int64
		if node, err = strconv.ParseInt(string(value), 10, 32); err == nil {
			c.controllers[rest] = candidate{node: int32(node), createRev: createRev}
		}
	case "unfenced":
		var node, epoch int64
		if node, err = strconv.ParseInt(rest, 10, 32); err == nil {
			if epoch, err = strconv.ParseInt(string(value), 10, 64); err == nil {
				c.unfenced[int32(node)] = epoch
			}
		}
	case "broker-configs":
		err = c.putBrokerConfigs(rest, value)
	case "topics":
		var rec topicRecord
		if err = json.Unmarshal(value, &rec); err == nil {
			if old, ok := c.topics[rest]; ok && old.rec.ID != rec.ID {
				delete(c.byID, old.rec.ID)
			}
			c.topics[rest] = topicEntry{rec: rec, modRev: modRev}
			c.byID[rec.ID] = rest
		}
	case "partitions":
		name, idx, ok := strings.Cut(rest, "/")
		var index int64
		if !ok {
			err = fmt.Errorf("no partition index")
		} else if index, err = strconv.ParseInt(idx, 10, 32); err == nil {
			var r partitionRecord
			if err = json.Unmarshal(value, &r); err == nil {
				ps := c.parts[name]
				if ps == nil {
					ps = make(map[int32]partEntry)
					c.parts[name] = ps
				}
				ps[int32(index)] = partEntry{p: fromRecord(int32(index), r), modRev: modRev}
			}
		}
	}
	if err != nil {
		slog.Warn("metadata: skipping undecodable etcd key", "key", rel, "err", err)
	}
}

// del applies a delete of the key rel.
func (c *etcdCache) del(rel string) {
	kind, rest, _ := strings.Cut(rel, "/")
	switch kind {
	case "brokers":
		if id, err := strconv.ParseInt(rest, 10, 32); err == nil {
			delete(c.brokers, int32(id))
		}
	case "controller":
		delete(c.controllers, rest)
	case "unfenced":
		if id, err := strconv.ParseInt(rest, 10, 32); err == nil {
			delete(c.unfenced, int32(id))
		}
	case "broker-configs":
		c.delBrokerConfigs(rest)
	case "topics":
		if old, ok := c.topics[rest]; ok {
			delete(c.byID, old.rec.ID)
			delete(c.topics, rest)
		}
	case "partitions":
		name, idx, _ := strings.Cut(rest, "/")
		if index, err := strconv.ParseInt(idx, 10, 32); err == nil {
			delete(c.parts[name], int32(index))
			if len(c.parts[name]) == 0 {
				delete(c.parts, name)
			}
		}
	}
}

// topic joins a topic record with its partitions into a fresh Topic. A
// partition whose key is missing (never the case for topics written by
// Etcd) is reported without a leader.
func (c *etcdCache) topic(name string) (Topic, bool) {
	te, ok := c.topics[name]
	if !ok {
		return Topic{}, false
	}
	t := Topic{
		Name:       name,
		ID:         te.rec.ID,
		Internal:   te.rec.Internal,
		Partitions: make([]Partition, te.rec.Partitions),
		Configs:    make(map[string]string, len(te.rec.Configs)),
	}
	for k, v := range te.rec.Configs {
		t.Configs[k] = v
	}
	ps := c.parts[name]
	for i := range t.Partitions {
		if pe, ok := ps[int32(i)]; ok {
			t.Partitions[i] = clonePartition(pe.p)
		} else {
			t.Partitions[i] = Partition{Index: int32(i), Leader: -1}
		}
	}
	return t, true
}

func (c *etcdCache) allTopics() []Topic {
	out := make([]Topic, 0, len(c.topics))
	for name := range c.topics {
		t, _ := c.topic(name)
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (c *etcdCache) partition(topic string, index int32) (partEntry, bool) {
	if _, ok := c.topics[topic]; !ok {
		return partEntry{}, false
	}
	pe, ok := c.parts[topic][index]
	if ok {
		pe.p = clonePartition(pe.p)
	}
	return pe, ok
}

// controller is the node id of the oldest candidate, or -1.
func (c *etcdCache) controller() int32 {
	node, oldest := int32(-1), int64(math.MaxInt64)
	for _, cand := range c.controllers {
		if cand.createRev < oldest {
			node, oldest = cand.node, cand.createRev
		}
	}
	return node
}

func fromRecord(index int32, r partitionRecord) Partition {
	return Partition{Index: index, Leader: r.Leader, LeaderEpoch: r.LeaderEpoch, Replicas: r.Replicas, ISR: r.ISR,
		AddingReplicas: r.AddingReplicas, RemovingReplicas: r.RemovingReplicas}
}

// decodePartition decodes the result of reading one partition key.
func decodePartition(kvs []*mvccpb.KeyValue, index int32) (partEntry, bool, error) {
	if len(kvs) == 0 {
		return partEntry{}, false, nil
	}
	var r partitionRecord
	if err := json.Unmarshal(kvs[0].Value, &r); err != nil {
		return partEntry{}, false, fmt.Errorf("decode: %w", err)
	}
	return partEntry{p: fromRecord(index, r), modRev: kvs[0].ModRevision}, true, nil
}

// load reads every key of the cluster into a new cache, replaces the old
// one, and returns the revision read at.
func (e *Etcd) load(ctx context.Context) (int64, error) {
	resp, err := e.client.Get(ctx, e.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("metadata: load cluster %s: %w", e.cfg.Cluster, err)
	}
	c := newEtcdCache()
	for _, kv := range resp.Kvs {
		c.put(e.relative(kv.Key), kv.Value, kv.ModRevision, kv.CreateRevision)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mu.cache = c
	e.advanceLocked(resp.Header.Revision)
	return resp.Header.Revision, nil
}

// watch applies every change after rev to the cache until ctx ends. It
// resumes after the last applied revision when the watch breaks (the member
// lost its leader or went away), and reloads everything if etcd has
// compacted the revisions it needs.
func (e *Etcd) watch(ctx context.Context, rev int64) {
	defer e.wg.Done()
	const maxBackoff = 2 * time.Second
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		compacted := false
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for resp := range e.client.Watch(wctx, e.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
			if resp.CompactRevision != 0 {
				compacted = true
				break
			}
			if resp.Err() != nil {
				break
			}
			if len(resp.Events) > 0 {
				rev = e.apply(resp.Events)
				backoff = 50 * time.Millisecond
			}
		}
		cancel()
		if compacted {
			if r, err := e.load(ctx); err == nil {
				rev = r
				continue
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// apply applies one watch response's events and returns the last revision.
func (e *Etcd) apply(events []*clientv3.Event) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	rev := e.mu.rev
	for _, ev := range events {
		rel := e.relative(ev.Kv.Key)
		switch ev.Type {
		case clientv3.EventTypePut:
			e.mu.cache.put(rel, ev.Kv.Value, ev.Kv.ModRevision, ev.Kv.CreateRevision)
		case clientv3.EventTypeDelete:
			e.mu.cache.del(rel)
		}
		rev = max(rev, ev.Kv.ModRevision)
	}
	e.advanceLocked(rev)
	return rev
}

// advanceLocked records that the cache reflects rev, wakes waitApplied and
// notifies every Watch channel.
func (e *Etcd) advanceLocked(rev int64) {
	e.mu.rev = max(e.mu.rev, rev)
	close(e.mu.advanced)
	e.mu.advanced = make(chan struct{})
	for ch := range e.mu.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// waitApplied waits until the cache reflects rev or ctx ends, and reports
// whether it does.
func (e *Etcd) waitApplied(ctx context.Context, rev int64) bool {
	for {
		e.mu.Lock()
		done, advanced := e.mu.rev >= rev, e.mu.advanced
		e.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return false
		}
	}
}

// Watch returns a channel that receives a value after the cache changes, so
// a broker learns new metadata by waiting on it rather than polling.
// Notifications coalesce: one value may stand for many changes, and the
// receiver reads the new state with Topics, Topic or Brokers. The channel is
// closed when ctx ends or the store is closed.
func (e *Etcd) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.closed {
		close(ch)
		return ch
	}
	e.mu.subs[ch] = context.AfterFunc(ctx, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.mu.subs[ch]; ok {
			delete(e.mu.subs, ch)
			close(ch)
		}
	})
	return ch
}

// Brokers returns the live brokers (those whose registration lease is
// alive), sorted by node id, from the cache.
func (e *Etcd) Brokers() []Broker {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Broker, 0, len(e.mu.cache.brokers))
	for _, b := range e.mu.cache.brokers {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// Controller returns the node id of the current controller, or -1 if no
// broker is campaigning, from the cache.
func (e *Etcd) Controller() int32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.cache.controller()
}

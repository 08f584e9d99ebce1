package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
)

// Etcd keeps a cluster's metadata in etcd: the quorum run by `fjord quorum`
// (internal/quorum) or any external etcd v3.5+. Any number of brokers open
// an Etcd on the same cluster; each keeps a local cache of the whole cluster,
// fed by one watch, so reads are local and every change reaches every broker
// without polling.
//
// # Keys
//
// Every key of a cluster sits under /fjord/<cluster>/ (P below), so one etcd
// can hold several clusters. Values are JSON unless noted.
//
//	P/cluster-id                 the Kafka cluster id (plain text); written once
//	P/brokers/<node id>          a live broker (Broker), on its session's lease
//	P/controller/<lease, hex>    controller candidates (concurrency.Election);
//	                             the oldest key is the controller, value = node id
//	P/topics/<name>              topicRecord: id, internal, partition count, configs
//	P/topic-ids/<uuid>           the topic's name (plain text); keeps ids unique
//	P/partitions/<name>/<index>  partitionRecord: leader, leader epoch, replicas, ISR,
//	                             adding and removing replicas (a reassignment)
//	P/producer-id-block          the first producer id never handed out (decimal)
//	P/unfenced/<node id>         the broker epoch the controller last unfenced
//	                             (decimal); a live broker at another epoch is fenced
//	P/broker-configs/<entity>    dynamic broker configs (a JSON object of name to
//	                             value) of a node id, or of "default": every broker
//
// The layout is sized for about 10,000 partitions per cluster. Each
// partition's leadership is its own small key, so a leader or ISR change is a
// compare-and-swap of about 100 bytes that conflicts only with changes to
// that same partition, and reaches the other brokers as one small watch
// event. Topic-level data (configs, the partition count) changes rarely and
// lives in one key per topic. Opening reads the whole prefix once (about
// 1.5 MB for 10,000 partitions); after that only changes travel. Topic names
// cannot contain '/', so P/partitions/<name>/ never matches another topic.
//
// Creating a topic writes its topic, topic-id and partition keys in one
// transaction, guarded by "the topic key does not exist", and deleting one
// removes them in one transaction: other brokers never see half a topic. A
// topic of N partitions needs N+2 operations in that transaction; etcd's
// --max-txn-ops defaults to 128, so an external etcd needs it raised (the
// embedded quorum allows 16,384).
//
// # Consistency
//
// Writes go to etcd and return once the local cache has applied them (read
// your writes), unless the watch lags by more than RequestTimeout; the write
// has committed either way. Other brokers see a change once their watch
// delivers it, typically within milliseconds. Leader, ISR, leader epoch and
// replicas change only through UpdatePartition, a compare-and-swap on the
// partition key's modification revision, or UpdatePartitions, which makes
// many such changes in a few transactions.
//
// Etcd is safe for concurrent use. Close releases it.
type Etcd struct {
	cfg       EtcdConfig
	client    *clientv3.Client
	prefix    string // "/fjord/<cluster>/"
	clusterID string

	wg sync.WaitGroup // every goroutine the store starts

	mu struct {
		sync.Mutex
		closed    bool
		scopes    map[uint64]context.CancelFunc // ended by Close
		nextScope uint64
		cache     *etcdCache
		rev       int64         // etcd revision the cache reflects
		advanced  chan struct{} // closed, and replaced, when rev advances
		subs      map[chan struct{}]func() bool
		// The broker's registration, if RegisterBroker was called.
		registered     bool
		session        *concurrency.Session // nil while (re-)registering
		sessionChanged chan struct{}        // closed, and replaced, when session changes
		campaigning    bool
	}
}

// EtcdConfig configures an Etcd store.
type EtcdConfig struct {
	// Endpoints are the etcd client URLs, such as http://127.0.0.1:2379.
	Endpoints []string
	// Cluster names the cluster; its keys live under /fjord/<Cluster>/. It
	// must not contain '/'.
	Cluster string
	// ClusterID is the Kafka cluster id to record if the cluster has none
	// yet; empty means a new random one. An existing id is never replaced.
	ClusterID string
	// SessionTTL is how long a broker stays registered after it stops
	// renewing its lease (a crash, a partition); whole seconds, at least
	// etcd's minimum (about 2 s with default election timeouts). Default 6 s.
	SessionTTL time.Duration
	// RequestTimeout bounds each change made by a method that takes no
	// context. Default 5 s.
	RequestTimeout time.Duration
	// MaxTxnOps is the most partitions UpdatePartitions changes in one
	// transaction; it must not exceed the servers' --max-txn-ops. Default
	// 128, etcd's default (the embedded quorum allows 16,384).
	MaxTxnOps int
}

func (c *EtcdConfig) setDefaults() {
	if c.SessionTTL == 0 {
		c.SessionTTL = 6 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.MaxTxnOps == 0 {
		c.MaxTxnOps = 128
	}
}

// Validate reports the first thing wrong with c, after defaults.
func (c EtcdConfig) Validate() error {
	c.setDefaults()
	switch {
	case len(c.Endpoints) == 0:
		return errors.New("metadata: at least one etcd endpoint is required")
	case c.Cluster == "" || strings.Contains(c.Cluster, "/"):
		return fmt.Errorf("metadata: cluster name %q must be non-empty and contain no '/'", c.Cluster)
	case c.SessionTTL < time.Second:
		return fmt.Errorf("metadata: session TTL %v is under one second", c.SessionTTL)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("metadata: request timeout %v must be positive", c.RequestTimeout)
	case c.MaxTxnOps < 1:
		return fmt.Errorf("metadata: max transaction operations %d must be positive", c.MaxTxnOps)
	}
	return nil
}

// ErrBrokerIDInUse means another live broker is registered with the node id.
var ErrBrokerIDInUse = errors.New("metadata: broker id is registered by another live broker")

// topicRecord is the value of P/topics/<name>.
type topicRecord struct {
	ID         uuid.UUID         `json:"id"`
	Internal   bool              `json:"internal,omitempty"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// partitionRecord is the value of P/partitions/<name>/<index>.
type partitionRecord struct {
	Leader           int32   `json:"leader"`
	LeaderEpoch      int32   `json:"leaderEpoch"`
	Replicas         []int32 `json:"replicas"`
	ISR              []int32 `json:"isr"`
	AddingReplicas   []int32 `json:"addingReplicas,omitempty"`
	RemovingReplicas []int32 `json:"removingReplicas,omitempty"`
}

func (e *Etcd) topicKey(name string) string      { return e.prefix + "topics/" + name }
func (e *Etcd) topicIDKey(id uuid.UUID) string   { return e.prefix + "topic-ids/" + id.String() }
func (e *Etcd) partitionsKey(name string) string { return e.prefix + "partitions/" + name + "/" }
func (e *Etcd) partitionKey(name string, index int32) string {
	return e.partitionsKey(name) + strconv.FormatInt(int64(index), 10)
}
func (e *Etcd) brokerKey(id int32) string {
	return e.prefix + "brokers/" + strconv.FormatInt(int64(id), 10)
}
func (e *Etcd) controllerPrefix() string { return e.prefix + "controller" }
func (e *Etcd) producerIDKey() string    { return e.prefix + "producer-id-block" }

// OpenEtcd connects to etcd, records the cluster id if the cluster is new,
// loads the cluster's metadata and starts watching it. ctx bounds the open.
func OpenEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Logger:               zap.NewNop(), // errors are returned, not logged
	})
	if err != nil {
		return nil, fmt.Errorf("metadata: connect to etcd: %w", err)
	}
	e := &Etcd{cfg: cfg, client: client, prefix: "/fjord/" + cfg.Cluster + "/"}
	e.mu.scopes = make(map[uint64]context.CancelFunc)
	e.mu.cache = newEtcdCache()
	e.mu.advanced = make(chan struct{})
	e.mu.subs = make(map[chan struct{}]func() bool)
	e.mu.sessionChanged = make(chan struct{})

	id := cfg.ClusterID
	if id == "" {
		id = newClusterID()
	}
	key := e.prefix + "cluster-id"
	resp, err := client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, id)).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("metadata: record cluster id: %w", err)
	}
	if !resp.Succeeded {
		id = string(resp.Responses[0].GetResponseRange().Kvs[0].Value)
	}
	e.clusterID = id

	rev, err := e.load(ctx)
	if err != nil {
		client.Close()
		return nil, err
	}
	wctx, _ := e.scope(context.Background()) // released by Close
	e.wg.Add(1)
	go e.watch(wctx, rev)
	return e, nil
}

// Close stops the store's goroutines (revoking a broker registration and
// resigning controllership on the way), closes every Watch channel and
// disconnects from etcd. Close is idempotent.
func (e *Etcd) Close() error {
	e.mu.Lock()
	if e.mu.closed {
		e.mu.Unlock()
		return nil
	}
	e.mu.closed = true
	for _, cancel := range e.mu.scopes {
		cancel()
	}
	for ch, stop := range e.mu.subs {
		stop()
		close(ch)
	}
	clear(e.mu.subs)
	e.mu.Unlock()
	e.wg.Wait()
	return e.client.Close()
}

// scope returns a context that ends when ctx ends or the store is closed,
// and the function that releases it.
func (e *Etcd) scope(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.closed {
		cancel()
		return ctx, cancel
	}
	id := e.mu.nextScope
	e.mu.nextScope++
	e.mu.scopes[id] = cancel
	return ctx, func() {
		cancel()
		e.mu.Lock()
		delete(e.mu.scopes, id)
		e.mu.Unlock()
	}
}

// request returns the context for one change made on behalf of a method
// without a context parameter.
func (e *Etcd) request() (context.Context, context.CancelFunc) {
	ctx, cancel := e.scope(context.Background())
	ctx, cancelTimeout := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	return ctx, func() { cancelTimeout(); cancel() }
}

// ClusterID returns the cluster's id.
func (e *Etcd) ClusterID() string { return e.clusterID }

// Version increases with every change the cache applies; callers use it to
// notice changes. It is the etcd revision the cache reflects.
func (e *Etcd) Version() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return uint64(e.mu.rev)
}

// Topic returns a copy of the named topic, from the cache.
func (e *Etcd) Topic(name string) (Topic, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.cache.topic(name)
}

// TopicByID returns a copy of the topic with the given id, from the cache.
func (e *Etcd) TopicByID(id uuid.UUID) (Topic, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	name, ok := e.mu.cache.byID[id]
	if !ok {
		return Topic{}, false
	}
	return e.mu.cache.topic(name)
}

// Topics returns copies of all topics, sorted by name, from the cache.
func (e *Etcd) Topics() []Topic {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.cache.allTopics()
}

// CreateTopic adds a topic with all its partitions in one transaction; its
// ID is assigned when zero. Partition i must have Index i.
func (e *Etcd) CreateTopic(t Topic) (Topic, error) {
	if err := ValidateTopicName(t.Name); err != nil {
		return Topic{}, err
	}
	c := t.Clone()
	if c.ID == uuid.Nil {
		c.ID = uuid.New()
	}
	rec := topicRecord{ID: c.ID, Internal: c.Internal, Partitions: int32(len(c.Partitions)), Configs: c.Configs}
	ops := []clientv3.Op{
		clientv3.OpPut(e.topicKey(c.Name), mustJSON(rec)),
		clientv3.OpPut(e.topicIDKey(c.ID), c.Name),
	}
	for i, p := range c.Partitions {
		if p.Index != int32(i) {
			return Topic{}, fmt.Errorf("create topic %s: partition %d has index %d", c.Name, i, p.Index)
		}
		ops = append(ops, clientv3.OpPut(e.partitionKey(c.Name, p.Index), mustJSON(toRecord(p))))
	}
	ctx, cancel := e.request()
	defer cancel()
	resp, err := e.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(e.topicKey(c.Name)), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(e.topicIDKey(c.ID)), "=", 0)).
		Then(ops...).
		Else(clientv3.OpGet(e.topicKey(c.Name), clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return Topic{}, fmt.Errorf("create topic %s (%d partitions): %w", c.Name, len(c.Partitions), err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count > 0 {
			return Topic{}, fmt.Errorf("%w: %s", ErrTopicExists, c.Name)
		}
		return Topic{}, fmt.Errorf("create topic %s: topic id %s is in use", c.Name, c.ID)
	}
	e.waitApplied(ctx, resp.Header.Revision)
	return c.Clone(), nil
}

// DeleteTopic removes a topic and all its partitions in one transaction, and
// returns it as it was.
func (e *Etcd) DeleteTopic(name string) (Topic, error) {
	ctx, cancel := e.request()
	defer cancel()
	for {
		cur, err := e.client.Txn(ctx).Then(
			clientv3.OpGet(e.topicKey(name)),
			clientv3.OpGet(e.partitionsKey(name), clientv3.WithPrefix()),
		).Commit()
		if err != nil {
			return Topic{}, fmt.Errorf("delete topic %s: %w", name, err)
		}
		tkvs := cur.Responses[0].GetResponseRange().Kvs
		if len(tkvs) == 0 {
			return Topic{}, fmt.Errorf("%w: %s", ErrUnknownTopic, name)
		}
		c := newEtcdCache()
		for _, r := range cur.Responses {
			for _, kv := range r.GetResponseRange().Kvs {
				c.put(e.relative(kv.Key), kv.Value, kv.ModRevision, kv.CreateRevision)
			}
		}
		t, ok := c.topic(name)
		if !ok {
			return Topic{}, fmt.Errorf("delete topic %s: undecodable topic record", name)
		}
		resp, err := e.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(e.topicKey(name)), "=", tkvs[0].ModRevision)).
			Then(clientv3.OpDelete(e.topicKey(name)),
				clientv3.OpDelete(e.topicIDKey(t.ID)),
				clientv3.OpDelete(e.partitionsKey(name), clientv3.WithPrefix())).
			Commit()
		if err != nil {
			return Topic{}, fmt.Errorf("delete topic %s: %w", name, err)
		}
		if resp.Succeeded {
			e.waitApplied(ctx, resp.Header.Revision)
			return t, nil
		}
		// The topic changed between the read and the delete: read again.
	}
}

// AddPartitions appends partitions to a topic: the topic's count and the new
// partition keys change in one transaction. parts[i] must have the Index the
// topic's partition count plus i.
func (e *Etcd) AddPartitions(name string, parts []Partition) error {
	return e.updateTopic(name, func(rec *topicRecord) ([]clientv3.Op, error) {
		var ops []clientv3.Op
		for i, p := range parts {
			if want := rec.Partitions + int32(i); p.Index != want {
				return nil, fmt.Errorf("add partitions to %s: partition index %d, want %d", name, p.Index, want)
			}
			ops = append(ops, clientv3.OpPut(e.partitionKey(name, p.Index), mustJSON(toRecord(p))))
		}
		rec.Partitions += int32(len(parts))
		return ops, nil
	})
}

// SetConfigs replaces a topic's config overrides.
func (e *Etcd) SetConfigs(name string, configs map[string]string) error {
	return e.updateTopic(name, func(rec *topicRecord) ([]clientv3.Op, error) {
		rec.Configs = make(map[string]string, len(configs))
		for k, v := range configs {
			rec.Configs[k] = v
		}
		return nil, nil
	})
}

// updateTopic applies fn to the topic's record and writes it back, with the
// operations fn returns, by compare-and-swap, retrying on conflict.
func (e *Etcd) updateTopic(name string, fn func(*topicRecord) ([]clientv3.Op, error)) error {
	ctx, cancel := e.request()
	defer cancel()
	key := e.topicKey(name)
	for {
		cur, err := e.client.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("update topic %s: %w", name, err)
		}
		if len(cur.Kvs) == 0 {
			return fmt.Errorf("%w: %s", ErrUnknownTopic, name)
		}
		var rec topicRecord
		if err := json.Unmarshal(cur.Kvs[0].Value, &rec); err != nil {
			return fmt.Errorf("update topic %s: decode: %w", name, err)
		}
		ops, err := fn(&rec)
		if err != nil {
			return err
		}
		ops = append(ops, clientv3.OpPut(key, mustJSON(rec)))
		resp, err := e.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", cur.Kvs[0].ModRevision)).
			Then(ops...).
			Commit()
		if err != nil {
			return fmt.Errorf("update topic %s: %w", name, err)
		}
		if resp.Succeeded {
			e.waitApplied(ctx, resp.Header.Revision)
			return nil
		}
	}
}

// UpdatePartition changes one partition's leader, leader epoch, replicas or
// ISR by compare-and-swap: fn receives the partition as last committed and
// changes it in place; the change is written only if nobody changed the
// partition since, otherwise fn runs again on the newer state. So fn may run
// several times, must have no side effects, and must check its own
// preconditions against what it receives (a leader shrinking the ISR checks
// that it is still Leader at its LeaderEpoch, and returns an error if not).
// An error from fn is returned as is and nothing is written; so is a change
// that leaves the partition as it was.
//
// Rules enforced on the result: Index is unchanged; LeaderEpoch never
// decreases, and a change of Leader or of the set of Replicas increases it
// (by one, unless fn raised it further); every ISR member is a replica;
// Leader is -1 (none) or in the ISR; a changed Replicas has no duplicates;
// AddingReplicas and RemovingReplicas are disjoint sets of replicas.
// The change is in this store's cache when UpdatePartition returns.
//
// The leader epoch marks a new replica set, as it marks a new leader,
// because brokers apply a partition's assignment when its epoch changes: the
// leader learns which followers may fetch and join the ISR, and so a
// replica added by a reassignment can catch up. (Kafka bumps the epoch only
// when replicas are removed.)
func (e *Etcd) UpdatePartition(topic string, index int32, fn func(*Partition) error) error {
	ctx, cancel := e.request()
	defer cancel()
	key := e.partitionKey(topic, index)

	// Start from the cache; a stale entry only costs one failed comparison.
	e.mu.Lock()
	cur, ok := e.mu.cache.partition(topic, index)
	e.mu.Unlock()
	if !ok {
		resp, err := e.client.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("update partition %s-%d: %w", topic, index, err)
		}
		if cur, ok, err = decodePartition(resp.Kvs, index); err != nil {
			return fmt.Errorf("update partition %s-%d: %w", topic, index, err)
		}
	}
	for {
		if !ok {
			return fmt.Errorf("%w: topic %s has no partition %d", ErrUnknownTopic, topic, index)
		}
		next := clonePartition(cur.p)
		if err := fn(&next); err != nil {
			return err
		}
		if err := checkPartitionChange(cur.p, &next); err != nil {
			return fmt.Errorf("update partition %s-%d: %w", topic, index, err)
		}
		if partitionsEqual(cur.p, next) {
			return nil
		}
		resp, err := e.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", cur.modRev)).
			Then(clientv3.OpPut(key, mustJSON(toRecord(next)))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return fmt.Errorf("update partition %s-%d: %w", topic, index, err)
		}
		if resp.Succeeded {
			e.waitApplied(ctx, resp.Header.Revision)
			return nil
		}
		cur, ok, err = decodePartition(resp.Responses[0].GetResponseRange().Kvs, index)
		if err != nil {
			return fmt.Errorf("update partition %s-%d: %w", topic, index, err)
		}
	}
}

// PartitionUpdate is one change of a batch written by UpdatePartitions: Fn
// changes partition Index of Topic, as UpdatePartition's fn does.
type PartitionUpdate struct {
	Topic string
	Index int32
	Fn    func(*Partition) error
}

// batchAttempts bounds the transactions of UpdatePartitions that one
// partition can make fail by changing meanwhile; after that its changes are
// written one at a time, with UpdatePartition.
const batchAttempts = 4

// UpdatePartitions makes a batch of partition changes, each with the
// semantics and rules of UpdatePartition, and returns one error per update:
// nil when the change was written or left the partition as it was,
// otherwise what UpdatePartition would have returned. Each Fn may run
// several times, must have no side effects and must check its own
// preconditions. The batch is not atomic: each change commits or fails on
// its own. Updates of the same partition apply in batch order, each Fn
// receiving the result of the one before (as consecutive UpdatePartition
// calls would).
//
// The changes are written in transactions of up to MaxTxnOps partitions,
// one after another (callers that want several in flight split the batch),
// each guarded by the modification revision of every partition in it. When
// a transaction fails, the partitions changed since they were read are
// recomputed on their newer state (their Fn runs again) and the
// transaction is retried without re-running the others; a partition that
// changes under a few transactions in a row is left to UpdatePartition.
// Every change is in this store's cache when UpdatePartitions returns.
func (e *Etcd) UpdatePartitions(updates []PartitionUpdate) []error {
	errs := make([]error, len(updates))
	var items []*batchItem
	byKey := make(map[string]*batchItem)
	for i, u := range updates {
		key := e.partitionKey(u.Topic, u.Index)
		it := byKey[key]
		if it == nil {
			it = &batchItem{key: key, topic: u.Topic, index: u.Index}
			byKey[key] = it
			items = append(items, it)
		}
		it.updates = append(it.updates, i)
	}
	var rev int64
	for chunk := range slices.Chunk(items, e.cfg.MaxTxnOps) {
		rev = max(rev, e.updateChunk(updates, chunk, errs))
	}
	if rev > 0 {
		ctx, cancel := e.request()
		defer cancel()
		e.waitApplied(ctx, rev)
	}
	return errs
}

// batchItem is one partition of an UpdatePartitions batch.
type batchItem struct {
	key     string
	topic   string
	index   int32
	updates []int // the partition's updates in the batch, in order
	cur     partEntry
	exists  bool      // cur holds the partition as last read
	next    Partition // cur with the updates applied
	errs    []error   // per update, from the last compute
	// conflicts counts the transactions that failed because the
	// partition changed.
	conflicts int
}

// compute applies the item's updates to cur, in order, and reports
// whether the result differs from cur and so must be written.
func (it *batchItem) compute(updates []PartitionUpdate) (write bool) {
	it.errs = make([]error, len(it.updates))
	if !it.exists {
		for j := range it.errs {
			it.errs[j] = fmt.Errorf("%w: topic %s has no partition %d", ErrUnknownTopic, it.topic, it.index)
		}
		return false
	}
	p := it.cur.p
	for j, i := range it.updates {
		next := clonePartition(p)
		if err := updates[i].Fn(&next); err != nil {
			it.errs[j] = err
			continue
		}
		if err := checkPartitionChange(p, &next); err != nil {
			it.errs[j] = fmt.Errorf("update partition %s-%d: %w", it.topic, it.index, err)
			continue
		}
		p = next
	}
	it.next = p
	return !partitionsEqual(it.cur.p, p)
}

// finish records the item's outcome in errs: each update's own error,
// else err.
func (it *batchItem) finish(errs []error, err error) {
	for j, i := range it.updates {
		if it.errs != nil && it.errs[j] != nil {
			errs[i] = it.errs[j]
		} else {
			errs[i] = err
		}
	}
}

// updateChunk writes one chunk of an UpdatePartitions batch, at most
// MaxTxnOps partitions, records each update's outcome in errs, and returns
// the revision of the transaction that wrote it (0 if none did).
func (e *Etcd) updateChunk(updates []PartitionUpdate, chunk []*batchItem, errs []error) int64 {
	ctx, cancel := e.request()
	defer cancel()

	// Start from the cache; a stale entry only costs a failed comparison.
	var missing []*batchItem
	e.mu.Lock()
	for _, it := range chunk {
		if it.cur, it.exists = e.mu.cache.partition(it.topic, it.index); !it.exists {
			missing = append(missing, it)
		}
	}
	e.mu.Unlock()
	if len(missing) > 0 {
		ops := make([]clientv3.Op, len(missing))
		for j, it := range missing {
			ops[j] = clientv3.OpGet(it.key)
		}
		resp, readErr := e.client.Txn(ctx).Then(ops...).Commit()
		for j, it := range missing {
			err := readErr
			if err == nil {
				it.cur, it.exists, err = decodePartition(resp.Responses[j].GetResponseRange().Kvs, it.index)
			}
			if err != nil {
				it.finish(errs, fmt.Errorf("update partition %s-%d: %w", it.topic, it.index, err))
				it.updates = nil // done
			}
		}
	}

	var pending []*batchItem
	for _, it := range chunk {
		switch {
		case len(it.updates) == 0:
		case it.compute(updates):
			pending = append(pending, it)
		default:
			it.finish(errs, nil)
		}
	}
	var rev int64
	var contended []*batchItem // written one at a time, after the chunk
	for len(pending) > 0 {
		cmps := make([]clientv3.Cmp, len(pending))
		puts := make([]clientv3.Op, len(pending))
		gets := make([]clientv3.Op, len(pending))
		for j, it := range pending {
			cmps[j] = clientv3.Compare(clientv3.ModRevision(it.key), "=", it.cur.modRev)
			puts[j] = clientv3.OpPut(it.key, mustJSON(toRecord(it.next)))
			gets[j] = clientv3.OpGet(it.key)
		}
		resp, err := e.client.Txn(ctx).If(cmps...).Then(puts...).Else(gets...).Commit()
		if err != nil {
			for _, it := range pending {
				it.finish(errs, fmt.Errorf("update partition %s-%d: %w", it.topic, it.index, err))
			}
			break
		}
		if resp.Succeeded {
			for _, it := range pending {
				it.finish(errs, nil)
			}
			rev = resp.Header.Revision
			break
		}
		// Recompute the partitions that changed since they were read; the
		// others keep their result. A partition that keeps changing leaves
		// the chunk for UpdatePartition, so every retry makes progress.
		retry, changed := pending[:0], false
		for j, it := range pending {
			fresh, exists, err := decodePartition(resp.Responses[j].GetResponseRange().Kvs, it.index)
			switch {
			case err != nil:
				it.finish(errs, fmt.Errorf("update partition %s-%d: %w", it.topic, it.index, err))
				continue
			case exists && fresh.modRev == it.cur.modRev:
				retry = append(retry, it)
				continue
			}
			changed = true
			it.cur, it.exists = fresh, exists
			it.conflicts++
			switch {
			case !it.compute(updates):
				it.finish(errs, nil)
			case it.conflicts >= batchAttempts:
				contended = append(contended, it)
			default:
				retry = append(retry, it)
			}
		}
		if !changed { // cannot happen: a failed comparison means a changed key
			contended, retry = append(contended, retry...), nil
		}
		pending = retry
	}
	for _, it := range contended {
		for _, i := range it.updates {
			u := updates[i]
			errs[i] = e.UpdatePartition(u.Topic, u.Index, u.Fn)
		}
	}
	return rev
}

// checkPartitionChange enforces UpdatePartition's rules on next, bumping its
// leader epoch when the leader changed.
func checkPartitionChange(cur Partition, next *Partition) error {
	if next.Index != cur.Index {
		return fmt.Errorf("the index cannot change (%d to %d)", cur.Index, next.Index)
	}
	if next.LeaderEpoch < cur.LeaderEpoch {
		return fmt.Errorf("leader epoch cannot go back from %d to %d", cur.LeaderEpoch, next.LeaderEpoch)
	}
	// As in Kafka, a new leader or a removed replica starts a new epoch;
	// added replicas do not (the leader learns them at its epoch).
	replicaRemoved := slices.ContainsFunc(cur.Replicas, func(r int32) bool { return !slices.Contains(next.Replicas, r) })
	if (next.Leader != cur.Leader || replicaRemoved) && next.LeaderEpoch == cur.LeaderEpoch {
		next.LeaderEpoch++
	}
	if !slices.Equal(cur.Replicas, next.Replicas) && hasDuplicates(next.Replicas) {
		return fmt.Errorf("replicas %v name a broker twice", next.Replicas)
	}
	for _, set := range []struct {
		name string
		ids  []int32
	}{{"adding", next.AddingReplicas}, {"removing", next.RemovingReplicas}} {
		if hasDuplicates(set.ids) {
			return fmt.Errorf("%s replicas %v name a broker twice", set.name, set.ids)
		}
		for _, r := range set.ids {
			if !slices.Contains(next.Replicas, r) {
				return fmt.Errorf("%s replica %d is not a replica %v", set.name, r, next.Replicas)
			}
		}
	}
	for _, r := range next.AddingReplicas {
		if slices.Contains(next.RemovingReplicas, r) {
			return fmt.Errorf("replica %d is both being added and being removed", r)
		}
	}
	for _, r := range next.ISR {
		if !slices.Contains(next.Replicas, r) {
			return fmt.Errorf("ISR member %d is not a replica %v", r, next.Replicas)
		}
	}
	if next.Leader != -1 && !slices.Contains(next.ISR, next.Leader) {
		return fmt.Errorf("leader %d is not in the ISR %v", next.Leader, next.ISR)
	}
	return nil
}

func hasDuplicates(ids []int32) bool {
	for i, r := range ids {
		if slices.Contains(ids[i+1:], r) {
			return true
		}
	}
	return false
}

// AllocateProducerIDs reserves n consecutive producer ids and returns the
// first, as Local does; the reservation is committed to the quorum before it
// returns, so ids are never handed out twice by any broker. n must be
// positive.
func (e *Etcd) AllocateProducerIDs(n int64) (first int64, err error) {
	if n <= 0 {
		return 0, fmt.Errorf("allocate %d producer ids: count must be positive", n)
	}
	ctx, cancel := e.request()
	defer cancel()
	key := e.producerIDKey()
	for {
		cur, err := e.client.Get(ctx, key)
		if err != nil {
			return 0, fmt.Errorf("allocate %d producer ids: %w", n, err)
		}
		first, modRev := int64(0), int64(0)
		if len(cur.Kvs) > 0 {
			modRev = cur.Kvs[0].ModRevision
			if first, err = strconv.ParseInt(string(cur.Kvs[0].Value), 10, 64); err != nil {
				return 0, fmt.Errorf("allocate %d producer ids: decode %s: %w", n, key, err)
			}
		}
		if first > math.MaxInt64-n {
			return 0, fmt.Errorf("allocate %d producer ids: ids exhausted at %d", n, first)
		}
		resp, err := e.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", modRev)).
			Then(clientv3.OpPut(key, strconv.FormatInt(first+n, 10))).
			Commit()
		if err != nil {
			return 0, fmt.Errorf("allocate %d producer ids: %w", n, err)
		}
		if resp.Succeeded {
			return first, nil
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // records hold only strings, numbers and slices
	}
	return string(b)
}

func toRecord(p Partition) partitionRecord {
	return partitionRecord{Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Replicas: p.Replicas, ISR: p.ISR,
		AddingReplicas: p.AddingReplicas, RemovingReplicas: p.RemovingReplicas}
}

func clonePartition(p Partition) Partition {
	p.Replicas = append([]int32(nil), p.Replicas...)
	p.ISR = append([]int32(nil), p.ISR...)
	p.AddingReplicas = append([]int32(nil), p.AddingReplicas...)
	p.RemovingReplicas = append([]int32(nil), p.RemovingReplicas...)
	return p
}

func partitionsEqual(a, b Partition) bool {
	return a.Index == b.Index && a.Leader == b.Leader && a.LeaderEpoch == b.LeaderEpoch &&
		slices.Equal(a.Replicas, b.Replicas) && slices.Equal(a.ISR, b.ISR) &&
		slices.Equal(a.AddingReplicas, b.AddingReplicas) && slices.Equal(a.RemovingReplicas, b.RemovingReplicas)
}

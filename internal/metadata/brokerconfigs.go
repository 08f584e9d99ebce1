package metadata

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Dynamic broker configs (Kafka's KIP-226 entities): config overrides kept
// in the cluster metadata, so that every broker sees them, for one broker
// (by node id) or for every broker (node DefaultBrokerConfigs, Kafka's
// <default> entity). The broker decides which names are dynamic and
// validates values; the store keeps whatever it is given.

// DefaultBrokerConfigs is the node id of the cluster-wide default entity.
const DefaultBrokerConfigs int32 = -1

// brokerConfigsEntity names a node's entity: its id, or "default".
func brokerConfigsEntity(node int32) (string, error) {
	switch {
	case node == DefaultBrokerConfigs:
		return "default", nil
	case node < 0:
		return "", fmt.Errorf("broker configs of node %d: not a node id", node)
	}
	return strconv.FormatInt(int64(node), 10), nil
}

// parseBrokerConfigsEntity is the inverse of brokerConfigsEntity.
func parseBrokerConfigsEntity(entity string) (int32, error) {
	if entity == "default" {
		return DefaultBrokerConfigs, nil
	}
	n, err := strconv.ParseInt(entity, 10, 32)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("broker configs entity %q is neither a node id nor \"default\"", entity)
	}
	return int32(n), nil
}

// BrokerConfigs returns a copy of the dynamic configs of node, or of the
// cluster default for DefaultBrokerConfigs; empty when none are set.
func (l *Local) BrokerConfigs(node int32) map[string]string {
	entity, err := brokerConfigsEntity(node)
	if err != nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.mu.brokerConfigs[entity])
}

// SetBrokerConfigs replaces the dynamic configs of node (DefaultBrokerConfigs
// for the cluster default); an empty map removes them. The change is
// durable when it returns.
func (l *Local) SetBrokerConfigs(node int32, configs map[string]string) error {
	entity, err := brokerConfigsEntity(node)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old, had := l.mu.brokerConfigs[entity]
	if l.mu.brokerConfigs == nil {
		l.mu.brokerConfigs = make(map[string]map[string]string)
	}
	if len(configs) == 0 {
		delete(l.mu.brokerConfigs, entity)
	} else {
		l.mu.brokerConfigs[entity] = maps.Clone(configs)
	}
	if err := l.persistLocked(); err != nil {
		if had {
			l.mu.brokerConfigs[entity] = old
		} else {
			delete(l.mu.brokerConfigs, entity)
		}
		return err
	}
	return nil
}

func (e *Etcd) brokerConfigsKey(entity string) string { return e.prefix + "broker-configs/" + entity }

// BrokerConfigs returns a copy of the dynamic configs of node, or of the
// cluster default for DefaultBrokerConfigs, from the cache; empty when none
// are set.
func (e *Etcd) BrokerConfigs(node int32) map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.mu.cache.brokerConfigs[node])
}

// SetBrokerConfigs replaces the dynamic configs of node (DefaultBrokerConfigs
// for the cluster default); an empty map deletes them. The last writer wins,
// as in Kafka. The change is in this store's cache when it returns.
func (e *Etcd) SetBrokerConfigs(node int32, configs map[string]string) error {
	entity, err := brokerConfigsEntity(node)
	if err != nil {
		return err
	}
	key := e.brokerConfigsKey(entity)
	op := clientv3.OpDelete(key)
	if len(configs) > 0 {
		op = clientv3.OpPut(key, mustJSON(configs))
	}
	ctx, cancel := e.request()
	defer cancel()
	resp, err := e.client.Txn(ctx).Then(op).Commit()
	if err != nil {
		return fmt.Errorf("set broker configs of %s: %w", entity, err)
	}
	e.waitApplied(ctx, resp.Header.Revision)
	return nil
}

// putBrokerConfigs applies a put of P/broker-configs/<entity>.
func (c *etcdCache) putBrokerConfigs(entity string, value []byte) error {
	node, err := parseBrokerConfigsEntity(entity)
	if err != nil {
		return err
	}
	var configs map[string]string
	if err := json.Unmarshal(value, &configs); err != nil {
		return err
	}
	if c.brokerConfigs == nil {
		c.brokerConfigs = make(map[int32]map[string]string)
	}
	c.brokerConfigs[node] = configs
	return nil
}

// delBrokerConfigs applies a delete of P/broker-configs/<entity>.
func (c *etcdCache) delBrokerConfigs(entity string) {
	if node, err := parseBrokerConfigsEntity(entity); err == nil {
		delete(c.brokerConfigs, node)
	}
}

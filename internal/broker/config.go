package broker

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is one broker's configuration.
type Config struct {
	// NodeID is the broker's id (Kafka's node.id / broker.id).
	NodeID int32
	// Listen is the host:port the broker accepts connections on.
	Listen string
	// Advertised is the host:port clients are told to connect to; empty means
	// Listen.
	Advertised string
	// DataDir holds the broker's logs and metadata (Kafka's log.dirs).
	DataDir string
	// Rack is the broker's zone (broker.rack).
	Rack string
	// ClusterID is used when the data directory is new; empty generates one.
	ClusterID string
	// MetadataEndpoints are the etcd client URLs of the cluster's metadata
	// quorum; empty runs the broker standalone, its metadata in a file of
	// its data directory.
	MetadataEndpoints []string
	// Cluster names the cluster within the quorum (its keys live under
	// /fjord/<Cluster>/); default "fjord".
	Cluster string
	// Props are server.properties entries; they set broker defaults and
	// the topic config defaults (log.retention.hours, num.partitions, ...).
	Props map[string]string
}

// Validate checks the config and fills defaults.
func (c *Config) Validate() error {
	if c.NodeID < 0 {
		return fmt.Errorf("node id %d is negative", c.NodeID)
	}
	if c.DataDir == "" {
		if dirs := c.Props["log.dirs"]; dirs != "" {
			c.DataDir = strings.Split(dirs, ",")[0]
		} else if dir := c.Props["log.dir"]; dir != "" {
			c.DataDir = dir
		} else {
			return errors.New("no data directory: set --data-dir or log.dirs")
		}
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9092"
	}
	if c.Advertised == "" {
		c.Advertised = c.Listen
	}
	if _, _, err := net.SplitHostPort(c.Advertised); err != nil {
		return fmt.Errorf("advertised address %q: %w", c.Advertised, err)
	}
	if c.Rack == "" {
		c.Rack = c.Props["broker.rack"]
	}
	if c.Props == nil {
		c.Props = map[string]string{}
	}
	if c.Cluster == "" {
		c.Cluster = "fjord"
	}
	return nil
}

// ReadProperties parses a Java properties file in server.properties style:
// key=value or key: value lines, # and ! comments, trailing-backslash
// continuations.
func ReadProperties(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	props := map[string]string{}
	sc := bufio.NewScanner(f)
	var pending string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line = pending + line
			pending = ""
		}
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		k, v := line, ""
		if i := strings.IndexAny(line, "=:"); i >= 0 {
			k, v = strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		}
		props[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return props, nil
}

// settings are the broker-level properties the broker itself reads, resolved
// once at start with Kafka's defaults.
type settings struct {
	numPartitions          int32
	defaultReplication     int16
	autoCreateTopics       bool
	maxRequestBytes        int32
	retentionCheckInterval time.Duration
	cleanerBackoff         time.Duration
	deleteTopicEnable      bool
	fetchSessionSlots      int
	producerIDExpiration   time.Duration
	// Replication (issue 4).
	sessionTimeout      time.Duration // broker.session.timeout.ms
	replicaLagMax       time.Duration // replica.lag.time.max.ms
	replicaFetchWait    time.Duration // replica.fetch.wait.max.ms
	replicaFetchMax     int32         // replica.fetch.max.bytes
	replicaFetchRespMax int32         // replica.fetch.response.max.bytes
	replicaBackoff      time.Duration // replica.fetch.backoff.ms
	offsetsReplication  int16         // offsets.topic.replication.factor
}

func resolveSettings(p map[string]string) (settings, error) {
	var s settings
	var err error
	geti := func(key string, def int64) int64 {
		v, ok := p[key]
		if !ok || err != nil {
			return def
		}
		n, perr := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if perr != nil {
			err = fmt.Errorf("property %s=%q: not a number", key, v)
		}
		return n
	}
	getb := func(key string, def bool) bool {
		v, ok := p[key]
		if !ok || err != nil {
			return def
		}
		b, perr := strconv.ParseBool(strings.TrimSpace(v))
		if perr != nil {
			err = fmt.Errorf("property %s=%q: not true or false", key, v)
		}
		return b
	}
	s.numPartitions = int32(geti("num.partitions", 1))
	s.defaultReplication = int16(geti("default.replication.factor", 1))
	s.autoCreateTopics = getb("auto.create.topics.enable", true)
	s.maxRequestBytes = int32(geti("socket.request.max.bytes", 100*1024*1024))
	s.retentionCheckInterval = time.Duration(geti("log.retention.check.interval.ms", 300_000)) * time.Millisecond
	s.cleanerBackoff = time.Duration(geti("log.cleaner.backoff.ms", 15_000)) * time.Millisecond
	s.deleteTopicEnable = getb("delete.topic.enable", true)
	s.fetchSessionSlots = int(geti("max.incremental.fetch.session.cache.slots", 1000))
	s.producerIDExpiration = time.Duration(geti("producer.id.expiration.ms", 86_400_000)) * time.Millisecond
	// Kafka's broker.session.timeout.ms is 9 s; Fjord's brokers renew an
	// etcd lease, whose expiry is the failover clock, so the default is
	// shorter (etcd's minimum is about 2 s).
	s.sessionTimeout = time.Duration(geti("broker.session.timeout.ms", 3000)) * time.Millisecond
	s.replicaLagMax = time.Duration(geti("replica.lag.time.max.ms", 30_000)) * time.Millisecond
	s.replicaFetchWait = time.Duration(geti("replica.fetch.wait.max.ms", 500)) * time.Millisecond
	s.replicaFetchMax = int32(geti("replica.fetch.max.bytes", 1<<20))
	s.replicaFetchRespMax = int32(geti("replica.fetch.response.max.bytes", 10<<20))
	s.replicaBackoff = time.Duration(geti("replica.fetch.backoff.ms", 1000)) * time.Millisecond
	s.offsetsReplication = int16(geti("offsets.topic.replication.factor", 3))
	if err != nil {
		return s, err
	}
	if s.sessionTimeout < time.Second {
		return s, fmt.Errorf("property broker.session.timeout.ms=%d: must be at least 1000", s.sessionTimeout.Milliseconds())
	}
	if s.numPartitions < 1 {
		return s, fmt.Errorf("property num.partitions=%d: must be at least 1", s.numPartitions)
	}
	if s.retentionCheckInterval <= 0 {
		return s, errors.New("property log.retention.check.interval.ms: must be positive")
	}
	if s.cleanerBackoff <= 0 {
		s.cleanerBackoff = s.retentionCheckInterval
	}
	return s, nil
}

// Package provision runs a cluster's processes: its brokers and the members
// of its metadata quorum. Provisioner is what the reconcilers drive; Local
// is the driver that runs each as an OS process on this host, with its own
// data directory and ports.
package provision

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/google/uuid"
)

// Broker is one broker process a cluster needs.
type Broker struct {
	// ClusterID is the cluster's UUID; it names the cluster's directory
	// and the cluster's metadata in its quorum.
	ClusterID string
	// NodeID is the broker ID, from 1.
	NodeID int
	// Brokers is how many brokers the cluster has (node IDs 1 to Brokers):
	// it sets MSK's defaults (MSKDefaults) and what Probe waits for.
	Brokers int
	// Port is the 127.0.0.1 port the broker listens and advertises on.
	Port int
	// Rack is the broker's zone (broker.rack).
	Rack string
	// ServerProperties is the server.properties text of the cluster's
	// configuration revision, which wins over MSK's defaults; nil if the
	// cluster has no configuration.
	ServerProperties []byte
}

// KafkaClusterID returns the Kafka cluster ID of the cluster: its UUID in
// the 22-character base64url form Kafka uses.
func (b Broker) KafkaClusterID() string {
	u, err := uuid.Parse(b.ClusterID)
	if err != nil {
		return b.ClusterID
	}
	return base64.RawURLEncoding.EncodeToString(u[:])
}

func (b Broker) String() string { return fmt.Sprintf("cluster %s broker %d", b.ClusterID, b.NodeID) }

// Quorum is a cluster's metadata quorum: the etcd members its brokers keep
// the cluster's metadata in, as MSK's brokers keep theirs in ZooKeeper.
type Quorum struct {
	// ClusterID is the cluster's UUID.
	ClusterID string
	// Members is how many members the quorum has, 1 or 3 (QuorumSize). It
	// is fixed when the quorum is first provisioned: etcd members know
	// each other by address, so a quorum keeps the members it started with.
	Members int
}

func (q Quorum) String() string { return fmt.Sprintf("cluster %s quorum", q.ClusterID) }

// QuorumSize returns how many members the quorum of a cluster of n brokers
// has: one for one or two brokers, three for more (MSK spreads brokers over
// two or three zones; three members survive the loss of any one).
func QuorumSize(brokers int) int {
	if brokers <= 2 {
		return 1
	}
	return 3
}

// Provisioner runs clusters' processes. Every method is idempotent and
// level-based: after a crash of the control plane it can be called again and
// converges on the same result, without duplicating or orphaning a process.
type Provisioner interface {
	// EnsureQuorum makes q's members run, recording their ports on first
	// use. Live processes already running them are adopted, not
	// duplicated. It reports whether it had to start a process.
	EnsureQuorum(ctx context.Context, q Quorum) (started bool, err error)
	// ProbeQuorum returns nil if every member of q is running and the
	// quorum has a leader; otherwise an error saying why not.
	ProbeQuorum(ctx context.Context, q Quorum) error
	// Ensure makes b run, on its cluster's quorum (EnsureQuorum must have
	// provisioned it). A live process already running b (say, one started
	// before the control plane restarted) is adopted, not duplicated. It
	// reports whether it had to start a process.
	Ensure(ctx context.Context, b Broker) (started bool, err error)
	// Probe returns nil if b's process is running and answers a Metadata
	// request listing every broker of the cluster; otherwise an error
	// saying why not.
	Probe(ctx context.Context, b Broker) error
	// Stop stops every process of a cluster, brokers before the quorum,
	// and keeps their data.
	Stop(ctx context.Context, clusterID string) error
	// Remove stops every process of a cluster and deletes its data.
	Remove(ctx context.Context, clusterID string) error
	// Sweep stops and removes the processes of every cluster not in keep:
	// orphans left by a cluster whose record is gone.
	Sweep(ctx context.Context, keep map[string]bool) error
}

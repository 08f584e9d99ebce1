// Package provision runs a cluster's brokers. Provisioner is what the
// reconcilers drive; Local is the driver that runs each broker as an OS
// process on this host, with its own data directory and port.
package provision

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/google/uuid"
)

// Broker is one broker process a cluster needs.
type Broker struct {
	// ClusterID is the cluster's UUID; it names the cluster's directory.
	ClusterID string
	// NodeID is the broker ID, from 1.
	NodeID int
	// Port is the 127.0.0.1 port the broker listens and advertises on.
	Port int
	// Rack is the broker's zone (broker.rack).
	Rack string
	// ServerProperties is the server.properties text of the cluster's
	// configuration revision; nil runs the broker with its defaults.
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

// Provisioner runs brokers. Every method is idempotent and level-based: after
// a crash of the control plane it can be called again and converges on the
// same result, without duplicating or orphaning a process.
type Provisioner interface {
	// Ensure makes b run. A live process already running b (say, one started
	// before the control plane restarted) is adopted, not duplicated. It
	// reports whether it had to start a process.
	Ensure(ctx context.Context, b Broker) (started bool, err error)
	// Probe returns nil if b's process is running and answers a Kafka
	// ApiVersions request; otherwise an error saying why not.
	Probe(ctx context.Context, b Broker) error
	// Stop stops every broker of a cluster and keeps its data.
	Stop(ctx context.Context, clusterID string) error
	// Remove stops every broker of a cluster and deletes its data.
	Remove(ctx context.Context, clusterID string) error
	// Sweep stops and removes the brokers of every cluster not in keep:
	// orphans left by a cluster whose record is gone.
	Sweep(ctx context.Context, keep map[string]bool) error
}

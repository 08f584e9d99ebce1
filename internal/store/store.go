// Package store keeps the control plane's durable state: clusters and their
// nodes, cluster operations, configurations and their revisions, tags, and
// access keys. Store is the interface the API and the reconcilers use; SQLite
// is its embedded implementation, and a PostgreSQL one can fill it later.
//
// Errors a caller can fix (a missing resource, a name already taken, a bad
// page token) are *cluster.Error values; anything else is an internal failure.
package store

import (
	"context"
	"time"

	"github.com/fjord-io/fjord/internal/cluster"
)

// Store is durable control-plane state. All methods are safe for concurrent
// use. Each method is atomic: it changes everything it describes or nothing.
type Store interface {
	// CreateCluster stores a new cluster, its tags and the operation creating it.
	// A cluster with the same name yields a Conflict error.
	CreateCluster(ctx context.Context, c cluster.Cluster, op cluster.Operation) error
	// Cluster returns the cluster named by arn, with its tags.
	Cluster(ctx context.Context, arn string) (cluster.Cluster, error)
	// Clusters lists clusters whose name starts with namePrefix, oldest first.
	Clusters(ctx context.Context, namePrefix string, p Page) ([]cluster.Cluster, string, error)
	// UpdateCluster reads the cluster, lets fn change it and writes it back,
	// together with the operation fn returns, if any. If fn fails, nothing
	// changes and its error is returned.
	UpdateCluster(ctx context.Context, arn string, fn func(c *cluster.Cluster) (*cluster.Operation, error)) (cluster.Cluster, error)
	// RemoveCluster forgets a cluster, its nodes (freeing their ports) and its
	// tags. Its operations stay. Removing a missing cluster is not an error.
	RemoveCluster(ctx context.Context, arn string) error

	// AddNode records a broker of a cluster. A port already used by any node
	// yields an error matching ErrPortTaken.
	AddNode(ctx context.Context, n cluster.Node) error
	// Nodes lists a cluster's brokers by broker ID.
	Nodes(ctx context.Context, clusterARN string) ([]cluster.Node, error)
	// UsedPorts returns every port recorded for a node.
	UsedPorts(ctx context.Context) (map[int]bool, error)

	// Operation returns the operation named by arn.
	Operation(ctx context.Context, arn string) (cluster.Operation, error)
	// Operations lists a cluster's operations, newest first.
	Operations(ctx context.Context, clusterARN string, p Page) ([]cluster.Operation, string, error)
	// UpdateOperation reads an operation, lets fn change it and writes it back.
	UpdateOperation(ctx context.Context, arn string, fn func(op *cluster.Operation) error) (cluster.Operation, error)

	// CreateConfiguration stores a configuration with its first revision,
	// c.LatestRevision. A configuration with the same name yields a Conflict.
	CreateConfiguration(ctx context.Context, c cluster.ConfigurationRecord) error
	// Configuration returns a configuration with its latest revision's metadata.
	Configuration(ctx context.Context, arn string) (cluster.ConfigurationRecord, error)
	// Configurations lists configurations, oldest first.
	Configurations(ctx context.Context, p Page) ([]cluster.ConfigurationRecord, string, error)
	// AddRevision appends a revision to a configuration, numbering it one past
	// the latest, and returns it.
	AddRevision(ctx context.Context, arn string, r cluster.Revision) (cluster.Revision, error)
	// Revision returns one revision of a configuration, with its properties.
	Revision(ctx context.Context, arn string, revision int64) (cluster.Revision, error)
	// Revisions lists a configuration's revisions, oldest first, without properties.
	Revisions(ctx context.Context, arn string, p Page) ([]cluster.Revision, string, error)
	// DeleteConfiguration deletes a configuration no cluster uses; one in use
	// yields an Invalid error.
	DeleteConfiguration(ctx context.Context, arn string) error

	// Tags returns the tags of a cluster or configuration.
	Tags(ctx context.Context, arn string) (map[string]string, error)
	// TagResource adds or replaces tags on a cluster or configuration.
	TagResource(ctx context.Context, arn string, tags map[string]string) error
	// UntagResource removes tags by key; missing keys are ignored.
	UntagResource(ctx context.Context, arn string, keys []string) error

	// AccessKey returns the access key with the given ID.
	AccessKey(ctx context.Context, id string) (AccessKey, error)
	// RootKey returns the root access key, if one exists.
	RootKey(ctx context.Context) (AccessKey, bool, error)
	// SetRootKey makes k the only root access key.
	SetRootKey(ctx context.Context, k AccessKey) error

	// Watch calls fn with a cluster's ARN after every committed change to that
	// cluster's record, until stop is called. fn must not block.
	Watch(fn func(clusterARN string)) (stop func())

	// Close releases the store. It must be called once, after all other calls return.
	Close() error
}

// Page selects one page of a list: at most MaxResults items (0 means the
// default, 100) after the position NextToken (from a previous list) names.
type Page struct {
	MaxResults int
	NextToken  string
}

// AccessKey is an API credential: requests signed with Secret under ID are
// accepted. Root keys may do everything.
type AccessKey struct {
	ID      string
	Secret  string
	Root    bool
	Created time.Time
}

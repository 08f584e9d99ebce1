package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/fjord-io/fjord/internal/cluster"
)

const clusterColumns = `seq, arn, name, spec, state, state_code, state_message, version, created, active_op`

// CreateCluster implements Store.
func (s *SQLite) CreateCluster(ctx context.Context, c cluster.Cluster, op cluster.Operation) error {
	spec, err := json.Marshal(c.Spec)
	if err != nil {
		return fmt.Errorf("create cluster: %w", err)
	}
	configARN := ""
	if c.Spec.Configuration != nil {
		configARN = c.Spec.Configuration.ARN
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM clusters WHERE name = ?`, c.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return cluster.Conflictf("clusterName", "a cluster named %s already exists; choose another name or delete that cluster first", c.Name)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO clusters (arn, name, spec, config_arn, state, state_code, state_message, version, created, active_op)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ARN, c.Name, string(spec), configARN, string(c.State), c.StateInfo.Code, c.StateInfo.Message, c.CurrentVersion, nanos(c.CreationTime), c.ActiveOperationARN)
		if err != nil {
			return err
		}
		if err := putTags(ctx, tx, c.ARN, c.Tags); err != nil {
			return err
		}
		return insertOperation(ctx, tx, op)
	})
	if err != nil {
		return fmt.Errorf("create cluster %s: %w", c.Name, err)
	}
	s.notify(c.ARN)
	return nil
}

// Cluster implements Store.
func (s *SQLite) Cluster(ctx context.Context, arn string) (cluster.Cluster, error) {
	c, _, err := scanCluster(s.db.QueryRowContext(ctx, `SELECT `+clusterColumns+` FROM clusters WHERE arn = ?`, arn))
	if errors.Is(err, sql.ErrNoRows) {
		return cluster.Cluster{}, clusterNotFound(arn)
	}
	if err != nil {
		return cluster.Cluster{}, fmt.Errorf("read cluster: %w", err)
	}
	if c.Tags, err = readTags(ctx, s.db, arn); err != nil {
		return cluster.Cluster{}, err
	}
	return c, nil
}

func clusterNotFound(arn string) error {
	return cluster.NotFoundf("clusterArn", "cluster %s does not exist; list clusters to find the ARN", arn)
}

// Clusters implements Store.
func (s *SQLite) Clusters(ctx context.Context, namePrefix string, p Page) ([]cluster.Cluster, string, error) {
	after, err := p.after()
	if err != nil {
		return nil, "", err
	}
	limit := p.limit()
	rows, err := s.db.QueryContext(ctx, `SELECT `+clusterColumns+` FROM clusters
		WHERE seq > ? AND substr(name, 1, ?) = ? ORDER BY seq LIMIT ?`, after, len(namePrefix), namePrefix, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list clusters: %w", err)
	}
	out, next, err := collectPage(rows, limit, scanCluster)
	if err != nil {
		return nil, "", fmt.Errorf("list clusters: %w", err)
	}
	for i := range out {
		if out[i].Tags, err = readTags(ctx, s.db, out[i].ARN); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// UpdateCluster implements Store.
func (s *SQLite) UpdateCluster(ctx context.Context, arn string, fn func(*cluster.Cluster) (*cluster.Operation, error)) (cluster.Cluster, error) {
	var c cluster.Cluster
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		c, _, err = scanCluster(tx.QueryRowContext(ctx, `SELECT `+clusterColumns+` FROM clusters WHERE arn = ?`, arn))
		if errors.Is(err, sql.ErrNoRows) {
			return clusterNotFound(arn)
		}
		if err != nil {
			return fmt.Errorf("read cluster: %w", err)
		}
		if c.Tags, err = readTags(ctx, tx, arn); err != nil {
			return err
		}
		op, err := fn(&c)
		if err != nil {
			return err
		}
		spec, err := json.Marshal(c.Spec)
		if err != nil {
			return err
		}
		configARN := ""
		if c.Spec.Configuration != nil {
			configARN = c.Spec.Configuration.ARN
		}
		_, err = tx.ExecContext(ctx, `UPDATE clusters SET spec = ?, config_arn = ?, state = ?, state_code = ?, state_message = ?, version = ?, active_op = ?
			WHERE arn = ?`, string(spec), configARN, string(c.State), c.StateInfo.Code, c.StateInfo.Message, c.CurrentVersion, c.ActiveOperationARN, arn)
		if err != nil {
			return fmt.Errorf("update cluster: %w", err)
		}
		if op != nil {
			return insertOperation(ctx, tx, *op)
		}
		return nil
	})
	if err != nil {
		return cluster.Cluster{}, err
	}
	s.notify(arn)
	return c, nil
}

// RemoveCluster implements Store.
func (s *SQLite) RemoveCluster(ctx context.Context, arn string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM nodes WHERE cluster_arn = ?`,
			`DELETE FROM tags WHERE resource_arn = ?`,
			`DELETE FROM clusters WHERE arn = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, arn); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove cluster: %w", err)
	}
	s.notify(arn)
	return nil
}

type scanner interface{ Scan(dest ...any) error }

func scanCluster(r scanner) (cluster.Cluster, int64, error) {
	var (
		c       cluster.Cluster
		seq     int64
		spec    string
		state   string
		created int64
	)
	err := r.Scan(&seq, &c.ARN, &c.Name, &spec, &state, &c.StateInfo.Code, &c.StateInfo.Message, &c.CurrentVersion, &created, &c.ActiveOperationARN)
	if err != nil {
		return c, 0, err
	}
	if err := json.Unmarshal([]byte(spec), &c.Spec); err != nil {
		return c, 0, fmt.Errorf("decode spec of %s: %w", c.ARN, err)
	}
	c.State = cluster.State(state)
	c.CreationTime = fromNanos(created)
	return c, seq, nil
}

// AddNode implements Store.
func (s *SQLite) AddNode(ctx context.Context, n cluster.Node) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO nodes (cluster_arn, broker_id, node_arn, subnet, zone, port, added) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		n.ClusterARN, n.BrokerID, n.NodeARN, n.ClientSubnet, n.Zone, n.Port, nanos(n.AddedTime))
	if err != nil {
		if strings.Contains(err.Error(), "nodes.port") {
			return fmt.Errorf("add node %d: port %d: %w", n.BrokerID, n.Port, ErrPortTaken)
		}
		return fmt.Errorf("add node %d: %w", n.BrokerID, err)
	}
	return nil
}

// Nodes implements Store.
func (s *SQLite) Nodes(ctx context.Context, clusterARN string) ([]cluster.Node, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT cluster_arn, broker_id, node_arn, subnet, zone, port, added FROM nodes WHERE cluster_arn = ? ORDER BY broker_id`, clusterARN)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	var out []cluster.Node
	for rows.Next() {
		var n cluster.Node
		var added int64
		if err := rows.Scan(&n.ClusterARN, &n.BrokerID, &n.NodeARN, &n.ClientSubnet, &n.Zone, &n.Port, &added); err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		n.AddedTime = fromNanos(added)
		out = append(out, n)
	}
	return out, rows.Err()
}

// UsedPorts implements Store.
func (s *SQLite) UsedPorts(ctx context.Context) (map[int]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT port FROM nodes`)
	if err != nil {
		return nil, fmt.Errorf("list ports: %w", err)
	}
	defer rows.Close()
	used := map[int]bool{}
	for rows.Next() {
		var p int
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("list ports: %w", err)
		}
		used[p] = true
	}
	return used, rows.Err()
}

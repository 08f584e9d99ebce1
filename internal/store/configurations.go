package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fjord-io/fjord/internal/cluster"
)

func configurationNotFound(arn string) error {
	return cluster.NotFoundf("arn", "configuration %s does not exist; list configurations to find the ARN", arn)
}

// CreateConfiguration implements Store.
func (s *SQLite) CreateConfiguration(ctx context.Context, c cluster.ConfigurationRecord) error {
	versions, err := json.Marshal(c.KafkaVersions)
	if err != nil {
		return err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM configurations WHERE name = ?`, c.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return cluster.Conflictf("name", "a configuration named %s already exists; choose another name, or add a revision to it with UpdateConfiguration", c.Name)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO configurations (arn, name, description, kafka_versions, created, state) VALUES (?, ?, ?, ?, ?, ?)`,
			c.ARN, c.Name, c.Description, string(versions), nanos(c.CreationTime), c.State); err != nil {
			return err
		}
		r := c.LatestRevision
		_, err := tx.ExecContext(ctx, `INSERT INTO revisions (config_arn, revision, description, created, properties) VALUES (?, ?, ?, ?, ?)`,
			c.ARN, r.Revision, r.Description, nanos(r.CreationTime), r.ServerProperties)
		return err
	})
	if err != nil {
		return fmt.Errorf("create configuration %s: %w", c.Name, err)
	}
	return nil
}

const configurationQuery = `SELECT c.seq, c.arn, c.name, c.description, c.kafka_versions, c.created, c.state, r.revision, r.description, r.created
	FROM configurations c JOIN revisions r ON r.config_arn = c.arn
	AND r.revision = (SELECT max(revision) FROM revisions WHERE config_arn = c.arn)`

func scanConfiguration(r scanner) (cluster.ConfigurationRecord, int64, error) {
	var (
		c                cluster.ConfigurationRecord
		seq, created, rc int64
		versions         string
	)
	err := r.Scan(&seq, &c.ARN, &c.Name, &c.Description, &versions, &created, &c.State, &c.LatestRevision.Revision, &c.LatestRevision.Description, &rc)
	if err != nil {
		return c, 0, err
	}
	if err := json.Unmarshal([]byte(versions), &c.KafkaVersions); err != nil {
		return c, 0, fmt.Errorf("decode configuration %s: %w", c.ARN, err)
	}
	c.CreationTime, c.LatestRevision.CreationTime = fromNanos(created), fromNanos(rc)
	return c, seq, nil
}

// Configuration implements Store.
func (s *SQLite) Configuration(ctx context.Context, arn string) (cluster.ConfigurationRecord, error) {
	return configuration(ctx, s.db, arn)
}

func configuration(ctx context.Context, q querier, arn string) (cluster.ConfigurationRecord, error) {
	c, _, err := scanConfiguration(q.QueryRowContext(ctx, configurationQuery+` WHERE c.arn = ?`, arn))
	if errors.Is(err, sql.ErrNoRows) {
		return c, configurationNotFound(arn)
	}
	if err != nil {
		return c, fmt.Errorf("read configuration: %w", err)
	}
	return c, nil
}

// Configurations implements Store.
func (s *SQLite) Configurations(ctx context.Context, p Page) ([]cluster.ConfigurationRecord, string, error) {
	after, err := p.after()
	if err != nil {
		return nil, "", err
	}
	limit := p.limit()
	rows, err := s.db.QueryContext(ctx, configurationQuery+` WHERE c.seq > ? ORDER BY c.seq LIMIT ?`, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list configurations: %w", err)
	}
	out, next, err := collectPage(rows, limit, scanConfiguration)
	if err != nil {
		return nil, "", fmt.Errorf("list configurations: %w", err)
	}
	return out, next, nil
}

// AddRevision implements Store.
func (s *SQLite) AddRevision(ctx context.Context, arn string, r cluster.Revision) (cluster.Revision, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		c, err := configuration(ctx, tx, arn)
		if err != nil {
			return err
		}
		if c.LatestRevision.Revision >= cluster.MaxRevisions {
			return cluster.Invalidf("arn", "configuration %s already has %d revisions, the limit; create a new configuration instead", arn, cluster.MaxRevisions)
		}
		r.Revision = c.LatestRevision.Revision + 1
		_, err = tx.ExecContext(ctx, `INSERT INTO revisions (config_arn, revision, description, created, properties) VALUES (?, ?, ?, ?, ?)`,
			arn, r.Revision, r.Description, nanos(r.CreationTime), r.ServerProperties)
		return err
	})
	if err != nil {
		return cluster.Revision{}, fmt.Errorf("add revision: %w", err)
	}
	return r, nil
}

// Revision implements Store.
func (s *SQLite) Revision(ctx context.Context, arn string, revision int64) (cluster.Revision, error) {
	if _, err := s.Configuration(ctx, arn); err != nil {
		return cluster.Revision{}, err
	}
	var r cluster.Revision
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT revision, description, created, properties FROM revisions WHERE config_arn = ? AND revision = ?`, arn, revision).
		Scan(&r.Revision, &r.Description, &created, &r.ServerProperties)
	if errors.Is(err, sql.ErrNoRows) {
		return r, cluster.NotFoundf("revision", "configuration %s has no revision %d; list its revisions to see which exist", arn, revision)
	}
	if err != nil {
		return r, fmt.Errorf("read revision: %w", err)
	}
	r.CreationTime = fromNanos(created)
	return r, nil
}

// Revisions implements Store.
func (s *SQLite) Revisions(ctx context.Context, arn string, p Page) ([]cluster.Revision, string, error) {
	after, err := p.after()
	if err != nil {
		return nil, "", err
	}
	if _, err := s.Configuration(ctx, arn); err != nil {
		return nil, "", err
	}
	limit := p.limit()
	rows, err := s.db.QueryContext(ctx, `SELECT revision, description, created FROM revisions WHERE config_arn = ? AND revision > ? ORDER BY revision LIMIT ?`,
		arn, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list revisions: %w", err)
	}
	defer rows.Close()
	var out []cluster.Revision
	next := ""
	for rows.Next() {
		if len(out) == limit {
			next = token(out[len(out)-1].Revision)
			break
		}
		var r cluster.Revision
		var created int64
		if err := rows.Scan(&r.Revision, &r.Description, &created); err != nil {
			return nil, "", fmt.Errorf("list revisions: %w", err)
		}
		r.CreationTime = fromNanos(created)
		out = append(out, r)
	}
	return out, next, nil
}

// DeleteConfiguration implements Store.
func (s *SQLite) DeleteConfiguration(ctx context.Context, arn string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := configuration(ctx, tx, arn); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM clusters WHERE config_arn = ?`, arn).Scan(&n); err != nil {
			return fmt.Errorf("delete configuration: %w", err)
		}
		if n > 0 {
			return cluster.Invalidf("arn", "Configuration is in use by one or more clusters (%d); delete those clusters or move them to another configuration first", n)
		}
		for _, q := range []string{
			`DELETE FROM revisions WHERE config_arn = ?`,
			`DELETE FROM tags WHERE resource_arn = ?`,
			`DELETE FROM configurations WHERE arn = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, arn); err != nil {
				return fmt.Errorf("delete configuration: %w", err)
			}
		}
		return nil
	})
}

package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/fjord-io/fjord/internal/cluster"
)

// MaxTags is the most tags one resource may carry.
const MaxTags = 50

func resourceExists(ctx context.Context, q querier, arn string) error {
	var n int
	err := q.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM clusters WHERE arn = ?) + (SELECT count(*) FROM configurations WHERE arn = ?)`, arn, arn).Scan(&n)
	if err != nil {
		return fmt.Errorf("find resource: %w", err)
	}
	if n == 0 {
		return cluster.NotFoundf("resourceArn", "resource %s does not exist; tags can be set on clusters and configurations", arn)
	}
	return nil
}

func readTags(ctx context.Context, q querier, arn string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT key, value FROM tags WHERE resource_arn = ?`, arn)
	if err != nil {
		return nil, fmt.Errorf("read tags: %w", err)
	}
	defer rows.Close()
	tags := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("read tags: %w", err)
		}
		tags[k] = v
	}
	return tags, rows.Err()
}

func putTags(ctx context.Context, tx *sql.Tx, arn string, tags map[string]string) error {
	for k, v := range tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tags (resource_arn, key, value) VALUES (?, ?, ?)
			ON CONFLICT (resource_arn, key) DO UPDATE SET value = excluded.value`, arn, k, v); err != nil {
			return fmt.Errorf("put tag: %w", err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tags WHERE resource_arn = ?`, arn).Scan(&n); err != nil {
		return fmt.Errorf("count tags: %w", err)
	}
	if n > MaxTags {
		return cluster.Invalidf("tags", "the resource would have %d tags; the limit is %d, so remove some first", n, MaxTags)
	}
	return nil
}

// Tags implements Store.
func (s *SQLite) Tags(ctx context.Context, arn string) (map[string]string, error) {
	if err := resourceExists(ctx, s.db, arn); err != nil {
		return nil, err
	}
	return readTags(ctx, s.db, arn)
}

// TagResource implements Store.
func (s *SQLite) TagResource(ctx context.Context, arn string, tags map[string]string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := resourceExists(ctx, tx, arn); err != nil {
			return err
		}
		return putTags(ctx, tx, arn, tags)
	})
}

// UntagResource implements Store.
func (s *SQLite) UntagResource(ctx context.Context, arn string, keys []string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := resourceExists(ctx, tx, arn); err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE resource_arn = ? AND key = ?`, arn, k); err != nil {
				return fmt.Errorf("delete tag: %w", err)
			}
		}
		return nil
	})
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrNoAccessKey reports that an access key ID is unknown.
var ErrNoAccessKey = errors.New("no such access key")

// AccessKey implements Store.
func (s *SQLite) AccessKey(ctx context.Context, id string) (AccessKey, error) {
	k := AccessKey{ID: id}
	var root, created int64
	err := s.db.QueryRowContext(ctx, `SELECT secret, root, created FROM access_keys WHERE id = ?`, id).Scan(&k.Secret, &root, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("access key %s: %w", id, ErrNoAccessKey)
	}
	if err != nil {
		return k, fmt.Errorf("read access key: %w", err)
	}
	k.Root, k.Created = root != 0, fromNanos(created)
	return k, nil
}

// RootKey implements Store.
func (s *SQLite) RootKey(ctx context.Context) (AccessKey, bool, error) {
	var k AccessKey
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, secret, created FROM access_keys WHERE root = 1 ORDER BY created LIMIT 1`).Scan(&k.ID, &k.Secret, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return k, false, nil
	}
	if err != nil {
		return k, false, fmt.Errorf("read root key: %w", err)
	}
	k.Root, k.Created = true, fromNanos(created)
	return k, true, nil
}

// SetRootKey implements Store.
func (s *SQLite) SetRootKey(ctx context.Context, k AccessKey) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM access_keys WHERE root = 1 AND id != ?`, k.ID); err != nil {
			return fmt.Errorf("set root key: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO access_keys (id, secret, root, created) VALUES (?, ?, 1, ?)
			ON CONFLICT (id) DO UPDATE SET secret = excluded.secret, root = 1`, k.ID, k.Secret, nanos(k.Created))
		if err != nil {
			return fmt.Errorf("set root key: %w", err)
		}
		return nil
	})
}

package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; migration i brings the schema to version
// i+1. Never edit one that has shipped: append a new one.
var migrations = []string{
	`CREATE TABLE access_keys (
		id      TEXT PRIMARY KEY,
		secret  TEXT NOT NULL,
		root    INTEGER NOT NULL DEFAULT 0,
		created INTEGER NOT NULL
	);
	CREATE TABLE clusters (
		seq           INTEGER PRIMARY KEY AUTOINCREMENT,
		arn           TEXT NOT NULL UNIQUE,
		name          TEXT NOT NULL UNIQUE,
		spec          TEXT NOT NULL,
		config_arn    TEXT NOT NULL DEFAULT '',
		state         TEXT NOT NULL,
		state_code    TEXT NOT NULL DEFAULT '',
		state_message TEXT NOT NULL DEFAULT '',
		version       TEXT NOT NULL,
		created       INTEGER NOT NULL,
		active_op     TEXT NOT NULL DEFAULT ''
	);
	CREATE TABLE nodes (
		cluster_arn TEXT NOT NULL,
		broker_id   INTEGER NOT NULL,
		node_arn    TEXT NOT NULL,
		subnet      TEXT NOT NULL,
		zone        TEXT NOT NULL,
		port        INTEGER NOT NULL UNIQUE,
		added       INTEGER NOT NULL,
		PRIMARY KEY (cluster_arn, broker_id)
	);
	CREATE TABLE operations (
		seq          INTEGER PRIMARY KEY AUTOINCREMENT,
		arn          TEXT NOT NULL UNIQUE,
		cluster_arn  TEXT NOT NULL,
		type         TEXT NOT NULL,
		state        TEXT NOT NULL,
		created      INTEGER NOT NULL,
		ended        INTEGER NOT NULL DEFAULT 0,
		error_code   TEXT NOT NULL DEFAULT '',
		error_string TEXT NOT NULL DEFAULT '',
		steps        TEXT NOT NULL DEFAULT '[]',
		source       TEXT NOT NULL DEFAULT '',
		target       TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX operations_by_cluster ON operations (cluster_arn, seq);
	CREATE TABLE configurations (
		seq            INTEGER PRIMARY KEY AUTOINCREMENT,
		arn            TEXT NOT NULL UNIQUE,
		name           TEXT NOT NULL UNIQUE,
		description    TEXT NOT NULL DEFAULT '',
		kafka_versions TEXT NOT NULL DEFAULT '[]',
		created        INTEGER NOT NULL,
		state          TEXT NOT NULL
	);
	CREATE TABLE revisions (
		config_arn  TEXT NOT NULL REFERENCES configurations (arn) ON DELETE CASCADE,
		revision    INTEGER NOT NULL,
		description TEXT NOT NULL DEFAULT '',
		created     INTEGER NOT NULL,
		properties  BLOB NOT NULL,
		PRIMARY KEY (config_arn, revision)
	);
	CREATE TABLE tags (
		resource_arn TEXT NOT NULL,
		key          TEXT NOT NULL,
		value        TEXT NOT NULL,
		PRIMARY KEY (resource_arn, key)
	);`,
}

func (s *SQLite) migrate(ctx context.Context) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		var v int
		err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
		switch {
		case err == sql.ErrNoRows:
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version VALUES (0)`); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
		case err != nil:
			return fmt.Errorf("migrate: read version: %w", err)
		}
		if v > len(migrations) {
			return fmt.Errorf("migrate: database schema version %d is newer than this binary (%d)", v, len(migrations))
		}
		for i := v; i < len(migrations); i++ {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migrate to version %d: %w", i+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations)); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		return nil
	})
}

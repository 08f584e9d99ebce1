package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fjord-io/fjord/internal/cluster"
)

const operationColumns = `seq, arn, cluster_arn, type, state, created, ended, error_code, error_string, steps, source, target`

func insertOperation(ctx context.Context, q querier, op cluster.Operation) error {
	steps, source, target, err := encodeOperation(op)
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO operations (arn, cluster_arn, type, state, created, ended, error_code, error_string, steps, source, target)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		op.ARN, op.ClusterARN, op.Type, op.State, nanos(op.CreationTime), nanos(op.EndTime), op.ErrorCode, op.ErrorString, steps, source, target)
	if err != nil {
		return fmt.Errorf("insert operation: %w", err)
	}
	return nil
}

func encodeOperation(op cluster.Operation) (steps, source, target string, err error) {
	if op.Steps == nil {
		op.Steps = []cluster.Step{}
	}
	b, err := json.Marshal(op.Steps)
	if err != nil {
		return "", "", "", err
	}
	steps = string(b)
	for _, x := range []struct {
		spec *cluster.Spec
		dst  *string
	}{{op.Source, &source}, {op.Target, &target}} {
		if x.spec == nil {
			continue
		}
		b, err := json.Marshal(x.spec)
		if err != nil {
			return "", "", "", err
		}
		*x.dst = string(b)
	}
	return steps, source, target, nil
}

func scanOperation(r scanner) (cluster.Operation, int64, error) {
	var (
		op                    cluster.Operation
		seq, created, ended   int64
		steps, source, target string
	)
	err := r.Scan(&seq, &op.ARN, &op.ClusterARN, &op.Type, &op.State, &created, &ended, &op.ErrorCode, &op.ErrorString, &steps, &source, &target)
	if err != nil {
		return op, 0, err
	}
	op.CreationTime, op.EndTime = fromNanos(created), fromNanos(ended)
	if err := json.Unmarshal([]byte(steps), &op.Steps); err != nil {
		return op, 0, fmt.Errorf("decode steps of %s: %w", op.ARN, err)
	}
	for _, x := range []struct {
		text string
		dst  **cluster.Spec
	}{{source, &op.Source}, {target, &op.Target}} {
		if x.text == "" {
			continue
		}
		var s cluster.Spec
		if err := json.Unmarshal([]byte(x.text), &s); err != nil {
			return op, 0, fmt.Errorf("decode operation %s: %w", op.ARN, err)
		}
		*x.dst = &s
	}
	return op, seq, nil
}

func operationNotFound(arn string) error {
	return cluster.NotFoundf("clusterOperationArn", "cluster operation %s does not exist; list the cluster's operations to find the ARN", arn)
}

// Operation implements Store.
func (s *SQLite) Operation(ctx context.Context, arn string) (cluster.Operation, error) {
	op, _, err := scanOperation(s.db.QueryRowContext(ctx, `SELECT `+operationColumns+` FROM operations WHERE arn = ?`, arn))
	if errors.Is(err, sql.ErrNoRows) {
		return op, operationNotFound(arn)
	}
	if err != nil {
		return op, fmt.Errorf("read operation: %w", err)
	}
	return op, nil
}

// Operations implements Store.
func (s *SQLite) Operations(ctx context.Context, clusterARN string, p Page) ([]cluster.Operation, string, error) {
	after, err := p.after()
	if err != nil {
		return nil, "", err
	}
	if after == 0 {
		after = 1 << 62
	}
	limit := p.limit()
	rows, err := s.db.QueryContext(ctx, `SELECT `+operationColumns+` FROM operations WHERE cluster_arn = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
		clusterARN, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list operations: %w", err)
	}
	out, next, err := collectPage(rows, limit, scanOperation)
	if err != nil {
		return nil, "", fmt.Errorf("list operations: %w", err)
	}
	return out, next, nil
}

// UpdateOperation implements Store.
func (s *SQLite) UpdateOperation(ctx context.Context, arn string, fn func(*cluster.Operation) error) (cluster.Operation, error) {
	var op cluster.Operation
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		op, _, err = scanOperation(tx.QueryRowContext(ctx, `SELECT `+operationColumns+` FROM operations WHERE arn = ?`, arn))
		if errors.Is(err, sql.ErrNoRows) {
			return operationNotFound(arn)
		}
		if err != nil {
			return fmt.Errorf("read operation: %w", err)
		}
		if err := fn(&op); err != nil {
			return err
		}
		steps, source, target, err := encodeOperation(op)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE operations SET state = ?, ended = ?, error_code = ?, error_string = ?, steps = ?, source = ?, target = ? WHERE arn = ?`,
			op.State, nanos(op.EndTime), op.ErrorCode, op.ErrorString, steps, source, target, arn)
		if err != nil {
			return fmt.Errorf("update operation: %w", err)
		}
		return nil
	})
	return op, err
}

package store

import (
	"database/sql"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/fjord-io/fjord/internal/cluster"
)

// DefaultMaxResults is the page size when a Page does not set one.
const DefaultMaxResults = 100

func (p Page) limit() int {
	if p.MaxResults <= 0 || p.MaxResults > DefaultMaxResults {
		return DefaultMaxResults
	}
	return p.MaxResults
}

// after decodes p.NextToken into the position to continue after; 0 means the start.
func (p Page) after() (int64, error) {
	if p.NextToken == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(p.NextToken)
	if err == nil {
		s, ok := strings.CutPrefix(string(b), "p1:")
		if n, perr := strconv.ParseInt(s, 10, 64); ok && perr == nil && n > 0 {
			return n, nil
		}
	}
	return 0, cluster.Invalidf("nextToken", "nextToken %q is not a token this API returned; omit it to start from the first page", p.NextToken)
}

// token encodes position n as an opaque next token.
func token(n int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("p1:" + strconv.FormatInt(n, 10)))
}

// collectPage scans up to limit rows; when one more row is there (the query
// asks for limit+1), it returns the token of the page that follows.
// It closes rows.
func collectPage[T any](rows *sql.Rows, limit int, scan func(scanner) (T, int64, error)) ([]T, string, error) {
	defer rows.Close()
	var out []T
	var last int64
	for rows.Next() {
		if len(out) == limit {
			return out, token(last), rows.Err()
		}
		v, seq, err := scan(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
		last = seq
	}
	return out, "", rows.Err()
}

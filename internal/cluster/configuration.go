package cluster

import (
	"bufio"
	"bytes"
	"strings"
	"time"
)

// Configuration states, as MSK names them.
const (
	ConfigActive   = "ACTIVE"
	ConfigDeleting = "DELETING"
)

// MaxRevisions is MSK's limit of revisions per configuration.
const MaxRevisions = 50

// ConfigurationRecord is a stored configuration: a named, versioned
// server.properties whose revisions are immutable.
type ConfigurationRecord struct {
	ARN            string
	Name           string
	Description    string
	KafkaVersions  []string
	CreationTime   time.Time
	State          string
	LatestRevision Revision
}

// Revision is one immutable revision of a configuration.
type Revision struct {
	Revision         int64
	Description      string
	CreationTime     time.Time
	ServerProperties []byte // the server.properties text
}

// ParseProperties checks that text is a well-formed server.properties file:
// blank lines, comments starting with # or !, and key=value (or key: value)
// lines with a non-empty key. It returns the keys in order. The error, an
// Invalid error about field, names the first bad line.
func ParseProperties(field string, text []byte) ([]string, error) {
	var keys []string
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return nil, Invalidf(field, "%s line %d (%q) is not a property: write key=value", field, n, line)
		}
		key := strings.TrimSpace(line[:i])
		if prev, ok := seen[key]; ok {
			return nil, Invalidf(field, "%s sets %s twice, on lines %d and %d: keep one", field, key, prev, n)
		}
		seen[key] = n
		keys = append(keys, key)
	}
	if err := sc.Err(); err != nil {
		return nil, Invalidf(field, "%s cannot be read: %v", field, err)
	}
	return keys, nil
}

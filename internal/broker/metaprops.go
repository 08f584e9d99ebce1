package broker

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/fjord-io/fjord/internal/atomicfile"
)

// metaPropertiesFile identifies a data directory, as Kafka's
// meta.properties does: the node it belongs to and a random directory id.
// The id lets a restarted broker take over its own registration at once.
const metaPropertiesFile = "meta.properties"

// loadDirID returns the data directory's id, creating meta.properties on
// first use. A directory written by another node id is refused: serving it
// would mix two brokers' replicas.
func loadDirID(dir string, node int32) (string, error) {
	path := filepath.Join(dir, metaPropertiesFile)
	props, err := ReadProperties(path)
	switch {
	case err == nil:
		if got := props["node.id"]; got != strconv.Itoa(int(node)) {
			return "", fmt.Errorf("data directory %s belongs to node %s, not %d: give each broker its own directory", dir, got, node)
		}
		if id := props["directory.id"]; id != "" {
			return id, nil
		}
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	body := fmt.Sprintf("# Written by fjord broker; identifies this data directory.\nversion=1\nnode.id=%d\ndirectory.id=%s\n", node, id)
	if err := atomicfile.Write(path, []byte(body)); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return id, nil
}

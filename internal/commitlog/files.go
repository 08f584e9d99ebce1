package commitlog

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/fjord-io/fjord/internal/atomicfile"
)

// Names of the per-partition metadata files.
const (
	epochFile    = "leader-epoch-checkpoint"
	logStartFile = "log-start-offset"
)

// writeFileReplace replaces dir/name with data through a rename, without
// fsync: for files that are checked on load and rebuilt when bad.
func writeFileReplace(dir, name string, data []byte) error {
	path := filepath.Join(dir, name)
	tmp := path + tmpSuffix
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// readOffsetFile reads a file holding one decimal offset; ok is false when
// the file does not exist.
func readOffsetFile(dir, name string) (off int64, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	off, err = strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("parse %s: %w", name, err)
	}
	return off, true, nil
}

func writeOffsetFile(dir, name string, off int64) error {
	return atomicfile.Write(filepath.Join(dir, name), strconv.AppendInt(nil, off, 10))
}

// removeIfExists removes path, ignoring a missing file.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Package atomicfile replaces small files so that a reader, or a restart
// after a crash, sees the old content or the new, never a mix.
package atomicfile

import (
	"os"
	"path/filepath"
)

// TmpSuffix is appended to the path for the temporary file Write renames
// into place; a crash can leave one behind, and its owner may remove it.
const TmpSuffix = ".tmp"

// Write replaces path with data durably: it writes path+TmpSuffix, fsyncs
// it, renames it over path and fsyncs the directory. On error the temporary
// file is removed and path is unchanged.
func Write(path string, data []byte) error {
	tmp := path + TmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory, making renames and creations in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

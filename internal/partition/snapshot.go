package partition

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/fjord-io/fjord/internal/record"
)

// snapshotFile is the name, in the log's directory, of the producer-state
// snapshot: the producer state as of an offset, so that opening the
// partition replays only the batches after it instead of the whole log
// (Kafka keeps %020d.snapshot files for the same purpose).
const snapshotFile = "producer-state"

// snapshotVersion is the format of the snapshot file.
const snapshotVersion = 1

// snapshot is the JSON form of the snapshot file.
type snapshot struct {
	Version int `json:"version"`
	// Offset is the log end offset the state was taken at: it reflects
	// every batch below Offset and none at or above it.
	Offset    int64              `json:"offset"`
	Producers []snapshotProducer `json:"producers"`
}

type snapshotProducer struct {
	ID      int64       `json:"id"`
	Epoch   int16       `json:"epoch"`
	Batches []batchMeta `json:"batches"`
}

// snapshot returns a copy of ps as of offset, producers sorted by id, that
// stays valid when ps changes.
func (ps producerState) snapshot(offset int64) snapshot {
	snap := snapshot{Version: snapshotVersion, Offset: offset, Producers: make([]snapshotProducer, 0, len(ps))}
	for id, e := range ps {
		snap.Producers = append(snap.Producers, snapshotProducer{ID: id, Epoch: e.Epoch, Batches: slices.Clone(e.Batches)})
	}
	slices.SortFunc(snap.Producers, func(a, b snapshotProducer) int { return cmp.Compare(a.ID, b.ID) })
	return snap
}

// readSnapshot reads the snapshot file in dir. ok is false when there is
// none, or it is unreadable or malformed: the caller then rebuilds the state
// from the whole log, which is always correct, only slower.
func readSnapshot(dir string) (ps producerState, offset int64, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, snapshotFile))
	if err != nil {
		return nil, 0, false
	}
	var snap snapshot
	if err := json.Unmarshal(b, &snap); err != nil || snap.Version != snapshotVersion || snap.Offset < 0 {
		return nil, 0, false
	}
	ps = make(producerState, len(snap.Producers))
	for _, p := range snap.Producers {
		if p.ID < 0 || len(p.Batches) == 0 || len(p.Batches) > cachedBatches || ps[p.ID] != nil {
			return nil, 0, false
		}
		ps[p.ID] = &producerEntry{Epoch: p.Epoch, Batches: p.Batches}
	}
	return ps, snap.Offset, true
}

// writeSnapshot replaces the snapshot file in dir with data: it writes a
// temporary file (whose leftovers commitlog.Open removes), fsyncs it,
// renames it into place and fsyncs dir.
func writeSnapshot(dir string, data []byte) error {
	path := filepath.Join(dir, snapshotFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write producer state: %w", err)
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
	if err == nil {
		var d *os.File
		if d, err = os.Open(dir); err == nil {
			err = errors.Join(d.Sync(), d.Close())
		}
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write producer state: %w", err)
	}
	return nil
}

// rebuildProducers restores the producer state of the log in dir: from the
// snapshot when there is a usable one (its offset not past the log end
// offset leo), replaying the batches from its offset; otherwise by
// replaying the whole log. scan is the log's ScanHeaders.
func rebuildProducers(dir string, leo int64, scan func(from int64, fn func(record.Header) error) error) (producerState, error) {
	ps, from, ok := readSnapshot(dir)
	if !ok || from > leo {
		// A snapshot past the end describes records the log lost (a crash
		// before they reached the disk): it cannot be trusted.
		ps, from = make(producerState), 0
	}
	err := scan(from, func(h record.Header) error {
		if h.ProducerID >= 0 && !h.Control() {
			ps.apply(h)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rebuild producer state: %w", err)
	}
	return ps, nil
}

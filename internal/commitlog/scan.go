package commitlog

import (
	"fmt"

	"github.com/fjord-io/fjord/internal/record"
)

// ScanHeaders calls fn with the header of every batch whose last offset is
// at least from, in offset order, up to the log end offset as of the call;
// batches appended meanwhile may or may not be seen. It reads headers only,
// never record bodies: the offset index finds the first batch, and the
// others are reached by their Length fields. from below LogStartOffset scans
// from the start. It stops at the first error fn returns and returns it.
//
// ScanHeaders takes no lock that appends need while it reads, so it may run
// concurrently with appends and maintenance; segments deleted meanwhile stay
// readable until it returns.
func (l *Log) ScanHeaders(from int64, fn func(h record.Header) error) error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	from = max(from, l.logStart.Load())
	var snaps []snapshot
	for i := max(l.findLocked(from), 0); i < len(l.segments); i++ {
		if s := l.segments[i]; s.next > from {
			snaps = append(snaps, snapshotLocked(s))
		}
	}
	l.mu.RUnlock()
	defer func() {
		for _, snap := range snaps {
			snap.file.release()
		}
	}()
	for _, snap := range snaps {
		if err := snap.scanHeaders(from, fn); err != nil {
			return err
		}
	}
	return nil
}

// ActiveSegmentBase returns the base offset of the active segment, which
// changes when the log rolls, or -1 once the log is closed.
func (l *Log) ActiveSegmentBase() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return -1
	}
	return l.activeLocked().base
}

func (snap *snapshot) scanHeaders(from int64, fn func(h record.Header) error) error {
	hr := newHeaderReader(snap.file.f, snap.size)
	defer hr.close()
	pos, _, ok, err := snap.locate(hr, from)
	if err != nil {
		return fmt.Errorf("scan segment %d: %w", snap.base, err)
	}
	if !ok {
		return nil
	}
	for pos < snap.size {
		h, err := hr.at(pos)
		if err != nil {
			return fmt.Errorf("scan segment %d: %w", snap.base, err)
		}
		if err := fn(h); err != nil {
			return err
		}
		pos += int64(h.Size())
	}
	return nil
}

package commitlog

import (
	"fmt"
	"os"
	"slices"
	"time"
)

// EnforceRetention rolls the active segment if SegmentAge has elapsed and,
// when Delete is set, deletes from the oldest end:
//
//   - segments whose newest timestamp is older than now-RetentionAge (when
//     RetentionAge >= 0); if that is every segment including an active one
//     holding records, the active segment is rolled first so it can go too,
//     leaving a new empty active segment at LogEndOffset;
//   - sealed segments while Size() exceeds RetentionBytes by at least the
//     whole segment (when RetentionBytes >= 0), as Kafka does.
//
// The active segment is never deleted while it holds records that are not
// time-expired, and the log always keeps one segment. The log start offset
// moves to the first remaining segment. It returns how many segments were
// deleted. Segment files are unlinked, but stay readable through Views
// already handed out.
func (l *Log) EnforceRetention(now time.Time) (int, error) {
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	l.wmu.Lock()
	if l.closed {
		l.wmu.Unlock()
		return 0, ErrClosed
	}
	cfg := l.cfg.Load()
	active := l.activeLocked()
	if cfg.SegmentAge > 0 && !active.empty() && now.Sub(active.rollAt) >= cfg.SegmentAge {
		if err := l.roll(l.leo.Load(), now); err != nil {
			l.wmu.Unlock()
			return 0, fmt.Errorf("enforce retention: %w", err)
		}
	}
	if !cfg.Delete {
		l.wmu.Unlock()
		return 0, nil
	}

	n := 0
	if cfg.RetentionAge >= 0 {
		horizon := now.Add(-cfg.RetentionAge).UnixMilli()
		expired := func(s *segment) bool { return s.empty() || s.maxTS < horizon }
		last := len(l.segments) - 1
		for n < last && expired(l.segments[n]) {
			n++
		}
		if n == last && !l.segments[last].empty() && expired(l.segments[last]) {
			if err := l.roll(l.leo.Load(), now); err != nil {
				l.wmu.Unlock()
				return 0, fmt.Errorf("enforce retention: %w", err)
			}
			n++
		}
	}
	if cfg.RetentionBytes >= 0 {
		diff := l.size - cfg.RetentionBytes
		k := 0
		for k < len(l.segments)-1 && diff-l.segments[k].size >= 0 {
			diff -= l.segments[k].size
			k++
		}
		n = max(n, k)
	}
	doomed, err := l.dropSegments(n, 0)
	l.wmu.Unlock()
	unlinkSegments(l.dir, doomed)
	if err != nil {
		return len(doomed), fmt.Errorf("enforce retention: %w", err)
	}
	return len(doomed), nil
}

// dropSegments removes the first n segments (never the active one), moves
// the log start offset to at least the new first segment's base and to
// minStart, and persists the log start offset and the epoch cache. The
// dropped segments' files are renamed to *.deleted and returned for
// unlinkSegments. The caller holds wmu.
func (l *Log) dropSegments(n int, minStart int64) ([]*segment, error) {
	n = min(n, len(l.segments)-1)
	start := max(l.logStart.Load(), minStart)
	if n > 0 {
		start = max(start, l.segments[n].base)
	}
	if n == 0 && start == l.logStart.Load() {
		return nil, nil
	}
	doomed := slices.Clone(l.segments[:n])
	var renameErr error
	for _, s := range doomed {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			p := segmentPath(l.dir, s.base, suf)
			if err := os.Rename(p, p+deletedSuffix); err != nil && !os.IsNotExist(err) && renameErr == nil {
				renameErr = fmt.Errorf("delete segment %d: %w", s.base, err)
			}
		}
	}
	epochs := epochsTruncatedFromStart(l.epochs, start)
	l.mu.Lock()
	for _, s := range doomed {
		l.size -= s.size
	}
	l.segments = slices.Clone(l.segments[n:])
	l.logStart.Store(start)
	l.epochs = epochs
	l.mu.Unlock()
	if err := writeOffsetFile(l.dir, logStartFile, start); err != nil {
		return doomed, fmt.Errorf("write log start offset: %w", err)
	}
	if err := l.persistEpochs(epochs); err != nil {
		return doomed, err
	}
	return doomed, renameErr
}

// unlinkSegments removes the *.deleted files of segments dropped from the
// log and releases the log's hold on them. It needs no lock.
func unlinkSegments(dir string, doomed []*segment) {
	for _, s := range doomed {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			removeIfExists(segmentPath(dir, s.base, suf) + deletedSuffix)
		}
		s.file.release()
	}
}

// DeleteRecordsBefore advances the log start offset to offset
// (DeleteRecords) and deletes the segments entirely below it; the new log
// start offset is persisted. An offset at or below LogStartOffset changes
// nothing; one above LogEndOffset fails with ErrOffsetOutOfRange.
func (l *Log) DeleteRecordsBefore(offset int64) error {
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	l.wmu.Lock()
	if l.closed {
		l.wmu.Unlock()
		return ErrClosed
	}
	if offset > l.leo.Load() {
		leo := l.leo.Load()
		l.wmu.Unlock()
		return fmt.Errorf("delete records before %d beyond log end offset %d: %w", offset, leo, ErrOffsetOutOfRange)
	}
	if offset <= l.logStart.Load() {
		l.wmu.Unlock()
		return nil
	}
	n := 0
	for n < len(l.segments)-1 && l.segments[n+1].base <= offset {
		n++
	}
	doomed, err := l.dropSegments(n, offset)
	l.wmu.Unlock()
	unlinkSegments(l.dir, doomed)
	if err != nil {
		return fmt.Errorf("delete records before %d: %w", offset, err)
	}
	return nil
}

// TruncateTo removes all records at offsets >= offset (follower divergence)
// and the epoch cache entries starting at or past the new end. A batch
// holding offset is removed whole, so the new LogEndOffset is the end of the
// last remaining batch: offset unless offset falls inside a batch or a
// compacted gap. An offset below the first segment empties the log and
// restarts it at offset. The log start offset never ends above the new log
// end offset. Views over the removed range may fail to read.
func (l *Log) TruncateTo(offset int64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if offset >= l.leo.Load() {
		return nil
	}
	if offset < 0 {
		return fmt.Errorf("truncate to %d: %w", offset, ErrOffsetOutOfRange)
	}
	i := l.findLocked(offset)
	if i < 0 {
		return l.truncateFully(offset)
	}
	s := l.segments[i]

	// Find where the batch holding offset starts and rebuild the segment's
	// indexes up to there.
	snap := snapshot{base: s.base, file: s.file, size: s.size, next: s.next, index: s.index}
	hr := newHeaderReader(s.file.f, s.size)
	pos, _, found, err := snap.locate(hr, offset)
	hr.close()
	if err != nil {
		return fmt.Errorf("truncate to %d: %w", offset, err)
	}
	if !found {
		pos = s.size
	}
	res, err := rebuild(s.base, s.file.f, pos, l.cfg.Load().IndexIntervalBytes, false)
	if err != nil {
		return fmt.Errorf("truncate to %d: %w", offset, err)
	}
	if res.bad != nil {
		return fmt.Errorf("truncate to %d: segment %d: %w", offset, s.base, res.bad)
	}
	doomed := slices.Clone(l.segments[i+1:])
	for _, d := range doomed {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			p := segmentPath(l.dir, d.base, suf)
			if err := os.Rename(p, p+deletedSuffix); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("truncate to %d: delete segment %d: %w", offset, d.base, err)
			}
		}
	}
	r := res.seg
	newLEO := max(r.next, s.base)
	epochs := epochsTruncatedFromEnd(l.epochs, newLEO)

	l.mu.Lock()
	l.size -= s.size - pos
	for _, d := range doomed {
		l.size -= d.size
	}
	s.size, s.next = r.size, r.next
	s.index, s.tindex = r.index, r.tindex
	s.maxTS, s.maxTSOff, s.firstTS = r.maxTS, r.maxTSOff, r.firstTS
	s.sinceIndex = r.sinceIndex
	l.segments = slices.Clone(l.segments[:i+1])
	l.truncGen++
	l.leo.Store(newLEO)
	l.logStart.Store(min(l.logStart.Load(), newLEO))
	l.epochs = epochs
	l.mu.Unlock()

	unlinkSegments(l.dir, doomed)
	if err := s.file.f.Truncate(pos); err != nil {
		return fmt.Errorf("truncate to %d: segment %d: %w", offset, s.base, err)
	}
	removeIfExists(segmentPath(l.dir, s.base, indexSuffix))
	removeIfExists(segmentPath(l.dir, s.base, timeIndexSuffix))
	if err := l.persistEpochs(epochs); err != nil {
		return fmt.Errorf("truncate to %d: %w", offset, err)
	}
	return nil
}

// ResetTo empties the log and restarts it at offset, which must be at or
// past the log end offset unless the log is empty: a follower so far behind
// that its leader no longer has the records it needs (its leader's log
// starts past this log's end) starts over at the leader's log start, as
// Kafka's followers do; and an empty follower log whose first fetched batch
// starts before the log start (the leader's log start falls inside that
// batch) restarts at the batch's base offset.
func (l *Log) ResetTo(offset int64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if offset < 0 || offset < l.leo.Load() && l.leo.Load() != l.logStart.Load() {
		return fmt.Errorf("reset to %d: below the log end offset %d: %w", offset, l.leo.Load(), ErrOffsetOutOfRange)
	}
	return l.truncateFully(offset)
}

// truncateFully empties the log and restarts it at offset. The caller holds wmu.
func (l *Log) truncateFully(offset int64) error {
	s, err := createSegment(l.dir, offset)
	if err != nil {
		return fmt.Errorf("truncate to %d: %w", offset, err)
	}
	doomed := slices.Clone(l.segments)
	for _, d := range doomed {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			p := segmentPath(l.dir, d.base, suf)
			if d.base != offset {
				os.Rename(p, p+deletedSuffix)
			}
		}
	}
	l.mu.Lock()
	l.segments = []*segment{s}
	l.truncGen++
	l.size = 0
	l.leo.Store(offset)
	l.logStart.Store(offset)
	l.epochs = nil
	l.mu.Unlock()
	unlinkSegments(l.dir, doomed)
	if err := writeOffsetFile(l.dir, logStartFile, offset); err != nil {
		return fmt.Errorf("truncate to %d: %w", offset, err)
	}
	if err := l.persistEpochs(nil); err != nil {
		return fmt.Errorf("truncate to %d: %w", offset, err)
	}
	return nil
}

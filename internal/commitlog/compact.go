package commitlog

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/fjord-io/fjord/internal/atomicfile"
	"github.com/fjord-io/fjord/internal/record"
)

// SetCompactionLimit bounds the offsets Compact may look at when deciding
// which record of a key is the latest: records at or above limit (typically
// the high watermark) could still be truncated away, so they never supersede
// older ones. A negative limit, the initial value, means LogEndOffset.
func (l *Log) SetCompactionLimit(limit int64) {
	l.compactLimit.Store(limit)
}

// compactSeg is a segment Compact works on: the segment itself, to check at
// swap time that it is still in place, and a snapshot to read it.
type compactSeg struct {
	seg  *segment
	snap snapshot
}

// Compact cleans the sealed segments when Compact is set. Per key it keeps
// only the record with the highest offset below the compaction limit (see
// SetCompactionLimit), looking at the active segment too; it drops
// tombstones (null values) whose timestamp is older than now-DeleteRetention,
// keeps records without a key, and keeps control batches (transaction
// markers) whole. Offsets of surviving records do not change: a rewritten
// batch keeps its BaseOffset, LastOffsetDelta, timestamps, producer fields
// and codec, and a batch left with no records is dropped (unlike Kafka,
// which keeps the last batch of each producer for idempotence state; the
// broker keeps producer state elsewhere). A segment left empty is removed,
// except the first, which keeps the log start offset in place. Small
// segments are not merged.
//
// Each segment is rewritten to a temporary file and swapped in under the
// locks, so Compact is safe with concurrent Read, Append and maintenance;
// Views handed out earlier keep reading the old files. If the segment
// changed meanwhile (truncation, retention) the cleaned copy is discarded.
func (l *Log) Compact(now time.Time) error {
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	cfg := l.cfg.Load()
	if !cfg.Compact {
		return nil
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	segs := make([]compactSeg, len(l.segments))
	for i, s := range l.segments {
		segs[i] = compactSeg{seg: s, snap: snapshotLocked(s)}
	}
	gen := l.truncGen
	limit := l.leo.Load()
	if c := l.compactLimit.Load(); c >= 0 {
		limit = min(limit, c)
	}
	l.mu.RUnlock()
	defer func() {
		for _, cs := range segs {
			cs.snap.file.release()
		}
	}()
	if len(segs) < 2 {
		return nil
	}

	latest := make(map[string]int64)
	for _, cs := range segs {
		err := forEachBatch(cs.snap, func(_ int64, h record.Header, batch []byte) error {
			if h.Control() || h.BaseOffset >= limit {
				return nil
			}
			_, recs, err := record.Records(batch)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if off := r.Offset(h); r.Key != nil && off < limit {
					latest[string(r.Key)] = off
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("compact: scan segment %d: %w", cs.snap.base, err)
		}
	}

	horizon := now.Add(-cfg.DeleteRetention).UnixMilli()
	keep := func(h record.Header, r record.Record) bool {
		if r.Key == nil {
			return true
		}
		off := r.Offset(h)
		if off >= limit {
			return true
		}
		if latest[string(r.Key)] != off {
			return false
		}
		return r.Value != nil || r.Timestamp(h) >= horizon
	}
	for i, cs := range segs[:len(segs)-1] {
		if err := l.compactSegment(cs, i == 0, gen, cfg.IndexIntervalBytes, keep); err != nil {
			return fmt.Errorf("compact: segment %d: %w", cs.snap.base, err)
		}
	}
	return nil
}

// forEachBatch calls fn with each batch of a snapshot, in order. The batch
// slice is reused between calls.
func forEachBatch(snap snapshot, fn func(pos int64, h record.Header, batch []byte) error) error {
	br := bufio.NewReaderSize(io.NewSectionReader(snap.file.f, 0, snap.size), 1<<20)
	var batch []byte
	for pos := int64(0); pos < snap.size; {
		batch = slices.Grow(batch[:0], record.HeaderSize)[:record.HeaderSize]
		if _, err := io.ReadFull(br, batch); err != nil {
			return fmt.Errorf("read batch at %d: %w", pos, err)
		}
		h, _ := record.ReadHeader(batch)
		if err := checkStored(h); err != nil {
			return fmt.Errorf("batch at %d: %w", pos, err)
		}
		batch = slices.Grow(batch, h.Size()-record.HeaderSize)[:h.Size()]
		if _, err := io.ReadFull(br, batch[record.HeaderSize:]); err != nil {
			return fmt.Errorf("read batch at %d: %w", pos, err)
		}
		if err := fn(pos, h, batch); err != nil {
			return err
		}
		pos += int64(h.Size())
	}
	return nil
}

// compactSegment writes the cleaned copy of one sealed segment and swaps it in.
func (l *Log) compactSegment(cs compactSeg, first bool, gen uint64, interval int, keep func(record.Header, record.Record) bool) error {
	path := segmentPath(l.dir, cs.snap.base, logSuffix) + cleanedSuffix
	out, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	installed := false
	defer func() {
		if !installed {
			out.Close()
			os.Remove(path)
		}
	}()
	w := bufio.NewWriterSize(out, 1<<20)
	clean := newSegment(cs.snap.base, nil)
	changed := false
	var pos int64
	var kept []record.Record
	err = forEachBatch(cs.snap, func(_ int64, h record.Header, batch []byte) error {
		outBatch := batch
		if !h.Control() {
			_, recs, err := record.Records(batch)
			if err != nil {
				return err
			}
			kept = kept[:0]
			for _, r := range recs {
				if keep(h, r) {
					kept = append(kept, r)
				}
			}
			switch {
			case len(kept) == 0:
				changed = true
				return nil
			case len(kept) < len(recs):
				changed = true
				if outBatch, err = record.Build(h, kept); err != nil {
					return err
				}
			}
		}
		if _, err := w.Write(outBatch); err != nil {
			return err
		}
		nh, _ := record.ReadHeader(outBatch)
		clean.observe(nh, pos, interval)
		pos += int64(len(outBatch))
		return nil
	})
	if err != nil {
		return err
	}
	if !changed {
		return nil
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	clean.addTimeEntry()
	clean.file = newSegFile(out)
	drop := clean.size == 0 && !first

	l.wmu.Lock()
	defer l.wmu.Unlock()
	i := slices.Index(l.segments, cs.seg)
	if l.closed || i < 0 || i == len(l.segments)-1 || l.truncGen != gen {
		clean.file = nil
		return nil // truncated, deleted or closed meanwhile
	}
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		if err := removeIfExists(segmentPath(l.dir, cs.snap.base, suf)); err != nil {
			return err
		}
	}
	final := segmentPath(l.dir, cs.snap.base, logSuffix)
	if drop {
		if err := os.Rename(final, final+deletedSuffix); err != nil {
			return err
		}
	} else if err := os.Rename(path, final); err != nil {
		return err
	}
	installed = !drop
	segments := slices.Clone(l.segments)
	if drop {
		segments = slices.Delete(segments, i, i+1)
	} else {
		segments[i] = clean
	}
	l.mu.Lock()
	l.segments = segments
	l.size += clean.size - cs.seg.size
	l.mu.Unlock()
	if drop {
		unlinkSegments(l.dir, []*segment{cs.seg})
	} else {
		cs.seg.file.release()
		if err := writeIndexes(l.dir, clean); err != nil {
			return err
		}
	}
	return atomicfile.SyncDir(l.dir)
}

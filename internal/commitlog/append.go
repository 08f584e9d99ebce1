package commitlog

import (
	"fmt"
	"slices"
	"time"

	"github.com/fjord-io/fjord/internal/atomicfile"
	"github.com/fjord-io/fjord/internal/record"
)

// AppendInfo describes a leader append.
type AppendInfo struct {
	FirstOffset, LastOffset int64
	LogStartOffset          int64
}

// walkBatches checks that b is a sequence of whole batches by their Length
// fields and calls fn with each batch and its header. It does not check CRCs.
func walkBatches(b []byte, fn func(batch []byte, h record.Header) error) error {
	if len(b) == 0 {
		return errCorruptf("empty append")
	}
	for pos := 0; pos < len(b); {
		h, err := record.ReadHeader(b[pos:])
		if err != nil {
			return err
		}
		if err := checkStored(h); err != nil {
			return err
		}
		if h.Size() > len(b)-pos {
			return errCorruptf("batch at byte %d: size %d, %d bytes left", pos, h.Size(), len(b)-pos)
		}
		if err := fn(b[pos:pos+h.Size()], h); err != nil {
			return err
		}
		pos += h.Size()
	}
	return nil
}

// Append appends batches (one or more whole batches already checked by
// record.Validate) as the leader. It assigns offsets by rewriting each
// batch's BaseOffset in place in the caller's slice and sets its
// PartitionLeaderEpoch to leaderEpoch, rolls the active segment by size and
// age as needed, writes the batches with one write, updates the indexes,
// records leaderEpoch in the epoch cache when it is newer than the latest,
// and fsyncs per FlushMessages. Appends are serialized; Append returns after
// the write, when the records are readable.
func (l *Log) Append(batches []byte, leaderEpoch int32, now time.Time) (AppendInfo, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return AppendInfo{}, ErrClosed
	}
	first := l.leo.Load()
	next := first
	var records int64
	err := walkBatches(batches, func(b []byte, h record.Header) error {
		record.SetBaseOffset(b, next)
		record.SetPartitionLeaderEpoch(b, leaderEpoch)
		next += int64(h.LastOffsetDelta) + 1
		records += int64(h.NumRecords)
		return nil
	})
	if err != nil {
		return AppendInfo{}, fmt.Errorf("append: %w", err)
	}
	if n := len(l.epochs); n == 0 || leaderEpoch > l.epochs[n-1].Epoch {
		if err := l.addEpoch(epochEntry{Epoch: leaderEpoch, Start: first}); err != nil {
			return AppendInfo{}, fmt.Errorf("append: %w", err)
		}
	}
	if err := l.write(batches, first, next-1, records, now); err != nil {
		return AppendInfo{}, fmt.Errorf("append: %w", err)
	}
	return AppendInfo{FirstOffset: first, LastOffset: next - 1, LogStartOffset: l.logStart.Load()}, nil
}

// AppendReplicated appends batches whose offsets and epochs a leader
// assigned (the follower path). The first batch's BaseOffset must not be
// below LogEndOffset (else an error wrapping ErrOffsetMismatch); it equals
// it except after a compacted leader's gap. Each batch must start after the
// previous one ends. Epochs newer than the cache's latest are recorded.
func (l *Log) AppendReplicated(batches []byte, now time.Time) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	var first, last int64 = -1, -1
	var records int64
	latest := int32(-1)
	if n := len(l.epochs); n > 0 {
		latest = l.epochs[n-1].Epoch
	}
	var newEpochs []epochEntry
	leo := l.leo.Load()
	err := walkBatches(batches, func(b []byte, h record.Header) error {
		if first < 0 {
			first = h.BaseOffset
			if first < leo {
				return fmt.Errorf("first offset %d below log end offset %d: %w", first, leo, ErrOffsetMismatch)
			}
		} else if h.BaseOffset <= last {
			return fmt.Errorf("batch offset %d not after %d: %w", h.BaseOffset, last, ErrOffsetMismatch)
		}
		last = h.LastOffset()
		records += int64(h.NumRecords)
		if h.PartitionLeaderEpoch > latest {
			latest = h.PartitionLeaderEpoch
			newEpochs = append(newEpochs, epochEntry{Epoch: latest, Start: h.BaseOffset})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append replicated: %w", err)
	}
	for _, e := range newEpochs {
		if err := l.addEpoch(e); err != nil {
			return fmt.Errorf("append replicated: %w", err)
		}
	}
	if err := l.write(batches, first, last, records, now); err != nil {
		return fmt.Errorf("append replicated: %w", err)
	}
	return nil
}

// addEpoch appends e to the epoch cache and persists it; the caller holds wmu.
func (l *Log) addEpoch(e epochEntry) error {
	epochs := append(l.epochs[:len(l.epochs):len(l.epochs)], e)
	if err := l.persistEpochs(epochs); err != nil {
		return err
	}
	l.mu.Lock()
	l.epochs = epochs
	l.mu.Unlock()
	return nil
}

// write appends whole batches holding offsets first..last to the active
// segment, rolling first if needed, and publishes them. The caller holds wmu.
func (l *Log) write(batches []byte, first, last, records int64, now time.Time) error {
	cfg := l.cfg.Load()
	active := l.activeLocked()
	if l.shouldRoll(active, cfg, int64(len(batches)), last, now) {
		if err := l.roll(first, now); err != nil {
			return err
		}
		active = l.activeLocked()
	}
	pos := active.size
	if _, err := active.file.f.WriteAt(batches, pos); err != nil {
		// Cut off whatever part was written; a failure here leaves a torn
		// tail that Open would truncate anyway.
		active.file.f.Truncate(pos)
		return fmt.Errorf("write segment %d: %w", active.base, err)
	}

	l.mu.Lock()
	if active.empty() {
		active.rollAt = now
	}
	for off := 0; off < len(batches); {
		h, _ := record.ReadHeader(batches[off:])
		active.observe(h, pos+int64(off), cfg.IndexIntervalBytes)
		off += h.Size()
	}
	l.leo.Store(last + 1)
	l.size += int64(len(batches))
	l.mu.Unlock()

	l.unflushed += records
	if cfg.FlushMessages > 0 && l.unflushed >= cfg.FlushMessages {
		return l.flushLocked()
	}
	return nil
}

// shouldRoll reports whether an append of n bytes ending at offset last must
// go to a new segment.
func (l *Log) shouldRoll(active *segment, cfg *Config, n, last int64, now time.Time) bool {
	if last-active.base > maxRelOffset {
		return true
	}
	if active.empty() {
		return false
	}
	return active.size+n > cfg.SegmentBytes ||
		(cfg.SegmentAge > 0 && now.Sub(active.rollAt) >= cfg.SegmentAge)
}

// roll seals the active segment and starts a new one at base. The caller
// holds wmu. The sealed segment's indexes are written; its data is fsynced
// now when FlushMessages asks for fsyncs at all, else by the next Flush.
func (l *Log) roll(base int64, now time.Time) error {
	old := l.activeLocked()
	if old.empty() && old.base == base {
		return nil
	}
	s, err := createSegment(l.dir, base)
	if err != nil {
		return fmt.Errorf("roll: %w", err)
	}
	s.rollAt = now
	if l.cfg.Load().FlushMessages > 0 {
		if err := old.file.f.Sync(); err != nil {
			s.file.release()
			return fmt.Errorf("roll: sync segment %d: %w", old.base, err)
		}
		if err := atomicfile.SyncDir(l.dir); err != nil {
			s.file.release()
			return fmt.Errorf("roll: %w", err)
		}
		l.unflushed = 0
	} else {
		l.syncMu.Lock()
		l.pendingSync = slices.DeleteFunc(l.pendingSync, func(p *segment) bool { return !l.listedLocked(p) })
		l.pendingSync = append(l.pendingSync, old)
		l.syncMu.Unlock()
	}
	l.mu.Lock()
	old.addTimeEntry()
	l.segments = append(l.segments, s)
	l.mu.Unlock()
	if err := writeIndexes(l.dir, old); err != nil {
		return fmt.Errorf("roll: %w", err)
	}
	return nil
}

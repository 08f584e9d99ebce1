package commitlog

import (
	"fmt"
	"io"
	"os"
	"sort"
	"sync/atomic"

	"github.com/fjord-io/fjord/internal/record"
)

// View is a byte range of one segment file holding whole batches. The caller
// must call Release exactly once; until then the file stays open even if the
// segment is deleted by retention or replaced by compaction. ReadAt may be
// called concurrently; Release is idempotent.
type View struct {
	file     *segFile
	pos      int64
	n        int
	released atomic.Bool
}

// File returns the segment file, for sendfile; read it with ReadAt only
// (never Seek). It is nil for an empty View.
func (v *View) File() *os.File {
	if v.file == nil {
		return nil
	}
	return v.file.f
}

// Pos returns the byte position of the range in File.
func (v *View) Pos() int64 { return v.pos }

// Len returns the length of the range in bytes; 0 means nothing to read.
func (v *View) Len() int { return v.n }

// ReadAt reads the whole range into dst, which must be Len() bytes long.
// It fails if the log was truncated under the View (TruncateTo).
func (v *View) ReadAt(dst []byte) error {
	if len(dst) != v.n {
		return fmt.Errorf("read view: buffer of %d bytes for %d", len(dst), v.n)
	}
	if v.n == 0 {
		return nil
	}
	if _, err := v.file.f.ReadAt(dst, v.pos); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read view: %w", err)
	}
	return nil
}

// Release releases the View's hold on its file. Calls after the first do nothing.
func (v *View) Release() {
	if v.released.Swap(true) || v.file == nil {
		return
	}
	v.file.release()
}

// snapshot is a consistent copy of a segment's readable state, taken under
// Log.mu, with a reference on its file.
type snapshot struct {
	base   int64
	file   *segFile
	size   int64
	next   int64
	index  []indexEntry
	tindex []timeEntry
	maxTS  int64
	maxOff int64
}

// snapshotLocked copies s and acquires its file; the caller holds mu.
func snapshotLocked(s *segment) snapshot {
	s.file.acquire()
	return snapshot{
		base: s.base, file: s.file, size: s.size, next: s.next,
		index: s.index, tindex: s.tindex, maxTS: s.maxTS, maxOff: s.maxTSOff,
	}
}

// Read returns the batches starting with the one containing offset, from one
// segment (moving to the next segment when offset is past the end of one),
// up to maxBytes, but always at least the first whole batch when minOneBatch
// is set (KIP-74), and never a batch whose BaseOffset >= maxOffset (the
// caller passes the high watermark, or LogEndOffset). offset == maxOffset
// or == LogEndOffset gives an empty View. offset < LogStartOffset or >
// LogEndOffset fails with ErrOffsetOutOfRange. Offsets inside compacted gaps
// resolve to the next batch. The first batch may start below offset; the
// consumer skips the records before it.
func (l *Log) Read(offset int64, maxBytes int, maxOffset int64, minOneBatch bool) (*View, error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return nil, ErrClosed
	}
	if offset < l.logStart.Load() || offset > l.leo.Load() {
		start, end := l.logStart.Load(), l.leo.Load()
		l.mu.RUnlock()
		return nil, fmt.Errorf("read offset %d outside [%d, %d]: %w", offset, start, end, ErrOffsetOutOfRange)
	}
	if offset >= l.leo.Load() || offset >= maxOffset {
		l.mu.RUnlock()
		return &View{}, nil
	}
	i := max(l.findLocked(offset), 0)
	for i < len(l.segments)-1 && offset >= l.segments[i].next {
		i++
	}
	s := l.segments[i]
	if offset >= s.next {
		l.mu.RUnlock()
		return &View{}, nil
	}
	snap := snapshotLocked(s)
	l.mu.RUnlock()

	v, err := snap.read(offset, maxBytes, maxOffset, minOneBatch)
	if err != nil || v.n == 0 {
		snap.file.release()
		if err != nil {
			return nil, fmt.Errorf("read offset %d from segment %d: %w", offset, snap.base, err)
		}
		return &View{}, nil
	}
	return v, nil
}

// locate returns the position and header of the first batch of the segment
// whose last offset is >= offset, or ok false if there is none.
func (snap *snapshot) locate(hr *headerReader, offset int64) (pos int64, h record.Header, ok bool, err error) {
	pos = 0
	if offset > snap.base {
		pos = lookup(snap.index, snap.base, offset)
	}
	for pos < snap.size {
		h, err = hr.at(pos)
		if err != nil {
			return 0, h, false, err
		}
		if h.LastOffset() >= offset {
			return pos, h, true, nil
		}
		pos += int64(h.Size())
	}
	return 0, h, false, nil
}

func (snap *snapshot) read(offset int64, maxBytes int, maxOffset int64, minOneBatch bool) (*View, error) {
	hr := newHeaderReader(snap.file.f, snap.size)
	defer hr.close()
	start, h, ok, err := snap.locate(hr, offset)
	if err != nil || !ok || h.BaseOffset >= maxOffset {
		return &View{}, err
	}
	limit := start + min(int64(max(maxBytes, 0)), snap.size)
	end := start + int64(h.Size())
	if end > limit && !minOneBatch {
		return &View{}, nil
	}
	if end < limit {
		if maxOffset >= snap.next && snap.size <= limit {
			end = snap.size
		} else {
			// Jump to the furthest indexed batch boundary within both
			// bounds, then extend batch by batch.
			k := sort.Search(len(snap.index), func(i int) bool {
				e := snap.index[i]
				return int64(e.pos) > limit || snap.base+int64(e.rel) >= maxOffset
			})
			if k > 0 && int64(snap.index[k-1].pos) > end {
				end = int64(snap.index[k-1].pos)
			}
			for end < snap.size {
				h, err := hr.at(end)
				if err != nil {
					return nil, err
				}
				if h.BaseOffset >= maxOffset || end+int64(h.Size()) > limit {
					break
				}
				end += int64(h.Size())
			}
		}
	}
	return &View{file: snap.file, pos: start, n: int(end - start)}, nil
}

// OffsetForTimestamp returns the offset and timestamp of the first record at
// or above LogStartOffset whose timestamp is >= ts, decoding the batch to
// find the exact record; ok is false if there is none.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool, err error) {
	after := int64(-1) // base offset of the last segment searched
	for {
		l.mu.RLock()
		if l.closed {
			l.mu.RUnlock()
			return 0, 0, false, ErrClosed
		}
		logStart := l.logStart.Load()
		var snap snapshot
		found := false
		for _, s := range l.segments {
			if s.base > after && !s.empty() && s.maxTS >= ts && s.next > logStart {
				snap, found = snapshotLocked(s), true
				break
			}
		}
		l.mu.RUnlock()
		if !found {
			return 0, 0, false, nil
		}
		offset, timestamp, ok, err = snap.offsetForTimestamp(ts, logStart)
		snap.file.release()
		if err != nil {
			return 0, 0, false, fmt.Errorf("offset for timestamp %d in segment %d: %w", ts, snap.base, err)
		}
		if ok {
			return offset, timestamp, true, nil
		}
		after = snap.base
	}
}

func (snap *snapshot) offsetForTimestamp(ts, logStart int64) (int64, int64, bool, error) {
	// Every batch up to the last time entry below ts is entirely below ts.
	from := max(snap.base, logStart)
	i := sort.Search(len(snap.tindex), func(i int) bool { return snap.tindex[i].ts >= ts })
	if i > 0 {
		from = max(from, snap.base+int64(snap.tindex[i-1].rel))
	}
	hr := newHeaderReader(snap.file.f, snap.size)
	defer hr.close()
	pos, h, ok, err := snap.locate(hr, from)
	if err != nil || !ok {
		return 0, 0, false, err
	}
	var buf []byte
	for pos < snap.size {
		h, err = hr.at(pos)
		if err != nil {
			return 0, 0, false, err
		}
		if h.MaxTimestamp >= ts && h.LastOffset() >= logStart {
			buf, err = readBatch(snap.file.f, pos, h, buf)
			if err != nil {
				return 0, 0, false, err
			}
			_, recs, err := record.Records(buf)
			if err != nil {
				return 0, 0, false, err
			}
			for _, r := range recs {
				if off, t := r.Offset(h), r.Timestamp(h); off >= logStart && t >= ts {
					return off, t, true, nil
				}
			}
		}
		pos += int64(h.Size())
	}
	return 0, 0, false, nil
}

// readBatch reads the batch with header h at pos into buf, reusing it.
func readBatch(f *os.File, pos int64, h record.Header, buf []byte) ([]byte, error) {
	if cap(buf) < h.Size() {
		buf = make([]byte, h.Size())
	}
	buf = buf[:h.Size()]
	if _, err := f.ReadAt(buf, pos); err != nil {
		return nil, fmt.Errorf("read batch at %d: %w", pos, err)
	}
	return buf, nil
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (KIP-734), the earliest such record on ties; ok is false
// if the log holds no records.
func (l *Log) MaxTimestamp() (offset, timestamp int64, ok bool, err error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return 0, 0, false, ErrClosed
	}
	var best *segment
	for _, s := range l.segments {
		if !s.empty() && (best == nil || s.maxTS > best.maxTS) {
			best = s
		}
	}
	if best == nil {
		l.mu.RUnlock()
		return 0, 0, false, nil
	}
	snap := snapshotLocked(best)
	l.mu.RUnlock()
	defer snap.file.release()

	hr := newHeaderReader(snap.file.f, snap.size)
	defer hr.close()
	pos, h, found, err := snap.locate(hr, snap.maxOff)
	if err != nil || !found {
		return 0, 0, false, fmt.Errorf("max timestamp batch %d: %v: %w", snap.maxOff, err, record.ErrCorrupt)
	}
	buf, err := readBatch(snap.file.f, pos, h, nil)
	if err != nil {
		return 0, 0, false, err
	}
	_, recs, err := record.Records(buf)
	if err != nil {
		return 0, 0, false, fmt.Errorf("max timestamp batch %d: %w", snap.maxOff, err)
	}
	if len(recs) == 0 {
		return h.BaseOffset, h.MaxTimestamp, true, nil
	}
	bi := 0
	for i, r := range recs {
		if r.Timestamp(h) > recs[bi].Timestamp(h) {
			bi = i
		}
	}
	return recs[bi].Offset(h), recs[bi].Timestamp(h), true, nil
}

package commitlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fjord-io/fjord/internal/record"
)

// File name suffixes in a partition directory.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	tmpSuffix       = ".tmp"
	deletedSuffix   = ".deleted"
	cleanedSuffix   = ".cleaned"
)

// Sizes of on-disk index entries.
const (
	indexEntrySize     = 8  // relative offset uint32, position uint32
	timeIndexEntrySize = 12 // timestamp int64, relative offset uint32
)

// maxSegmentBytes bounds a segment so that positions fit the index's uint32.
const maxSegmentBytes = math.MaxInt32

// maxRelOffset bounds the offsets a segment holds relative to its base.
const maxRelOffset = math.MaxInt32

func segmentPath(dir string, base int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, suffix))
}

// indexEntry maps the base offset of a batch (relative to the segment's base)
// to its byte position in the segment file.
type indexEntry struct {
	rel uint32
	pos uint32
}

// timeEntry records that every batch up to some point in the segment has a
// MaxTimestamp <= ts, and that the batch at rel reached it.
type timeEntry struct {
	ts  int64
	rel uint32
}

// segFile is a reference-counted segment file. The log holds one reference
// while the segment is in its list, every View holds one, and so does a
// writeback being started (writeback*.go); the file is closed when the last
// is released, so a View outlives a deleted segment.
type segFile struct {
	f    *os.File
	refs atomic.Int64
	// writingBack is set while a goroutine asks the kernel to write part of
	// the file back (startWriteback); at most one does at a time, and
	// Log.Close waits for it on wb.
	writingBack atomic.Bool
	wb          sync.WaitGroup
}

func newSegFile(f *os.File) *segFile {
	sf := &segFile{f: f}
	sf.refs.Store(1)
	return sf
}

// acquire adds a reference. The caller must already hold one, directly or
// through the log's (by holding Log.mu while the segment is listed).
func (sf *segFile) acquire() { sf.refs.Add(1) }

func (sf *segFile) release() {
	if sf.refs.Add(-1) == 0 {
		sf.f.Close()
	}
}

// segment is one file of the log and its in-memory indexes. base and file
// never change. The other fields change only with Log.wmu and Log.mu both
// held, so they may be read under either. The index slices only grow in
// place; anything that shrinks them installs a clipped copy, so a reader may
// keep a slice it took under Log.mu after releasing the lock.
type segment struct {
	base int64
	file *segFile

	size   int64 // bytes of whole batches
	next   int64 // offset after the last batch; base when empty
	index  []indexEntry
	tindex []timeEntry

	maxTS    int64 // largest batch MaxTimestamp; valid when maxTSOff >= 0
	maxTSOff int64 // base offset of the batch holding maxTS; -1 when empty
	firstTS  int64 // MaxTimestamp of the first batch

	sinceIndex int       // bytes appended since the last index entry
	rollAt     time.Time // when the segment became active with data, for SegmentAge
	// wbFrom is where the appended bytes not yet handed to the kernel's
	// writeback start (see observe and writeback*.go).
	wbFrom int64
}

func newSegment(base int64, f *os.File) *segment {
	return &segment{base: base, file: newSegFile(f), next: base, maxTSOff: -1}
}

func (s *segment) empty() bool { return s.maxTSOff < 0 }

// observe accounts for the batch with header h just written at pos,
// adding index entries every interval bytes. On a segment with an open file
// (an append, as opposed to a recovery scan or a compaction building one),
// it also starts the kernel writing back each writebackBytes of appended
// data, without waiting for it.
func (s *segment) observe(h record.Header, pos int64, interval int) {
	newEntry := len(s.index) == 0 || s.sinceIndex >= interval
	if newEntry {
		s.index = append(s.index, indexEntry{rel: uint32(h.BaseOffset - s.base), pos: uint32(pos)})
		s.sinceIndex = 0
	}
	s.sinceIndex += h.Size()
	if s.maxTSOff < 0 {
		s.firstTS = h.MaxTimestamp
	}
	if s.maxTSOff < 0 || h.MaxTimestamp > s.maxTS {
		s.maxTS, s.maxTSOff = h.MaxTimestamp, h.BaseOffset
	}
	if newEntry {
		s.addTimeEntry()
	}
	s.size = pos + int64(h.Size())
	s.next = h.NextOffset()
	if pos < s.wbFrom { // truncated (TruncateTo) and appended again
		s.wbFrom = pos &^ (writebackAlign - 1)
	}
	if s.file != nil && s.size-s.wbFrom >= writebackBytes {
		// Whole pages only: the last one is still being appended to.
		to := s.size &^ (writebackAlign - 1)
		if s.file.startWriteback(s.wbFrom, to) {
			s.wbFrom = to
		}
	}
}

// addTimeEntry records the current maximum timestamp if it grew.
func (s *segment) addTimeEntry() {
	if s.maxTSOff < 0 {
		return
	}
	if n := len(s.tindex); n == 0 || s.maxTS > s.tindex[n-1].ts {
		s.tindex = append(s.tindex, timeEntry{ts: s.maxTS, rel: uint32(s.maxTSOff - s.base)})
	}
}

// lookup returns the position of the last indexed batch whose base offset is
// at most off, or 0.
func lookup(index []indexEntry, base, off int64) int64 {
	rel := off - base
	i := sort.Search(len(index), func(i int) bool { return int64(index[i].rel) > rel })
	if i == 0 {
		return 0
	}
	return int64(index[i-1].pos)
}

// headerReader reads batch headers from a segment file through a small
// buffer, so scanning runs of small batches costs few system calls.
type headerReader struct {
	r      io.ReaderAt
	end    int64 // readable bytes
	buf    []byte
	bufPos int64
	n      int
}

const headerBufSize = 4096

var headerBufs = sync.Pool{New: func() any { b := make([]byte, headerBufSize); return &b }}

func newHeaderReader(r io.ReaderAt, end int64) *headerReader {
	return &headerReader{r: r, end: end, buf: *headerBufs.Get().(*[]byte), bufPos: -1}
}

func (hr *headerReader) close() {
	b := hr.buf
	hr.buf = nil
	headerBufs.Put(&b)
}

// errTorn reports a batch that does not fit in the readable bytes.
var errTorn = errors.New("torn batch")

// at reads the header of the batch at pos and checks that it is plausible
// (magic 2, sane length and deltas) and lies within the readable bytes.
func (hr *headerReader) at(pos int64) (record.Header, error) {
	if pos+record.HeaderSize > hr.end {
		return record.Header{}, fmt.Errorf("header at %d beyond %d: %w", pos, hr.end, errTorn)
	}
	if hr.bufPos < 0 || pos < hr.bufPos || pos+record.HeaderSize > hr.bufPos+int64(hr.n) {
		n := int(min(int64(len(hr.buf)), hr.end-pos))
		if _, err := hr.r.ReadAt(hr.buf[:n], pos); err != nil {
			hr.bufPos = -1
			return record.Header{}, fmt.Errorf("read header at %d: %w", pos, err)
		}
		hr.bufPos, hr.n = pos, n
	}
	h, err := record.ReadHeader(hr.buf[pos-hr.bufPos : hr.n])
	if err != nil {
		return h, err
	}
	if err := checkStored(h); err != nil {
		return h, fmt.Errorf("batch at %d: %w", pos, err)
	}
	if pos+int64(h.Size()) > hr.end {
		return h, fmt.Errorf("batch at %d of %d bytes beyond %d: %w", pos, h.Size(), hr.end, errTorn)
	}
	return h, nil
}

// checkStored checks the header fields a stored batch must satisfy.
func checkStored(h record.Header) error {
	if h.Magic != 2 || h.Length < record.HeaderSize-12 || h.LastOffsetDelta < 0 || h.NumRecords < 0 || h.BaseOffset < 0 {
		return fmt.Errorf("implausible header %+v: %w", h, record.ErrCorrupt)
	}
	return nil
}

// scanResult is what a scan of a segment file learned.
type scanResult struct {
	seg     *segment // rebuilt in-memory state
	validTo int64    // bytes of whole, valid batches
	bad     error    // why the scan stopped before the end; nil if it did not
}

// rebuild scans the batches of f from pos 0 to end and builds a segment's
// in-memory state. With verify set it also checks every batch's CRC. It stops
// at the first implausible, out-of-order, torn or (with verify) corrupt batch
// and reports where.
func rebuild(base int64, f *os.File, end int64, interval int, verify bool) (scanResult, error) {
	s := newSegment(base, f)
	s.file = nil // the caller owns f
	res := scanResult{seg: s}
	if verify {
		br := bufio.NewReaderSize(io.NewSectionReader(f, 0, end), 1<<20)
		hdr := make([]byte, record.HeaderSize)
		var batch []byte
		for pos := int64(0); pos < end; {
			if _, err := io.ReadFull(br, hdr); err != nil {
				if !isShortRead(err) {
					return res, fmt.Errorf("read header at %d: %w", pos, err)
				}
				res.bad = fmt.Errorf("header at %d: %w", pos, errTorn)
				break
			}
			h, _ := record.ReadHeader(hdr)
			if err := checkStored(h); err != nil {
				res.bad = fmt.Errorf("batch at %d: %w", pos, err)
				break
			}
			if pos+int64(h.Size()) > end {
				res.bad = fmt.Errorf("batch at %d: %w", pos, errTorn)
				break
			}
			if err := checkOrder(s, h); err != nil {
				res.bad = fmt.Errorf("batch at %d: %w", pos, err)
				break
			}
			batch = append(batch[:0], hdr...)
			batch = slices.Grow(batch, h.Size()-record.HeaderSize)[:h.Size()]
			if _, err := io.ReadFull(br, batch[record.HeaderSize:]); err != nil {
				if !isShortRead(err) {
					return res, fmt.Errorf("read batch at %d: %w", pos, err)
				}
				res.bad = fmt.Errorf("batch at %d: %w", pos, errTorn)
				break
			}
			if record.Checksum(batch) != h.CRC {
				res.bad = fmt.Errorf("batch at %d: crc mismatch: %w", pos, record.ErrCorrupt)
				break
			}
			s.observe(h, pos, interval)
			pos += int64(h.Size())
		}
	} else {
		hr := newHeaderReader(f, end)
		defer hr.close()
		for pos := int64(0); pos < end; {
			h, err := hr.at(pos)
			if err == nil {
				err = checkOrder(s, h)
			}
			if err != nil {
				if !errors.Is(err, errTorn) && !errors.Is(err, record.ErrCorrupt) {
					return res, err
				}
				res.bad = err
				break
			}
			s.observe(h, pos, interval)
			pos += int64(h.Size())
		}
	}
	res.validTo = s.size
	s.addTimeEntry()
	return res, nil
}

// isShortRead reports whether err means the file ended early, as opposed
// to an I/O error.
func isShortRead(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// checkOrder checks that a batch with header h may follow the batches
// already observed in s.
func checkOrder(s *segment, h record.Header) error {
	if h.BaseOffset < s.next || h.LastOffset()-s.base > maxRelOffset {
		return fmt.Errorf("offset %d out of order in segment %d at offset %d: %w", h.BaseOffset, s.base, s.next, record.ErrCorrupt)
	}
	return nil
}

// encodeIndex returns the on-disk form of a segment's offset index.
func encodeIndex(index []indexEntry) []byte {
	b := make([]byte, 0, len(index)*indexEntrySize)
	for _, e := range index {
		b = binary.BigEndian.AppendUint32(b, e.rel)
		b = binary.BigEndian.AppendUint32(b, e.pos)
	}
	return b
}

func encodeTimeIndex(tindex []timeEntry) []byte {
	b := make([]byte, 0, len(tindex)*timeIndexEntrySize)
	for _, e := range tindex {
		b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
		b = binary.BigEndian.AppendUint32(b, e.rel)
	}
	return b
}

// decodeIndex parses an offset index and checks that its entries increase
// and point inside a segment of size bytes.
func decodeIndex(b []byte, size int64) ([]indexEntry, bool) {
	if len(b)%indexEntrySize != 0 || len(b) == 0 {
		return nil, false
	}
	index := make([]indexEntry, len(b)/indexEntrySize)
	for i := range index {
		e := indexEntry{
			rel: binary.BigEndian.Uint32(b[i*indexEntrySize:]),
			pos: binary.BigEndian.Uint32(b[i*indexEntrySize+4:]),
		}
		if int64(e.pos) >= size || (i == 0 && e.pos != 0) || (i > 0 && (e.rel <= index[i-1].rel || e.pos <= index[i-1].pos)) {
			return nil, false
		}
		index[i] = e
	}
	return index, true
}

func decodeTimeIndex(b []byte) ([]timeEntry, bool) {
	if len(b)%timeIndexEntrySize != 0 || len(b) == 0 {
		return nil, false
	}
	tindex := make([]timeEntry, len(b)/timeIndexEntrySize)
	for i := range tindex {
		e := timeEntry{
			ts:  int64(binary.BigEndian.Uint64(b[i*timeIndexEntrySize:])),
			rel: binary.BigEndian.Uint32(b[i*timeIndexEntrySize+8:]),
		}
		if i > 0 && (e.ts <= tindex[i-1].ts || e.rel <= tindex[i-1].rel) {
			return nil, false
		}
		tindex[i] = e
	}
	return tindex, true
}

// loadIndexes tries to restore the in-memory state of a sealed segment of
// size bytes from its index files, checking them against the log file: the
// last index entry must point at a batch with the expected base offset, and
// the batches after it must end exactly at size. It returns false when the
// indexes are missing, stale or inconsistent, and the caller rebuilds.
func loadIndexes(dir string, s *segment, size int64, interval int) bool {
	ib, err := os.ReadFile(segmentPath(dir, s.base, indexSuffix))
	if err != nil {
		return false
	}
	tb, err := os.ReadFile(segmentPath(dir, s.base, timeIndexSuffix))
	if err != nil {
		return false
	}
	index, ok := decodeIndex(ib, size)
	if !ok {
		return false
	}
	tindex, ok := decodeTimeIndex(tb)
	if !ok {
		return false
	}
	last := index[len(index)-1]
	hr := newHeaderReader(s.file.f, size)
	defer hr.close()
	pos := int64(last.pos)
	h, err := hr.at(pos)
	if err != nil || h.BaseOffset != s.base+int64(last.rel) {
		return false
	}
	first, err := hr.at(0)
	if err != nil || first.BaseOffset < s.base {
		return false
	}
	te := tindex[len(tindex)-1]
	maxTS, maxTSOff := te.ts, s.base+int64(te.rel)
	next := h.BaseOffset
	for pos < size {
		h, err := hr.at(pos)
		if err != nil || h.BaseOffset < next || h.LastOffset()-s.base > maxRelOffset {
			return false
		}
		if h.MaxTimestamp > maxTS {
			maxTS, maxTSOff = h.MaxTimestamp, h.BaseOffset
		}
		next = h.NextOffset()
		pos += int64(h.Size())
	}
	if maxTSOff >= next {
		return false
	}
	s.index, s.tindex = index, tindex
	s.firstTS = first.MaxTimestamp
	s.maxTS, s.maxTSOff = maxTS, maxTSOff
	s.next = next
	s.size = size
	s.sinceIndex = interval // the next batch, if any, starts a new entry
	s.addTimeEntry()
	return true
}

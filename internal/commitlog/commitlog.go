// Package commitlog stores one partition's log on disk as Kafka does: a
// directory of segments, each a file of record batches exactly as produced
// (%020d.log) with a sparse offset index (%020d.index) and time index
// (%020d.timeindex), plus the leader epoch cache (leader-epoch-checkpoint)
// and the log start offset (log-start-offset).
//
// The last segment is the active one; appends go to it and it is rolled into
// a new one by size and age. Older segments are sealed: they change only by
// being deleted (retention, DeleteRecordsBefore, TruncateTo) or replaced
// whole by a compacted copy.
//
// # Concurrency
//
// A Log is safe for concurrent use. Three locks, always taken in this order:
//
//   - maintMu serializes the maintenance operations (EnforceRetention,
//     DeleteRecordsBefore, Compact) among themselves;
//   - wmu serializes everything that writes: appends, rolls, truncation, the
//     mutating step of maintenance, Close; its holder may do I/O;
//   - mu guards the in-memory state (segment list, offsets, indexes, epoch
//     cache) and is held only for bookkeeping, never across I/O, so readers
//     never wait on an append's disk write.
//
// Every state change holds both wmu and mu, so the holder of wmu may read
// the state without mu.
package commitlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fjord-io/fjord/internal/atomicfile"
	"github.com/fjord-io/fjord/internal/record"
)

// ErrOffsetMismatch reports a replicated append that does not continue the log.
var ErrOffsetMismatch = errors.New("commitlog: offset mismatch")

// ErrOffsetOutOfRange reports an offset outside [LogStartOffset, LogEndOffset].
var ErrOffsetOutOfRange = errors.New("commitlog: offset out of range")

// ErrClosed reports use of a closed log.
var ErrClosed = errors.New("commitlog: closed")

// Config holds one log's tunables; the broker fills it from topic configs
// (Kafka names in comments). Zero values of SegmentBytes and
// IndexIntervalBytes select Kafka's defaults.
type Config struct {
	SegmentBytes       int64         // segment.bytes: roll before the active segment would exceed this
	SegmentAge         time.Duration // segment.ms: roll when the active segment's first batch was appended this long ago (0 = never)
	IndexIntervalBytes int           // index.interval.bytes (default 4096)
	RetentionAge       time.Duration // retention.ms; negative = keep forever
	RetentionBytes     int64         // retention.bytes; negative = no limit
	Delete             bool          // cleanup.policy contains "delete"
	Compact            bool          // cleanup.policy contains "compact"
	DeleteRetention    time.Duration // delete.retention.ms: how long compaction keeps tombstones
	FlushMessages      int64         // flush.messages: fsync after this many appended records; <=0 or huge = leave it to the OS (Kafka's default); 1 = fsync every append
}

// DefaultConfig returns Kafka's defaults: 1 GiB segments rolled after 7
// days, an index entry every 4 KiB, deletion after 7 days with no size
// limit, tombstones kept 1 day, and no forced fsync.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       1 << 30,
		SegmentAge:         7 * 24 * time.Hour,
		IndexIntervalBytes: 4096,
		RetentionAge:       7 * 24 * time.Hour,
		RetentionBytes:     -1,
		Delete:             true,
		DeleteRetention:    24 * time.Hour,
	}
}

func (c Config) withDefaults() Config {
	if c.SegmentBytes <= 0 || c.SegmentBytes > maxSegmentBytes {
		if c.SegmentBytes <= 0 {
			c.SegmentBytes = 1 << 30
		} else {
			c.SegmentBytes = maxSegmentBytes
		}
	}
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = 4096
	}
	return c
}

// Log is one partition's log. It is safe for concurrent use: appends are
// serialized among themselves; readers never wait on an append's disk I/O.
type Log struct {
	dir          string
	cfg          atomic.Pointer[Config]
	compactLimit atomic.Int64 // see SetCompactionLimit

	maintMu sync.Mutex
	wmu     sync.Mutex
	// Owned by the holder of wmu.
	unflushed int64 // records appended since the last fsync

	syncMu      sync.Mutex
	pendingSync []*segment // rolled segments not yet fsynced

	mu       sync.RWMutex
	closed   bool
	segments []*segment   // by base offset; the last is active; never empty while open
	logStart atomic.Int64 // written under mu; read without it by LogStartOffset
	leo      atomic.Int64 // written under mu; read without it by LogEndOffset
	size     int64
	epochs   []epochEntry
	truncGen uint64 // counts truncations, which rewrite segments in place
}

// Open opens, creating it if needed, the log in dir. Every sealed segment's
// indexes are loaded, or rebuilt when missing or inconsistent; the active
// (last) segment is validated batch by batch (header sanity and CRC) and
// truncated at the first torn or corrupt batch, and its indexes rebuilt. A
// sealed segment found torn is truncated likewise and every later segment
// removed. The log end offset follows from the last good batch.
func Open(dir string, cfg Config) (*Log, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	cfg = cfg.withDefaults()
	l := &Log{dir: dir}
	l.cfg.Store(&cfg)
	l.compactLimit.Store(-1)
	if err := l.load(time.Now()); err != nil {
		for _, s := range l.segments {
			s.file.release()
		}
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	return l, nil
}

func (l *Log) load(now time.Time) error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var bases []int64
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) || strings.HasSuffix(name, deletedSuffix) || strings.HasSuffix(name, cleanedSuffix) {
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
				return fmt.Errorf("remove leftover %s: %w", name, err)
			}
			continue
		}
		if stem, ok := strings.CutSuffix(name, logSuffix); ok && len(stem) == 20 {
			base, err := strconv.ParseInt(stem, 10, 64)
			if err != nil || base < 0 {
				return fmt.Errorf("bad segment name %s", name)
			}
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	interval := l.cfg.Load().IndexIntervalBytes

	for i, base := range bases {
		last := i == len(bases)-1
		s, torn, err := l.openSegment(base, interval, last)
		if err != nil {
			return fmt.Errorf("segment %d: %w", base, err)
		}
		if k := len(l.segments); k > 0 && s.base < l.segments[k-1].next {
			s.file.release()
			return fmt.Errorf("segment %d overlaps segment %d ending at %d", base, l.segments[k-1].base, l.segments[k-1].next)
		}
		l.segments = append(l.segments, s)
		l.size += s.size
		if torn && !last {
			// A torn sealed segment (a crash before the OS wrote it back):
			// everything after it is suspect too.
			for _, b := range bases[i+1:] {
				if err := removeSegmentFiles(l.dir, b); err != nil {
					return err
				}
			}
			break
		}
	}
	if len(l.segments) == 0 {
		start, _, err := readOffsetFile(l.dir, logStartFile)
		if err != nil {
			return err
		}
		s, err := createSegment(l.dir, max(start, 0))
		if err != nil {
			return err
		}
		l.segments = append(l.segments, s)
	}
	active := l.segments[len(l.segments)-1]
	l.leo.Store(active.next)
	active.rollAt = now
	if !active.empty() && active.firstTS > 0 && active.firstTS < now.UnixMilli() {
		active.rollAt = time.UnixMilli(active.firstTS)
	}

	l.logStart.Store(l.segments[0].base)
	if start, ok, err := readOffsetFile(l.dir, logStartFile); err != nil {
		return err
	} else if ok {
		l.logStart.Store(min(max(l.logStart.Load(), start), l.leo.Load()))
	}

	epochs, err := readEpochs(l.dir)
	if err != nil {
		return err
	}
	l.epochs = epochsTruncatedFromStart(epochsTruncatedFromEnd(epochs, l.leo.Load()), l.logStart.Load())
	if !slices.Equal(l.epochs, epochs) {
		if err := l.persistEpochs(l.epochs); err != nil {
			return err
		}
	}
	return nil
}

// openSegment opens segment base. The active segment is scanned with CRC
// checks and truncated at the first bad batch; a sealed one is restored from
// its index files, or rebuilt by a header scan, and torn reports whether it
// had to be truncated.
func (l *Log) openSegment(base int64, interval int, active bool) (s *segment, torn bool, err error) {
	f, err := os.OpenFile(segmentPath(l.dir, base, logSuffix), os.O_RDWR, 0)
	if err != nil {
		return nil, false, err
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	size := fi.Size()
	if !active {
		s = newSegment(base, f)
		if loadIndexes(l.dir, s, size, interval) {
			return s, false, nil
		}
	}
	res, err := rebuild(base, f, size, interval, active)
	if err != nil {
		return nil, false, err
	}
	s = res.seg
	s.file = newSegFile(f)
	if res.validTo < size {
		if err := f.Truncate(res.validTo); err != nil {
			return nil, false, fmt.Errorf("truncate torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			return nil, false, err
		}
		torn = true
	}
	if !active || torn {
		if torn {
			removeIfExists(segmentPath(l.dir, base, indexSuffix))
			removeIfExists(segmentPath(l.dir, base, timeIndexSuffix))
		}
		if !active {
			if err := writeIndexes(l.dir, s); err != nil {
				return nil, false, err
			}
		}
	}
	return s, torn, nil
}

// createSegment creates an empty segment file at base, replacing any file
// of that name.
func createSegment(dir string, base int64) (*segment, error) {
	f, err := os.OpenFile(segmentPath(dir, base, logSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment %d: %w", base, err)
	}
	removeIfExists(segmentPath(dir, base, indexSuffix))
	removeIfExists(segmentPath(dir, base, timeIndexSuffix))
	return newSegment(base, f), nil
}

// writeIndexes writes a sealed segment's index files.
func writeIndexes(dir string, s *segment) error {
	if err := writeFileReplace(dir, filepath.Base(segmentPath(dir, s.base, indexSuffix)), encodeIndex(s.index)); err != nil {
		return fmt.Errorf("write index %d: %w", s.base, err)
	}
	if err := writeFileReplace(dir, filepath.Base(segmentPath(dir, s.base, timeIndexSuffix)), encodeTimeIndex(s.tindex)); err != nil {
		return fmt.Errorf("write time index %d: %w", s.base, err)
	}
	return nil
}

func removeSegmentFiles(dir string, base int64) error {
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		if err := removeIfExists(segmentPath(dir, base, suf)); err != nil {
			return fmt.Errorf("remove segment %d: %w", base, err)
		}
	}
	return nil
}

// SetConfig replaces the log's configuration; it applies to the next append
// or maintenance call.
func (l *Log) SetConfig(cfg Config) {
	cfg = cfg.withDefaults()
	l.cfg.Store(&cfg)
}

// Config returns the log's configuration, defaults filled in.
func (l *Log) Config() Config { return *l.cfg.Load() }

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

// LogStartOffset returns the first offset a read may ask for. It takes no
// lock: replica fetchers ask it of every followed partition each round.
func (l *Log) LogStartOffset() int64 { return l.logStart.Load() }

// LogEndOffset returns the offset the next appended record will get. It
// takes no lock; records below it are readable once it is seen.
func (l *Log) LogEndOffset() int64 { return l.leo.Load() }

// Size returns the bytes of all segments.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.size
}

// NumSegments returns the number of segments, the active one included.
func (l *Log) NumSegments() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.segments)
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest epoch <= epoch
// in the cache and the start offset of the next larger epoch, or
// LogEndOffset when that epoch is the latest. It returns (-1, -1) when the
// cache is empty, epoch is older than every entry, or epoch is newer than
// the latest.
func (l *Log) EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := len(l.epochs)
	if n == 0 || epoch < l.epochs[0].Epoch || epoch > l.epochs[n-1].Epoch {
		return -1, -1
	}
	i, _ := slices.BinarySearchFunc(l.epochs, epoch, func(e epochEntry, t int32) int {
		switch {
		case e.Epoch < t:
			return -1
		case e.Epoch > t:
			return 1
		}
		return 0
	})
	// l.epochs[i] is the first entry >= epoch.
	if i < n && l.epochs[i].Epoch == epoch {
		if i == n-1 {
			return epoch, l.leo.Load()
		}
		return epoch, l.epochs[i+1].Start
	}
	return l.epochs[i-1].Epoch, l.epochs[i].Start
}

// LatestEpoch returns the latest leader epoch in the cache, or -1.
func (l *Log) LatestEpoch() int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.epochs) == 0 {
		return -1
	}
	return l.epochs[len(l.epochs)-1].Epoch
}

// persistEpochs writes the epoch cache. The caller holds wmu (or is Open).
func (l *Log) persistEpochs(entries []epochEntry) error {
	if err := atomicfile.Write(filepath.Join(l.dir, epochFile), encodeEpochs(entries)); err != nil {
		return fmt.Errorf("write epoch checkpoint: %w", err)
	}
	return nil
}

// Flush fsyncs everything appended so far: the active segment, the
// segments rolled since the last fsync, and the directory. It does not hold
// up appends while it waits for the disk.
func (l *Log) Flush() error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	active := l.activeLocked().file
	active.acquire()
	l.mu.RUnlock()
	defer active.release()

	l.syncMu.Lock()
	pending := l.pendingSync
	l.pendingSync = nil
	l.syncMu.Unlock()
	// Segments deleted or replaced since they were rolled need no fsync.
	var files []*segFile
	l.mu.RLock()
	for _, s := range pending {
		if l.listedLocked(s) {
			s.file.acquire()
			files = append(files, s.file)
		}
	}
	l.mu.RUnlock()
	var err error
	for _, sf := range files {
		if serr := sf.f.Sync(); serr != nil && err == nil {
			err = fmt.Errorf("sync rolled segment: %w", serr)
		}
		sf.release()
	}
	if len(pending) > 0 {
		if serr := atomicfile.SyncDir(l.dir); serr != nil && err == nil {
			err = fmt.Errorf("sync log dir: %w", serr)
		}
	}
	if serr := active.f.Sync(); serr != nil && err == nil {
		err = fmt.Errorf("sync active segment: %w", serr)
	}
	return err
}

// flushLocked fsyncs the active segment and resets the count of unflushed
// records; the caller holds wmu.
func (l *Log) flushLocked() error {
	active := l.activeLocked()
	if err := active.file.f.Sync(); err != nil {
		return fmt.Errorf("sync segment %d: %w", active.base, err)
	}
	l.unflushed = 0
	return nil
}

// Close flushes the log, writes the active segment's indexes and releases
// its files; Views already handed out stay readable until released. Close
// is idempotent; other methods then fail with ErrClosed.
func (l *Log) Close() error {
	l.maintMu.Lock()
	defer l.maintMu.Unlock()
	// Flush the rolled segments first, then, with appends stopped, whatever
	// reached the active segment meanwhile. Errors do not stop the close.
	ferr := l.Flush()
	if errors.Is(ferr, ErrClosed) {
		return nil
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return nil
	}
	err := errors.Join(ferr, l.flushLocked())
	active := l.segments[len(l.segments)-1]
	l.mu.Lock()
	active.addTimeEntry()
	l.closed = true
	segs := l.segments
	l.segments = nil
	l.mu.Unlock()
	if !active.empty() {
		err = errors.Join(err, writeIndexes(l.dir, active))
	}
	for _, s := range segs {
		s.file.wb.Wait() // an early writeback in flight (writeback*.go)
		s.file.release()
	}
	return err
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	if err := l.Close(); err != nil {
		return err
	}
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("delete log %s: %w", l.dir, err)
	}
	return nil
}

// activeLocked returns the active segment; the caller holds wmu or mu.
func (l *Log) activeLocked() *segment { return l.segments[len(l.segments)-1] }

// listedLocked reports whether s is one of the log's segments; the caller
// holds wmu or mu.
func (l *Log) listedLocked(s *segment) bool {
	i := l.findLocked(s.base)
	return i >= 0 && l.segments[i] == s
}

// findLocked returns the index of the last segment whose base is <= off, or
// -1; the caller holds wmu or mu.
func (l *Log) findLocked(off int64) int {
	i, found := slices.BinarySearchFunc(l.segments, off, func(s *segment, t int64) int {
		switch {
		case s.base < t:
			return -1
		case s.base > t:
			return 1
		}
		return 0
	})
	if found {
		return i
	}
	return i - 1
}

// errCorruptf builds an error wrapping record.ErrCorrupt.
func errCorruptf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, record.ErrCorrupt)...)
}

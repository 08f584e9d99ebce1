package commitlog

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-io/fjord/internal/record"
)

// t0 is the test clock's start; timestamps are milliseconds from it.
var t0 = time.UnixMilli(1_700_000_000_000)

// kv is one record as the tests see it.
type kv struct {
	Offset int64
	TS     int64
	Key    string // "" means null
	Value  string // "" means null
}

// makeBatch builds an uncompressed batch of records with the given keys and
// values (empty string means null), timestamps ts, ts+1, ... and base offset 0.
func makeBatch(t testing.TB, ts int64, codec record.Codec, kvs ...[2]string) []byte {
	t.Helper()
	recs := make([]record.Record, len(kvs))
	for i, p := range kvs {
		r := record.Record{OffsetDelta: int32(i), TimestampDelta: int64(i)}
		if p[0] != "" {
			r.Key = []byte(p[0])
		}
		if p[1] != "" {
			r.Value = []byte(p[1])
		}
		recs[i] = r
	}
	b, err := record.Build(record.Header{
		Attributes:      int16(codec),
		LastOffsetDelta: int32(len(kvs) - 1),
		FirstTimestamp:  ts,
		MaxTimestamp:    ts + int64(len(kvs)-1),
		ProducerID:      -1,
		ProducerEpoch:   -1,
		BaseSequence:    -1,
	}, recs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := record.Validate(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// valueBatch builds a batch of n keyless records with values "v<tag>-<i>".
func valueBatch(t testing.TB, ts int64, tag string, n int) []byte {
	t.Helper()
	kvs := make([][2]string, n)
	for i := range kvs {
		kvs[i] = [2]string{"", fmt.Sprintf("v%s-%d", tag, i)}
	}
	return makeBatch(t, ts, record.CodecNone, kvs...)
}

func openLog(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustAppend(t testing.TB, l *Log, b []byte, epoch int32, now time.Time) AppendInfo {
	t.Helper()
	info, err := l.Append(b, epoch, now)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return info
}

// viewBytes reads a View's bytes and releases it.
func viewBytes(t testing.TB, v *View) []byte {
	t.Helper()
	defer v.Release()
	b := make([]byte, v.Len())
	if err := v.ReadAt(b); err != nil {
		t.Fatalf("View.ReadAt: %v", err)
	}
	return b
}

// decode returns the records of a byte range of whole batches.
func decode(t testing.TB, b []byte) []kv {
	t.Helper()
	hs, err := record.Validate(b)
	if err != nil && len(b) > 0 {
		t.Fatalf("Validate read bytes: %v", err)
	}
	var out []kv
	for pos := 0; pos < len(b); {
		_, recs, err := record.Records(b[pos:])
		if err != nil {
			t.Fatal(err)
		}
		h := hs[0]
		hs = hs[1:]
		for _, r := range recs {
			out = append(out, kv{Offset: r.Offset(h), TS: r.Timestamp(h), Key: string(r.Key), Value: string(r.Value)})
		}
		pos += h.Size()
	}
	return out
}

// readAll reads every record from the log start to the end, one Read after
// another, as a consumer would.
func readAll(t testing.TB, l *Log) []kv {
	t.Helper()
	var out []kv
	off := l.LogStartOffset()
	for off < l.LogEndOffset() {
		v, err := l.Read(off, 1<<20, l.LogEndOffset(), true)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if v.Len() == 0 {
			v.Release()
			t.Fatalf("Read(%d) below the end %d is empty", off, l.LogEndOffset())
		}
		b := viewBytes(t, v)
		for _, r := range decode(t, b) {
			if r.Offset >= off {
				out = append(out, r)
			}
		}
		hs, _ := record.Validate(b)
		off = hs[len(hs)-1].NextOffset()
	}
	return out
}

func TestAppendRead(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{})
	var want []kv
	for i := range 50 {
		b := valueBatch(t, int64(i*10), fmt.Sprint(i), 1+i%7)
		info := mustAppend(t, l, b, 1, t0)
		if info.FirstOffset != int64(len(want)) {
			t.Fatalf("batch %d: first offset %d, want %d", i, info.FirstOffset, len(want))
		}
		for j := range 1 + i%7 {
			want = append(want, kv{Offset: int64(len(want)), TS: int64(i*10 + j), Value: fmt.Sprintf("v%d-%d", i, j)})
		}
		if info.LastOffset != int64(len(want)-1) {
			t.Fatalf("batch %d: last offset %d, want %d", i, info.LastOffset, len(want)-1)
		}
		// The caller's slice was rewritten in place.
		h, _ := record.ReadHeader(b)
		if h.BaseOffset != info.FirstOffset || h.PartitionLeaderEpoch != 1 {
			t.Fatalf("batch header after append: %+v", h)
		}
	}
	if l.LogEndOffset() != int64(len(want)) || l.LogStartOffset() != 0 {
		t.Fatalf("offsets [%d, %d)", l.LogStartOffset(), l.LogEndOffset())
	}
	if diff := cmp.Diff(want, readAll(t, l)); diff != "" {
		t.Fatalf("read (-want +got):\n%s", diff)
	}
	// Every offset reads a range starting with the batch holding it.
	for off := range int64(len(want)) {
		v, err := l.Read(off, 1, l.LogEndOffset(), true)
		if err != nil {
			t.Fatal(err)
		}
		got := decode(t, viewBytes(t, v))
		if len(got) == 0 || got[0].Offset > off || got[len(got)-1].Offset < off {
			t.Fatalf("Read(%d) gave offsets %v", off, got)
		}
	}
}

func TestAppendMultipleBatches(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{})
	b := append(valueBatch(t, 1, "a", 3), valueBatch(t, 2, "b", 2)...)
	info := mustAppend(t, l, b, 0, t0)
	if info.FirstOffset != 0 || info.LastOffset != 4 {
		t.Fatalf("info %+v", info)
	}
	hs, err := record.Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	if hs[0].BaseOffset != 0 || hs[1].BaseOffset != 3 {
		t.Fatalf("rewritten base offsets %d, %d", hs[0].BaseOffset, hs[1].BaseOffset)
	}
	if got := readAll(t, l); len(got) != 5 || got[4].Value != "vb-1" {
		t.Fatalf("read %v", got)
	}
	if _, err := l.Append(b[:10], 0, t0); !errors.Is(err, record.ErrCorrupt) {
		t.Errorf("Append(10 bytes) = %v, want ErrCorrupt", err)
	}
	if _, err := l.Append(nil, 0, t0); !errors.Is(err, record.ErrCorrupt) {
		t.Errorf("Append(nil) = %v, want ErrCorrupt", err)
	}
}

func TestReadBoundaries(t *testing.T) {
	// Three-record batches of a fixed size, 4 per segment.
	b := valueBatch(t, 0, "x", 3)
	size := len(b)
	l := openLog(t, t.TempDir(), Config{SegmentBytes: int64(4 * size), IndexIntervalBytes: 1})
	for i := range 12 {
		mustAppend(t, l, valueBatch(t, int64(i), "x", 3), 0, t0)
	}
	if n := l.NumSegments(); n != 3 {
		t.Fatalf("%d segments, want 3", n)
	}
	leo := l.LogEndOffset() // 36
	read := func(off int64, maxBytes int, maxOffset int64, minOne bool) (first, last int64, n int) {
		t.Helper()
		v, err := l.Read(off, maxBytes, maxOffset, minOne)
		if err != nil {
			t.Fatalf("Read(%d, %d, %d, %v): %v", off, maxBytes, maxOffset, minOne, err)
		}
		recs := decode(t, viewBytes(t, v))
		if len(recs) == 0 {
			return -1, -1, 0
		}
		if v.Len()%size != 0 {
			t.Fatalf("view of %d bytes is not whole batches", v.Len())
		}
		return recs[0].Offset, recs[len(recs)-1].Offset, v.Len() / size
	}
	tests := []struct {
		name                string
		off                 int64
		maxBytes            int
		maxOffset           int64
		minOne              bool
		first, last, nBatch int64
	}{
		{"whole segment", 0, 1 << 20, leo, false, 0, 11, 4},
		{"huge maxBytes", 0, math.MaxInt, leo, false, 0, 11, 4},
		{"huge maxBytes and high watermark", 0, math.MaxInt, 8, false, 0, 8, 3},
		{"exact bytes", 0, 2 * size, leo, false, 0, 5, 2},
		{"bytes between batches", 0, 2*size + size/2, leo, false, 0, 5, 2},
		{"too small without minOne", 0, size - 1, leo, false, -1, -1, 0},
		{"too small with minOne", 0, size - 1, leo, true, 0, 2, 1},
		{"zero bytes with minOne", 4, 0, leo, true, 3, 5, 1},
		{"mid batch", 4, 1 << 20, leo, false, 3, 11, 3},
		{"max offset cuts", 0, 1 << 20, 7, false, 0, 8, 3},
		{"max offset at batch start", 0, 1 << 20, 6, false, 0, 5, 2},
		{"max offset inside first batch", 4, 1 << 20, 5, false, 3, 5, 1},
		{"offset at max offset", 6, 1 << 20, 6, true, -1, -1, 0},
		{"next segment", 12, 1 << 20, leo, false, 12, 23, 4},
		{"last segment", 30, 1 << 20, leo, false, 30, 35, 2},
		{"end", leo, 1 << 20, leo, true, -1, -1, 0},
		{"high watermark below", 20, 1 << 20, 18, true, -1, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, last, n := read(tt.off, tt.maxBytes, tt.maxOffset, tt.minOne)
			if first != tt.first || last != tt.last || int64(n) != tt.nBatch {
				t.Errorf("got offsets %d..%d in %d batches, want %d..%d in %d", first, last, n, tt.first, tt.last, tt.nBatch)
			}
		})
	}
	for _, off := range []int64{-1, leo + 1} {
		if _, err := l.Read(off, 100, leo, true); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Errorf("Read(%d) = %v, want ErrOffsetOutOfRange", off, err)
		}
	}
	v, err := l.Read(leo, 100, leo, true)
	if err != nil || v.Len() != 0 || v.File() != nil {
		t.Errorf("Read(leo) = %v, %v", v, err)
	}
	v.Release()
}

func TestRollBySizeAndAge(t *testing.T) {
	b := valueBatch(t, 0, "x", 1)
	size := int64(len(b))
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 3 * size, SegmentAge: time.Hour})
	now := t0
	for range 7 {
		mustAppend(t, l, valueBatch(t, 0, "x", 1), 0, now)
	}
	if n := l.NumSegments(); n != 3 { // 3 + 3 + 1
		t.Fatalf("%d segments after 7 appends of a third of a segment, want 3", n)
	}
	if l.Size() != 7*size {
		t.Fatalf("Size = %d, want %d", l.Size(), 7*size)
	}
	// Age: the active segment's first append was at now; an hour later the
	// next append rolls.
	mustAppend(t, l, valueBatch(t, 0, "x", 1), 0, now.Add(59*time.Minute))
	if n := l.NumSegments(); n != 3 {
		t.Fatalf("%d segments before the age limit", n)
	}
	mustAppend(t, l, valueBatch(t, 0, "x", 1), 0, now.Add(61*time.Minute))
	if n := l.NumSegments(); n != 4 {
		t.Fatalf("%d segments after the age limit, want 4", n)
	}
	// EnforceRetention rolls by age too, without deleting anything.
	if n, err := l.EnforceRetention(now.Add(3 * time.Hour)); err != nil || n != 0 {
		t.Fatalf("EnforceRetention = %d, %v", n, err)
	}
	if n := l.NumSegments(); n != 5 {
		t.Fatalf("%d segments after EnforceRetention, want 5", n)
	}
	// An append larger than a segment gets a segment of its own.
	big := valueBatch(t, 0, "big", 20)
	mustAppend(t, l, big, 0, now.Add(3*time.Hour))
	if got := readAll(t, l); len(got) != 29 {
		t.Fatalf("read %d records, want 29", len(got))
	}
	files, _ := filepath.Glob(filepath.Join(l.Dir(), "*.log"))
	if len(files) != l.NumSegments() {
		t.Errorf("%d .log files for %d segments", len(files), l.NumSegments())
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 1000, IndexIntervalBytes: 100}
	l := openLog(t, dir, cfg)
	for i := range 40 {
		mustAppend(t, l, makeBatch(t, int64(i), record.Codec(i%5), [2]string{fmt.Sprint("k", i%3), fmt.Sprint(i)}), int32(i/10), t0)
	}
	want := readAll(t, l)
	wantSegs, wantSize := l.NumSegments(), l.Size()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Read(0, 10, 10, true); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
	if _, err := l.Append(valueBatch(t, 0, "", 1), 0, t0); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v", err)
	}

	l = openLog(t, dir, cfg)
	if diff := cmp.Diff(want, readAll(t, l)); diff != "" {
		t.Fatalf("after reopen (-want +got):\n%s", diff)
	}
	if l.NumSegments() != wantSegs || l.Size() != wantSize || l.LogEndOffset() != 40 {
		t.Fatalf("after reopen: %d segments, %d bytes, leo %d", l.NumSegments(), l.Size(), l.LogEndOffset())
	}
	if e := l.LatestEpoch(); e != 3 {
		t.Errorf("LatestEpoch = %d, want 3", e)
	}
	info := mustAppend(t, l, valueBatch(t, 0, "z", 2), 4, t0)
	if info.FirstOffset != 40 {
		t.Errorf("append after reopen at %d", info.FirstOffset)
	}
}

func TestEpochs(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Config{})
	if e, off := l.EndOffsetForEpoch(0); e != -1 || off != -1 {
		t.Errorf("empty cache: %d, %d", e, off)
	}
	if l.LatestEpoch() != -1 {
		t.Errorf("LatestEpoch of empty log = %d", l.LatestEpoch())
	}
	appendN := func(epoch int32, n int) {
		for range n {
			mustAppend(t, l, valueBatch(t, 0, "e", 2), epoch, t0)
		}
	}
	appendN(1, 2) // 0..3
	appendN(3, 3) // 4..9
	appendN(3, 1) // 10..11
	appendN(6, 1) // 12..13
	tests := []struct {
		epoch   int32
		want    int32
		wantOff int64
	}{
		{0, -1, -1},
		{1, 1, 4},
		{2, 1, 4},
		{3, 3, 12},
		{4, 3, 12},
		{5, 3, 12},
		{6, 6, 14},
		{7, -1, -1},
	}
	check := func() {
		t.Helper()
		for _, tt := range tests {
			e, off := l.EndOffsetForEpoch(tt.epoch)
			if e != tt.want || off != tt.wantOff {
				t.Errorf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", tt.epoch, e, off, tt.want, tt.wantOff)
			}
		}
	}
	check()
	l.Close()
	l = openLog(t, dir, Config{})
	check()

	// Truncation drops the epochs that started past the new end.
	if err := l.TruncateTo(10); err != nil {
		t.Fatal(err)
	}
	if l.LatestEpoch() != 3 || l.LogEndOffset() != 10 {
		t.Fatalf("after TruncateTo(10): epoch %d, leo %d", l.LatestEpoch(), l.LogEndOffset())
	}
	if e, off := l.EndOffsetForEpoch(3); e != 3 || off != 10 {
		t.Errorf("EndOffsetForEpoch(3) = %d, %d", e, off)
	}
	// A follower append learns epochs from the batches.
	b := valueBatch(t, 0, "f", 2)
	record.SetBaseOffset(b, 10)
	record.SetPartitionLeaderEpoch(b, 8)
	if err := l.AppendReplicated(b, t0); err != nil {
		t.Fatal(err)
	}
	if e, off := l.EndOffsetForEpoch(7); e != 3 || off != 10 {
		t.Errorf("EndOffsetForEpoch(7) = %d, %d", e, off)
	}
	if e, off := l.EndOffsetForEpoch(8); e != 8 || off != 12 {
		t.Errorf("EndOffsetForEpoch(8) = %d, %d", e, off)
	}
}

func TestAppendReplicated(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{})
	b := valueBatch(t, 0, "r", 3)
	record.SetBaseOffset(b, 1)
	if err := l.AppendReplicated(b, t0); err != nil {
		t.Fatalf("AppendReplicated at a gap above the end: %v", err)
	}
	if l.LogEndOffset() != 4 {
		t.Fatalf("leo %d", l.LogEndOffset())
	}
	b2 := valueBatch(t, 0, "r", 1)
	record.SetBaseOffset(b2, 3)
	if err := l.AppendReplicated(b2, t0); !errors.Is(err, ErrOffsetMismatch) {
		t.Fatalf("AppendReplicated below the end = %v, want ErrOffsetMismatch", err)
	}
	// Overlapping batches within one call.
	x, y := valueBatch(t, 0, "x", 2), valueBatch(t, 0, "y", 2)
	record.SetBaseOffset(x, 4)
	record.SetBaseOffset(y, 5)
	if err := l.AppendReplicated(append(x, y...), t0); !errors.Is(err, ErrOffsetMismatch) {
		t.Fatalf("overlapping batches = %v, want ErrOffsetMismatch", err)
	}
	if l.LogEndOffset() != 4 {
		t.Fatalf("failed append moved leo to %d", l.LogEndOffset())
	}
	// Reading at the gap offset resolves to the next batch.
	v, err := l.Read(0, 1000, 4, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(t, viewBytes(t, v)); len(got) != 3 || got[0].Offset != 1 {
		t.Fatalf("read at gap: %v", got)
	}
}

func TestTruncateTo(t *testing.T) {
	dir := t.TempDir()
	b := valueBatch(t, 0, "t", 2)
	l := openLog(t, dir, Config{SegmentBytes: int64(3 * len(b)), IndexIntervalBytes: 1})
	for i := range 10 { // offsets 0..19, segments of 3 batches
		mustAppend(t, l, valueBatch(t, int64(i), "t", 2), 0, t0)
	}
	if err := l.TruncateTo(13); err != nil { // inside batch 12..13: removed whole
		t.Fatal(err)
	}
	if l.LogEndOffset() != 12 {
		t.Fatalf("leo %d after TruncateTo(13), want 12", l.LogEndOffset())
	}
	if err := l.TruncateTo(8); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 8 || l.NumSegments() != 2 {
		t.Fatalf("leo %d, %d segments", l.LogEndOffset(), l.NumSegments())
	}
	got := readAll(t, l)
	if len(got) != 8 || got[7].Offset != 7 {
		t.Fatalf("read %v", got)
	}
	info := mustAppend(t, l, valueBatch(t, 0, "n", 1), 0, t0)
	if info.FirstOffset != 8 {
		t.Fatalf("append after truncation at %d", info.FirstOffset)
	}
	l.Close()
	l = openLog(t, dir, Config{SegmentBytes: int64(3 * len(b)), IndexIntervalBytes: 1})
	if got := readAll(t, l); len(got) != 9 || got[8].Value != "vn-0" {
		t.Fatalf("after reopen: %v", got)
	}
	// Truncating at or past the end is a no-op; below the first segment
	// restarts the log.
	if err := l.TruncateTo(100); err != nil || l.LogEndOffset() != 9 {
		t.Fatalf("TruncateTo(100) = %v, leo %d", err, l.LogEndOffset())
	}
	if err := l.DeleteRecordsBefore(7); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(0); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 0 || l.LogStartOffset() != 0 || l.Size() != 0 {
		t.Fatalf("after TruncateTo(0): [%d, %d), %d bytes", l.LogStartOffset(), l.LogEndOffset(), l.Size())
	}
}

func TestTimestamps(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 400, IndexIntervalBytes: 1})
	if _, _, ok, err := l.MaxTimestamp(); ok || err != nil {
		t.Fatalf("MaxTimestamp of empty log: %v, %v", ok, err)
	}
	// Batch i has timestamps 100i .. 100i+2, except batch 5 which peaks at 9000.
	for i := range 20 {
		ts := int64(100 * i)
		if i == 5 {
			b := makeBatch(t, ts, record.CodecNone, [2]string{"", "a"}, [2]string{"", "b"}, [2]string{"", "c"})
			// Record 1 of batch 5 (offset 16) gets timestamp 9000.
			recs := []record.Record{
				{Value: []byte("a")},
				{OffsetDelta: 1, TimestampDelta: 9000 - ts, Value: []byte("b")},
				{OffsetDelta: 2, TimestampDelta: 2, Value: []byte("c")},
			}
			h, _ := record.ReadHeader(b)
			h.MaxTimestamp = 9000
			b, _ = record.Build(h, recs)
			mustAppend(t, l, b, 0, t0)
			continue
		}
		mustAppend(t, l, makeBatch(t, ts, record.CodecGzip, [2]string{"", "a"}, [2]string{"", "b"}, [2]string{"", "c"}), 0, t0)
	}
	if l.NumSegments() < 3 {
		t.Fatalf("want several segments, have %d", l.NumSegments())
	}
	off, ts, ok, err := l.MaxTimestamp()
	if err != nil || !ok || off != 16 || ts != 9000 {
		t.Fatalf("MaxTimestamp = %d, %d, %v, %v; want 16, 9000", off, ts, ok, err)
	}
	tests := []struct {
		ts, off, gotTS int64
		ok             bool
	}{
		{-5, 0, 0, true},
		{0, 0, 0, true},
		{1, 1, 1, true},
		{3, 3, 100, true},
		{501, 16, 9000, true}, // batch 5: offset 15 has ts 500, 16 has 9000
		{1000, 16, 9000, true},
		{1901, 16, 9000, true},
		{9000, 16, 9000, true},
		{9001, 0, 0, false},
	}
	for _, tt := range tests {
		off, ts, ok, err := l.OffsetForTimestamp(tt.ts)
		if err != nil || ok != tt.ok || (ok && (off != tt.off || ts != tt.gotTS)) {
			t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v, %v; want %d, %d, %v", tt.ts, off, ts, ok, err, tt.off, tt.gotTS, tt.ok)
		}
	}
	// Below the log start offset nothing is found.
	if err := l.DeleteRecordsBefore(20); err != nil {
		t.Fatal(err)
	}
	if off, _, ok, _ := l.OffsetForTimestamp(0); !ok || off != 20 {
		t.Errorf("OffsetForTimestamp(0) after DeleteRecordsBefore(20) = %d, %v", off, ok)
	}
	// LogAppendTime batches use the batch's time for every record.
	b := makeBatch(t, 5, record.CodecNone, [2]string{"", "x"}, [2]string{"", "y"})
	record.SetLogAppendTime(b, 20_000)
	mustAppend(t, l, b, 0, t0)
	if off, ts, ok, _ := l.OffsetForTimestamp(10_000); !ok || off != 60 || ts != 20_000 {
		t.Errorf("OffsetForTimestamp over a LogAppendTime batch = %d, %d, %v", off, ts, ok)
	}
	if off, ts, ok, _ := l.MaxTimestamp(); !ok || off != 60 || ts != 20_000 {
		t.Errorf("MaxTimestamp with a LogAppendTime batch = %d, %d, %v", off, ts, ok)
	}
}

func TestFlushMessages(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Config{FlushMessages: 1, SegmentBytes: 300})
	for range 5 {
		mustAppend(t, l, valueBatch(t, 0, "f", 2), 0, t0)
	}
	if l.unflushed != 0 {
		t.Errorf("%d records unflushed with FlushMessages 1", l.unflushed)
	}
	l.SetConfig(Config{FlushMessages: 5, SegmentBytes: 300})
	mustAppend(t, l, valueBatch(t, 0, "f", 2), 0, t0)
	if l.unflushed != 2 {
		t.Errorf("%d records unflushed, want 2", l.unflushed)
	}
	if err := l.Flush(); err != nil {
		t.Errorf("Flush = %v", err)
	}
	// Segments rolled without FlushMessages wait for the next Flush.
	l.SetConfig(Config{SegmentBytes: 300})
	for range 5 {
		mustAppend(t, l, valueBatch(t, 0, "f", 2), 0, t0)
	}
	l.syncMu.Lock()
	pending := len(l.pendingSync)
	l.syncMu.Unlock()
	if pending == 0 {
		t.Errorf("no rolled segments pending an fsync")
	}
	if err := l.Flush(); err != nil {
		t.Errorf("Flush = %v", err)
	}
	if len(l.pendingSync) != 0 {
		t.Errorf("%d segments still pending after Flush", len(l.pendingSync))
	}
	if got := l.Config().IndexIntervalBytes; got != 4096 {
		t.Errorf("default index interval %d", got)
	}
}

func TestConcurrentReadersAndAppender(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 4096, IndexIntervalBytes: 256})
	const batches = 400
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := int64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				leo := l.LogEndOffset()
				if off >= leo {
					if off >= 2*batches {
						return
					}
					continue
				}
				v, err := l.Read(off, 500+r*700, leo, true)
				if err != nil {
					errs <- fmt.Errorf("Read(%d): %w", off, err)
					return
				}
				b := make([]byte, v.Len())
				err = v.ReadAt(b)
				v.Release()
				if err != nil {
					errs <- err
					return
				}
				hs, err := record.Validate(b)
				if err != nil {
					errs <- fmt.Errorf("read at %d: %w", off, err)
					return
				}
				if hs[0].BaseOffset > off || hs[0].LastOffset() < off {
					errs <- fmt.Errorf("read at %d got batch %d..%d", off, hs[0].BaseOffset, hs[0].LastOffset())
					return
				}
				off = hs[len(hs)-1].LastOffset() + 1
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range batches {
			if _, err := l.Append(valueBatch(t, int64(i), "c", 2), 0, t0); err != nil {
				errs <- err
				return
			}
			if i%50 == 0 {
				l.MaxTimestamp()
				l.OffsetForTimestamp(int64(i / 2))
			}
		}
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case err := <-errs:
		close(stop)
		<-done
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		close(stop)
		<-done
		t.Fatal("timed out")
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func TestDelete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p0")
	l := openLog(t, dir, Config{})
	mustAppend(t, l, valueBatch(t, 0, "d", 1), 0, t0)
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir still there: %v", err)
	}
}

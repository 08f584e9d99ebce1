package commitlog

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-io/fjord/internal/record"
)

// fillLog appends n batches of two records with timestamps 10i, 10i+1 and
// returns what a reader should see.
func fillLog(t testing.TB, l *Log, n int) []kv {
	t.Helper()
	for i := range n {
		mustAppend(t, l, valueBatch(t, int64(10*i), fmt.Sprint(i), 2), 1, t0)
	}
	return readAll(t, l)
}

// copyDir copies the regular files of src into a new directory, the state a
// crash would leave on disk (no Close, so no active index files).
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func segmentFiles(t testing.TB, dir, suffix string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestRecoverWithoutClose(t *testing.T) {
	src := t.TempDir()
	l := openLog(t, src, Config{SegmentBytes: 500, IndexIntervalBytes: 50})
	want := fillLog(t, l, 30)
	dir := copyDir(t, src) // a crash: the active segment has no index files

	r := openLog(t, dir, Config{SegmentBytes: 500, IndexIntervalBytes: 50})
	if diff := cmp.Diff(want, readAll(t, r)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if r.LogEndOffset() != 60 || r.LatestEpoch() != 1 {
		t.Fatalf("leo %d, epoch %d", r.LogEndOffset(), r.LatestEpoch())
	}
	if off, _, ok, err := r.OffsetForTimestamp(151); err != nil || !ok || off != 31 {
		t.Errorf("OffsetForTimestamp(151) = %d, %v, %v", off, ok, err)
	}
}

func TestRecoverTornTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, batchSize int64)
		keep   int // batches that survive
	}{
		{"mid batch", func(t *testing.T, path string, bs int64) {
			if err := os.Truncate(path, fileSize(t, path)-bs/2); err != nil {
				t.Fatal(err)
			}
		}, 9},
		{"mid header", func(t *testing.T, path string, bs int64) {
			if err := os.Truncate(path, fileSize(t, path)-bs+20); err != nil {
				t.Fatal(err)
			}
		}, 9},
		{"garbage appended", func(t *testing.T, path string, bs int64) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte(strings.Repeat("garbage!", 40)))
			f.Close()
		}, 10},
		{"zeros appended", func(t *testing.T, path string, bs int64) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(make([]byte, 4096))
			f.Close()
		}, 10},
		{"crc in the middle", func(t *testing.T, path string, bs int64) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Flip a byte of batch 4's records (the last byte of the batch).
			var b [1]byte
			f.ReadAt(b[:], 5*bs-1)
			b[0] ^= 0xff
			f.WriteAt(b[:], 5*bs-1)
			f.Close()
		}, 4},
		{"bad length in the middle", func(t *testing.T, path string, bs int64) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte{0x7f, 0, 0, 0}, 6*bs+8)
			f.Close()
		}, 6},
		{"offsets going backwards", func(t *testing.T, path string, bs int64) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt(make([]byte, 8), 7*bs) // base offset 0
			f.Close()
		}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, Config{})
			want := fillLog(t, l, 10)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			path := segmentPath(dir, 0, logSuffix)
			batchSize := fileSize(t, path) / 10
			tc.damage(t, path, batchSize)

			l = openLog(t, dir, Config{})
			if diff := cmp.Diff(want[:2*tc.keep], readAll(t, l)); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
			if got := fileSize(t, path); got != int64(tc.keep)*batchSize {
				t.Fatalf("file is %d bytes, want %d", got, int64(tc.keep)*batchSize)
			}
			info := mustAppend(t, l, valueBatch(t, 0, "new", 2), 2, t0)
			if info.FirstOffset != int64(2*tc.keep) {
				t.Fatalf("append after recovery at %d, want %d", info.FirstOffset, 2*tc.keep)
			}
			if e, off := l.EndOffsetForEpoch(1); e != 1 || off != int64(2*tc.keep) {
				t.Errorf("EndOffsetForEpoch(1) = %d, %d", e, off)
			}
			l.Close()
			l = openLog(t, dir, Config{})
			if got := readAll(t, l); len(got) != 2*tc.keep+2 || got[len(got)-1].Value != "vnew-1" {
				t.Fatalf("after second reopen: %v", got)
			}
		})
	}
}

func TestRecoverEpochsPastTail(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Config{})
	fillLog(t, l, 3)
	mustAppend(t, l, valueBatch(t, 0, "e5", 2), 5, t0)
	l.Close()
	// Tear off the epoch 5 batch: its cache entry must go too.
	path := segmentPath(dir, 0, logSuffix)
	if err := os.Truncate(path, fileSize(t, path)-5); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, Config{})
	if l.LatestEpoch() != 1 || l.LogEndOffset() != 6 {
		t.Fatalf("epoch %d, leo %d", l.LatestEpoch(), l.LogEndOffset())
	}
}

func TestRebuildIndexes(t *testing.T) {
	cfg := Config{SegmentBytes: 600, IndexIntervalBytes: 100}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"deleted", func(t *testing.T, dir string) {
			for _, f := range append(segmentFiles(t, dir, indexSuffix), segmentFiles(t, dir, timeIndexSuffix)...) {
				os.Remove(f)
			}
		}},
		{"garbage", func(t *testing.T, dir string) {
			for _, f := range segmentFiles(t, dir, indexSuffix) {
				os.WriteFile(f, []byte("0123456789abcdef"), 0o644)
			}
		}},
		{"truncated", func(t *testing.T, dir string) {
			for _, f := range append(segmentFiles(t, dir, indexSuffix), segmentFiles(t, dir, timeIndexSuffix)...) {
				os.Truncate(f, fileSize(t, f)-3)
			}
		}},
		{"stale", func(t *testing.T, dir string) {
			// Every segment gets the first segment's indexes.
			idx, _ := os.ReadFile(segmentFiles(t, dir, indexSuffix)[0])
			tidx, _ := os.ReadFile(segmentFiles(t, dir, timeIndexSuffix)[0])
			for _, f := range segmentFiles(t, dir, indexSuffix)[1:] {
				os.WriteFile(f, idx, 0o644)
			}
			for _, f := range segmentFiles(t, dir, timeIndexSuffix)[1:] {
				os.WriteFile(f, tidx, 0o644)
			}
		}},
		{"empty", func(t *testing.T, dir string) {
			for _, f := range segmentFiles(t, dir, timeIndexSuffix) {
				os.Truncate(f, 0)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, cfg)
			want := fillLog(t, l, 40)
			wantMaxOff, wantMaxTS, _, _ := l.MaxTimestamp()
			segs := l.NumSegments()
			l.Close()
			if n := len(segmentFiles(t, dir, indexSuffix)); n != segs {
				t.Fatalf("%d index files for %d segments after Close", n, segs)
			}
			tc.damage(t, dir)

			l = openLog(t, dir, cfg)
			if diff := cmp.Diff(want, readAll(t, l)); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
			for off := range l.LogEndOffset() {
				v, err := l.Read(off, 1, l.LogEndOffset(), true)
				if err != nil {
					t.Fatal(err)
				}
				got := decode(t, viewBytes(t, v))
				if got[0].Offset > off || got[len(got)-1].Offset < off {
					t.Fatalf("Read(%d) = %v", off, got)
				}
			}
			for ts := int64(0); ts < 390; ts += 7 {
				off, _, ok, err := l.OffsetForTimestamp(ts)
				wantOff := (ts + 9) / 10 * 2
				if ts%10 == 1 {
					wantOff = ts/10*2 + 1
				}
				if err != nil || !ok || off != wantOff {
					t.Fatalf("OffsetForTimestamp(%d) = %d, %v, %v; want %d", ts, off, ok, err, wantOff)
				}
			}
			if off, ts, ok, _ := l.MaxTimestamp(); !ok || off != wantMaxOff || ts != wantMaxTS {
				t.Errorf("MaxTimestamp = %d, %d; want %d, %d", off, ts, wantMaxOff, wantMaxTS)
			}
			// Sealed segments' indexes were rewritten.
			if n := len(segmentFiles(t, dir, indexSuffix)); n < segs-1 {
				t.Errorf("%d index files after recovery", n)
			}
		})
	}
}

func TestRecoverTornSealedSegment(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 500}
	l := openLog(t, dir, cfg)
	want := fillLog(t, l, 30)
	if l.NumSegments() < 4 {
		t.Fatalf("%d segments", l.NumSegments())
	}
	l.Close()
	// Power loss: the second segment lost its tail; the index files are gone
	// too (they would not match).
	logs := segmentFiles(t, dir, logSuffix)
	second := logs[1]
	base := strings.TrimSuffix(filepath.Base(second), logSuffix)
	os.Remove(filepath.Join(dir, base+indexSuffix))
	if err := os.Truncate(second, fileSize(t, second)-7); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, cfg)
	if l.NumSegments() != 2 {
		t.Fatalf("%d segments after recovering a torn second segment, want 2", l.NumSegments())
	}
	got := readAll(t, l)
	if len(got) == 0 || len(got) >= len(want) {
		t.Fatalf("kept %d of %d records", len(got), len(want))
	}
	if diff := cmp.Diff(want[:len(got)], got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if l.LogEndOffset() != int64(len(got)) {
		t.Fatalf("leo %d with %d records", l.LogEndOffset(), len(got))
	}
	if n := len(segmentFiles(t, dir, logSuffix)); n != 2 {
		t.Fatalf("%d .log files left", n)
	}
	mustAppend(t, l, valueBatch(t, 0, "after", 1), 1, t0)
}

func TestRecoverRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Config{})
	fillLog(t, l, 3)
	l.Close()
	for _, name := range []string{
		"00000000000000000000.log.cleaned", "00000000000000000099.log.deleted",
		"leader-epoch-checkpoint.tmp", "00000000000000000000.index.tmp",
	} {
		os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o644)
	}
	l = openLog(t, dir, Config{})
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		for _, suf := range []string{cleanedSuffix, deletedSuffix, tmpSuffix} {
			if strings.HasSuffix(e.Name(), suf) {
				t.Errorf("leftover %s survived Open", e.Name())
			}
		}
	}
	if got := readAll(t, l); len(got) != 6 {
		t.Fatalf("read %d records", len(got))
	}
}

func TestRecoverEmptyDirAndEmptySegment(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Config{SegmentBytes: 200})
	fillLog(t, l, 5)
	l.Close()
	// A crash right after a roll leaves an empty active segment.
	if err := os.WriteFile(segmentPath(dir, 10, logSuffix), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, Config{SegmentBytes: 200})
	if l.LogEndOffset() != 10 {
		t.Fatalf("leo %d", l.LogEndOffset())
	}
	if info := mustAppend(t, l, valueBatch(t, 0, "x", 1), 1, t0); info.FirstOffset != 10 {
		t.Fatalf("append at %d", info.FirstOffset)
	}
	if got := readAll(t, l); len(got) != 11 {
		t.Fatalf("read %d", len(got))
	}
}

// TestViewAfterTruncation checks that a View over bytes removed by
// TruncateTo fails cleanly rather than returning garbage.
func TestViewAfterTruncation(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{})
	fillLog(t, l, 4)
	v, err := l.Read(6, 1<<20, l.LogEndOffset(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	if err := l.TruncateTo(2); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, v.Len())
	if err := v.ReadAt(b); err == nil {
		if _, verr := record.Validate(b); verr == nil {
			t.Fatal("read of a truncated range succeeded")
		}
	} else if !strings.Contains(err.Error(), io.ErrUnexpectedEOF.Error()) {
		t.Logf("ReadAt: %v", err)
	}
}

// FuzzOpen writes arbitrary bytes after a few good batches of the active
// segment and checks that Open keeps exactly the good prefix (or more good
// batches the fuzzer managed to build), never panics, and leaves a log that
// accepts appends at its end offset.
func FuzzOpen(f *testing.F) {
	good := append(valueBatch(f, 1, "a", 2), valueBatch(f, 2, "b", 1)...)
	record.SetBaseOffset(good[len(good)-len(valueBatch(f, 2, "b", 1)):], 2)
	f.Add([]byte{})
	f.Add([]byte("garbage"))
	f.Add(make([]byte, 100))
	f.Add(valueBatch(f, 3, "c", 1))
	f.Fuzz(func(t *testing.T, tail []byte) {
		dir := t.TempDir()
		content := append(append([]byte{}, good...), tail...)
		if err := os.WriteFile(segmentPath(dir, 0, logSuffix), content, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, Config{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer l.Close()
		if l.Size() < int64(len(good)) || l.LogEndOffset() < 3 {
			t.Fatalf("lost good batches: size %d, leo %d", l.Size(), l.LogEndOffset())
		}
		if fileSize(t, segmentPath(dir, 0, logSuffix)) != l.Size() {
			t.Fatalf("file not truncated to %d", l.Size())
		}
		leo := l.LogEndOffset()
		info, err := l.Append(valueBatch(t, 0, "z", 1), 0, t0)
		if err != nil || info.FirstOffset != leo {
			t.Fatalf("append after recovery: %+v, %v", info, err)
		}
		got := readAll(t, l)
		if got[len(got)-1].Value != "vz-0" {
			t.Fatalf("last record %+v", got[len(got)-1])
		}
	})
}

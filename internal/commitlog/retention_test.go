package commitlog

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/fjord-io/fjord/internal/record"
)

// retentionLog builds a log of 10 segments of 3 one-record batches each;
// segment i holds offsets 3i..3i+2 with timestamps (t0 + i hours) in ms.
func retentionLog(t *testing.T, cfg Config) (*Log, int64) {
	t.Helper()
	b := valueBatch(t, 0, "r", 1)
	segBytes := int64(3 * len(b))
	cfg.SegmentBytes = segBytes
	l := openLog(t, t.TempDir(), cfg)
	for i := range 30 {
		ts := t0.Add(time.Duration(i/3) * time.Hour).UnixMilli()
		mustAppend(t, l, valueBatch(t, ts, "r", 1), 0, t0)
	}
	if l.NumSegments() != 10 {
		t.Fatalf("%d segments", l.NumSegments())
	}
	return l, segBytes
}

func TestRetentionByTime(t *testing.T) {
	l, _ := retentionLog(t, Config{Delete: true, RetentionAge: 3 * time.Hour, RetentionBytes: -1})
	// At t0+5h30m, segments with newest timestamp before t0+2h30m go: 0, 1, 2.
	n, err := l.EnforceRetention(t0.Add(5*time.Hour + 30*time.Minute))
	if err != nil || n != 3 {
		t.Fatalf("EnforceRetention = %d, %v; want 3", n, err)
	}
	if l.LogStartOffset() != 9 || l.NumSegments() != 7 {
		t.Fatalf("log start %d, %d segments", l.LogStartOffset(), l.NumSegments())
	}
	if _, err := l.Read(8, 100, l.LogEndOffset(), true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read below the log start = %v", err)
	}
	if got := readAll(t, l); len(got) != 21 || got[0].Offset != 9 {
		t.Fatalf("read %d records from %v", len(got), got[0])
	}
	// Nothing more is due yet.
	if n, err := l.EnforceRetention(t0.Add(5*time.Hour + 30*time.Minute)); err != nil || n != 0 {
		t.Fatalf("second EnforceRetention = %d, %v", n, err)
	}
	// Far in the future everything is expired, the active segment too: it is
	// rolled and the log is left empty at its end offset.
	n, err = l.EnforceRetention(t0.Add(100 * time.Hour))
	if err != nil || n != 7 {
		t.Fatalf("EnforceRetention = %d, %v; want 7", n, err)
	}
	if l.LogStartOffset() != 30 || l.LogEndOffset() != 30 || l.Size() != 0 || l.NumSegments() != 1 {
		t.Fatalf("[%d, %d), %d bytes, %d segments", l.LogStartOffset(), l.LogEndOffset(), l.Size(), l.NumSegments())
	}
	if info := mustAppend(t, l, valueBatch(t, 0, "x", 1), 0, t0); info.FirstOffset != 30 || info.LogStartOffset != 30 {
		t.Fatalf("append %+v", info)
	}
	if n := len(segmentFiles(t, l.Dir(), logSuffix)); n != 1 {
		t.Errorf("%d .log files", n)
	}
	if n := len(segmentFiles(t, l.Dir(), deletedSuffix)); n != 0 {
		t.Errorf("%d .deleted files", n)
	}
}

func TestRetentionBySize(t *testing.T) {
	l, segBytes := retentionLog(t, Config{Delete: true, RetentionAge: -1})
	l.SetConfig(Config{SegmentBytes: segBytes, Delete: true, RetentionAge: -1, RetentionBytes: 4*segBytes + 10})
	// 10 segments, limit 4 and a bit: 5 whole segments over.
	n, err := l.EnforceRetention(t0)
	if err != nil || n != 5 {
		t.Fatalf("EnforceRetention = %d, %v; want 5", n, err)
	}
	if l.Size() != 5*segBytes || l.LogStartOffset() != 15 {
		t.Fatalf("size %d, log start %d", l.Size(), l.LogStartOffset())
	}
	// Limit 0: every sealed segment goes, never the active one.
	l.SetConfig(Config{SegmentBytes: segBytes, Delete: true, RetentionAge: -1, RetentionBytes: 0})
	if n, err := l.EnforceRetention(t0); err != nil || n != 4 {
		t.Fatalf("EnforceRetention = %d, %v; want 4", n, err)
	}
	if l.NumSegments() != 1 || l.LogStartOffset() != 27 {
		t.Fatalf("%d segments, log start %d", l.NumSegments(), l.LogStartOffset())
	}
}

func TestRetentionDisabled(t *testing.T) {
	l, segBytes := retentionLog(t, Config{Delete: false, RetentionAge: time.Millisecond, RetentionBytes: 0})
	if n, err := l.EnforceRetention(t0.Add(1000 * time.Hour)); err != nil || n != 0 {
		t.Fatalf("EnforceRetention without Delete = %d, %v", n, err)
	}
	l.SetConfig(Config{SegmentBytes: segBytes, Delete: true, RetentionAge: -1, RetentionBytes: -1})
	if n, err := l.EnforceRetention(t0.Add(1000 * time.Hour)); err != nil || n != 0 {
		t.Fatalf("EnforceRetention keeping forever = %d, %v", n, err)
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	l, segBytes := retentionLog(t, Config{})
	dir := l.Dir()
	if err := l.DeleteRecordsBefore(31); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("DeleteRecordsBefore past the end = %v", err)
	}
	if err := l.DeleteRecordsBefore(7); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 7 || l.NumSegments() != 8 {
		t.Fatalf("log start %d, %d segments", l.LogStartOffset(), l.NumSegments())
	}
	if _, err := l.Read(6, 100, 30, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read(6) = %v", err)
	}
	v, err := l.Read(7, 1<<20, 30, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(t, viewBytes(t, v)); got[0].Offset != 7 {
		t.Fatalf("Read(7) starts at %d", got[0].Offset)
	}
	// Moving backwards does nothing.
	if err := l.DeleteRecordsBefore(3); err != nil || l.LogStartOffset() != 7 {
		t.Fatalf("DeleteRecordsBefore(3) = %v, log start %d", err, l.LogStartOffset())
	}
	l.Close()
	l = openLog(t, dir, Config{SegmentBytes: segBytes})
	if l.LogStartOffset() != 7 {
		t.Fatalf("log start after reopen %d", l.LogStartOffset())
	}
	// Up to the end: every sealed segment goes; the log is empty but keeps
	// its end offset.
	if err := l.DeleteRecordsBefore(30); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 30 || l.NumSegments() != 1 {
		t.Fatalf("log start %d, %d segments", l.LogStartOffset(), l.NumSegments())
	}
	if v, err := l.Read(30, 100, 30, true); err != nil || v.Len() != 0 {
		t.Fatalf("Read(30) = %v, %v", v, err)
	}
	l.Close()
	l = openLog(t, dir, Config{SegmentBytes: segBytes})
	if l.LogStartOffset() != 30 || l.LogEndOffset() != 30 {
		t.Fatalf("after reopen [%d, %d)", l.LogStartOffset(), l.LogEndOffset())
	}
}

func TestViewOutlivesDeletedSegment(t *testing.T) {
	l, _ := retentionLog(t, Config{Delete: true, RetentionAge: -1, RetentionBytes: 0})
	v, err := l.Read(0, 1<<20, l.LogEndOffset(), true)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l.EnforceRetention(t0); err != nil || n != 9 {
		t.Fatalf("EnforceRetention = %d, %v", n, err)
	}
	if _, err := os.Stat(segmentPath(l.Dir(), 0, logSuffix)); !os.IsNotExist(err) {
		t.Fatalf("segment 0 still on disk: %v", err)
	}
	got := decode(t, viewBytes(t, v))
	if len(got) != 3 || got[0].Offset != 0 || got[2].Value != "vr-0" {
		t.Fatalf("read from deleted segment: %v", got)
	}
	// A View also outlives Close.
	v, err = l.Read(27, 1<<20, l.LogEndOffset(), true)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if got := decode(t, viewBytes(t, v)); len(got) != 3 {
		t.Fatalf("read after Close: %v", got)
	}
}

func TestRetentionConcurrentWithReadsAndAppends(t *testing.T) {
	b := valueBatch(t, 0, "c", 1)
	l := openLog(t, t.TempDir(), Config{SegmentBytes: int64(4 * len(b)), Delete: true, RetentionAge: -1, RetentionBytes: int64(8 * len(b))})
	done := make(chan error, 1)
	go func() {
		defer close(done)
		for i := range 300 {
			if _, err := l.Append(valueBatch(t, int64(i), "c", 1), 0, t0); err != nil {
				done <- err
				return
			}
		}
	}()
	for running := true; running; {
		select {
		case err, ok := <-done:
			if ok {
				t.Fatal(err)
			}
			running = false
		default:
		}
		if _, err := l.EnforceRetention(t0); err != nil {
			t.Fatal(err)
		}
		start := l.LogStartOffset()
		v, err := l.Read(start, 1<<20, l.LogEndOffset(), true)
		if errors.Is(err, ErrOffsetOutOfRange) {
			continue // retention moved the start between the two calls
		}
		if err != nil {
			t.Fatal(err)
		}
		bs := make([]byte, v.Len())
		if err := v.ReadAt(bs); err != nil {
			t.Fatal(err)
		}
		v.Release()
		if len(bs) > 0 {
			if _, err := record.Validate(bs); err != nil {
				t.Fatal(err)
			}
		}
	}
	if l.Size() > int64(12*len(b)) {
		t.Errorf("size %d over the limit after retention", l.Size())
	}
	if got := readAll(t, l); len(got) == 0 || got[len(got)-1].Offset != 299 {
		t.Fatalf("tail %v", got[len(got)-1])
	}
	_ = fmt.Sprint
}

package commitlog

import (
	"errors"
	"slices"
	"testing"

	"github.com/fjord-io/fjord/internal/record"
)

func TestScanHeaders(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 300, IndexIntervalBytes: 1})
	var bases []int64
	for i := range 20 {
		bases = append(bases, mustAppend(t, l, valueBatch(t, t0.UnixMilli(), "s", 1+i%3), 1, t0).FirstOffset)
	}
	if l.NumSegments() < 3 {
		t.Fatalf("%d segments; the test wants several", l.NumSegments())
	}
	scan := func(from int64) []int64 {
		t.Helper()
		var got []int64
		err := l.ScanHeaders(from, func(h record.Header) error {
			got = append(got, h.BaseOffset)
			return nil
		})
		if err != nil {
			t.Fatalf("scan from %d: %v", from, err)
		}
		return got
	}
	leo := l.LogEndOffset()
	for from := int64(-1); from <= leo+1; from++ {
		var want []int64
		for i, b := range bases {
			last := leo - 1
			if i+1 < len(bases) {
				last = bases[i+1] - 1
			}
			if last >= from {
				want = append(want, b)
			}
		}
		if got := scan(from); !slices.Equal(got, want) {
			t.Fatalf("scan from %d: %v, want %v", from, got, want)
		}
	}

	// Retention moved the start: the scan starts there.
	if err := l.DeleteRecordsBefore(bases[5]); err != nil {
		t.Fatal(err)
	}
	if got := scan(0); len(got) == 0 || got[0] > bases[5] || got[len(got)-1] != bases[len(bases)-1] {
		t.Fatalf("scan after DeleteRecordsBefore: %v", got)
	}

	stop := errors.New("stop")
	n := 0
	err := l.ScanHeaders(0, func(record.Header) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("scan stopped by fn: %v after %d", err, n)
	}

	if base := l.ActiveSegmentBase(); base <= 0 || base > bases[len(bases)-1] {
		t.Fatalf("active segment base %d", base)
	}
	l.Close()
	if err := l.ScanHeaders(0, func(record.Header) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("scan of a closed log: %v", err)
	}
	if base := l.ActiveSegmentBase(); base != -1 {
		t.Fatalf("active segment base of a closed log: %d", base)
	}
}

func TestScanHeadersEmpty(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{})
	err := l.ScanHeaders(0, func(h record.Header) error {
		t.Errorf("header %+v in an empty log", h)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

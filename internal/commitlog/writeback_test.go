package commitlog

import (
	"strings"
	"testing"
	"time"
)

// TestEarlyWriteback checks that appends hand whole aligned ranges of the
// active segment to writeback as they pass writebackBytes, that the log
// reads back intact, and that a truncation moves the mark back.
func TestEarlyWriteback(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{})
	now := time.Unix(1700000000, 0)
	big := strings.Repeat("x", 60<<10)
	var n int
	for l.Size() < 3*writebackBytes+writebackBytes/2 {
		mustAppend(t, l, makeBatch(t, now.UnixMilli(), 0, [2]string{"", big}), 0, now)
		n++
	}
	active := func() *segment {
		l.mu.RLock()
		defer l.mu.RUnlock()
		return l.activeLocked()
	}
	s := active()
	for s.file.writingBack.Load() {
		time.Sleep(time.Millisecond)
	}
	l.wmu.Lock()
	wb, size := s.wbFrom, s.size
	l.wmu.Unlock()
	if wb%writebackAlign != 0 || wb > size || size-wb >= 2*writebackBytes {
		t.Fatalf("writeback mark %d for a segment of %d bytes", wb, size)
	}
	if got := len(readAll(t, l)); got != n {
		t.Fatalf("read %d records, want %d", got, n)
	}

	if err := l.TruncateTo(2); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, makeBatch(t, now.UnixMilli(), 0, [2]string{"", big}), 0, now)
	l.wmu.Lock()
	wb, size = s.wbFrom, s.size
	l.wmu.Unlock()
	if wb > size {
		t.Fatalf("after truncation: writeback mark %d beyond the segment's %d bytes", wb, size)
	}
	if got := len(readAll(t, l)); got != 3 {
		t.Fatalf("read %d records after truncation, want 3", got)
	}
}

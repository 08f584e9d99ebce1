package commitlog

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-io/fjord/internal/record"
)

// compactModel computes what compaction should keep from recs (all records
// of the log, offset order) given the records in sealed segments.
func compactModel(all []kv, sealedEnd int64, horizon int64) []kv {
	latest := map[string]int64{}
	for _, r := range all {
		if r.Key != "" {
			latest[r.Key] = r.Offset
		}
	}
	var out []kv
	for _, r := range all {
		if r.Offset >= sealedEnd || r.Key == "" {
			out = append(out, r)
			continue
		}
		if latest[r.Key] != r.Offset {
			continue
		}
		if r.Value == "" && r.TS < horizon {
			continue
		}
		out = append(out, r)
	}
	return out
}

// activeBase returns the base offset of the active segment.
func activeBase(l *Log) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.activeLocked().base
}

func TestCompact(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 700, IndexIntervalBytes: 64, Compact: true, DeleteRetention: time.Hour}
	l := openLog(t, dir, cfg)
	// 60 batches of 3 records over 8 keys, mixed codecs; some tombstones
	// and keyless records. Batch i has timestamps 1000i.. (ms since t0).
	for i := range 60 {
		kvs := make([][2]string, 3)
		for j := range kvs {
			n := i*3 + j
			key := fmt.Sprintf("k%d", n%8)
			val := fmt.Sprintf("v%d", n)
			switch {
			case n%11 == 0:
				key = ""
			case n%7 == 0:
				val = "" // tombstone
			}
			kvs[j] = [2]string{key, val}
		}
		ts := t0.UnixMilli() + int64(i)*1000
		mustAppend(t, l, makeBatch(t, ts, record.Codec(i%5), kvs...), 0, t0)
	}
	if l.NumSegments() < 5 {
		t.Fatalf("%d segments", l.NumSegments())
	}
	all := readAll(t, l)
	sizeBefore := l.Size()
	// Tombstones with timestamps before t0+30s are old enough to drop.
	now := t0.Add(time.Hour + 30*time.Second)
	if err := l.Compact(now); err != nil {
		t.Fatal(err)
	}
	want := compactModel(all, activeBase(l), t0.UnixMilli()+30_000)
	got := readAll(t, l)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("after compaction (-want +got):\n%s", diff)
	}
	if len(got) >= len(all) || l.Size() >= sizeBefore {
		t.Fatalf("compaction removed nothing: %d of %d records, %d of %d bytes", len(got), len(all), l.Size(), sizeBefore)
	}
	if l.LogStartOffset() != 0 || l.LogEndOffset() != 180 {
		t.Fatalf("offsets [%d, %d)", l.LogStartOffset(), l.LogEndOffset())
	}
	// Rewritten batches keep their offsets range and codec.
	for off := int64(0); off < l.LogEndOffset(); off++ {
		v, err := l.Read(off, 1, l.LogEndOffset(), true)
		if err != nil {
			t.Fatal(err)
		}
		b := viewBytes(t, v)
		hs, err := record.Validate(b)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		h := hs[0]
		if h.BaseOffset%3 != 0 || h.LastOffsetDelta != 2 || h.Codec() != record.Codec(h.BaseOffset/3%5) {
			t.Fatalf("batch at %d: %+v", off, h)
		}
		if h.LastOffset() < off {
			t.Fatalf("Read(%d) gave batch ending at %d", off, h.LastOffset())
		}
	}
	// Idempotent.
	if err := l.Compact(now); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, readAll(t, l)); diff != "" {
		t.Fatalf("after second compaction (-want +got):\n%s", diff)
	}
	// Readable after reopen, indexes included.
	l.Close()
	l = openLog(t, dir, cfg)
	if diff := cmp.Diff(want, readAll(t, l)); diff != "" {
		t.Fatalf("after reopen (-want +got):\n%s", diff)
	}
	// Later, every old tombstone goes.
	if err := l.Compact(t0.Add(10 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	want = compactModel(all, activeBase(l), t0.UnixMilli()+10*3600*1000)
	if diff := cmp.Diff(want, readAll(t, l)); diff != "" {
		t.Fatalf("after dropping all tombstones (-want +got):\n%s", diff)
	}
}

func TestCompactDisabledAndSingleSegment(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 200})
	for i := range 10 {
		mustAppend(t, l, makeBatch(t, int64(i), record.CodecNone, [2]string{"same", fmt.Sprint(i)}), 0, t0)
	}
	before := readAll(t, l)
	if err := l.Compact(t0); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, readAll(t, l)); diff != "" {
		t.Fatalf("Compact without Compact set changed the log:\n%s", diff)
	}
	l2 := openLog(t, t.TempDir(), Config{Compact: true})
	mustAppend(t, l2, makeBatch(t, 0, record.CodecNone, [2]string{"a", "1"}, [2]string{"a", "2"}), 0, t0)
	if err := l2.Compact(t0); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l2); len(got) != 2 {
		t.Fatalf("the active segment was compacted: %v", got)
	}
}

func TestCompactEmptiedSegments(t *testing.T) {
	// Every record in the sealed segments is superseded by the last one.
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 150, Compact: true}
	l := openLog(t, dir, cfg)
	for i := range 12 {
		mustAppend(t, l, makeBatch(t, int64(i), record.CodecNone, [2]string{"k", fmt.Sprint(i)}), 0, t0)
	}
	segs := l.NumSegments()
	if err := l.Compact(t0); err != nil {
		t.Fatal(err)
	}
	// The active segment (offsets 10 and 11) is never compacted.
	got := readAll(t, l)
	if len(got) != 2 || got[0].Offset != 10 {
		t.Fatalf("after compaction: %v", got)
	}
	// Emptied segments are removed except the first, which holds the start.
	if n := l.NumSegments(); n != 2 || segs <= 2 {
		t.Fatalf("%d segments (was %d), want 2", n, segs)
	}
	if l.LogStartOffset() != 0 {
		t.Fatalf("log start %d", l.LogStartOffset())
	}
	for off := range int64(11) {
		v, err := l.Read(off, 1000, 12, false)
		if err != nil {
			t.Fatal(err)
		}
		if r := decode(t, viewBytes(t, v)); len(r) != 2 || r[0].Offset != 10 {
			t.Fatalf("Read(%d) = %v", off, r)
		}
	}
	l.Close()
	l = openLog(t, dir, cfg)
	if got := readAll(t, l); len(got) != 2 || l.LogStartOffset() != 0 || l.LogEndOffset() != 12 {
		t.Fatalf("after reopen: %v, [%d, %d)", got, l.LogStartOffset(), l.LogEndOffset())
	}
	if info := mustAppend(t, l, valueBatch(t, 0, "x", 1), 0, t0); info.FirstOffset != 12 {
		t.Fatalf("append at %d", info.FirstOffset)
	}
}

func TestCompactionLimit(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 150, Compact: true})
	for i := range 8 {
		mustAppend(t, l, makeBatch(t, int64(i), record.CodecNone, [2]string{"k", fmt.Sprint(i)}), 0, t0)
	}
	// Only offsets below 3 count: 0 and 1 are superseded by 2, and 2 is kept
	// even though later records exist.
	l.SetCompactionLimit(3)
	if err := l.Compact(t0); err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for _, r := range readAll(t, l) {
		offs = append(offs, r.Offset)
	}
	if diff := cmp.Diff([]int64{2, 3, 4, 5, 6, 7}, offs); diff != "" {
		t.Fatalf("offsets (-want +got):\n%s", diff)
	}
}

func TestCompactViewOutlivesSwap(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 300, Compact: true})
	for i := range 12 {
		mustAppend(t, l, makeBatch(t, int64(i), record.CodecNone, [2]string{"k", fmt.Sprint(i)}), 0, t0)
	}
	v, err := l.Read(0, 1<<20, l.LogEndOffset(), true)
	if err != nil {
		t.Fatal(err)
	}
	before := l.NumSegments()
	if err := l.Compact(t0); err != nil {
		t.Fatal(err)
	}
	got := decode(t, viewBytes(t, v))
	if len(got) < 2 || got[0].Offset != 0 {
		t.Fatalf("old view after compaction: %v (segments %d)", got, before)
	}
}

func TestCompactConcurrent(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 1024, IndexIntervalBytes: 128, Compact: true})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 400 {
			b := makeBatch(t, int64(i), record.CodecNone, [2]string{fmt.Sprint("k", i%10), fmt.Sprint(i)})
			if _, err := l.Append(b, 0, t0); err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range 20 {
			if err := l.Compact(t0); err != nil {
				errs <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			leo := l.LogEndOffset()
			for off := int64(0); off < leo; {
				v, err := l.Read(off, 4096, leo, true)
				if err != nil {
					errs <- err
					return
				}
				if v.Len() == 0 {
					v.Release()
					break
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
				off = hs[len(hs)-1].NextOffset()
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-readerDone
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if err := l.Compact(t0); err != nil {
		t.Fatal(err)
	}
	// Each key's latest value survives.
	last := map[string]string{}
	for _, r := range readAll(t, l) {
		last[r.Key] = r.Value
	}
	var keys []string
	for k := range last {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		n := 390 + i
		if want := fmt.Sprint(n); k != fmt.Sprint("k", n%10) || last[k] != want {
			t.Errorf("key %s = %s, want %s", k, last[k], want)
		}
	}
}

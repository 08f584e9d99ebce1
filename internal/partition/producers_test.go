package partition

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fjord-io/fjord/internal/commitlog"
	"github.com/fjord-io/fjord/internal/record"
	"github.com/fjord-io/fjord/internal/topicconfig"
)

var t0 = time.UnixMilli(1_700_000_000_000)

// batch builds a batch of n records from producer pid at epoch, starting at
// sequence seq, timestamped ts.
func batch(t testing.TB, pid int64, epoch int16, seq int32, n int, ts int64) []byte {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{OffsetDelta: int32(i), Value: fmt.Appendf(nil, "p%d-e%d-s%d", pid, epoch, int64(seq)+int64(i))}
	}
	b, err := record.Build(record.Header{
		LastOffsetDelta: int32(n - 1),
		FirstTimestamp:  ts,
		MaxTimestamp:    ts,
		ProducerID:      pid,
		ProducerEpoch:   epoch,
		BaseSequence:    seq,
	}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// open opens the partition whose log is in dir; the test's cleanup closes it.
func open(t testing.TB, dir string, cfg commitlog.Config) *Partition {
	t.Helper()
	l, err := commitlog.Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New("t", 0, l, 1, topicconfig.Resolve(nil, nil))
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// step is one append and what it must give: an error wrapping wantErr, or
// the first offset and whether it is a duplicate.
type step struct {
	name    string
	batch   []byte
	wantErr error
	first   int64
	dup     bool
}

func run(t *testing.T, p *Partition, steps []step) {
	t.Helper()
	for _, s := range steps {
		leo := p.Log().LogEndOffset()
		info, err := p.AppendLeader(s.batch, t0)
		switch {
		case s.wantErr != nil:
			if !errors.Is(err, s.wantErr) {
				t.Fatalf("%s: err %v, want %v", s.name, err, s.wantErr)
			}
			if got := p.Log().LogEndOffset(); got != leo {
				t.Fatalf("%s: failed append moved the log end offset from %d to %d", s.name, leo, got)
			}
		case err != nil:
			t.Fatalf("%s: %v", s.name, err)
		case info.FirstOffset != s.first || info.Duplicate != s.dup:
			t.Fatalf("%s: first offset %d duplicate %v, want %d %v", s.name, info.FirstOffset, info.Duplicate, s.first, s.dup)
		case s.dup && p.Log().LogEndOffset() != leo:
			t.Fatalf("%s: duplicate appended (log end %d -> %d)", s.name, leo, p.Log().LogEndOffset())
		}
	}
}

func TestSequenceRules(t *testing.T) {
	p := open(t, t.TempDir(), commitlog.Config{})
	plain := batch(t, -1, -1, -1, 2, t0.UnixMilli())
	twoBatches := append(batch(t, 7, 0, 0, 1, 0), batch(t, 7, 0, 1, 1, 0)...)
	run(t, p, []step{
		{name: "first batch", batch: batch(t, 7, 0, 0, 3, 0), first: 0},
		{name: "retry of it", batch: batch(t, 7, 0, 0, 3, 0), first: 0, dup: true},
		{name: "next batch", batch: batch(t, 7, 0, 3, 2, 0), first: 3},
		{name: "retry of an older cached batch", batch: batch(t, 7, 0, 0, 3, 0), first: 0, dup: true},
		{name: "no producer id", batch: plain, first: 5},
		{name: "gap", batch: batch(t, 7, 0, 6, 1, 0), wantErr: ErrOutOfOrderSequence},
		{name: "overlap that is no retry", batch: batch(t, 7, 0, 3, 3, 0), wantErr: ErrOutOfOrderSequence},
		{name: "sequence below the last", batch: batch(t, 7, 0, 1, 1, 0), wantErr: ErrOutOfOrderSequence},
		{name: "new epoch not at 0", batch: batch(t, 7, 1, 5, 1, 0), wantErr: ErrOutOfOrderSequence},
		{name: "new epoch at 0", batch: batch(t, 7, 1, 0, 1, 0), first: 7},
		{name: "fenced epoch", batch: batch(t, 7, 0, 5, 1, 0), wantErr: ErrInvalidProducerEpoch},
		{name: "old epoch's batch is no retry now", batch: batch(t, 7, 0, 3, 2, 0), wantErr: ErrInvalidProducerEpoch},
		{name: "unknown producer at any sequence", batch: batch(t, 8, 3, 42, 1, 0), first: 8},
		{name: "it continues", batch: batch(t, 8, 3, 43, 1, 0), first: 9},
		{name: "two batches of a producer", batch: twoBatches, wantErr: record.ErrInvalidRecord},
		{name: "no sequence number", batch: batch(t, 9, 0, -1, 1, 0), wantErr: record.ErrInvalidRecord},
	})
	if got := p.HighWatermark(); got != 10 {
		t.Errorf("high watermark %d, want 10", got)
	}
}

func TestDuplicateWindowIsFiveBatches(t *testing.T) {
	p := open(t, t.TempDir(), commitlog.Config{})
	var steps []step
	for i := range 6 {
		steps = append(steps, step{name: fmt.Sprint("batch ", i), batch: batch(t, 1, 0, int32(2*i), 2, 0), first: int64(2 * i)})
	}
	steps = append(steps,
		step{name: "retry of the evicted first batch", batch: batch(t, 1, 0, 0, 2, 0), wantErr: ErrOutOfOrderSequence},
		step{name: "retry of the oldest cached batch", batch: batch(t, 1, 0, 2, 2, 0), first: 2, dup: true},
		step{name: "retry of the latest", batch: batch(t, 1, 0, 10, 2, 0), first: 10, dup: true},
	)
	run(t, p, steps)
}

func TestSequenceWraparound(t *testing.T) {
	p := open(t, t.TempDir(), commitlog.Config{})
	run(t, p, []step{
		{name: "up to MaxInt32", batch: batch(t, 1, 0, math.MaxInt32-2, 3, 0), first: 0},
		{name: "wraps to 0", batch: batch(t, 1, 0, 0, 2, 0), first: 3},
		{name: "straddling batch", batch: batch(t, 2, 0, math.MaxInt32-1, 4, 0), first: 5},
		{name: "retry of the straddling batch", batch: batch(t, 2, 0, math.MaxInt32-1, 4, 0), first: 5, dup: true},
		{name: "continues after the wrap", batch: batch(t, 2, 0, 2, 1, 0), first: 9},
		{name: "not at MaxInt32+1", batch: batch(t, 1, 0, 3, 1, 0), wantErr: ErrOutOfOrderSequence},
	})
	if got := lastSequence(record.Header{BaseSequence: math.MaxInt32, LastOffsetDelta: 0}); got != math.MaxInt32 {
		t.Errorf("last sequence of a 1-record batch at MaxInt32: %d", got)
	}
}

// TestConcurrentRetries checks that copies of one batch produced at once are
// appended once and all answered with its offset.
func TestConcurrentRetries(t *testing.T) {
	p := open(t, t.TempDir(), commitlog.Config{})
	const n = 16
	for round := range 20 {
		b := batch(t, 5, 0, int32(round*3), 3, 0)
		firsts := make([]int64, n)
		dups := make([]bool, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				// Each produce brings its own copy; the log rewrites it.
				info, err := p.AppendLeader(append([]byte(nil), b...), t0)
				if err != nil {
					t.Error(err)
				}
				firsts[i], dups[i] = info.FirstOffset, info.Duplicate
			})
			// Appends without a producer id run alongside.
			wg.Go(func() {
				if _, err := p.AppendLeader(batch(t, -1, -1, -1, 1, 0), t0); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		appended := 0
		for i := range n {
			if firsts[i] != firsts[0] {
				t.Fatalf("round %d: first offsets %v differ", round, firsts)
			}
			if !dups[i] {
				appended++
			}
		}
		if appended != 1 {
			t.Fatalf("round %d: appended %d times", round, appended)
		}
	}
	if got, want := p.Log().LogEndOffset(), int64(20*3+20*n); got != want {
		t.Fatalf("log end offset %d, want %d", got, want)
	}
}

// produceSome appends three batches of producer 1 (sequences 0-8, offsets
// 0-8) and one of producer 2 at epoch 4 (sequence 100-101, offsets 9-10).
func produceSome(t *testing.T, p *Partition) {
	t.Helper()
	run(t, p, []step{
		{name: "p1 a", batch: batch(t, 1, 0, 0, 3, 0), first: 0},
		{name: "p1 b", batch: batch(t, 1, 0, 3, 3, 0), first: 3},
		{name: "p1 c", batch: batch(t, 1, 0, 6, 3, 0), first: 6},
		{name: "p2", batch: batch(t, 2, 4, 100, 2, 0), first: 9},
	})
}

// checkRestored checks that p knows what produceSome did.
func checkRestored(t *testing.T, p *Partition) {
	t.Helper()
	leo := p.Log().LogEndOffset()
	run(t, p, []step{
		{name: "p1 retry", batch: batch(t, 1, 0, 3, 3, 0), first: 3, dup: true},
		{name: "p1 gap", batch: batch(t, 1, 0, 10, 1, 0), wantErr: ErrOutOfOrderSequence},
		{name: "p2 fenced", batch: batch(t, 2, 3, 102, 1, 0), wantErr: ErrInvalidProducerEpoch},
		{name: "p2 retry", batch: batch(t, 2, 4, 100, 2, 0), first: 9, dup: true},
		{name: "p1 next", batch: batch(t, 1, 0, 9, 1, 0), first: leo},
	})
}

func TestRestoreByScanningTheLog(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir, commitlog.Config{SegmentBytes: 200}) // a few batches per segment
	produceSome(t, p)
	if n := p.Log().NumSegments(); n < 2 {
		t.Fatalf("%d segments; the test wants several", n)
	}
	// A crash: the log closes, no snapshot is written.
	if err := p.Log().Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, snapshotFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("snapshot file: %v, want none", err)
	}
	checkRestored(t, open(t, dir, commitlog.Config{SegmentBytes: 200}))
}

func TestRestoreFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir, commitlog.Config{})
	produceSome(t, p)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	ps, off, ok := readSnapshot(dir)
	if !ok || off != 11 || len(ps) != 2 || len(ps[1].Batches) != 3 || ps[2].Epoch != 4 {
		t.Fatalf("snapshot: ok %v, offset %d, producers %v", ok, off, ps)
	}
	checkRestored(t, open(t, dir, commitlog.Config{}))
}

// TestRestoreFromSnapshotAndTail checks that batches appended after the
// snapshot was written (then a crash) are replayed on top of it.
func TestRestoreFromSnapshotAndTail(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir, commitlog.Config{})
	run(t, p, []step{{name: "p1 a", batch: batch(t, 1, 0, 0, 3, 0), first: 0}})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = open(t, dir, commitlog.Config{})
	run(t, p, []step{
		{name: "p1 b", batch: batch(t, 1, 0, 3, 3, 0), first: 3},
		{name: "p1 c", batch: batch(t, 1, 0, 6, 3, 0), first: 6},
		{name: "p2", batch: batch(t, 2, 4, 100, 2, 0), first: 9},
	})
	if err := p.Log().Close(); err != nil { // crash: the snapshot stays at offset 3
		t.Fatal(err)
	}
	if _, off, _ := readSnapshot(dir); off != 3 {
		t.Fatalf("snapshot offset %d, want 3", off)
	}
	checkRestored(t, open(t, dir, commitlog.Config{}))
}

// TestSnapshotIsTrusted checks that the state comes from the snapshot, not
// from a scan, when there is a snapshot, and that one beyond the log end is
// ignored.
func TestSnapshotIsTrusted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset int64
		known  bool
	}{
		{"at the log end", 3, true},
		{"past the log end", 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := open(t, dir, commitlog.Config{})
			run(t, p, []step{{name: "p1", batch: batch(t, 1, 0, 0, 3, 0), first: 0}})
			p.Log().Close()
			// Producer 9 is in no batch of the log.
			ps := producerState{9: {Epoch: 2, Batches: []batchMeta{{FirstSeq: 0, LastSeq: 4, FirstOffset: 0, LastOffset: 2}}}}
			data, err := json.Marshal(ps.snapshot(tc.offset))
			if err != nil {
				t.Fatal(err)
			}
			if err := writeSnapshot(dir, data); err != nil {
				t.Fatal(err)
			}
			p = open(t, dir, commitlog.Config{})
			_, err = p.AppendLeader(batch(t, 9, 1, 5, 1, 0), t0)
			if tc.known && !errors.Is(err, ErrInvalidProducerEpoch) {
				t.Errorf("producer of the snapshot: %v, want %v", err, ErrInvalidProducerEpoch)
			}
			if !tc.known && err != nil {
				t.Errorf("producer of an ignored snapshot: %v, want it unknown", err)
			}
			// Producer 1 is known only from a scan of the whole log: a
			// trusted snapshot omits it and nothing follows its offset.
			_, err = p.AppendLeader(batch(t, 1, 0, 7, 1, 0), t0)
			if tc.known && err != nil {
				t.Errorf("producer 1 with a snapshot that omits it: %v, want it unknown", err)
			}
			if !tc.known && !errors.Is(err, ErrOutOfOrderSequence) {
				t.Errorf("producer 1 after a full scan: %v, want %v", err, ErrOutOfOrderSequence)
			}
		})
	}
}

func TestCorruptSnapshotFallsBackToScan(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir, commitlog.Config{})
	produceSome(t, p)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, snapshotFile), []byte(`{"version":1,"offset":`), 0o644); err != nil {
		t.Fatal(err)
	}
	checkRestored(t, open(t, dir, commitlog.Config{}))
}

func TestMaintainProducers(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir, commitlog.Config{SegmentBytes: 200})
	ts := t0.UnixMilli()
	run(t, p, []step{
		{name: "old", batch: batch(t, 1, 0, 0, 1, ts-2*time.Hour.Milliseconds()), first: 0},
		{name: "recent", batch: batch(t, 2, 0, 0, 1, ts), first: 1},
	})
	if err := p.MaintainProducers(t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	// The log has not rolled: no snapshot yet.
	if _, err := os.Stat(filepath.Join(dir, snapshotFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("snapshot without a roll: %v", err)
	}
	run(t, p, []step{
		{name: "expired producer is unknown", batch: batch(t, 1, 0, 5, 1, ts), first: 2},
		{name: "recent producer is not", batch: batch(t, 2, 0, 5, 1, ts), wantErr: ErrOutOfOrderSequence},
	})
	for i := range 3 {
		run(t, p, []step{{name: "roll", batch: batch(t, 2, 0, int32(1+i), 1, ts), first: int64(3 + i)}})
	}
	if p.Log().NumSegments() < 2 {
		t.Fatal("no roll")
	}
	if err := p.MaintainProducers(t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	ps, off, ok := readSnapshot(dir)
	if !ok || off != p.Log().LogEndOffset() || len(ps) != 2 {
		t.Fatalf("snapshot after a roll: ok %v offset %d producers %d", ok, off, len(ps))
	}
}

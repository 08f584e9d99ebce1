package commitlog

import (
	"fmt"
	"testing"

	"github.com/fjord-io/fjord/internal/record"
)

// benchBatch builds an uncompressed batch of about size bytes made of 1 KiB records.
func benchBatch(b *testing.B, size int) []byte {
	b.Helper()
	n := max(size/1024, 1)
	recs := make([]record.Record, n)
	val := make([]byte, 1000)
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	for i := range recs {
		recs[i] = record.Record{OffsetDelta: int32(i), Key: []byte(fmt.Sprintf("key-%06d", i)), Value: val}
	}
	batch, err := record.Build(record.Header{LastOffsetDelta: int32(n - 1), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
	if err != nil {
		b.Fatal(err)
	}
	return batch
}

func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{16 << 10, 256 << 10, 1 << 20} {
		for _, flush := range []int64{0, 1} {
			name := fmt.Sprintf("%dKiB", size>>10)
			if flush == 1 {
				name += "/fsync"
			}
			b.Run(name, func(b *testing.B) {
				if flush == 1 && size < 1<<20 {
					b.Skip("fsync per append is measured with 1 MiB batches only")
				}
				batch := benchBatch(b, size)
				l, err := Open(b.TempDir(), Config{SegmentBytes: 256 << 20, FlushMessages: flush})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				b.SetBytes(int64(len(batch)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := l.Append(batch, 1, t0); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				// Keep the disk bounded across runs.
				l.SetConfig(Config{SegmentBytes: 256 << 20, Delete: true, RetentionAge: -1, RetentionBytes: 0})
				l.EnforceRetention(t0)
			})
		}
	}
}

func BenchmarkRead(b *testing.B) {
	for _, tc := range []struct {
		batch, fetch int
	}{
		{16 << 10, 1 << 20},
		{1 << 10, 1 << 20},
		{1 << 20, 1 << 20},
	} {
		b.Run(fmt.Sprintf("batch=%dKiB/fetch=%dKiB", tc.batch>>10, tc.fetch>>10), func(b *testing.B) {
			batch := benchBatch(b, tc.batch)
			l, err := Open(b.TempDir(), Config{SegmentBytes: 64 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			for l.Size() < 256<<20 {
				if _, err := l.Append(batch, 1, t0); err != nil {
					b.Fatal(err)
				}
			}
			leo := l.LogEndOffset()
			// A high watermark below the end makes Read find the end by index.
			hw := leo - 1
			buf := make([]byte, tc.fetch+len(batch))
			var bytes int64
			b.ReportAllocs()
			b.ResetTimer()
			off := int64(0)
			for i := 0; i < b.N; i++ {
				if off >= hw {
					off = 0
				}
				v, err := l.Read(off, tc.fetch, hw, true)
				if err != nil {
					b.Fatal(err)
				}
				if err := v.ReadAt(buf[:v.Len()]); err != nil {
					b.Fatal(err)
				}
				bytes += int64(v.Len())
				off += int64(v.Len()/len(batch)) * int64(max(tc.batch/1024, 1))
				if v.Len() == 0 {
					off = 0
				}
				v.Release()
			}
			b.StopTimer()
			b.SetBytes(bytes / int64(b.N))
		})
	}
}

// BenchmarkReadLocate measures Read without copying the data, the cost a
// sendfile-based fetch pays per request.
func BenchmarkReadLocate(b *testing.B) {
	batch := benchBatch(b, 16<<10)
	l, err := Open(b.TempDir(), Config{SegmentBytes: 16 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	for l.Size() < 128<<20 {
		if _, err := l.Append(batch, 1, t0); err != nil {
			b.Fatal(err)
		}
	}
	leo := l.LogEndOffset()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off := int64(i*7919) % leo
		v, err := l.Read(off, 1<<20, leo-1, true)
		if err != nil {
			b.Fatal(err)
		}
		v.Release()
	}
}

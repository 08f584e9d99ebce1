package partition

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/fjord-io/fjord/internal/commitlog"
	"github.com/fjord-io/fjord/internal/record"
)

// BenchmarkAppendLeader compares appends of batches without a producer id
// with those of idempotent producers, which also take the partition's
// producer lock and check and record sequence numbers. Each iteration
// rewrites the batch's sequence number and CRC, for both kinds alike.
func BenchmarkAppendLeader(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10} {
		for _, idem := range []bool{false, true} {
			name := fmt.Sprintf("%dKiB/plain", size>>10)
			if idem {
				name = fmt.Sprintf("%dKiB/idempotent", size>>10)
			}
			b.Run(name, func(b *testing.B) {
				p := open(b, b.TempDir(), commitlog.Config{SegmentBytes: 256 << 20})
				pid, epoch := int64(-1), int16(-1)
				if idem {
					pid, epoch = 1, 0
				}
				n := max(size/100, 1)
				batch := batch(b, pid, epoch, 0, n, t0.UnixMilli())
				b.SetBytes(int64(len(batch)))
				b.ReportAllocs()
				seq := int32(0)
				for b.Loop() {
					if idem {
						binary.BigEndian.PutUint32(batch[53:], uint32(seq))
						seq += int32(n)
					}
					binary.BigEndian.PutUint32(batch[17:], record.Checksum(batch))
					if _, err := p.AppendLeader(batch, t0); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

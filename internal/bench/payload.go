package bench

import (
	"encoding/binary"
	"math/rand/v2"
	"time"
)

// payloadPoolSize is the size of the random buffer record values are cut
// from. It is larger than any produce batch (1 MiB by default), so no batch
// holds the same bytes twice and the records stay incompressible even
// under a compression codec with a long window.
const payloadPoolSize = 8 << 20

// stampSize is the number of bytes at the head of each value that carry
// the record's intended send time.
const stampSize = 8

// payloads cuts record values from one pre-generated random buffer. Each
// value starts with a send-time stamp (see stamp) so the consumer can
// measure end-to-end latency. The buffer is read-only after newPayloads;
// each producer has its own payloads cursor.
type payloads struct {
	buf  []byte
	size int
	off  int
}

// newRandom returns n bytes from a ChaCha8 stream seeded by seed.
func newRandom(n int, seed uint64) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	r := rand.NewChaCha8(s)
	b := make([]byte, n)
	_, _ = r.Read(b) // ChaCha8.Read never fails
	return b
}

// newPayloads returns a cursor over buf that cuts values of size bytes,
// starting at off.
func newPayloads(buf []byte, size, off int) *payloads {
	return &payloads{buf: buf, size: size, off: off % (len(buf) - size)}
}

// fill copies the next size random bytes into dst (which must have length
// size) and stamps it with t.
func (p *payloads) fill(dst []byte, t int64) {
	copy(dst, p.buf[p.off:p.off+p.size])
	p.off += p.size
	if p.off+p.size > len(p.buf) {
		p.off = (p.off + 4099) % (len(p.buf) - p.size) // shift the alignment each lap
	}
	binary.LittleEndian.PutUint64(dst, uint64(t))
}

// clock measures time in nanoseconds since its base on the monotonic clock.
// Producers and consumers in one process share a clock, so a stamp written
// by one can be compared to the other's reading.
type clock struct{ base time.Time }

func (c clock) since(t time.Time) int64 { return int64(t.Sub(c.base)) }

// stamp returns the stamp carried by v, and false if v is too short to hold
// one.
func stamp(v []byte) (int64, bool) {
	if len(v) < stampSize {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(v)), true
}

package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sets the histogram's precision: each power-of-two range of values
// is split into 2^(subBits-1) equal buckets, so a recorded value is known to
// within 1/2^(subBits-1) of itself (about 1.6%). Values below 2^subBits are
// counted exactly.
const subBits = 7

const (
	subCount   = 1 << subBits                     // values below this are exact
	subHalf    = subCount / 2                     // buckets per power of two above that
	numBuckets = (64-subBits+1)*subHalf + subHalf // covers every uint64
)

// Histogram counts non-negative durations in log-linear buckets, in the
// manner of an HDR histogram: constant relative precision over the whole
// range in a fixed 30 KiB. The zero value is empty and ready to use.
//
// Record is safe for concurrent use; Quantile, Count, Max and Mean may run
// concurrently with Record and then see some recent samples but not others.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Uint64
}

// bucketOf returns the index of the bucket that counts v.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits // >= 1
	return shift*subHalf + int(v>>shift)
}

// bucketHigh returns the largest value counted by bucket i.
func bucketHigh(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := i/subHalf - 1
	top := uint64(i - shift*subHalf)
	return (top+1)<<shift - 1
}

// Record adds one sample. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count returns the number of samples recorded.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max returns the largest sample recorded, exactly, or 0 if none.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean returns the arithmetic mean of the samples, or 0 if none.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the smallest value v such that at least fraction q of the
// samples are at most v, reported as the upper edge of v's bucket (so never
// below the true quantile) but never above Max. It returns 0 if the
// histogram is empty. q is clamped to [0, 1].
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(bucketHigh(i), h.max.Load()))
		}
	}
	return h.Max()
}

// Merge adds every sample of o into h. o must not be recorded into
// concurrently.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	v := o.max.Load()
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Latency is a summary of a Histogram, in milliseconds for reports.
type Latency struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary returns h's count, mean, p50, p99, p99.9 and max.
func (h *Histogram) Summary() Latency {
	return Latency{
		Count: h.Count(),
		Mean:  ms(h.Mean()),
		P50:   ms(h.Quantile(0.50)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.Max()),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

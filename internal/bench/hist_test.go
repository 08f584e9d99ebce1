package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	// Bucket bounds are contiguous: each bucket starts one past the
	// previous one's high edge, and every value maps into the bucket whose
	// range holds it.
	for i := 1; i < numBuckets; i++ {
		low := bucketHigh(i-1) + 1
		if got := bucketOf(low); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", low, got, i)
		}
		if got := bucketOf(bucketHigh(i)); got != i {
			t.Fatalf("bucketOf(high %d) = %d, want %d", bucketHigh(i), got, i)
		}
	}
	if bucketHigh(numBuckets-1) != ^uint64(0) {
		t.Fatalf("last bucket ends at %d, want max uint64", bucketHigh(numBuckets-1))
	}
}

func TestBucketPrecision(t *testing.T) {
	for i := subCount; i < numBuckets; i++ {
		low, high := bucketHigh(i-1)+1, bucketHigh(i)
		if rel := float64(high-low) / float64(low); rel > 1.0/subHalf {
			t.Fatalf("bucket %d [%d, %d] is %.4f wide, want at most %.4f", i, low, high, rel, 1.0/subHalf)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram reports non-zero")
	}
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]time.Duration, 100000)
	for i := range vals {
		// log-uniform over 1µs..1s
		vals[i] = time.Duration(float64(time.Microsecond) * math.Pow(1e6, r.Float64()))
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
		want := vals[max(int(math.Ceil(q*float64(len(vals))))-1, 0)]
		got := h.Quantile(q)
		if got < want || float64(got-want) > float64(want)/subHalf {
			t.Errorf("Quantile(%v) = %v, want %v within +%.1f%%", q, got, want, 100.0/subHalf)
		}
	}
	if h.Max() != vals[len(vals)-1] {
		t.Errorf("Max = %v, want %v", h.Max(), vals[len(vals)-1])
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("Count = %d, want %d", h.Count(), len(vals))
	}
}

func TestHistogramSmallValuesExact(t *testing.T) {
	var h Histogram
	for v := range 100 {
		h.Record(time.Duration(v + 1))
	}
	h.Record(-5) // counts as zero
	if got := h.Quantile(0.5); got != 50 {
		t.Errorf("p50 = %d, want 50", got)
	}
	if got := h.Quantile(0); got != 0 {
		t.Errorf("p0 = %d, want 0", got)
	}
	if got := h.Mean(); got != 5050/101 {
		t.Errorf("mean = %d, want %d", got, 5050/101)
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b Histogram
	for i := range 1000 {
		a.Record(time.Duration(i) * time.Microsecond)
		b.Record(time.Duration(i+1000) * time.Microsecond)
	}
	a.Merge(&b)
	if a.Count() != 2000 || a.Max() != 1999*time.Microsecond {
		t.Fatalf("merged count %d max %v", a.Count(), a.Max())
	}
	if p50 := a.Quantile(0.5); p50 < 999*time.Microsecond || p50 > 1015*time.Microsecond {
		t.Errorf("merged p50 = %v, want ~999µs", p50)
	}
}

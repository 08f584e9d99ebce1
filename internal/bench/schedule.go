package bench

import (
	"math"
	"time"
)

// schedule is an open-loop send schedule: send i of a producer is due at
// start + (i*stride + phase)/rate seconds, whatever happened to earlier
// sends. Latency is measured from that intended time, so a stalled broker
// is charged for every send it delayed (no coordinated omission).
//
// With stride = the number of producers and phase = a producer's index, the
// producers' schedules interleave into one schedule at the total rate.
type schedule struct {
	start  time.Time
	rate   float64 // sends per second across all producers; > 0
	stride int64   // >= 1
	phase  int64   // in [0, stride)
}

// at returns the intended time of send i.
func (s schedule) at(i int64) time.Time {
	slot := float64(i*s.stride + s.phase)
	return s.start.Add(time.Duration(slot / s.rate * float64(time.Second)))
}

// due returns how many sends are due at now: the number of i >= 0 with
// at(i) <= now.
func (s schedule) due(now time.Time) int64 {
	elapsed := now.Sub(s.start)
	if elapsed < 0 {
		return 0
	}
	// Slots due: floor(elapsed*rate)+1; this producer owns slots
	// phase, phase+stride, ...
	slots := int64(math.Floor(elapsed.Seconds()*s.rate)) + 1
	if slots <= s.phase {
		return 0
	}
	n := (slots-s.phase-1)/s.stride + 1
	// Guard against float rounding disagreeing with at().
	for n > 0 && s.at(n-1).After(now) {
		n--
	}
	for !s.at(n).After(now) {
		n++
	}
	return n
}

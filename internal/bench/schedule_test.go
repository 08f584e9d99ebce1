package bench

import (
	"testing"
	"time"
)

func TestScheduleAt(t *testing.T) {
	start := time.Unix(1000, 0)
	s := schedule{start: start, rate: 1000, stride: 1}
	for i, want := range map[int64]time.Duration{0: 0, 1: time.Millisecond, 1500: 1500 * time.Millisecond} {
		if got := s.at(i).Sub(start); got != want {
			t.Errorf("at(%d) = start+%v, want start+%v", i, got, want)
		}
	}
}

func TestScheduleDue(t *testing.T) {
	start := time.Unix(1000, 0)
	s := schedule{start: start, rate: 1000, stride: 1}
	for _, tc := range []struct {
		after time.Duration
		want  int64
	}{
		{-time.Second, 0},
		{0, 1}, // send 0 is due at start
		{999 * time.Microsecond, 1},
		{time.Millisecond, 2},
		{time.Second, 1001},
		{10*time.Second + 500*time.Microsecond, 10001},
	} {
		if got := s.due(start.Add(tc.after)); got != tc.want {
			t.Errorf("due(start%+v) = %d, want %d", tc.after, got, tc.want)
		}
	}
}

// The producers' schedules interleave into one schedule at the total rate:
// together they have exactly as many sends due as a single producer would,
// and no two producers share an intended time.
func TestScheduleInterleaves(t *testing.T) {
	start := time.Unix(1000, 0)
	const rate, producers = 3000.0, 4
	whole := schedule{start: start, rate: rate, stride: 1}
	parts := make([]schedule, producers)
	for p := range parts {
		parts[p] = schedule{start: start, rate: rate, stride: producers, phase: int64(p)}
	}
	for now := start; now.Before(start.Add(50 * time.Millisecond)); now = now.Add(37 * time.Microsecond) {
		var sum int64
		for _, s := range parts {
			sum += s.due(now)
		}
		if want := whole.due(now); sum != want {
			t.Fatalf("at start+%v producers have %d due, want %d", now.Sub(start), sum, want)
		}
	}
	seen := map[time.Time]bool{}
	for _, s := range parts {
		for i := range int64(100) {
			at := s.at(i)
			if seen[at] {
				t.Fatalf("two sends intended at start+%v", at.Sub(start))
			}
			seen[at] = true
		}
	}
}

// A schedule is open-loop: what is due depends only on the clock, not on
// how many sends were made, so a producer that falls behind finds every
// missed send due at once.
func TestScheduleOpenLoop(t *testing.T) {
	start := time.Unix(1000, 0)
	s := schedule{start: start, rate: 100, stride: 1}
	if got := s.due(start.Add(2 * time.Second)); got != 201 {
		t.Fatalf("after a 2 s stall %d sends due, want 201", got)
	}
	for i := range int64(201) {
		if s.at(i).After(start.Add(2 * time.Second)) {
			t.Fatalf("send %d intended after now", i)
		}
	}
}

func TestScheduleFractionalRate(t *testing.T) {
	start := time.Unix(1000, 0)
	s := schedule{start: start, rate: 0.5, stride: 1}
	if got := s.due(start.Add(3999 * time.Millisecond)); got != 2 {
		t.Errorf("due at 3.999s = %d, want 2", got)
	}
	if got := s.due(start.Add(4 * time.Second)); got != 3 {
		t.Errorf("due at 4s = %d, want 3", got)
	}
}

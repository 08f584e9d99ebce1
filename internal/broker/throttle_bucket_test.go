package broker

import (
	"math"
	"testing"
	"time"
)

func TestThrottleBucket(t *testing.T) {
	var th throttle
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	th.setRate(unlimitedRate, t0)
	if th.limited() || th.allowance(t0) != math.MaxInt32 || th.delay(t0) != 0 {
		t.Fatal("an unlimited throttle limits")
	}
	th.record(1<<40, t0) // counts nothing
	if th.allowance(t0) != math.MaxInt32 {
		t.Fatal("an unlimited throttle counted bytes")
	}

	th.setRate(1000, t0) // starts full: one second of the rate
	if !th.limited() || th.allowance(t0) != 1000 {
		t.Fatalf("full bucket allows %d, want 1000", th.allowance(t0))
	}
	th.record(600, t0)
	if got := th.allowance(t0); got != 400 {
		t.Fatalf("after 600 bytes: %d, want 400", got)
	}
	// A response may overshoot (one whole batch): the debt is paid first.
	th.record(900, t0)
	if got, d := th.allowance(t0), th.delay(t0); got != 0 || !near(d, 501*time.Millisecond) {
		t.Fatalf("500 bytes in debt: allowance %d, delay %v; want 0, 501ms", got, d)
	}
	if got := th.allowance(at(500 * time.Millisecond)); got != 0 {
		t.Fatalf("debt paid exactly: allowance %d, want 0", got)
	}
	if got := th.allowance(at(750 * time.Millisecond)); got != 250 {
		t.Fatalf("250 ms later: %d, want 250", got)
	}
	// Idle time fills the bucket up to one second's worth, no more.
	if got := th.allowance(at(time.Hour)); got != 1000 {
		t.Fatalf("after an hour: %d, want 1000", got)
	}

	// A lower rate keeps the debt; the same rate changes nothing.
	th.record(3000, at(time.Hour))
	th.setRate(100, at(time.Hour))
	th.setRate(100, at(time.Hour))
	if d := th.delay(at(time.Hour)); !near(d, 20010*time.Millisecond) {
		t.Fatalf("2000 bytes owed at 100 B/s: delay %v, want 20.01s", d)
	}
	th.setRate(0, at(time.Hour))
	if d := th.delay(at(2 * time.Hour)); d < 1e6*time.Hour {
		t.Fatalf("rate 0: delay %v, want practically forever", d)
	}
	th.setRate(unlimitedRate, at(2*time.Hour))
	th.setRate(50, at(2*time.Hour)) // from unlimited: starts full
	if got := th.allowance(at(2 * time.Hour)); got != 50 {
		t.Fatalf("from unlimited to 50 B/s: %d, want 50", got)
	}
}

// TestThrottleBound checks the bound the mechanism promises: whatever the
// sizes of the responses, a throttle lets through at most rate·(t + 1 s)
// bytes in t, plus the overshoot of the last response.
func TestThrottleBound(t *testing.T) {
	const rate = 200_000
	var th throttle
	now := time.Unix(0, 0)
	th.setRate(rate, now)
	sent, biggest := 0, 0
	for i := range 100_000 {
		now = now.Add(time.Millisecond)
		n := th.allowance(now)
		if n == 0 {
			continue
		}
		n = min(n, 1+i*7919%30_000) // cut to what the log has; sometimes a batch beyond
		if i%5 == 0 {
			n += 16_000
		}
		th.record(n, now)
		sent += n
		biggest = max(biggest, n)
	}
	elapsed := now.Sub(time.Unix(0, 0)).Seconds()
	if limit := rate*(elapsed+1) + float64(biggest); float64(sent) > limit {
		t.Fatalf("sent %d bytes in %.0fs at %d B/s, over the bound %.0f", sent, elapsed, rate, limit)
	}
	if float64(sent) < rate*elapsed*0.9 {
		t.Fatalf("sent %d bytes in %.0fs at %d B/s: the throttle starves", sent, elapsed, rate)
	}
}

func near(d, want time.Duration) bool { return d > want-time.Microsecond && d < want+time.Microsecond }

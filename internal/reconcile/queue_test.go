package reconcile

import (
	"testing"
	"time"
)

func TestQueueDedup(t *testing.T) {
	q := NewQueue(time.Millisecond, time.Second)
	q.Add("a")
	q.Add("a")
	q.Add("b")
	k, _ := q.Get()
	if k != "a" {
		t.Fatalf("Get = %s, want a", k)
	}
	q.Add("a") // while active: requeued on Done, not handed out now
	k, _ = q.Get()
	if k != "b" {
		t.Fatalf("Get = %s, want b", k)
	}
	q.Done("a")
	q.Done("b")
	k, _ = q.Get()
	if k != "a" {
		t.Fatalf("Get after Done = %s, want a", k)
	}
	q.Done("a")
	q.ShutDown()
	if _, ok := q.Get(); ok {
		t.Fatal("Get after ShutDown returned a key")
	}
}

func TestQueueBackoff(t *testing.T) {
	q := NewQueue(20*time.Millisecond, time.Second)
	defer q.ShutDown()
	start := time.Now()
	q.AddRateLimited("k") // 20ms
	k, _ := q.Get()
	q.Done(k)
	q.AddRateLimited("k") // 40ms
	q.Get()
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("two backoffs took %v, want at least 60ms", d)
	}
	q.Done("k")
	q.Forget("k")
	start = time.Now()
	q.AddRateLimited("k")
	q.Get()
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("backoff after Forget took %v", d)
	}
}

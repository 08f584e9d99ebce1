package reconcile

import (
	"sync"
	"time"
)

// Queue is a work queue of keys with de-duplication and per-key backoff, in
// the manner of client-go's workqueue. A key is never handed to two workers
// at once: a key added while it is being processed is queued again when the
// worker calls Done. It is safe for concurrent use.
type Queue struct {
	// BaseDelay and MaxDelay bound the exponential backoff of AddRateLimited.
	BaseDelay, MaxDelay time.Duration

	mu       sync.Mutex
	cond     *sync.Cond
	items    []string
	queued   map[string]bool
	active   map[string]bool
	dirty    map[string]bool
	failures map[string]int
	timers   map[string]*time.Timer
	due      map[string]time.Time
	shutdown bool
}

// NewQueue returns an empty queue.
func NewQueue(base, max time.Duration) *Queue {
	q := &Queue{
		BaseDelay: base, MaxDelay: max,
		queued: map[string]bool{}, active: map[string]bool{}, dirty: map[string]bool{},
		failures: map[string]int{}, timers: map[string]*time.Timer{}, due: map[string]time.Time{},
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues key unless it is already queued.
func (q *Queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(key)
}

func (q *Queue) addLocked(key string) {
	if q.shutdown || q.queued[key] {
		return
	}
	if q.active[key] {
		q.dirty[key] = true
		return
	}
	q.queued[key] = true
	q.items = append(q.items, key)
	q.cond.Signal()
}

// AddAfter queues key after d, unless an earlier wake-up is already set.
func (q *Queue) AddAfter(key string, d time.Duration) {
	if d <= 0 {
		q.Add(key)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	at := time.Now().Add(d)
	if t, ok := q.timers[key]; ok {
		if !q.due[key].After(at) {
			return
		}
		t.Stop()
	}
	q.due[key] = at
	q.timers[key] = time.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		delete(q.timers, key)
		delete(q.due, key)
		q.addLocked(key)
	})
}

// AddRateLimited queues key after its backoff, which doubles with each call
// until Forget.
func (q *Queue) AddRateLimited(key string) {
	q.mu.Lock()
	n := q.failures[key]
	q.failures[key] = n + 1
	q.mu.Unlock()
	d := q.BaseDelay << min(n, 20)
	if d > q.MaxDelay || d <= 0 {
		d = q.MaxDelay
	}
	q.AddAfter(key, d)
}

// Forget resets key's backoff.
func (q *Queue) Forget(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, key)
}

// Get blocks until a key is available and marks it active. It returns false
// once the queue is shut down.
func (q *Queue) Get() (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if q.shutdown {
		return "", false
	}
	key := q.items[0]
	q.items = q.items[1:]
	delete(q.queued, key)
	q.active[key] = true
	return key, true
}

// Done marks key no longer active, queueing it again if it was added meanwhile.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.active, key)
	if q.dirty[key] {
		delete(q.dirty, key)
		q.addLocked(key)
	}
}

// ShutDown stops the queue: Get returns false, pending timers are dropped.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	for k, t := range q.timers {
		t.Stop()
		delete(q.timers, k)
	}
	q.cond.Broadcast()
}

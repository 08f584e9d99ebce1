package metadata

import (
	"fmt"
	"math"
)

// AllocateProducerIDs reserves n consecutive producer ids and returns the
// first. The new first free id is durable before it returns, so ids handed
// out are never handed out again, even across restarts; ids reserved but not
// used before a restart are skipped. n must be positive.
func (l *Local) AllocateProducerIDs(n int64) (first int64, err error) {
	if n <= 0 {
		return 0, fmt.Errorf("allocate %d producer ids: count must be positive", n)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	first = l.mu.nextPID
	if first > math.MaxInt64-n {
		return 0, fmt.Errorf("allocate %d producer ids: ids exhausted at %d", n, first)
	}
	l.mu.nextPID = first + n
	if err := l.persistLocked(); err != nil {
		l.mu.nextPID = first
		return 0, err
	}
	return first, nil
}

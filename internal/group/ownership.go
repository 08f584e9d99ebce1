package group

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// A coordinator serves the groups of the __consumer_offsets partitions its
// broker leads, as Kafka's GroupCoordinator does: the broker calls
// LoadPartition when it becomes a partition's leader and UnloadPartition
// when it stops. Loading replays the partition in Run's loader, off the
// request path; until it is done, requests for the partition's groups
// answer COORDINATOR_LOAD_IN_PROGRESS. Unloading is immediate.

// loadRetry is how long a partition whose replay failed waits before the
// loader tries it again.
const loadRetry = time.Second

// pendingLoad is a partition queued for the loader.
type pendingLoad struct {
	index     int32
	notBefore time.Time
}

// LoadPartition makes the coordinator serve the groups stored in
// __consumer_offsets partition p once Run's loader has replayed it; until
// then requests for them answer COORDINATOR_LOAD_IN_PROGRESS. It does not
// block, so the broker may call it while it changes partition roles.
// Loading a partition the coordinator serves or loads already does nothing.
func (c *Coordinator) LoadPartition(p int32) {
	c.mu.Lock()
	if _, ok := c.mu.parts[p]; ok {
		c.mu.Unlock()
		return
	}
	c.mu.parts[p] = &ownedPartition{index: p, loading: true}
	c.mu.loads = append(c.mu.loads, pendingLoad{index: p})
	c.mu.Unlock()
	select {
	case c.loadKick <- struct{}{}:
	default:
	}
}

// UnloadPartition stops serving the groups of partition p (or stops its
// load): requests for them answer NOT_COORDINATOR from now on, waiting
// JoinGroup and SyncGroup calls are answered NOT_COORDINATOR, and the
// groups write nothing more. It returns after any write of those groups
// already under way has ended (a write to a partition this broker no longer
// leads fails at once), and does no I/O itself.
func (c *Coordinator) UnloadPartition(p int32) {
	c.mu.Lock()
	op := c.mu.parts[p]
	delete(c.mu.parts, p)
	var groups []*group
	if op != nil {
		for _, g := range op.groups {
			groups = append(groups, g)
		}
	}
	c.mu.Unlock()
	for _, g := range groups {
		// Every write checks for Dead under writeMu (appendLocked): taking
		// it waits for the write in flight, if any, and none follows.
		g.writeMu.Lock()
		g.mu.Lock()
		for _, m := range g.members {
			c.failJoinLocked(m, kerr.NotCoordinator)
			c.failSyncLocked(m, kerr.NotCoordinator)
		}
		g.setState(Dead, time.Now())
		g.dirty = false
		g.mu.Unlock()
		g.writeMu.Unlock()
	}
}

// runLoader replays the partitions LoadPartition queues, one at a time in
// the order queued, until ctx is done.
func (c *Coordinator) runLoader(ctx context.Context) {
	var retry *time.Timer
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		op, wait := c.nextLoad(time.Now())
		if op != nil {
			c.load(ctx, op)
			continue
		}
		var retryC <-chan time.Time
		if wait > 0 {
			if retry == nil {
				retry = time.NewTimer(wait)
			} else {
				retry.Reset(wait)
			}
			retryC = retry.C
		}
		select {
		case <-ctx.Done():
			return
		case <-c.loadKick:
		case <-retryC:
		}
	}
}

// nextLoad takes the first queued partition that is due and still waits to
// be loaded. Without one, it returns how long until the earliest retry is
// due (0: nothing queued).
func (c *Coordinator) nextLoad(now time.Time) (*ownedPartition, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var wait time.Duration
	for i := 0; i < len(c.mu.loads); {
		pl := c.mu.loads[i]
		op := c.mu.parts[pl.index]
		if op == nil || !op.loading {
			// Unloaded, or loaded by an earlier entry.
			c.mu.loads = append(c.mu.loads[:i], c.mu.loads[i+1:]...)
			continue
		}
		if d := pl.notBefore.Sub(now); d > 0 {
			if wait == 0 || d < wait {
				wait = d
			}
			i++
			continue
		}
		c.mu.loads = append(c.mu.loads[:i], c.mu.loads[i+1:]...)
		return op, 0
	}
	return nil, wait
}

// load replays op's partition and, if the coordinator still wants it (it
// was not unloaded meanwhile), starts serving its groups. A failed replay
// is retried after loadRetry.
func (c *Coordinator) load(ctx context.Context, op *ownedPartition) {
	start := time.Now()
	groups, err := c.replay(ctx, op.index)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.parts[op.index] != op {
		return // unloaded while it replayed
	}
	if err != nil {
		if ctx.Err() == nil {
			c.lg.Warn("load consumer groups; retrying", "partition", op.index, "err", err)
			c.mu.loads = append(c.mu.loads, pendingLoad{index: op.index, notBefore: time.Now().Add(loadRetry)})
		}
		return
	}
	op.groups = groups
	op.loading = false
	c.lg.Debug("consumer groups loaded", "partition", op.index, "groups", len(groups), "took", time.Since(start))
}

// withCommitTimeout bounds a write by offsets.commit.timeout.ms.
func (c *Coordinator) withCommitTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.cfg.CommitTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.cfg.CommitTimeout)
}

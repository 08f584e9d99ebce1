package broker

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/fjord-io/fjord/internal/commitlog"
	"github.com/fjord-io/fjord/internal/partition"
	"github.com/fjord-io/fjord/internal/topicconfig"
)

// Replication throttles (KIP-73), as Kafka applies them, so that a
// reassignment or a broker catching up does not starve clients:
//
//   - Leader side (fetch.go): a replica fetch of a partition that the
//     topic's leader.replication.throttled.replicas lists on this broker
//     ("*": every replica), by a follower outside the ISR, is metered
//     against this broker's leader.replication.throttled.rate. While that
//     is over quota the partition's records are left out of the response,
//     as Kafka does; under quota they are cut to what the quota allows.
//   - Follower side (replicafetch.go): a partition that the topic's
//     follower.replication.throttled.replicas lists on this broker, while
//     this broker is outside its ISR, is fetched only while this broker's
//     follower.replication.throttled.rate allows, and for no more bytes.
//
// As in Kafka, partitionId:brokerId names the broker the rule applies on
// (kafka-reassign-partitions --throttle lists the current replicas, which
// may lead, in the leader list, and the replicas being added in the
// follower list), and in-sync replicas are never throttled. The rates are
// dynamic broker configs (brokerconfigs.go), unlimited by default.
//
// Each rate is a token bucket holding at most one second of the rate
// (Kafka's quota window, replication.quota.window.size.seconds). Bytes are
// counted once sent (or received) and may take the bucket below zero, as
// a partition's read returns at least one whole batch (KIP-74); that debt
// is paid before anything more is let through. So in any interval t a
// throttle lets through at most rate·(t + 1 s) bytes, plus one response's
// overshoot. A follower splits its allowance among the throttled
// partitions of a request; a leader cuts each throttled partition of a
// response to the whole allowance, as Kafka checks its quota per
// partition, so a response carrying several may overshoot by more, and the
// debt is paid all the same.

// quotaWindow is how much of its rate a throttle lets through at once.
const quotaWindow = time.Second

// unlimitedRate is a rate that throttles nothing (Kafka's Long.MAX_VALUE).
const unlimitedRate = math.MaxInt64

// throttle is a token bucket metering bytes against a rate in bytes per
// second. It is safe for concurrent use; mu guards every field.
type throttle struct {
	mu struct {
		sync.Mutex
		rate   int64     // bytes per second
		tokens float64   // bytes that may pass now; negative when in debt
		last   time.Time // when tokens were last refilled; zero before setRate
	}
}

// setRate sets the rate. A bucket starts full; a lower rate keeps what the
// bucket owes.
func (t *throttle) setRate(rate int64, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rate == t.mu.rate && !t.mu.last.IsZero() {
		return
	}
	full := float64(rate) * quotaWindow.Seconds()
	if t.mu.last.IsZero() || t.mu.rate == unlimitedRate {
		t.mu.tokens = full
	} else {
		t.refillLocked(now)
		t.mu.tokens = min(t.mu.tokens, full)
	}
	t.mu.rate, t.mu.last = rate, now
}

func (t *throttle) refillLocked(now time.Time) {
	if d := now.Sub(t.mu.last); d > 0 {
		full := float64(t.mu.rate) * quotaWindow.Seconds()
		t.mu.tokens = min(full, t.mu.tokens+float64(t.mu.rate)*d.Seconds())
		t.mu.last = now
	}
}

// limited reports whether the rate limits anything.
func (t *throttle) limited() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.rate != unlimitedRate
}

// allowance returns how many bytes may pass now: 0 while over quota, at
// most math.MaxInt32 (the most a fetch asks for).
func (t *throttle) allowance(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.rate == unlimitedRate {
		return math.MaxInt32
	}
	t.refillLocked(now)
	if t.mu.tokens < 1 {
		return 0
	}
	return int(min(t.mu.tokens, math.MaxInt32))
}

// record counts n bytes that passed.
func (t *throttle) record(n int, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.rate == unlimitedRate || n <= 0 {
		return
	}
	t.refillLocked(now)
	t.mu.tokens -= float64(n)
}

// delay returns how long until some bytes may pass again: 0 if they may
// now; a very long time at rate 0.
func (t *throttle) delay(now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.rate == unlimitedRate {
		return 0
	}
	t.refillLocked(now)
	switch {
	case t.mu.tokens >= 1:
		return 0
	case t.mu.rate == 0:
		return math.MaxInt64
	}
	return time.Duration((1 - t.mu.tokens) / float64(t.mu.rate) * float64(time.Second))
}

// replicationThrottles are a broker's two replication quotas. The rates
// are read from the dynamic broker configs whenever the metadata changed.
type replicationThrottles struct {
	leader, follower throttle
	mu               struct {
		sync.Mutex
		read    bool   // the rates have been read
		version uint64 // the metadata version they were read at
	}
}

// throttles returns the broker's replication throttles, at the rates the
// metadata sets now.
func (b *Broker) throttles(now time.Time) *replicationThrottles {
	rt := &b.quotas
	v := b.dynamicStore().Version()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !rt.mu.read || rt.mu.version != v {
		rt.mu.read, rt.mu.version = true, v
		rt.leader.setRate(b.dynamicRate(leaderThrottledRate), now)
		rt.follower.setRate(b.dynamicRate(followerThrottledRate), now)
	}
	return rt
}

// leaderLimited reports whether leader.replication.throttled.rate limits
// anything; a replica fetch asks once, not per partition.
func (b *Broker) leaderLimited() bool { return b.throttles(time.Now()).leader.limited() }

// leaderThrottled reports whether leader.replication.throttled.rate, which
// the caller knows to be limited (leaderLimited), meters a fetch of p, which
// this broker leads, by the follower replica: the topic lists p on this
// broker in leader.replication.throttled.replicas and the follower is not in
// the ISR.
func (b *Broker) leaderThrottled(p *partition.Partition, replica int32) bool {
	list := p.Config().String("leader.replication.throttled.replicas")
	return list != "" && topicconfig.ThrottledReplica(list, p.Index, b.cfg.NodeID) && !slices.Contains(p.ISR(), replica)
}

// leaderAllowance cuts a throttled partition's read limit to what
// leader.replication.throttled.rate allows now: 0 while over quota.
func (b *Broker) leaderAllowance(limit int) int {
	now := time.Now()
	return min(limit, b.throttles(now).leader.allowance(now))
}

// recordLeaderThrottled counts the bytes a fetch response sends for
// throttled partitions against leader.replication.throttled.rate.
func (b *Broker) recordLeaderThrottled(parts []fetchPart, views [][]*commitlog.View) {
	n := 0
	for _, fp := range parts {
		if v := views[fp.topic][fp.pi]; fp.throttled && v != nil {
			n += v.Len()
		}
	}
	if n > 0 {
		now := time.Now()
		b.throttles(now).leader.record(n, now)
	}
}

// followerQuota meters one replica fetch request against
// follower.replication.throttled.rate; make one per request with
// newFollowerQuota. It is not safe for concurrent use.
type followerQuota struct {
	b       *Broker
	rt      *replicationThrottles // set at the first admit
	limited bool                  // the follower rate is limited
	budget  int                   // bytes the request may still ask for throttled partitions
	metered map[*partition.Partition]bool
}

func (b *Broker) newFollowerQuota() *followerQuota { return &followerQuota{b: b} }

// admit returns how many bytes the request may ask for p, at most max, or
// false to leave p out: p is throttled on this follower (listed for it in
// follower.replication.throttled.replicas, and this broker is not in its
// ISR) and the quota is spent.
func (q *followerQuota) admit(p *partition.Partition, max int32) (int32, bool) {
	if q.rt == nil {
		now := time.Now()
		q.rt = q.b.throttles(now)
		q.limited = q.rt.follower.limited()
		q.budget = q.rt.follower.allowance(now)
	}
	if !q.limited {
		return max, true // no follower rate: nothing to look up per partition
	}
	list := p.Config().String("follower.replication.throttled.replicas")
	if list == "" || !topicconfig.ThrottledReplica(list, p.Index, q.b.cfg.NodeID) || q.b.inISR(p) {
		return max, true
	}
	if q.budget <= 0 {
		return 0, false
	}
	n := int32(min(int(max), q.budget))
	q.budget -= int(n)
	if q.metered == nil {
		q.metered = make(map[*partition.Partition]bool)
	}
	q.metered[p] = true
	return n, true
}

// record counts n bytes fetched for p, if p is metered.
func (q *followerQuota) record(p *partition.Partition, n int) {
	if q.metered[p] {
		q.rt.follower.record(n, time.Now())
	}
}

// wait blocks until the quota lets bytes through again, for at most max,
// or until ctx ends. The fetcher calls it when it left every partition out.
func (q *followerQuota) wait(ctx context.Context, max time.Duration) {
	d := max
	if q.rt != nil {
		d = min(d, q.rt.follower.delay(time.Now()))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// inISR reports whether this broker is in the ISR of p, which it follows,
// as the metadata says.
func (b *Broker) inISR(p *partition.Partition) bool {
	ts := b.parts.topic(p.Topic)
	if ts == nil || int(p.Index) >= len(ts.meta.Partitions) {
		return false
	}
	return slices.Contains(ts.meta.Partitions[p.Index].ISR, b.cfg.NodeID)
}

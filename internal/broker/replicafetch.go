package broker

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/commitlog"
	"github.com/fjord-io/fjord/internal/partition"
	"github.com/fjord-io/fjord/internal/record"
)

// Replication, the follower side: one fetcher per leader broker copies the
// partitions this broker follows from it, as Kafka's replica fetcher
// threads do. A fetcher first truncates each newly followed partition to
// where its log agrees with the leader's (OffsetForLeaderEpoch, KIP-101:
// the end offset of the latest epoch both logs share), then loops on Fetch
// with this broker's id as the replica id, long-polling the leader, which
// learns from each fetch offset how far this follower has come (that is
// what advances its high watermark). Appended batches keep the leader's
// offsets and epochs; the follower's high watermark is the leader's, capped
// at its own log end.

// replicaFetchers owns the fetchers. follow and unfollow come from the
// metadata sync; run starts the fetchers and stops them when ctx ends.
type replicaFetchers struct {
	b  *Broker
	mu struct {
		sync.Mutex
		ctx      context.Context // nil until run
		byLeader map[int32]*leaderFetcher
		leaderOf map[*partition.Partition]int32
	}
	wg sync.WaitGroup
}

// leaderFetcher fetches the partitions this broker follows from one leader.
type leaderFetcher struct {
	m      *replicaFetchers
	leader int32
	wake   chan struct{} // a partition was added
	mu     sync.Mutex
	parts  map[*partition.Partition]*followState

	// Owned by the run goroutine, reused every round: with thousands of
	// followed partitions, a round's garbage was a fifth of the CPU.
	scratch struct {
		items, trunc, fetch []fetchItem
		want                []replicaFetchPart
		byKey               map[tpKey]fetchItem
	}
}

// followState is one followed partition's progress.
type followState struct {
	epoch     int32
	truncated bool      // the log agrees with the leader's up to its end
	retryAt   time.Time // after a partition error, wait until then
}

func newReplicaFetchers(b *Broker) *replicaFetchers {
	m := &replicaFetchers{b: b}
	m.mu.byLeader = make(map[int32]*leaderFetcher)
	m.mu.leaderOf = make(map[*partition.Partition]int32)
	return m
}

// follow makes p fetched from leader at epoch, after a truncation check.
func (m *replicaFetchers) follow(p *partition.Partition, leader, epoch int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.mu.leaderOf[p]; ok && old != leader {
		m.mu.byLeader[old].remove(p)
	}
	m.mu.leaderOf[p] = leader
	f := m.mu.byLeader[leader]
	if f == nil {
		f = &leaderFetcher{m: m, leader: leader, wake: make(chan struct{}, 1), parts: make(map[*partition.Partition]*followState)}
		m.mu.byLeader[leader] = f
		if m.mu.ctx != nil {
			m.start(f)
		}
	}
	f.mu.Lock()
	f.parts[p] = &followState{epoch: epoch}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// unfollow stops fetching p.
func (m *replicaFetchers) unfollow(p *partition.Partition) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if leader, ok := m.mu.leaderOf[p]; ok {
		m.mu.byLeader[leader].remove(p)
		delete(m.mu.leaderOf, p)
	}
}

// run starts every fetcher, and those created later, until ctx ends; it
// returns when all have stopped.
func (m *replicaFetchers) run(ctx context.Context) {
	m.mu.Lock()
	m.mu.ctx = ctx
	for _, f := range m.mu.byLeader {
		m.start(f)
	}
	m.mu.Unlock()
	<-ctx.Done()
	m.wg.Wait()
	m.mu.Lock()
	m.mu.ctx = nil
	m.mu.Unlock()
}

// start runs f; the caller holds m.mu with m.mu.ctx set.
func (m *replicaFetchers) start(f *leaderFetcher) {
	ctx := m.mu.ctx
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f.run(ctx)
	}()
}

func (f *leaderFetcher) remove(p *partition.Partition) {
	f.mu.Lock()
	delete(f.parts, p)
	f.mu.Unlock()
}

// fetchItem is a followed partition as one round sees it.
type fetchItem struct {
	p  *partition.Partition
	st followState
}

// snapshot returns the followed partitions, in f.scratch.items.
func (f *leaderFetcher) snapshot() []fetchItem {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.scratch.items[:0]
	for p, st := range f.parts {
		out = append(out, fetchItem{p: p, st: *st})
	}
	f.scratch.items = out
	return out
}

// update changes p's state if it is still followed at epoch.
func (f *leaderFetcher) update(p *partition.Partition, epoch int32, fn func(*followState)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.parts[p]; st != nil && st.epoch == epoch {
		fn(st)
	}
}

func (f *leaderFetcher) run(ctx context.Context) {
	b := f.m.b
	var conn *replicaConn
	var sess replicaSession
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	pause := func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-f.wake:
		case <-t.C:
		}
	}
	for ctx.Err() == nil {
		items := f.snapshot()
		if len(items) == 0 {
			pause(time.Minute)
			continue
		}
		if conn == nil {
			addr, ok := f.leaderAddr()
			if !ok {
				pause(b.settings.replicaBackoff)
				continue
			}
			c, err := dialReplica(ctx, addr, b.cfg.NodeID)
			if err != nil {
				b.log.Debug("replica fetcher: connect", "leader", f.leader, "err", err)
				pause(b.settings.replicaBackoff)
				continue
			}
			conn = c
		}
		idle, err := f.round(ctx, conn, &sess, items)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Debug("replica fetcher: leader connection failed", "leader", f.leader, "err", err)
			}
			conn.Close()
			conn = nil
			pause(b.settings.replicaBackoff)
			continue
		}
		if idle > 0 {
			pause(idle)
		}
	}
}

func (f *leaderFetcher) leaderAddr() (string, bool) {
	for _, br := range f.m.b.meta.Brokers() {
		if br.NodeID == f.leader {
			return net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port))), true
		}
	}
	return "", false
}

// round truncates the partitions that need it and fetches once for the
// others. It returns how long to wait when nothing could be fetched, and an
// error when the connection failed.
func (f *leaderFetcher) round(ctx context.Context, conn *replicaConn, sess *replicaSession, items []fetchItem) (time.Duration, error) {
	now := time.Now()
	trunc, fetch := f.scratch.trunc[:0], f.scratch.fetch[:0]
	defer func() { f.scratch.trunc, f.scratch.fetch = trunc, fetch }()
	wait := time.Duration(-1)
	for _, it := range items {
		switch {
		case now.Before(it.st.retryAt):
			if d := it.st.retryAt.Sub(now); wait < 0 || d < wait {
				wait = d
			}
		case !it.st.truncated:
			trunc = append(trunc, it)
		default:
			fetch = append(fetch, it)
		}
	}
	if len(trunc) > 0 {
		if err := f.truncate(ctx, conn, trunc); err != nil {
			return 0, err
		}
		return 0, nil // fetch on the next round, with the truncated logs
	}
	if len(fetch) == 0 {
		return max(wait, time.Millisecond), nil
	}
	return 0, f.fetch(ctx, conn, sess, fetch)
}

// retryDelay is how long a partition waits after its leader refused it
// (not leader, fenced epoch): long enough not to spin, short against
// failover times; a metadata change resets it at once.
const retryDelay = 100 * time.Millisecond

// truncate asks the leader where each partition's log stops agreeing with
// its own and truncates there.
func (f *leaderFetcher) truncate(ctx context.Context, conn *replicaConn, items []fetchItem) error {
	b := f.m.b
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.SetVersion(4)
	req.ReplicaID = b.cfg.NodeID
	byKey := make(map[tpKey]fetchItem, len(items))
	topics := make(map[string]int)
	for _, it := range items {
		latest := it.p.Log().LatestEpoch()
		if latest < 0 || it.p.Log().LogEndOffset() == it.p.Log().LogStartOffset() {
			// An empty log agrees with any leader.
			f.update(it.p, it.st.epoch, func(st *followState) { st.truncated = true })
			continue
		}
		ti, ok := topics[it.p.Topic]
		if !ok {
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = it.p.Topic
			req.Topics = append(req.Topics, rt)
			ti = len(req.Topics) - 1
			topics[it.p.Topic] = ti
		}
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition = it.p.Index
		rp.CurrentLeaderEpoch = it.st.epoch
		rp.LeaderEpoch = latest
		req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, rp)
		byKey[tpKey{it.p.Topic, it.p.Index}] = it
	}
	if len(req.Topics) == 0 {
		return nil
	}
	r, err := conn.request(ctx, req, 10*time.Second)
	if err != nil {
		return err
	}
	resp := r.(*kmsg.OffsetForLeaderEpochResponse)
	now := time.Now()
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			it, ok := byKey[tpKey{rt.Topic, rp.Partition}]
			if !ok {
				continue
			}
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				f.update(it.p, it.st.epoch, func(st *followState) { st.retryAt = now.Add(retryDelay) })
				continue
			}
			to := it.p.HighWatermark() // the leader knows no epoch of ours: keep what was committed
			if rp.LeaderEpoch >= 0 && rp.EndOffset >= 0 {
				_, ours := it.p.Log().EndOffsetForEpoch(rp.LeaderEpoch)
				to = min(rp.EndOffset, ours)
			}
			if to < it.p.Log().LogEndOffset() {
				b.log.Info("truncating diverged follower", "topic", it.p.Topic, "partition", it.p.Index,
					"from", it.p.Log().LogEndOffset(), "to", to, "leader", f.leader, "leaderEpoch", rp.LeaderEpoch)
				if err := it.p.TruncateTo(it.st.epoch, to); errors.Is(err, partition.ErrStaleFollower) {
					continue
				} else if err != nil {
					b.log.Warn("truncate follower", "topic", it.p.Topic, "partition", it.p.Index, "err", err)
					f.update(it.p, it.st.epoch, func(st *followState) { st.retryAt = now.Add(b.settings.replicaBackoff) })
					continue
				}
			}
			f.update(it.p, it.st.epoch, func(st *followState) { st.truncated = true })
		}
	}
	return nil
}

type tpKey struct {
	topic     string
	partition int32
}

// fetch fetches once from the leader, within the fetcher's session, and
// appends what it returns.
func (f *leaderFetcher) fetch(ctx context.Context, conn *replicaConn, sess *replicaSession, items []fetchItem) error {
	b := f.m.b
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = b.cfg.NodeID
	req.MaxWaitMillis = int32(b.settings.replicaFetchWait.Milliseconds())
	req.MinBytes = 1
	req.MaxBytes = b.settings.replicaFetchRespMax
	if f.scratch.byKey == nil {
		f.scratch.byKey = make(map[tpKey]fetchItem, len(items))
	}
	byKey := f.scratch.byKey
	clear(byKey)
	want := f.scratch.want[:0]
	defer func() { f.scratch.want = want }()
	quota := b.newFollowerQuota()
	for _, it := range items {
		maxBytes, ok := quota.admit(it.p, b.settings.replicaFetchMax)
		if !ok {
			continue // over follower.replication.throttled.rate: fetched later
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = it.p.Index
		rp.CurrentLeaderEpoch = it.st.epoch
		rp.FetchOffset = it.p.Log().LogEndOffset()
		rp.LastFetchedEpoch = -1
		rp.LogStartOffset = it.p.Log().LogStartOffset()
		rp.PartitionMaxBytes = maxBytes
		want = append(want, replicaFetchPart{topic: it.p.Topic, rp: rp})
		byKey[tpKey{it.p.Topic, it.p.Index}] = it
	}
	if len(want) == 0 {
		quota.wait(ctx, b.settings.replicaBackoff) // every partition is throttled
		return nil
	}
	full := sess.fill(req, want)
	r, err := conn.request(ctx, req, b.settings.replicaFetchWait+10*time.Second)
	if err != nil {
		sess.reset()
		return err
	}
	resp := r.(*kmsg.FetchResponse)
	if sess.handled(full, resp.ErrorCode, resp.SessionID) {
		b.log.Debug("replica fetcher: fetch session lost; reopening", "leader", f.leader, "session", req.SessionID,
			"err", kerr.ErrorForCode(resp.ErrorCode))
		return nil
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		for _, it := range items {
			f.update(it.p, it.st.epoch, func(st *followState) { st.retryAt = time.Now().Add(retryDelay) })
		}
		return nil
	}
	now := time.Now()
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			it, ok := byKey[tpKey{rt.Topic, rp.Partition}]
			if !ok {
				continue
			}
			quota.record(it.p, len(rp.RecordBatches))
			f.apply(it, &rp, now)
		}
	}
	return nil
}

// apply appends one partition's fetched batches.
func (f *leaderFetcher) apply(it fetchItem, rp *kmsg.FetchResponseTopicPartition, now time.Time) {
	b := f.m.b
	p := it.p
	switch err := kerr.ErrorForCode(rp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange):
		if leo := p.Log().LogEndOffset(); leo < rp.LogStartOffset {
			// The leader no longer has what this replica needs next
			// (retention, DeleteRecords): start over at its log start.
			b.log.Info("follower behind its leader's log start; resetting its log",
				"topic", p.Topic, "partition", p.Index, "leo", leo, "leaderLogStart", rp.LogStartOffset)
			if err := p.ResetTo(it.st.epoch, rp.LogStartOffset); err != nil && !errors.Is(err, partition.ErrStaleFollower) {
				b.log.Warn("reset follower log", "topic", p.Topic, "partition", p.Index, "err", err)
				f.update(p, it.st.epoch, func(st *followState) { st.retryAt = now.Add(b.settings.replicaBackoff) })
			}
			return
		}
		// Past the leader's end: the logs diverged; truncate again.
		f.update(p, it.st.epoch, func(st *followState) { st.truncated = false; st.retryAt = now.Add(retryDelay) })
		return
	default:
		f.update(p, it.st.epoch, func(st *followState) { st.retryAt = now.Add(retryDelay) })
		return
	}
	if batches := wholeBatches(rp.RecordBatches); len(batches) > 0 {
		if h, _ := record.ReadHeader(batches); h.BaseOffset < p.Log().LogEndOffset() &&
			p.Log().LogEndOffset() == p.Log().LogStartOffset() && h.LastOffset() >= p.Log().LogEndOffset() {
			// An empty log whose first batch starts before its log start:
			// the leader's log start is inside that batch. Start the log
			// at the batch, as Kafka does; the leader's log start is
			// applied below.
			if err := p.ResetTo(it.st.epoch, h.BaseOffset); err != nil {
				f.update(p, it.st.epoch, func(st *followState) { st.retryAt = now.Add(retryDelay) })
				return
			}
		}
		if err := p.AppendReplicated(it.st.epoch, batches, now); err != nil {
			if !errors.Is(err, commitlog.ErrClosed) && !errors.Is(err, partition.ErrStaleFollower) {
				b.log.Warn("follower append", "topic", p.Topic, "partition", p.Index, "err", err)
			}
			f.update(p, it.st.epoch, func(st *followState) { st.truncated = false; st.retryAt = now.Add(b.settings.replicaBackoff) })
			return
		}
	}
	if rp.LogStartOffset > p.Log().LogStartOffset() {
		if err := p.Log().DeleteRecordsBefore(min(rp.LogStartOffset, p.Log().LogEndOffset())); err == nil {
			p.Refresh()
		}
	}
	p.SetFollowerHW(it.st.epoch, rp.HighWatermark)
}

// wholeBatches returns the prefix of b made of whole batches: a fetch
// response may end with a partial one (KIP-74).
func wholeBatches(b []byte) []byte {
	n := 0
	for n < len(b) {
		h, err := record.ReadHeader(b[n:])
		if err != nil || h.Size() < record.HeaderSize || n+h.Size() > len(b) {
			break
		}
		n += h.Size()
	}
	return b[:n]
}

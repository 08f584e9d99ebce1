// Package partition holds one partition replica on a broker: its log, its
// leader epoch, its high watermark, the fetches waiting for it to grow, and
// what it knows of the idempotent producers appending to it.
package partition

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fjord-io/fjord/internal/commitlog"
	"github.com/fjord-io/fjord/internal/record"
	"github.com/fjord-io/fjord/internal/topicconfig"
)

// Partition is one partition replica. It is safe for concurrent use: the log
// serializes appends, the epoch and high watermark are atomics, mu guards
// only the waiter set, idem.mu the producer state, and snapMu the writing of
// producer-state snapshots (taken before idem.mu when both are held).
type Partition struct {
	Topic string
	Index int32

	log         *commitlog.Log
	leaderEpoch atomic.Int32
	hw          atomic.Int64
	cfg         atomic.Pointer[topicconfig.Set]

	// role is held shared by every append and truncation for its whole
	// length, and exclusively by a role change (BecomeLeader,
	// BecomeFollower): an append checks the role it needs under it, so no
	// append decided as leader lands after the replica became a follower
	// (it would escape the follower's truncation) and no fetched batch
	// lands after it became leader. It is Kafka's leaderIsrUpdateLock, and
	// the one lock held across disk I/O besides idem.mu: role changes are
	// rare and wait only for the appends in flight. Taken before idem.mu
	// and rep.mu.
	role sync.RWMutex

	// rep is the replica's role and, as leader, its followers (replica.go).
	rep struct {
		mu sync.Mutex
		s  replicaState
	}

	nwaiters atomic.Int32
	mu       struct {
		sync.Mutex
		waiters map[chan<- struct{}]struct{}
	}

	// idem serializes the appends of batches that carry a producer id and
	// guards what the partition knows of their producers. Its holder does
	// the log append, by design: the duplicate and sequence checks, the
	// append and the state update are one step, so two retries of a batch
	// cannot both append; the lock order is the producers' append order.
	// Appends without a producer id do not take it: they neither read nor
	// change the producer state.
	idem struct {
		mu        sync.Mutex
		producers producerState
	}

	// snapMu serializes snapshot writes (MaintainProducers, Close) and
	// guards snapBase, the active segment's base offset when the last
	// snapshot was written, and closed.
	snapMu   sync.Mutex
	snapBase int64
	closed   bool
}

// New wraps an open log. The replica starts as the leader at epoch of a
// partition with no other replica (a standalone broker); a replicated
// broker then sets its role with BecomeLeader or BecomeFollower.
// The producer state is restored from the log: from the producer-state
// snapshot plus the batches after its offset, or from every batch when
// there is no usable snapshot.
func New(topic string, index int32, log *commitlog.Log, epoch int32, cfg topicconfig.Set) (*Partition, error) {
	producers, err := rebuildProducers(log.Dir(), log.LogEndOffset(), log.ScanHeaders)
	if err != nil {
		return nil, fmt.Errorf("partition %s-%d: %w", topic, index, err)
	}
	p := &Partition{Topic: topic, Index: index, log: log}
	p.leaderEpoch.Store(epoch)
	p.hw.Store(log.LogEndOffset())
	p.rep.s = replicaState{leader: true, self: -1, leaderID: -1}
	p.cfg.Store(&cfg)
	p.mu.waiters = make(map[chan<- struct{}]struct{})
	p.idem.producers = producers
	p.snapBase = log.ActiveSegmentBase()
	return p, nil
}

// Log returns the partition's log.
func (p *Partition) Log() *commitlog.Log { return p.log }

// LeaderEpoch returns the current leader epoch.
func (p *Partition) LeaderEpoch() int32 { return p.leaderEpoch.Load() }

// HighWatermark returns the offset below which records are committed and
// visible to consumers.
func (p *Partition) HighWatermark() int64 { return p.hw.Load() }

// Config returns the partition's resolved topic configuration.
func (p *Partition) Config() topicconfig.Set { return *p.cfg.Load() }

// SetConfig applies a changed topic configuration.
func (p *Partition) SetConfig(cfg topicconfig.Set) {
	p.cfg.Store(&cfg)
	p.log.SetConfig(cfg.LogConfig())
}

// AppendInfo describes a leader append.
type AppendInfo struct {
	commitlog.AppendInfo
	// Duplicate reports a retry of a batch already in the log: nothing was
	// appended, and FirstOffset and LastOffset are the original batch's.
	Duplicate bool
	// Timestamp is, for a duplicate, the original batch's MaxTimestamp (its
	// append time on a LogAppendTime topic).
	Timestamp int64
}

// AppendLeader appends producer batches (whole batches, as checked by
// record.Validate) as the leader and advances the high watermark as far as
// the ISR allows (to the log end offset with a single replica). It fails
// with ErrNotLeader on a follower.
//
// Batches with a producer id (ProducerID >= 0: idempotent producers) are
// first checked against what the partition knows of their producer (see
// producerState.check for the rules): a retry of one of the producer's last
// five batches is not appended again and is answered with the original's
// offsets, Duplicate set; a fenced epoch fails with ErrInvalidProducerEpoch
// and a sequence gap with ErrOutOfOrderSequence. Such an append must be
// exactly one batch, as Kafka requires of every produce, with a sequence
// number (BaseSequence >= 0), else it fails with an error wrapping
// record.ErrInvalidRecord. Check, append and bookkeeping are atomic.
func (p *Partition) AppendLeader(batches []byte, now time.Time) (AppendInfo, error) {
	first, n, idem, err := inspect(batches)
	if err != nil {
		return AppendInfo{}, err
	}
	p.role.RLock()
	defer p.role.RUnlock()
	if !p.IsLeader() {
		return AppendInfo{}, ErrNotLeader
	}
	var info AppendInfo
	if idem {
		info, err = p.appendIdempotent(first, n, batches, now)
	} else {
		info.AppendInfo, err = p.log.Append(batches, p.LeaderEpoch(), now)
	}
	if err != nil || info.Duplicate {
		return info, err
	}
	p.rep.mu.Lock()
	p.advanceHWLocked()
	p.rep.mu.Unlock()
	p.wake() // followers wait for the log end, consumers for the watermark
	return info, nil
}

// appendIdempotent appends the single batch with header h of an idempotent
// producer, or recognizes it as a retry.
func (p *Partition) appendIdempotent(h record.Header, n int, batches []byte, now time.Time) (AppendInfo, error) {
	switch {
	case n != 1:
		return AppendInfo{}, fmt.Errorf("%d batches of producer %d in one produce; send one per partition: %w", n, h.ProducerID, record.ErrInvalidRecord)
	case h.BaseSequence < 0:
		return AppendInfo{}, fmt.Errorf("batch of producer %d has no sequence number: %w", h.ProducerID, record.ErrInvalidRecord)
	}
	p.idem.mu.Lock()
	defer p.idem.mu.Unlock()
	dup, err := p.idem.producers.check(h)
	if err != nil {
		return AppendInfo{}, err
	}
	if dup != nil {
		return AppendInfo{
			AppendInfo: commitlog.AppendInfo{FirstOffset: dup.FirstOffset, LastOffset: dup.LastOffset, LogStartOffset: p.log.LogStartOffset()},
			Duplicate:  true,
			Timestamp:  dup.Timestamp,
		}, nil
	}
	info, err := p.log.Append(batches, p.LeaderEpoch(), now)
	if err != nil {
		return AppendInfo{}, err
	}
	// The log wrote the offsets into the caller's batch.
	stored, err := record.ReadHeader(batches)
	if err != nil {
		return AppendInfo{}, err
	}
	p.idem.producers.apply(stored)
	return AppendInfo{AppendInfo: info}, nil
}

// Refresh re-reads the log's bounds after a change made directly on the log
// (DeleteRecords, retention) and wakes waiting fetches.
func (p *Partition) Refresh() {
	if leo := p.log.LogEndOffset(); p.hw.Load() > leo {
		p.hw.Store(leo)
	}
	p.wake()
}

// Wait registers ch to receive a non-blocking send when the partition's high
// watermark moves. The returned function unregisters it.
func (p *Partition) Wait(ch chan<- struct{}) (cancel func()) {
	p.mu.Lock()
	p.mu.waiters[ch] = struct{}{}
	p.nwaiters.Add(1)
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		if _, ok := p.mu.waiters[ch]; ok {
			delete(p.mu.waiters, ch)
			p.nwaiters.Add(-1)
		}
		p.mu.Unlock()
	}
}

func (p *Partition) wake() {
	if p.nwaiters.Load() == 0 {
		return
	}
	p.mu.Lock()
	for ch := range p.mu.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
}

// MaintainProducers does the periodic producer-state work; the broker calls
// it from its maintenance loop. It forgets the producers whose latest batch
// is at least expiration old (producer.id.expiration.ms), and writes a
// producer-state snapshot if the log has rolled since the last one, so that
// an open after a crash replays little more than the active segment.
func (p *Partition) MaintainProducers(now time.Time, expiration time.Duration) error {
	p.idem.mu.Lock()
	p.idem.producers.expire(now.UnixMilli(), expiration.Milliseconds())
	p.idem.mu.Unlock()

	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	if base := p.log.ActiveSegmentBase(); p.closed || base < 0 || base == p.snapBase {
		return nil
	}
	return p.snapshotLocked()
}

// Close writes the producer-state snapshot, so that the next open replays
// no batch, then closes the log. Appends racing with Close are either in
// the snapshot or after its offset, and are replayed on open. Close is
// idempotent.
func (p *Partition) Close() error {
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	return errors.Join(p.snapshotLocked(), p.log.Close())
}

// snapshotLocked writes the producer-state snapshot; the caller holds
// snapMu. The state is copied together with the log end offset under
// idem.mu, and encoded and written after it is released. Every batch with a
// producer id is appended under idem.mu, so the copy reflects every such
// batch below that offset and none above it.
func (p *Partition) snapshotLocked() error {
	base := p.log.ActiveSegmentBase()
	p.idem.mu.Lock()
	snap := p.idem.producers.snapshot(p.log.LogEndOffset())
	p.idem.mu.Unlock()
	data, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("partition %s-%d: encode producer state: %w", p.Topic, p.Index, err)
	}
	if err := writeSnapshot(p.log.Dir(), data); err != nil {
		return fmt.Errorf("partition %s-%d: %w", p.Topic, p.Index, err)
	}
	p.snapBase = base
	return nil
}

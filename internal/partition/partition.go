// Package partition holds one partition replica on a broker: its log, its
// leader epoch, its high watermark, and the fetches waiting for it to grow.
package partition

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/fjord-io/fjord/internal/commitlog"
	"github.com/fjord-io/fjord/internal/topicconfig"
)

// Partition is one partition replica. It is safe for concurrent use: the log
// serializes appends, the epoch and high watermark are atomics, and mu guards
// only the waiter set.
type Partition struct {
	Topic string
	Index int32

	log         *commitlog.Log
	leaderEpoch atomic.Int32
	hw          atomic.Int64
	cfg         atomic.Pointer[topicconfig.Set]

	nwaiters atomic.Int32
	mu       struct {
		sync.Mutex
		waiters map[chan<- struct{}]struct{}
	}
}

// New wraps an open log. The broker is the partition's leader at epoch.
func New(topic string, index int32, log *commitlog.Log, epoch int32, cfg topicconfig.Set) *Partition {
	p := &Partition{Topic: topic, Index: index, log: log}
	p.leaderEpoch.Store(epoch)
	p.hw.Store(log.LogEndOffset())
	p.cfg.Store(&cfg)
	p.mu.waiters = make(map[chan<- struct{}]struct{})
	return p
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

// AppendLeader appends producer batches as the leader and advances the high
// watermark. With a single replica the watermark is the log end offset.
func (p *Partition) AppendLeader(batches []byte, now time.Time) (commitlog.AppendInfo, error) {
	info, err := p.log.Append(batches, p.LeaderEpoch(), now)
	if err != nil {
		return info, err
	}
	p.advanceHW(p.log.LogEndOffset())
	return info, nil
}

func (p *Partition) advanceHW(to int64) {
	for {
		cur := p.hw.Load()
		if to <= cur || p.hw.CompareAndSwap(cur, to) {
			break
		}
	}
	p.wake()
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

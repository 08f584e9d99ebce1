package partition

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fjord-io/fjord/internal/record"
)

// ErrNotLeader means the replica is not its partition's leader (any more).
var ErrNotLeader = errors.New("partition: this replica is not the leader")

// replicaState is what the replica knows of its role and, as leader, of its
// followers. It is guarded by Partition.rep.mu, which is never held across
// disk I/O.
//
// As leader the replica keeps Kafka's ISR rules: the committed ISR comes
// from the cluster metadata (SetISR); a follower proposed for the ISR but
// not yet committed counts for the high watermark already (the "maximal
// ISR"), so the watermark never outruns what a later ISR will hold; a
// shrink counts only once committed.
type replicaState struct {
	leader     bool
	self       int32
	leaderID   int32 // the leader, as a follower; -1 when unknown
	replicas   []int32
	isr        []int32 // committed; nil with leader set means "self only"
	adding     map[int32]bool
	followers  map[int32]*followerState
	epochStart int64 // log end offset when this replica became leader
}

// followerState is the leader's view of one follower.
type followerState struct {
	leo                int64 // the follower's last fetch offset; -1 before its first fetch
	lastFetch          time.Time
	lastFetchLeaderLEO int64
	lastCaughtUp       time.Time
}

// BecomeLeader makes the replica its partition's leader at epoch with the
// given assignment and committed ISR (which holds self). Followers count as
// caught up now, as in Kafka, so none is dropped from the ISR before it had
// a chance to fetch; their log end offsets are unknown until they fetch, so
// the high watermark does not advance until every ISR member has fetched.
func (p *Partition) BecomeLeader(self, epoch int32, replicas, isr []int32, now time.Time) {
	p.role.Lock()
	defer p.role.Unlock()
	p.rep.mu.Lock()
	r := &p.rep.s
	r.leader = true
	r.self = self
	r.leaderID = self
	r.replicas = slices.Clone(replicas)
	r.isr = slices.Clone(isr)
	r.adding = nil
	r.followers = make(map[int32]*followerState, len(replicas))
	for _, id := range replicas {
		if id != self {
			r.followers[id] = &followerState{leo: -1, lastCaughtUp: now}
		}
	}
	r.epochStart = p.log.LogEndOffset()
	p.leaderEpoch.Store(epoch)
	p.advanceHWLocked()
	p.rep.mu.Unlock()
	p.wake()
}

// BecomeFollower makes the replica a follower of leader (-1: none known) at
// epoch. Waiting produces and fetches are woken so they notice.
func (p *Partition) BecomeFollower(self, epoch, leader int32, replicas []int32) {
	p.role.Lock()
	defer p.role.Unlock()
	p.rep.mu.Lock()
	r := &p.rep.s
	r.leader = false
	r.self = self
	r.leaderID = leader
	r.replicas = slices.Clone(replicas)
	r.isr, r.adding, r.followers = nil, nil, nil
	p.leaderEpoch.Store(epoch)
	p.rep.mu.Unlock()
	p.wake()
}

// IsLeader reports whether the replica is its partition's leader.
func (p *Partition) IsLeader() bool {
	p.rep.mu.Lock()
	defer p.rep.mu.Unlock()
	return p.rep.s.leader
}

// Leader returns the partition's leader as the replica knows it, or -1.
func (p *Partition) Leader() int32 {
	p.rep.mu.Lock()
	defer p.rep.mu.Unlock()
	return p.rep.s.leaderID
}

// ISR returns the committed in-sync replicas as the leader knows them (nil
// on a follower; a leader of a single-replica partition opened by New
// reports none, meaning itself).
func (p *Partition) ISR() []int32 {
	p.rep.mu.Lock()
	defer p.rep.mu.Unlock()
	return slices.Clone(p.rep.s.isr)
}

// ISRSize is the number of committed in-sync replicas, for
// min.insync.replicas; a leader opened by New without an assignment counts
// itself alone.
func (p *Partition) ISRSize() int {
	p.rep.mu.Lock()
	defer p.rep.mu.Unlock()
	if p.rep.s.isr == nil {
		return 1
	}
	return len(p.rep.s.isr)
}

// SetReplicas applies a changed assignment at the current epoch (a
// reassignment adding replicas): new followers are tracked from now, as
// not yet heard from; dropped ones are forgotten.
func (p *Partition) SetReplicas(replicas []int32, now time.Time) {
	p.rep.mu.Lock()
	defer p.rep.mu.Unlock()
	r := &p.rep.s
	if slices.Equal(r.replicas, replicas) {
		return
	}
	r.replicas = slices.Clone(replicas)
	if !r.leader {
		return
	}
	for _, id := range replicas {
		if id != r.self && r.followers[id] == nil {
			r.followers[id] = &followerState{leo: -1, lastCaughtUp: now}
		}
	}
	for id := range r.followers {
		if !slices.Contains(replicas, id) {
			delete(r.followers, id)
		}
	}
}

// SetISR applies a committed ISR (from the cluster metadata) at the
// current epoch; proposals it contains are done.
func (p *Partition) SetISR(isr []int32) {
	p.rep.mu.Lock()
	r := &p.rep.s
	if !r.leader {
		p.rep.mu.Unlock()
		return
	}
	r.isr = slices.Clone(isr)
	for id := range r.adding {
		if slices.Contains(isr, id) {
			delete(r.adding, id)
		}
	}
	moved := p.advanceHWLocked()
	p.rep.mu.Unlock()
	if moved {
		p.wake() // a shrink can release waiting acks=all produces
	}
}

// FollowerFetched records a follower's fetch at offset (so it has every
// record below offset) and advances the high watermark if it can. It
// reports whether the follower should now join the ISR: it is a replica
// outside the ISR that has caught up to the high watermark and to the start
// of this leader's epoch. The caller proposes the change and reports the
// outcome with ISRProposalDone. It fails with ErrNotLeader on a follower.
func (p *Partition) FollowerFetched(replica int32, offset int64, now time.Time) (join bool, err error) {
	p.rep.mu.Lock()
	r := &p.rep.s
	if !r.leader {
		p.rep.mu.Unlock()
		return false, ErrNotLeader
	}
	f := r.followers[replica]
	if f == nil {
		err := fmt.Errorf("broker %d is not a replica of %s-%d (replicas %v)", replica, p.Topic, p.Index, r.replicas)
		p.rep.mu.Unlock()
		return false, err
	}
	leo := p.log.LogEndOffset()
	switch {
	case offset >= leo:
		f.lastCaughtUp = now
	case offset >= f.lastFetchLeaderLEO && f.lastFetch.After(f.lastCaughtUp):
		f.lastCaughtUp = f.lastFetch
	}
	f.lastFetchLeaderLEO = leo
	f.lastFetch = now
	f.leo = offset
	moved := p.advanceHWLocked()
	join = !slices.Contains(r.isr, replica) && !r.adding[replica] &&
		offset >= p.hw.Load() && offset >= r.epochStart
	if join {
		if r.adding == nil {
			r.adding = make(map[int32]bool)
		}
		r.adding[replica] = true
	}
	p.rep.mu.Unlock()
	if moved {
		p.wake()
	}
	return join, nil
}

// ISRProposalDone ends the proposal FollowerFetched asked for; on success
// the caller also applies the committed ISR with SetISR.
func (p *Partition) ISRProposalDone(replica int32) {
	p.rep.mu.Lock()
	delete(p.rep.s.adding, replica)
	p.rep.mu.Unlock()
}

// Lagging returns the followers in the committed ISR that have not caught
// up with the leader's log end within maxLag (replica.lag.time.max.ms).
func (p *Partition) Lagging(now time.Time, maxLag time.Duration) []int32 {
	p.rep.mu.Lock()
	defer p.rep.mu.Unlock()
	r := &p.rep.s
	if !r.leader {
		return nil
	}
	var out []int32
	for _, id := range r.isr {
		if f := r.followers[id]; id != r.self && f != nil && now.Sub(f.lastCaughtUp) > maxLag {
			out = append(out, id)
		}
	}
	return out
}

// advanceHWLocked raises the high watermark to the smallest log end offset
// among the leader and the maximal ISR's followers, and reports whether it
// moved. The caller holds rep.mu and wakes waiters if it did.
func (p *Partition) advanceHWLocked() bool {
	r := &p.rep.s
	if !r.leader {
		return false
	}
	hw := p.log.LogEndOffset()
	consider := func(id int32) {
		if id == r.self {
			return
		}
		f := r.followers[id]
		if f == nil || f.leo < 0 {
			hw = -1 // not heard from yet: the watermark waits
			return
		}
		hw = min(hw, f.leo)
	}
	for _, id := range r.isr {
		consider(id)
	}
	for id := range r.adding {
		consider(id)
	}
	for {
		cur := p.hw.Load()
		if hw <= cur {
			return false
		}
		if p.hw.CompareAndSwap(cur, hw) {
			return true
		}
	}
}

// ErrStaleFollower means a follower's operation was decided for a role the
// replica no longer has (it leads now, or follows at a newer epoch).
var ErrStaleFollower = errors.New("partition: no longer a follower at that epoch")

// followerAt reports whether the replica follows at epoch; the caller holds
// role.
func (p *Partition) followerAt(epoch int32) bool {
	p.rep.mu.Lock()
	defer p.rep.mu.Unlock()
	return !p.rep.s.leader && p.leaderEpoch.Load() == epoch
}

// AppendReplicated appends batches fetched from the leader at epoch (the
// follower path), whole batches with the leader's offsets and epochs, and
// records their producers so that this replica deduplicates retries the
// same way once it leads. It fails with ErrStaleFollower if the replica no
// longer follows at epoch.
func (p *Partition) AppendReplicated(epoch int32, batches []byte, now time.Time) error {
	p.role.RLock()
	defer p.role.RUnlock()
	if !p.followerAt(epoch) {
		return ErrStaleFollower
	}
	p.idem.mu.Lock()
	defer p.idem.mu.Unlock()
	if err := p.log.AppendReplicated(batches, now); err != nil {
		return err
	}
	for pos := 0; pos < len(batches); {
		h, err := record.ReadHeader(batches[pos:])
		if err != nil {
			return err
		}
		if h.ProducerID >= 0 && !h.Control() {
			p.idem.producers.apply(h)
		}
		pos += h.Size()
	}
	return nil
}

// SetFollowerHW sets a follower's high watermark from its leader's at
// epoch: the leader's, capped at this replica's log end.
func (p *Partition) SetFollowerHW(epoch int32, leaderHW int64) {
	p.role.RLock()
	defer p.role.RUnlock()
	if p.followerAt(epoch) {
		p.hw.Store(min(leaderHW, p.log.LogEndOffset()))
	}
}

// TruncateTo removes the records at and above offset (a follower at epoch
// whose log diverged from its leader's) and rebuilds the producer state
// from what remains. It fails with ErrStaleFollower if the replica no
// longer follows at epoch.
func (p *Partition) TruncateTo(epoch int32, offset int64) error {
	p.role.RLock()
	defer p.role.RUnlock()
	if !p.followerAt(epoch) {
		return ErrStaleFollower
	}
	p.idem.mu.Lock()
	defer p.idem.mu.Unlock()
	if offset >= p.log.LogEndOffset() {
		return nil
	}
	if err := p.log.TruncateTo(offset); err != nil {
		return err
	}
	producers, err := rebuildProducers(p.log.Dir(), p.log.LogEndOffset(), p.log.ScanHeaders)
	if err != nil {
		return fmt.Errorf("partition %s-%d: after truncation: %w", p.Topic, p.Index, err)
	}
	p.idem.producers = producers
	if leo := p.log.LogEndOffset(); p.hw.Load() > leo {
		p.hw.Store(leo)
	}
	return nil
}

// ResetTo empties a follower's log and restarts it at offset, its leader's
// log start, when the leader no longer has the records this replica needs.
// It fails with ErrStaleFollower if the replica no longer follows at epoch.
func (p *Partition) ResetTo(epoch int32, offset int64) error {
	p.role.RLock()
	defer p.role.RUnlock()
	if !p.followerAt(epoch) {
		return ErrStaleFollower
	}
	p.idem.mu.Lock()
	defer p.idem.mu.Unlock()
	if err := p.log.ResetTo(offset); err != nil {
		return err
	}
	p.idem.producers = make(producerState)
	p.hw.Store(offset)
	p.wake()
	return nil
}

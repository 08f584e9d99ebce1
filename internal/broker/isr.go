package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fjord-io/fjord/internal/metadata"
	"github.com/fjord-io/fjord/internal/partition"
)

// Replication, the leader side's ISR upkeep (Kafka's AlterPartition): a
// follower that has caught up joins the ISR, and one that has not caught up
// for replica.lag.time.max.ms leaves it. Either change is a
// compare-and-swap on the partition's metadata that holds only while this
// broker still leads at the epoch it decided at, so a deposed leader can
// never change the ISR. Changes are gathered for isrLinger (or until
// isrBatchMax are waiting) and written in one batch (UpdatePartitions), so a
// broker rejoining thousands of ISRs costs tens of etcd transactions, not
// thousands. The committed ISR comes back through the metadata sync (and is
// applied at once here too).

// errStaleLeader means the ISR change was decided by a leader that has since
// been replaced: nothing was written.
var errStaleLeader = errors.New("no longer the leader at that epoch")

const (
	// isrBatchMax is the most ISR changes written in one batch: one etcd
	// transaction at etcd's default --max-txn-ops.
	isrBatchMax = 128
	// isrLinger is how long the first change of a batch waits for others.
	isrLinger = 5 * time.Millisecond
	// isrWorkers bounds the batches in flight.
	isrWorkers = 4
)

// isrManager gathers ISR changes and writes them in batches; run owns the
// batch being gathered.
type isrManager struct {
	b     *Broker
	joins chan isrChange
}

type isrChange struct {
	p       *partition.Partition
	epoch   int32
	replica int32
	join    bool
}

func newISRManager(b *Broker) *isrManager {
	return &isrManager{b: b, joins: make(chan isrChange, 4096)}
}

// proposeJoin asks for replica to join p's ISR; FollowerFetched decided it
// should. When the queue is full the proposal is dropped, and the next
// fetch proposes it again.
func (m *isrManager) proposeJoin(p *partition.Partition, replica int32) {
	select {
	case m.joins <- isrChange{p: p, epoch: p.LeaderEpoch(), replica: replica, join: true}:
	default:
		p.ISRProposalDone(replica)
	}
}

// run gathers proposals, and lagging followers found every half
// replica.lag.time.max.ms (as Kafka checks), into batches for the workers
// until ctx ends. A batch goes once isrLinger has passed since its first
// change or isrBatchMax changes wait, whichever comes first.
func (m *isrManager) run(ctx context.Context) {
	work := make(chan []isrChange)
	var wg sync.WaitGroup
	for range isrWorkers {
		wg.Go(func() {
			for batch := range work {
				m.apply(batch)
			}
		})
	}
	defer wg.Wait()
	defer close(work)
	tick := time.NewTicker(max(m.b.settings.replicaLagMax/2, 100*time.Millisecond))
	defer tick.Stop()
	linger := time.NewTimer(isrLinger)
	linger.Stop()
	defer linger.Stop()

	var batch []isrChange // gathered, oldest first
	lingered := false     // batch[0] has waited isrLinger
	defer func() {        // never written: the proposals are over
		for _, c := range batch {
			if c.join {
				c.p.ISRProposalDone(c.replica)
			}
		}
	}()
	add := func(c isrChange) {
		if len(batch) == 0 {
			linger.Reset(isrLinger)
		}
		batch = append(batch, c)
	}
	for {
		var out chan<- []isrChange
		n := min(len(batch), isrBatchMax)
		if n == isrBatchMax || n > 0 && lingered {
			out = work
		}
		select {
		case <-ctx.Done():
			return
		case c := <-m.joins:
			add(c)
		case <-linger.C:
			lingered = len(batch) > 0
		case out <- batch[:n:n]:
			if batch = batch[n:]; len(batch) == 0 {
				batch, lingered = nil, false
				linger.Stop()
			}
		case now := <-tick.C:
			for _, ts := range m.b.parts.all() {
				for _, p := range ts.parts {
					if p == nil {
						continue
					}
					for _, r := range p.Lagging(now, m.b.settings.replicaLagMax) {
						add(isrChange{p: p, epoch: p.LeaderEpoch(), replica: r})
					}
				}
			}
		}
	}
}

// apply writes a batch of ISR changes and applies the committed ISRs.
func (m *isrManager) apply(batch []isrChange) {
	b := m.b
	updates := make([]metadata.PartitionUpdate, len(batch))
	for i, c := range batch {
		updates[i] = metadata.PartitionUpdate{Topic: c.p.Topic, Index: c.p.Index, Fn: func(mp *metadata.Partition) error {
			if mp.Leader != b.cfg.NodeID || mp.LeaderEpoch != c.epoch {
				return errStaleLeader
			}
			if c.join {
				if !b.eligible(c.replica) {
					return errStaleLeader // a fenced broker rejoins once the controller unfences it
				}
				if !slices.Contains(mp.ISR, c.replica) {
					mp.ISR = append(mp.ISR, c.replica)
				}
			} else {
				mp.ISR = slices.DeleteFunc(mp.ISR, func(r int32) bool { return r == c.replica })
			}
			return nil
		}}
	}
	errs := b.meta.UpdatePartitions(updates)
	committed := make(map[string]metadata.Topic) // read once per topic, after the writes
	for i, c := range batch {
		m.applied(c, errs[i], committed)
	}
}

// applied logs the outcome of one change and, if it was written, applies
// the committed ISR; then it ends a join's proposal.
func (m *isrManager) applied(c isrChange, err error, committed map[string]metadata.Topic) {
	b := m.b
	if c.join {
		defer c.p.ISRProposalDone(c.replica) // after SetISR: the HW counts the replica throughout
	}
	if err != nil {
		if !errors.Is(err, errStaleLeader) {
			b.log.Warn("ISR change failed", "topic", c.p.Topic, "partition", c.p.Index, "replica", c.replica, "join", c.join, "err", err)
		}
		return
	}
	what := "shrank"
	if c.join {
		what = "expanded"
	}
	b.log.Info(fmt.Sprintf("ISR %s", what), "topic", c.p.Topic, "partition", c.p.Index, "replica", c.replica, "epoch", c.epoch)
	t, ok := committed[c.p.Topic]
	if !ok {
		if t, ok = b.meta.Topic(c.p.Topic); !ok {
			return
		}
		committed[c.p.Topic] = t
	}
	if int(c.p.Index) < len(t.Partitions) {
		if mp := t.Partitions[c.p.Index]; mp.Leader == b.cfg.NodeID && mp.LeaderEpoch == c.epoch {
			c.p.SetISR(mp.ISR)
		}
	}
}

// eligible reports whether node is registered and unfenced.
func (b *Broker) eligible(node int32) bool {
	return slices.ContainsFunc(b.eligibleBrokers(), func(br metadata.Broker) bool { return br.NodeID == node })
}

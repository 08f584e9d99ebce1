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
// never change the ISR. The committed ISR comes back through the metadata
// sync (and is applied at once here too).

// errStaleLeader means the ISR change was decided by a leader that has since
// been replaced: nothing was written.
var errStaleLeader = errors.New("no longer the leader at that epoch")

// isrWorkers bounds the ISR changes in flight.
const isrWorkers = 16

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

// run applies proposals and checks for lagging followers every half
// replica.lag.time.max.ms, as Kafka does, until ctx ends.
func (m *isrManager) run(ctx context.Context) {
	work := make(chan isrChange)
	var wg sync.WaitGroup
	for range isrWorkers {
		wg.Go(func() {
			for c := range work {
				m.apply(c)
			}
		})
	}
	defer wg.Wait()
	defer close(work)
	tick := time.NewTicker(max(m.b.settings.replicaLagMax/2, 100*time.Millisecond))
	defer tick.Stop()
	send := func(c isrChange) bool {
		select {
		case work <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-m.joins:
			if !send(c) {
				return
			}
		case now := <-tick.C:
			for _, ts := range m.b.parts.all() {
				for _, p := range ts.parts {
					if p == nil {
						continue
					}
					for _, r := range p.Lagging(now, m.b.settings.replicaLagMax) {
						if !send(isrChange{p: p, epoch: p.LeaderEpoch(), replica: r}) {
							return
						}
					}
				}
			}
		}
	}
}

// apply writes one ISR change and applies the committed ISR.
func (m *isrManager) apply(c isrChange) {
	b := m.b
	if c.join {
		defer c.p.ISRProposalDone(c.replica)
	}
	err := b.meta.UpdatePartition(c.p.Topic, c.p.Index, func(mp *metadata.Partition) error {
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
	})
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
	if t, ok := b.meta.Topic(c.p.Topic); ok && int(c.p.Index) < len(t.Partitions) {
		if mp := t.Partitions[c.p.Index]; mp.Leader == b.cfg.NodeID && mp.LeaderEpoch == c.epoch {
			c.p.SetISR(mp.ISR)
		}
	}
}

// eligible reports whether node is registered and unfenced.
func (b *Broker) eligible(node int32) bool {
	return slices.ContainsFunc(b.eligibleBrokers(), func(br metadata.Broker) bool { return br.NodeID == node })
}

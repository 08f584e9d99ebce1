package partition

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fjord-io/fjord/internal/commitlog"
)

// plain builds a batch of n records without a producer id.
func plain(t *testing.T, n int) []byte {
	return batch(t, -1, -1, -1, n, 1)
}

func TestLeaderHighWatermarkFollowsTheISR(t *testing.T) {
	p := open(t, t.TempDir(), commitlog.DefaultConfig())
	now := time.Now()
	p.BecomeLeader(1, 5, []int32{1, 2, 3}, []int32{1, 2, 3}, now)
	if _, err := p.AppendLeader(plain(t, 10), now); err != nil {
		t.Fatal(err)
	}
	if hw := p.HighWatermark(); hw != 0 {
		t.Fatalf("HW %d before any follower fetched, want 0", hw)
	}
	if _, err := p.FollowerFetched(2, 10, now); err != nil {
		t.Fatal(err)
	}
	if hw := p.HighWatermark(); hw != 0 {
		t.Fatalf("HW %d with follower 3 unheard of, want 0", hw)
	}
	p.FollowerFetched(3, 4, now)
	if hw := p.HighWatermark(); hw != 4 {
		t.Fatalf("HW %d, want the slowest ISR member's 4", hw)
	}
	// Shrinking the ISR to the caught-up members releases the watermark.
	p.SetISR([]int32{1, 2})
	if hw := p.HighWatermark(); hw != 10 {
		t.Fatalf("HW %d after the ISR shrank, want 10", hw)
	}
	// A follower that has caught up to the watermark is proposed for the
	// ISR once, and counts for the watermark while proposed.
	join, _ := p.FollowerFetched(3, 10, now)
	if !join {
		t.Fatal("caught-up follower 3 not proposed for the ISR")
	}
	if join, _ := p.FollowerFetched(3, 10, now); join {
		t.Fatal("follower 3 proposed twice")
	}
	if _, err := p.AppendLeader(plain(t, 5), now); err != nil {
		t.Fatal(err)
	}
	p.FollowerFetched(2, 15, now)
	if hw := p.HighWatermark(); hw != 10 {
		t.Fatalf("HW %d, want 10: proposed member 3 has not fetched past 10", hw)
	}
	p.ISRProposalDone(3)
	p.SetISR([]int32{1, 2, 3})
	p.FollowerFetched(3, 15, now)
	if hw := p.HighWatermark(); hw != 15 {
		t.Fatalf("HW %d, want 15", hw)
	}
}

func TestLaggingFollowers(t *testing.T) {
	p := open(t, t.TempDir(), commitlog.DefaultConfig())
	t0 := time.Now()
	p.BecomeLeader(1, 0, []int32{1, 2, 3}, []int32{1, 2, 3}, t0)
	p.AppendLeader(plain(t, 3), t0)
	p.FollowerFetched(2, 3, t0.Add(5*time.Second)) // caught up
	p.FollowerFetched(3, 1, t0.Add(5*time.Second)) // behind
	lag := p.Lagging(t0.Add(11*time.Second), 10*time.Second)
	if !slices.Equal(lag, []int32{3}) {
		t.Fatalf("lagging %v, want [3]", lag)
	}
}

func TestRolesFenceAppends(t *testing.T) {
	p := open(t, t.TempDir(), commitlog.DefaultConfig())
	now := time.Now()
	p.BecomeFollower(1, 3, 2, []int32{1, 2})
	if _, err := p.AppendLeader(plain(t, 1), now); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("leader append on a follower: %v", err)
	}
	// The leader's batch, with offsets assigned, as a fetch returns it.
	leader := open(t, t.TempDir(), commitlog.DefaultConfig())
	leader.BecomeLeader(2, 3, []int32{1, 2}, []int32{2}, now)
	b := plain(t, 4)
	if _, err := leader.AppendLeader(b, now); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendReplicated(2, b, now); !errors.Is(err, ErrStaleFollower) {
		t.Fatalf("append at a stale epoch: %v", err)
	}
	if err := p.AppendReplicated(3, b, now); err != nil {
		t.Fatal(err)
	}
	p.SetFollowerHW(3, 100)
	if hw := p.HighWatermark(); hw != 4 {
		t.Fatalf("follower HW %d, want its log end 4", hw)
	}
	if err := p.TruncateTo(3, 2); err != nil {
		t.Fatal(err)
	}
	if leo := p.Log().LogEndOffset(); leo != 0 {
		t.Fatalf("log end %d after truncating inside the only batch, want 0", leo)
	}
	p.BecomeLeader(1, 4, []int32{1, 2}, []int32{1}, now)
	if err := p.AppendReplicated(4, b, now); !errors.Is(err, ErrStaleFollower) {
		t.Fatalf("replicated append on a leader: %v", err)
	}
}

func TestReplicatedProducerState(t *testing.T) {
	now := time.Now()
	leader := open(t, t.TempDir(), commitlog.DefaultConfig())
	leader.BecomeLeader(1, 0, []int32{1, 2}, []int32{1}, now)
	follower := open(t, t.TempDir(), commitlog.DefaultConfig())
	follower.BecomeFollower(2, 0, 1, []int32{1, 2})
	for seq := int32(0); seq < 15; seq += 5 {
		b := batch(t, 7, 0, seq, 5, 1)
		if _, err := leader.AppendLeader(b, now); err != nil {
			t.Fatal(err)
		}
		if err := follower.AppendReplicated(0, b, now); err != nil {
			t.Fatal(err)
		}
	}
	// The follower takes over; a retry of the producer's last batch is a
	// duplicate there too, and the next batch continues the sequence.
	follower.BecomeLeader(2, 1, []int32{1, 2}, []int32{2}, now)
	info, err := follower.AppendLeader(batch(t, 7, 0, 10, 5, 1), now)
	if err != nil || !info.Duplicate || info.FirstOffset != 10 {
		t.Fatalf("retry on the new leader: %+v, %v; want a duplicate at 10", info, err)
	}
	if _, err := follower.AppendLeader(batch(t, 7, 0, 16, 1, 1), now); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("sequence gap on the new leader: %v", err)
	}
}

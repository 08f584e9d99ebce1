package controller

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/fjord-io/fjord/internal/metadata"
)

func brokersInRacks(racks ...string) []metadata.Broker {
	bs := make([]metadata.Broker, len(racks))
	for i, r := range racks {
		bs[i] = metadata.Broker{NodeID: int32(i + 1), Rack: r}
	}
	return bs
}

func TestAssign(t *testing.T) {
	for _, tc := range []struct {
		name       string
		brokers    []metadata.Broker
		partitions int
		rf         int
		// distinctRacks: every partition's replicas are in distinct racks.
		distinctRacks bool
		// uneven: racks of different sizes, so brokers in small racks
		// hold more replicas (one per partition, each in a rack of its own).
		uneven bool
	}{
		{"no racks", brokersInRacks("", "", "", "", ""), 100, 3, false, false},
		{"three racks of two", brokersInRacks("a", "a", "b", "b", "c", "c"), 60, 3, true, false},
		{"uneven racks", brokersInRacks("a", "a", "a", "b", "c"), 50, 3, true, true},
		{"two racks, rf 2", brokersInRacks("a", "b", "a", "b"), 40, 2, true, false},
		{"more rf than racks", brokersInRacks("a", "a", "b"), 30, 3, false, false},
		{"one broker", brokersInRacks("a"), 7, 1, true, false},
		{"rf equals brokers", brokersInRacks("a", "b", "c"), 9, 3, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(5) {
				got, err := Assign(tc.brokers, tc.partitions, tc.rf, 0, seed)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != tc.partitions {
					t.Fatalf("seed %d: %d assignments", seed, len(got))
				}
				rackOf := make(map[int32]string)
				for _, b := range tc.brokers {
					rackOf[b.NodeID] = b.Rack
				}
				leaders := make(map[int32]int)
				replicas := make(map[int32]int)
				for p, rs := range got {
					if len(rs) != tc.rf {
						t.Fatalf("seed %d: partition %d has replicas %v", seed, p, rs)
					}
					leaders[rs[0]]++
					racks := make(map[string]bool)
					for i, r := range rs {
						replicas[r]++
						if slices.Contains(rs[:i], r) {
							t.Fatalf("seed %d: partition %d has broker %d twice: %v", seed, p, r, rs)
						}
						if tc.distinctRacks && racks[rackOf[r]] {
							t.Fatalf("seed %d: partition %d has two replicas in rack %q: %v", seed, p, rackOf[r], rs)
						}
						racks[rackOf[r]] = true
					}
				}
				// Leaders go round-robin: every broker leads its share, to
				// within one partition.
				n := len(tc.brokers)
				for _, b := range tc.brokers {
					if l := leaders[b.NodeID]; l < tc.partitions/n || l > (tc.partitions+n-1)/n {
						t.Errorf("seed %d: broker %d leads %d of %d partitions: %v", seed, b.NodeID, l, tc.partitions, leaders)
					}
				}
				if !tc.uneven { // followers are spread evenly too
					for _, b := range tc.brokers {
						want := tc.partitions * tc.rf / n
						if got := replicas[b.NodeID]; got < want-tc.rf || got > want+tc.rf {
							t.Errorf("seed %d: broker %d holds %d replicas, want about %d: %v", seed, b.NodeID, got, want, replicas)
						}
					}
				}
			}
		})
	}
}

func TestAssignContinues(t *testing.T) {
	bs := brokersInRacks("a", "b", "c", "a", "b", "c")
	all, err := Assign(bs, 20, 3, 0, 42)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Assign(bs, 20, 3, 0, 42)
	if !slices.EqualFunc(all, again, slices.Equal) {
		t.Error("same seed, different assignment")
	}
	more, err := Assign(bs, 8, 3, 12, 42)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(all[12:], more, slices.Equal) {
		t.Errorf("partitions 12-19 placed apart from 0-19:\n%v\n%v", all[12:], more)
	}
	// The input order of brokers does not matter.
	rev := slices.Clone(bs)
	slices.Reverse(rev)
	if shuffled, _ := Assign(rev, 20, 3, 0, 42); !slices.EqualFunc(all, shuffled, slices.Equal) {
		t.Error("broker order changed the assignment")
	}
}

func TestAssignErrors(t *testing.T) {
	bs := brokersInRacks("a", "b")
	_, err := Assign(bs, 3, 3, 0, 1)
	if !errors.Is(err, ErrInvalidReplicationFactor) || !strings.Contains(err.Error(), "2 available brokers") {
		t.Errorf("rf 3 on 2 brokers: %v", err)
	}
	if _, err := Assign(bs, 3, 0, 0, 1); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Errorf("rf 0: %v", err)
	}
	if _, err := Assign(nil, 1, 1, 0, 1); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Errorf("no brokers: %v", err)
	}
	if _, err := Assign(bs, -1, 1, 0, 1); err == nil {
		t.Error("negative partition count accepted")
	}
	if got, err := Assign(bs, 0, 2, 0, 1); err != nil || len(got) != 0 {
		t.Errorf("no partitions: %v, %v", got, err)
	}
}

package metadata

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestReassignmentRecord checks UpdatePartition's rules for reassignments
// (AddingReplicas, RemovingReplicas, a changing replica set) on both stores,
// and that the new fields survive each store's encoding.
func TestReassignmentRecord(t *testing.T) {
	type partitionStore interface {
		CreateTopic(Topic) (Topic, error)
		Topic(name string) (Topic, bool)
		UpdatePartition(topic string, index int32, fn func(*Partition) error) error
	}
	localPath := filepath.Join(t.TempDir(), "meta.json")
	for _, tc := range []struct {
		name   string
		open   func(t *testing.T) partitionStore
		reopen func(t *testing.T) partitionStore // another view of the same data
	}{
		{"local",
			func(t *testing.T) partitionStore {
				l, err := OpenLocal(localPath, "c")
				if err != nil {
					t.Fatal(err)
				}
				return l
			},
			func(t *testing.T) partitionStore {
				l, err := OpenLocal(localPath, "c")
				if err != nil {
					t.Fatal(err)
				}
				return l
			}},
		{"etcd",
			func(t *testing.T) partitionStore { return openEtcd(t, EtcdConfig{}) },
			func(t *testing.T) partitionStore { return openEtcd(t, EtcdConfig{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.open(t)
			if _, err := s.CreateTopic(Topic{Name: "t", Partitions: []Partition{
				{Index: 0, Leader: 1, LeaderEpoch: 3, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}},
			}}); err != nil {
				t.Fatal(err)
			}
			get := func() Partition {
				tp, _ := s.Topic("t")
				return tp.Partitions[0]
			}
			update := func(fn func(*Partition)) error {
				return s.UpdatePartition("t", 0, func(p *Partition) error { fn(p); return nil })
			}

			// Reordering replicas or changing the ISR keeps the epoch.
			if err := update(func(p *Partition) { p.Replicas = []int32{2, 1, 3}; p.ISR = []int32{3, 1, 2} }); err != nil {
				t.Fatal(err)
			}
			if got := get(); got.LeaderEpoch != 3 {
				t.Errorf("reorder: epoch %d, want 3", got.LeaderEpoch)
			}

			// Starting a reassignment from [2 1 3] to [4 2 1] only adds a
			// replica (3 leaves at completion): leader and epoch stay.
			start := func(p *Partition) {
				p.Replicas = []int32{4, 2, 1, 3}
				p.AddingReplicas = []int32{4}
				p.RemovingReplicas = []int32{3}
			}
			if err := update(start); err != nil {
				t.Fatal(err)
			}
			want := Partition{Index: 0, Leader: 1, LeaderEpoch: 3, Replicas: []int32{4, 2, 1, 3}, ISR: []int32{3, 1, 2},
				AddingReplicas: []int32{4}, RemovingReplicas: []int32{3}}
			if diff := cmp.Diff(want, get()); diff != "" {
				t.Errorf("started (-want +got):\n%s", diff)
			}
			if !get().Reassigning() {
				t.Error("Reassigning() = false during a reassignment")
			}
			other := tc.reopen(t)
			eventually(t, 10*time.Second, "another store to see the reassignment", func() bool {
				tp, ok := other.Topic("t")
				return ok && cmp.Equal(tp.Partitions[0], want)
			})

			// Completion with a new leader: one bump, not two.
			if err := update(func(p *Partition) {
				p.Replicas, p.ISR, p.Leader = []int32{4, 2, 1}, []int32{1, 2, 4}, 4
				p.AddingReplicas, p.RemovingReplicas = nil, nil
			}); err != nil {
				t.Fatal(err)
			}
			want = Partition{Index: 0, Leader: 4, LeaderEpoch: 4, Replicas: []int32{4, 2, 1}, ISR: []int32{1, 2, 4}}
			if diff := cmp.Diff(want, get()); diff != "" {
				t.Errorf("completed (-want +got):\n%s", diff)
			}
			if get().Reassigning() {
				t.Error("Reassigning() = true after completion")
			}

			// Broken rules change nothing.
			for name, fn := range map[string]func(*Partition){
				"duplicate replica":      func(p *Partition) { p.Replicas = []int32{4, 2, 1, 2} },
				"adding not a replica":   func(p *Partition) { p.AddingReplicas = []int32{7} },
				"removing not a replica": func(p *Partition) { p.RemovingReplicas = []int32{7} },
				"adding and removing":    func(p *Partition) { p.AddingReplicas, p.RemovingReplicas = []int32{2}, []int32{2} },
				"adding twice":           func(p *Partition) { p.AddingReplicas = []int32{2, 2} },
				"ISR not a replica":      func(p *Partition) { p.Replicas = []int32{4, 2} },
			} {
				if err := update(fn); err == nil {
					t.Errorf("%s: accepted", name)
				}
			}
			if diff := cmp.Diff(want, get()); diff != "" {
				t.Errorf("after refused updates (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReassignmentRecordCompat checks that a partition record written
// without the reassignment fields (by an older broker) decodes as a
// partition with no reassignment in progress, and that records without one
// leave the fields out.
func TestReassignmentRecordCompat(t *testing.T) {
	const old = `{"leader":1,"leaderEpoch":2,"replicas":[1,2],"isr":[1]}`
	var r partitionRecord
	if err := json.Unmarshal([]byte(old), &r); err != nil {
		t.Fatal(err)
	}
	if got := fromRecord(0, r); got.Reassigning() || got.AddingReplicas != nil || got.RemovingReplicas != nil {
		t.Errorf("old record decoded as %+v", got)
	}
	if got := mustJSON(toRecord(fromRecord(0, r))); got != old {
		t.Errorf("record %s, want %s", got, old)
	}
}

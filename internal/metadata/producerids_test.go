package metadata

import (
	"path/filepath"
	"testing"
)

func TestAllocateProducerIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.json")
	l, err := OpenLocal(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.CreateTopic(Topic{Name: "t", Partitions: []Partition{{Index: 0}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ n, want int64 }{{1000, 0}, {1, 1000}, {10, 1001}} {
		first, err := l.AllocateProducerIDs(tc.n)
		if err != nil || first != tc.want {
			t.Fatalf("allocate %d: %d, %v; want %d", tc.n, first, err, tc.want)
		}
	}
	if _, err := l.AllocateProducerIDs(0); err == nil {
		t.Fatal("allocate 0: no error")
	}

	// A restart continues after the last reservation, and keeps the topics.
	l, err = OpenLocal(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if first, err := l.AllocateProducerIDs(5); err != nil || first != 1011 {
		t.Fatalf("after reopen: %d, %v; want 1011", first, err)
	}
	if _, ok := l.Topic("t"); !ok {
		t.Fatal("topic lost")
	}
}

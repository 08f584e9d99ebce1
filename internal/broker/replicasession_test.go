package broker

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func wantPart(topic string, partition int32, offset int64) replicaFetchPart {
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.CurrentLeaderEpoch = 3
	rp.PartitionMaxBytes = 1 << 20
	return replicaFetchPart{topic: topic, rp: rp}
}

// listed returns "topic/partition@offset" for every partition of req, and
// "-topic/partition" for every forgotten one.
func listed(req *kmsg.FetchRequest) []string {
	var out []string
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			out = append(out, fmt.Sprintf("%s/%d@%d", rt.Topic, rp.Partition, rp.FetchOffset))
		}
	}
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			out = append(out, fmt.Sprintf("-%s/%d", ft.Topic, p))
		}
	}
	slices.Sort(out)
	return out
}

func TestReplicaSessionIncremental(t *testing.T) {
	var s replicaSession
	step := func(want []replicaFetchPart, code int16, respID int32) (*kmsg.FetchRequest, bool) {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		full := s.fill(req, want)
		return req, s.handled(full, code, respID)
	}
	check := func(req *kmsg.FetchRequest, id, epoch int32, parts ...string) {
		t.Helper()
		if req.SessionID != id || req.SessionEpoch != epoch {
			t.Fatalf("session %d epoch %d, want %d epoch %d", req.SessionID, req.SessionEpoch, id, epoch)
		}
		if got := listed(req); !slices.Equal(got, parts) && !(len(got) == 0 && len(parts) == 0) {
			t.Fatalf("request lists %v, want %v", got, parts)
		}
	}

	// The first fetch opens the session with every partition.
	req, _ := step([]replicaFetchPart{wantPart("a", 0, 5), wantPart("a", 1, 7), wantPart("b", 0, 1)}, 0, 42)
	check(req, 0, 0, "a/0@5", "a/1@7", "b/0@1")

	// Nothing moved: an empty incremental fetch.
	req, _ = step([]replicaFetchPart{wantPart("a", 0, 5), wantPart("a", 1, 7), wantPart("b", 0, 1)}, 0, 42)
	check(req, 42, 1)

	// One partition moved, one is no longer fetched, one is new.
	req, _ = step([]replicaFetchPart{wantPart("a", 0, 6), wantPart("b", 0, 1), wantPart("b", 1, 0)}, 0, 42)
	check(req, 42, 2, "-a/1", "a/0@6", "b/1@0")

	// The forgotten partition comes back: listed again.
	req, _ = step([]replicaFetchPart{wantPart("a", 0, 6), wantPart("a", 1, 7), wantPart("b", 0, 1), wantPart("b", 1, 0)}, 0, 42)
	check(req, 42, 3, "a/1@7")

	// The leader lost the session: no partition is to blame, and the next
	// fetch closes the old session and opens a new one with everything.
	all := []replicaFetchPart{wantPart("a", 0, 6), wantPart("a", 1, 7), wantPart("b", 0, 1), wantPart("b", 1, 0)}
	req, sessionErr := step(all, kerr.FetchSessionIDNotFound.Code, 0)
	check(req, 42, 4)
	if !sessionErr {
		t.Fatal("FETCH_SESSION_ID_NOT_FOUND not reported as a session error")
	}
	req, _ = step(all, 0, 43)
	check(req, 42, 0, "a/0@6", "a/1@7", "b/0@1", "b/1@0")
	req, _ = step(all, 0, 43)
	check(req, 43, 1)

	// Another top-level error is not the session's, but still reopens it.
	req, sessionErr = step(all, kerr.UnknownServerError.Code, 0)
	check(req, 43, 2)
	if sessionErr {
		t.Fatal("UNKNOWN_SERVER_ERROR reported as a session error")
	}

	// A leader with a full session cache answers sessionless: keep asking.
	req, _ = step(all, 0, 0)
	check(req, 43, 0, "a/0@6", "a/1@7", "b/0@1", "b/1@0")
	req, _ = step(all, 0, 0)
	check(req, 0, 0, "a/0@6", "a/1@7", "b/0@1", "b/1@0")
}

func TestReplicaSessionEpochWraps(t *testing.T) {
	s := replicaSession{id: 7, epoch: 1<<31 - 1}
	req := kmsg.NewPtrFetchRequest()
	full := s.fill(req, []replicaFetchPart{wantPart("a", 0, 1)})
	s.handled(full, 0, 7)
	if s.epoch != 1 {
		t.Fatalf("epoch after MaxInt32 = %d, want 1 (0 would reopen the session)", s.epoch)
	}
}

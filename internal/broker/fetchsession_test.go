package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchSessions drives KIP-227 at the protocol level: a full fetch opens a
// session, incremental fetches carry only changes and get back only
// partitions with something new, and bad session ids and epochs are refused.
func TestFetchSessions(t *testing.T) {
	addr := startBroker(t, t.TempDir(), nil)
	ctx := t.Context()
	cl := newClient(t, addr)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "sess"); err != nil {
		t.Fatal(err)
	}
	md, err := adm.ListTopics(ctx, "sess")
	if err != nil {
		t.Fatal(err)
	}
	id := md["sess"].ID
	produce := func(p int32, v string) {
		t.Helper()
		r := &kgo.Record{Topic: "sess", Partition: p, Value: []byte(v)}
		if err := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner())).ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	fetch := func(sessionID, epoch int32, offsets map[int32]int64) *kmsg.FetchResponse {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis = 0
		req.MaxBytes = 1 << 20
		req.SessionID, req.SessionEpoch = sessionID, epoch
		if len(offsets) > 0 {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = "sess", id
			for p, o := range offsets {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, o, 1<<20, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	parts := func(resp *kmsg.FetchResponse) map[int32]int {
		out := map[int32]int{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				out[rp.Partition] = len(rp.RecordBatches)
			}
		}
		return out
	}

	produce(0, "a")
	full := fetch(0, 0, map[int32]int64{0: 0, 1: 0})
	if full.ErrorCode != 0 || full.SessionID == 0 {
		t.Fatalf("opening fetch: error %d, session %d; want a new session", full.ErrorCode, full.SessionID)
	}
	if got := parts(full); len(got) != 2 || got[0] == 0 {
		t.Fatalf("opening fetch returned partitions %v; want both, with records on 0", got)
	}
	sid := full.SessionID

	// Nothing new anywhere: an empty incremental response.
	idle := fetch(sid, 1, map[int32]int64{0: 1})
	if got := parts(idle); idle.ErrorCode != 0 || len(got) != 0 {
		t.Fatalf("idle incremental fetch: error %d, partitions %v; want no error and nothing", idle.ErrorCode, got)
	}
	// New data on partition 1 only: only partition 1 comes back.
	produce(1, "b")
	if got := parts(fetch(sid, 2, nil)); len(got) != 1 || got[1] == 0 {
		t.Fatalf("incremental fetch returned %v; want only partition 1 with records", got)
	}
	if resp := fetch(sid, 7, nil); resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Errorf("wrong epoch: error %d, want INVALID_FETCH_SESSION_EPOCH", resp.ErrorCode)
	}
	if resp := fetch(sid+1000, 1, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Errorf("unknown session: error %d, want FETCH_SESSION_ID_NOT_FOUND", resp.ErrorCode)
	}
	// Closing the session answers a full, sessionless fetch.
	closing := fetch(sid, -1, map[int32]int64{0: 0})
	if closing.SessionID != 0 || len(parts(closing)) != 1 {
		t.Errorf("closing fetch: session %d, partitions %v", closing.SessionID, parts(closing))
	}
	if resp := fetch(sid, 3, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Errorf("closed session: error %d, want FETCH_SESSION_ID_NOT_FOUND", resp.ErrorCode)
	}
}

// TestFetchSessionRotates checks that a session does not starve partitions
// when responses fill up: a partition that returned records moves to the
// end of the session's order, as in Kafka, so the next fetch reads the
// others first.
func TestFetchSessionRotates(t *testing.T) {
	addr := startBroker(t, t.TempDir(), nil)
	ctx := t.Context()
	cl := newClient(t, addr)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "rot"); err != nil {
		t.Fatal(err)
	}
	md, err := adm.ListTopics(ctx, "rot")
	if err != nil {
		t.Fatal(err)
	}
	id := md["rot"].ID
	pcl := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for range 2 { // two batches in each partition
		for p := range int32(3) {
			if err := pcl.ProduceSync(ctx, &kgo.Record{Topic: "rot", Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// fetch asks for the given partitions at the given offsets, with room
	// for one batch per response, and returns the partition that had
	// records.
	fetch := func(sessionID, epoch int32, parts []int32, offsets []int64) (int32, int32) {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.MaxBytes = 1
		req.SessionID, req.SessionEpoch = sessionID, epoch
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "rot", id // by name or id, whichever version the client picks
		for i, p := range parts {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, offsets[i], 1<<20, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != 0 {
			t.Fatalf("fetch: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		with := int32(-1)
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if len(rp.RecordBatches) > 0 {
					if with >= 0 {
						t.Fatalf("records from partitions %d and %d; the response has room for one batch", with, rp.Partition)
					}
					with = rp.Partition
				}
			}
		}
		return resp.SessionID, with
	}
	sid, got := fetch(0, 0, []int32{0, 1, 2}, []int64{0, 0, 0})
	if sid == 0 || got != 0 {
		t.Fatalf("opening fetch: session %d, records from %d; want a session and partition 0", sid, got)
	}
	// Each fetch moves on the offset of the partition that just returned a
	// batch; every partition still has one more.
	for epoch, want := range []int32{1, 2, 0} {
		prev := (want + 2) % 3
		if _, got = fetch(sid, int32(epoch+1), []int32{prev}, []int64{1}); got != want {
			t.Fatalf("incremental fetch %d: records from partition %d, want %d (the one read least recently)", epoch+1, got, want)
		}
	}
}

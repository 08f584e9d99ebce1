package group_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/group"
)

// gatedLog is a memLog whose replays and appends can be held at a gate,
// and whose appends can fail.
type gatedLog struct {
	memLog
	replayGate chan struct{} // when set, Replay waits for it to close
	appendGate chan struct{} // when set, Append signals entered and waits for it to close
	entered    chan struct{}
	appendErr  error
}

func (l *gatedLog) Replay(ctx context.Context, p int32, fn func(group.Record) error) error {
	if l.replayGate != nil {
		select {
		case <-l.replayGate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return l.memLog.Replay(ctx, p, fn)
}

func (l *gatedLog) Append(ctx context.Context, p int32, recs []group.Record) error {
	if l.appendGate != nil {
		l.entered <- struct{}{}
		<-l.appendGate
	}
	l.mu.Lock()
	err := l.appendErr
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return l.memLog.Append(ctx, p, recs)
}

// apiCodes sends every group API for group g and returns the error code
// each answers where Kafka puts the coordinator error.
func apiCodes(t *testing.T, c *group.Coordinator, g string) map[string]int16 {
	t.Helper()
	out := map[string]int16{}

	jr := joinReq("", 10*time.Second)
	jr.Group = g
	out["JoinGroup"] = c.JoinGroup(t.Context(), jr, "client", "host").ErrorCode

	sr := kmsg.NewPtrSyncGroupRequest()
	sr.SetVersion(5)
	sr.Group, sr.MemberID, sr.Generation = g, "m", 1
	out["SyncGroup"] = c.SyncGroup(t.Context(), sr).ErrorCode

	hr := kmsg.NewPtrHeartbeatRequest()
	hr.Group, hr.MemberID, hr.Generation = g, "m", 1
	out["Heartbeat"] = c.Heartbeat(hr).ErrorCode

	for _, v := range []int16{0, 3} {
		lr := kmsg.NewPtrLeaveGroupRequest()
		lr.SetVersion(v)
		lr.Group, lr.MemberID = g, "m"
		lr.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
		out[fmt.Sprintf("LeaveGroup v%d", v)] = c.LeaveGroup(lr).ErrorCode
	}

	cr := kmsg.NewPtrOffsetCommitRequest()
	cr.SetVersion(8)
	cr.Group, cr.Generation = g, -1
	cr.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	out["OffsetCommit"] = c.OffsetCommit(cr).Topics[0].Partitions[0].ErrorCode

	for _, v := range []int16{1, 5, 8} {
		fr := kmsg.NewPtrOffsetFetchRequest()
		fr.SetVersion(v)
		fr.Group = g
		fr.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
		fr.Groups = []kmsg.OffsetFetchRequestGroup{{Group: g, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}}}
		resp := c.OffsetFetch(fr)
		key := fmt.Sprintf("OffsetFetch v%d", v)
		switch {
		case v < 2:
			out[key] = resp.Topics[0].Partitions[0].ErrorCode
		case v < 8:
			out[key] = resp.ErrorCode
		default:
			out[key] = resp.Groups[0].ErrorCode
		}
	}

	out["DescribeGroups"] = c.DescribeGroups(&kmsg.DescribeGroupsRequest{Groups: []string{g}}).Groups[0].ErrorCode
	out["DeleteGroups"] = c.DeleteGroups(&kmsg.DeleteGroupsRequest{Groups: []string{g}}).Groups[0].ErrorCode

	dr := kmsg.NewPtrOffsetDeleteRequest()
	dr.Group = g
	dr.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	out["OffsetDelete"] = c.OffsetDelete(dr).ErrorCode
	return out
}

func allCodes(code int16) map[string]int16 {
	out := map[string]int16{}
	for _, api := range []string{"JoinGroup", "SyncGroup", "Heartbeat", "LeaveGroup v0", "LeaveGroup v3", "OffsetCommit",
		"OffsetFetch v1", "OffsetFetch v5", "OffsetFetch v8", "DescribeGroups", "DeleteGroups", "OffsetDelete"} {
		out[api] = code
	}
	return out
}

func listed(c *group.Coordinator) (names []string, code int16) {
	resp := c.ListGroups(kmsg.NewPtrListGroupsRequest())
	for _, g := range resp.Groups {
		names = append(names, g.Group)
	}
	return names, resp.ErrorCode
}

// configWith returns a coordinator config with n partitions, and the
// partition a group is stored in.
func configWith(n int32) (group.Config, func(g string) int32) {
	cfg := testConfig()
	cfg.Partitions = n
	c := group.New(cfg, &memLog{}, slog.New(slog.DiscardHandler))
	return cfg, c.PartitionFor
}

func TestNotCoordinatorForUnownedPartition(t *testing.T) {
	cfg, partitionFor := configWith(3)
	log := &memLog{}
	c := runCoordinator(t, cfg, log)
	p := partitionFor("g")
	var other string
	for i := 0; other == ""; i++ {
		if name := fmt.Sprintf("other-%d", i); partitionFor(name) != p {
			other = name
		}
	}
	c.LoadPartition(partitionFor(other))
	waitLoaded(t, c)
	if code := commitFor(c, other, 3); code != 0 {
		t.Fatalf("commit to %s on an owned partition: %d", other, code)
	}

	if diff := cmp.Diff(allCodes(kerr.NotCoordinator.Code), apiCodes(t, c, "g")); diff != "" {
		t.Errorf("group on a partition not owned (-want +got):\n%s", diff)
	}
	if names, code := listed(c); code != 0 || !cmp.Equal(names, []string{other}) {
		t.Errorf("ListGroups = %v (error %d), want only %s", names, code, other)
	}
	if log.records() != 1 {
		t.Errorf("%d records written, want only the one commit", log.records())
	}
}

func (l *memLog) records() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, recs := range l.parts {
		n += len(recs)
	}
	return n
}

func commitFor(c *group.Coordinator, g string, offset int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(8)
	req.Group, req.Generation = g, -1
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
	return c.OffsetCommit(req).Topics[0].Partitions[0].ErrorCode
}

func TestLoadInProgressThenServed(t *testing.T) {
	cfg, partitionFor := configWith(3)
	log := &gatedLog{replayGate: make(chan struct{})}
	// What an earlier coordinator of the partition committed.
	prev := runCoordinator(t, cfg, &log.memLog)
	prev.LoadPartition(partitionFor("g"))
	waitLoaded(t, prev)
	if code := commitFor(prev, "g", 42); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	prev.UnloadPartition(partitionFor("g"))

	c := runCoordinator(t, cfg, log)
	c.LoadPartition(partitionFor("g"))
	if diff := cmp.Diff(allCodes(kerr.CoordinatorLoadInProgress.Code), apiCodes(t, c, "g")); diff != "" {
		t.Errorf("group of a loading partition (-want +got):\n%s", diff)
	}
	if _, code := listed(c); code != kerr.CoordinatorLoadInProgress.Code {
		t.Errorf("ListGroups while loading: error %d, want COORDINATOR_LOAD_IN_PROGRESS", code)
	}
	close(log.replayGate)
	waitLoaded(t, c)
	if off := fetchOffset(c); off != 42 {
		t.Errorf("after the load fetched %d, want the committed 42", off)
	}
	if names, _ := listed(c); !cmp.Equal(names, []string{"g"}) {
		t.Errorf("ListGroups = %v, want [g]", names)
	}
}

func TestUnloadAnswersWaitersAndStopsWrites(t *testing.T) {
	cfg, partitionFor := configWith(1)
	log := &gatedLog{}
	c := runCoordinator(t, cfg, log)
	c.LoadPartition(0)
	waitLoaded(t, c)
	a := join(t, c, 10*time.Second)
	syncGroup(t, c, a.MemberID, a.Generation, map[string]string{a.MemberID: "all"})
	if code := commit(c, a.MemberID, a.Generation, 7); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	// b's join waits for a to rejoin.
	bDone := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { bDone <- join(t, c, 10*time.Second) }()
	for heartbeat(c, a.MemberID, a.Generation) != kerr.RebalanceInProgress.Code {
		time.Sleep(5 * time.Millisecond)
	}

	c.UnloadPartition(partitionFor("g"))
	written := log.records()
	select {
	case b := <-bDone:
		if b.ErrorCode != kerr.NotCoordinator.Code {
			t.Errorf("waiting join answered %d, want NOT_COORDINATOR", b.ErrorCode)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting join was not answered")
	}
	if diff := cmp.Diff(allCodes(kerr.NotCoordinator.Code), apiCodes(t, c, "g")); diff != "" {
		t.Errorf("after unload (-want +got):\n%s", diff)
	}
	time.Sleep(300 * time.Millisecond) // a few of Run's ticks
	if n := log.records(); n != written {
		t.Errorf("%d records written after unload", n-written)
	}

	// Loaded again, the partition gives the group back from the log.
	c.LoadPartition(0)
	waitLoaded(t, c)
	if off := fetchOffset(c); off != 7 {
		t.Errorf("after reload fetched %d, want 7", off)
	}
}

func TestUnloadAnswersWaitingSync(t *testing.T) {
	cfg, _ := configWith(1)
	c := runCoordinator(t, cfg, &memLog{})
	c.LoadPartition(0)
	waitLoaded(t, c)
	a := join(t, c, 10*time.Second)
	syncGroup(t, c, a.MemberID, a.Generation, map[string]string{a.MemberID: "all"})
	bDone := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { bDone <- join(t, c, 10*time.Second) }()
	for heartbeat(c, a.MemberID, a.Generation) != kerr.RebalanceInProgress.Code {
		time.Sleep(5 * time.Millisecond)
	}
	c.JoinGroup(t.Context(), joinReq(a.MemberID, 10*time.Second), "client", "host")
	b := <-bDone
	// b syncs before the leader has: it waits.
	bSync := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { bSync <- syncGroup(t, c, b.MemberID, b.Generation, nil) }()
	time.Sleep(50 * time.Millisecond)
	c.UnloadPartition(0)
	select {
	case s := <-bSync:
		if s.ErrorCode != kerr.NotCoordinator.Code {
			t.Errorf("waiting sync answered %d, want NOT_COORDINATOR", s.ErrorCode)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting sync was not answered")
	}
}

func TestUnloadWaitsForTheWriteInFlight(t *testing.T) {
	cfg, _ := configWith(1)
	log := &gatedLog{appendGate: make(chan struct{}), entered: make(chan struct{}, 1)}
	c := runCoordinator(t, cfg, log)
	c.LoadPartition(0)
	waitLoaded(t, c)
	committed := make(chan int16, 1)
	go func() { committed <- commitFor(c, "g", 5) }()
	<-log.entered
	unloaded := make(chan struct{})
	go func() { defer close(unloaded); c.UnloadPartition(0) }()
	select {
	case <-unloaded:
		t.Fatal("UnloadPartition returned while a write was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(log.appendGate)
	<-unloaded
	if code := <-committed; code != 0 {
		t.Errorf("the commit written before the unload answered %d", code)
	}
	n := log.records()
	if code := commitFor(c, "g", 6); code != kerr.NotCoordinator.Code {
		t.Errorf("commit after unload: %d, want NOT_COORDINATOR", code)
	}
	if log.records() != n {
		t.Error("a commit after unload was written")
	}
}

func TestAppendErrorsMapAsKafka(t *testing.T) {
	for _, tc := range []struct {
		err          error
		commit, sync *kerr.Error
	}{
		{fmt.Errorf("moved: %w", kerr.NotLeaderForPartition), kerr.NotCoordinator, kerr.NotCoordinator},
		{kerr.NotEnoughReplicas, kerr.CoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
		{kerr.NotEnoughReplicasAfterAppend, kerr.CoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
		{fmt.Errorf("slow: %w", kerr.RequestTimedOut), kerr.RequestTimedOut, kerr.CoordinatorNotAvailable},
		{kerr.KafkaStorageError, kerr.NotCoordinator, kerr.NotCoordinator},
		{kerr.MessageTooLarge, kerr.InvalidCommitOffsetSize, kerr.UnknownServerError},
		{errors.New("disk on fire"), kerr.CoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			cfg, _ := configWith(1)
			log := &gatedLog{}
			c := runCoordinator(t, cfg, log)
			c.LoadPartition(0)
			waitLoaded(t, c)
			j := join(t, c, 10*time.Second)
			log.mu.Lock()
			log.appendErr = tc.err
			log.mu.Unlock()
			if s := syncGroup(t, c, j.MemberID, j.Generation, map[string]string{j.MemberID: "x"}); s.ErrorCode != tc.sync.Code {
				t.Errorf("SyncGroup answered %v, want %v", kerr.ErrorForCode(s.ErrorCode), tc.sync)
			}
			if code := commitFor(c, "other", 1); code != tc.commit.Code {
				t.Errorf("OffsetCommit answered %v, want %v", kerr.ErrorForCode(code), tc.commit)
			}
		})
	}
}

package group_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/group"
)

// memLog is an in-memory __consumer_offsets.
type memLog struct {
	mu    sync.Mutex
	parts map[int32][]group.Record
}

func (l *memLog) Append(_ context.Context, p int32, recs []group.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.parts == nil {
		l.parts = map[int32][]group.Record{}
	}
	l.parts[p] = append(l.parts[p], recs...)
	return nil
}

func (l *memLog) Replay(_ context.Context, p int32, fn func(group.Record) error) error {
	l.mu.Lock()
	recs := append([]group.Record(nil), l.parts[p]...)
	l.mu.Unlock()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func testConfig() group.Config {
	cfg := group.DefaultConfig()
	cfg.InitialRebalanceDelay = 0
	cfg.MinSessionTimeout = 100 * time.Millisecond
	return cfg
}

// runCoordinator runs a coordinator over log until the test ends.
func runCoordinator(t *testing.T, cfg group.Config, log group.Log) *group.Coordinator {
	t.Helper()
	c := group.New(cfg, log, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// newCoordinator runs a coordinator that owns every partition of log, as
// a standalone broker's does, once they are loaded.
func newCoordinator(t *testing.T, log group.Log) *group.Coordinator {
	t.Helper()
	cfg := testConfig()
	c := runCoordinator(t, cfg, log)
	for p := range cfg.Partitions {
		c.LoadPartition(p)
	}
	waitLoaded(t, c)
	return c
}

// waitLoaded waits until no partition of c is loading.
func waitLoaded(t *testing.T, c *group.Coordinator) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.ListGroups(kmsg.NewPtrListGroupsRequest()).ErrorCode != 0 {
		if time.Now().After(deadline) {
			t.Fatal("partitions still loading after 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func joinReq(memberID string, session time.Duration) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.SetVersion(9)
	req.Group = "g"
	req.MemberID = memberID
	req.SessionTimeoutMillis = int32(session / time.Millisecond)
	req.RebalanceTimeoutMillis = 5000
	req.ProtocolType = "consumer"
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte("m-" + memberID)}}
	return req
}

// join performs the two-step join of KIP-394 and returns the response.
func join(t *testing.T, c *group.Coordinator, session time.Duration) *kmsg.JoinGroupResponse {
	t.Helper()
	first := c.JoinGroup(t.Context(), joinReq("", session), "client", "host")
	if first.ErrorCode != kerr.MemberIDRequired.Code || first.MemberID == "" {
		t.Fatalf("first join: error %d, member %q; want MEMBER_ID_REQUIRED with an id", first.ErrorCode, first.MemberID)
	}
	return c.JoinGroup(t.Context(), joinReq(first.MemberID, session), "client", "host")
}

func syncGroup(t *testing.T, c *group.Coordinator, memberID string, gen int32, assign map[string]string) *kmsg.SyncGroupResponse {
	t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.SetVersion(5)
	req.Group, req.MemberID, req.Generation = "g", memberID, gen
	for m, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: []byte(a)})
	}
	return c.SyncGroup(t.Context(), req)
}

func heartbeat(c *group.Coordinator, memberID string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation = "g", memberID, gen
	return c.Heartbeat(req).ErrorCode
}

func TestSingleMemberLifecycle(t *testing.T) {
	c := newCoordinator(t, &memLog{})
	j := join(t, c, 10*time.Second)
	if j.ErrorCode != 0 || j.Generation != 1 || j.LeaderID != j.MemberID || len(j.Members) != 1 {
		t.Fatalf("join: %+v", j)
	}
	if string(j.Members[0].ProtocolMetadata) != "m-"+j.MemberID {
		t.Errorf("leader sees metadata %q", j.Members[0].ProtocolMetadata)
	}
	s := syncGroup(t, c, j.MemberID, j.Generation, map[string]string{j.MemberID: "all"})
	if s.ErrorCode != 0 || string(s.MemberAssignment) != "all" {
		t.Fatalf("sync: error %d, assignment %q", s.ErrorCode, s.MemberAssignment)
	}
	if code := heartbeat(c, j.MemberID, j.Generation); code != 0 {
		t.Errorf("heartbeat: %d", code)
	}
	if code := heartbeat(c, j.MemberID, j.Generation+1); code != kerr.IllegalGeneration.Code {
		t.Errorf("heartbeat with a future generation: %d, want ILLEGAL_GENERATION", code)
	}
	if code := heartbeat(c, "nobody", j.Generation); code != kerr.UnknownMemberID.Code {
		t.Errorf("heartbeat from a stranger: %d, want UNKNOWN_MEMBER_ID", code)
	}
	dg := c.DescribeGroups(&kmsg.DescribeGroupsRequest{Groups: []string{"g"}}).Groups[0]
	if dg.State != "Stable" || len(dg.Members) != 1 || string(dg.Members[0].MemberAssignment) != "all" {
		t.Errorf("describe: state %s, members %+v", dg.State, dg.Members)
	}
}

func TestSecondMemberTriggersRebalance(t *testing.T) {
	c := newCoordinator(t, &memLog{})
	a := join(t, c, 10*time.Second)
	syncGroup(t, c, a.MemberID, a.Generation, map[string]string{a.MemberID: "p0,p1"})

	// b's join waits until a rejoins; a learns of the rebalance from its
	// heartbeat.
	bDone := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { bDone <- join(t, c, 10*time.Second) }()
	for heartbeat(c, a.MemberID, a.Generation) != kerr.RebalanceInProgress.Code {
		time.Sleep(10 * time.Millisecond)
	}
	a2 := c.JoinGroup(t.Context(), joinReq(a.MemberID, 10*time.Second), "client", "host")
	b := <-bDone
	if a2.Generation != 2 || b.Generation != 2 {
		t.Fatalf("generations %d and %d, want 2", a2.Generation, b.Generation)
	}
	if a2.LeaderID != a.MemberID || len(a2.Members) != 2 || len(b.Members) != 0 {
		t.Fatalf("leader %s (want %s) with %d members; follower sees %d", a2.LeaderID, a.MemberID, len(a2.Members), len(b.Members))
	}
	// The follower's sync waits for the leader's assignment.
	bSync := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { bSync <- syncGroup(t, c, b.MemberID, 2, nil) }()
	syncGroup(t, c, a.MemberID, 2, map[string]string{a.MemberID: "p0", b.MemberID: "p1"})
	if s := <-bSync; s.ErrorCode != 0 || string(s.MemberAssignment) != "p1" {
		t.Fatalf("follower sync: error %d, assignment %q", s.ErrorCode, s.MemberAssignment)
	}
}

func TestSessionExpiryRemovesMember(t *testing.T) {
	c := newCoordinator(t, &memLog{})
	a := join(t, c, 10*time.Second)
	syncGroup(t, c, a.MemberID, 1, map[string]string{a.MemberID: "x"})
	// b joins with a short session and then goes silent.
	bDone := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { bDone <- join(t, c, 200*time.Millisecond) }()
	for heartbeat(c, a.MemberID, 1) != kerr.RebalanceInProgress.Code {
		time.Sleep(10 * time.Millisecond)
	}
	c.JoinGroup(t.Context(), joinReq(a.MemberID, 10*time.Second), "client", "host")
	b := <-bDone
	syncGroup(t, c, a.MemberID, 2, map[string]string{a.MemberID: "x", b.MemberID: "y"})
	// a keeps heartbeating; b does not. Its session expires and a is told
	// to rejoin.
	for {
		code := heartbeat(c, a.MemberID, 2)
		if code == kerr.RebalanceInProgress.Code {
			break
		}
		if code != 0 {
			t.Fatalf("heartbeat: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a3 := c.JoinGroup(t.Context(), joinReq(a.MemberID, 10*time.Second), "client", "host")
	if a3.Generation != 3 || len(a3.Members) != 1 {
		t.Fatalf("after expiry: generation %d with %d members, want 3 with 1", a3.Generation, len(a3.Members))
	}
}

func TestStaticMemberRejoinsWithoutRebalance(t *testing.T) {
	c := newCoordinator(t, &memLog{})
	instance := "host-1"
	static := func(memberID string) *kmsg.JoinGroupRequest {
		r := joinReq(memberID, 10*time.Second)
		r.InstanceID = &instance
		return r
	}
	j := c.JoinGroup(t.Context(), static(""), "client", "host")
	if j.ErrorCode != 0 {
		t.Fatalf("static join: %d (static members skip MEMBER_ID_REQUIRED)", j.ErrorCode)
	}
	syncGroup(t, c, j.MemberID, j.Generation, map[string]string{j.MemberID: "mine"})
	// The process restarts and joins again with no member id.
	again := c.JoinGroup(t.Context(), static(""), "client", "host")
	if again.ErrorCode != 0 || again.Generation != j.Generation || again.MemberID == j.MemberID {
		t.Fatalf("rejoin: error %d, generation %d (want %d), member %s", again.ErrorCode, again.Generation, j.Generation, again.MemberID)
	}
	if s := syncGroup(t, c, again.MemberID, again.Generation, nil); string(s.MemberAssignment) != "mine" {
		t.Errorf("assignment after static rejoin %q, want the old one", s.MemberAssignment)
	}
	if code := heartbeat(c, j.MemberID, j.Generation); code != kerr.UnknownMemberID.Code {
		t.Errorf("the old member id still heartbeats (%d)", code)
	}
}

func commit(c *group.Coordinator, memberID string, gen int32, offset int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(8)
	req.Group, req.MemberID, req.Generation = "g", memberID, gen
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
	return c.OffsetCommit(req).Topics[0].Partitions[0].ErrorCode
}

func fetchOffset(c *group.Coordinator) int64 {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.SetVersion(8)
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}}}
	return c.OffsetFetch(req).Groups[0].Topics[0].Partitions[0].Offset
}

func TestOffsetsRulesAndReplay(t *testing.T) {
	log := &memLog{}
	c := newCoordinator(t, log)
	if off := fetchOffset(c); off != -1 {
		t.Fatalf("no commit yet, fetched %d, want -1", off)
	}
	if code := commit(c, "", -1, 5); code != 0 {
		t.Fatalf("standalone commit to an empty group: %d", code)
	}
	j := join(t, c, 10*time.Second)
	syncGroup(t, c, j.MemberID, j.Generation, nil)
	if code := commit(c, "", -1, 6); code != kerr.IllegalGeneration.Code {
		t.Errorf("standalone commit to an active group: %d, want ILLEGAL_GENERATION", code)
	}
	if code := commit(c, j.MemberID, j.Generation-1, 6); code != kerr.IllegalGeneration.Code {
		t.Errorf("stale generation: %d, want ILLEGAL_GENERATION", code)
	}
	if code := commit(c, j.MemberID, j.Generation, 9); code != 0 {
		t.Fatalf("member commit: %d", code)
	}
	del := c.DeleteGroups(&kmsg.DeleteGroupsRequest{Groups: []string{"g"}})
	if del.Groups[0].ErrorCode != kerr.NonEmptyGroup.Code {
		t.Errorf("delete an active group: %d, want NON_EMPTY_GROUP", del.Groups[0].ErrorCode)
	}

	// A new coordinator over the same log sees the commit and the group.
	c2 := newCoordinator(t, log)
	if off := fetchOffset(c2); off != 9 {
		t.Errorf("after replay fetched %d, want 9", off)
	}
	if code := heartbeat(c2, j.MemberID, j.Generation); code != 0 {
		t.Errorf("member heartbeat after coordinator restart: %d, want it kept", code)
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.SetVersion(3)
	leave.Group = "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: j.MemberID}}
	if r := c2.LeaveGroup(leave); r.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %d", r.Members[0].ErrorCode)
	}
	if r := c2.DeleteGroups(&kmsg.DeleteGroupsRequest{Groups: []string{"g"}}); r.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete the empty group: %d", r.Groups[0].ErrorCode)
	}
	c3 := newCoordinator(t, log)
	if off := fetchOffset(c3); off != -1 {
		t.Errorf("offsets of a deleted group came back after replay: %d", off)
	}
}

func TestPartitionForMatchesKafka(t *testing.T) {
	c := group.New(group.DefaultConfig(), &memLog{}, slog.New(slog.DiscardHandler))
	// Values of Java's abs(String.hashCode()) % 50.
	for name, want := range map[string]int32{"my-group": 12, "console-consumer-12345": 6, "g": 3} {
		if got := c.PartitionFor(name); got != want {
			t.Errorf("PartitionFor(%q) = %d, want %d", name, got, want)
		}
	}
}

package group

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup (key 14), v0-v5. After a rebalance every member sends SyncGroup;
// the leader's carries the assignments. Members wait until the leader's
// arrives, then each gets its own assignment and the group is Stable. In a
// stable group SyncGroup answers the member's assignment at once.

// SyncGroup handles a SyncGroup request; it blocks until the member's
// assignment is known or ctx is done.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	fail := func(code *kerr.Error) *kmsg.SyncGroupResponse {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code.Code
		return resp
	}
	g, code := c.lookup(req.Group, false)
	switch {
	case code != nil:
		return fail(code)
	case g == nil:
		return fail(kerr.UnknownMemberID)
	}
	now := time.Now()
	g.mu.Lock()
	m, code := g.checkMemberLocked(req.MemberID, req.InstanceID, req.Generation)
	if code != nil {
		g.mu.Unlock()
		return fail(code)
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol) {
		g.mu.Unlock()
		return fail(kerr.InconsistentGroupProtocol)
	}
	m.deadline = now.Add(m.sessionTimeout)
	switch g.state {
	case PreparingRebalance:
		g.mu.Unlock()
		return fail(kerr.RebalanceInProgress)
	case Stable:
		resp := c.syncResponseLocked(g, m, req.Version)
		g.mu.Unlock()
		return resp
	case CompletingRebalance:
	default:
		g.mu.Unlock()
		return fail(kerr.UnknownMemberID)
	}

	ch := make(chan *kmsg.SyncGroupResponse, 1)
	c.failSyncLocked(m, kerr.RebalanceInProgress) // a retried sync replaces the waiting one
	m.syncCh = ch
	if m.id != g.leader {
		g.mu.Unlock()
		return c.awaitSync(ctx, ch, req)
	}

	// The leader: record every member's assignment, persist the generation,
	// then answer everyone.
	assignments := make(map[string][]byte, len(req.GroupAssignment))
	for _, a := range req.GroupAssignment {
		assignments[a.MemberID] = a.MemberAssignment
	}
	generation := g.generation
	rec := groupRecordLocked(g, assignments, now)
	g.mu.Unlock()

	g.writeMu.Lock()
	err := c.appendLocked(ctx, g, []Record{rec})
	g.writeMu.Unlock()

	g.mu.Lock()
	if g.state == CompletingRebalance && g.generation == generation {
		if err != nil {
			// As Kafka: every member learns the error and the group
			// rebalances.
			c.lg.Warn("persist group", "group", g.name, "err", err)
			code := appendCode(err, false)
			for _, o := range g.members {
				c.failSyncLocked(o, code)
			}
			c.prepareRebalanceLocked(g, now)
		} else {
			for id, o := range g.members {
				o.assignment = assignments[id]
			}
			g.setState(Stable, now)
			for _, o := range g.members {
				if o.syncCh != nil {
					o.syncCh <- c.syncResponseLocked(g, o, req.Version)
					o.syncCh = nil
				}
			}
		}
	}
	g.mu.Unlock()
	return c.awaitSync(ctx, ch, req)
}

func (c *Coordinator) awaitSync(ctx context.Context, ch chan *kmsg.SyncGroupResponse, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	select {
	case resp := <-ch:
		resp.SetVersion(req.Version)
		return resp
	case <-ctx.Done():
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
}

func (c *Coordinator) syncResponseLocked(g *group, m *member, version int16) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.SetVersion(version)
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

// checkMemberLocked validates a member id, instance id and generation as
// SyncGroup, Heartbeat and OffsetCommit do.
func (g *group) checkMemberLocked(memberID string, instanceID *string, generation int32) (*member, *kerr.Error) {
	if g.state == Dead {
		return nil, kerr.CoordinatorNotAvailable
	}
	if instanceID != nil && *instanceID != "" {
		if id, ok := g.static[*instanceID]; ok && id != memberID {
			return nil, kerr.FencedInstanceID
		}
	}
	m, ok := g.members[memberID]
	if !ok {
		return nil, kerr.UnknownMemberID
	}
	if generation != g.generation {
		return nil, kerr.IllegalGeneration
	}
	return m, nil
}

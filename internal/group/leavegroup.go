package group

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup (key 13), v0-v5: members leave at once instead of waiting for
// their sessions to expire; v3+ removes a batch of members, static ones by
// instance id (KIP-345). The group rebalances without them.

// LeaveGroup handles a LeaveGroup request.
func (c *Coordinator) LeaveGroup(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	g, code := c.lookup(req.Group, false)
	if code != nil {
		resp.ErrorCode = code.Code
		return resp
	}
	if g == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		if req.Version >= 3 {
			resp.ErrorCode = 0
			for _, l := range leaving {
				resp.Members = append(resp.Members, kmsg.LeaveGroupResponseMember{MemberID: l.MemberID, InstanceID: l.InstanceID, ErrorCode: kerr.UnknownMemberID.Code})
			}
		}
		return resp
	}
	now := time.Now()
	// The group's new state is in the log before the answer, as in Kafka.
	defer c.flushGroup(context.Background(), g)
	g.mu.Lock()
	defer g.mu.Unlock()
	removed := false
	for _, l := range leaving {
		code := c.leaveLocked(g, l)
		if code == nil {
			removed = true
		}
		if req.Version >= 3 {
			rm := kmsg.NewLeaveGroupResponseMember()
			rm.MemberID, rm.InstanceID = l.MemberID, l.InstanceID
			if code != nil {
				rm.ErrorCode = code.Code
			}
			resp.Members = append(resp.Members, rm)
		} else if code != nil {
			resp.ErrorCode = code.Code
		}
	}
	if removed {
		switch g.state {
		case Stable, CompletingRebalance:
			c.prepareRebalanceLocked(g, now)
		case PreparingRebalance:
			c.maybeCompleteJoinLocked(g, now)
		}
		if len(g.members) == 0 && g.state == PreparingRebalance {
			c.completeJoinLocked(g, now)
		}
	}
	return resp
}

func (c *Coordinator) leaveLocked(g *group, l kmsg.LeaveGroupRequestMember) *kerr.Error {
	id := l.MemberID
	if l.InstanceID != nil && *l.InstanceID != "" {
		sid, ok := g.static[*l.InstanceID]
		if !ok {
			return kerr.UnknownMemberID
		}
		if id != "" && id != sid {
			return kerr.FencedInstanceID
		}
		id = sid
	}
	if _, ok := g.pending[id]; ok {
		delete(g.pending, id)
		return nil
	}
	m, ok := g.members[id]
	if !ok {
		return kerr.UnknownMemberID
	}
	c.removeMemberLocked(g, m)
	return nil
}

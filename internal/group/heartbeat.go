package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat (key 12), v0-v4: keeps a member's session alive and tells it
// when a rebalance has started (REBALANCE_IN_PROGRESS), so it rejoins.

// Heartbeat handles a Heartbeat request.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	g, code := c.lookup(req.Group, false)
	switch {
	case code != nil:
		resp.ErrorCode = code.Code
		return resp
	case g == nil:
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == Empty {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	m, code := g.checkMemberLocked(req.MemberID, req.InstanceID, req.Generation)
	if code != nil {
		resp.ErrorCode = code.Code
		return resp
	}
	m.deadline = time.Now().Add(m.sessionTimeout)
	if g.state == PreparingRebalance {
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	}
	return resp
}

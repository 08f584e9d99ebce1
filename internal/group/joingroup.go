package group

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup (key 11), v0-v9. A member without an id gets one: from v4 it is
// answered MEMBER_ID_REQUIRED with the id to rejoin with (KIP-394), before
// that it joins at once. A static member (group.instance.id, KIP-345) that
// rejoins takes over its old identity; if nothing about it changed and the
// group is stable, no rebalance happens. Otherwise the join starts or joins a
// rebalance and waits until it completes.

// JoinGroup handles a JoinGroup request; it blocks until the member's join is
// answered or ctx is done.
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest, clientID, clientHost string) *kmsg.JoinGroupResponse {
	fail := func(code *kerr.Error) *kmsg.JoinGroupResponse {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = code.Code
		resp.Generation = -1
		resp.MemberID = req.MemberID
		return resp
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := session
	if req.Version >= 1 {
		rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	// As in Kafka, whether this is the group's coordinator comes first.
	if _, code := c.lookup(req.Group, false); code != nil {
		return fail(code)
	}
	switch {
	case session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout:
		return fail(kerr.InvalidSessionTimeout)
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		return fail(kerr.InconsistentGroupProtocol)
	}
	instanceID := ""
	if req.InstanceID != nil {
		instanceID = *req.InstanceID
	}

	g, code := c.lookup(req.Group, req.MemberID == "")
	switch {
	case code != nil:
		return fail(code)
	case g == nil:
		return fail(kerr.UnknownMemberID)
	}
	now := time.Now()
	g.mu.Lock()
	if g.state == Dead {
		g.mu.Unlock()
		return fail(kerr.CoordinatorNotAvailable)
	}
	if !g.supportsProtocolsLocked(req.ProtocolType, req.Protocols) {
		g.mu.Unlock()
		return fail(kerr.InconsistentGroupProtocol)
	}

	m, resp := c.admitLocked(g, req, instanceID, clientID, clientHost, session, rebalance, now)
	if resp != nil {
		g.mu.Unlock()
		c.flushGroup(ctx, g) // a static member's takeover is logged before the answer
		return resp
	}
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	m.joinCh = ch
	m.joinVersion = req.Version
	switch g.state {
	case Stable, CompletingRebalance, Empty:
		c.prepareRebalanceLocked(g, now)
	case PreparingRebalance:
		c.extendInitialDelayLocked(g, now)
	}
	c.maybeCompleteJoinLocked(g, now)
	g.mu.Unlock()

	select {
	case resp := <-ch:
		return resp
	case <-ctx.Done():
		return fail(kerr.CoordinatorNotAvailable)
	}
}

// admitLocked finds or adds the joining member. A non-nil response answers
// the request at once.
func (c *Coordinator) admitLocked(g *group, req *kmsg.JoinGroupRequest, instanceID, clientID, clientHost string, session, rebalance time.Duration, now time.Time) (*member, *kmsg.JoinGroupResponse) {
	answer := func(code *kerr.Error, memberID string) *kmsg.JoinGroupResponse {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = code.Code
		resp.Generation = -1
		resp.MemberID = memberID
		return resp
	}
	update := func(m *member) {
		m.clientID, m.clientHost = clientID, clientHost
		m.protocolType = req.ProtocolType
		m.protocols = req.Protocols
		m.sessionTimeout, m.rebalanceTimeout = session, rebalance
		m.deadline = now.Add(session)
	}
	add := func(id string) *member {
		if len(g.members) >= c.cfg.MaxGroupSize {
			return nil
		}
		m := &member{id: id, instanceID: instanceID, order: g.nextOrder}
		g.nextOrder++
		update(m)
		g.members[id] = m
		if instanceID != "" {
			g.static[instanceID] = id
		}
		if len(g.members) == 1 {
			g.protocolType = req.ProtocolType
		}
		return m
	}
	newID := func() string { return clientID + "-" + uuid.NewString() }

	if req.MemberID == "" {
		if instanceID != "" {
			if oldID, ok := g.static[instanceID]; ok {
				// A static member restarted: it takes over its old identity
				// under a new member id.
				old := g.members[oldID]
				unchanged := protocolsEqual(old.protocols, req.Protocols)
				c.failJoinLocked(old, kerr.FencedInstanceID)
				c.failSyncLocked(old, kerr.FencedInstanceID)
				delete(g.members, oldID)
				m := &member{id: newID(), instanceID: instanceID, order: old.order, assignment: old.assignment}
				update(m)
				g.members[m.id] = m
				g.static[instanceID] = m.id
				if g.leader == oldID {
					g.leader = m.id
				}
				if g.state == Stable && unchanged {
					m.joinVersion = req.Version
					resp := c.joinResponseLocked(g, m)
					if m.id != g.leader {
						resp.Members = nil
					} else {
						// The leader need not compute assignments again.
						resp.SkipAssignment = true
					}
					c.persistGroupAsync(g)
					return m, resp
				}
				return m, nil
			}
			m := add(newID())
			if m == nil {
				return nil, answer(kerr.GroupMaxSizeReached, "")
			}
			return m, nil
		}
		if req.Version >= 4 {
			id := newID()
			g.pending[id] = now.Add(session)
			return nil, answer(kerr.MemberIDRequired, id)
		}
		m := add(newID())
		if m == nil {
			return nil, answer(kerr.GroupMaxSizeReached, "")
		}
		return m, nil
	}

	if _, ok := g.pending[req.MemberID]; ok {
		delete(g.pending, req.MemberID)
		m := add(req.MemberID)
		if m == nil {
			return nil, answer(kerr.GroupMaxSizeReached, req.MemberID)
		}
		return m, nil
	}
	m, ok := g.members[req.MemberID]
	if !ok {
		return nil, answer(kerr.UnknownMemberID, req.MemberID)
	}
	if instanceID != "" && g.static[instanceID] != m.id {
		return nil, answer(kerr.FencedInstanceID, req.MemberID)
	}
	if m.joinCh != nil {
		// A retried join replaces the one already waiting.
		c.failJoinLocked(m, kerr.RebalanceInProgress)
	}
	changed := !protocolsEqual(m.protocols, req.Protocols)
	update(m)
	if (g.state == Stable || g.state == CompletingRebalance) && !changed && m.id != g.leader {
		// Nothing changed: the member missed the join response of the
		// current generation; give it again.
		m.joinVersion = req.Version
		return m, c.joinResponseLocked(g, m)
	}
	return m, nil
}

func protocolsEqual(a, b []kmsg.JoinGroupRequestProtocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Metadata) != string(b[i].Metadata) {
			return false
		}
	}
	return true
}

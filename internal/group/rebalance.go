package group

import (
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var errCoordinatorNotAvailable = kerr.CoordinatorNotAvailable

// prepareRebalanceLocked moves the group to PreparingRebalance: members must
// rejoin within the largest rebalance timeout. Members waiting in SyncGroup
// are told a rebalance is in progress. An empty group waits the initial
// rebalance delay first, so that a burst of joining members lands in one
// generation.
func (c *Coordinator) prepareRebalanceLocked(g *group, now time.Time) {
	for _, m := range g.members {
		c.failSyncLocked(m, kerr.RebalanceInProgress)
	}
	wasEmpty := g.state == Empty
	if g.state == PreparingRebalance {
		return
	}
	var timeout time.Duration
	for _, m := range g.members {
		timeout = max(timeout, m.rebalanceTimeout)
	}
	g.setState(PreparingRebalance, now)
	g.rebalanceDeadline = now.Add(timeout)
	g.delayUntil = time.Time{}
	if wasEmpty && c.cfg.InitialRebalanceDelay > 0 {
		g.delayUntil = now.Add(min(c.cfg.InitialRebalanceDelay, timeout))
		g.rebalanceDeadline = now.Add(timeout)
	}
}

// extendInitialDelayLocked pushes an initial delayed join back when another
// member arrives, up to the rebalance timeout.
func (c *Coordinator) extendInitialDelayLocked(g *group, now time.Time) {
	if g.delayUntil.IsZero() || !now.Before(g.delayUntil) {
		return
	}
	next := now.Add(c.cfg.InitialRebalanceDelay)
	if next.After(g.rebalanceDeadline) {
		next = g.rebalanceDeadline
	}
	g.delayUntil = next
}

// allJoinedLocked reports whether every member has a JoinGroup waiting.
func (c *Coordinator) allJoinedLocked(g *group) bool {
	for _, m := range g.members {
		if m.joinCh == nil {
			return false
		}
	}
	return len(g.members) > 0
}

// maybeCompleteJoinLocked completes the rebalance when every member has
// rejoined and no initial delay is running.
func (c *Coordinator) maybeCompleteJoinLocked(g *group, now time.Time) {
	if g.state == PreparingRebalance && c.allJoinedLocked(g) && !now.Before(g.delayUntil) {
		c.completeJoinLocked(g, now)
	}
}

// completeJoinLocked ends PreparingRebalance: members that did not rejoin are
// removed, the generation advances, a protocol and a leader are chosen, and
// every waiting JoinGroup is answered (the leader with the members' metadata).
func (c *Coordinator) completeJoinLocked(g *group, now time.Time) {
	for _, m := range g.members {
		if m.joinCh == nil {
			c.lg.Info("group member did not rejoin in time", "group", g.name, "member", m.id)
			c.removeMemberLocked(g, m)
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.setState(Empty, now)
		g.protocol, g.leader = "", ""
		c.persistGroupAsync(g)
		return
	}
	g.protocol = c.chooseProtocolLocked(g)
	if _, ok := g.members[g.leader]; !ok {
		g.leader = ""
		for _, m := range g.members {
			if g.leader == "" || m.order < g.members[g.leader].order {
				g.leader = m.id
			}
		}
	}
	g.setState(CompletingRebalance, now)
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return g.members[ids[i]].order < g.members[ids[j]].order })
	for _, id := range ids {
		m := g.members[id]
		m.deadline = now.Add(m.sessionTimeout)
		resp := c.joinResponseLocked(g, m)
		m.joinCh <- resp
		m.joinCh = nil
	}
}

// joinResponseLocked is the JoinGroup answer for a member of the current
// generation.
func (c *Coordinator) joinResponseLocked(g *group, m *member) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.SetVersion(m.joinVersion)
	resp.Generation = g.generation
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	if m.id == g.leader {
		for _, o := range g.members {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID = o.id
			if o.instanceID != "" {
				iid := o.instanceID
				jm.InstanceID = &iid
			}
			jm.ProtocolMetadata = o.metadataFor(g.protocol)
			resp.Members = append(resp.Members, jm)
		}
		sort.Slice(resp.Members, func(i, j int) bool {
			return g.members[resp.Members[i].MemberID].order < g.members[resp.Members[j].MemberID].order
		})
	}
	return resp
}

// chooseProtocolLocked picks the protocol every member supports that most
// members list first among those (Kafka's vote).
func (c *Coordinator) chooseProtocolLocked(g *group) string {
	supported := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			supported[p.Name]++
		}
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if supported[p.Name] == len(g.members) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for name, v := range votes {
		if best == "" || v > votes[best] || (v == votes[best] && name < best) {
			best = name
		}
	}
	return best
}

// supportsProtocolsLocked reports whether protocols share at least one
// protocol with every current member.
func (g *group) supportsProtocolsLocked(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		all := true
		for _, m := range g.members {
			if !hasProtocol(m.protocols, p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func hasProtocol(ps []kmsg.JoinGroupRequestProtocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// removeMemberLocked drops a member, answering anything it waits on.
func (c *Coordinator) removeMemberLocked(g *group, m *member) {
	c.failJoinLocked(m, kerr.UnknownMemberID)
	c.failSyncLocked(m, kerr.UnknownMemberID)
	delete(g.members, m.id)
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
	}
}

func (c *Coordinator) failJoinLocked(m *member, code *kerr.Error) {
	if m.joinCh == nil {
		return
	}
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.SetVersion(m.joinVersion)
	resp.ErrorCode = code.Code
	resp.Generation = -1
	resp.MemberID = m.id
	m.joinCh <- resp
	m.joinCh = nil
}

func (c *Coordinator) failSyncLocked(m *member, code *kerr.Error) {
	if m.syncCh == nil {
		return
	}
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.ErrorCode = code.Code
	m.syncCh <- resp
	m.syncCh = nil
}

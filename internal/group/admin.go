package group

import (
	"context"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups (key 16), v0-v5: every group this coordinator serves, filtered
// by state (v4+) and type (v5+; all groups here are "classic"). While a
// partition is loading it answers COORDINATOR_LOAD_IN_PROGRESS with the
// groups it has, as Kafka does.
//
// DescribeGroups (key 15), v0-v5: state, protocol and members with their
// metadata and assignments. An unknown group is reported Dead, as Kafka does;
// a group this coordinator does not serve gets NOT_COORDINATOR (or
// COORDINATOR_LOAD_IN_PROGRESS) and no state.
//
// DeleteGroups (key 42), v0-v2: deletes empty groups and their offsets.

// ListGroups handles a ListGroups request.
func (c *Coordinator) ListGroups(req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	want := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if equalFold(f, v) {
				return true
			}
		}
		return false
	}
	groups, loading := c.all()
	if loading {
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
	}
	for _, g := range groups {
		g.mu.Lock()
		state, ptype := string(g.state), g.protocolType
		g.mu.Unlock()
		if state == string(Dead) || !want(req.StatesFilter, state) || !want(req.TypesFilter, "classic") {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.name, ptype, state, "classic"
		resp.Groups = append(resp.Groups, lg)
	}
	sort.Slice(resp.Groups, func(i, j int) bool { return resp.Groups[i].Group < resp.Groups[j].Group })
	return resp
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}

// DescribeGroups handles a DescribeGroups request.
func (c *Coordinator) DescribeGroups(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = name
		dg.State = string(Dead)
		dg.AuthorizedOperations = -2147483648
		g, code := c.lookup(name, false)
		if code != nil {
			dg.ErrorCode, dg.State = code.Code, ""
		}
		if g != nil {
			g.mu.Lock()
			dg.State, dg.ProtocolType, dg.Protocol = string(g.state), g.protocolType, g.protocol
			members := make([]*member, 0, len(g.members))
			for _, m := range g.members {
				members = append(members, m)
			}
			sort.Slice(members, func(i, j int) bool { return members[i].order < members[j].order })
			for _, m := range members {
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID, dm.ClientID, dm.ClientHost = m.id, m.clientID, m.clientHost
				if m.instanceID != "" {
					iid := m.instanceID
					dm.InstanceID = &iid
				}
				dm.ProtocolMetadata = m.metadataFor(g.protocol)
				dm.MemberAssignment = m.assignment
				if g.state != Stable {
					dm.MemberAssignment = nil
				}
				dg.Members = append(dg.Members, dm)
			}
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// DeleteGroups handles a DeleteGroups request.
func (c *Coordinator) DeleteGroups(req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = name
		if code := c.deleteGroup(name); code != nil {
			dg.ErrorCode = code.Code
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

func (c *Coordinator) deleteGroup(name string) *kerr.Error {
	g, code := c.lookup(name, false)
	switch {
	case code != nil:
		return code
	case g == nil:
		return kerr.GroupIDNotFound
	}
	g.writeMu.Lock()
	defer g.writeMu.Unlock()
	g.mu.Lock()
	switch {
	case g.state == Dead:
		g.mu.Unlock()
		return kerr.GroupIDNotFound
	case g.state != Empty || len(g.members) > 0:
		g.mu.Unlock()
		return kerr.NonEmptyGroup
	}
	recs := []Record{{Key: groupKey(name)}}
	for k := range g.offsets {
		recs = append(recs, offsetRecord(name, k, nil))
	}
	g.mu.Unlock()
	if err := c.appendLocked(context.Background(), g, recs); err != nil {
		c.lg.Warn("delete group", "group", name, "err", err)
		return appendCode(err, false)
	}
	g.mu.Lock()
	g.setState(Dead, time.Now())
	g.mu.Unlock()
	c.forget(g)
	return nil
}

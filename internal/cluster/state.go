package cluster

import "fmt"

// State is a provisioned cluster's lifecycle state, as MSK names it.
type State string

// The cluster states of MSK's ClusterState enum.
const (
	Active          State = "ACTIVE"
	Creating        State = "CREATING"
	Deleting        State = "DELETING"
	Failed          State = "FAILED"
	Healing         State = "HEALING"
	Maintenance     State = "MAINTENANCE"
	RebootingBroker State = "REBOOTING_BROKER"
	Updating        State = "UPDATING"
)

// Call is a class of API call whose admission depends on the cluster's state.
// Reads (describe, list, tags) are allowed in every state and have no Call.
type Call string

// The state-dependent calls.
const (
	// CallBootstrap reads the brokers' addresses: only while data flows.
	CallBootstrap Call = "get the bootstrap brokers of"
	// CallDelete deletes the cluster.
	CallDelete Call = "delete"
	// CallUpdate is any Update* call, RebootBroker, or a cluster policy change.
	CallUpdate Call = "update"
)

// allowed is MSK's table of what each state permits
// (developerguide/msk-cluster-states): ACTIVE takes everything; CREATING and
// DELETING take no updates and carry no data; FAILED may only be deleted;
// HEALING, MAINTENANCE, REBOOTING_BROKER and UPDATING carry data but refuse
// updates until the cluster is ACTIVE again. Fjord also lets a CREATING
// cluster be deleted, which aborts its creation.
var allowed = map[State]map[Call]bool{
	Active:          {CallBootstrap: true, CallDelete: true, CallUpdate: true},
	Creating:        {CallDelete: true},
	Deleting:        {},
	Failed:          {CallDelete: true},
	Healing:         {CallBootstrap: true, CallDelete: true},
	Maintenance:     {CallBootstrap: true},
	RebootingBroker: {CallBootstrap: true},
	Updating:        {CallBootstrap: true},
}

// Allows reports whether a cluster in state s accepts call c.
func (s State) Allows(c Call) bool { return allowed[s][c] }

// Admit returns nil if a cluster in state s accepts call c, and otherwise an
// error in MSK's words ("You can't delete cluster in DELETING state.") that
// says which state the cluster must reach first.
func (s State) Admit(c Call) error {
	if s.Allows(c) {
		return nil
	}
	msg := fmt.Sprintf("You can't %s cluster in %s state.", c, s)
	switch {
	case s == Creating && c == CallBootstrap:
		msg += " Bootstrap brokers are available once the cluster is ACTIVE; wait for it."
	case s == Deleting:
		msg += " The cluster is being deleted."
	default:
		msg += " Wait until the cluster is ACTIVE and try again."
	}
	return &Error{Kind: Invalid, Message: msg}
}

package cluster

import "time"

// Operation types Fjord records. MSK's update operations use the same names
// (UPDATE_BROKER_COUNT, ...); creation and deletion are recorded too.
const (
	OpCreate = "CREATE"
	OpDelete = "DELETE"
)

// Operation states.
const (
	OpPending    = "PENDING"
	OpInProgress = "UPDATE_IN_PROGRESS"
	OpComplete   = "UPDATE_COMPLETE"
	OpFailed     = "UPDATE_FAILED"
)

// Step statuses.
const (
	StepPending    = "PENDING"
	StepInProgress = "IN_PROGRESS"
	StepComplete   = "COMPLETE"
	StepFailed     = "FAILED"
)

// Operation is one recorded cluster operation: a create, a delete or an
// update, with the steps the reconciler took to carry it out.
type Operation struct {
	ARN          string
	ClusterARN   string
	Type         string
	State        string
	CreationTime time.Time
	EndTime      time.Time // zero while running
	ErrorCode    string
	ErrorString  string
	Steps        []Step
	Source       *Spec // the cluster before the operation, if it changed it
	Target       *Spec // the cluster the operation drives towards
}

// Step is one named stage of an operation.
type Step struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// SetStep records status for the named step, appending the step if it is new.
// It reports whether anything changed.
func (o *Operation) SetStep(name, status string) bool {
	for i := range o.Steps {
		if o.Steps[i].Name == name {
			if o.Steps[i].Status == status {
				return false
			}
			o.Steps[i].Status = status
			return true
		}
	}
	o.Steps = append(o.Steps, Step{Name: name, Status: status})
	return true
}

// Done reports whether the operation has finished, well or badly.
func (o *Operation) Done() bool { return o.State == OpComplete || o.State == OpFailed }

package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fjord-io/fjord/internal/cluster"
	"github.com/fjord-io/fjord/internal/provision"
	"github.com/fjord-io/fjord/internal/store"
)

// Steps of a CREATE operation.
const (
	StepPlaceBrokers = "PLACE_BROKERS"
	// StepStartQuorum starts the cluster's metadata quorum and waits for
	// it to elect a leader.
	StepStartQuorum  = "START_METADATA_QUORUM"
	StepStartBrokers = "START_BROKERS"
	// StepWaitBrokers waits until every broker answers a Metadata request
	// listing all of them: the brokers have formed one cluster.
	StepWaitBrokers = "WAIT_FOR_BROKERS"
)

// Steps of a DELETE operation.
const (
	StepStopBrokers = "STOP_BROKERS"
	StepRemoveData  = "REMOVE_BROKER_DATA"
)

// tracker records an operation's progress, writing only on change.
type tracker struct {
	r  *Reconciler
	op cluster.Operation
}

func (r *Reconciler) track(ctx context.Context, arn string) (*tracker, error) {
	if arn == "" {
		return &tracker{r: r}, nil
	}
	op, err := r.store.Operation(ctx, arn)
	if err != nil {
		return nil, err
	}
	return &tracker{r: r, op: op}, nil
}

// step sets the status of a step (and marks the operation in progress).
func (t *tracker) step(ctx context.Context, name, status string) error {
	if t.op.ARN == "" || t.op.Done() {
		return nil
	}
	changed := t.op.SetStep(name, status)
	if t.op.State == cluster.OpPending {
		t.op.State, changed = cluster.OpInProgress, true
	}
	if !changed {
		return nil
	}
	return t.save(ctx)
}

// finish ends the operation, failed if code is not empty.
func (t *tracker) finish(ctx context.Context, code, msg string) error {
	if t.op.ARN == "" || t.op.Done() {
		return nil
	}
	t.op.State, t.op.EndTime = cluster.OpComplete, time.Now().UTC()
	if code != "" {
		t.op.State, t.op.ErrorCode, t.op.ErrorString = cluster.OpFailed, code, msg
	}
	return t.save(ctx)
}

func (t *tracker) save(ctx context.Context) error {
	op := t.op
	_, err := t.r.store.UpdateOperation(ctx, op.ARN, func(o *cluster.Operation) error {
		*o = op
		return nil
	})
	return err
}

// create places the brokers of a CREATING cluster, starts its metadata
// quorum and waits for it, starts the brokers and waits for them to form the
// cluster, then makes it ACTIVE, or FAILED once CreateTimeout has passed.
func (r *Reconciler) create(ctx context.Context, c cluster.Cluster, a cluster.ARN) (time.Duration, error) {
	t, err := r.track(ctx, c.ActiveOperationARN)
	if err != nil {
		return 0, err
	}
	if err := t.step(ctx, StepPlaceBrokers, cluster.StepInProgress); err != nil {
		return 0, err
	}
	nodes, err := r.placeNodes(ctx, c, a)
	if err != nil {
		return 0, err
	}
	if err := t.step(ctx, StepPlaceBrokers, cluster.StepComplete); err != nil {
		return 0, err
	}
	if err := t.step(ctx, StepStartQuorum, cluster.StepInProgress); err != nil {
		return 0, err
	}
	q := quorum(c, a)
	if _, err := r.prov.EnsureQuorum(ctx, q); err != nil {
		if r.expired(c) {
			return 0, r.fail(ctx, c, t, StepStartQuorum, "QUORUM_START_FAILED", err)
		}
		return 0, err
	}
	if err := r.prov.ProbeQuorum(ctx, q); err != nil {
		if r.expired(c) {
			return 0, r.fail(ctx, c, t, StepStartQuorum, "QUORUM_UNREACHABLE", err)
		}
		return r.cfg.ProbeInterval, nil
	}
	if err := t.step(ctx, StepStartQuorum, cluster.StepComplete); err != nil {
		return 0, err
	}
	if err := t.step(ctx, StepStartBrokers, cluster.StepInProgress); err != nil {
		return 0, err
	}
	brokers, err := r.brokers(ctx, c, a, nodes)
	if err != nil {
		return 0, err
	}
	for _, b := range brokers {
		if _, err := r.prov.Ensure(ctx, b); err != nil {
			if r.expired(c) {
				return 0, r.fail(ctx, c, t, StepStartBrokers, "BROKER_START_FAILED", err)
			}
			return 0, err
		}
	}
	if err := t.step(ctx, StepStartBrokers, cluster.StepComplete); err != nil {
		return 0, err
	}
	if err := t.step(ctx, StepWaitBrokers, cluster.StepInProgress); err != nil {
		return 0, err
	}
	for _, b := range brokers {
		if err := r.prov.Probe(ctx, b); err != nil {
			if r.expired(c) {
				return 0, r.fail(ctx, c, t, StepWaitBrokers, "BROKERS_UNREACHABLE", err)
			}
			return r.cfg.ProbeInterval, nil
		}
	}
	if err := t.step(ctx, StepWaitBrokers, cluster.StepComplete); err != nil {
		return 0, err
	}
	if err := t.finish(ctx, "", ""); err != nil {
		return 0, err
	}
	_, err = r.store.UpdateCluster(ctx, c.ARN, func(c *cluster.Cluster) (*cluster.Operation, error) {
		if c.State != cluster.Creating {
			return nil, nil // deleted meanwhile: leave it to the next pass
		}
		c.State, c.CurrentVersion, c.ActiveOperationARN = cluster.Active, cluster.NewVersion(), ""
		return nil, nil
	})
	if err != nil {
		return 0, err
	}
	r.cfg.Log.Info("cluster is ACTIVE", "cluster", c.ARN, "brokers", len(brokers), "took", time.Since(c.CreationTime).Round(time.Millisecond))
	return r.cfg.ResyncInterval, nil
}

// expired reports whether c has been CREATING for longer than CreateTimeout
// while a control plane was running: time the control plane was down does
// not count against it.
func (r *Reconciler) expired(c cluster.Cluster) bool {
	since := c.CreationTime
	if r.start.After(since) {
		since = r.start
	}
	return time.Since(since) > r.cfg.CreateTimeout
}

// fail marks the operation and the cluster FAILED; the brokers are stopped
// on the next pass.
func (r *Reconciler) fail(ctx context.Context, c cluster.Cluster, t *tracker, step, code string, cause error) error {
	msg := fmt.Sprintf("the cluster did not become ACTIVE within %s: %v", r.cfg.CreateTimeout, cause)
	r.cfg.Log.Error("cluster creation failed", "cluster", c.ARN, "err", cause)
	if err := t.step(ctx, step, cluster.StepFailed); err != nil {
		return err
	}
	if err := t.finish(ctx, code, msg); err != nil {
		return err
	}
	_, err := r.store.UpdateCluster(ctx, c.ARN, func(c *cluster.Cluster) (*cluster.Operation, error) {
		if c.State != cluster.Creating {
			return nil, nil
		}
		c.State, c.CurrentVersion, c.ActiveOperationARN = cluster.Failed, cluster.NewVersion(), ""
		c.StateInfo = cluster.StateInfo{Code: code, Message: msg}
		return nil, nil
	})
	return err
}

// placeNodes records any broker of c not yet placed, giving each a zone
// round-robin over the client subnets and a free port.
func (r *Reconciler) placeNodes(ctx context.Context, c cluster.Cluster, a cluster.ARN) ([]cluster.Node, error) {
	nodes, err := r.store.Nodes(ctx, c.ARN)
	if err != nil {
		return nil, err
	}
	have := map[int]bool{}
	for _, n := range nodes {
		have[n.BrokerID] = true
	}
	for id := 1; id <= c.Spec.NumberOfBrokerNodes; id++ {
		if have[id] {
			continue
		}
		subnet, zone := cluster.Placement(a.Region, c.Spec.ClientSubnets, id)
		nodeARN := a
		nodeARN.Resource, nodeARN.Sub = cluster.ResourceBroker, uuid.NewString()
		n := cluster.Node{ClusterARN: c.ARN, BrokerID: id, NodeARN: nodeARN.String(), ClientSubnet: subnet, Zone: zone, AddedTime: time.Now().UTC()}
		for tries := 0; ; tries++ {
			if n.Port, err = r.freePort(ctx); err != nil {
				return nil, err
			}
			err = r.store.AddNode(ctx, n)
			if err == nil {
				break
			}
			if !errors.Is(err, store.ErrPortTaken) || tries > 10 {
				return nil, err
			}
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// freePort returns the lowest port in the configured range that no node
// holds and nothing on this host listens on.
func (r *Reconciler) freePort(ctx context.Context) (int, error) {
	used, err := r.store.UsedPorts(ctx)
	if err != nil {
		return 0, err
	}
	for p := r.cfg.PortMin; p <= r.cfg.PortMax; p++ {
		if used[p] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		return p, nil
	}
	return 0, fmt.Errorf("no free broker port in %d-%d", r.cfg.PortMin, r.cfg.PortMax)
}

// brokers returns what the provisioner needs to run each node of c.
func (r *Reconciler) brokers(ctx context.Context, c cluster.Cluster, a cluster.ARN, nodes []cluster.Node) ([]provision.Broker, error) {
	var props []byte
	if ref := c.Spec.Configuration; ref != nil {
		rev, err := r.store.Revision(ctx, ref.ARN, ref.Revision)
		if err != nil {
			return nil, fmt.Errorf("read configuration of %s: %w", c.Name, err)
		}
		props = rev.ServerProperties
		if props == nil {
			props = []byte{}
		}
	}
	out := make([]provision.Broker, 0, len(nodes))
	for _, n := range nodes {
		if n.BrokerID > c.Spec.NumberOfBrokerNodes {
			continue
		}
		out = append(out, provision.Broker{
			ClusterID: a.UUID(), NodeID: n.BrokerID, Brokers: c.Spec.NumberOfBrokerNodes,
			Port: n.Port, Rack: n.Zone, ServerProperties: props,
		})
	}
	return out, nil
}

// quorum returns c's metadata quorum.
func quorum(c cluster.Cluster, a cluster.ARN) provision.Quorum {
	return provision.Quorum{ClusterID: a.UUID(), Members: provision.QuorumSize(c.Spec.NumberOfBrokerNodes)}
}

// maintain keeps a settled cluster's quorum members and brokers running,
// restarting any that died.
func (r *Reconciler) maintain(ctx context.Context, c cluster.Cluster, a cluster.ARN) (time.Duration, error) {
	started, err := r.prov.EnsureQuorum(ctx, quorum(c, a))
	if err != nil {
		return 0, err
	}
	if started {
		r.cfg.Log.Warn("restarted a quorum member that had stopped", "cluster", c.ARN)
	}
	nodes, err := r.store.Nodes(ctx, c.ARN)
	if err != nil {
		return 0, err
	}
	brokers, err := r.brokers(ctx, c, a, nodes)
	if err != nil {
		return 0, err
	}
	for _, b := range brokers {
		started, err := r.prov.Ensure(ctx, b)
		if err != nil {
			return 0, err
		}
		if started {
			r.cfg.Log.Warn("restarted a broker that had stopped", "cluster", c.ARN, "broker", b.NodeID)
		}
	}
	return r.cfg.ResyncInterval, nil
}

// delete stops a DELETING cluster's brokers and quorum, removes their data,
// closes its operations and forgets the cluster, freeing its ports.
func (r *Reconciler) delete(ctx context.Context, c cluster.Cluster, a cluster.ARN) error {
	t, err := r.track(ctx, c.ActiveOperationARN)
	if err != nil {
		return err
	}
	if err := t.step(ctx, StepStopBrokers, cluster.StepInProgress); err != nil {
		return err
	}
	if err := r.prov.Stop(ctx, a.UUID()); err != nil {
		return err
	}
	if err := t.step(ctx, StepStopBrokers, cluster.StepComplete); err != nil {
		return err
	}
	if err := t.step(ctx, StepRemoveData, cluster.StepInProgress); err != nil {
		return err
	}
	if err := r.prov.Remove(ctx, a.UUID()); err != nil {
		return err
	}
	if err := t.step(ctx, StepRemoveData, cluster.StepComplete); err != nil {
		return err
	}
	if err := r.closeOperations(ctx, c.ARN, t.op.ARN); err != nil {
		return err
	}
	if err := t.finish(ctx, "", ""); err != nil {
		return err
	}
	if err := r.store.RemoveCluster(ctx, c.ARN); err != nil {
		return err
	}
	r.cfg.Log.Info("cluster deleted", "cluster", c.ARN)
	return nil
}

// closeOperations fails every unfinished operation of a cluster but keep:
// a creation interrupted by deletion ends here.
func (r *Reconciler) closeOperations(ctx context.Context, clusterARN, keep string) error {
	p := store.Page{}
	for {
		ops, next, err := r.store.Operations(ctx, clusterARN, p)
		if err != nil {
			return err
		}
		for _, op := range ops {
			if op.ARN == keep || op.Done() {
				continue
			}
			t := &tracker{r: r, op: op}
			for _, s := range op.Steps {
				if s.Status != cluster.StepComplete {
					t.op.SetStep(s.Name, cluster.StepFailed)
				}
			}
			if err := t.finish(ctx, "CANCELLED", "the cluster was deleted before the "+strings.ToLower(op.Type)+" operation finished"); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		p.NextToken = next
	}
}

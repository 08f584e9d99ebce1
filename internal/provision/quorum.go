package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fjord-io/fjord/internal/atomicfile"
	"github.com/fjord-io/fjord/internal/probe"
)

// quorumFile is the file in a cluster's directory recording its quorum.
const quorumFile = "quorum.json"

// errNoQuorum means a cluster's quorum has not been provisioned yet.
var errNoQuorum = errors.New("the cluster's metadata quorum is not provisioned yet")

// quorumState is a cluster's quorum as first provisioned: its members and
// their ports, which never change afterwards (etcd members know each other
// by address, and brokers find the quorum by it).
type quorumState struct {
	Members []member `json:"members"`
}

// member is one quorum member, named quorum-<j> for the j-th.
type member struct {
	Name       string `json:"name"`
	ClientPort int    `json:"clientPort"`
	PeerPort   int    `json:"peerPort"`
}

// clientURLs returns every member's client URL, as `fjord broker
// --metadata-endpoints` takes them.
func (q quorumState) clientURLs() []string {
	urls := make([]string, len(q.Members))
	for j, m := range q.Members {
		urls[j] = "http://" + loopback(m.ClientPort)
	}
	return urls
}

// initialCluster returns the members as `fjord quorum --initial-cluster`
// takes them: name=http://peer, comma separated.
func (q quorumState) initialCluster() string {
	parts := make([]string, len(q.Members))
	for j, m := range q.Members {
		parts[j] = m.Name + "=http://" + loopback(m.PeerPort)
	}
	return strings.Join(parts, ",")
}

// loadQuorum reads the quorum of a cluster; errNoQuorum if it has none yet.
func (l *Local) loadQuorum(clusterID string) (quorumState, error) {
	var q quorumState
	b, err := os.ReadFile(filepath.Join(l.clusterDir(clusterID), quorumFile))
	if errors.Is(err, os.ErrNotExist) {
		return q, errNoQuorum
	}
	if err != nil {
		return q, err
	}
	if err := json.Unmarshal(b, &q); err != nil || len(q.Members) == 0 {
		return q, fmt.Errorf("%s of cluster %s is corrupt (%v)", quorumFile, clusterID, err)
	}
	return q, nil
}

// provisionQuorum returns the quorum of q's cluster, allocating its members'
// ports and recording them on first use. Ports come from the quorum port
// range, lowest first, skipping those any cluster's quorum records and those
// something on this host listens on.
func (l *Local) provisionQuorum(q Quorum) (quorumState, error) {
	st, err := l.loadQuorum(q.ClusterID)
	if !errors.Is(err, errNoQuorum) {
		return st, err
	}
	if q.Members != 1 && q.Members != 3 {
		return st, fmt.Errorf("a quorum has 1 or 3 members, not %d", q.Members)
	}
	l.portsMu.Lock()
	defer l.portsMu.Unlock()
	used, err := l.quorumPorts()
	if err != nil {
		return st, err
	}
	var ports []int
	for p := l.cfg.QuorumPortMin; p <= l.cfg.QuorumPortMax && len(ports) < 2*q.Members; p++ {
		if !used[p] && portFree(p) == nil {
			ports = append(ports, p)
		}
	}
	if len(ports) < 2*q.Members {
		return st, fmt.Errorf("no %d free quorum ports in %d-%d", 2*q.Members, l.cfg.QuorumPortMin, l.cfg.QuorumPortMax)
	}
	for j := range q.Members {
		st.Members = append(st.Members, member{Name: "quorum-" + strconv.Itoa(j), ClientPort: ports[2*j], PeerPort: ports[2*j+1]})
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return st, err
	}
	if err := os.MkdirAll(l.clusterDir(q.ClusterID), 0o700); err != nil {
		return st, err
	}
	if err := atomicfile.Write(filepath.Join(l.clusterDir(q.ClusterID), quorumFile), append(b, '\n')); err != nil {
		return st, err
	}
	l.cfg.Log.Info("allocated quorum ports", "quorum", q.String(), "members", st.initialCluster())
	return st, nil
}

// quorumPorts returns every port a cluster's quorum records.
func (l *Local) quorumPorts() (map[int]bool, error) {
	entries, err := os.ReadDir(l.root)
	if err != nil {
		return nil, err
	}
	used := map[int]bool{}
	for _, e := range entries {
		st, err := l.loadQuorum(e.Name())
		if errors.Is(err, errNoQuorum) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, m := range st.Members {
			used[m.ClientPort], used[m.PeerPort] = true, true
		}
	}
	return used, nil
}

// memberProcess returns the process of member m of a cluster's quorum st.
func (l *Local) memberProcess(clusterID string, st quorumState, m member) process {
	dir := filepath.Join(l.clusterDir(clusterID), m.Name)
	args := append([]string{}, l.cfg.QuorumArgs...)
	args = append(args,
		"--name", m.Name,
		"--data-dir", dataDir(dir),
		"--listen-client", loopback(m.ClientPort),
		"--listen-peer", loopback(m.PeerPort),
		"--initial-cluster", st.initialCluster(),
		// A member restarted on its data directory resumes from it
		// whatever this says (internal/quorum).
		"--initial-cluster-state", "new",
	)
	return process{name: "quorum member " + m.Name, dir: dir, kind: "quorum", ports: []int{m.ClientPort, m.PeerPort}, args: args}
}

// EnsureQuorum implements Provisioner.
func (l *Local) EnsureQuorum(ctx context.Context, q Quorum) (bool, error) {
	l.reap()
	st, err := l.provisionQuorum(q)
	if err != nil {
		return false, fmt.Errorf("ensure %s: %w", q, err)
	}
	startedAny := false
	for _, m := range st.Members {
		p := l.memberProcess(q.ClusterID, st, m)
		// etcd wants its data directory private to its user.
		if err := os.MkdirAll(dataDir(p.dir), 0o700); err != nil {
			return startedAny, fmt.Errorf("ensure %s: %w", q, err)
		}
		started, err := l.ensure(p, q.String()+" member "+m.Name)
		startedAny = startedAny || started
		if err != nil {
			return startedAny, err
		}
	}
	return startedAny, nil
}

// ProbeQuorum implements Provisioner.
func (l *Local) ProbeQuorum(ctx context.Context, q Quorum) error {
	l.reap()
	st, err := l.loadQuorum(q.ClusterID)
	if err != nil {
		return err
	}
	for _, m := range st.Members {
		p := l.memberProcess(q.ClusterID, st, m)
		if _, ok := p.pid(); !ok {
			return p.notRunning()
		}
	}
	var errs []error
	for _, u := range st.clientURLs() {
		err := probe.QuorumHealthy(ctx, l.hc, u)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("the metadata quorum has no leader yet: %w", errors.Join(errs...))
}

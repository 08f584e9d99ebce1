package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fjord-io/fjord/internal/atomicfile"
	"github.com/fjord-io/fjord/internal/probe"
)

// LocalConfig configures the local process driver.
type LocalConfig struct {
	// DataDir is the control plane's data directory; a cluster's processes
	// live under DataDir/clusters/<cluster-uuid>/: broker-<id> and
	// quorum-<j>.
	DataDir string
	// Binary is the executable to run: the fjord binary.
	Binary string
	// Args come before the broker flags; nil means []string{"broker"}.
	Args []string
	// QuorumArgs come before the quorum member flags; nil means
	// []string{"quorum"}.
	QuorumArgs []string
	// Env is added to the environment of every process.
	Env []string
	// QuorumPortMin and QuorumPortMax bound the ports of quorum members
	// (inclusive); both 0 means 22000-22999, the thousand ports after the
	// control plane's default broker ports. The range must not overlap the
	// brokers': broker ports are allocated by the reconciler, these here.
	QuorumPortMin, QuorumPortMax int
	// StopTimeout is how long a process gets to exit after SIGTERM before
	// SIGKILL; 0 means 10s.
	StopTimeout time.Duration
	// Log receives one line per process started or stopped; nil discards.
	Log *slog.Logger
}

// Local runs each broker and quorum member as an OS process on this host,
// listening on 127.0.0.1 only. Each has a directory under its cluster's
// (broker-<id>, quorum-<j>) holding its data (data/), its pid file
// (broker.pid, quorum.pid) and its log (broker.log, quorum.log); a broker's
// also holds its server.properties. The cluster's directory holds
// quorum.json, the quorum's members and ports, fixed when the quorum is
// first provisioned. Processes are started in their own process group and
// outlive the control plane: a restarted control plane adopts them.
//
// Local is safe for concurrent use on different clusters; calls for one
// cluster must not overlap (the reconciler serializes them).
type Local struct {
	cfg  LocalConfig
	root string       // DataDir/clusters, absolute
	hc   *http.Client // quorum health checks

	// portsMu serializes the allocation of quorum ports across clusters.
	portsMu sync.Mutex

	mu struct {
		sync.Mutex
		children map[int]bool // processes this run started, to reap
	}
}

var _ Provisioner = (*Local)(nil)

// NewLocal returns a local driver.
func NewLocal(cfg LocalConfig) (*Local, error) {
	if cfg.Binary == "" {
		return nil, errors.New("local provisioner: no broker binary")
	}
	if cfg.Args == nil {
		cfg.Args = []string{"broker"}
	}
	if cfg.QuorumArgs == nil {
		cfg.QuorumArgs = []string{"quorum"}
	}
	if cfg.QuorumPortMin == 0 && cfg.QuorumPortMax == 0 {
		cfg.QuorumPortMin, cfg.QuorumPortMax = 22000, 22999
	}
	if cfg.QuorumPortMin < 1 || cfg.QuorumPortMax > 65535 || cfg.QuorumPortMin > cfg.QuorumPortMax {
		return nil, fmt.Errorf("local provisioner: quorum port range %d-%d is invalid", cfg.QuorumPortMin, cfg.QuorumPortMax)
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	root, err := filepath.Abs(filepath.Join(cfg.DataDir, "clusters"))
	if err != nil {
		return nil, fmt.Errorf("local provisioner: %w", err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("local provisioner: %w", err)
	}
	// No keep-alive: a probe leaves no connection, nor goroutine, behind.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: probe.Timeout}
	l := &Local{cfg: cfg, root: root, hc: hc}
	l.mu.children = map[int]bool{}
	return l, nil
}

func (l *Local) clusterDir(clusterID string) string { return filepath.Join(l.root, clusterID) }

func (l *Local) brokerDir(b Broker) string {
	return filepath.Join(l.clusterDir(b.ClusterID), "broker-"+strconv.Itoa(b.NodeID))
}

func dataDir(procDir string) string { return filepath.Join(procDir, "data") }

// process is one OS process of a cluster: a broker or a quorum member.
type process struct {
	name  string // for logs and errors
	dir   string // its directory; its --data-dir is dataDir(dir)
	kind  string // "broker" or "quorum": names its pid and log files
	ports []int  // the ports it listens on, which must be free to start it
	args  []string
}

func (p process) pidFile() string { return filepath.Join(p.dir, p.kind+".pid") }
func (p process) logFile() string { return filepath.Join(p.dir, p.kind+".log") }

// pid returns p's pid if it is running.
func (p process) pid() (int, bool) {
	pid, err := readPid(p.pidFile())
	return pid, err == nil && running(pid, dataDir(p.dir))
}

// notRunning returns the error saying p is not running, with the last line
// of its log.
func (p process) notRunning() error {
	return fmt.Errorf("%s is not running%s", p.name, lastLine(p.logFile()))
}

// Ensure implements Provisioner.
func (l *Local) Ensure(ctx context.Context, b Broker) (bool, error) {
	l.reap()
	q, err := l.loadQuorum(b.ClusterID)
	if err != nil {
		return false, fmt.Errorf("ensure %s: %w", b, err)
	}
	dir := l.brokerDir(b)
	if err := os.MkdirAll(dataDir(dir), 0o700); err != nil {
		return false, fmt.Errorf("ensure %s: %w", b, err)
	}
	propsPath := filepath.Join(dir, "server.properties")
	if err := writeIfChanged(propsPath, serverProperties(b.Brokers, b.ServerProperties)); err != nil {
		return false, fmt.Errorf("ensure %s: %w", b, err)
	}
	addr := loopback(b.Port)
	args := append([]string{}, l.cfg.Args...)
	args = append(args,
		"--node-id", strconv.Itoa(b.NodeID),
		"--listen", addr,
		"--advertised", addr,
		"--data-dir", dataDir(dir),
		"--rack", b.Rack,
		"--cluster-id", b.KafkaClusterID(),
		"--metadata-endpoints", strings.Join(q.clientURLs(), ","),
		"--cluster", b.ClusterID,
		"--config", propsPath,
	)
	return l.ensure(process{name: "broker " + strconv.Itoa(b.NodeID), dir: dir, kind: "broker", ports: []int{b.Port}, args: args}, b.String())
}

// ensure makes p run: it keeps or adopts a live process running p, or
// starts one. It reports whether it started one. what names p in logs and
// errors.
func (l *Local) ensure(p process, what string) (bool, error) {
	data := dataDir(p.dir)
	if _, ok := p.pid(); ok {
		return false, nil
	}
	// No pid file, or a stale one: the process may still be running if an
	// earlier run died between starting it and writing the pid file.
	procs, err := scan(l.root)
	if err != nil {
		return false, fmt.Errorf("ensure %s: scan processes: %w", what, err)
	}
	if pids := procs[data]; len(pids) > 0 {
		for _, extra := range pids[1:] {
			l.cfg.Log.Warn("stopping duplicate process", "process", what, "pid", extra)
			signal(extra, syscall.SIGKILL)
		}
		l.cfg.Log.Info("adopted process", "process", what, "pid", pids[0])
		return false, atomicfile.Write(p.pidFile(), []byte(strconv.Itoa(pids[0])+"\n"))
	}
	for _, port := range p.ports {
		if err := portFree(port); err != nil {
			return false, fmt.Errorf("ensure %s: %w", what, err)
		}
	}
	logf, err := os.OpenFile(p.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return false, fmt.Errorf("ensure %s: %w", what, err)
	}
	defer logf.Close()
	cmd := exec.Command(l.cfg.Binary, p.args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), l.cfg.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("start %s: %w", what, err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	l.mu.Lock()
	l.mu.children[pid] = true
	l.mu.Unlock()
	l.cfg.Log.Info("started process", "process", what, "pid", pid, "ports", p.ports)
	if err := atomicfile.Write(p.pidFile(), []byte(strconv.Itoa(pid)+"\n")); err != nil {
		return true, fmt.Errorf("ensure %s: %w", what, err)
	}
	return true, nil
}

// Probe implements Provisioner.
func (l *Local) Probe(ctx context.Context, b Broker) error {
	l.reap()
	p := process{name: "broker " + strconv.Itoa(b.NodeID), dir: l.brokerDir(b), kind: "broker"}
	if _, ok := p.pid(); !ok {
		return p.notRunning()
	}
	ids := make([]int32, b.Brokers) // node ids start at 1, as MSK's
	for i := range ids {
		ids[i] = int32(i + 1)
	}
	if err := probe.ListsBrokers(ctx, loopback(b.Port), ids); err != nil {
		return fmt.Errorf("broker %d is not ready: %w", b.NodeID, err)
	}
	return nil
}

// Stop implements Provisioner.
func (l *Local) Stop(ctx context.Context, clusterID string) error {
	procs, err := scan(l.root)
	if err != nil {
		return fmt.Errorf("stop cluster %s: %w", clusterID, err)
	}
	prefix := l.clusterDir(clusterID) + string(filepath.Separator)
	if err := l.stopOrdered(ctx, procs, func(data string) bool { return strings.HasPrefix(data, prefix) }); err != nil {
		return fmt.Errorf("stop cluster %s: %w", clusterID, err)
	}
	return nil
}

// stopOrdered stops the processes of procs (pids by data directory, as scan
// returns them) whose data directory matches: the brokers first, together,
// so that they hand over while the quorum still runs; then the quorum
// members one at a time, so that each leader hands leadership to a member
// still running rather than wait for one that is stopping too.
func (l *Local) stopOrdered(ctx context.Context, procs map[string][]int, match func(data string) bool) error {
	var brokers []int
	members := map[string][]int{}
	for data, pids := range procs {
		if !match(data) {
			continue
		}
		if dir := filepath.Dir(data); strings.HasPrefix(filepath.Base(dir), "quorum-") {
			members[dir] = append(members[dir], pids...)
		} else {
			brokers = append(brokers, pids...)
		}
	}
	if err := l.stop(ctx, brokers); err != nil {
		return err
	}
	for _, dir := range slices.Sorted(maps.Keys(members)) {
		if err := l.stop(ctx, members[dir]); err != nil {
			return err
		}
	}
	return nil
}

// stop sends SIGTERM to pids, waits up to StopTimeout for them to exit, and
// then sends SIGKILL to the rest.
func (l *Local) stop(ctx context.Context, pids []int) error {
	for _, pid := range pids {
		l.cfg.Log.Info("stopping process", "pid", pid)
		if err := signal(pid, syscall.SIGTERM); err != nil {
			return fmt.Errorf("stop pid %d: %w", pid, err)
		}
	}
	deadline := time.Now().Add(l.cfg.StopTimeout)
	killed := false
	for {
		l.reap()
		left := pids[:0]
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		pids = left
		if len(pids) == 0 {
			return nil
		}
		if !killed && time.Now().After(deadline) {
			for _, pid := range pids {
				l.cfg.Log.Warn("process did not stop in time; killing it", "pid", pid)
				signal(pid, syscall.SIGKILL)
			}
			killed = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Remove implements Provisioner.
func (l *Local) Remove(ctx context.Context, clusterID string) error {
	if err := l.Stop(ctx, clusterID); err != nil {
		return err
	}
	if err := os.RemoveAll(l.clusterDir(clusterID)); err != nil {
		return fmt.Errorf("remove cluster %s: %w", clusterID, err)
	}
	return nil
}

// Sweep implements Provisioner.
func (l *Local) Sweep(ctx context.Context, keep map[string]bool) error {
	procs, err := scan(l.root)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	orphan := func(data string) bool {
		rel, err := filepath.Rel(l.root, data)
		if err != nil {
			return false
		}
		id, _, _ := strings.Cut(rel, string(filepath.Separator))
		return !keep[id]
	}
	var orphans []int
	for data, pids := range procs {
		if orphan(data) {
			orphans = append(orphans, pids...)
		}
	}
	if len(orphans) > 0 {
		l.cfg.Log.Warn("stopping orphaned processes", "pids", orphans)
		if err := l.stopOrdered(ctx, procs, orphan); err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
	}
	entries, err := os.ReadDir(l.root)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			l.cfg.Log.Warn("removing orphaned cluster directory", "dir", e.Name())
			if err := os.RemoveAll(filepath.Join(l.root, e.Name())); err != nil {
				return fmt.Errorf("sweep: %w", err)
			}
		}
	}
	return nil
}

// reap collects the exit status of children this run started, so they do
// not linger as zombies.
func (l *Local) reap() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for pid := range l.mu.children {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if got == pid || errors.Is(err, syscall.ECHILD) {
			delete(l.mu.children, pid)
		}
	}
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func portFree(port int) error {
	ln, err := net.Listen("tcp", loopback(port))
	if err != nil {
		return fmt.Errorf("port %d is in use by another process", port)
	}
	return ln.Close()
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func writeIfChanged(path string, content []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, content) {
		return nil
	}
	return atomicfile.Write(path, content)
}

// lastLine returns ": " and the last non-empty line of the file at path, or "".
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		if len(l) > 300 {
			l = l[len(l)-300:]
		}
		return ": its log ends with " + strconv.Quote(l)
	}
	return ""
}

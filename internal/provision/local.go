package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LocalConfig configures the local process driver.
type LocalConfig struct {
	// DataDir is the control plane's data directory; brokers live under
	// DataDir/clusters/<cluster-uuid>/broker-<id>.
	DataDir string
	// Binary is the executable to run: the fjord binary.
	Binary string
	// Args come before the broker flags; nil means []string{"broker"}.
	Args []string
	// Env is added to the environment of every broker.
	Env []string
	// StopTimeout is how long a broker gets to exit after SIGTERM before
	// SIGKILL; 0 means 10s.
	StopTimeout time.Duration
	// Log receives one line per process started or stopped; nil discards.
	Log *slog.Logger
}

// Local runs each broker as an OS process on this host, listening on
// 127.0.0.1 only. Each broker has a directory holding its data (data/), its
// pid file (broker.pid), its log (broker.log) and, with a configuration, its
// server.properties. Processes are started in their own process group and
// outlive the control plane: a restarted control plane adopts them.
//
// Local is safe for concurrent use on different clusters; calls for one
// cluster must not overlap (the reconciler serializes them).
type Local struct {
	cfg  LocalConfig
	root string // DataDir/clusters, absolute

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
	l := &Local{cfg: cfg, root: root}
	l.mu.children = map[int]bool{}
	return l, nil
}

func (l *Local) clusterDir(clusterID string) string { return filepath.Join(l.root, clusterID) }

func (l *Local) brokerDir(b Broker) string {
	return filepath.Join(l.clusterDir(b.ClusterID), "broker-"+strconv.Itoa(b.NodeID))
}

func dataDir(brokerDir string) string { return filepath.Join(brokerDir, "data") }

// Ensure implements Provisioner.
func (l *Local) Ensure(ctx context.Context, b Broker) (bool, error) {
	l.reap()
	dir := l.brokerDir(b)
	data := dataDir(dir)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return false, fmt.Errorf("ensure %s: %w", b, err)
	}
	propsPath := filepath.Join(dir, "server.properties")
	if b.ServerProperties != nil {
		if err := writeIfChanged(propsPath, b.ServerProperties); err != nil {
			return false, fmt.Errorf("ensure %s: %w", b, err)
		}
	}
	pidPath := filepath.Join(dir, "broker.pid")
	if pid, err := readPid(pidPath); err == nil && running(pid, data) {
		return false, nil
	}
	// No pid file, or a stale one: the process may still be running if an
	// earlier run died between starting it and writing the pid file.
	procs, err := scan(l.root)
	if err != nil {
		return false, fmt.Errorf("ensure %s: scan processes: %w", b, err)
	}
	if pids := procs[data]; len(pids) > 0 {
		for _, extra := range pids[1:] {
			l.cfg.Log.Warn("stopping duplicate broker process", "broker", b.String(), "pid", extra)
			signal(extra, syscall.SIGKILL)
		}
		l.cfg.Log.Info("adopted broker process", "broker", b.String(), "pid", pids[0])
		return false, writeFileAtomic(pidPath, []byte(strconv.Itoa(pids[0])+"\n"))
	}
	if err := portFree(b.Port); err != nil {
		return false, fmt.Errorf("ensure %s: %w", b, err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", b.Port)
	args := append([]string{}, l.cfg.Args...)
	args = append(args,
		"--node-id", strconv.Itoa(b.NodeID),
		"--listen", addr,
		"--advertised", addr,
		"--data-dir", data,
		"--rack", b.Rack,
		"--cluster-id", b.KafkaClusterID(),
	)
	if b.ServerProperties != nil {
		args = append(args, "--config", propsPath)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "broker.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return false, fmt.Errorf("ensure %s: %w", b, err)
	}
	defer logf.Close()
	cmd := exec.Command(l.cfg.Binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), l.cfg.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("start %s: %w", b, err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	l.mu.Lock()
	l.mu.children[pid] = true
	l.mu.Unlock()
	l.cfg.Log.Info("started broker process", "broker", b.String(), "pid", pid, "addr", addr)
	if err := writeFileAtomic(pidPath, []byte(strconv.Itoa(pid)+"\n")); err != nil {
		return true, fmt.Errorf("ensure %s: %w", b, err)
	}
	return true, nil
}

// Probe implements Provisioner.
func (l *Local) Probe(ctx context.Context, b Broker) error {
	l.reap()
	dir := l.brokerDir(b)
	pid, err := readPid(filepath.Join(dir, "broker.pid"))
	if err != nil || !running(pid, dataDir(dir)) {
		return fmt.Errorf("broker %d is not running%s", b.NodeID, lastLine(filepath.Join(dir, "broker.log")))
	}
	if err := apiVersions(ctx, fmt.Sprintf("127.0.0.1:%d", b.Port)); err != nil {
		return fmt.Errorf("broker %d does not answer yet: %w", b.NodeID, err)
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
	var pids []int
	for d, ps := range procs {
		if strings.HasPrefix(d, prefix) {
			pids = append(pids, ps...)
		}
	}
	return l.stop(ctx, pids)
}

// stop sends SIGTERM to pids, waits up to StopTimeout for them to exit, and
// then sends SIGKILL to the rest.
func (l *Local) stop(ctx context.Context, pids []int) error {
	for _, pid := range pids {
		l.cfg.Log.Info("stopping broker process", "pid", pid)
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
				l.cfg.Log.Warn("broker did not stop in time; killing it", "pid", pid)
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
	var orphans []int
	for d, ps := range procs {
		rel, err := filepath.Rel(l.root, d)
		if err != nil {
			continue
		}
		if id, _, _ := strings.Cut(rel, string(filepath.Separator)); !keep[id] {
			orphans = append(orphans, ps...)
		}
	}
	if len(orphans) > 0 {
		l.cfg.Log.Warn("stopping orphaned broker processes", "pids", orphans)
		if err := l.stop(ctx, orphans); err != nil {
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

func portFree(port int) error {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
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
	return writeFileAtomic(path, content)
}

func writeFileAtomic(path string, content []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
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

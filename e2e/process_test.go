package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Timeouts for processes. They bound how long a broken build can hang a test;
// they are not performance thresholds and are deliberately generous.
const (
	startTimeout = 90 * time.Second
	stopTimeout  = 60 * time.Second
)

// proc is a fjord process started by a test. Its stdout and stderr go to
// files, so that any descendant inheriting them cannot block Wait.
type proc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	outLog string
	errLog string
	done   chan struct{} // closed once the process has exited and been reaped
	err    error         // cmd.Wait's result, valid after done
}

// startProc starts fjordBin with args in its own process group. The process is
// killed (with its whole group) in t.Cleanup if it is still running then.
func startProc(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{
		t:      t,
		name:   name,
		outLog: filepath.Join(dir, name+".stdout"),
		errLog: filepath.Join(dir, name+".stderr"),
		done:   make(chan struct{}),
	}
	stdout, err := os.Create(p.outLog)
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(p.errLog)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	p.cmd = exec.Command(fjordBin, args...)
	p.cmd.Stdout = stdout
	p.cmd.Stderr = stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start fjord %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("started %s (pid %d): fjord %s", name, p.cmd.Process.Pid, strings.Join(args, " "))
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

// pid returns the process's PID.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stderr returns what the process wrote to stderr so far, cut to its last 8 KiB.
func (p *proc) stderr() string {
	b, _ := os.ReadFile(p.errLog)
	if len(b) > 8<<10 {
		b = append([]byte("...\n"), b[len(b)-8<<10:]...)
	}
	return string(b)
}

// waitLine waits for a stdout line starting with prefix and returns the rest
// of that line. It fails the test, showing stderr, if the process exits or
// startTimeout passes first.
func (p *proc) waitLine(prefix string) string {
	p.t.Helper()
	line, ok := p.awaitLine(prefix)
	if !ok {
		p.t.Fatalf("%s exited (%v) before printing %q\nstderr:\n%s", p.name, p.err, prefix, p.stderr())
	}
	return line
}

// awaitLine is waitLine that reports false instead of failing if the
// process exits first.
func (p *proc) awaitLine(prefix string) (string, bool) {
	p.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		if b, err := os.ReadFile(p.outLog); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
					return rest, true
				}
			}
		}
		if p.exited() {
			return "", false
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s printed no %q line within %v\nstderr:\n%s", p.name, prefix, startTimeout, p.stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lostPortRace reports whether the process exited because another process
// took its port between freePort and its listen.
func (p *proc) lostPortRace() bool {
	return p.exited() && strings.Contains(p.stderr(), "address already in use")
}

// portAttempts is how often a test picks a new free port when it loses the
// race for one to a process outside the test.
const portAttempts = 3

// stdout returns everything the process wrote to stdout so far.
func (p *proc) stdout() string {
	b, _ := os.ReadFile(p.outLog)
	return string(b)
}

// signal sends sig to the process (not to its group) and waits for it to
// exit. It returns the exit code, or -1 if a signal ended the process. If the
// process outlives stopTimeout, it fails the test.
func (p *proc) signal(sig syscall.Signal) int {
	p.t.Helper()
	if !p.exited() {
		if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.t.Fatalf("signal %s: %v", p.name, err)
		}
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.t.Fatalf("%s did not exit within %v of %v\nstderr:\n%s", p.name, stopTimeout, sig, p.stderr())
	}
	return p.cmd.ProcessState.ExitCode()
}

// kill kills the process and its process group with SIGKILL and reaps it.
// It is idempotent and is registered with t.Cleanup by startProc.
func (p *proc) kill() {
	pid := p.pid()
	// The group outlives its leader only if a descendant stays in it.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	if !p.exited() {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			p.t.Errorf("%s (pid %d) still running after SIGKILL", p.name, pid)
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 such that it and the n-1 ports
// above it are free right now. It picks from below the kernel's ephemeral
// range: a port an outgoing connection used lingers in TIME_WAIT, where a
// listener cannot bind it, and a busy suite leaves many of those. It also
// stays above the control plane's default broker ports (21092-21999).
func freePort(t testing.TB, n int) int {
	t.Helper()
	const low = 23000
	high := ephemeralLow() - n
	var last error
	for range 1000 {
		port := low + rand.IntN(high-low)
		ok := true
		for i := range n {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+i))
			if err != nil {
				ok, last = false, err
				break
			}
			l.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatalf("no %d consecutive free ports on 127.0.0.1: %v", n, last)
	return 0
}

// ephemeralLow returns the lowest port the kernel hands out to outgoing
// connections (net.ipv4.ip_local_port_range), or Linux's default.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if low, err := strconv.Atoi(f[0]); err == nil && low > 25000 {
				return low
			}
		}
	}
	return 32768
}

// devOptions configures startDev. Zero values pick defaults: one broker, a
// free port, a fresh data directory, no --config.
type devOptions struct {
	Brokers int
	Port    int
	DataDir string
	Props   map[string]string // written to a server.properties passed with --config
}

// devCluster is a running `fjord dev` supervisor.
//
// Its layout is `fjord dev`'s (see `fjord dev -h`): broker i listens on
// Port+i with its directory DataDir/broker-<i>; with more than one broker,
// quorum member j serves clients on Port+Brokers+2j and peers on the port
// after, with its directory DataDir/quorum-<j>. A process's directory holds
// its PID file while it runs, and a file named "hold" there keeps it down.
type devCluster struct {
	*proc
	// Bootstrap is broker 0's host:port: the seed the Go helpers take (they
	// take one address). The "bootstrap:" line lists every broker, as Addrs.
	Bootstrap string
	Addrs     []string // every broker's host:port, by node id
	Port      int
	DataDir   string
	Brokers   int
	Members   int // quorum members: 0 for one broker, 1 for two, 3 for more
}

// quorumSize returns the number of quorum members `fjord dev` runs for a
// cluster of n brokers.
func quorumSize(n int) int {
	switch {
	case n <= 1:
		return 0
	case n == 2:
		return 1
	default:
		return 3
	}
}

// startDev runs `fjord dev` and waits for its "bootstrap:" line. In t.Cleanup
// it kills the supervisor and every broker and quorum member whose PID is in
// the data directory.
//
// A cluster of more than one broker needs replication in the broker; until
// `fjord broker` takes --metadata-endpoints, such tests are skipped.
func startDev(t testing.TB, opts devOptions) *devCluster {
	t.Helper()
	if opts.Brokers == 0 {
		opts.Brokers = 1
	}
	if opts.Brokers > 1 {
		requireReplication(t)
	}
	autoPort := opts.Port == 0
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	members := quorumSize(opts.Brokers)
	var config []string
	if len(opts.Props) > 0 {
		config = []string{"--config", writeProps(t, opts.Props)}
	}
	for attempt := 1; ; attempt++ {
		if autoPort {
			opts.Port = freePort(t, opts.Brokers+2*members)
		}
		d := &devCluster{Port: opts.Port, DataDir: opts.DataDir, Brokers: opts.Brokers, Members: members}
		for i := range opts.Brokers {
			d.Addrs = append(d.Addrs, fmt.Sprintf("127.0.0.1:%d", opts.Port+i))
		}
		d.Bootstrap = d.Addrs[0]
		// Registered before startProc's cleanup, so it runs after the
		// supervisor is dead and cannot restart what this kills.
		t.Cleanup(func() { d.killBrokers() })
		d.proc = startProc(t, "fjord-dev", append([]string{
			"dev",
			"--brokers", strconv.Itoa(opts.Brokers),
			"--port", strconv.Itoa(opts.Port),
			"--data-dir", opts.DataDir,
		}, config...)...)
		line, ok := d.awaitLine("bootstrap: ")
		if !ok && autoPort && attempt < portAttempts && d.lostPortRace() {
			continue
		}
		if !ok {
			t.Fatalf("fjord dev exited (%v) before printing its bootstrap line\nstderr:\n%s", d.err, d.stderr())
		}
		if got, want := strings.TrimSpace(line), d.bootstrapServers(); got != want {
			t.Errorf("fjord dev printed bootstrap %q, want %q", got, want)
		}
		return d
	}
}

// requireReplication skips the test unless `fjord broker` takes
// --metadata-endpoints, which multi-broker `fjord dev` clusters pass it, so
// that such tests start running by themselves once replication lands.
func requireReplication(t testing.TB) {
	t.Helper()
	err := probe("broker:--metadata-endpoints", func() error {
		out, _ := exec.Command(fjordBin, "broker", "-h").CombinedOutput()
		if !bytes.Contains(out, []byte("-metadata-endpoints")) {
			return errors.New("fjord broker has no --metadata-endpoints flag yet: multi-broker clusters need replication (issue 4)")
		}
		return nil
	})
	if err != nil {
		t.Skip(err)
	}
}

// bootstrapServers returns every broker's address, comma separated, as the
// "bootstrap:" line has them and librdkafka's bootstrap.servers takes them.
func (d *devCluster) bootstrapServers() string { return strings.Join(d.Addrs, ",") }

// brokerDir returns broker id's directory.
func (d *devCluster) brokerDir(id int) string {
	return filepath.Join(d.DataDir, fmt.Sprintf("broker-%d", id))
}

// quorumDir returns quorum member j's directory.
func (d *devCluster) quorumDir(j int) string {
	return filepath.Join(d.DataDir, fmt.Sprintf("quorum-%d", j))
}

// brokerPIDFile returns the path of broker id's PID file.
func (d *devCluster) brokerPIDFile(id int) string {
	return filepath.Join(d.brokerDir(id), "broker.pid")
}

// quorumPIDFile returns the path of quorum member j's PID file.
func (d *devCluster) quorumPIDFile(j int) string {
	return filepath.Join(d.quorumDir(j), "quorum.pid")
}

// brokerPID returns the PID that broker id's PID file holds, or 0 if the
// file is missing or unreadable.
func (d *devCluster) brokerPID(id int) int { return readPID(d.brokerPIDFile(id)) }

// quorumPID returns the PID that quorum member j's PID file holds, or 0.
func (d *devCluster) quorumPID(j int) int { return readPID(d.quorumPIDFile(j)) }

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// hold creates the hold file in dir (a broker's or quorum member's
// directory): `fjord dev` stops that process if it runs and does not start
// it again until release.
func hold(t testing.TB, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "hold"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// release removes the hold file in dir: `fjord dev` starts the process again.
func release(t testing.TB, dir string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, "hold")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

// killBrokers SIGKILLs every live fjord process whose PID is in a broker.pid
// or quorum.pid file of the data directory.
func (d *devCluster) killBrokers() {
	for id := range d.Brokers {
		if pid := d.brokerPID(id); pid > 0 && isFjordProcess(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for j := range d.Members {
		if pid := d.quorumPID(j); pid > 0 && isFjordProcess(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// isFjordProcess reports whether pid is a live (not zombie) process running
// the binary under test, so that a recycled PID is never killed.
func isFjordProcess(pid int) bool {
	if !alive(pid) {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	return exe == fjordBin || strings.TrimSuffix(exe, " (deleted)") == fjordBin
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z'
}

// descendants returns the PIDs of the live descendants of pid.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) < 2 || fields[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	sort.Ints(out)
	return slices.Compact(out)
}

// brokerOptions configures startBroker.
type brokerOptions struct {
	NodeID  int
	Port    int               // 0 picks a free port
	DataDir string            // "" makes a fresh one
	Props   map[string]string // written to a server.properties passed with --config
}

// brokerProc is a running `fjord broker`.
type brokerProc struct {
	*proc
	Addr string
	opts brokerOptions
}

// startBroker runs `fjord broker` on 127.0.0.1 and waits until it answers
// ApiVersions.
func startBroker(t testing.TB, opts brokerOptions) *brokerProc {
	t.Helper()
	return startBrokerAttempt(t, opts, 1)
}

func startBrokerAttempt(t testing.TB, opts brokerOptions, attempt int) *brokerProc {
	t.Helper()
	autoPort := opts.Port == 0
	if autoPort {
		opts.Port = freePort(t, 1)
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	addr := fmt.Sprintf("127.0.0.1:%d", opts.Port)
	args := []string{"broker",
		"--node-id", strconv.Itoa(opts.NodeID),
		"--listen", addr,
		"--advertised", addr,
		"--data-dir", opts.DataDir,
	}
	if len(opts.Props) > 0 {
		var b strings.Builder
		keys := make([]string, 0, len(opts.Props))
		for k := range opts.Props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%s\n", k, opts.Props[k])
		}
		path := filepath.Join(t.TempDir(), "server.properties")
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	b := &brokerProc{proc: startProc(t, fmt.Sprintf("fjord-broker-%d", opts.NodeID), args...), Addr: addr, opts: opts}
	if !awaitKafka(t, b.proc, addr) {
		if autoPort && attempt < portAttempts && b.lostPortRace() {
			opts.Port = 0
			return startBrokerAttempt(t, opts, attempt+1)
		}
		t.Fatalf("%s exited (%v) before %s answered\nstderr:\n%s", b.name, b.err, addr, b.stderr())
	}
	return b
}

// restart starts the broker again with the same options, data directory and
// port; the old process must have exited.
func (b *brokerProc) restart(t testing.TB) *brokerProc {
	t.Helper()
	if !b.exited() {
		t.Fatalf("restart of %s while it still runs", b.name)
	}
	return startBroker(t, b.opts)
}

// waitKafka waits until addr answers an ApiVersions request, failing with
// p's stderr if p exits or startTimeout passes first.
func waitKafka(t testing.TB, p *proc, addr string) {
	t.Helper()
	if !awaitKafka(t, p, addr) {
		t.Fatalf("%s exited (%v) before %s answered\nstderr:\n%s", p.name, p.err, addr, p.stderr())
	}
}

// awaitKafka is waitKafka that reports false instead of failing if p exits
// first.
func awaitKafka(t testing.TB, p *proc, addr string) bool {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := probeApiVersions(ctx, addr)
		cancel()
		if err == nil {
			return true
		}
		if p.exited() {
			return false
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answered no ApiVersions within %v: %v\nstderr:\n%s", addr, startTimeout, err, p.stderr())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

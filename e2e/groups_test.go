package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The acceptance tests of issue 3 for consumer groups: real clients
// (confluent-kafka-python, kafka-python, franz-go) in real groups against
// `fjord dev` and `fjord broker` processes.
//
// Every consumer commits synchronously after each record (the Python ones)
// or each poll (franz-go, with BlockRebalanceOnPoll), before it can take part
// in a rebalance. A record is therefore never processed while another member
// owns its partition, and the tests require every record to be read exactly
// once across all members and all rebalances, not merely at least once.

// groupPartitions is the partition count of the group tests' topics.
const groupPartitions = 4

// fastGroupProps makes an empty group's first rebalance start at once
// instead of after Kafka's default 3 s group.initial.rebalance.delay.ms.
var fastGroupProps = map[string]string{"group.initial.rebalance.delay.ms": "0"}

// writeProps writes a server.properties file and returns its path.
func writeProps(t testing.TB, props map[string]string) string {
	t.Helper()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(props)) {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	path := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startGroupDev runs `fjord dev` with one broker on dataDir ("" for a fresh
// one). With props it passes them as server.properties (--config); with nil
// props it runs with Kafka's defaults, exactly as startDev does.
func startGroupDev(t testing.TB, dataDir string, props map[string]string) *devCluster {
	t.Helper()
	if props == nil {
		return startDev(t, devOptions{DataDir: dataDir})
	}
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	config := writeProps(t, props)
	for attempt := 1; ; attempt++ {
		port := freePort(t, 1)
		d := &devCluster{Port: port, DataDir: dataDir, Brokers: 1}
		// Registered before startProc's cleanup, so it runs after the
		// supervisor is dead and cannot restart what this kills.
		t.Cleanup(d.killBrokers)
		d.proc = startProc(t, "fjord-dev", "dev",
			"--brokers", "1",
			"--port", strconv.Itoa(port),
			"--data-dir", dataDir,
			"--config", config,
		)
		line, ok := d.awaitLine("bootstrap: ")
		if !ok && attempt < portAttempts && d.lostPortRace() {
			continue
		}
		if !ok {
			t.Fatalf("fjord dev exited (%v) before printing its bootstrap line\nstderr:\n%s", d.err, d.stderr())
		}
		d.Bootstrap = strings.TrimSpace(line)
		return d
	}
}

// groupEvent is one line of a group consumer's output (see
// testdata/clients/group_events.py); the franz-go member makes the same.
type groupEvent struct {
	Event      string  `json:"event"`
	Partitions []int32 `json:"partitions"`
	Partition  int32   `json:"partition"`
	Offset     int64   `json:"offset"`
	Value      string  `json:"value"`
	Error      string  `json:"error"`
}

// consumed is a record as a member processed it.
type consumed struct {
	Member    string
	Partition int32
	Offset    int64
	Seq       int
}

// groupMember is one consumer of a group, a Python process or an in-process
// franz-go client, seen through its events.
type groupMember struct {
	name string
	send func(cmd string) // delivers a command (pause, resume, close)
	term func()           // asks it to close by SIGTERM (processes) or "close"
	kill func()           // ends it at once, without closing
	done chan struct{}    // closed when it has ended
	diag func() string    // stderr or similar, for failure messages

	mu         sync.Mutex
	events     []groupEvent
	owned      map[int32]bool
	records    []consumed
	commitErrs []string
	badLines   []string
	paused     bool
	closed     bool  // the "closed" event arrived
	exitErr    error // valid once done is closed
	stopping   bool  // the test asked it to end
}

func newGroupMember(name string) *groupMember {
	return &groupMember{name: name, owned: map[int32]bool{}, done: make(chan struct{})}
}

// handle applies one event.
func (m *groupMember) handle(ev groupEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, ev)
	switch ev.Event {
	case "assigned":
		for _, p := range ev.Partitions {
			m.owned[p] = true
		}
	case "revoked", "lost":
		for _, p := range ev.Partitions {
			delete(m.owned, p)
		}
	case "record":
		seq, err := strconv.Atoi(ev.Value)
		if err != nil {
			m.badLines = append(m.badLines, fmt.Sprintf("record value %q is no sequence number", ev.Value))
			return
		}
		m.records = append(m.records, consumed{m.name, ev.Partition, ev.Offset, seq})
	case "commit_error":
		m.commitErrs = append(m.commitErrs, fmt.Sprintf("partition %d offset %d: %s", ev.Partition, ev.Offset, ev.Error))
	case "paused":
		m.paused = true
	case "resumed":
		m.paused = false
	case "closed":
		m.closed = true
	}
}

// assignment returns the partitions the member owns now, sorted.
func (m *groupMember) assignment() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.owned))
}

// consumedRecords returns a copy of what the member has processed.
func (m *groupMember) consumedRecords() []consumed {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.records)
}

// eventsSince returns the member's events from index i on, and the index
// after the last.
func (m *groupMember) eventsSince(i int) ([]groupEvent, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events[min(i, len(m.events)):]), len(m.events)
}

// exitedEarly reports whether the member ended without being asked to.
func (m *groupMember) exitedEarly() bool {
	select {
	case <-m.done:
		m.mu.Lock()
		defer m.mu.Unlock()
		return !m.stopping
	default:
		return false
	}
}

// summary describes the member's state for failure messages.
func (m *groupMember) summary() string {
	m.mu.Lock()
	var rebalances []string
	for _, ev := range m.events {
		switch ev.Event {
		case "assigned", "revoked", "lost", "paused", "resumed", "closed", "fatal":
			rebalances = append(rebalances, fmt.Sprintf("%s%v%s", ev.Event, ev.Partitions, ev.Error))
		}
	}
	s := fmt.Sprintf("%s: owns %v, %d records processed, %d commit errors, events %v",
		m.name, slices.Sorted(maps.Keys(m.owned)), len(m.records), len(m.commitErrs), rebalances)
	m.mu.Unlock()
	select {
	case <-m.done:
		s += fmt.Sprintf(", ended (%v)", m.exitErr)
	default:
	}
	if d := m.diag(); d != "" {
		s += "\n  diagnostics:\n" + d
	}
	return s
}

// pause stops the member's polling and waits until it confirms.
func (m *groupMember) pause(t testing.TB) {
	t.Helper()
	m.send("pause")
	waitMembers(t, m.name+" to pause", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.paused
	}, m)
}

// resume makes the member poll again.
func (m *groupMember) resume() { m.send("resume") }

// stop asks the member to close cleanly (by SIGTERM when sigterm is set,
// else by the close command) and waits until it has, failing the test if it
// ends any other way.
func (m *groupMember) stop(t testing.TB, sigterm bool) {
	t.Helper()
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	if sigterm {
		m.term()
	} else {
		m.send("close")
	}
	select {
	case <-m.done:
	case <-time.After(stopTimeout):
		t.Fatalf("%s did not close within %v\n%s", m.name, stopTimeout, m.summary())
	}
	m.mu.Lock()
	closed, err := m.closed, m.exitErr
	m.mu.Unlock()
	if !closed || err != nil {
		t.Fatalf("%s did not close cleanly (exit: %v)\n%s", m.name, err, m.summary())
	}
}

// waitMembers polls cond until it holds, failing with the members' state
// after waitTimeout or as soon as one of them ends without being asked to.
func waitMembers(t testing.TB, what string, cond func() bool, members ...*groupMember) {
	t.Helper()
	waitMembersWithin(t, waitTimeout, what, cond, members...)
}

// waitMembersWithin is waitMembers with another bound than waitTimeout.
func waitMembersWithin(t testing.TB, bound time.Duration, what string, cond func() bool, members ...*groupMember) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		var early []string
		for _, m := range members {
			if m.exitedEarly() {
				early = append(early, m.name)
			}
		}
		if len(early) > 0 || time.Now().After(deadline) {
			var b strings.Builder
			if len(early) > 0 {
				fmt.Fprintf(&b, "%v ended unexpectedly while waiting for %s", early, what)
			} else {
				fmt.Fprintf(&b, "gave up waiting for %s after %v", what, bound)
			}
			for _, m := range members {
				b.WriteString("\n")
				b.WriteString(m.summary())
			}
			t.Fatal(b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// memberStarter starts a consumer of group on topic named name (its client
// id, which DescribeGroups reports).
type memberStarter func(t testing.TB, bootstrap, topic, group, name string) *groupMember

// pythonMember returns a memberStarter that runs a Python group consumer
// script with extra arguments.
func pythonMember(scriptName string, extra ...string) memberStarter {
	return func(t testing.TB, bootstrap, topic, group, name string) *groupMember {
		t.Helper()
		module := map[string]string{
			"group_consumer_confluent.py":    "confluent_kafka",
			"group_consumer_kafka_python.py": "kafka",
		}[scriptName]
		requirePython(t, module)
		return startPythonMember(t, scriptName, name, append([]string{
			"--bootstrap", bootstrap, "--topic", topic, "--group", group, "--client-id", name,
		}, extra...)...)
	}
}

// startPythonMember runs a group consumer script. It is killed by PID in
// t.Cleanup if it still runs then.
func startPythonMember(t testing.TB, scriptName, name string, args ...string) *groupMember {
	t.Helper()
	m := newGroupMember(name)
	errLog := filepath.Join(t.TempDir(), name+".stderr")
	stderr, err := os.Create(errLog)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd := exec.Command(pythonBin(), append([]string{script(scriptName)}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Logf("started %s (pid %d): %s %s", name, pid, scriptName, shortArgs(args))
	var stdinMu sync.Mutex
	m.send = func(c string) {
		stdinMu.Lock()
		defer stdinMu.Unlock()
		_, _ = fmt.Fprintln(stdin, c)
	}
	m.term = func() { _ = syscall.Kill(pid, syscall.SIGTERM) }
	m.kill = func() { _ = syscall.Kill(pid, syscall.SIGKILL) }
	m.diag = func() string {
		b, _ := os.ReadFile(errLog)
		return tail(b)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var ev groupEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				m.mu.Lock()
				m.badLines = append(m.badLines, sc.Text())
				m.mu.Unlock()
				continue
			}
			m.handle(ev)
		}
		err := cmd.Wait()
		m.mu.Lock()
		m.exitErr = err
		m.mu.Unlock()
		close(m.done)
	}()
	t.Cleanup(func() {
		select {
		case <-m.done:
			return
		default:
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
		select {
		case <-m.done:
		case <-time.After(stopTimeout):
			t.Errorf("%s (pid %d) still running after SIGKILL", name, pid)
		}
	})
	return m
}

// kgoMember returns a memberStarter for an in-process franz-go consumer with
// the cooperative-sticky balancer (incremental cooperative rebalancing).
func kgoMember(opts ...kgo.Opt) memberStarter {
	return func(t testing.TB, bootstrap, topic, group, name string) *groupMember {
		t.Helper()
		return startKgoMember(t, bootstrap, topic, group, name, opts...)
	}
}

// startKgoMember runs a franz-go group consumer in a goroutine. It polls with
// BlockRebalanceOnPoll, commits each poll's records synchronously, then
// allows rebalancing, and reports the same events as the Python scripts.
func startKgoMember(t testing.TB, bootstrap, topic, group, name string, opts ...kgo.Opt) *groupMember {
	t.Helper()
	m := newGroupMember(name)
	partitionsEvent := func(event string) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			if len(ps[topic]) > 0 {
				m.handle(groupEvent{Event: event, Partitions: slices.Sorted(slices.Values(ps[topic]))})
			}
		}
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(bootstrap),
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(partitionsEvent("assigned")),
		kgo.OnPartitionsRevoked(partitionsEvent("revoked")),
		kgo.OnPartitionsLost(partitionsEvent("lost")),
		// franz-go adds newly assigned partitions to its fetches only once
		// the fetch in flight returns; the default 5 s long poll would make
		// every takeover wait that long (kfake behaves the same).
		kgo.FetchMaxWait(500 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	cmds := make(chan string, 16)
	var logMu sync.Mutex
	var logs []string
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		logs = append(logs, fmt.Sprintf(format, args...))
		if len(logs) > 20 {
			logs = logs[len(logs)-20:]
		}
	}
	m.send = func(c string) { cmds <- c }
	m.term = func() { cmds <- "close" }
	killed := make(chan struct{})
	var killOnce sync.Once
	m.kill = func() { killOnce.Do(func() { close(killed) }) }
	m.diag = func() string {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Join(logs, "\n")
	}
	go func() {
		defer close(m.done)
		paused := false
		for {
			select {
			case <-killed:
				// No leave: as if the process had died. Close would leave
				// the group, so only the connections are dropped.
				cl.AllowRebalance()
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_ = cl.LeaveGroupContext(ctx)
				cl.Close()
				m.mu.Lock()
				m.exitErr = errors.New("killed")
				m.mu.Unlock()
				return
			case c := <-cmds:
				switch c {
				case "pause":
					paused = true
					m.handle(groupEvent{Event: "paused"})
				case "resume":
					paused = false
					m.handle(groupEvent{Event: "resumed"})
				case "close":
					cl.CloseAllowingRebalance()
					m.handle(groupEvent{Event: "closed"})
					return
				}
				continue
			default:
			}
			if paused {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fs := cl.PollFetches(ctx)
			cancel()
			fs.EachError(func(topic string, p int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					logf("fetch %s/%d: %v", topic, p, err)
				}
			})
			var recs []*kgo.Record
			fs.EachRecord(func(r *kgo.Record) {
				m.handle(groupEvent{Event: "record", Partition: r.Partition, Offset: r.Offset, Value: string(r.Value)})
				recs = append(recs, r)
			})
			if len(recs) > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err := cl.CommitRecords(ctx, recs...)
				cancel()
				if err != nil {
					last := recs[len(recs)-1]
					m.handle(groupEvent{Event: "commit_error", Partition: last.Partition, Offset: last.Offset, Error: err.Error()})
				}
			}
			cl.AllowRebalance()
		}
	}()
	t.Cleanup(func() {
		m.kill()
		<-m.done
	})
	return m
}

// produceSeq produces records from..to-1 with kcat: record seq has the value
// strconv.Itoa(seq) and goes to partition seq%groupPartitions.
func produceSeq(t testing.TB, bootstrap, topic string, from, to int) {
	t.Helper()
	recs := make([]record, 0, to-from)
	for seq := from; seq < to; seq++ {
		recs = append(recs, record{
			Partition: int32(seq % groupPartitions),
			Key:       []byte("k" + strconv.Itoa(seq)),
			Value:     []byte(strconv.Itoa(seq)),
		})
	}
	produceKcat(t, bootstrap, topic, "none", recs)
}

// allConsumed returns every record the members processed.
func allConsumed(members ...*groupMember) []consumed {
	var out []consumed
	for _, m := range members {
		out = append(out, m.consumedRecords()...)
	}
	return out
}

// seenAll reports whether the members together processed every sequence
// number in [from, to).
func seenAll(from, to int, members ...*groupMember) func() bool {
	return func() bool {
		seen := map[int]bool{}
		for _, r := range allConsumed(members...) {
			if r.Seq >= from && r.Seq < to {
				seen[r.Seq] = true
			}
		}
		return len(seen) == to-from
	}
}

// checkExactlyOnce checks that the members together processed each of the
// records 0..total-1 exactly once, each at the right partition, that each
// partition's offsets were processed exactly once from 0 up, and that no
// commit failed.
func checkExactlyOnce(t testing.TB, total int, members ...*groupMember) {
	t.Helper()
	bySeq := map[int][]consumed{}
	byOffset := map[int32]map[int64]int{}
	for _, r := range allConsumed(members...) {
		bySeq[r.Seq] = append(bySeq[r.Seq], r)
		if int(r.Partition) != r.Seq%groupPartitions {
			t.Errorf("%s read record %d from partition %d, where it was not produced", r.Member, r.Seq, r.Partition)
		}
		if byOffset[r.Partition] == nil {
			byOffset[r.Partition] = map[int64]int{}
		}
		byOffset[r.Partition][r.Offset]++
	}
	var dups, gaps []string
	for seq := range total {
		switch rs := bySeq[seq]; {
		case len(rs) == 0:
			gaps = append(gaps, strconv.Itoa(seq))
		case len(rs) > 1:
			var by []string
			for _, r := range rs {
				by = append(by, fmt.Sprintf("%s@%d/%d", r.Member, r.Partition, r.Offset))
			}
			dups = append(dups, fmt.Sprintf("%d (%s)", seq, strings.Join(by, ", ")))
		}
	}
	for seq := range bySeq {
		if seq < 0 || seq >= total {
			t.Errorf("record %d processed, but only 0..%d were produced", seq, total-1)
		}
	}
	if len(dups) > 0 {
		t.Errorf("%d records processed more than once, e.g. %v", len(dups), dups[:min(len(dups), 10)])
	}
	if len(gaps) > 0 {
		t.Errorf("%d records never processed, e.g. %v", len(gaps), gaps[:min(len(gaps), 10)])
	}
	for p, offs := range byOffset {
		for o := range int64(len(offs)) {
			if offs[o] != 1 {
				t.Errorf("partition %d: offset %d processed %d times, want once (offsets 0..%d)", p, o, offs[o], len(offs)-1)
				break
			}
		}
	}
	for _, m := range members {
		m.mu.Lock()
		if len(m.commitErrs) > 0 {
			t.Errorf("%s: %d synchronous commits failed, e.g. %v", m.name, len(m.commitErrs), m.commitErrs[:min(len(m.commitErrs), 5)])
		}
		if len(m.badLines) > 0 {
			t.Errorf("%s: unexpected output %q", m.name, m.badLines[:min(len(m.badLines), 5)])
		}
		m.mu.Unlock()
	}
}

// checkOwners checks that every record of [from, to) was processed by the
// member owning its partition in owners (for a phase without rebalances).
func checkOwners(t testing.TB, phase string, from, to int, owners map[int32]string, members ...*groupMember) {
	t.Helper()
	wrong := 0
	for _, r := range allConsumed(members...) {
		if r.Seq < from || r.Seq >= to || owners[r.Partition] == r.Member {
			continue
		}
		if wrong < 5 {
			t.Errorf("%s: record %d of partition %d processed by %s, but %s owns the partition", phase, r.Seq, r.Partition, r.Member, owners[r.Partition])
		}
		wrong++
	}
}

// describeGroup returns the group as DescribeGroups reports it.
func describeGroup(t testing.TB, adm *kadm.Client, group string) kadm.DescribedGroup {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dgs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("describe group %s: %v", group, err)
	}
	dg := dgs[group]
	if dg.Err != nil {
		t.Fatalf("describe group %s: %v", group, dg.Err)
	}
	return dg
}

// describedAssignments returns each member's partitions of topic by client
// id, as DescribeGroups reports them.
func describedAssignments(t testing.TB, dg kadm.DescribedGroup, topic string) map[string][]int32 {
	t.Helper()
	out := map[string][]int32{}
	for _, m := range dg.Members {
		var ps []int32
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range ca.Topics {
				if tp.Topic == topic {
					ps = append(ps, tp.Partitions...)
				}
			}
		}
		slices.Sort(ps)
		out[m.ClientID] = ps
	}
	return out
}

// waitSplit waits until the members own disjoint, non-empty sets of
// partitions covering the topic, and DescribeGroups reports the group
// Stable with exactly these members holding exactly these assignments. It
// returns each partition's owner.
func waitSplit(t testing.TB, adm *kadm.Client, group, topic string, members ...*groupMember) map[int32]string {
	t.Helper()
	var owners map[int32]string
	waitMembers(t, fmt.Sprintf("group %s to split %s among %d members", group, topic, len(members)), func() bool {
		owners = map[int32]string{}
		want := map[string][]int32{}
		for _, m := range members {
			a := m.assignment()
			if len(a) == 0 {
				return false
			}
			for _, p := range a {
				if _, ok := owners[p]; ok {
					return false
				}
				owners[p] = m.name
			}
			want[m.name] = a
		}
		if len(owners) != groupPartitions {
			return false
		}
		dg := describeGroup(t, adm, group)
		if dg.State != "Stable" {
			return false
		}
		got := describedAssignments(t, dg, topic)
		if len(got) != len(want) {
			return false
		}
		for name, ps := range want {
			if !slices.Equal(got[name], ps) {
				return false
			}
		}
		return true
	}, members...)
	return owners
}

// committedOffsets returns the group's committed offsets of topic by
// partition (absent: no commit).
func committedOffsets(t testing.TB, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("fetch offsets of group %s: %v", group, err)
	}
	out := map[int32]int64{}
	for p, o := range resp[topic] {
		if o.At >= 0 {
			out[p] = o.At
		}
	}
	return out
}

// endOffsets returns the end offset of each partition of topic.
func endOffsets(t testing.TB, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// checkCommittedAtEnd checks that the group has committed the end offset of
// every partition of topic: everything consumed, nothing left behind.
func checkCommittedAtEnd(t testing.TB, adm *kadm.Client, group, topic string) {
	t.Helper()
	committed, ends := committedOffsets(t, adm, group, topic), endOffsets(t, adm, topic)
	if !maps.Equal(committed, ends) {
		t.Errorf("group %s committed offsets %v, want the end offsets %v", group, committed, ends)
	}
}

// firstOffsets returns the lowest offset of each partition among records
// with sequence numbers in [from, to).
func firstOffsets(recs []consumed, from, to int) map[int32]int64 {
	out := map[int32]int64{}
	for _, r := range recs {
		if r.Seq < from || r.Seq >= to {
			continue
		}
		if o, ok := out[r.Partition]; !ok || r.Offset < o {
			out[r.Partition] = r.Offset
		}
	}
	return out
}

// groupScenario is acceptance criteria 1 and 2: members of one group split a
// 4-partition topic, one leaves and another takes over from its commits, a
// third joins, and every record is processed exactly once throughout.
//
//	A: c1 and c2 split the partitions; perPhase records are produced and
//	   each is processed once, by the owner of its partition.
//	B: c1 stops polling; perPhase more records are produced, c2 processes
//	   its share; c1 closes (SIGTERM → close(), which leaves the group) with
//	   its share unread. c2 takes over c1's partitions and must resume
//	   exactly at c1's committed offsets.
//	C: c2 stops polling, perPhase records are produced, c3 starts: c3's
//	   join rebalances the group while c2 has a backlog. A cooperative c2
//	   rebalances without polling, so c3 gets its partitions first and must
//	   start them at c2's commits; an eager c2 gives up partitions only in
//	   poll, so it resumes once the rebalance has begun, and processes or
//	   hands over the backlog.
//	D: the group is stable again; perPhase more records, each processed once
//	   by its partition's owner.
//
// With cooperative set, the members must rebalance incrementally: c2 never
// gives up a partition it keeps.
func groupScenario(t *testing.T, bootstrap string, start memberStarter, cooperative bool) {
	const (
		topic    = "orders"
		group    = "orders-app"
		perPhase = 800
	)
	adm := newAdmin(t, bootstrap)
	createTopic(t, adm, topic, groupPartitions, nil)
	begin := time.Now()
	phaseDone := func(name string) {
		t.Logf("phase %s done after %v", name, time.Since(begin).Round(time.Millisecond))
	}

	// A: two members split the partitions.
	c1 := start(t, bootstrap, topic, group, "c1")
	c2 := start(t, bootstrap, topic, group, "c2")
	owners := waitSplit(t, adm, group, topic, c1, c2)
	t.Logf("A: c1 owns %v, c2 owns %v", c1.assignment(), c2.assignment())
	produceSeq(t, bootstrap, topic, 0, perPhase)
	waitMembers(t, "c1 and c2 to process records 0..799", seenAll(0, perPhase, c1, c2), c1, c2)
	checkOwners(t, "A", 0, perPhase, owners, c1, c2)
	checkExactlyOnce(t, perPhase, c1, c2)
	phaseDone("A")

	// B: c1 leaves with its share of the new records unread.
	c1Owned := c1.assignment()
	c2Owned := c2.assignment()
	c1.pause(t)
	atLeave := committedOffsets(t, adm, group, topic)
	_, c2Mark := c2.eventsSince(0)
	produceSeq(t, bootstrap, topic, perPhase, 2*perPhase)
	waitMembers(t, "c2 to process its share of records 800..1599", func() bool {
		n := 0
		for _, r := range c2.consumedRecords() {
			if r.Seq >= perPhase && slices.Contains(c2Owned, r.Partition) {
				n++
			}
		}
		return n == perPhase*len(c2Owned)/groupPartitions
	}, c1, c2)
	c1.stop(t, true)
	waitMembers(t, "c2 to take over every partition and process records 800..1599",
		func() bool { return len(c2.assignment()) == groupPartitions && seenAll(perPhase, 2*perPhase, c2)() }, c2)
	for _, r := range c1.consumedRecords() {
		if r.Seq >= perPhase {
			t.Errorf("c1 processed record %d while paused", r.Seq)
		}
	}
	first := firstOffsets(c2.consumedRecords(), perPhase, 2*perPhase)
	for _, p := range c1Owned {
		if first[p] != atLeave[p] {
			t.Errorf("c2 took over partition %d at offset %d, but c1 had committed %d", p, first[p], atLeave[p])
		}
	}
	if cooperative {
		evs, _ := c2.eventsSince(c2Mark)
		for _, ev := range evs {
			if ev.Event == "revoked" || ev.Event == "lost" {
				t.Errorf("B: c2 had partitions %v %s when c1 left; an incremental rebalance only adds to it", ev.Partitions, ev.Event)
			}
		}
	}
	checkExactlyOnce(t, 2*perPhase, c1, c2)
	checkCommittedAtEnd(t, adm, group, topic)
	phaseDone("B")

	// C: a third member joins while c2 has a backlog.
	c2.pause(t)
	_, c2Mark = c2.eventsSince(0)
	atJoin := committedOffsets(t, adm, group, topic)
	produceSeq(t, bootstrap, topic, 2*perPhase, 3*perPhase)
	c3 := start(t, bootstrap, topic, group, "c3")
	if cooperative {
		// c2 rebalances in the background while it does not poll: c3 gets
		// its partitions with their whole backlog.
		waitMembers(t, "c3 to get partitions while c2 does not poll", func() bool { return len(c3.assignment()) > 0 }, c2, c3)
	} else {
		// An eager member gives up its partitions only inside poll: the
		// group waits for c2, which then resumes with its backlog queued.
		waitMembers(t, "c3's join to start a rebalance", func() bool {
			return describeGroup(t, adm, group).State == "PreparingRebalance"
		}, c2, c3)
	}
	c2.resume()
	owners = waitSplit(t, adm, group, topic, c2, c3)
	waitMembers(t, "c2 and c3 to process records 1600..2399", seenAll(2*perPhase, 3*perPhase, c2, c3), c2, c3)
	t.Logf("C: c2 owns %v, c3 owns %v; c3 processed %d of the backlog", c2.assignment(), c3.assignment(), len(c3.consumedRecords()))
	if cooperative {
		for p, o := range firstOffsets(c3.consumedRecords(), 2*perPhase, 3*perPhase) {
			if o != atJoin[p] {
				t.Errorf("c3 took over partition %d at offset %d, but c2 had committed %d", p, o, atJoin[p])
			}
		}
		kept := c2.assignment()
		evs, _ := c2.eventsSince(c2Mark)
		for _, ev := range evs {
			if ev.Event != "revoked" && ev.Event != "lost" {
				continue
			}
			for _, p := range ev.Partitions {
				if slices.Contains(kept, p) {
					t.Errorf("C: c2 had partition %d %s though it kept it; an incremental rebalance revokes only what moves", p, ev.Event)
				}
			}
		}
	}
	checkExactlyOnce(t, 3*perPhase, c1, c2, c3)
	phaseDone("C")

	// D: stable again.
	produceSeq(t, bootstrap, topic, 3*perPhase, 4*perPhase)
	waitMembers(t, "c2 and c3 to process records 2400..3199", seenAll(3*perPhase, 4*perPhase, c2, c3), c2, c3)
	checkOwners(t, "D", 3*perPhase, 4*perPhase, owners, c2, c3)
	c2.stop(t, false)
	c3.stop(t, false)
	checkExactlyOnce(t, 4*perPhase, c1, c2, c3)
	checkCommittedAtEnd(t, adm, group, topic)
	if dg := describeGroup(t, adm, group); dg.State != "Empty" || len(dg.Members) != 0 {
		t.Errorf("after every member closed, group %s is %s with %d members, want Empty with none", group, dg.State, len(dg.Members))
	}
	phaseDone("D")
}

// TestGroupConfluentKafka is acceptance criterion 1 with
// confluent-kafka-python consumers. It runs `fjord dev` with Kafka's default
// group.initial.rebalance.delay.ms (3 s): c1 and c2 join within it and land
// in the group's first generation together.
func TestGroupConfluentKafka(t *testing.T) {
	requireKcat(t)
	d := startGroupDev(t, "", nil)
	groupScenario(t, d.Bootstrap, pythonMember("group_consumer_confluent.py"), false)
}

// TestGroupKafkaPython is acceptance criterion 2 with kafka-python's
// KafkaConsumer.
func TestGroupKafkaPython(t *testing.T) {
	requireKcat(t)
	d := startGroupDev(t, "", fastGroupProps)
	groupScenario(t, d.Bootstrap, pythonMember("group_consumer_kafka_python.py"), false)
}

// TestGroupFranzGoCooperative is acceptance criterion 2 with in-process
// franz-go consumers using incremental cooperative rebalancing.
func TestGroupFranzGoCooperative(t *testing.T) {
	requireKcat(t)
	d := startGroupDev(t, "", fastGroupProps)
	groupScenario(t, d.Bootstrap, kgoMember(), true)
}

// TestGroupOffsetsResumeAcrossRestarts is acceptance criterion 3: a new
// consumer of a group resumes exactly where the previous one committed, also
// after the broker was SIGKILLed (and restarted by `fjord dev`) and after
// `fjord dev` itself was stopped and started again on the same data
// directory. Each consumer is a different client: confluent-kafka-python,
// then kafka-python, then franz-go.
func TestGroupOffsetsResumeAcrossRestarts(t *testing.T) {
	requireKcat(t)
	requirePython(t, "confluent_kafka")
	requirePython(t, "kafka")
	const (
		topic = "resume"
		group = "resume-app"
		total = 1200
		limit = 400
	)
	dataDir := t.TempDir()
	d := startGroupDev(t, dataDir, fastGroupProps)
	adm := newAdmin(t, d.Bootstrap)
	createTopic(t, adm, topic, groupPartitions, nil)
	produceSeq(t, d.Bootstrap, topic, 0, total)

	// consumeLimit runs a consumer that closes itself after n records (start
	// passes it --limit n; n == 0: run until every record is processed, then
	// close it) and checks it started each partition at the committed offset
	// and left the group's commits where it stopped.
	var members []*groupMember
	consumeLimit := func(start memberStarter, name string, n int, bootstrap string) {
		t.Helper()
		adm := newAdmin(t, bootstrap)
		before := committedOffsets(t, adm, group, topic)
		m := start(t, bootstrap, topic, group, name)
		members = append(members, m)
		if n > 0 {
			select {
			case <-m.done:
			case <-time.After(waitTimeout):
				t.Fatalf("%s did not process %d records and close within %v\n%s", name, n, waitTimeout, m.summary())
			}
			m.mu.Lock()
			closed, err := m.closed, m.exitErr
			m.mu.Unlock()
			if !closed || err != nil {
				t.Fatalf("%s did not close cleanly (exit: %v)\n%s", name, err, m.summary())
			}
		} else {
			waitMembers(t, name+" to process the remaining records", seenAll(0, total, members...), m)
			m.stop(t, false)
		}
		recs := m.consumedRecords()
		if n > 0 && len(recs) != n {
			t.Errorf("%s processed %d records, want %d", name, len(recs), n)
		}
		for p, o := range firstOffsets(recs, 0, total) {
			if want := before[p]; o != want {
				t.Errorf("%s started partition %d at offset %d, but the group had committed %d", name, p, o, want)
			}
		}
		after := committedOffsets(t, adm, group, topic)
		for p, want := range before {
			if _, ok := after[p]; !ok {
				t.Errorf("after %s: no committed offset for partition %d (was %d)", name, p, want)
			}
		}
		// What the consumer processed last in each partition is what the
		// group has committed now.
		last := map[int32]int64{}
		for _, r := range recs {
			last[r.Partition] = max(last[r.Partition], r.Offset+1)
		}
		for p, o := range last {
			if after[p] != o {
				t.Errorf("after %s: partition %d committed at %d, but %s processed up to offset %d", name, p, after[p], name, o-1)
			}
		}
		t.Logf("%s processed %d records; committed offsets now %v", name, len(recs), after)
		checkExactlyOnceSoFar(t, members...)
	}

	consumeLimit(pythonMember("group_consumer_confluent.py", "--limit", strconv.Itoa(limit)), "confluent", limit, d.Bootstrap)
	waitGroupState(t, adm, group, "Empty")
	committed := committedOffsets(t, adm, group, topic)

	// The broker dies: fjord dev restarts it; the offsets must be there.
	oldPID := d.brokerPID(0)
	if oldPID <= 0 || !isFjordProcess(oldPID) {
		t.Fatalf("broker 0's PID file %s names no running fjord process (pid %d)", d.brokerPIDFile(0), oldPID)
	}
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitBrokerRestarted(t, d, 0, oldPID)
	adm = newAdmin(t, d.Bootstrap)
	if got := committedOffsets(t, adm, group, topic); !maps.Equal(got, committed) {
		t.Errorf("after the broker was killed and restarted the group's committed offsets are %v, want %v", got, committed)
	}
	checkGroupEmpty(t, adm, group, "after the broker was killed and restarted")
	consumeLimit(pythonMember("group_consumer_kafka_python.py", "--limit", strconv.Itoa(limit)), "kafka-python", limit, d.Bootstrap)
	waitGroupState(t, adm, group, "Empty")
	committed = committedOffsets(t, adm, group, topic)

	// fjord dev stops (SIGTERM) and starts again on the same data directory.
	if code := d.signal(syscall.SIGTERM); code != 0 {
		t.Errorf("fjord dev exit code %d after SIGTERM, want 0\nstderr:\n%s", code, d.stderr())
	}
	d = startGroupDev(t, dataDir, fastGroupProps)
	adm = newAdmin(t, d.Bootstrap)
	if got := committedOffsets(t, adm, group, topic); !maps.Equal(got, committed) {
		t.Errorf("after fjord dev restarted the group's committed offsets are %v, want %v", got, committed)
	}
	checkGroupEmpty(t, adm, group, "after fjord dev restarted")
	consumeLimit(kgoMember(), "franz-go", 0, d.Bootstrap)
	checkExactlyOnce(t, total, members...)
	checkCommittedAtEnd(t, adm, group, topic)
}

// checkGroupEmpty checks that a group whose members all left before a
// restart is still Empty after it. If it is not, a new member's join would
// wait for the departed ones to rejoin, so the test stops there.
func checkGroupEmpty(t testing.TB, adm *kadm.Client, group, when string) {
	t.Helper()
	dg := describeGroup(t, adm, group)
	if dg.State != "Empty" || len(dg.Members) > 0 {
		var ids []string
		for _, m := range dg.Members {
			ids = append(ids, m.MemberID)
		}
		t.Fatalf("%s, group %s is %s with members %v, though every member had left it (LeaveGroup answered) before: "+
			"the group's Empty generation was not in the log yet (see TestGroupLeaveSurvivesBrokerRestart). "+
			"A new consumer's join would now wait for these departed members", when, group, dg.State, ids)
	}
}

// checkExactlyOnceSoFar checks that no record was processed twice.
func checkExactlyOnceSoFar(t testing.TB, members ...*groupMember) {
	t.Helper()
	seen := map[int]string{}
	for _, r := range allConsumed(members...) {
		if by, ok := seen[r.Seq]; ok {
			t.Errorf("record %d processed by %s and again by %s", r.Seq, by, r.Member)
		}
		seen[r.Seq] = r.Member
	}
}

// waitGroupState waits until DescribeGroups reports the group in state.
func waitGroupState(t testing.TB, adm *kadm.Client, group, state string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("group %s to be %s", group, state), func() bool {
		return describeGroup(t, adm, group).State == state
	})
}

// generationOf finds a member's generation by asking the coordinator:
// Heartbeat answers ILLEGAL_GENERATION for every generation but the current
// one. It changes nothing but the member's session deadline.
func generationOf(t testing.TB, cl *kgo.Client, group, memberID string) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for gen := int32(1); gen <= 1000; gen++ {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation = group, memberID, gen
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		switch err := kerr.ErrorForCode(resp.ErrorCode); {
		case err == nil:
			return gen
		case errors.Is(err, kerr.IllegalGeneration):
		default:
			t.Fatalf("heartbeat of %s at generation %d: %v", memberID, gen, err)
		}
	}
	t.Fatalf("member %s of group %s answers ILLEGAL_GENERATION to generations 1..1000", memberID, group)
	return 0
}

// TestGroupStaticMembership is acceptance criterion 4: a static member
// (group.instance.id) that restarts within session.timeout.ms gets its
// partitions back without a rebalance: the other member keeps its member id,
// generation and assignment and sees no revocation, and the restarted member
// resumes from its committed offsets.
func TestGroupStaticMembership(t *testing.T) {
	requireKcat(t)
	const (
		topic    = "static"
		group    = "static-app"
		perPhase = 400
	)
	d := startGroupDev(t, "", fastGroupProps)
	adm := newAdmin(t, d.Bootstrap)
	createTopic(t, adm, topic, groupPartitions, nil)
	static := func(instance string) memberStarter {
		return pythonMember("group_consumer_confluent.py", "--instance-id", instance, "--session-timeout-ms", "30000")
	}
	a := static("instance-a")(t, d.Bootstrap, topic, group, "a")
	b := static("instance-b")(t, d.Bootstrap, topic, group, "b")
	waitSplit(t, adm, group, topic, a, b)
	produceSeq(t, d.Bootstrap, topic, 0, perPhase)
	waitMembers(t, "a and b to process records 0..399", seenAll(0, perPhase, a, b), a, b)

	memberIDs := func() map[string]string {
		ids := map[string]string{}
		for _, m := range describeGroup(t, adm, group).Members {
			iid := ""
			if m.InstanceID != nil {
				iid = *m.InstanceID
			}
			ids[m.ClientID] = m.MemberID + " instance " + iid
		}
		return ids
	}
	before := describeGroup(t, adm, group)
	beforeIDs := memberIDs()
	beforeAssigned := describedAssignments(t, before, topic)
	probe := newKgo(t, d.Bootstrap)
	bID := ""
	for _, m := range before.Members {
		if m.ClientID == "b" {
			bID = m.MemberID
		}
	}
	genBefore := generationOf(t, probe, group, bID)
	aOwned := a.assignment()
	_, bMark := b.eventsSince(0)
	t.Logf("before: members %v, assignments %v, generation %d", beforeIDs, beforeAssigned, genBefore)

	// a closes; a static member does not leave the group on close.
	a.stop(t, false)
	if dg := describeGroup(t, adm, group); dg.State != "Stable" || len(dg.Members) != 2 {
		t.Errorf("after static member a closed, the group is %s with %d members, want Stable with both (a static member does not leave on close)", dg.State, len(dg.Members))
	}
	// Records for a's partitions wait for it.
	produceSeq(t, d.Bootstrap, topic, perPhase, 2*perPhase)

	a2 := static("instance-a")(t, d.Bootstrap, topic, group, "a")
	waitMembers(t, "the restarted a to get its partitions back", func() bool { return len(a2.assignment()) > 0 }, a2, b)
	if got := a2.assignment(); !slices.Equal(got, aOwned) {
		t.Errorf("restarted static member got partitions %v, want its old %v", got, aOwned)
	}
	waitMembers(t, "a and b to process records 400..799", seenAll(perPhase, 2*perPhase, a, a2, b), a2, b)

	after := describeGroup(t, adm, group)
	afterIDs := memberIDs()
	if after.State != "Stable" || len(after.Members) != 2 {
		t.Errorf("after the restart the group is %s with %d members, want Stable with 2", after.State, len(after.Members))
	}
	if afterIDs["b"] != beforeIDs["b"] {
		t.Errorf("member b changed from %s to %s", beforeIDs["b"], afterIDs["b"])
	}
	if afterAssigned := describedAssignments(t, after, topic); !maps.EqualFunc(afterAssigned, beforeAssigned, slices.Equal) {
		t.Errorf("assignments changed from %v to %v", beforeAssigned, afterAssigned)
	}
	if gen := generationOf(t, probe, group, bID); gen != genBefore {
		t.Errorf("the group's generation moved from %d to %d: the static member's restart rebalanced the group", genBefore, gen)
	}
	evs, _ := b.eventsSince(bMark)
	for _, ev := range evs {
		if ev.Event == "assigned" || ev.Event == "revoked" || ev.Event == "lost" {
			t.Errorf("member b saw %s %v during a's restart; a static restart must not rebalance the others", ev.Event, ev.Partitions)
		}
	}
	t.Logf("after: members %v, generation %d", afterIDs, genBefore)
	a2.stop(t, false)
	b.stop(t, false)
	checkExactlyOnce(t, 2*perPhase, a, a2, b)
	checkCommittedAtEnd(t, adm, group, topic)
}

// rawJoin joins group as a consumer-protocol member with kmsg requests and
// returns the JoinGroup response (after the KIP-394 MEMBER_ID_REQUIRED
// round trip when memberID is "").
func rawJoin(t testing.TB, cl *kgo.Client, group, memberID string, session time.Duration, topics ...string) *kmsg.JoinGroupResponse {
	t.Helper()
	resp, err := tryJoin(cl, group, memberID, session, topics...)
	if err != nil {
		t.Fatalf("join group %s: %v", group, err)
	}
	return resp
}

// tryJoin is rawJoin that returns an error instead of failing the test, for
// use off the test's goroutine.
func tryJoin(cl *kgo.Client, group, memberID string, session time.Duration, topics ...string) (*kmsg.JoinGroupResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 0
	meta.Topics = topics
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = group
	req.MemberID = memberID
	req.SessionTimeoutMillis = int32(session / time.Millisecond)
	req.RebalanceTimeoutMillis = 60_000
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	for {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, err
		}
		if resp.ErrorCode == kerr.MemberIDRequired.Code && req.MemberID == "" {
			req.MemberID = resp.MemberID
			continue
		}
		return resp, nil
	}
}

// rawSync sends the SyncGroup of a member; the leader assigns every
// partition of topic to itself.
func rawSync(t testing.TB, cl *kgo.Client, group, memberID string, generation int32, leader bool, topic string) *kmsg.SyncGroupResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = group, memberID, generation
	if leader {
		a := kmsg.NewConsumerMemberAssignment()
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic = topic
		for p := range int32(groupPartitions) {
			at.Partitions = append(at.Partitions, p)
		}
		a.Topics = append(a.Topics, at)
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = memberID, a.AppendTo(nil)
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("sync group %s: %v", group, err)
	}
	return resp
}

// rawCommit commits offset for every partition of topic as a member (or
// standalone with generation -1 and no member id) and returns the first
// partition error.
func rawCommit(t testing.TB, cl *kgo.Client, group, memberID string, generation int32, topic string, offset int64) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = group, memberID, generation
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p := range int32(groupPartitions) {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, offset
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("offset commit: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != groupPartitions {
		t.Fatalf("offset commit answered %d topics, want 1 with %d partitions", len(resp.Topics), groupPartitions)
	}
	for _, p := range resp.Topics[0].Partitions {
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return err
		}
	}
	return nil
}

// TestGroupBadInputs is acceptance criterion 5: bad group requests get
// Kafka's error codes. It sends raw kmsg requests through a franz-go client
// to a `fjord broker` process.
func TestGroupBadInputs(t *testing.T) {
	const (
		topic = "bad-inputs"
		group = "bad-inputs-app"
	)
	b := startBroker(t, brokerOptions{Props: map[string]string{
		"group.initial.rebalance.delay.ms": "0",
		"group.min.session.timeout.ms":     "2000",
		"group.max.session.timeout.ms":     "60000",
	}})
	cl := newKgo(t, b.Addr)
	adm := kadm.NewClient(cl)
	createTopic(t, adm, topic, groupPartitions, nil)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	wantErr := func(what string, got, want error) {
		t.Helper()
		if !errors.Is(got, want) {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
	}

	// Session timeouts outside group.min/max.session.timeout.ms.
	for _, session := range []time.Duration{1999 * time.Millisecond, 60001 * time.Millisecond} {
		resp := rawJoin(t, cl, group+"-session", "", session, topic)
		wantErr(fmt.Sprintf("JoinGroup with session timeout %v", session), kerr.ErrorForCode(resp.ErrorCode), kerr.InvalidSessionTimeout)
	}
	// Empty group id.
	wantErr("JoinGroup with an empty group id", kerr.ErrorForCode(rawJoin(t, cl, "", "", 10*time.Second, topic).ErrorCode), kerr.InvalidGroupID)

	// A member joins (generation 1), syncs and commits.
	join := rawJoin(t, cl, group, "", 2*time.Second, topic)
	if err := kerr.ErrorForCode(join.ErrorCode); err != nil {
		t.Fatalf("JoinGroup at the minimum session timeout: %v", err)
	}
	member, gen1 := join.MemberID, join.Generation
	if join.LeaderID != member {
		t.Fatalf("the only member %s is not the leader (%s)", member, join.LeaderID)
	}
	if err := kerr.ErrorForCode(rawSync(t, cl, group, member, gen1, true, topic).ErrorCode); err != nil {
		t.Fatalf("SyncGroup: %v", err)
	}
	if err := rawCommit(t, cl, group, member, gen1, topic, 1); err != nil {
		t.Fatalf("OffsetCommit at the current generation %d: %v", gen1, err)
	}

	// DeleteGroups on the active group.
	dresp, err := adm.DeleteGroup(ctx, group)
	if err == nil {
		err = dresp.Err
	}
	wantErr("DeleteGroups on a group with a member", err, kerr.NonEmptyGroup)

	// The member rejoins: the generation moves on, and commits, heartbeats
	// and syncs at the old one are stale.
	rejoin := rawJoin(t, cl, group, member, 2*time.Second, topic, topic+"-other")
	if err := kerr.ErrorForCode(rejoin.ErrorCode); err != nil {
		t.Fatalf("rejoin: %v", err)
	}
	gen2 := rejoin.Generation
	if gen2 <= gen1 {
		t.Fatalf("rejoin with new metadata kept generation %d (was %d)", gen2, gen1)
	}
	if err := kerr.ErrorForCode(rawSync(t, cl, group, member, gen2, true, topic).ErrorCode); err != nil {
		t.Fatalf("SyncGroup at generation %d: %v", gen2, err)
	}
	wantErr(fmt.Sprintf("OffsetCommit at stale generation %d (current %d)", gen1, gen2), rawCommit(t, cl, group, member, gen1, topic, 2), kerr.IllegalGeneration)
	wantErr(fmt.Sprintf("OffsetCommit at future generation %d", gen2+1), rawCommit(t, cl, group, member, gen2+1, topic, 2), kerr.IllegalGeneration)
	wantErr("OffsetCommit by an unknown member", rawCommit(t, cl, group, "no-such-member", gen2, topic, 2), kerr.UnknownMemberID)
	wantErr("standalone OffsetCommit to a group with members", rawCommit(t, cl, group, "", -1, topic, 2), kerr.IllegalGeneration)
	if got := committedOffsets(t, adm, group, topic); !maps.Equal(got, map[int32]int64{0: 1, 1: 1, 2: 1, 3: 1}) {
		t.Errorf("rejected commits changed the committed offsets to %v, want 1 everywhere", got)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = group, member, gen1
	hresp, err := hb.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	wantErr("Heartbeat at a stale generation", kerr.ErrorForCode(hresp.ErrorCode), kerr.IllegalGeneration)
	wantErr("SyncGroup at a stale generation", kerr.ErrorForCode(rawSync(t, cl, group, member, gen1, false, topic).ErrorCode), kerr.IllegalGeneration)
	if err := rawCommit(t, cl, group, member, gen2, topic, 3); err != nil {
		t.Errorf("OffsetCommit at the current generation %d: %v", gen2, err)
	}

	// A different protocol type cannot join.
	other := kmsg.NewPtrJoinGroupRequest()
	other.Group, other.SessionTimeoutMillis, other.RebalanceTimeoutMillis = group, 10_000, 10_000
	other.ProtocolType = "connect"
	op := kmsg.NewJoinGroupRequestProtocol()
	op.Name, op.Metadata = "default", []byte{0}
	other.Protocols = append(other.Protocols, op)
	other.MemberID = member
	oresp, err := other.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	wantErr("JoinGroup with another protocol type", kerr.ErrorForCode(oresp.ErrorCode), kerr.InconsistentGroupProtocol)

	// The member leaves; the empty group can be deleted, once.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = group
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = member
	leave.Members = append(leave.Members, lm)
	lresp, err := leave.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(lresp.ErrorCode)
		for _, m := range lresp.Members {
			if err == nil {
				err = kerr.ErrorForCode(m.ErrorCode)
			}
		}
	}
	if err != nil {
		t.Fatalf("LeaveGroup: %v", err)
	}
	hb.Generation = gen2
	if hresp, err = hb.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	wantErr("Heartbeat after leaving", kerr.ErrorForCode(hresp.ErrorCode), kerr.UnknownMemberID)
	if dresp, err = adm.DeleteGroup(ctx, group); err == nil {
		err = dresp.Err
	}
	if err != nil {
		t.Errorf("DeleteGroups on the empty group: %v", err)
	}
	if got := committedOffsets(t, adm, group, topic); len(got) != 0 {
		t.Errorf("a deleted group still has committed offsets %v", got)
	}
	if dresp, err = adm.DeleteGroup(ctx, group); err == nil {
		err = dresp.Err
	}
	wantErr("DeleteGroups on a deleted group", err, kerr.GroupIDNotFound)
}

// TestGroupSessionExpiresDuringRebalance checks that a member that stops
// heartbeating while a rebalance waits for it is removed when its session
// expires, as Kafka does, and does not hold up the rest of the group until
// its much longer rebalance timeout. This is what happens when a consumer
// process dies just as another one joins.
func TestGroupSessionExpiresDuringRebalance(t *testing.T) {
	const (
		topic = "expiry"
		group = "expiry-app"
	)
	b := startBroker(t, brokerOptions{Props: map[string]string{
		"group.initial.rebalance.delay.ms": "0",
		"group.min.session.timeout.ms":     "500",
	}})
	cl := newKgo(t, b.Addr)
	createTopic(t, kadm.NewClient(cl), topic, groupPartitions, nil)

	// The first member: a 1 s session, a 60 s rebalance timeout. It joins,
	// syncs, and then goes silent as if its process had died.
	dead := rawJoin(t, cl, group, "", time.Second, topic)
	if err := kerr.ErrorForCode(dead.ErrorCode); err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(rawSync(t, cl, group, dead.MemberID, dead.Generation, true, topic).ErrorCode); err != nil {
		t.Fatal(err)
	}
	// A second member joins right away: the group waits for the first one to
	// rejoin, which it never will. Its session expires within a second; the
	// join must then complete without it, long before the 60 s rebalance
	// timeout. The 30 s bound below is thirty sessions: it separates the two
	// behaviours and is not a performance threshold.
	type result struct {
		resp *kmsg.JoinGroupResponse
		err  error
	}
	joined := make(chan result, 1)
	cl2 := newKgo(t, b.Addr)
	go func() {
		resp, err := tryJoin(cl2, group, "", 10*time.Second, topic)
		joined <- result{resp, err}
	}()
	select {
	case r := <-joined:
		resp, err := r.resp, r.err
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			t.Fatalf("second member's JoinGroup: %v", err)
		}
		if len(resp.Members) != 1 || resp.LeaderID != resp.MemberID {
			t.Errorf("second member's JoinGroup: leader %s with %d members, want itself alone (the silent member expired)", resp.LeaderID, len(resp.Members))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the second member's JoinGroup is still waiting 30 s after it was sent, though the silent member's 1 s session has long expired: " +
			"the coordinator does not expire sessions of members it waits for in PreparingRebalance (Kafka removes them at session expiry)")
	}
}

// TestGroupCrashedMemberReplaced is the everyday case behind
// TestGroupSessionExpiresDuringRebalance, with real clients: a
// confluent-kafka-python consumer is SIGKILLed and a replacement starts at
// once, within the dead one's session. The coordinator must drop the dead
// member when its session (6 s here) expires, as Kafka does, and give the
// replacement every partition at the dead member's committed offsets; it must
// not hold the replacement's join until the dead member's rebalance timeout
// (librdkafka's max.poll.interval.ms, 5 minutes).
func TestGroupCrashedMemberReplaced(t *testing.T) {
	requireKcat(t)
	const (
		topic    = "crash"
		group    = "crash-app"
		perPhase = 400
	)
	d := startGroupDev(t, "", fastGroupProps)
	adm := newAdmin(t, d.Bootstrap)
	createTopic(t, adm, topic, groupPartitions, nil)
	// A 6 s session (the smallest group.min.session.timeout.ms allows by
	// default): the replacement starts well within it.
	a := pythonMember("group_consumer_confluent.py", "--session-timeout-ms", "6000")(t, d.Bootstrap, topic, group, "a")
	waitSplit(t, adm, group, topic, a)
	produceSeq(t, d.Bootstrap, topic, 0, perPhase)
	waitMembers(t, "a to process records 0..399", seenAll(0, perPhase, a), a)
	// Killed while idle, so that every record it processed is committed.
	a.pause(t)
	a.mu.Lock()
	a.stopping = true
	a.mu.Unlock()
	a.kill()
	<-a.done
	produceSeq(t, d.Bootstrap, topic, perPhase, 2*perPhase)
	b := pythonMember("group_consumer_confluent.py")(t, d.Bootstrap, topic, group, "b")
	// Five times the session: a bound, not a performance threshold.
	waitMembersWithin(t, 30*time.Second, "the replacement b to get every partition (the killed member's 6 s session has expired; Kafka drops it then, "+
		"while a coordinator that waits for its 5-minute rebalance timeout instead keeps b waiting)",
		func() bool { return len(b.assignment()) == groupPartitions }, b)
	waitMembers(t, "b to process records 400..799", seenAll(perPhase, 2*perPhase, b), b)
	b.stop(t, false)
	checkExactlyOnce(t, 2*perPhase, a, b)
	checkCommittedAtEnd(t, adm, group, topic)
}

// TestGroupLeaveSurvivesBrokerRestart checks that once LeaveGroup has been
// answered, the group's new state is in the log: the last member leaves, the
// broker is stopped at once (SIGKILL, or SIGTERM for a clean shutdown) and
// started again on its data directory, and the group must be Empty, not
// Stable with the member that left. Kafka appends the group's new generation
// to __consumer_offsets before it answers; a departed member restored as
// alive makes the next consumer's join wait for it.
func TestGroupLeaveSurvivesBrokerRestart(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			const (
				topic = "leave"
				group = "leave-app"
			)
			b := startBroker(t, brokerOptions{Props: fastGroupProps})
			cl := newKgo(t, b.Addr)
			createTopic(t, kadm.NewClient(cl), topic, groupPartitions, nil)
			join := rawJoin(t, cl, group, "", 10*time.Second, topic)
			if err := kerr.ErrorForCode(join.ErrorCode); err != nil {
				t.Fatalf("JoinGroup: %v", err)
			}
			if err := kerr.ErrorForCode(rawSync(t, cl, group, join.MemberID, join.Generation, true, topic).ErrorCode); err != nil {
				t.Fatalf("SyncGroup: %v", err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			leave := kmsg.NewPtrLeaveGroupRequest()
			leave.Group = group
			lm := kmsg.NewLeaveGroupRequestMember()
			lm.MemberID = join.MemberID
			leave.Members = append(leave.Members, lm)
			resp, err := leave.RequestWith(ctx, cl)
			if err == nil {
				err = kerr.ErrorForCode(resp.ErrorCode)
			}
			if err != nil {
				t.Fatalf("LeaveGroup: %v", err)
			}
			cl.Close()
			b.signal(sig)
			b = b.restart(t)
			dg := describeGroup(t, newAdmin(t, b.Addr), group)
			if dg.State != "Empty" || len(dg.Members) != 0 {
				t.Errorf("after LeaveGroup was answered and the broker restarted (%v), group %s is %s with %d members, want Empty: "+
					"the group's new generation was not appended before the answer", sig, group, dg.State, len(dg.Members))
			}
		})
	}
}

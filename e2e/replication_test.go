package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
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
	"github.com/twmb/franz-go/pkg/kgo"
)

// The replication acceptance tests run `fjord dev --brokers 3` (three
// brokers, a three-member metadata quorum, min.insync.replicas=2 and
// preferred-leader rebalancing every 5 s from its dev properties) and drive
// it with librdkafka (confluent-kafka-python, testdata/clients) producing
// and franz-go (kgo, kadm) consuming and inspecting, while brokers are
// killed. Every wait is bounded, so a broker that does not fail over fails
// the test with what it last saw rather than hanging it.

const (
	replBrokers    = 3
	replPartitions = 6
	// replRate is the stream producers' records per second: enough to
	// have records in flight at every kill, little enough for two cores.
	replRate = 1000
	// failoverBound is the most a partition may go without a leader that
	// acknowledges acks=all produces after its leader is killed.
	failoverBound = 5 * time.Second
	// streamTimeout is how long the stream producers retry a record
	// (message.timeout.ms): longer than any recovery the tests wait for.
	streamTimeout = time.Minute
)

// clusterAdmin returns a kadm client seeded with every broker of d, whose
// metadata is never more than 100 ms old.
func clusterAdmin(t testing.TB, d *devCluster) *kadm.Client {
	t.Helper()
	return kadm.NewClient(newKgo(t, d.Bootstrap, kgo.SeedBrokers(d.Addrs...), kgo.MetadataMinAge(100*time.Millisecond)))
}

// createReplicated creates topic with the given partitions, replication
// factor 3 and min.insync.replicas=2, and waits until every partition has a
// leader and all three replicas in sync.
func createReplicated(t testing.TB, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	two := "2"
	resp, err := adm.CreateTopic(ctx, partitions, replBrokers, map[string]*string{"min.insync.replicas": &two}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s with replication factor %d: %v", topic, replBrokers, err)
	}
	waitPartitions(t, adm, topic, time.Minute, "a leader and 3 in-sync replicas for every partition", fullISR)
}

// layout is a topic's partitions as Metadata describes them.
type layout map[int32]kadm.PartitionDetail

func (l layout) String() string {
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(l)) {
		d := l[p]
		fmt.Fprintf(&b, "\n  partition %d: leader %d, replicas %v, isr %v", p, d.Leader, d.Replicas, d.ISR)
		if d.Err != nil {
			fmt.Fprintf(&b, ", error %v", d.Err)
		}
	}
	return b.String()
}

// describe returns topic's layout.
func describe(ctx context.Context, adm *kadm.Client, topic string) (layout, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	td, ok := md.Topics[topic]
	if !ok {
		return nil, fmt.Errorf("metadata has no topic %s", topic)
	}
	if td.Err != nil {
		return nil, td.Err
	}
	return layout(td.Partitions), nil
}

// waitPartitions polls topic's layout until cond holds and returns it,
// failing the test with the last layout seen once bound has passed.
func waitPartitions(t testing.TB, adm *kadm.Client, topic string, bound time.Duration, what string, cond func(layout) bool) layout {
	t.Helper()
	deadline := time.Now().Add(bound)
	var last layout
	var lastErr error
	for {
		l, err := describe(t.Context(), adm, topic)
		if err == nil {
			last, lastErr = l, nil
			if cond(l) {
				return l
			}
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s: no %s within %v; last metadata (error %v):%v", topic, what, bound, lastErr, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fullISR holds when every partition has a leader and all its replicas in
// sync.
func fullISR(l layout) bool {
	for _, d := range l {
		if d.Err != nil || d.Leader < 0 || len(d.Replicas) != replBrokers || len(d.ISR) != len(d.Replicas) {
			return false
		}
	}
	return len(l) > 0
}

// preferredLeaders holds when every partition is led by its first replica.
func preferredLeaders(l layout) bool {
	for _, d := range l {
		if d.Err != nil || len(d.Replicas) == 0 || d.Leader != d.Replicas[0] {
			return false
		}
	}
	return len(l) > 0
}

// killBroker SIGKILLs broker id by the PID in its PID file and returns the
// PID.
func killBroker(t testing.TB, d *devCluster, id int) int {
	t.Helper()
	pid := d.brokerPID(id)
	if pid <= 0 || !isFjordProcess(pid) {
		t.Fatalf("broker %d's PID file %s names no running fjord process (pid %d)", id, d.brokerPIDFile(id), pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitBrokerBack waits until `fjord dev` has replaced broker id's process
// oldPID with one that answers ApiVersions on the broker's own address.
func waitBrokerBack(t testing.TB, d *devCluster, id, oldPID int) {
	t.Helper()
	waitBounded(t, time.Minute, fmt.Sprintf("broker %d (was pid %d) to be restarted and answer on %s", id, oldPID, d.Addrs[id]), func() (bool, string) {
		if d.exited() {
			t.Fatalf("fjord dev exited (%v)\nstderr:\n%s", d.err, d.stderr())
		}
		pid := d.brokerPID(id)
		if pid <= 0 || pid == oldPID || !isFjordProcess(pid) {
			return false, fmt.Sprintf("PID file names %d", pid)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		if err := probeApiVersions(ctx, d.Addrs[id]); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// waitBounded polls cond every 100 ms until it holds, failing the test once
// bound has passed with the state cond last described.
func waitBounded(t testing.TB, bound time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v: %s", what, bound, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// delivery is one line of stream_producer.py or acks_probe.py: a record's
// delivery report, or the script's final line.
type delivery struct {
	Seq       int    `json:"s"`
	Partition int32  `json:"p"`
	Offset    *int64 `json:"o"` // nil if acknowledged without an offset
	Err       string `json:"err"`
	Sent      int64  `json:"sent"` // Unix ms
	At        int64  `json:"at"`   // Unix ms

	Done      bool   `json:"done"`
	Fatal     string `json:"fatal"`
	Acked     int    `json:"acked"`
	Failed    int    `json:"failed"`
	Unflushed int    `json:"unflushed"`
}

func (o delivery) final() bool { return o.Done || o.Fatal != "" }

// acked reports whether the record was acknowledged. librdkafka reports
// some acknowledgements without an offset (a retry the broker recognized as
// a duplicate may be answered so).
func (o delivery) acked() bool { return !o.final() && o.Err == "" }

// offset returns the offset the record was acknowledged at, or -1.
func (o delivery) offset() int64 {
	if o.Offset == nil {
		return -1
	}
	return *o.Offset
}

// sentAfter reports whether the record was handed to the producer after t.
func (o delivery) sentAfter(t time.Time) bool { return o.Sent > t.UnixMilli() }

// ack is an acknowledged record: its place in the log and its value.
type ack struct {
	Partition int32
	Offset    int64 // -1 if the producer was not told
	Value     string
}

// pyStream is a running stream_producer.py or acks_probe.py: it reports
// every record's delivery until told to stop.
type pyStream struct {
	t      testing.TB
	name   string
	prefix string // of the record values: "s" or "probe"
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	errLog string
	read   chan struct{} // closed once stdout has been read to its end
	exited chan struct{} // closed once cmd has been waited for

	mu       sync.Mutex
	reports  []delivery
	last     delivery // the final line, once it came
	badLines []string
	stopOnce sync.Once
}

// startPyStream starts a client script that streams delivery reports.
func startPyStream(t testing.TB, scriptName, prefix string, args ...string) *pyStream {
	t.Helper()
	requirePython(t, "confluent_kafka")
	s := &pyStream{
		t: t, name: scriptName, prefix: prefix,
		errLog: filepath.Join(t.TempDir(), scriptName+".stderr"),
		read:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	stderr, err := os.Create(s.errLog)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	s.cmd = exec.Command(pythonBin(), append([]string{script(scriptName)}, args...)...)
	s.cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	s.cmd.Stderr = stderr
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", scriptName, err)
	}
	go func() {
		defer close(s.read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var o delivery
			err := json.Unmarshal(sc.Bytes(), &o)
			s.mu.Lock()
			switch {
			case err != nil:
				s.badLines = append(s.badLines, sc.Text())
			case o.final():
				s.last = o
			default:
				s.reports = append(s.reports, o)
			}
			s.mu.Unlock()
		}
	}()
	go func() {
		<-s.read // Wait closes stdout: read it all first
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
	})
	return s
}

// snapshot returns the delivery reports so far.
func (s *pyStream) snapshot() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reports)
}

// stderrTail returns the end of the script's stderr.
func (s *pyStream) stderrTail() string {
	b, _ := os.ReadFile(s.errLog)
	return tail(b)
}

// await returns the first delivery, from index from on, for which match
// holds, polling until bound has passed; ok is false then. It fails the
// test if the script exits first.
func (s *pyStream) await(from int, bound time.Duration, match func(delivery) bool) (o delivery, ok bool) {
	deadline := time.Now().Add(bound)
	for {
		outs := s.snapshot()
		for _, o := range outs[min(from, len(outs)):] {
			if match(o) {
				return o, true
			}
		}
		from = max(from, len(outs))
		select {
		case <-s.exited:
			s.mu.Lock()
			last := s.last
			s.mu.Unlock()
			s.t.Fatalf("%s exited early (final line %+v)\nstderr:\n%s", s.name, last, s.stderrTail())
		default:
		}
		if time.Now().After(deadline) {
			return delivery{}, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop tells the script to stop, waits up to bound for it to flush and
// exit, and returns its final line. It is idempotent.
func (s *pyStream) stop(bound time.Duration) delivery {
	s.t.Helper()
	s.stopOnce.Do(func() {
		_, _ = io.WriteString(s.stdin, "stop\n")
		_ = s.stdin.Close()
	})
	select {
	case <-s.exited:
	case <-time.After(bound):
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.t.Fatalf("%s still running %v after it was told to stop\nstderr:\n%s", s.name, bound, s.stderrTail())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.badLines) > 0 {
		s.t.Errorf("%s printed %d lines that do not parse, e.g. %q", s.name, len(s.badLines), s.badLines[0])
	}
	if !s.last.final() {
		s.t.Fatalf("%s exited (%v) without its final line\nstderr:\n%s", s.name, s.cmd.ProcessState, s.stderrTail())
	}
	return s.last
}

// acks returns the records acknowledged so far.
func (s *pyStream) acks() []ack {
	var out []ack
	for _, o := range s.snapshot() {
		if o.acked() {
			out = append(out, ack{o.Partition, o.offset(), fmt.Sprintf("%s-%d", s.prefix, o.Seq)})
		}
	}
	return out
}

// ackedEverywhere waits up to bound, looking at delivery reports from index
// from on, until each of partitions has acknowledged a record produced after
// since. It returns the partitions that have not.
func (s *pyStream) ackedEverywhere(from int, since time.Time, partitions int32, bound time.Duration) []int32 {
	got := map[int32]bool{}
	s.await(from, bound, func(o delivery) bool {
		if o.acked() && o.sentAfter(since) {
			got[o.Partition] = true
		}
		return len(got) == int(partitions)
	})
	var missing []int32
	for p := range partitions {
		if !got[p] {
			missing = append(missing, p)
		}
	}
	return missing
}

// reportSummary says how many delivery reports outs holds and summarizes
// the failures among them.
func reportSummary(outs []delivery) string {
	acked := 0
	for _, o := range outs {
		if o.acked() {
			acked++
		}
	}
	return fmt.Sprintf("%d delivery reports, %d acknowledged; failures: %s", len(outs), acked, errorCounts(outs))
}

// errorCounts summarizes the failed deliveries in outs by partition and error.
func errorCounts(outs []delivery) string {
	counts := map[string]int{}
	for _, o := range outs {
		if !o.acked() {
			counts[fmt.Sprintf("partition %d %s", o.Partition, o.Err)]++
		}
	}
	if len(counts) == 0 {
		return "no failures"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}

// startStream starts stream_producer.py on topic at rate records a second.
func startStream(t testing.TB, d *devCluster, topic string, rate int) *pyStream {
	t.Helper()
	return startPyStream(t, "stream_producer.py", "s",
		"--bootstrap", d.bootstrapServers(), "--topic", topic, "--rate", strconv.Itoa(rate),
		"--timeout", strconv.Itoa(int(streamTimeout.Seconds())))
}

// produceAcked produces n keyed records with values "<prefix>-<i>" through
// franz-go (idempotent, acks=all) and returns where they were acknowledged.
func produceAcked(t testing.TB, d *devCluster, topic, prefix string, n int) []ack {
	t.Helper()
	cl := newKgo(t, d.Bootstrap, kgo.SeedBrokers(d.Addrs...), kgo.RequiredAcks(kgo.AllISRAcks()))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i%64)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
	}
	results := cl.ProduceSync(ctx, rs...)
	if err := results.FirstErr(); err != nil {
		t.Fatalf("produce %d records to %s: %v", n, topic, err)
	}
	out := make([]ack, 0, n)
	for _, r := range results {
		out = append(out, ack{r.Record.Partition, r.Record.Offset, string(r.Record.Value)})
	}
	return out
}

// checkReplicatedLog checks the records of a topic read back after faults:
// every acknowledged record is at the offset it was acknowledged at (in its
// partition, if acknowledged without an offset), no value is in the log
// twice, and each producer's records ("<prefix>-<n>") are in the order they
// were produced within each partition.
func checkReplicatedLog(t testing.TB, recs []record, acked []ack) {
	t.Helper()
	type place struct {
		p int32
		o int64
	}
	at := make(map[place]string, len(recs))
	where := make(map[string]int32, len(recs)) // value -> partition
	count := map[string]int{}
	last := map[string]int{}
	var disorder []string
	for _, r := range recs {
		v := string(r.Value)
		at[place{r.Partition, r.Offset}] = v
		where[v] = r.Partition
		count[v]++
		prefix, num, ok := strings.Cut(v, "-")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			t.Errorf("partition %d offset %d: value %q is no <producer>-<n>", r.Partition, r.Offset, v)
			continue
		}
		k := fmt.Sprintf("%d/%s", r.Partition, prefix)
		if prev, seen := last[k]; seen && n <= prev {
			disorder = append(disorder, fmt.Sprintf("partition %d offset %d: %s after %s-%d", r.Partition, r.Offset, v, prefix, prev))
		}
		last[k] = n
	}
	var dups []string
	for v, n := range count {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s ×%d", v, n))
		}
	}
	slices.Sort(dups)
	var lost []string
	noOffset := 0
	for _, a := range acked {
		if a.Offset < 0 {
			noOffset++
			if p, ok := where[a.Value]; !ok || p != a.Partition {
				lost = append(lost, fmt.Sprintf("%s acknowledged (without an offset) on partition %d, where the log does not have it", a.Value, a.Partition))
			}
			continue
		}
		if got, ok := at[place{a.Partition, a.Offset}]; !ok || got != a.Value {
			lost = append(lost, fmt.Sprintf("%s acknowledged at partition %d offset %d, where the log has %q", a.Value, a.Partition, a.Offset, got))
		}
	}
	t.Logf("log: %d records; %d acknowledged records checked, %d of them acknowledged without an offset", len(recs), len(acked), noOffset)
	if len(lost) > 0 {
		t.Errorf("%d acknowledged records lost, e.g.\n  %s", len(lost), strings.Join(lost[:min(len(lost), 10)], "\n  "))
	}
	if len(dups) > 0 {
		t.Errorf("%d records in the log more than once, e.g. %v", len(dups), dups[:min(len(dups), 10)])
	}
	if len(disorder) > 0 {
		t.Errorf("%d records out of order, e.g.\n  %s", len(disorder), strings.Join(disorder[:min(len(disorder), 10)], "\n  "))
	}
}

// TestReplicationKillLeader: with an idempotent acks=all librdkafka producer
// streaming keyed records into a topic of replication factor 3, the leader
// of partition 0 is SIGKILLed. Within failoverBound, a record produced after
// the kill is acknowledged on a partition the dead broker led (the failover
// time is reported as FAILOVER_SECONDS=); afterwards every acknowledged
// record is in the log at its offset, in order, once.
func TestReplicationKillLeader(t *testing.T) {
	requirePython(t, "confluent_kafka")
	d := startDev(t, devOptions{Brokers: replBrokers})
	adm := clusterAdmin(t, d)
	const topic = "kill-leader"
	createReplicated(t, adm, topic, replPartitions)

	s := startStream(t, d, topic, replRate)
	seen := map[int32]bool{}
	if _, ok := s.await(0, time.Minute, func(o delivery) bool {
		if o.acked() {
			seen[o.Partition] = true
		}
		return len(seen) == replPartitions
	}); !ok {
		now, _ := describe(t.Context(), adm, topic)
		t.Fatalf("acks=all produces were not acknowledged on every partition within a minute (only on %v): %s\nmetadata now:%v",
			seen, reportSummary(s.snapshot()), now)
	}

	l, err := describe(t.Context(), adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	victim := l[0].Leader
	var led []int32
	for p, pd := range l {
		if pd.Leader == victim {
			led = append(led, p)
		}
	}
	slices.Sort(led)
	from := len(s.snapshot())
	killedAt := time.Now()
	oldPID := killBroker(t, d, int(victim))
	t.Logf("killed broker %d (pid %d), leader of partitions %v", victim, oldPID, led)

	o, ok := s.await(from, 30*time.Second, func(o delivery) bool {
		return o.acked() && o.sentAfter(killedAt) && slices.Contains(led, o.Partition)
	})
	if !ok {
		now, _ := describe(t.Context(), adm, topic)
		t.Fatalf("no record produced after broker %d was killed was acknowledged on the partitions it led (%v) within 30s: no failover.\nsince the kill: %s\nmetadata now:%v\nproducer stderr:\n%s",
			victim, led, reportSummary(s.snapshot()[from:]), now, s.stderrTail())
	}
	failover := time.UnixMilli(o.At).Sub(killedAt)
	t.Logf("FAILOVER_SECONDS=%.3f (partition %d, offset %d)", failover.Seconds(), o.Partition, o.offset())
	fmt.Printf("FAILOVER_SECONDS=%.3f\n", failover.Seconds())
	if failover >= failoverBound {
		t.Errorf("failover took %v, want under %v", failover.Round(time.Millisecond), failoverBound)
	}

	// Keep producing through the restart of the killed broker.
	waitBrokerBack(t, d, int(victim), oldPID)
	n := len(s.snapshot())
	if _, ok := s.await(n+2*replRate, 30*time.Second, func(delivery) bool { return true }); !ok {
		t.Errorf("the stream did not go on after broker %d came back: %s", victim, reportSummary(s.snapshot()[n:]))
	}
	final := s.stop(2 * time.Minute)
	t.Logf("producer: %+v", final)
	if final.Fatal != "" {
		t.Errorf("librdkafka reported a fatal error (an idempotence violation it detected): %s", final.Fatal)
	}
	if final.Failed > 0 || final.Unflushed > 0 {
		t.Errorf("%d records failed and %d were never acknowledged: %s", final.Failed, final.Unflushed, errorCounts(s.snapshot()))
	}
	recs := consumeAll(t, d.Bootstrap, topic)
	checkReplicatedLog(t, recs, s.acks())
}

// TestReplicationRejoin: a broker killed and kept down leaves every ISR and
// leads nothing; started again, it catches up on what was produced
// meanwhile, returns to every ISR, and (with the dev cluster's 5-second
// preferred-leader rebalance) leads its preferred partitions again.
func TestReplicationRejoin(t *testing.T) {
	d := startDev(t, devOptions{Brokers: replBrokers})
	adm := clusterAdmin(t, d)
	const topic = "rejoin"
	createReplicated(t, adm, topic, replPartitions)
	waitPartitions(t, adm, topic, 30*time.Second, "preferred leaders (leader == replicas[0])", preferredLeaders)
	acked := produceAcked(t, d, topic, "before", 1000)

	const victim = 1
	hold(t, d.brokerDir(victim))
	oldPID := killBroker(t, d, victim)
	killedAt := time.Now()
	waitPartitions(t, adm, topic, 30*time.Second, fmt.Sprintf("new leaders and ISRs without broker %d", victim), func(l layout) bool {
		for _, pd := range l {
			if pd.Err != nil || pd.Leader < 0 || pd.Leader == victim || slices.Contains(pd.ISR, victim) {
				return false
			}
		}
		return true
	})
	t.Logf("broker %d out of every ISR %v after its kill", victim, time.Since(killedAt).Round(time.Millisecond))
	acked = append(acked, produceAcked(t, d, topic, "during", 3000)...)

	release(t, d.brokerDir(victim))
	releasedAt := time.Now()
	waitBrokerBack(t, d, victim, oldPID)
	waitPartitions(t, adm, topic, time.Minute, fmt.Sprintf("broker %d back in every ISR", victim), func(l layout) bool {
		for _, pd := range l {
			if !slices.Contains(pd.ISR, victim) {
				return false
			}
		}
		return true
	})
	inSyncAt := time.Now()
	l := waitPartitions(t, adm, topic, 30*time.Second, "preferred leaders again (leader == replicas[0])", preferredLeaders)
	t.Logf("broker %d: in every ISR %v after its restart, preferred leader again %v after that:%v",
		victim, inSyncAt.Sub(releasedAt).Round(time.Millisecond), time.Since(inSyncAt).Round(time.Millisecond), l)

	acked = append(acked, produceAcked(t, d, topic, "after", 1000)...)
	recs := consumeAll(t, d.Bootstrap, topic)
	checkReplicatedLog(t, recs, acked)
}

// TestReplicationTwoDown: with two of three brokers down (held, so that
// `fjord dev` does not restart them), acks=all produces to a topic with
// min.insync.replicas=2 fail with NOT_ENOUGH_REPLICAS within a bounded
// time, and none is acknowledged; with one broker back they succeed again;
// nothing acknowledged is lost.
func TestReplicationTwoDown(t *testing.T) {
	requirePython(t, "confluent_kafka")
	d := startDev(t, devOptions{Brokers: replBrokers})
	adm := clusterAdmin(t, d)
	const topic = "two-down"
	createReplicated(t, adm, topic, replPartitions)
	acked := produceAcked(t, d, topic, "before", 1200)

	probe := startPyStream(t, "acks_probe.py", "probe",
		"--bootstrap", d.bootstrapServers(), "--topic", topic, "--partitions", strconv.Itoa(replPartitions))
	if _, ok := probe.await(0, time.Minute, delivery.acked); !ok {
		t.Fatalf("the probe got no acknowledgement with every broker up: %s\nstderr:\n%s", reportSummary(probe.snapshot()), probe.stderrTail())
	}

	from := len(probe.snapshot())
	oldPIDs := map[int]int{}
	for _, id := range []int{1, 2} {
		hold(t, d.brokerDir(id))
		oldPIDs[id] = killBroker(t, d, id)
	}
	downAt := time.Now()
	refused := map[int32]time.Duration{}
	if _, ok := probe.await(from, time.Minute, func(o delivery) bool {
		if o.sentAfter(downAt) && (o.Err == "NOT_ENOUGH_REPLICAS" || o.Err == "NOT_ENOUGH_REPLICAS_AFTER_APPEND") {
			if _, ok := refused[o.Partition]; !ok {
				refused[o.Partition] = time.UnixMilli(o.At).Sub(downAt)
			}
		}
		return len(refused) == replPartitions
	}); !ok {
		now, _ := describe(t.Context(), adm, topic)
		t.Fatalf("with brokers 1 and 2 down, acks=all produces did not fail with NOT_ENOUGH_REPLICAS on every partition within a minute (only on %v).\nsince the kills: %s\nmetadata now:%v",
			refused, reportSummary(probe.snapshot()[from:]), now)
	}
	t.Logf("NOT_ENOUGH_REPLICAS first answered, by partition, after: %v", refused)
	for _, o := range probe.snapshot()[from:] {
		if o.acked() && o.sentAfter(downAt) {
			t.Errorf("probe-%d, produced %v after brokers 1 and 2 died, was acknowledged at partition %d offset %d: acks=all with min.insync.replicas=2 needs a second live replica",
				o.Seq, time.UnixMilli(o.Sent).Sub(downAt), o.Partition, o.offset())
		}
	}

	from = len(probe.snapshot())
	release(t, d.brokerDir(1))
	upAt := time.Now()
	waitBrokerBack(t, d, 1, oldPIDs[1])
	accepted := map[int32]time.Duration{}
	if _, ok := probe.await(from, 90*time.Second, func(o delivery) bool {
		if o.acked() && o.sentAfter(upAt) {
			if _, ok := accepted[o.Partition]; !ok {
				accepted[o.Partition] = time.UnixMilli(o.At).Sub(upAt)
			}
		}
		return len(accepted) == replPartitions
	}); !ok {
		now, _ := describe(t.Context(), adm, topic)
		t.Fatalf("with broker 1 back, acks=all produces did not succeed again on every partition within 90s (only on %v).\nsince the restart: %s\nmetadata now:%v",
			accepted, reportSummary(probe.snapshot()[from:]), now)
	}
	t.Logf("acks=all produces succeed again, by partition, after: %v", accepted)
	probe.stop(30 * time.Second)
	acked = append(acked, probe.acks()...)

	release(t, d.brokerDir(2))
	waitBrokerBack(t, d, 2, oldPIDs[2])
	recs := consumeAll(t, d.Bootstrap, topic)
	checkReplicatedLog(t, recs, acked)
}

// faultLoopDuration is how long TestReplicationFaultLoop injects faults:
// about a minute by default; with FJORD_SOAK=1, FJORD_SOAK_DURATION (a Go
// duration, default 20m; give `go test` a -timeout above it).
func faultLoopDuration(t testing.TB) time.Duration {
	if os.Getenv("FJORD_SOAK") != "1" {
		if testing.Short() {
			return 30 * time.Second
		}
		return time.Minute
	}
	if s := os.Getenv("FJORD_SOAK_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("FJORD_SOAK_DURATION: %v", err)
		}
		return d
	}
	return 20 * time.Minute
}

// committer is a franz-go group consumer that commits what it has read
// after every poll.
type committer struct {
	cl       *kgo.Client
	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once

	mu         sync.Mutex
	records    int
	commits    int
	lastRecord time.Time
	lastCommit time.Time
	errs       map[string]int // commit and fetch errors
}

// summary describes what the consumer did, for logs and failures.
func (c *committer) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("consumer read %d records (last at %s) and committed %d times (last at %s); errors: %v",
		c.records, c.lastRecord.Format("15:04:05.000"), c.commits, c.lastCommit.Format("15:04:05.000"), c.errs)
}

func startCommitter(t testing.TB, d *devCluster, topic, group string) *committer {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(d.Addrs...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &committer{cl: cl, cancel: cancel, done: make(chan struct{}), errs: map[string]int{}}
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			n := fs.NumRecords()
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			err := cl.CommitUncommittedOffsets(cctx)
			ccancel()
			if ctx.Err() != nil {
				return
			}
			c.mu.Lock()
			fs.EachError(func(_ string, p int32, err error) { c.errs[fmt.Sprintf("fetch partition %d: %v", p, err)]++ })
			c.records += n
			if n > 0 {
				c.lastRecord = time.Now()
			}
			if err != nil {
				c.errs["commit: "+err.Error()]++
			} else {
				c.commits++
				c.lastCommit = time.Now()
			}
			c.mu.Unlock()
		}
	}()
	t.Cleanup(c.stop)
	return c
}

// stop stops consuming and leaves the group. It is idempotent.
func (c *committer) stop() {
	c.stopOnce.Do(func() {
		c.cancel()
		<-c.done
		c.cl.Close()
	})
}

// offsetWatch polls a group's committed offsets and records every time one
// went backwards.
type offsetWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu          sync.Mutex
	highest     map[int32]int64 // the highest committed offset seen
	latest      map[int32]int64 // the last committed offset seen
	regressions []string
	polls       int // successful ones
	lastPoll    time.Time
	lastErr     error
}

// summary describes what the watch saw, for logs and failures.
func (w *offsetWatch) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprintf("committed offsets fetched %d times (last at %s; last error %v): %v",
		w.polls, w.lastPoll.Format("15:04:05.000"), w.lastErr, w.latest)
}

func startOffsetWatch(t testing.TB, adm *kadm.Client, group, topic string) *offsetWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &offsetWatch{cancel: cancel, done: make(chan struct{}), highest: map[int32]int64{}, latest: map[int32]int64{}}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
			resp, err := adm.FetchOffsets(fctx, group)
			fcancel()
			w.mu.Lock()
			if err != nil { // the coordinator moves while brokers die
				w.lastErr = err
				w.mu.Unlock()
				continue
			}
			w.polls++
			w.lastPoll = time.Now()
			for p, o := range resp[topic] {
				if o.Err != nil {
					w.lastErr = o.Err
					continue
				}
				h, ok := w.highest[p]
				if ok && o.At < h && o.At != w.latest[p] {
					w.regressions = append(w.regressions, fmt.Sprintf("%s partition %d: committed offset %d after %d", time.Now().Format("15:04:05.000"), p, o.At, h))
				}
				w.latest[p] = o.At
				if !ok || o.At > h {
					w.highest[p] = o.At
				}
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.stop)
	return w
}

// stop stops watching. It is idempotent.
func (w *offsetWatch) stop() {
	w.cancel()
	<-w.done
}

// TestReplicationFaultLoop: under idempotent acks=all load and a consumer
// group committing offsets, brokers (and now and then a quorum member) are
// SIGKILLed one at a time and restarted by `fjord dev`, each kill after the
// cluster has recovered from the previous one. Afterwards no acknowledged
// record is lost or duplicated, and the group's committed offsets never went
// backwards and reach the end of the log. It runs about a minute; FJORD_SOAK=1
// runs it for FJORD_SOAK_DURATION (default 20m).
func TestReplicationFaultLoop(t *testing.T) {
	requirePython(t, "confluent_kafka")
	d := startDev(t, devOptions{Brokers: replBrokers, Props: map[string]string{"group.initial.rebalance.delay.ms": "0"}})
	adm := clusterAdmin(t, d)
	const (
		topic = "fault-loop"
		group = "fault-loop-group"
	)
	createReplicated(t, adm, topic, replPartitions)
	s := startStream(t, d, topic, replRate/2)
	c := startCommitter(t, d, topic, group)
	w := startOffsetWatch(t, adm, group, topic)
	if _, ok := s.await(0, time.Minute, delivery.acked); !ok {
		t.Fatalf("no acks=all produce acknowledged within a minute: %s", reportSummary(s.snapshot()))
	}

	duration := faultLoopDuration(t)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("injecting faults for %v (seed %d)", duration, seed)
	deadline := time.Now().Add(duration)
	var kills []string
	for round := 1; time.Now().Before(deadline) && !t.Failed(); round++ {
		time.Sleep(min(time.Duration(3000+rng.IntN(4000))*time.Millisecond, time.Until(deadline)))
		if round%4 == 0 {
			j := rng.IntN(d.Members)
			old := d.quorumPID(j)
			if old <= 0 || !isFjordProcess(old) {
				t.Fatalf("quorum member %d's PID file %s names no running fjord process (pid %d)", j, d.quorumPIDFile(j), old)
			}
			if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			kills = append(kills, fmt.Sprintf("%s quorum-%d", time.Now().Format("15:04:05.000"), j))
			waitBounded(t, time.Minute, fmt.Sprintf("quorum member %d to be restarted", j), func() (bool, string) {
				pid := d.quorumPID(j)
				return pid > 0 && pid != old && isFjordProcess(pid), fmt.Sprintf("PID file names %d", pid)
			})
		} else {
			id := rng.IntN(replBrokers)
			old := killBroker(t, d, id)
			kills = append(kills, fmt.Sprintf("%s broker-%d", time.Now().Format("15:04:05.000"), id))
			waitBrokerBack(t, d, id, old)
			waitPartitions(t, adm, topic, time.Minute, fmt.Sprintf("full ISRs again after broker %d's restart", id), fullISR)
		}
		// The producer goes on everywhere once the cluster has recovered.
		recovered, from := time.Now(), len(s.snapshot())
		if missing := s.ackedEverywhere(from, recovered, replPartitions, 30*time.Second); len(missing) > 0 {
			now, _ := describe(t.Context(), adm, topic)
			t.Errorf("after %s, no record produced since the recovery at %s was acknowledged within 30s on partitions %v: %s\nmetadata now:%v\nproducer stderr:\n%s",
				kills[len(kills)-1], recovered.Format("15:04:05.000"), missing, reportSummary(s.snapshot()[from:]), now, s.stderrTail())
		}
	}
	t.Logf("killed, in turn: %v", kills)

	final := s.stop(3 * time.Minute)
	t.Logf("producer: %+v", final)
	if final.Fatal != "" {
		t.Errorf("librdkafka reported a fatal error (an idempotence violation it detected): %s", final.Fatal)
	}
	if final.Failed > 0 || final.Unflushed > 0 {
		t.Errorf("%d records failed and %d were never acknowledged: %s", final.Failed, final.Unflushed, errorCounts(s.snapshot()))
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	waitBounded(t, time.Minute, "the group to commit the end of every partition", func() (bool, string) {
		w.mu.Lock()
		var behind []string
		ends.Each(func(o kadm.ListedOffset) {
			if w.latest[o.Partition] < o.Offset {
				behind = append(behind, fmt.Sprintf("partition %d at %d of %d", o.Partition, w.latest[o.Partition], o.Offset))
			}
		})
		w.mu.Unlock()
		return len(behind) == 0, strings.Join(behind, ", ") + "\n" + c.summary() + "\n" + w.summary()
	})
	c.stop()
	w.stop()
	t.Log(c.summary())
	t.Log(w.summary())
	w.mu.Lock()
	if len(w.regressions) > 0 {
		t.Errorf("committed offsets went backwards %d times:\n  %s", len(w.regressions), strings.Join(w.regressions[:min(len(w.regressions), 10)], "\n  "))
	}
	w.mu.Unlock()

	recs := consumeAll(t, d.Bootstrap, topic)
	checkReplicatedLog(t, recs, s.acks())
}

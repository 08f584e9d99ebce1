package e2e

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDevRestartKeepsData: `fjord dev` stopped with SIGTERM and started again
// on the same data directory serves every record and topic it had, including
// a topic created automatically with Kafka's defaults (one partition).
func TestDevRestartKeepsData(t *testing.T) {
	d := startDev(t, devOptions{})
	adm := newAdmin(t, d.Bootstrap)
	createTopic(t, adm, "kept", 3, nil)
	recs := genRecords(seedFor(t.Name()), 3000, 3, false)
	produceKgo(t, d.Bootstrap, "kept", "lz4", recs)

	// Producing to an unknown topic creates it (auto.create.topics.enable).
	cl := newKgo(t, d.Bootstrap, kgo.AllowAutoTopicCreation(), kgo.RequiredAcks(kgo.AllISRAcks()))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var auto []*kgo.Record
	for i := range 100 {
		auto = append(auto, &kgo.Record{Topic: "auto-created", Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(ctx, auto...).FirstErr(); err != nil {
		t.Fatalf("produce to an unknown topic: %v", err)
	}
	cl.Close()

	if code := d.signal(syscall.SIGTERM); code != 0 {
		t.Fatalf("fjord dev exited with code %d after SIGTERM\nstderr:\n%s", code, d.stderr())
	}
	d = startDev(t, devOptions{Port: d.Port, DataDir: d.DataDir})

	got := consumeKgo(t, d.Bootstrap, "kept", 3, len(recs))
	checkRecords(t, "after restart", got, recs, compareOpts{IgnoreOffsets: true})
	checkOffsets(t, got)

	adm = newAdmin(t, d.Bootstrap)
	topics, err := adm.ListTopics(ctx, "kept", "auto-created")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"kept": 3, "auto-created": 1} {
		if got := len(topics[name].Partitions); got != want {
			t.Fatalf("after restart, %s has %d partitions, want %d", name, got, want)
		}
	}
	autoGot := consumeKgo(t, d.Bootstrap, "auto-created", 1, len(auto))
	for i, r := range autoGot {
		if string(r.Value) != strconv.Itoa(i) || r.Offset != int64(i) {
			t.Fatalf("auto-created record %d: offset %d value %q", i, r.Offset, r.Value)
		}
	}
}

// brokerAddrs returns each broker's advertised address, by node ID, from
// Metadata.
func brokerAddrs(t testing.TB, bootstrap string) map[int32]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	bs, err := newAdmin(t, bootstrap).ListBrokers(ctx)
	if err != nil {
		t.Fatalf("list brokers: %v", err)
	}
	out := map[int32]string{}
	for _, b := range bs {
		out[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	return out
}

// TestDevRestartsKilledBroker: the broker child of `fjord dev` killed with
// SIGKILL is restarted on the same data directory and port, and serves every
// record it had.
func TestDevRestartsKilledBroker(t *testing.T) {
	d := startDev(t, devOptions{})
	createTopic(t, newAdmin(t, d.Bootstrap), "survivors", 3, nil)
	recs := genRecords(seedFor(t.Name()), 3000, 3, false)
	produceKgo(t, d.Bootstrap, "survivors", "none", recs)
	for round := range 2 {
		old := d.brokerPID(0)
		if old <= 0 || !isFjordProcess(old) {
			t.Fatalf("broker 0's PID file %s names no running fjord process (pid %d)", d.brokerPIDFile(0), old)
		}
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitBrokerRestarted(t, d, 0, old)
		t.Logf("round %d: pid %d killed, pid %d serves %s", round, old, d.brokerPID(0), d.Bootstrap)
		got := consumeKgo(t, d.Bootstrap, "survivors", 3, len(recs))
		checkRecords(t, "after the restart", got, recs, compareOpts{IgnoreOffsets: true})
	}
}

// TestDevMultiBrokerRestartsKilledBroker: in a 3-broker `fjord dev`, each
// broker killed with SIGKILL comes back on its advertised 127.0.0.1 address
// and back into the ISRs of a topic replicated to all three, and the cluster
// serves produces and fetches again.
func TestDevMultiBrokerRestartsKilledBroker(t *testing.T) {
	d := startDev(t, devOptions{Brokers: 3})
	var addrs map[int32]string
	waitFor(t, "3 brokers in metadata", func() bool {
		addrs = brokerAddrs(t, d.Bootstrap)
		return len(addrs) == 3
	})
	for id, addr := range addrs {
		if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
			t.Errorf("broker %d advertises %s, want 127.0.0.1", id, addr)
		}
	}
	adm := clusterAdmin(t, d)
	createReplicated(t, adm, "survivors", 6)
	recs := genRecords(seedFor(t.Name()), 600, 6, false)
	produceKgo(t, d.Bootstrap, "survivors", "none", recs)

	for _, id := range []int{2, 0} {
		old := d.brokerPID(id)
		if old <= 0 || !isFjordProcess(old) {
			t.Fatalf("broker %d's PID file %s names no running fjord process (pid %d)", id, d.brokerPIDFile(id), old)
		}
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitBrokerRestarted(t, d, id, old)
		waitKafka(t, d.proc, addrs[int32(id)])
		waitPartitions(t, adm, "survivors", time.Minute, fmt.Sprintf("broker %d back in every ISR", id), fullISR)
		t.Logf("broker %d: pid %d killed, pid %d serves %s", id, old, d.brokerPID(id), addrs[int32(id)])
	}
	got := consumeKgo(t, d.Bootstrap, "survivors", 6, len(recs))
	checkRecords(t, "after broker restarts", got, recs, compareOpts{IgnoreOffsets: true})
	more := genRecords(seedFor(t.Name()+"/more"), 600, 6, false)
	produceKgo(t, d.Bootstrap, "survivors", "none", more)
}

// TestDevStopsEverything: SIGTERM and SIGINT make `fjord dev` exit 0 and
// leave no process behind, quorum members included.
func TestDevStopsEverything(t *testing.T) {
	for _, tc := range []struct {
		sig     syscall.Signal
		brokers int
	}{
		{syscall.SIGTERM, 1},
		{syscall.SIGINT, 1},
		{syscall.SIGTERM, 3},
	} {
		t.Run(fmt.Sprintf("%v/%d brokers", tc.sig, tc.brokers), func(t *testing.T) {
			d := startDev(t, devOptions{Brokers: tc.brokers})
			waitFor(t, fmt.Sprintf("%d broker PID files", tc.brokers), func() bool {
				for id := range tc.brokers {
					if pid := d.brokerPID(id); pid <= 0 || !isFjordProcess(pid) {
						return false
					}
				}
				return true
			})
			procs := descendants(d.pid())
			var brokerPIDs, quorumPIDs []int
			for id := range tc.brokers {
				brokerPIDs = append(brokerPIDs, d.brokerPID(id))
			}
			for j := range d.Members {
				quorumPIDs = append(quorumPIDs, d.quorumPID(j))
			}
			t.Logf("supervisor %d, descendants %v, brokers %v, quorum %v", d.pid(), procs, brokerPIDs, quorumPIDs)
			if code := d.signal(tc.sig); code != 0 {
				t.Errorf("fjord dev exited with code %d after %v\nstderr:\n%s", code, tc.sig, d.stderr())
			}
			for _, pid := range slices.Concat(procs, brokerPIDs, quorumPIDs) {
				if alive(pid) {
					t.Errorf("process %d outlived fjord dev", pid)
				}
			}
		})
	}
}

// TestDevMultiBrokerLayout: `fjord dev --brokers 3` runs a three-member
// metadata quorum and three brokers with the ports, flags, racks and
// properties `fjord dev -h` documents, and a hold file keeps a broker down
// until it is removed.
func TestDevMultiBrokerLayout(t *testing.T) {
	d := startDev(t, devOptions{Brokers: 3, Props: map[string]string{"min.insync.replicas": "1", "num.partitions": "4"}})
	var endpoints []string
	for j := range 3 {
		endpoints = append(endpoints, fmt.Sprintf("http://127.0.0.1:%d", d.Port+3+2*j))
	}
	propsFile := filepath.Join(d.DataDir, "server.properties")
	for id := range 3 {
		args := cmdline(t, d.brokerPID(id))
		for flag, want := range map[string]string{
			"--node-id":            strconv.Itoa(id),
			"--listen":             d.Addrs[id],
			"--advertised":         d.Addrs[id],
			"--data-dir":           d.brokerDir(id),
			"--rack":               []string{"zone-a", "zone-b", "zone-c"}[id],
			"--metadata-endpoints": strings.Join(endpoints, ","),
			"--cluster":            "dev",
			"--config":             propsFile,
		} {
			if got := flagValue(args, flag); got != want {
				t.Errorf("broker %d runs with %s %q, want %q (%q)", id, flag, got, want, args)
			}
		}
	}
	var peers []string
	for j := range 3 {
		peers = append(peers, fmt.Sprintf("quorum-%d=http://127.0.0.1:%d", j, d.Port+3+2*j+1))
	}
	for j := range 3 {
		args := cmdline(t, d.quorumPID(j))
		for flag, want := range map[string]string{
			"--name":            fmt.Sprintf("quorum-%d", j),
			"--data-dir":        d.quorumDir(j),
			"--listen-client":   strings.TrimPrefix(endpoints[j], "http://"),
			"--listen-peer":     fmt.Sprintf("127.0.0.1:%d", d.Port+3+2*j+1),
			"--initial-cluster": strings.Join(peers, ","),
		} {
			if got := flagValue(args, flag); got != want {
				t.Errorf("quorum member %d runs with %s %q, want %q (%q)", j, flag, got, want, args)
			}
		}
		resp, err := http.Get(endpoints[j] + "/health")
		if err != nil {
			t.Errorf("quorum member %d: %v", j, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("quorum member %d: /health answers %s", j, resp.Status)
		}
	}

	b, err := os.ReadFile(propsFile)
	if err != nil {
		t.Fatal(err)
	}
	props := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			props[k] = v
		}
	}
	for k, want := range map[string]string{
		"default.replication.factor":              "3",
		"offsets.topic.replication.factor":        "3",
		"min.insync.replicas":                     "1", // --config wins
		"leader.imbalance.check.interval.seconds": "5",
		"num.partitions":                          "4",
	} {
		if props[k] != want {
			t.Errorf("%s has %s=%q, want %q", propsFile, k, props[k], want)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	brokers, err := newAdmin(t, d.Bootstrap).ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	racks := map[int32]string{}
	for _, b := range brokers {
		if b.Rack != nil {
			racks[b.NodeID] = *b.Rack
		}
	}
	if want := map[int32]string{0: "zone-a", 1: "zone-b", 2: "zone-c"}; !maps.Equal(racks, want) {
		t.Errorf("brokers' racks are %v, want %v", racks, want)
	}

	old := d.brokerPID(2)
	hold(t, d.brokerDir(2))
	waitFor(t, "held broker 2 to stop", func() bool { return !alive(old) && d.brokerPID(2) == 0 })
	time.Sleep(time.Second)
	if pid := d.brokerPID(2); pid != 0 {
		t.Fatalf("held broker 2 was started again (pid %d)", pid)
	}
	release(t, d.brokerDir(2))
	waitBrokerRestarted(t, d, 2, old)
	waitKafka(t, d.proc, d.Addrs[2])
}

// cmdline returns the arguments of process pid, without the executable.
func cmdline(t testing.TB, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		t.Fatalf("read the command line of pid %d: %v", pid, err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")[1:]
}

// flagValue returns the value after flag in args, or "" if flag is absent.
func flagValue(args []string, flag string) string {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return ""
	}
	return args[i+1]
}

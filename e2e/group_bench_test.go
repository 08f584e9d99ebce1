package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The consumer-group benchmarks reported in BENCHMARKS.md ("Consumer
// groups"). They run only with FJORD_BENCH=1:
//
//	FJORD_BENCH=1 go test ./e2e -run 'TestGroupBenchmark' -v -count=1
//
// FJORD_BENCH_RUNS (default 5 for rebalances, 3 for commits) sets the runs
// per measurement, FJORD_BENCH_SECONDS (default 3) how long each commit run
// lasts.

func benchEnv(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func requireBench(t *testing.T) {
	if os.Getenv("FJORD_BENCH") == "" {
		t.Skip("set FJORD_BENCH=1 to run the consumer-group benchmarks")
	}
}

// durationStats formats min, median and max.
func durationStats(ds []time.Duration) string {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	return fmt.Sprintf("median %s (min %s, max %s, %d runs)", ms(ds[len(ds)/2]), ms(ds[0]), ms(ds[len(ds)-1]), len(ds))
}

// ownership tracks which member owns which partitions, from the members'
// assignment callbacks, and lets a waiter block until a condition holds.
type ownership struct {
	mu      sync.Mutex
	owned   map[int]map[int32]bool // member → partitions
	changed chan struct{}          // closed and replaced on every change
}

func newOwnership() *ownership {
	return &ownership{owned: map[int]map[int32]bool{}, changed: make(chan struct{})}
}

func (o *ownership) update(member int, ps []int32, add bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.owned[member] == nil {
		o.owned[member] = map[int32]bool{}
	}
	for _, p := range ps {
		if add {
			o.owned[member][p] = true
		} else {
			delete(o.owned[member], p)
		}
	}
	close(o.changed)
	o.changed = make(chan struct{})
}

// covered reports whether exactly the given members each own at least one
// partition, no partition twice, and all partitions together.
func (o *ownership) coveredLocked(members []int, partitions int) bool {
	seen := map[int32]bool{}
	for m, ps := range o.owned {
		if !slices.Contains(members, m) && len(ps) > 0 {
			return false
		}
	}
	for _, m := range members {
		ps := o.owned[m]
		if len(ps) == 0 {
			return false
		}
		for p := range ps {
			if seen[p] {
				return false
			}
			seen[p] = true
		}
	}
	return len(seen) == partitions
}

// waitCovered blocks until members cover the partitions and returns when
// that became true.
func (o *ownership) waitCovered(t testing.TB, members []int, partitions int) time.Time {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		o.mu.Lock()
		ok, ch := o.coveredLocked(members, partitions), o.changed
		now := time.Now()
		o.mu.Unlock()
		if ok {
			return now
		}
		select {
		case <-ch:
		case <-deadline:
			o.mu.Lock()
			defer o.mu.Unlock()
			t.Fatalf("members %v do not cover %d partitions after %v: %v", members, partitions, waitTimeout, o.owned)
		}
	}
}

// TestGroupBenchmarkRebalance measures, for a group of 10 franz-go consumers
// against a `fjord broker` process (group.initial.rebalance.delay.ms=0), the
// time from the 10th member's start until all 10 own partitions, and from one
// member's Close (LeaveGroup) until the other 9 own every partition.
func TestGroupBenchmarkRebalance(t *testing.T) {
	requireBench(t)
	const (
		topic      = "bench-rebalance"
		members    = 10
		partitions = 40
	)
	runs := benchEnv("FJORD_BENCH_RUNS", 5)
	b := startBroker(t, brokerOptions{Props: fastGroupProps})
	createTopic(t, newAdmin(t, b.Addr), topic, partitions, nil)

	type config struct {
		name      string
		balancer  kgo.GroupBalancer
		heartbeat time.Duration
	}
	for _, cfg := range []config{
		{"eager range, heartbeat 3 s (default)", kgo.RangeBalancer(), 3 * time.Second},
		{"eager range, heartbeat 100 ms", kgo.RangeBalancer(), 100 * time.Millisecond},
		{"cooperative-sticky, heartbeat 3 s (default)", kgo.CooperativeStickyBalancer(), 3 * time.Second},
		{"cooperative-sticky, heartbeat 100 ms", kgo.CooperativeStickyBalancer(), 100 * time.Millisecond},
	} {
		var joins, leaves []time.Duration
		for run := range runs {
			group := fmt.Sprintf("bench-%d-%d", run, time.Now().UnixNano())
			own := newOwnership()
			clients := make([]*kgo.Client, members)
			start := func(i int) {
				cl, err := kgo.NewClient(
					kgo.SeedBrokers(b.Addr),
					kgo.ConsumerGroup(group),
					kgo.ConsumeTopics(topic),
					kgo.Balancers(cfg.balancer),
					kgo.HeartbeatInterval(cfg.heartbeat),
					kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { own.update(i, m[topic], true) }),
					kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { own.update(i, m[topic], false) }),
					kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { own.update(i, m[topic], false) }),
				)
				if err != nil {
					t.Fatal(err)
				}
				clients[i] = cl
			}
			first9 := make([]int, 0, members)
			for i := range members - 1 {
				start(i)
				first9 = append(first9, i)
			}
			own.waitCovered(t, first9, partitions)
			t0 := time.Now()
			start(members - 1)
			all := append(slices.Clone(first9), members-1)
			joins = append(joins, own.waitCovered(t, all, partitions).Sub(t0))

			t1 := time.Now()
			go clients[0].Close()
			leaves = append(leaves, own.waitCovered(t, all[1:], partitions).Sub(t1))
			var wg sync.WaitGroup
			for _, cl := range clients[1:] {
				wg.Go(cl.Close)
			}
			wg.Wait()
		}
		t.Logf("%s: 10th member joins → all 10 assigned: %s", cfg.name, durationStats(joins))
		t.Logf("%s: 1 of 10 leaves → other 9 own everything: %s", cfg.name, durationStats(leaves))
	}
}

// TestGroupBenchmarkCommits measures OffsetCommit throughput against a
// `fjord broker` process: N committers, each with its own connection, send
// synchronous OffsetCommit requests (standalone: generation -1) one after the
// other, each committing one partition's offset, which the coordinator
// appends to __consumer_offsets before answering. Each committer uses its own
// group, or all share one group. It runs with Kafka's flush policy (the page
// cache) and with log.flush.interval.messages=1 (fsync before every answer).
func TestGroupBenchmarkCommits(t *testing.T) {
	requireBench(t)
	const topic = "bench-commits"
	runs := benchEnv("FJORD_BENCH_RUNS", 3)
	secs := benchEnv("FJORD_BENCH_SECONDS", 3)
	for _, flush := range []struct {
		name  string
		props map[string]string
	}{
		{"page cache (Kafka's default flush policy)", map[string]string{}},
		{"fsync every append (log.flush.interval.messages=1)", map[string]string{"log.flush.interval.messages": "1"}},
	} {
		b := startBroker(t, brokerOptions{Props: flush.props})
		adm := newAdmin(t, b.Addr)
		createTopic(t, adm, topic, 16, nil)
		for _, mode := range []struct {
			committers int
			shared     bool
		}{{1, false}, {4, false}, {16, false}, {64, false}, {16, true}} {
			var rates []float64
			var failed int64
			for run := range runs {
				clients := make([]*kgo.Client, mode.committers)
				for i := range clients {
					clients[i] = newKgo(t, b.Addr)
				}
				var ok, bad atomic.Int64
				stop := time.Now().Add(time.Duration(secs) * time.Second)
				var wg sync.WaitGroup
				for i, cl := range clients {
					group := fmt.Sprintf("commits-%d-%d", run, i)
					if mode.shared {
						group = fmt.Sprintf("commits-%d-shared", run)
					}
					wg.Go(func() {
						ctx := context.Background()
						for off := int64(1); time.Now().Before(stop); off++ {
							req := kmsg.NewPtrOffsetCommitRequest()
							req.Group, req.Generation = group, -1
							rt := kmsg.NewOffsetCommitRequestTopic()
							rt.Topic = topic
							rp := kmsg.NewOffsetCommitRequestTopicPartition()
							rp.Partition, rp.Offset = int32(i%16), off
							rt.Partitions = append(rt.Partitions, rp)
							req.Topics = append(req.Topics, rt)
							resp, err := req.RequestWith(ctx, cl)
							if err == nil && len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 1 {
								err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
							}
							if err != nil {
								bad.Add(1)
								continue
							}
							ok.Add(1)
						}
					})
				}
				began := time.Now()
				wg.Wait()
				rates = append(rates, float64(ok.Load())/time.Since(began).Seconds())
				failed += bad.Load()
				for _, cl := range clients {
					cl.Close()
				}
			}
			if failed > 0 {
				t.Errorf("%d commits failed", failed)
			}
			slices.Sort(rates)
			what := fmt.Sprintf("%d committers, own group each", mode.committers)
			if mode.shared {
				what = fmt.Sprintf("%d committers, one shared group", mode.committers)
			}
			t.Logf("%s, %s: median %.0f commits/s (min %.0f, max %.0f, %d runs of %d s)",
				flush.name, what, rates[len(rates)/2], rates[0], rates[len(rates)-1], runs, secs)
		}
		checkOffsetsTopicFlush(t, adm, flush.props)
		b.signal(syscall.SIGTERM)
	}
}

// checkOffsetsTopicFlush logs __consumer_offsets' flush.messages, to show
// the broker property reached the coordinator's topic.
func checkOffsetsTopicFlush(t testing.TB, adm *kadm.Client, props map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatalf("describe __consumer_offsets: %v", err)
	}
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if c.Key == "flush.messages" {
				t.Logf("__consumer_offsets flush.messages = %s (broker properties %v)", c.MaybeValue(), props)
			}
		}
	}
}

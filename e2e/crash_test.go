package e2e

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const crashPartitions = 3

// ackStream produces records carrying increasing sequence numbers with
// acks=all until stopped, and remembers which sequence numbers were
// acknowledged. Record seq goes to partition seq%crashPartitions with the
// value strconv.Itoa(seq).
type ackStream struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	acked   map[int]bool
	next    int // first sequence number not yet handed to the client
	err     error
	waitN   int           // waitAcked's target
	reached chan struct{} // closed once len(acked) >= waitN
}

// startAckStream starts producing from sequence number first.
func startAckStream(t testing.TB, bootstrap, topic string, first, waitN int) *ackStream {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(bootstrap),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.MaxBufferedRecords(2000),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &ackStream{
		cl: cl, cancel: cancel, done: make(chan struct{}),
		acked: map[int]bool{}, next: first,
		waitN: waitN, reached: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		for seq := first; ctx.Err() == nil; seq++ {
			r := &kgo.Record{
				Topic:     topic,
				Partition: int32(seq % crashPartitions),
				Key:       []byte(fmt.Sprintf("p%d", seq%crashPartitions)),
				Value:     []byte(strconv.Itoa(seq)),
			}
			s.mu.Lock()
			s.next = seq + 1
			s.mu.Unlock()
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				s.mu.Lock()
				defer s.mu.Unlock()
				switch {
				case err == nil:
					s.acked[seq] = true
					if len(s.acked) == s.waitN {
						close(s.reached)
					}
				case s.err == nil:
					s.err = err
				}
			})
		}
	}()
	t.Cleanup(s.stop)
	return s
}

// stop stops producing and closes the client, failing whatever is still
// unacknowledged. It is idempotent.
func (s *ackStream) stop() {
	s.cancel()
	<-s.done
	s.cl.Close()
}

// result returns the acknowledged sequence numbers and the first sequence
// number never handed to the client; call it after stop.
func (s *ackStream) result() (map[int]bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked, s.next
}

// waitAcked waits until the stream has the number of acknowledged records
// it was started with.
func waitAcked(t testing.TB, s *ackStream) {
	t.Helper()
	select {
	case <-s.reached:
	case <-time.After(waitTimeout):
		s.mu.Lock()
		defer s.mu.Unlock()
		t.Fatalf("%d of %d records acknowledged after %v; first error: %v", len(s.acked), s.waitN, waitTimeout, s.err)
	}
}

// consumeAll reads every partition of topic from its start to its current
// end offset.
func consumeAll(t testing.TB, bootstrap, topic string) []record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	adm := newAdmin(t, bootstrap)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatalf("list start offsets of %s: %v", topic, err)
	}
	offsets := map[int32]kgo.Offset{}
	remaining := map[int32]int64{} // partition -> end offset still to reach
	ends.Each(func(o kadm.ListedOffset) {
		offsets[o.Partition] = kgo.NewOffset().AtStart()
		if s, ok := starts.Lookup(topic, o.Partition); !ok || s.Offset < o.Offset {
			remaining[o.Partition] = o.Offset
		}
	})
	var recs []record
	if len(remaining) == 0 {
		return recs
	}
	cl := newKgo(t, bootstrap, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: %d records read, partitions not at their end: %v", topic, len(recs), remaining)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(kr *kgo.Record) {
			if end, ok := remaining[kr.Partition]; ok {
				recs = append(recs, fromKgo(kr))
				if kr.Offset >= end-1 {
					delete(remaining, kr.Partition)
				}
			}
		})
	}
	return recs
}

// checkAcked checks that every acknowledged sequence number is in recs, that
// each partition's sequence numbers increase, and that no record is there
// twice. It returns the highest sequence number seen.
func checkAcked(t testing.TB, recs []record, acked map[int]bool) int {
	t.Helper()
	seen := map[int]bool{}
	last := map[int32]int{}
	highest := -1
	for _, r := range recs {
		seq, err := strconv.Atoi(string(r.Value))
		if err != nil {
			t.Fatalf("partition %d offset %d: value %q is no sequence number", r.Partition, r.Offset, r.Value)
		}
		if int32(seq%crashPartitions) != r.Partition {
			t.Errorf("partition %d offset %d: sequence number %d belongs in partition %d", r.Partition, r.Offset, seq, seq%crashPartitions)
		}
		if prev, ok := last[r.Partition]; ok && seq <= prev {
			t.Errorf("partition %d offset %d: sequence number %d after %d: out of order or duplicated", r.Partition, r.Offset, seq, prev)
		}
		last[r.Partition] = seq
		seen[seq] = true
		highest = max(highest, seq)
	}
	var lost []int
	for seq := range acked {
		if !seen[seq] {
			lost = append(lost, seq)
		}
	}
	if len(lost) > 0 {
		if len(lost) > 10 {
			lost = lost[:10]
		}
		t.Errorf("%d acknowledged records lost, e.g. sequence numbers %v", len(lost), lost)
	}
	return highest
}

// crashRound streams acks=all produces into topic from sequence number first,
// calls kill once at least minAcked records are acknowledged, waits for
// restart to bring the broker back, and checks every acknowledged record is
// there. It returns the next sequence number to use.
func crashRound(t *testing.T, bootstrap, topic string, first, minAcked int, kill, restart func()) int {
	s := startAckStream(t, bootstrap, topic, first, minAcked)
	waitAcked(t, s)
	kill()
	s.stop()
	acked, next := s.result()
	t.Logf("killed with %d records acknowledged, %d sent", len(acked), next-first)
	restart()
	recs := consumeAll(t, bootstrap, topic)
	checkAcked(t, recs, acked)
	return next
}

// checkProduceWorks produces n more records after a restart and reads them
// back behind the old ones.
func checkProduceWorks(t *testing.T, bootstrap, topic string, first, n int) {
	cl := newKgo(t, bootstrap,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	acked := map[int]bool{}
	var rs []*kgo.Record
	for seq := first; seq < first+n; seq++ {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(seq % crashPartitions), Value: []byte(strconv.Itoa(seq))})
		acked[seq] = true
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce after restart: %v", err)
	}
	recs := consumeAll(t, bootstrap, topic)
	if highest := checkAcked(t, recs, acked); highest != first+n-1 {
		t.Errorf("highest sequence number after restart is %d, want %d", highest, first+n-1)
	}
}

// TestCrashSafetyBrokerSIGKILL kills `fjord broker` with SIGKILL in the middle
// of a stream of acks=all produces, restarts it on the same data directory,
// and checks that every acknowledged record is there, in order, and that new
// produces succeed. It does so several times on the same log.
func TestCrashSafetyBrokerSIGKILL(t *testing.T) {
	b := startBroker(t, brokerOptions{})
	const topic = "crash-broker"
	createTopic(t, newAdmin(t, b.Addr), topic, crashPartitions, nil)
	next := 0
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	for round := range rounds {
		next = crashRound(t, b.Addr, topic, next, 3000*(round+1),
			func() {
				if code := b.signal(syscall.SIGKILL); code != -1 {
					t.Logf("broker exit code %d after SIGKILL", code)
				}
			},
			func() { b = b.restart(t) },
		)
		if t.Failed() {
			return
		}
	}
	checkProduceWorks(t, b.Addr, topic, next, 1000)
}

// TestCrashSafetyDevBrokerSIGKILL kills the broker child of `fjord dev` (by
// the PID in its broker.pid) mid-stream and relies on the supervisor to
// restart it.
func TestCrashSafetyDevBrokerSIGKILL(t *testing.T) {
	d := startDev(t, devOptions{})
	const topic = "crash-dev"
	createTopic(t, newAdmin(t, d.Bootstrap), topic, crashPartitions, nil)
	var oldPID int
	next := crashRound(t, d.Bootstrap, topic, 0, 3000,
		func() {
			oldPID = d.brokerPID(0)
			if oldPID <= 0 || !isFjordProcess(oldPID) {
				t.Fatalf("broker 0's PID file %s names no running fjord process (pid %d)", d.brokerPIDFile(0), oldPID)
			}
			if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		},
		func() { waitBrokerRestarted(t, d, 0, oldPID) },
	)
	if t.Failed() {
		return
	}
	checkProduceWorks(t, d.Bootstrap, topic, next, 1000)
}

// waitBrokerRestarted waits until `fjord dev` has replaced broker id's killed
// process oldPID with a new one that answers on the bootstrap address.
func waitBrokerRestarted(t testing.TB, d *devCluster, id, oldPID int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("fjord dev to restart broker %d (was pid %d)", id, oldPID), func() bool {
		if d.exited() {
			t.Fatalf("fjord dev exited (%v) after its broker was killed\nstderr:\n%s", d.err, d.stderr())
		}
		pid := d.brokerPID(id)
		return pid > 0 && pid != oldPID && isFjordProcess(pid)
	})
	waitKafka(t, d.proc, d.Bootstrap)
}

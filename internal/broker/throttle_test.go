package broker_test

import (
	"context"
	"crypto/rand"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A follower restarted after ~2 MB were written while it was away catches
// up no faster than the replication throttles allow, while acks=1 produces
// keep working; removing the throttles lets it finish.
func TestReplicationThrottle(t *testing.T) {
	const (
		rate    = 200_000 // bytes per second, both sides
		records = 200
		size    = 10_000 // bytes per record: ~2 MB in all
	)
	c := newTestCluster(t, 3, map[string]string{"auto.leader.rebalance.enable": "false"})
	adm := kadm.NewClient(c.client())
	ctx := t.Context()
	all := kadm.StringPtr("*")
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{
		"leader.replication.throttled.replicas":   all,
		"follower.replication.throttled.replicas": all,
	}, "thr"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "a full ISR", func() bool { return allInSync(partitionState(t, c, "thr"), 3) })
	ps := partitionState(t, c, "thr")[0]
	leader := ps.Leader
	away := ps.Replicas[slices.IndexFunc(ps.Replicas, func(r int32) bool { return r != leader })]
	c.stop(away)
	eventually(t, 30*time.Second, "the stopped broker out of the ISR", func() bool {
		ps := partitionState(t, c, "thr")
		return ps != nil && len(ps[0].ISR) == 2
	})

	// One record per batch (produced one at a time), so that a response
	// overshoots its cut by at most one small batch.
	prod := c.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	for range records {
		v := make([]byte, size)
		rand.Read(v)
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "thr", Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	logSize := func(broker int32) int64 {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		dirs, err := adm.DescribeBrokerLogDirs(ctx, broker, kadm.TopicsSet{"thr": {0: {}}})
		if err != nil {
			return -1
		}
		var n int64 = -1
		dirs.Each(func(d kadm.DescribedLogDir) {
			d.Topics.Each(func(p kadm.DescribedLogDirPartition) { n = p.Size })
		})
		return n
	}
	total := logSize(leader)
	if total < records*size {
		t.Fatalf("the leader's log holds %d bytes, want at least %d", total, records*size)
	}

	// The leader's rate on the leader alone, the follower's as the cluster
	// default: both kinds of dynamic broker config.
	set := func(name string, value *string, brokers ...int32) {
		t.Helper()
		op := kadm.SetConfig
		if value == nil {
			op = kadm.DeleteConfig
		}
		resps, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: op, Name: name, Value: value}}, brokers...)
		if err == nil {
			for _, r := range resps {
				if r.Err != nil {
					err = r.Err
				}
			}
		}
		if err != nil {
			t.Fatalf("alter %s: %v", name, err)
		}
	}
	r := kadm.StringPtr(strconv.Itoa(rate))
	set("leader.replication.throttled.rate", r, leader)
	set("follower.replication.throttled.rate", r)

	// acks=1 produces keep working while the follower catches up.
	var (
		wg         sync.WaitGroup
		stop       = make(chan struct{})
		produced   int
		produceErr error
		slowest    time.Duration
	)
	acks1 := c.client(kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			start := time.Now()
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := acks1.ProduceSync(pctx, &kgo.Record{Topic: "thr", Value: []byte("small")}).FirstErr()
			cancel()
			if err != nil {
				produceErr = err
				return
			}
			produced++
			slowest = max(slowest, time.Since(start))
		}
	}()

	c.start(away)
	// The follower's log was empty: from when its first bytes show (it has
	// fetched by then) until it has three quarters of the log, the
	// throttles let through at most rate·(t + 1 s) plus one batch, so it
	// takes at least half the time the bytes take at the rate.
	var t0, t1 time.Time
	var s0, s1 int64
	eventually(t, 2*time.Minute, "the follower to copy 3/4 of the log", func() bool {
		n := logSize(away)
		if n <= 0 {
			return false
		}
		if t0.IsZero() {
			t0, s0 = time.Now(), n
		}
		t1, s1 = time.Now(), n
		return n >= total*3/4
	})
	took := t1.Sub(t0)
	atRate := time.Duration(float64(s1) / rate * float64(time.Second))
	t.Logf("the follower had %d bytes at first sight, %d after %v more (%.0f B/s; throttled at %d B/s)",
		s0, s1, took, float64(s1-s0)/took.Seconds(), rate)
	if took < atRate/2 {
		t.Errorf("the follower copied %d bytes in %v: under half the %v the throttle allows", s1, took, atRate)
	}
	if ps := partitionState(t, c, "thr"); ps != nil && len(ps[0].ISR) != 2 {
		t.Errorf("ISR %v while the follower is still behind", ps[0].ISR)
	}

	// Without the throttles it finishes and rejoins the ISR.
	set("leader.replication.throttled.rate", nil, leader)
	set("follower.replication.throttled.rate", nil)
	eventually(t, 30*time.Second, "the follower back in the ISR", func() bool { return allInSync(partitionState(t, c, "thr"), 3) })
	close(stop)
	wg.Wait()
	if produceErr != nil {
		t.Fatalf("acks=1 produce while the follower caught up: %v", produceErr)
	}
	if produced == 0 {
		t.Fatal("no acks=1 produce completed while the follower caught up")
	}
	t.Logf("%d acks=1 produces meanwhile, the slowest in %v", produced, slowest)
}

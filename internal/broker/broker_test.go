package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/fjord-io/fjord/internal/broker"
)

// startBroker runs an in-process broker on a loopback port until the test
// ends, and returns its address.
func startBroker(t *testing.T, dir string, props map[string]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	b, err := broker.New(broker.Config{NodeID: 0, Listen: addr, Advertised: addr, DataDir: dir, Props: props})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return addr
}

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	addr := startBroker(t, t.TempDir(), nil)
	ctx := t.Context()
	adm := kadm.NewClient(newClient(t, addr))
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		t.Run(fmt.Sprint(codec), func(t *testing.T) {
			topic := "events-" + strconv.Itoa(int(time.Now().UnixNano()%1e6))
			if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			prod := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec), kgo.RequiredAcks(kgo.AllISRAcks()))
			const n = 2000
			want := map[string]string{}
			for i := 0; i < n; i++ {
				k, v := "k"+strconv.Itoa(i), "value-"+strconv.Itoa(i*7)
				want[k] = v
				prod.Produce(ctx, &kgo.Record{Key: []byte(k), Value: []byte(v), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(k)}}}, nil)
			}
			if err := prod.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			cons := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			got := map[string]string{}
			lastOffset := map[int32]int64{}
			for len(got) < n {
				fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				fs := cons.PollFetches(fctx)
				cancel()
				if err := fs.Err0(); err != nil {
					t.Fatalf("poll after %d records: %v", len(got), err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					if last, ok := lastOffset[r.Partition]; ok && r.Offset != last+1 {
						t.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, last)
					}
					lastOffset[r.Partition] = r.Offset
					if len(r.Headers) != 1 || string(r.Headers[0].Value) != string(r.Key) {
						t.Errorf("record %s: headers %v", r.Key, r.Headers)
					}
					got[string(r.Key)] = string(r.Value)
				})
			}
			for k, v := range want {
				if got[k] != v {
					t.Fatalf("key %s: got %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	produce := func(addr string, from, to int) {
		cl := newClient(t, addr, kgo.DefaultProduceTopic("durable"), kgo.AllowAutoTopicCreation())
		for i := from; i < to; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		cl.Close()
	}
	{
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		b, err := broker.New(broker.Config{Listen: addr, DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- b.Serve(sctx, ln) }()
		produce(addr, 0, 100)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	addr := startBroker(t, dir, nil)
	produce(addr, 100, 150)
	cons := newClient(t, addr, kgo.ConsumeTopics("durable"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < 150 {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := cons.PollFetches(fctx)
		cancel()
		if err := fs.Err0(); err != nil {
			t.Fatalf("after %d: %v", len(got), err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, v := range got {
		if v != strconv.Itoa(i) {
			t.Fatalf("record %d = %s", i, v)
		}
	}
}

func TestAdminRoundTrip(t *testing.T) {
	addr := startBroker(t, t.TempDir(), map[string]string{"log.retention.hours": "48"})
	ctx := t.Context()
	adm := kadm.NewClient(newClient(t, addr))

	retention := "3600000"
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": &retention}, "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "admin"); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("duplicate create: %v, want TOPIC_ALREADY_EXISTS", err)
	}
	bad := "forever"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": &bad}, "bad-config"); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("bad config: %v, want INVALID_CONFIG", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, "rf3"); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("rf 3: %v, want INVALID_REPLICATION_FACTOR", err)
	}

	rc, err := adm.DescribeTopicConfigs(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rc.On("admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]kadm.Config{}
	for _, c := range cfg.Configs {
		values[c.Key] = c
	}
	if c := values["retention.ms"]; c.MaybeValue() != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms = %q from %v", c.MaybeValue(), c.Source)
	}
	if c := values["cleanup.policy"]; c.MaybeValue() != "delete" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("cleanup.policy = %q from %v", c.MaybeValue(), c.Source)
	}

	compact := "compact"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "cleanup.policy", Value: &compact}, {Name: "retention.ms", Op: kadm.DeleteConfig}}, "admin"); err != nil {
		t.Fatal(err)
	}
	rc, _ = adm.DescribeTopicConfigs(ctx, "admin")
	cfg, _ = rc.On("admin", nil)
	for _, c := range cfg.Configs {
		switch c.Key {
		case "cleanup.policy":
			if c.MaybeValue() != "compact" {
				t.Errorf("after alter cleanup.policy = %q", c.MaybeValue())
			}
		case "retention.ms":
			// Falls back to the broker's log.retention.hours.
			if c.MaybeValue() != "172800000" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
				t.Errorf("after delete retention.ms = %q from %v", c.MaybeValue(), c.Source)
			}
		}
	}

	if _, err := adm.CreatePartitions(ctx, 2, "admin"); err != nil {
		t.Fatal(err)
	}
	if r, err := adm.CreatePartitions(ctx, -3, "admin"); err == nil {
		if e := r["admin"].Err; !errors.Is(e, kerr.InvalidPartitions) {
			t.Errorf("shrink: %v, want INVALID_PARTITIONS", e)
		}
	}
	md, err := adm.ListTopics(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(md["admin"].Partitions); n != 4 {
		t.Errorf("partitions = %d, want 4", n)
	}
	if _, err := adm.DeleteTopics(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	md, _ = adm.ListTopics(ctx)
	if _, ok := md["admin"]; ok {
		t.Error("topic still listed after delete")
	}
}

func TestListOffsetsAndDeleteRecords(t *testing.T) {
	addr := startBroker(t, t.TempDir(), nil)
	ctx := t.Context()
	cl := newClient(t, addr, kgo.DefaultProduceTopic("offsets"), kgo.AllowAutoTopicCreation())
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Minute)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	end, err := adm.ListEndOffsets(ctx, "offsets")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := end.Lookup("offsets", 0); o.Offset != 10 {
		t.Errorf("end offset %d, want 10", o.Offset)
	}
	byTime, err := adm.ListOffsetsAfterMilli(ctx, base.Add(4*time.Minute+time.Second).UnixMilli(), "offsets")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := byTime.Lookup("offsets", 0); o.Offset != 5 {
		t.Errorf("offset after 4m = %d, want 5", o.Offset)
	}
	if _, err := adm.DeleteRecords(ctx, kadm.Offsets{"offsets": {0: {Topic: "offsets", Partition: 0, At: 4}}}); err != nil {
		t.Fatal(err)
	}
	start, err := adm.ListStartOffsets(ctx, "offsets")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := start.Lookup("offsets", 0); o.Offset != 4 {
		t.Errorf("start offset %d after DeleteRecords(4), want 4", o.Offset)
	}
}

func TestLongPollWakesOnProduce(t *testing.T) {
	addr := startBroker(t, t.TempDir(), nil)
	ctx := t.Context()
	cl := newClient(t, addr, kgo.DefaultProduceTopic("poll"), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("first")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Park a fetch at the log end with a long MaxWait and MinBytes 1. A fetch
	// that is never woken answers empty when MaxWait runs out, so getting the
	// record back proves the produce woke it.
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.MaxWaitMillis = 60_000
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	md, err := kadm.NewClient(cl).ListTopics(ctx, "poll")
	if err != nil {
		t.Fatal(err)
	}
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "poll"
	rt.TopicID = md["poll"].ID // kgo sends the highest version both sides know (v13+ names topics by id)
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = 1
	rp.PartitionMaxBytes = 1 << 20
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	fetcher := newClient(t, addr)
	type result struct {
		resp *kmsg.FetchResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := req.RequestWith(ctx, fetcher)
		done <- result{resp, err}
	}()
	// Produce until the parked fetch answers: the first produce may land
	// before the fetch is parked, in which case the fetch sees it at once.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("second")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	p := r.resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
		t.Fatalf("fetch returned error %d with %d record bytes; want the second record", p.ErrorCode, len(p.RecordBatches))
	}
	if p.HighWatermark != 2 {
		t.Errorf("high watermark %d, want 2", p.HighWatermark)
	}
}

func TestAcksAllNeedsMinInsyncReplicas(t *testing.T) {
	addr := startBroker(t, t.TempDir(), nil)
	ctx := t.Context()
	two := "2"
	adm := kadm.NewClient(newClient(t, addr))
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"min.insync.replicas": &two}, "isr2"); err != nil {
		t.Fatal(err)
	}
	all := newClient(t, addr, kgo.DefaultProduceTopic("isr2"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1), kgo.DisableIdempotentWrite())
	if err := all.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with 1 of min.insync.replicas=2: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	one := newClient(t, addr, kgo.DefaultProduceTopic("isr2"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := one.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("acks=1 ignores min.insync.replicas, got %v", err)
	}
}

// TestOldMessageFormats produces and consumes with clients pinned to Kafka
// 0.9 (magic 0) and 0.10 (magic 1) protocol versions, across formats.
func TestOldMessageFormats(t *testing.T) {
	addr := startBroker(t, t.TempDir(), nil)
	ctx := t.Context()
	if _, err := kadm.NewClient(newClient(t, addr)).CreateTopic(ctx, 1, 1, nil, "old"); err != nil {
		t.Fatal(err)
	}
	clients := []struct {
		name string
		opts []kgo.Opt
	}{
		{"kafka-0.9", []kgo.Opt{kgo.MaxVersions(kversion.V0_9_0())}},
		{"kafka-0.10", []kgo.Opt{kgo.MaxVersions(kversion.V0_10_0())}},
		{"current", nil},
	}
	var want []string
	for _, c := range clients {
		for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression()} {
			opts := append([]kgo.Opt{kgo.DefaultProduceTopic("old"), kgo.ProducerBatchCompression(codec), kgo.DisableIdempotentWrite()}, c.opts...)
			p := newClient(t, addr, opts...)
			for i := 0; i < 3; i++ {
				v := fmt.Sprintf("%s-%v-%d", c.name, codec, i)
				want = append(want, v)
				p.Produce(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(v)}, nil)
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatalf("%s produce: %v", c.name, err)
			}
		}
	}
	for _, c := range clients {
		cons := newClient(t, addr, append([]kgo.Opt{kgo.ConsumeTopics("old"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, c.opts...)...)
		var got []string
		for len(got) < len(want) {
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			fs := cons.PollFetches(fctx)
			cancel()
			if err := fs.Err0(); err != nil {
				t.Fatalf("%s consume after %d: %v", c.name, len(got), err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != int64(len(got)) {
					t.Errorf("%s: offset %d at position %d", c.name, r.Offset, len(got))
				}
				got = append(got, string(r.Value))
			})
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s consumer: record %d = %q, want %q", c.name, i, got[i], want[i])
			}
		}
	}
}

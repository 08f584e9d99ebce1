package broker_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/broker"
	"github.com/fjord-io/fjord/internal/record"
)

// serveUntil runs an in-process broker on dir until the returned stop is
// called (or the test ends) and returns its address.
func serveUntil(t *testing.T, dir string) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	b, err := broker.New(broker.Config{Listen: addr, DataDir: dir})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, ln) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return addr, stop
}

// idempotentBatch builds a batch of n records "<tag>-<i>" from producer pid
// at epoch, starting at sequence seq.
func idempotentBatch(t *testing.T, pid int64, epoch int16, seq int32, n int, tag string) []byte {
	t.Helper()
	now := time.Now().UnixMilli()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{OffsetDelta: int32(i), Value: []byte(tag + "-" + strconv.Itoa(i))}
	}
	b, err := record.Build(record.Header{
		LastOffsetDelta: int32(n - 1),
		FirstTimestamp:  now,
		MaxTimestamp:    now,
		ProducerID:      pid,
		ProducerEpoch:   epoch,
		BaseSequence:    seq,
	}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// produceRaw sends one batch to topic partition 0 and returns the
// partition's response.
func produceRaw(t *testing.T, cl *kgo.Client, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	sp, err := tryProduceRaw(t.Context(), cl, topic, batch)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// tryProduceRaw is produceRaw for any goroutine: it returns its errors.
func tryProduceRaw(ctx context.Context, cl *kgo.Client, topic string, batch []byte) (kmsg.ProduceResponseTopicPartition, error) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 0
	rp.Records = append([]byte(nil), batch...) // the broker may not keep ours
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return kmsg.ProduceResponseTopicPartition{}, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return kmsg.ProduceResponseTopicPartition{}, fmt.Errorf("produce response %+v", resp)
	}
	return resp.Topics[0].Partitions[0], nil
}

func initProducerID(t *testing.T, cl *kgo.Client, version int16, txnID *string, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = version
	req.TransactionalID = txnID
	req.TransactionTimeoutMillis = 60_000
	req.ProducerID, req.ProducerEpoch = pid, epoch
	resp, err := req.RequestWith(t.Context(), cl.Broker(0))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// logRecords returns the values of every record of topic partition 0.
func logRecords(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	ctx := t.Context()
	ends, err := kadm.NewClient(newClient(t, addr)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	cons := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	var recs []*kgo.Record
	for int64(len(recs)) < end.Offset {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := cons.PollFetches(fctx)
		cancel()
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll after %d of %d records: %v", len(recs), end.Offset, err)
		}
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func TestIdempotentProduce(t *testing.T) {
	dir := t.TempDir()
	addr, stop := serveUntil(t, dir)
	ctx := t.Context()
	const topic = "idem"
	if _, err := kadm.NewClient(newClient(t, addr)).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}

	// franz-go is idempotent by default once InitProducerID answers.
	prod := newClient(t, addr, kgo.DefaultProduceTopic(topic))
	for i := range 100 {
		prod.Produce(ctx, &kgo.Record{Value: []byte("kgo-" + strconv.Itoa(i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	raw := newClient(t, addr)
	if r := initProducerID(t, raw, 4, new("txn"), -1, -1); r.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Errorf("transactional id: error %d, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", r.ErrorCode)
	}
	if r := initProducerID(t, raw, 3, nil, 5, -1); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("id without epoch: error %d, want INVALID_REQUEST", r.ErrorCode)
	}
	init := initProducerID(t, raw, 0, nil, -1, -1)
	if init.ErrorCode != 0 || init.ProducerID < 0 || init.ProducerEpoch != 0 {
		t.Fatalf("InitProducerID v0: %+v", init)
	}
	pid := init.ProducerID
	// KIP-360: a producer presenting its id and epoch gets a fresh id, as
	// Kafka gives producers without a transactional id.
	if r := initProducerID(t, raw, 4, nil, pid, 0); r.ErrorCode != 0 || r.ProducerID <= pid || r.ProducerEpoch != 0 {
		t.Fatalf("InitProducerID v4 with id %d: %+v", pid, r)
	}

	first := idempotentBatch(t, pid, 0, 0, 3, "a")
	sp := produceRaw(t, raw, topic, first)
	if sp.ErrorCode != 0 || sp.BaseOffset != 100 {
		t.Fatalf("first batch: error %d offset %d, want offset 100", sp.ErrorCode, sp.BaseOffset)
	}
	if sp = produceRaw(t, raw, topic, first); sp.ErrorCode != 0 || sp.BaseOffset != 100 {
		t.Fatalf("duplicate: error %d offset %d, want the original offset 100", sp.ErrorCode, sp.BaseOffset)
	}
	if sp = produceRaw(t, raw, topic, idempotentBatch(t, pid, 0, 3, 2, "b")); sp.ErrorCode != 0 || sp.BaseOffset != 103 {
		t.Fatalf("next batch: error %d offset %d, want 103", sp.ErrorCode, sp.BaseOffset)
	}
	if sp = produceRaw(t, raw, topic, idempotentBatch(t, pid, 0, 9, 1, "gap")); sp.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: error %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", sp.ErrorCode)
	}
	if sp = produceRaw(t, raw, topic, idempotentBatch(t, pid, 1, 0, 1, "c")); sp.ErrorCode != 0 || sp.BaseOffset != 105 {
		t.Fatalf("bumped epoch: error %d offset %d, want 105", sp.ErrorCode, sp.BaseOffset)
	}
	if sp = produceRaw(t, raw, topic, idempotentBatch(t, pid, 0, 5, 1, "fenced")); sp.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("old epoch: error %d, want INVALID_PRODUCER_EPOCH", sp.ErrorCode)
	}

	checkLog := func() {
		t.Helper()
		recs := logRecords(t, addr, topic)
		seen := map[string]bool{}
		for _, r := range recs {
			if seen[string(r.Value)] {
				t.Fatalf("record %q twice in the log", r.Value)
			}
			seen[string(r.Value)] = true
			if r.ProducerID < 0 {
				t.Fatalf("record %q at %d has no producer id", r.Value, r.Offset)
			}
		}
		if len(recs) != 106 {
			t.Fatalf("%d records in the log, want 106", len(recs))
		}
	}
	checkLog()

	// After a restart the partition still knows the producer (from its
	// snapshot), and producer ids are not handed out again.
	stop()
	addr, _ = serveUntil(t, dir)
	raw = newClient(t, addr)
	if sp = produceRaw(t, raw, topic, idempotentBatch(t, pid, 1, 0, 1, "c")); sp.ErrorCode != 0 || sp.BaseOffset != 105 {
		t.Fatalf("duplicate after restart: error %d offset %d, want 105", sp.ErrorCode, sp.BaseOffset)
	}
	if sp = produceRaw(t, raw, topic, idempotentBatch(t, pid, 1, 3, 1, "gap")); sp.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap after restart: error %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", sp.ErrorCode)
	}
	if r := initProducerID(t, raw, 5, nil, -1, -1); r.ErrorCode != 0 || r.ProducerID <= pid+1 {
		t.Fatalf("InitProducerID after restart: %+v; ids up to %d were handed out", r, pid+1)
	}
	checkLog()
}

// TestIdempotentProduceConcurrentDuplicates sends one batch on several
// connections at once: it must be appended once.
func TestIdempotentProduceConcurrentDuplicates(t *testing.T) {
	addr, _ := serveUntil(t, t.TempDir())
	const topic = "idem-race"
	if _, err := kadm.NewClient(newClient(t, addr)).CreateTopic(t.Context(), 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	clients := make([]*kgo.Client, 8)
	for i := range clients {
		clients[i] = newClient(t, addr)
	}
	pid := initProducerID(t, clients[0], 4, nil, -1, -1).ProducerID
	for round := range 10 {
		b := idempotentBatch(t, pid, 0, int32(round*2), 2, fmt.Sprint("r", round))
		offsets := make(chan int64, len(clients))
		for _, cl := range clients {
			go func() {
				sp, err := tryProduceRaw(t.Context(), cl, topic, b)
				if err == nil && sp.ErrorCode != 0 {
					err = kerr.ErrorForCode(sp.ErrorCode)
				}
				if err != nil {
					t.Errorf("round %d: %v", round, err)
				}
				offsets <- sp.BaseOffset
			}()
		}
		for range clients {
			if off := <-offsets; off != int64(round*2) {
				t.Fatalf("round %d: offset %d, want %d", round, off, round*2)
			}
		}
	}
	if recs := logRecords(t, addr, topic); len(recs) != 20 {
		t.Fatalf("%d records, want 20", len(recs))
	}
}

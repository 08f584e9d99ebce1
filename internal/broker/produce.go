package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/partition"
	"github.com/fjord-io/fjord/internal/record"
)

// Produce (key 0), v3-v11: appends record batches to partition leaders.
// acks 0 (no response), 1 and -1 (all in-sync replicas; with a single replica
// the same as 1). Batches are validated (magic 2, CRC-32C) and stored as sent,
// except that offsets and leader epoch are assigned in place, LogAppendTime
// topics get the broker's timestamp, and a topic whose compression.type names
// a codec has batches in other codecs re-encoded. Transactional produce is not
// supported yet.
//
// Idempotent producers (batches with a producer id, from InitProducerID) get
// KIP-98's guarantees from the partition (partition.AppendLeader): a retried
// batch is answered with its original offset and not appended twice, a
// sequence gap gets OUT_OF_ORDER_SEQUENCE_NUMBER and a fenced epoch
// INVALID_PRODUCER_EPOCH. Such a produce must hold one batch per partition,
// as Kafka requires (INVALID_RECORD otherwise).

func (b *Broker) handleProduce(ctx context.Context, req *kmsg.ProduceRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var waits []replicationWait
	var reqErr error
	switch {
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		reqErr = kerrf(kerr.InvalidRequiredAcks, "acks must be 0, 1 or -1 (all), not %d", req.Acks)
	case req.TransactionID != nil:
		reqErr = kerrf(kerr.TransactionalIDAuthorizationFailed, "transactional producers are not supported yet")
	}
	now := time.Now()
	resp.Topics = make([]kmsg.ProduceResponseTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, 0, len(rt.Partitions))
		ts := b.parts.topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			err := reqErr
			var p *partition.Partition
			if err == nil {
				if ts == nil || rp.Partition < 0 || int(rp.Partition) >= len(ts.parts) {
					err = kerrf(kerr.UnknownTopicOrPartition, "topic %q partition %d does not exist", rt.Topic, rp.Partition)
				} else if p = ts.parts[rp.Partition]; p == nil || !p.IsLeader() {
					// Checked before anything else (min.insync.replicas
					// included): the client must look for the leader.
					err = kerrf(kerr.NotLeaderForPartition, "broker %d does not lead %s-%d", b.cfg.NodeID, rt.Topic, rp.Partition)
				}
			}
			var end int64
			if err == nil {
				end, err = b.produceTo(p, req.Version, req.Acks, rp.Records, now, &sp)
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				sp.ErrorMessage = errorMessage(err)
			} else if req.Acks == -1 {
				waits = append(waits, replicationWait{topic: len(resp.Topics), part: len(st.Partitions), p: p, epoch: p.LeaderEpoch(), end: end})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		return nil
	}
	if len(waits) > 0 {
		b.awaitReplication(ctx, resp, waits, time.Duration(req.TimeoutMillis)*time.Millisecond)
	}
	return resp
}

// replicated reports whether every wait is already satisfied (always, with
// one replica), so that awaitReplication can skip setting up waiters.
func replicated(waits []replicationWait) bool {
	for _, w := range waits {
		if w.p.HighWatermark() < w.end || int64(w.p.ISRSize()) < w.p.Config().Int64("min.insync.replicas") {
			return false
		}
	}
	return true
}

// replicationWait is an acks=all append waiting for the ISR: the high
// watermark must pass end.
type replicationWait struct {
	topic, part int // indexes into the response
	p           *partition.Partition
	epoch       int32
	end         int64
	done        bool
}

// awaitReplication holds an acks=all response until every appended
// partition's high watermark covers its append, as Kafka's delayed produce
// does: a partition whose leadership moves meanwhile answers
// NOT_LEADER_OR_FOLLOWER, one whose ISR has fallen below
// min.insync.replicas NOT_ENOUGH_REPLICAS_AFTER_APPEND, and one still
// waiting after the request's timeout REQUEST_TIMED_OUT. The records stay
// in the log either way; a retry of an idempotent producer is deduplicated.
func (b *Broker) awaitReplication(ctx context.Context, resp *kmsg.ProduceResponse, waits []replicationWait, timeout time.Duration) {
	if replicated(waits) {
		return
	}
	wake := make(chan struct{}, 1)
	for _, w := range waits {
		defer w.p.Wait(wake)()
	}
	fail := func(w *replicationWait, err error) {
		sp := &resp.Topics[w.topic].Partitions[w.part]
		sp.ErrorCode, sp.ErrorMessage = errorCode(err), errorMessage(err)
		w.done = true
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		pending := 0
		for i := range waits {
			w := &waits[i]
			switch {
			case w.done:
			case !w.p.IsLeader() || w.p.LeaderEpoch() != w.epoch:
				fail(w, kerrf(kerr.NotLeaderForPartition, "leadership of %s-%d moved while the produce waited for its replicas", w.p.Topic, w.p.Index))
			case w.p.HighWatermark() >= w.end:
				w.done = true
				if minISR := w.p.Config().Int64("min.insync.replicas"); int64(w.p.ISRSize()) < minISR {
					fail(w, kerrf(kerr.NotEnoughReplicasAfterAppend, "%s-%d has %d in-sync replicas, fewer than its min.insync.replicas=%d", w.p.Topic, w.p.Index, w.p.ISRSize(), minISR))
				}
			default:
				pending++
			}
		}
		if pending == 0 {
			return
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
		case <-timer.C:
			for i := range waits {
				if w := &waits[i]; !w.done {
					fail(w, kerrf(kerr.RequestTimedOut, "%s-%d: the in-sync replicas did not all confirm the records within the request timeout of %v", w.p.Topic, w.p.Index, timeout))
				}
			}
			return
		}
	}
}

// produceTo appends records to p and returns the offset after the last
// record appended (or, for a duplicate, the original's).
func (b *Broker) produceTo(p *partition.Partition, version, acks int16, records []byte, now time.Time, sp *kmsg.ProduceResponseTopicPartition) (int64, error) {
	cfg := p.Config()
	switch {
	case version <= 2:
		// Produce v0-v2 carry magic 0/1 message sets; store them as v2.
		converted, err := record.UpConvert(records)
		if err != nil {
			return 0, err
		}
		records = converted
	case record.IsMessageSet(records):
		return 0, kerrf(kerr.InvalidRecord, "produce v%d must carry record batches (magic 2), not a magic 0/1 message set", version)
	}
	// acks=all needs min.insync.replicas in-sync replicas before the append.
	if isr := int64(p.ISRSize()); acks == -1 && cfg.Int64("min.insync.replicas") > isr {
		return 0, kerrf(kerr.NotEnoughReplicas, "%s-%d has %d in-sync replicas, fewer than its min.insync.replicas=%d", p.Topic, p.Index, isr, cfg.Int64("min.insync.replicas"))
	}
	hs, err := record.ValidateProduce(records)
	if err != nil {
		return 0, err
	}
	if len(hs) == 0 {
		return 0, kerrf(kerr.CorruptMessage, "the request holds no record batch")
	}
	max := cfg.Int64("max.message.bytes")
	for _, h := range hs {
		if int64(h.Size()) > max {
			return 0, kerrf(kerr.MessageTooLarge, "batch of %d bytes exceeds max.message.bytes=%d of topic %s", h.Size(), max, p.Topic)
		}
		if h.Transactional() {
			return 0, kerrf(kerr.TransactionalIDAuthorizationFailed, "transactional batches are not supported yet")
		}
	}
	if cfg.Compact() {
		if err := requireKeys(records, hs); err != nil {
			return 0, err
		}
	}
	if want := cfg.String("compression.type"); want != "producer" {
		if records, err = recompress(records, hs, want); err != nil {
			return 0, err
		}
	}
	logAppendTime := int64(-1)
	if cfg.LogAppendTime() {
		logAppendTime = now.UnixMilli()
		for off := 0; off < len(records); {
			h, _ := record.ReadHeader(records[off:])
			record.SetLogAppendTime(records[off:off+h.Size()], logAppendTime)
			off += h.Size()
		}
	}
	info, err := p.AppendLeader(records, now)
	if err != nil {
		return 0, err
	}
	sp.BaseOffset = info.FirstOffset
	if info.Duplicate && logAppendTime >= 0 {
		logAppendTime = info.Timestamp // the original's append time
	}
	sp.LogAppendTime = logAppendTime
	sp.LogStartOffset = info.LogStartOffset
	return info.LastOffset + 1, nil
}

// requireKeys rejects records without a key on a compacted topic, as Kafka
// does: compaction could never remove them.
func requireKeys(records []byte, hs []record.Header) error {
	off := 0
	for _, h := range hs {
		_, recs, err := record.Records(records[off : off+h.Size()])
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Key == nil {
				return kerrf(kerr.InvalidRecord, "a compacted topic accepts only records with a key")
			}
		}
		off += h.Size()
	}
	return nil
}

// recompress re-encodes batches whose codec differs from the topic's
// compression.type.
func recompress(records []byte, hs []record.Header, want string) ([]byte, error) {
	codec, err := record.ParseCodec(want)
	if err != nil {
		return nil, err
	}
	same := true
	for _, h := range hs {
		if h.Codec() != codec {
			same = false
		}
	}
	if same {
		return records, nil
	}
	out := make([]byte, 0, len(records))
	off := 0
	for _, h := range hs {
		batch := records[off : off+h.Size()]
		off += h.Size()
		if h.Codec() == codec {
			out = append(out, batch...)
			continue
		}
		_, recs, err := record.Records(batch)
		if err != nil {
			return nil, err
		}
		nh := h
		nh.Attributes = h.Attributes&^7 | int16(codec)
		nb, err := record.Build(nh, recs)
		if err != nil {
			return nil, errors.Join(kerr.CorruptMessage, err)
		}
		out = append(out, nb...)
	}
	return out, nil
}

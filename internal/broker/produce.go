package broker

import (
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

func (b *Broker) handleProduce(req *kmsg.ProduceRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var reqErr error
	switch {
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		reqErr = kerrf(kerr.InvalidRequiredAcks, "acks must be 0, 1 or -1 (all), not %d", req.Acks)
	case req.TransactionID != nil:
		reqErr = kerrf(kerr.TransactionalIDAuthorizationFailed, "transactional producers are not supported yet")
	}
	now := time.Now()
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
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
				} else if p = ts.parts[rp.Partition]; p == nil {
					err = kerrf(kerr.NotLeaderForPartition, "this broker does not lead %s-%d", rt.Topic, rp.Partition)
				}
			}
			if err == nil {
				err = b.produceTo(p, req.Version, req.Acks, rp.Records, now, &sp)
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				sp.ErrorMessage = errorMessage(err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		return nil
	}
	return resp
}

func (b *Broker) produceTo(p *partition.Partition, version, acks int16, records []byte, now time.Time, sp *kmsg.ProduceResponseTopicPartition) error {
	cfg := p.Config()
	switch {
	case version <= 2:
		// Produce v0-v2 carry magic 0/1 message sets; store them as v2.
		converted, err := record.UpConvert(records)
		if err != nil {
			return err
		}
		records = converted
	case record.IsMessageSet(records):
		return kerrf(kerr.InvalidRecord, "produce v%d must carry record batches (magic 2), not a magic 0/1 message set", version)
	}
	// acks=all needs min.insync.replicas in-sync replicas; this broker's
	// partitions have one (replication arrives with issue 4).
	if isr := int64(1); acks == -1 && cfg.Int64("min.insync.replicas") > isr {
		return kerrf(kerr.NotEnoughReplicas, "%s-%d has %d in-sync replica, fewer than its min.insync.replicas=%d", p.Topic, p.Index, isr, cfg.Int64("min.insync.replicas"))
	}
	hs, err := record.ValidateProduce(records)
	if err != nil {
		return err
	}
	if len(hs) == 0 {
		return kerrf(kerr.CorruptMessage, "the request holds no record batch")
	}
	max := cfg.Int64("max.message.bytes")
	for _, h := range hs {
		if int64(h.Size()) > max {
			return kerrf(kerr.MessageTooLarge, "batch of %d bytes exceeds max.message.bytes=%d of topic %s", h.Size(), max, p.Topic)
		}
		if h.Transactional() {
			return kerrf(kerr.TransactionalIDAuthorizationFailed, "transactional batches are not supported yet")
		}
	}
	if cfg.Compact() {
		if err := requireKeys(records, hs); err != nil {
			return err
		}
	}
	if want := cfg.String("compression.type"); want != "producer" {
		if records, err = recompress(records, hs, want); err != nil {
			return err
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
		return err
	}
	sp.BaseOffset = info.FirstOffset
	if info.Duplicate && logAppendTime >= 0 {
		logAppendTime = info.Timestamp // the original's append time
	}
	sp.LogAppendTime = logAppendTime
	sp.LogStartOffset = info.LogStartOffset
	return nil
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

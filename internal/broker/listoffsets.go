package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets (key 2), v0-v9: offsets by timestamp. -1 is the latest offset
// (the high watermark), -2 the earliest (the log start offset), -3 the record
// with the largest timestamp (KIP-734), -4 the earliest local offset
// (KIP-1005; all data is local, so the log start offset); a timestamp >= 0
// finds the first record at or after it, or -1 when there is none.

const (
	listLatest        = -1
	listEarliest      = -2
	listMaxTimestamp  = -3
	listEarliestLocal = -4
)

func (b *Broker) handleListOffsets(req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp = -1
			sp.Offset = -1
			p, err := b.parts.leader(rt.Topic, rp.Partition)
			if err == nil {
				err = checkLeaderEpoch(p, rp.CurrentLeaderEpoch)
			}
			if err == nil {
				sp.LeaderEpoch = p.LeaderEpoch()
				l := p.Log()
				switch rp.Timestamp {
				case listLatest:
					sp.Offset = p.HighWatermark()
				case listEarliest, listEarliestLocal:
					sp.Offset = l.LogStartOffset()
				case listMaxTimestamp:
					off, ts, ok, lerr := l.MaxTimestamp()
					if err = lerr; ok {
						sp.Offset, sp.Timestamp = off, ts
					}
				default:
					off, ts, ok, lerr := l.OffsetForTimestamp(rp.Timestamp)
					if err = lerr; ok && off < p.HighWatermark() {
						sp.Offset, sp.Timestamp = off, ts
					}
				}
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
			} else if req.Version == 0 {
				sp.OldStyleOffsets = []int64{sp.Offset}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

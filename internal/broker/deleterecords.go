package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords (key 21), v0-v2: moves a partition's log start offset
// forward; offset -1 means the high watermark. The response carries the new
// low watermark.

func (b *Broker) handleDeleteRecords(req *kmsg.DeleteRecordsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			p, err := b.parts.leader(rt.Topic, rp.Partition)
			switch {
			case err != nil:
			case rp.Offset == -1 || (rp.Offset >= 0 && rp.Offset <= p.HighWatermark()):
				off := rp.Offset
				if off == -1 {
					off = p.HighWatermark()
				}
				if err = p.Log().DeleteRecordsBefore(off); err == nil {
					p.Refresh()
					sp.LowWatermark = p.Log().LogStartOffset()
				}
			default:
				err = kerr.OffsetOutOfRange
			}
			sp.ErrorCode = errorCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

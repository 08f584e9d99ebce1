package broker

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/commitlog"
)

// fetchFrame is a Fetch response whose record sets stay in segment files
// until they are written: the frame is a sequence of encoded byte runs and
// file ranges, sent with sendfile(2) where the connection allows.
//
// kmsg encodes every other response. It can only append record bytes into a
// buffer, so Fetch alone is encoded here, from kmsg's own FetchResponse
// struct, field for field as Kafka's FetchResponse schema lays it out for
// v0-v17. TestFetchFrameMatchesKmsg checks the bytes against kmsg's decoder
// at every version.
type fetchFrame struct {
	runs  [][]byte          // runs[i] is written before views[i]
	views []*commitlog.View // len(views) == len(runs)-1
	size  int               // bytes after the 4-byte size prefix
}

// release returns every view; call it exactly once.
func (f *fetchFrame) release() {
	for _, v := range f.views {
		v.Release()
	}
	f.views = nil
}

// encodeFetch lays out resp for a request with correlation id corr. views
// holds, per topic and partition of resp, the file range to send as that
// partition's records, or nil to send the partition's Records field.
func encodeFetch(corr int32, resp *kmsg.FetchResponse, views [][]*commitlog.View) *fetchFrame {
	v := resp.Version
	flex := v >= 12
	f := &fetchFrame{}
	b := make([]byte, 0, 256)
	b = append(b, 0, 0, 0, 0) // size, patched in write
	b = kbin.AppendInt32(b, corr)
	if flex {
		b = append(b, 0) // response header tags
	}
	if v >= 1 {
		b = kbin.AppendInt32(b, resp.ThrottleMillis)
	}
	if v >= 7 {
		b = kbin.AppendInt16(b, resp.ErrorCode)
		b = kbin.AppendInt32(b, resp.SessionID)
	}
	b = appendArrayLen(b, len(resp.Topics), flex)
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		if v >= 13 {
			b = append(b, t.TopicID[:]...)
		} else if flex {
			b = kbin.AppendCompactString(b, t.Topic)
		} else {
			b = kbin.AppendString(b, t.Topic)
		}
		b = appendArrayLen(b, len(t.Partitions), flex)
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			b = kbin.AppendInt32(b, p.Partition)
			b = kbin.AppendInt16(b, p.ErrorCode)
			b = kbin.AppendInt64(b, p.HighWatermark)
			if v >= 4 {
				b = kbin.AppendInt64(b, p.LastStableOffset)
			}
			if v >= 5 {
				b = kbin.AppendInt64(b, p.LogStartOffset)
			}
			switch {
			case v < 4:
			case p.AbortedTransactions == nil:
				b = appendNullArray(b, flex)
			default:
				b = appendArrayLen(b, len(p.AbortedTransactions), flex)
				for _, a := range p.AbortedTransactions {
					b = kbin.AppendInt64(b, a.ProducerID)
					b = kbin.AppendInt64(b, a.FirstOffset)
					if flex {
						b = append(b, 0)
					}
				}
			}
			if v >= 11 {
				b = kbin.AppendInt32(b, p.PreferredReadReplica)
			}
			var view *commitlog.View
			if views != nil && views[ti] != nil {
				view = views[ti][pi]
			}
			switch {
			case view != nil && view.Len() > 0:
				b = appendBytesLen(b, view.Len(), flex)
				f.runs = append(f.runs, b)
				f.views = append(f.views, view)
				f.size += len(b) + view.Len()
				b = make([]byte, 0, 128)
			default:
				if view != nil {
					view.Release()
				}
				// Never null: Kafka sends an empty record set, and librdkafka
				// rejects a null one ("invalid MessageSetSize -1").
				if flex {
					b = kbin.AppendCompactBytes(b, p.RecordBatches)
				} else {
					b = kbin.AppendBytes(b, p.RecordBatches)
				}
			}
			if flex {
				b = append(b, 0) // partition tags: DivergingEpoch, CurrentLeader, SnapshotID unset
			}
		}
		if flex {
			b = append(b, 0) // topic tags
		}
	}
	if flex {
		b = append(b, 0) // response tags: NodeEndpoints unset
	}
	f.runs = append(f.runs, b)
	f.size += len(b)
	f.size -= 4
	binary.BigEndian.PutUint32(f.runs[0][:4], uint32(f.size))
	return f
}

func appendArrayLen(b []byte, n int, flex bool) []byte {
	if flex {
		return kbin.AppendCompactArrayLen(b, n)
	}
	return kbin.AppendArrayLen(b, n)
}

func appendNullArray(b []byte, flex bool) []byte {
	if flex {
		return kbin.AppendCompactNullableArrayLen(b, 0, true)
	}
	return kbin.AppendNullableArrayLen(b, 0, true)
}

func appendBytesLen(b []byte, n int, flex bool) []byte {
	if flex {
		return kbin.AppendUvarint(b, uint32(n)+1)
	}
	return kbin.AppendInt32(b, int32(n))
}

// write sends the frame: byte runs with write(2), file ranges with
// sendfile(2) when nc is a TCP connection, else through a buffer. A frame
// with file ranges is corked while it is written (see cork), so that its
// runs and ranges leave in as few TCP segments as their size allows, not
// one or two per partition.
func (f *fetchFrame) write(nc net.Conn, buf []byte) ([]byte, error) {
	if len(f.views) > 0 {
		if uncork := cork(nc); uncork != nil {
			defer uncork()
		}
	}
	for i, run := range f.runs {
		if _, err := nc.Write(run); err != nil {
			return buf, err
		}
		if i < len(f.views) {
			if err := sendView(nc, f.views[i]); err != nil {
				return buf, fmt.Errorf("send records: %w", err)
			}
		}
	}
	return buf, nil
}

package broker

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchFrameMatchesKmsg checks the hand-laid Fetch encoding against
// kmsg's, byte for byte, at every version we serve.
func TestFetchFrameMatchesKmsg(t *testing.T) {
	r := apis[kmsg.Fetch.Int16()]
	for v := r.min; v <= r.max; v++ {
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(v)
		resp.ThrottleMillis = 7
		resp.ErrorCode = 0
		resp.SessionID = 0
		for ti, name := range []string{"alpha", "beta"} {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = name
			rt.TopicID[0] = byte(ti + 1)
			for pi := int32(0); pi < 3; pi++ {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition = pi
				rp.HighWatermark = 100 + int64(pi)
				rp.LastStableOffset = 90
				rp.LogStartOffset = 3
				rp.PreferredReadReplica = -1
				switch pi {
				case 0:
					rp.RecordBatches = bytes.Repeat([]byte{byte(ti), 0xab}, 300)
				case 1:
					rp.RecordBatches = []byte{} // kmsg writes nil as null; we never do
					rp.ErrorCode = 1
					rp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 5, FirstOffset: 6}}
				}
				if rp.RecordBatches == nil {
					rp.RecordBatches = []byte{}
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		want := appendResponse(nil, &request{key: kmsg.Fetch.Int16(), version: v, corr: 42}, resp)
		f := encodeFetch(42, resp, nil)
		if len(f.views) != 0 {
			t.Fatalf("v%d: %d views without any given", v, len(f.views))
		}
		got := bytes.Join(f.runs, nil)
		if !bytes.Equal(got, want) {
			t.Errorf("v%d: encoding differs from kmsg (%d vs %d bytes)", v, len(got), len(want))
		}
		if f.size != len(want)-4 {
			t.Errorf("v%d: size %d, want %d", v, f.size, len(want)-4)
		}
	}
}

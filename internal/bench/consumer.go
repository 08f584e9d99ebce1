package bench

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consume polls cl until ctx is done, counting records and recording
// end-to-end latency from each record's stamp.
func consume(ctx context.Context, cl *kgo.Client, st *stats) {
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		now := st.clock.since(time.Now())
		measuring := st.measuring.Load()
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) {
				st.fail(&st.consumeErr, err)
			}
		})
		var n, bytes uint64
		fs.EachRecord(func(r *kgo.Record) {
			n++
			bytes += uint64(len(r.Value))
			if t, ok := stamp(r.Value); ok && measuring {
				st.e2eLat.Record(time.Duration(now - t))
			}
		})
		st.consumedBytes.Add(bytes)
		st.consumed.Add(n)
	}
}

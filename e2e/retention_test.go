package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cleanerProps make the broker check retention and compaction often. 1 MiB
// is the smallest segment.bytes every Kafka version accepts.
var cleanerProps = map[string]string{
	"log.retention.check.interval.ms": "200",
	"log.cleaner.backoff.ms":          "200",
	"log.segment.delete.delay.ms":     "0",
}

const segmentBytes = 1 << 20

// produceBatches produces n records of about 1 KiB to partition 0 of topic,
// 50 per request, with keyFn/valueFn deciding key and value and ts the
// timestamp (zero: now). It returns the records with their offsets set.
func produceBatches(t testing.TB, cl *kgo.Client, topic string, n int, ts time.Time,
	keyFn func(i int) []byte, valueFn func(i int) []byte,
) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	var out []*kgo.Record
	for start := 0; start < n; start += 50 {
		var batch []*kgo.Record
		for i := start; i < min(start+50, n); i++ {
			batch = append(batch, &kgo.Record{Topic: topic, Key: keyFn(i), Value: valueFn(i), Timestamp: ts})
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
		out = append(out, batch...)
	}
	return out
}

// filler returns a value of about 1 KiB that does not compress.
func filler(rng *rand.Rand) func(int) []byte {
	return func(i int) []byte {
		b := make([]byte, 1000)
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
		return append([]byte(fmt.Sprintf("%08d", i)), b...)
	}
}

// startOffset returns the log start offset of partition 0 of topic.
func startOffset(t testing.TB, adm *kadm.Client, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	lo, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		t.Fatalf("list start offsets: %v", err)
	}
	o, _ := lo.Lookup(topic, 0)
	return o.Offset
}

// endOffset returns the log end offset (high watermark) of partition 0.
func endOffset(t testing.TB, adm *kadm.Client, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	lo, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	o, _ := lo.Lookup(topic, 0)
	return o.Offset
}

// fetchError fetches partition 0 of topic at offset over a raw connection and
// returns the partition's error code.
func fetchError(t testing.TB, addr, topic string, offset int64) int16 {
	t.Helper()
	version := min(maxVersion(t, addr, kmsg.Fetch.Int16()), 12) // 13+ name topics by ID
	c, err := dialWire(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(replyTimeout))
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition = 0
	fp.FetchOffset = offset
	fp.PartitionMaxBytes = 1 << 20
	fp.CurrentLeaderEpoch = -1
	fp.LogStartOffset = -1
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := c.roundTrip(req)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	fr := resp.(*kmsg.FetchResponse)
	if fr.ErrorCode != 0 {
		return fr.ErrorCode
	}
	for _, rt := range fr.Topics {
		for _, rp := range rt.Partitions {
			return rp.ErrorCode
		}
	}
	t.Fatalf("fetch response has no partition: %+v", fr)
	return 0
}

// TestRetentionByTime: segments whose newest record is older than
// retention.ms are deleted, the log start offset moves forward, fetching
// below it is OFFSET_OUT_OF_RANGE, and newer records stay readable.
func TestRetentionByTime(t *testing.T) {
	b := startBroker(t, brokerOptions{Props: cleanerProps})
	adm := newAdmin(t, b.Addr)
	const topic = "retention-time"
	createTopic(t, adm, topic, 1, map[string]*string{
		"retention.ms":  kadm.StringPtr("600000"),
		"segment.bytes": kadm.StringPtr(fmt.Sprint(segmentBytes)),
		"segment.ms":    kadm.StringPtr("1000"),
	})
	cl := newKgo(t, b.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	rng := rand.New(rand.NewPCG(3, 4))
	key := func(i int) []byte { return []byte(fmt.Sprintf("k%d", i)) }

	// About 4 MiB stamped an hour ago: past retention when it arrives.
	const nOld, nNew = 4000, 200
	produceBatches(t, cl, topic, nOld, time.Now().Add(-time.Hour), key, filler(rng))
	recent := produceBatches(t, cl, topic, nNew, time.Time{}, key, filler(rng))

	var start int64
	waitFor(t, "old segments to be deleted", func() bool {
		start = startOffset(t, adm, topic)
		return start >= nOld/2
	})
	if start > nOld {
		t.Fatalf("log start offset %d is past the %d expired records: recent records were deleted", start, nOld)
	}
	if end := endOffset(t, adm, topic); end != nOld+nNew {
		t.Errorf("log end offset %d after retention, want %d", end, nOld+nNew)
	}
	if code := fetchError(t, b.Addr, topic, 0); code != kerr.OffsetOutOfRange.Code {
		t.Errorf("fetch at offset 0 below log start %d: error %v, want %v", start, kerr.ErrorForCode(code), kerr.OffsetOutOfRange)
	}
	recs := consumeAll(t, b.Addr, topic)
	if len(recs) == 0 || recs[0].Offset != start {
		t.Fatalf("consumed %d records, first offset %v, want first offset %d", len(recs), firstOffset(recs), start)
	}
	if want := nOld + nNew - int(start); len(recs) != want {
		t.Errorf("consumed %d records from offset %d, want %d", len(recs), start, want)
	}
	got := recs[len(recs)-nNew:]
	for i, r := range recent {
		if got[i].Offset != r.Offset || !bytes.Equal(got[i].Value, r.Value) {
			t.Fatalf("recent record %d: got offset %d, value %.12q; want offset %d, value %.12q", i, got[i].Offset, got[i].Value, r.Offset, r.Value)
		}
	}
}

func firstOffset(recs []record) any {
	if len(recs) == 0 {
		return "none"
	}
	return recs[0].Offset
}

// TestRetentionByBytes: once a partition holds more than retention.bytes,
// its oldest segments are deleted.
func TestRetentionByBytes(t *testing.T) {
	b := startBroker(t, brokerOptions{Props: cleanerProps})
	adm := newAdmin(t, b.Addr)
	const topic = "retention-bytes"
	createTopic(t, adm, topic, 1, map[string]*string{
		"retention.bytes": kadm.StringPtr(fmt.Sprint(2 * segmentBytes)),
		"segment.bytes":   kadm.StringPtr(fmt.Sprint(segmentBytes)),
	})
	cl := newKgo(t, b.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	const n = 6000 // about 6 MiB
	produceBatches(t, cl, topic, n, time.Time{}, func(i int) []byte { return nil }, filler(rand.New(rand.NewPCG(5, 6))))
	var start int64
	waitFor(t, "the log to shrink to retention.bytes", func() bool {
		start = startOffset(t, adm, topic)
		return start >= n/3
	})
	recs := consumeAll(t, b.Addr, topic)
	if want := n - int(start); len(recs) != want || recs[0].Offset != start {
		t.Errorf("consumed %d records from offset %v, want %d from %d", len(recs), firstOffset(recs), want, start)
	}
}

// TestCompaction: a cleanup.policy=compact topic keeps only the latest value
// of each key (a tombstone for deleted keys), at the offset it was written.
func TestCompaction(t *testing.T) {
	b := startBroker(t, brokerOptions{Props: cleanerProps})
	adm := newAdmin(t, b.Addr)
	const topic = "compacted"
	createTopic(t, adm, topic, 1, map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"segment.bytes":             kadm.StringPtr(fmt.Sprint(segmentBytes)),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
		"min.compaction.lag.ms":     kadm.StringPtr("0"),
	})
	cl := newKgo(t, b.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	rng := rand.New(rand.NewPCG(7, 8))
	const keys, rounds, deleted = 50, 60, 5
	key := func(i int) []byte { return []byte(fmt.Sprintf("key-%02d", i%keys)) }
	value := func(i int) []byte {
		round := i / keys
		if round == rounds-1 && i%keys < deleted {
			return nil // the last round deletes the first keys
		}
		return append([]byte(fmt.Sprintf("round %03d ", round)), filler(rng)(i)...)
	}
	produced := produceBatches(t, cl, topic, keys*rounds, time.Time{}, key, value)
	latest := map[string]*kgo.Record{}
	for _, r := range produced {
		latest[string(r.Key)] = r
	}
	// Push every keyed record out of the active segment, which is never
	// cleaned, with more than a segment of records with unique keys.
	fillers := produceBatches(t, cl, topic, segmentBytes/1000+200, time.Time{},
		func(i int) []byte { return []byte(fmt.Sprintf("filler-%05d", i)) }, filler(rng))

	var recs []record
	waitFor(t, "compaction", func() bool {
		recs = consumeAll(t, b.Addr, topic)
		n := 0
		for _, r := range recs {
			if strings.HasPrefix(string(r.Key), "key-") {
				n++
			}
		}
		return n == keys
	})
	seen := map[string]bool{}
	nFillers := 0
	var prev int64 = -1
	for _, r := range recs {
		if r.Offset <= prev {
			t.Errorf("offset %d after %d", r.Offset, prev)
		}
		prev = r.Offset
		k := string(r.Key)
		if strings.HasPrefix(k, "filler-") {
			nFillers++
			continue
		}
		want, ok := latest[k]
		switch {
		case !ok:
			t.Errorf("offset %d: unexpected key %q", r.Offset, k)
		case seen[k]:
			t.Errorf("offset %d: key %q kept twice", r.Offset, k)
		case r.Offset != want.Offset || (r.Value == nil) != (want.Value == nil) || !bytes.Equal(r.Value, want.Value):
			t.Errorf("key %q: kept offset %d value %.10q, want the latest: offset %d value %.10q", k, r.Offset, r.Value, want.Offset, want.Value)
		}
		seen[k] = true
	}
	if nFillers != len(fillers) {
		t.Errorf("%d of %d records with unique keys survived compaction", nFillers, len(fillers))
	}
	if end := endOffset(t, adm, topic); end != int64(len(produced)+len(fillers)) {
		t.Errorf("log end offset %d after compaction, want %d", end, len(produced)+len(fillers))
	}
}

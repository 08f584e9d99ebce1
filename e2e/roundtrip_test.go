package e2e

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"testing"
	"time"
)

// codecs are the record batch compression codecs Kafka defines.
var codecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

const (
	roundTripPartitions = 3
	// roundTripCount records go through every producer/consumer/codec
	// combination: about 1 minute for all of them on a 2-core machine.
	roundTripCount = 100_000
	// shortCount replaces it under -short.
	shortCount = 2_000
)

// client is a Kafka client the round-trip tests drive.
type client struct {
	name    string
	require func(t testing.TB)
	// kcatSafe: the producer carries only kcat-safe records (see genRecords).
	kcatSafe bool
	// produce produces recs and returns the records as a consumer should see
	// them (offsets and, if the client sets them itself, timestamps unknown).
	produce func(t testing.TB, bootstrap, topic, codec string, recs []record) []record
	// consume reads count records from the start of partitions 0..partitions-1.
	consume func(t testing.TB, bootstrap, topic string, partitions int32, count int) []record
	// rendersHeaders: consume returns headers rendered as kcat prints them.
	rendersHeaders bool
	// codecs returns the codecs this client can use, or nil for all.
	codecs func(t testing.TB) []string
}

func clients() []client {
	return []client{
		{
			name:     "kcat",
			require:  func(t testing.TB) { requireKcat(t) },
			kcatSafe: true,
			produce:  produceKcat,
			consume: func(t testing.TB, bootstrap, topic string, _ int32, count int) []record {
				return consumeKcat(t, bootstrap, topic, count)
			},
			rendersHeaders: true,
		},
		{
			name:    "confluent-kafka-python",
			require: func(t testing.TB) { requirePython(t, "confluent_kafka") },
			produce: func(t testing.TB, bootstrap, topic, codec string, recs []record) []record {
				producePython(t, "confluent_kafka_client.py", bootstrap, topic, codec, recs)
				return recs
			},
			consume: func(t testing.TB, bootstrap, topic string, partitions int32, count int) []record {
				return consumePython(t, "confluent_kafka_client.py", bootstrap, topic, partitions, count)
			},
		},
		{
			name:    "kafka-python",
			require: func(t testing.TB) { requirePython(t, "kafka") },
			produce: func(t testing.TB, bootstrap, topic, codec string, recs []record) []record {
				producePython(t, "kafka_python_client.py", bootstrap, topic, codec, recs)
				return recs
			},
			consume: func(t testing.TB, bootstrap, topic string, partitions int32, count int) []record {
				return consumePython(t, "kafka_python_client.py", bootstrap, topic, partitions, count)
			},
			codecs: kafkaPythonCodecs,
		},
		{
			name:    "franz-go",
			require: func(testing.TB) {},
			produce: func(t testing.TB, bootstrap, topic, codec string, recs []record) []record {
				produceKgo(t, bootstrap, topic, codec, recs)
				return recs
			},
			consume: consumeKgo,
		},
	}
}

// kafkaPythonCodecs returns the codecs kafka-python can use here: snappy,
// lz4 and zstd need optional modules (python3-snappy, python3-lz4,
// python3-zstandard).
func kafkaPythonCodecs(t testing.TB) []string {
	out := runClient(t, pythonBin(), script("kafka_python_client.py"), "codecs")
	var res struct {
		Codecs []string `json:"codecs"`
	}
	if err := json.Unmarshal(lastLine(out), &res); err != nil {
		t.Fatalf("kafka_python_client.py codecs: %q: %v", out, err)
	}
	return res.Codecs
}

// seedFor returns a stable seed per test name.
func seedFor(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// roundTrip produces n records with producer and codec into a new topic,
// reads them back with franz-go as the reference and with consumer, and
// checks both byte for byte against what was produced.
func roundTrip(t *testing.T, bootstrap string, producer, consumer client, codec string, n int) {
	adm := newAdmin(t, bootstrap)
	topic := fmt.Sprintf("rt-%s-%s-%s-%d", producer.name, consumer.name, codec, time.Now().UnixNano())
	createTopic(t, adm, topic, roundTripPartitions, nil)

	recs := genRecords(seedFor(t.Name()), n, roundTripPartitions, producer.kcatSafe)
	start := time.Now()
	want := producer.produce(t, bootstrap, topic, codec, recs)
	produced := time.Since(start)

	// The reference read: franz-go decodes every batch and checks its CRC.
	ref := consumeKgo(t, bootstrap, topic, roundTripPartitions, n)
	checkRecords(t, producer.name+" → franz-go", ref, want, compareOpts{
		IgnoreOffsets:    true,
		IgnoreTimestamps: producer.kcatSafe,
	})
	checkOffsets(t, ref)
	if producer.kcatSafe {
		checkTimestampsWithin(t, ref, start.Add(-time.Second), time.Now().Add(time.Second))
	}
	if t.Failed() {
		return
	}

	start = time.Now()
	got := consumer.consume(t, bootstrap, topic, roundTripPartitions, n)
	consumed := time.Since(start)
	if consumer.rendersHeaders {
		ref = kcatRendered(ref)
	}
	// The consumer must see exactly what franz-go saw: offsets, timestamps,
	// keys, values and headers.
	checkRecords(t, producer.name+" → "+consumer.name, got, ref, compareOpts{})
	t.Logf("%d records, %s: produce %v, consume %v", n, codec, produced.Round(time.Millisecond), consumed.Round(time.Millisecond))
}

// checkOffsets checks that every partition holds consecutive offsets from 0.
func checkOffsets(t testing.TB, recs []record) {
	t.Helper()
	next := map[int32]int64{}
	for _, r := range recs {
		if r.Offset != next[r.Partition] {
			t.Errorf("partition %d: offset %d where %d was expected", r.Partition, r.Offset, next[r.Partition])
			return
		}
		next[r.Partition]++
	}
}

// checkTimestampsWithin checks that every record's timestamp lies in [from, to].
func checkTimestampsWithin(t testing.TB, recs []record, from, to time.Time) {
	t.Helper()
	for _, r := range recs {
		if r.Timestamp < from.UnixMilli() || r.Timestamp > to.UnixMilli() {
			t.Errorf("partition %d offset %d: timestamp %v outside the produce run [%v, %v]",
				r.Partition, r.Offset, time.UnixMilli(r.Timestamp), from, to)
			return
		}
	}
}

// recordCount returns how many records one round trip carries.
func recordCount() int {
	if testing.Short() {
		return shortCount
	}
	return roundTripCount
}

// TestClientRoundTrip: each client produces keyed records with headers and
// timestamps over 3 partitions with each codec against `fjord dev`, and reads
// them back byte for byte.
func TestClientRoundTrip(t *testing.T) {
	d := startDev(t, devOptions{})
	for _, c := range clients() {
		t.Run(c.name, func(t *testing.T) {
			c.require(t)
			usable := codecs
			if c.codecs != nil {
				usable = c.codecs(t)
			}
			for _, codec := range codecs {
				t.Run(codec, func(t *testing.T) {
					if !slices.Contains(usable, codec) {
						t.Skipf("%s cannot use %s here: it needs an optional Python module (python3-zstandard, python3-snappy or python3-lz4)", c.name, codec)
					}
					roundTrip(t, d.Bootstrap, c, c, codec, recordCount())
				})
			}
		})
	}
}

// TestCrossClientRoundTrip: records produced by one client are read by
// another, byte for byte.
func TestCrossClientRoundTrip(t *testing.T) {
	d := startDev(t, devOptions{})
	cs := map[string]client{}
	for _, c := range clients() {
		cs[c.name] = c
	}
	pairs := []struct{ producer, consumer, codec string }{
		{"kcat", "confluent-kafka-python", "snappy"},
		{"kcat", "kafka-python", "lz4"},
		{"confluent-kafka-python", "kafka-python", "zstd"},
		{"confluent-kafka-python", "kcat", "gzip"},
		{"kafka-python", "confluent-kafka-python", "snappy"},
		{"kafka-python", "kcat", "none"},
		{"franz-go", "kafka-python", "lz4"},
		{"franz-go", "confluent-kafka-python", "zstd"},
		{"franz-go", "kcat", "gzip"},
	}
	for _, pair := range pairs {
		t.Run(pair.producer+"→"+pair.consumer+"/"+pair.codec, func(t *testing.T) {
			p, c := cs[pair.producer], cs[pair.consumer]
			p.require(t)
			c.require(t)
			for _, side := range []client{p, c} {
				if side.codecs != nil && !slices.Contains(side.codecs(t), pair.codec) {
					t.Skipf("%s cannot use %s here", side.name, pair.codec)
				}
			}
			roundTrip(t, d.Bootstrap, p, c, pair.codec, recordCount())
		})
	}
}

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// clientTimeout bounds one client command (a whole produce or consume run),
// so that a hang fails with the client's output instead of the test binary's
// global timeout. It is not a performance threshold.
const clientTimeout = 5 * time.Minute

// missing skips the test because a client tool is not installed, or fails it
// when CI=true so that CI cannot pass by skipping.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (on Debian: apt-get install -y kcat python3-confluent-kafka python3-kafka python3-snappy python3-lz4 python3-zstandard)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// pythonBin is Debian's interpreter, where the apt packages of the Python
// clients install (not the one a version manager may put first on PATH).
func pythonBin() string {
	if p := os.Getenv("FJORD_E2E_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

var (
	probeMu sync.Mutex
	probes  = map[string]error{}
)

// probe runs check once per key for the whole test binary and remembers the
// result.
func probe(key string, check func() error) error {
	probeMu.Lock()
	defer probeMu.Unlock()
	if err, ok := probes[key]; ok {
		return err
	}
	err := check()
	probes[key] = err
	return err
}

// requireKcat returns the path of kcat, or skips (fails under CI).
func requireKcat(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	missing(t, "kcat not found on PATH")
	return ""
}

// requirePython skips (fails under CI) unless pythonBin can import module.
func requirePython(t testing.TB, module string) {
	t.Helper()
	err := probe("python:"+module, func() error {
		out, err := exec.Command(pythonBin(), "-c", "import "+module).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
		}
		return nil
	})
	if err != nil {
		missing(t, "%s cannot import %s: %v", pythonBin(), module, err)
	}
}

// runClient runs a client command and returns its stdout. A non-zero exit
// fails the test with the command's output.
func runClient(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	out, err := runClientInput(t, nil, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runClientInput runs a client command with stdin and returns its stdout, or
// an error carrying its stdout and stderr.
func runClientInput(t testing.TB, stdin []byte, name string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// Keep the scripts' directory free of __pycache__.
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %v", filepath.Base(name), shortArgs(args), time.Since(start).Round(time.Millisecond))
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %v\nstdout:\n%s\nstderr:\n%s",
			name, strings.Join(args, " "), err, tail(stdout.Bytes()), tail(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

func shortArgs(args []string) string {
	s := strings.Join(args, " ")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// tail returns the last 4 KiB of b.
func tail(b []byte) string {
	if len(b) > 4<<10 {
		return "...\n" + string(b[len(b)-4<<10:])
	}
	return string(b)
}

// script returns the path of a Python client script in testdata/clients.
func script(name string) string {
	p, _ := filepath.Abs(filepath.Join("testdata", "clients", name))
	return p
}

// newKgo returns a franz-go client for bootstrap, closed in t.Cleanup.
func newKgo(t testing.TB, bootstrap string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// newAdmin returns a kadm client for bootstrap, closed in t.Cleanup.
func newAdmin(t testing.TB, bootstrap string) *kadm.Client {
	t.Helper()
	return kadm.NewClient(newKgo(t, bootstrap))
}

// createTopic creates topic with the given partitions, replication factor 1
// and configs, and fails the test on any error.
func createTopic(t testing.TB, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// record is one Kafka record as the tests compare it across clients. The
// JSON form is the one testdata/clients/records.py reads and writes.
type record struct {
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Timestamp int64    `json:"timestamp"` // Unix ms; 0 means "set by the producer"
	Key       []byte   `json:"key"`
	Value     []byte   `json:"value"`
	Headers   []header `json:"headers"`
}

type header struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// genRecords makes n deterministic records spread over partitions. Keys,
// values and header values are binary, some values compress well and some
// do not, some values are empty, header keys are UTF-8 and may repeat.
// Timestamps lie in the recent past, inside any default retention.
//
// kcatSafe restricts keys and values to bytes kcat's line-oriented producer
// can carry (no tab, no newline) and leaves headers and timestamps unset,
// since kcat sets those per run.
func genRecords(seed uint64, n int, partitions int32, kcatSafe bool) []record {
	rng := rand.New(rand.NewPCG(seed, 0x666a6f7264))
	base := time.Now().Add(-10 * time.Minute).UnixMilli()
	// bytesOf returns between min and max random bytes, none of them in avoid.
	bytesOf := func(min, max int, avoid string) []byte {
		b := make([]byte, min+rng.IntN(max-min+1))
		for i := range b {
			b[i] = byte(rng.IntN(256))
			for strings.IndexByte(avoid, b[i]) >= 0 {
				b[i] = byte(rng.IntN(256))
			}
		}
		return b
	}
	avoid := "" // key and value bytes
	if kcatSafe {
		avoid = "\t\n"
	}
	// kcat prints header values as C strings and ends each record with 0x1e
	// (see kcatFormat), so header values have neither.
	const avoidInHeaders = "\x00\x1e"
	recs := make([]record, n)
	for i := range recs {
		r := &recs[i]
		r.Partition = int32(i) % partitions
		r.Key = append([]byte(fmt.Sprintf("k%d-", i%5000)), bytesOf(0, 16, avoid)...)
		switch {
		case i%50 == 7 && !kcatSafe:
			r.Value = []byte{}
		case i%3 == 0:
			r.Value = bytesOf(0, 300, avoid)
		default:
			r.Value = []byte(strings.Repeat(fmt.Sprintf("value %d of the fjord e2e suite; ", i), 1+i%4))
			r.Value = append(r.Value, bytesOf(0, 8, avoid)...)
		}
		if kcatSafe {
			continue
		}
		r.Timestamp = base + int64(i)
		for h := range i % 4 {
			switch h {
			case 0:
				r.Headers = append(r.Headers, header{"seq", []byte(strconv.Itoa(i))})
			case 1:
				r.Headers = append(r.Headers, header{"ключ-é", bytesOf(0, 16, avoidInHeaders)})
			case 2:
				r.Headers = append(r.Headers, header{"empty", []byte{}}, header{"seq", []byte("again")})
			}
		}
	}
	return recs
}

// normalize makes records from different clients comparable: no headers is
// a nil slice.
func normalize(recs []record) []record {
	for i := range recs {
		if len(recs[i].Headers) == 0 {
			recs[i].Headers = nil
		}
	}
	return recs
}

// compareOpts says which fields checkRecords compares.
type compareOpts struct {
	IgnoreOffsets    bool // want's offsets are unknown
	IgnoreTimestamps bool // want's timestamps are unknown
}

// checkRecords compares got with want partition by partition, in order, and
// reports the first few differences.
func checkRecords(t testing.TB, what string, got, want []record, opts compareOpts) {
	t.Helper()
	byPart := func(recs []record) map[int32][]record {
		m := map[int32][]record{}
		for _, r := range normalize(recs) {
			if opts.IgnoreOffsets {
				r.Offset = 0
			}
			if opts.IgnoreTimestamps {
				r.Timestamp = 0
			}
			m[r.Partition] = append(m[r.Partition], r)
		}
		return m
	}
	g, w := byPart(got), byPart(want)
	if len(got) != len(want) {
		t.Errorf("%s: got %d records, want %d", what, len(got), len(want))
	}
	diffs := 0
	for p, wrecs := range w {
		grecs := g[p]
		if len(grecs) != len(wrecs) {
			t.Errorf("%s: partition %d: got %d records, want %d", what, p, len(grecs), len(wrecs))
		}
		for i := range min(len(grecs), len(wrecs)) {
			if sameRecord(wrecs[i], grecs[i]) {
				continue
			}
			if diffs < 5 {
				t.Errorf("%s: partition %d, record %d (-want +got):\n%s", what, p, i, cmp.Diff(wrecs[i], grecs[i]))
			}
			diffs++
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			t.Errorf("%s: got %d records in partition %d, want none", what, len(g[p]), p)
		}
	}
	if diffs > 5 {
		t.Errorf("%s: %d records differ in all", what, diffs)
	}
}

// sameRecord is a fast cmp.Equal for records: nil and empty byte slices
// differ, as a null and an empty key or value do in Kafka.
func sameRecord(a, b record) bool {
	sameBytes := func(x, y []byte) bool { return (x == nil) == (y == nil) && bytes.Equal(x, y) }
	if a.Partition != b.Partition || a.Offset != b.Offset || a.Timestamp != b.Timestamp ||
		!sameBytes(a.Key, b.Key) || !sameBytes(a.Value, b.Value) || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !sameBytes(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
}

// writeRecords writes recs as JSON lines to a file in dir and returns its path.
func writeRecords(t testing.TB, dir string, recs []record) string {
	t.Helper()
	path := filepath.Join(dir, "records.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// readRecords reads a JSON-lines file written by a client script.
func readRecords(t testing.TB, path string) []record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []record
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var r record
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// toKgo converts records for franz-go's producer.
func toKgo(topic string, r record) *kgo.Record {
	kr := &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value}
	if r.Timestamp != 0 {
		kr.Timestamp = time.UnixMilli(r.Timestamp)
	}
	for _, h := range r.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return kr
}

// fromKgo converts a consumed franz-go record.
func fromKgo(kr *kgo.Record) record {
	r := record{
		Partition: kr.Partition,
		Offset:    kr.Offset,
		Timestamp: kr.Timestamp.UnixMilli(),
		Key:       kr.Key,
		Value:     kr.Value,
	}
	for _, h := range kr.Headers {
		r.Headers = append(r.Headers, header{h.Key, h.Value})
	}
	return r
}

// kgoCodec maps a codec name to franz-go's.
func kgoCodec(t testing.TB, codec string) kgo.CompressionCodec {
	switch codec {
	case "none":
		return kgo.NoCompression()
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	t.Fatalf("unknown codec %q", codec)
	return kgo.CompressionCodec{}
}

// produceKgo produces recs with franz-go, acks=all, to their partitions.
func produceKgo(t testing.TB, bootstrap, topic, codec string, recs []record) {
	t.Helper()
	cl := newKgo(t, bootstrap,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgoCodec(t, codec)),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(1<<20),
	)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		failed   int
	)
	start := time.Now()
	for _, r := range recs {
		cl.Produce(ctx, toKgo(topic, r), func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				failed++
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("franz-go flush: %v", err)
	}
	if failed > 0 {
		t.Fatalf("franz-go: %d of %d records failed, first: %v", failed, len(recs), firstErr)
	}
	t.Logf("franz-go produced %d records (%s) in %v", len(recs), codec, time.Since(start).Round(time.Millisecond))
}

// consumeKgo reads count records from partitions 0..partitions-1 of topic
// from the start with franz-go.
func consumeKgo(t testing.TB, bootstrap, topic string, partitions int32, count int) []record {
	t.Helper()
	offsets := map[int32]kgo.Offset{}
	for p := range partitions {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl := newKgo(t, bootstrap, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	start := time.Now()
	recs := make([]record, 0, count)
	for len(recs) < count {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("franz-go consume %s: got %d of %d records: %v", topic, len(recs), count, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Logf("franz-go fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(kr *kgo.Record) { recs = append(recs, fromKgo(kr)) })
	}
	t.Logf("franz-go consumed %d records in %v", len(recs), time.Since(start).Round(time.Millisecond))
	return recs
}

// kcatHeaders are the headers kcat's producer puts on every record of
// partition p (kcat can only set headers per run).
func kcatHeaders(p int32) []header {
	return []header{{"client", []byte("kcat")}, {"partition", []byte(strconv.Itoa(int(p)))}, {"empty", []byte{}}}
}

// produceKcat produces recs with kcat, one run per partition, and returns
// the records as they should be consumed (kcat's headers, unknown timestamps).
func produceKcat(t testing.TB, bootstrap, topic, codec string, recs []record) []record {
	t.Helper()
	kcat := requireKcat(t)
	inputs := map[int32]*bytes.Buffer{}
	want := make([]record, len(recs))
	for i, r := range recs {
		if bytes.ContainsAny(r.Key, "\t\n") || bytes.ContainsAny(r.Value, "\n") {
			t.Fatalf("record %d cannot go through kcat's line input", i)
		}
		buf := inputs[r.Partition]
		if buf == nil {
			buf = new(bytes.Buffer)
			inputs[r.Partition] = buf
		}
		buf.Write(r.Key)
		buf.WriteByte('\t')
		buf.Write(r.Value)
		buf.WriteByte('\n')
		want[i] = record{Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: kcatHeaders(r.Partition)}
	}
	for p, in := range inputs {
		args := []string{"-P", "-q", "-b", bootstrap, "-t", topic, "-p", strconv.Itoa(int(p)), "-K", `\t`,
			"-X", "compression.codec=" + codec, "-X", "acks=all", "-X", "linger.ms=20",
			"-X", "queue.buffering.max.messages=1000000",
		}
		for _, h := range kcatHeaders(p) {
			args = append(args, "-H", h.Key+"="+string(h.Value))
		}
		if _, err := runClientInput(t, in.Bytes(), kcat, args...); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

// kcatFormat prints each record with the lengths of key and value, so that
// binary bytes survive; 0x1e 0x1f newline ends the headers and the record.
const kcatFormat = `%p %o %T %K %S %k%s%h\x1e\x1f\n`

// consumeKcat reads count records of topic from the start with kcat. The
// records' headers come back rendered as kcat prints them (see kcatRendered).
func consumeKcat(t testing.TB, bootstrap, topic string, count int) []record {
	t.Helper()
	kcat := requireKcat(t)
	out := runClient(t, kcat, "-C", "-q", "-e", "-b", bootstrap, "-t", topic, "-o", "beginning",
		"-c", strconv.Itoa(count), "-f", kcatFormat)
	recs, err := parseKcat(out)
	if err != nil {
		t.Fatalf("kcat output: %v", err)
	}
	return recs
}

// parseKcat parses output in kcatFormat.
func parseKcat(out []byte) ([]record, error) {
	var recs []record
	for len(out) > 0 {
		var fields [5]int64
		for i := range fields {
			sp := bytes.IndexByte(out, ' ')
			if sp < 0 {
				return nil, fmt.Errorf("record %d: truncated header", len(recs))
			}
			v, err := strconv.ParseInt(string(out[:sp]), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("record %d: %v", len(recs), err)
			}
			fields[i] = v
			out = out[sp+1:]
		}
		r := record{Partition: int32(fields[0]), Offset: fields[1], Timestamp: fields[2]}
		take := func(n int64) ([]byte, error) {
			if n < 0 {
				return nil, nil
			}
			if int64(len(out)) < n {
				return nil, fmt.Errorf("record %d: truncated body", len(recs))
			}
			b := out[:n:n]
			out = out[n:]
			return b, nil
		}
		var err error
		if r.Key, err = take(fields[3]); err != nil {
			return nil, err
		}
		if r.Value, err = take(fields[4]); err != nil {
			return nil, err
		}
		end := bytes.Index(out, []byte("\x1e\x1f\n"))
		if end < 0 {
			return nil, fmt.Errorf("record %d: no end marker", len(recs))
		}
		if end > 0 {
			r.Headers = []header{{Key: "kcat", Value: out[:end]}}
		}
		out = out[end+3:]
		recs = append(recs, r)
	}
	return recs, nil
}

// kcatRendered returns recs with their headers rendered the way kcat's %h
// prints them, to compare with consumeKcat's output.
func kcatRendered(recs []record) []record {
	out := make([]record, len(recs))
	for i, r := range recs {
		out[i] = r
		out[i].Headers = nil
		if len(r.Headers) == 0 {
			continue
		}
		var b []byte
		for j, h := range r.Headers {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, h.Key...)
			b = append(b, '=')
			b = append(b, h.Value...)
		}
		out[i].Headers = []header{{Key: "kcat", Value: b}}
	}
	return out
}

// producePython produces recs with a Python client script.
func producePython(t testing.TB, scriptName, bootstrap, topic, codec string, recs []record) {
	t.Helper()
	input := writeRecords(t, t.TempDir(), recs)
	out := runClient(t, pythonBin(), script(scriptName), "produce",
		"--bootstrap", bootstrap, "--topic", topic, "--compression", codec, "--input", input)
	var res struct {
		Produced int `json:"produced"`
	}
	if err := json.Unmarshal(lastLine(out), &res); err != nil {
		t.Fatalf("%s produce output %q: %v", scriptName, out, err)
	}
	if res.Produced != len(recs) {
		t.Fatalf("%s produced %d records, want %d", scriptName, res.Produced, len(recs))
	}
}

// consumePython reads count records of topic from the start with a Python
// client script.
func consumePython(t testing.TB, scriptName, bootstrap, topic string, partitions int32, count int) []record {
	t.Helper()
	output := filepath.Join(t.TempDir(), "consumed.jsonl")
	runClient(t, pythonBin(), script(scriptName), "consume",
		"--bootstrap", bootstrap, "--topic", topic,
		"--partitions", strconv.Itoa(int(partitions)), "--count", strconv.Itoa(count), "--output", output)
	return readRecords(t, output)
}

// lastLine returns the last non-empty line of out.
func lastLine(out []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	return lines[len(lines)-1]
}

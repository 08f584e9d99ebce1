package broker_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/broker"
)

// fuzzIOTimeout bounds each connection of a fuzz input; it only cuts off a
// broker that neither answers nor closes, it is no performance threshold.
const fuzzIOTimeout = 2 * time.Second

// fuzzAliveTimeout bounds the ApiVersions check after each input: a broker that
// cannot answer it within this long has stopped serving.
const fuzzAliveTimeout = 10 * time.Second

// FuzzRequest writes each input to one in-process broker, once as the body of
// a size-prefixed request frame and once as raw bytes, each on a new
// connection, and then checks that a fresh connection still gets a valid
// ApiVersions response. The seeds are valid requests of every API key kmsg
// knows, at their lowest and highest versions, plus filled-in requests of the
// APIs the broker implements.
//
// Run it for longer with
//
//	go test -run='^$' -fuzz=FuzzRequest -fuzztime=30m ./internal/broker/
func FuzzRequest(f *testing.F) {
	addr := serveFuzzBroker(f)
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		frame := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		fuzzSend(t, addr, append(frame, data...))
		fuzzSend(t, addr, data)
		fuzzCheckAlive(t, addr)
	})
}

// serveFuzzBroker starts one broker on 127.0.0.1 for this fuzz process and
// stops it in f.Cleanup.
func serveFuzzBroker(f *testing.F) string {
	f.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	addr := ln.Addr().String()
	// Every malformed input would be logged; keep the fuzzer's output readable.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b, err := broker.New(broker.Config{
		NodeID:     0,
		Listen:     addr,
		Advertised: addr,
		DataDir:    f.TempDir(),
		Props:      map[string]string{"auto.create.topics.enable": "true"},
	})
	slog.SetDefault(prev)
	if err != nil {
		ln.Close()
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, ln) }()
	f.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.Errorf("serve: %v", err)
		}
	})
	return addr
}

// fuzzSend writes data on a new connection, half-closes it and reads whatever
// the broker answers until it closes the connection or fuzzIOTimeout passes.
// Errors are expected: the broker may close on the first bad byte.
func fuzzSend(t *testing.T, addr string, data []byte) {
	c, err := net.DialTimeout("tcp", addr, fuzzAliveTimeout)
	if err != nil {
		t.Fatalf("dial broker: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(fuzzIOTimeout))
	if _, err := c.Write(data); err == nil {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	_, _ = io.Copy(io.Discard, c)
}

// fuzzCheckAlive fails the test unless a new connection gets a valid
// ApiVersions v3 response.
func fuzzCheckAlive(t *testing.T, addr string) {
	t.Helper()
	if err := fuzzApiVersions(addr); err != nil {
		t.Fatalf("broker stopped serving: %v", err)
	}
}

func fuzzApiVersions(addr string) error {
	c, err := net.DialTimeout("tcp", addr, fuzzAliveTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(fuzzAliveTimeout))
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName = "fjord-fuzz"
	req.ClientSoftwareVersion = "0.0.0"
	const corr = 12345
	if _, err := c.Write(kmsg.NewRequestFormatter().AppendRequest(nil, req, corr)); err != nil {
		return fmt.Errorf("write ApiVersions: %w", err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return fmt.Errorf("read ApiVersions response: %w", err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		return fmt.Errorf("ApiVersions response size %d", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return fmt.Errorf("read ApiVersions response: %w", err)
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	if err := resp.ReadFrom(body[4:]); err != nil {
		return fmt.Errorf("decode ApiVersions response: %w", err)
	}
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		return fmt.Errorf("ApiVersions response: error %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
	return nil
}

// fuzzSeeds returns request frames without their size prefix.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	var reqs []kmsg.Request
	// Every request kmsg knows, with default fields, at both ends of its range.
	for key := int16(0); key <= kmsg.MaxKey; key++ {
		probe := kmsg.RequestForKey(key)
		if probe == nil {
			continue
		}
		for _, v := range []int16{0, probe.MaxVersion()} {
			r := kmsg.RequestForKey(key)
			r.SetVersion(v)
			if key == kmsg.ApiVersions.Int16() && r.GetVersion() >= 3 {
				av := r.(*kmsg.ApiVersionsRequest)
				av.ClientSoftwareName, av.ClientSoftwareVersion = "fjord-fuzz", "0.0.0"
			}
			reqs = append(reqs, r)
		}
	}
	reqs = append(reqs, fuzzFilledRequests()...)
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fjord-fuzz"))
	var seeds [][]byte
	for i, r := range reqs {
		frame := formatter.AppendRequest(nil, r, int32(i))
		seeds = append(seeds, frame[4:])
	}
	return seeds
}

// fuzzFilledRequests are requests with real content for the APIs the broker
// implements, at a few versions each.
func fuzzFilledRequests() []kmsg.Request {
	const topic = "fuzz"
	var out []kmsg.Request
	add := func(versions []int16, mk func() kmsg.Request) {
		for _, v := range versions {
			r := mk()
			if v > r.MaxVersion() {
				continue
			}
			r.SetVersion(v)
			out = append(out, r)
		}
	}

	add([]int16{0, 3, 99}, func() kmsg.Request {
		r := kmsg.NewPtrApiVersionsRequest()
		r.ClientSoftwareName, r.ClientSoftwareVersion = "fjord-fuzz", "0.0.0"
		return r
	})
	add([]int16{0, 1, 4, 9, 12}, func() kmsg.Request {
		r := kmsg.NewPtrMetadataRequest()
		r.AllowAutoTopicCreation = true
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(topic)
		r.Topics = append(r.Topics, t)
		return r
	})
	add([]int16{0, 4, 5, 7}, func() kmsg.Request {
		r := kmsg.NewPtrCreateTopicsRequest()
		r.TimeoutMillis = 1000
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic = topic
		t.NumPartitions = 2
		t.ReplicationFactor = 1
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name = "retention.ms"
		c.Value = kmsg.StringPtr("60000")
		t.Configs = append(t.Configs, c)
		r.Topics = append(r.Topics, t)
		return r
	})
	add([]int16{3, 7, 9, 11}, func() kmsg.Request {
		r := kmsg.NewPtrProduceRequest()
		r.Acks = -1
		r.TimeoutMillis = 1000
		t := kmsg.NewProduceRequestTopic()
		t.Topic = topic
		p := kmsg.NewProduceRequestTopicPartition()
		p.Records = fuzzRecordBatch([]byte("key"), []byte("value"))
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	})
	add([]int16{4, 11, 12}, func() kmsg.Request {
		r := kmsg.NewPtrFetchRequest()
		r.ReplicaID = -1
		r.MaxWaitMillis = 10
		r.MaxBytes = 1 << 20
		t := kmsg.NewFetchRequestTopic()
		t.Topic = topic
		p := kmsg.NewFetchRequestTopicPartition()
		p.PartitionMaxBytes = 1 << 20
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	})
	add([]int16{1, 5, 7}, func() kmsg.Request {
		r := kmsg.NewPtrListOffsetsRequest()
		t := kmsg.NewListOffsetsRequestTopic()
		t.Topic = topic
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Timestamp = -2
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	})
	add([]int16{1, 4}, func() kmsg.Request {
		r := kmsg.NewPtrDescribeConfigsRequest()
		res := kmsg.NewDescribeConfigsRequestResource()
		res.ResourceType = kmsg.ConfigResourceTypeTopic
		res.ResourceName = topic
		r.Resources = append(r.Resources, res)
		return r
	})
	add([]int16{1, 2}, func() kmsg.Request {
		r := kmsg.NewPtrAlterConfigsRequest()
		res := kmsg.NewAlterConfigsRequestResource()
		res.ResourceType = kmsg.ConfigResourceTypeTopic
		res.ResourceName = topic
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name = "cleanup.policy"
		c.Value = kmsg.StringPtr("compact")
		res.Configs = append(res.Configs, c)
		r.Resources = append(r.Resources, res)
		return r
	})
	add([]int16{0, 1}, func() kmsg.Request {
		r := kmsg.NewPtrIncrementalAlterConfigsRequest()
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType = kmsg.ConfigResourceTypeTopic
		res.ResourceName = topic
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name = "retention.ms"
		c.Value = kmsg.StringPtr("1000")
		res.Configs = append(res.Configs, c)
		r.Resources = append(r.Resources, res)
		return r
	})
	add([]int16{1, 3}, func() kmsg.Request {
		r := kmsg.NewPtrCreatePartitionsRequest()
		r.TimeoutMillis = 1000
		t := kmsg.NewCreatePartitionsRequestTopic()
		t.Topic = topic
		t.Count = 3
		r.Topics = append(r.Topics, t)
		return r
	})
	add([]int16{1, 2}, func() kmsg.Request {
		r := kmsg.NewPtrDeleteRecordsRequest()
		r.TimeoutMillis = 1000
		t := kmsg.NewDeleteRecordsRequestTopic()
		t.Topic = topic
		p := kmsg.NewDeleteRecordsRequestTopicPartition()
		p.Offset = 1
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	})
	add([]int16{3, 4}, func() kmsg.Request {
		r := kmsg.NewPtrOffsetForLeaderEpochRequest()
		r.ReplicaID = -1
		t := kmsg.NewOffsetForLeaderEpochRequestTopic()
		t.Topic = topic
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		p.CurrentLeaderEpoch = -1
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	})
	add([]int16{1, 4}, func() kmsg.Request {
		r := kmsg.NewPtrDescribeLogDirsRequest()
		return r
	})
	add([]int16{1, 4, 6}, func() kmsg.Request {
		r := kmsg.NewPtrDeleteTopicsRequest()
		r.TimeoutMillis = 1000
		r.TopicNames = []string{topic}
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = kmsg.StringPtr(topic)
		r.Topics = append(r.Topics, t)
		return r
	})
	return out
}

// fuzzRecordBatch returns a valid uncompressed RecordBatch v2 holding one record.
func fuzzRecordBatch(key, value []byte) []byte {
	rec := kmsg.Record{Key: key, Value: value}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // Length excludes its own (1-byte) varint
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           1,
		Records:              rec.AppendTo(nil),
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// TestFuzzSeedRecordBatch guards the Produce seeds: the batch must decode
// with a correct length and CRC, or the fuzzer starts from rejected input.
func TestFuzzSeedRecordBatch(t *testing.T) {
	raw := fuzzRecordBatch([]byte("k"), []byte("v"))
	var b kmsg.RecordBatch
	if err := b.ReadFrom(raw); err != nil {
		t.Fatal(err)
	}
	if int(b.Length) != len(raw)-12 {
		t.Errorf("length %d, want %d", b.Length, len(raw)-12)
	}
	if got := crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)); uint32(b.CRC) != got {
		t.Errorf("crc %x, want %x", uint32(b.CRC), got)
	}
	var rec kmsg.Record
	if err := rec.ReadFrom(b.Records); err != nil {
		t.Fatal(err)
	}
	if string(rec.Key) != "k" || string(rec.Value) != "v" {
		t.Errorf("record %q=%q, want k=v", rec.Key, rec.Value)
	}
}

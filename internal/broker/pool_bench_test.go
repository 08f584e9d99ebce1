package broker

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fjord-io/fjord/internal/commitlog"
	"github.com/fjord-io/fjord/internal/record"
)

// benchBatch builds an uncompressed batch of n 1 KiB records.
func benchBatch(b *testing.B, n int) []byte {
	b.Helper()
	recs := make([]record.Record, n)
	val := make([]byte, 1024)
	for i := range recs {
		recs[i] = record.Record{OffsetDelta: int32(i), Value: val}
	}
	batch, err := record.Build(record.Header{LastOffsetDelta: int32(n - 1), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
	if err != nil {
		b.Fatal(err)
	}
	return batch
}

// loopback returns both ends of a TCP connection on 127.0.0.1.
func loopback(b *testing.B) (client, server net.Conn) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		b.Fatal("accept failed")
	}
	return client, server
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReadRequests measures readRequests on produce requests of one
// 16-record batch (about 16 KiB) arriving over loopback TCP, each request
// released once decoded, as serveConn does after the response. B/op shows
// what the frame pool saves.
func BenchmarkReadRequests(b *testing.B) {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "bench"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = benchBatch(b, 16)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench")).AppendRequest(nil, req, 7)

	client, server := loopback(b)
	defer server.Close()
	brk := &Broker{settings: settings{maxRequestBytes: 100 << 20}}
	reqs := make(chan *request, maxQueuedRequests)
	done := make(chan error, 1)
	go func() {
		defer close(reqs)
		done <- brk.readRequests(server, reqs)
	}()
	go func() {
		w := bufio.NewWriterSize(client, 256<<10)
		for i := 0; i < b.N; i++ {
			if _, err := w.Write(frame); err != nil {
				return
			}
		}
		w.Flush()
		client.Close()
	}()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for r := range reqs {
		if _, ok := r.body.(*kmsg.ProduceRequest); !ok {
			b.Fatalf("decoded %T", r.body)
		}
		r.release()
		n++
	}
	b.StopTimer()
	if err := <-done; err != nil && err != io.EOF {
		b.Fatal(err)
	}
	if n != b.N {
		b.Fatalf("read %d requests, want %d", n, b.N)
	}
}

// BenchmarkFetchFrameWrite measures fetchFrame.write sending frames of
// `views` partitions of one 4- or 16-record batch each over loopback TCP to
// a reader that reads whole frames; cpu-ns/op counts both ends, kernel
// included, as a broker and its consumer on one host pay it.
func BenchmarkFetchFrameWrite(b *testing.B) {
	for _, views := range []int{1, 2, 6} {
		for _, recs := range []int{4, 16} {
			b.Run(fmt.Sprintf("views=%d/records=%d", views, recs), func(b *testing.B) {
				benchFetchFrameWrite(b, views, recs)
			})
		}
	}
}

func benchFetchFrameWrite(b *testing.B, views, recs int) {
	l, err := commitlog.Open(b.TempDir(), commitlog.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	batch := benchBatch(b, recs)
	const batches = 64
	for range batches {
		if _, err := l.Append(append([]byte(nil), batch...), 0, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	client, server := loopback(b)
	defer server.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReaderSize(client, 64<<10)
		var size [4]byte
		buf := make([]byte, 1<<20)
		for {
			if _, err := io.ReadFull(r, size[:]); err != nil {
				return
			}
			if _, err := io.ReadFull(r, buf[:binary.BigEndian.Uint32(size[:])]); err != nil {
				return
			}
		}
	}()
	b.SetBytes(int64(views * len(batch)))
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		// Byte runs of the sizes a fetch response has around its record
		// sets: 64 before the first, 40 between and after.
		f := &fetchFrame{runs: [][]byte{make([]byte, 64)}}
		for v := range views {
			off := int64((i*views + v) % batches * recs)
			view, err := l.Read(off, len(batch), l.LogEndOffset(), true)
			if err != nil {
				b.Fatal(err)
			}
			f.views = append(f.views, view)
			f.runs = append(f.runs, make([]byte, 40))
			f.size += view.Len()
		}
		for _, run := range f.runs {
			f.size += len(run)
		}
		f.size -= 4
		binary.BigEndian.PutUint32(f.runs[0], uint32(f.size))
		if _, err := f.write(server, nil); err != nil {
			b.Fatal(err)
		}
		f.release()
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.StopTimer()
	server.Close()
	<-done
}

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestIdempotentProducerAcrossRestarts is the acceptance test for idempotent
// producers: librdkafka with enable.idempotence=true produces 100,000 records
// while the broker under `fjord dev` is SIGKILLed (and restarted by the
// supervisor) three times mid-stream; every record must then be in the log exactly
// once, in order within its partition, with none missing. The kills land
// with requests in flight, so librdkafka retries batches the broker may
// already have appended, and the broker must recognize them after rebuilding
// its producer state from the log.
func TestIdempotentProducerAcrossRestarts(t *testing.T) {
	requirePython(t, "confluent_kafka")
	d := startDev(t, devOptions{})
	const (
		topic      = "idempotent"
		partitions = 3
		count      = 100_000
	)
	// fsync before every ack: the broker then spends most of each produce
	// between appending and answering, where a kill leaves a batch in the
	// log that its producer was never told about and will send again.
	flush := "1"
	createTopic(t, newAdmin(t, d.Bootstrap), topic, partitions, map[string]*string{"flush.messages": &flush})

	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, pythonBin(), script("idempotent_producer.py"),
		"--bootstrap", d.Bootstrap, "--topic", topic,
		"--count", strconv.Itoa(count), "--partitions", strconv.Itoa(partitions))
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// The script's result lines: progress ({"acked": n}) and the final one.
	type result struct {
		Acked    int    `json:"acked"`
		Produced int    `json:"produced"`
		Error    string `json:"error"`
	}
	results := make(chan result, 128)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(results)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var r result
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				results <- r
			}
		}
	}()
	var last result
	next := func() bool {
		select {
		case r, ok := <-results:
			if ok {
				last = r
			}
			return ok
		case <-ctx.Done():
			t.Fatalf("producer still running after %v: last result %+v\nstderr:\n%s", clientTimeout, last, tail(stderr.Bytes()))
			return false
		}
	}
	// librdkafka queues the records far faster than the broker, which
	// fsyncs every batch, acknowledges them: the kills land mid-stream.
	kills := 0
	for _, at := range []int{count / 5, count * 9 / 20, count * 7 / 10} {
		for next() && last.Acked < at && last.Produced == 0 {
		}
		if last.Acked < at {
			break // the stream ended first
		}
		oldPID := d.brokerPID(0)
		if oldPID <= 0 || !isFjordProcess(oldPID) {
			t.Fatalf("broker 0's PID file %s names no running fjord process (pid %d)", d.brokerPIDFile(0), oldPID)
		}
		if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		kills++
		t.Logf("killed broker pid %d with %d records acknowledged, after %v", oldPID, last.Acked, time.Since(start).Round(time.Millisecond))
		waitBrokerRestarted(t, d, 0, oldPID)
	}
	for next() {
	}
	<-readDone
	werr := cmd.Wait()
	t.Logf("producer finished after %v with %d broker kills: %+v", time.Since(start).Round(time.Millisecond), kills, last)
	if werr != nil || last.Produced != count {
		t.Fatalf("idempotent producer: %v, last result %+v\nstderr:\n%s", werr, last, tail(stderr.Bytes()))
	}
	if kills == 0 {
		t.Fatal("the stream ended before the broker could be killed")
	}

	recs := consumeAll(t, d.Bootstrap, topic)
	seen := make([]int, count)
	prev := map[int32]int{}
	for _, r := range recs {
		seq, err := strconv.Atoi(string(r.Value))
		if err != nil || seq < 0 || seq >= count {
			t.Fatalf("partition %d offset %d: value %q is no sequence number below %d", r.Partition, r.Offset, r.Value, count)
		}
		if int32(seq%partitions) != r.Partition {
			t.Errorf("partition %d offset %d: record %d belongs in partition %d", r.Partition, r.Offset, seq, seq%partitions)
		}
		if p, ok := prev[r.Partition]; ok && seq <= p {
			t.Errorf("partition %d offset %d: record %d after %d", r.Partition, r.Offset, seq, p)
		}
		prev[r.Partition] = seq
		seen[seq]++
	}
	var dups, gaps []int
	for seq, n := range seen {
		switch {
		case n > 1:
			dups = append(dups, seq)
		case n == 0:
			gaps = append(gaps, seq)
		}
	}
	if len(dups) > 0 || len(gaps) > 0 {
		t.Fatalf("%d records in the log: %d duplicated (e.g. %v), %d missing (e.g. %v)",
			len(recs), len(dups), dups[:min(len(dups), 10)], len(gaps), gaps[:min(len(gaps), 10)])
	}
}

package datacli_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

type topicJSON struct {
	Topic             string            `json:"topic"`
	TopicID           string            `json:"topicId"`
	PartitionCount    int               `json:"partitionCount"`
	ReplicationFactor int               `json:"replicationFactor"`
	Configs           map[string]string `json:"configs"`
	Partitions        []struct {
		Partition int32   `json:"partition"`
		Leader    int32   `json:"leader"`
		Replicas  []int32 `json:"replicas"`
		ISR       []int32 `json:"isr"`
	} `json:"partitions"`
}

func TestTopicLifecycle(t *testing.T) {
	addr := startBroker(t)

	if out := must(t, addr, "topic", "create", "orders", "--partitions", "3", "--replication-factor", "1", "--config", "retention.ms=3600000"); out != "Created topic orders.\n" {
		t.Errorf("create printed %q", out)
	}
	if r := run(t, addr, "", "topic", "create", "orders"); r.err == nil || !strings.Contains(r.stderr, "TOPIC_ALREADY_EXISTS") {
		t.Errorf("second create: err %v, stderr %q; want TOPIC_ALREADY_EXISTS", r.err, r.stderr)
	}
	must(t, addr, "topic", "create", "orders", "--if-not-exists")
	must(t, addr, "topic", "create", "--topic", "audit") // broker defaults

	var listed []struct {
		Topic      string `json:"topic"`
		Partitions int    `json:"partitions"`
	}
	mustJSON(t, addr, &listed, "topic", "list", "--exclude-internal")
	if fmt.Sprint(listed) != "[{audit 1} {orders 3}]" {
		t.Errorf("list: %v", listed)
	}

	out := must(t, addr, "topic", "describe", "orders")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 ||
		!strings.HasPrefix(lines[0], "Topic: orders\tTopicId: ") ||
		!strings.HasSuffix(lines[0], "\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=3600000") ||
		lines[2] != "\tTopic: orders\tPartition: 1\tLeader: 0\tReplicas: 0\tIsr: 0" {
		t.Errorf("describe:\n%s", out)
	}

	must(t, addr, "topic", "alter", "orders", "--partitions", "5", "--config", "cleanup.policy=compact", "--delete-config", "retention.ms")
	var described []topicJSON
	mustJSON(t, addr, &described, "topic", "describe", "orders")
	if len(described) != 1 {
		t.Fatalf("describe: %+v", described)
	}
	d := described[0]
	if d.PartitionCount != 5 || len(d.Partitions) != 5 || d.Configs["cleanup.policy"] != "compact" || d.Configs["retention.ms"] != "" || d.TopicID == "" {
		t.Errorf("after alter: %+v", d)
	}
	if r := run(t, addr, "", "topic", "alter", "orders", "--partitions", "2"); r.err == nil || !strings.Contains(r.stderr, "INVALID_PARTITIONS") {
		t.Errorf("shrinking: err %v, stderr %q", r.err, r.stderr)
	}
	if r := run(t, addr, "", "topic", "alter", "orders", "--config", "retention.ms=soon"); r.err == nil || !strings.Contains(r.stderr, "INVALID_CONFIG") {
		t.Errorf("bad config: err %v, stderr %q", r.err, r.stderr)
	}

	if out := must(t, addr, "topic", "delete", "orders", "audit"); out != "Deleted topic orders.\nDeleted topic audit.\n" {
		t.Errorf("delete printed %q", out)
	}
	if r := run(t, addr, "", "topic", "describe", "orders"); r.err == nil || !strings.Contains(r.err.Error(), `topic "orders" does not exist`) {
		t.Errorf("describe deleted topic: %v", r.err)
	}
	if r := run(t, addr, "", "topic", "delete", "orders"); r.err == nil {
		t.Error("deleting a missing topic succeeded")
	}
	must(t, addr, "topic", "delete", "orders", "--if-exists")
}

type recordJSON struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Offset    int64   `json:"offset"`
	Key       *string `json:"key"`
	Value     *string `json:"value"`
	Headers   []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"headers"`
}

// decodeLines decodes JSON Lines.
func decodeLines[T any](t *testing.T, s string) []T {
	t.Helper()
	var out []T
	dec := json.NewDecoder(strings.NewReader(s))
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decode %q: %v", s, err)
		}
		out = append(out, v)
	}
	return out
}

func TestProduceConsume(t *testing.T) {
	addr := startBroker(t)
	must(t, addr, "topic", "create", "events", "--partitions", "2")

	var in strings.Builder
	for i := range 50 {
		fmt.Fprintf(&in, "k%d:value %d\n", i, i)
	}
	r := run(t, addr, in.String(), "topic", "produce", "events", "--key-separator", ":", "--header", "src=cli", "--compression", "zstd", "--output", "json")
	if r.err != nil {
		t.Fatalf("produce: %v\n%s", r.err, r.stderr)
	}
	acks := decodeLines[struct {
		Line      int64 `json:"line"`
		Partition int32 `json:"partition"`
		Offset    int64 `json:"offset"`
	}](t, r.stdout)
	if len(acks) != 50 {
		t.Fatalf("produce acknowledged %d records, want 50:\n%s", len(acks), r.stdout)
	}

	r = run(t, addr, "", "topic", "consume", "events", "--from-beginning", "--max-messages", "50", "--output", "json")
	if r.err != nil {
		t.Fatalf("consume: %v\n%s", r.err, r.stderr)
	}
	recs := decodeLines[recordJSON](t, r.stdout)
	if len(recs) != 50 {
		t.Fatalf("consumed %d records, want 50", len(recs))
	}
	next := map[int32]int64{}
	seen := map[string]string{}
	for _, rec := range recs {
		if rec.Offset != next[rec.Partition] {
			t.Errorf("partition %d: offset %d, want %d", rec.Partition, rec.Offset, next[rec.Partition])
		}
		next[rec.Partition]++
		if rec.Key == nil || rec.Value == nil || len(rec.Headers) != 1 || rec.Headers[0].Key != "src" || rec.Headers[0].Value != "cli" {
			t.Fatalf("record %+v", rec)
		}
		seen[*rec.Key] = *rec.Value
	}
	for i := range 50 {
		if k := fmt.Sprintf("k%d", i); seen[k] != fmt.Sprintf("value %d", i) {
			t.Errorf("key %s: value %q", k, seen[k])
		}
	}

	// One partition from an offset, in Kafka's console format; --timeout-ms
	// ends it once the partition is drained.
	must(t, addr, "topic", "produce", "events", "--partition", "1") // no stdin: nothing sent
	r = run(t, addr, "", "topic", "consume", "events", "--partition", "1", "--offset", "2",
		"--print-partition", "--print-offset", "--print-key", "--print-headers", "--key-separator", "|", "--timeout-ms", "500")
	if r.err != nil {
		t.Fatalf("consume partition: %v", r.err)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if int64(len(lines)) != next[1]-2 || !strings.HasPrefix(lines[0], "Partition:1|Offset:2|src:cli|k") || !strings.Contains(lines[0], "|value ") {
		t.Errorf("consume partition 1 from 2 (%d records there):\n%s", next[1], r.stdout)
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("Processed a total of %d messages", len(lines))) {
		t.Errorf("stderr %q", r.stderr)
	}

	// Lines without a key separator are refused.
	if r := run(t, addr, "no separator here\n", "topic", "produce", "events", "--key-separator", ":"); r.err == nil {
		t.Error("produce accepted a line without the key separator")
	}
	if r := run(t, addr, "", "topic", "consume", "missing", "--timeout-ms", "100"); r.err == nil || !strings.Contains(r.err.Error(), "does not exist") {
		t.Errorf("consume of a missing topic: %v", r.err)
	}
}

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// adminOp is one operation of a Python admin script run (see admin_op in
// testdata/clients/*_client.py) with what the test expects of its result.
type adminOp struct {
	Op                string            `json:"op"`
	Topic             string            `json:"topic,omitempty"`
	Partitions        int               `json:"partitions,omitempty"` // create: count; wait_topic: expected count
	ReplicationFactor int               `json:"replication_factor,omitempty"`
	Configs           map[string]string `json:"configs,omitempty"`
	Total             int               `json:"total,omitempty"`     // create_partitions
	Present           bool              `json:"present"`             // wait_topic
	TimeoutS          int               `json:"timeout_s,omitempty"` // wait_topic

	wantErr     *kerr.Error       // nil: no error
	wantConfigs map[string]string // describe_configs: these entries, among others
	wantIn      []string          // list: these topics are listed
	wantNotIn   []string          // list: these are not
}

// adminResult is what the scripts print per operation.
type adminResult struct {
	Op         string             `json:"op"`
	Topic      string             `json:"topic"`
	Error      int16              `json:"error"`
	ErrorName  string             `json:"error_name"`
	Configs    map[string]*string `json:"configs"`
	Topics     []string           `json:"topics"`
	OK         *bool              `json:"ok"`
	Partitions int                `json:"partitions"`
}

// adminScenario is the topic life cycle both Python admin clients go through.
func adminScenario(prefix string) []adminOp {
	topic := prefix + "-topic"
	bad := prefix + "-bad"
	return []adminOp{
		{Op: "create", Topic: topic, Partitions: 3, ReplicationFactor: 1, Configs: map[string]string{
			"retention.ms":      "3600000",
			"cleanup.policy":    "compact",
			"segment.bytes":     "1048576",
			"max.message.bytes": "2097152",
		}},
		{Op: "wait_topic", Topic: topic, Present: true, Partitions: 3, TimeoutS: 30},
		{Op: "create", Topic: topic, Partitions: 3, ReplicationFactor: 1, wantErr: kerr.TopicAlreadyExists},
		{Op: "describe_configs", Topic: topic, wantConfigs: map[string]string{
			"retention.ms":      "3600000",
			"cleanup.policy":    "compact",
			"segment.bytes":     "1048576",
			"max.message.bytes": "2097152",
		}},
		{Op: "describe_topic", Topic: topic},
		// AlterConfigs (not the incremental one) replaces the topic's whole
		// config: what it leaves out goes back to the default.
		{Op: "alter_configs", Topic: topic, Configs: map[string]string{
			"retention.ms":   "7200000",
			"cleanup.policy": "delete",
		}},
		{Op: "describe_configs", Topic: topic, wantConfigs: map[string]string{
			"retention.ms":      "7200000",
			"cleanup.policy":    "delete",
			"segment.bytes":     "1073741824",
			"max.message.bytes": "1048588",
		}},
		{Op: "alter_configs", Topic: topic, Configs: map[string]string{"retention.ms": "soon"}, wantErr: kerr.InvalidConfig},
		{Op: "describe_configs", Topic: topic, wantConfigs: map[string]string{"retention.ms": "7200000"}},
		{Op: "create_partitions", Topic: topic, Total: 5},
		{Op: "wait_topic", Topic: topic, Present: true, Partitions: 5, TimeoutS: 30},
		{Op: "create_partitions", Topic: topic, Total: 2, wantErr: kerr.InvalidPartitions},
		{Op: "create", Topic: bad + "-retention", Partitions: 1, ReplicationFactor: 1,
			Configs: map[string]string{"retention.ms": "not-a-number"}, wantErr: kerr.InvalidConfig},
		{Op: "create", Topic: bad + "-policy", Partitions: 1, ReplicationFactor: 1,
			Configs: map[string]string{"cleanup.policy": "shred"}, wantErr: kerr.InvalidConfig},
		{Op: "create", Topic: bad + "-unknown", Partitions: 1, ReplicationFactor: 1,
			Configs: map[string]string{"no.such.config": "1"}, wantErr: kerr.InvalidConfig},
		{Op: "create", Topic: bad + "-rf", Partitions: 1, ReplicationFactor: 3, wantErr: kerr.InvalidReplicationFactor},
		{Op: "create", Topic: prefix + " bad name!", Partitions: 1, ReplicationFactor: 1, wantErr: kerr.InvalidTopicException},
		{Op: "list", wantIn: []string{topic}, wantNotIn: []string{bad + "-retention", bad + "-policy", bad + "-unknown", bad + "-rf"}},
		{Op: "delete", Topic: topic},
		{Op: "wait_topic", Topic: topic, Present: false, TimeoutS: 30},
		{Op: "list", wantNotIn: []string{topic}},
		{Op: "delete", Topic: topic, wantErr: kerr.UnknownTopicOrPartition},
	}
}

// runAdminScenario runs ops with a Python admin client and checks each result.
func runAdminScenario(t *testing.T, scriptName, bootstrap string, ops []adminOp) {
	b, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ops.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := runClient(t, pythonBin(), script(scriptName), "admin", "--bootstrap", bootstrap, "--ops", path)
	var results []adminResult
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var r adminResult
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("admin output %q: %v", out, err)
		}
		results = append(results, r)
	}
	if len(results) != len(ops) {
		t.Fatalf("%d results for %d operations:\n%s", len(results), len(ops), out)
	}
	for i, op := range ops {
		checkAdminResult(t, i, op, results[i])
	}
}

func checkAdminResult(t *testing.T, i int, op adminOp, r adminResult) {
	t.Helper()
	var wantCode int16
	if op.wantErr != nil {
		wantCode = op.wantErr.Code
	}
	if r.Error != wantCode {
		want := "no error"
		if op.wantErr != nil {
			want = op.wantErr.Message
		}
		got := "no error"
		if r.Error != 0 {
			got = r.ErrorName
			if e := kerr.ErrorForCode(r.Error); e != nil && r.Error > 0 {
				got += " (" + e.Error() + ")"
			}
		}
		t.Errorf("op %d %s %q: got error %d %s, want %d %s", i, op.Op, op.Topic, r.Error, got, wantCode, want)
		return
	}
	switch op.Op {
	case "wait_topic":
		if r.OK == nil || !*r.OK {
			t.Errorf("op %d: topic %q never became present=%v with %d partitions", i, op.Topic, op.Present, op.Partitions)
		}
	case "describe_configs":
		for k, want := range op.wantConfigs {
			got, ok := r.Configs[k]
			switch {
			case !ok:
				t.Errorf("op %d: describe configs of %q: %s missing", i, op.Topic, k)
			case got == nil || *got != want:
				t.Errorf("op %d: describe configs of %q: %s = %v, want %q", i, op.Topic, k, strOrNil(got), want)
			}
		}
	case "describe_topic":
		if r.Partitions == 0 {
			t.Errorf("op %d: describe topic %q: no partitions", i, op.Topic)
		}
	case "list":
		for _, name := range op.wantIn {
			if !slices.Contains(r.Topics, name) {
				t.Errorf("op %d: list topics %v lacks %q", i, r.Topics, name)
			}
		}
		for _, name := range op.wantNotIn {
			if slices.Contains(r.Topics, name) {
				t.Errorf("op %d: list topics %v has %q", i, r.Topics, name)
			}
		}
	}
}

func strOrNil(s *string) string {
	if s == nil {
		return "null"
	}
	return `"` + *s + `"`
}

// TestAdminConfluentKafkaPython drives topic create/describe/alter/delete
// through confluent_kafka.admin.AdminClient.
func TestAdminConfluentKafkaPython(t *testing.T) {
	requirePython(t, "confluent_kafka")
	d := startDev(t, devOptions{})
	runAdminScenario(t, "confluent_kafka_client.py", d.Bootstrap, adminScenario("confluent"))
}

// TestAdminKafkaPython drives the same life cycle through
// kafka.admin.KafkaAdminClient.
func TestAdminKafkaPython(t *testing.T) {
	requirePython(t, "kafka")
	d := startDev(t, devOptions{})
	runAdminScenario(t, "kafka_python_client.py", d.Bootstrap, adminScenario("kafkapython"))
}

// TestAdminKadm drives the admin APIs through franz-go's kadm, including
// IncrementalAlterConfigs and validate-only creates.
func TestAdminKadm(t *testing.T) {
	d := startDev(t, devOptions{})
	adm := newAdmin(t, d.Bootstrap)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	const topic = "kadm-topic"
	s := kadm.StringPtr

	// Validate-only creates nothing.
	vr, err := adm.ValidateCreateTopics(ctx, 2, 1, map[string]*string{"retention.ms": s("60000")}, "kadm-validate")
	if err != nil {
		t.Fatal(err)
	}
	if err := vr["kadm-validate"].Err; err != nil {
		t.Errorf("validate-only create: %v", err)
	}
	vr, err = adm.ValidateCreateTopics(ctx, 2, 1, map[string]*string{"retention.ms": s("never")}, "kadm-validate-bad")
	if err != nil {
		t.Fatal(err)
	}
	if err := vr["kadm-validate-bad"].Err; !errors.Is(err, kerr.InvalidConfig) {
		t.Errorf("validate-only create with retention.ms=never: got %v, want %v", err, kerr.InvalidConfig)
	}

	createTopic(t, adm, topic, 2, map[string]*string{
		"retention.ms":        s("86400000"),
		"segment.bytes":       s("524288"),
		"min.insync.replicas": s("1"),
	})
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Errorf("second create: got %v, want %v", err, kerr.TopicAlreadyExists)
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !topics.Has(topic) {
		t.Errorf("list topics %v lacks %q", topics.Names(), topic)
	}
	if topics.Has("kadm-validate") {
		t.Errorf("validate-only create made topic kadm-validate")
	}
	if got := len(topics[topic].Partitions); got != 2 {
		t.Errorf("%s has %d partitions, want 2", topic, got)
	}

	checkConfigs := func(step string, want map[string]string) {
		t.Helper()
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatalf("%s: describe configs: %v", step, err)
		}
		rc, err := rcs.On(topic, nil)
		if err == nil {
			err = rc.Err
		}
		if err != nil {
			t.Fatalf("%s: describe configs: %v", step, err)
		}
		got := map[string]string{}
		for _, c := range rc.Configs {
			got[c.Key] = c.MaybeValue()
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", step, k, got[k], v)
			}
		}
	}
	checkConfigs("after create", map[string]string{"retention.ms": "86400000", "segment.bytes": "524288"})

	// Incremental: set one key, delete another (back to its default), keep the rest.
	alter := func(step string, ops []kadm.AlterConfig, state bool, want *kerr.Error) {
		t.Helper()
		var rs kadm.AlterConfigsResponses
		var err error
		if state {
			rs, err = adm.AlterTopicConfigsState(ctx, ops, topic)
		} else {
			rs, err = adm.AlterTopicConfigs(ctx, ops, topic)
		}
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		for _, r := range rs {
			if want == nil && r.Err != nil || want != nil && !errors.Is(r.Err, want) {
				t.Errorf("%s: got %v, want %v", step, r.Err, want)
			}
		}
	}
	alter("incremental alter", []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: s("1000000")},
		{Op: kadm.DeleteConfig, Name: "segment.bytes"},
	}, false, nil)
	checkConfigs("after incremental alter", map[string]string{
		"retention.ms": "1000000", "segment.bytes": "1073741824", "min.insync.replicas": "1",
	})
	alter("incremental alter, bad value", []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.bytes", Value: s("big")}}, false, kerr.InvalidConfig)
	alter("alter state", []kadm.AlterConfig{{Name: "cleanup.policy", Value: s("compact,delete")}}, true, nil)
	checkConfigs("after alter state", map[string]string{
		"cleanup.policy": "compact,delete", "retention.ms": "604800000",
	})

	cr, err := adm.UpdatePartitions(ctx, 4, topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := cr[topic].Err; err != nil {
		t.Errorf("update partitions to 4: %v", err)
	}
	cr, err = adm.UpdatePartitions(ctx, 3, topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := cr[topic].Err; !errors.Is(err, kerr.InvalidPartitions) {
		t.Errorf("update partitions from 4 to 3: got %v, want %v", err, kerr.InvalidPartitions)
	}
	waitFor(t, "4 partitions", func() bool {
		td, err := adm.ListTopics(ctx, topic)
		return err == nil && len(td[topic].Partitions) == 4
	})

	dr, err := adm.DeleteTopic(ctx, topic)
	if err == nil {
		err = dr.Err
	}
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	waitFor(t, topic+" gone", func() bool {
		td, err := adm.ListTopics(ctx)
		return err == nil && !td.Has(topic)
	})
	if _, err := adm.DeleteTopic(ctx, topic); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("second delete: got %v, want %v", err, kerr.UnknownTopicOrPartition)
	}
}

// waitTimeout bounds waitFor: it is how long the tests wait for something the
// broker does in the background, not a performance threshold.
const waitTimeout = 60 * time.Second

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, waitTimeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

package topicconfig

import (
	"errors"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"retention.ms", "-1", true},
		{"retention.ms", "-2", false},
		{"retention.ms", "forever", false},
		{"cleanup.policy", "compact,delete", true},
		{"cleanup.policy", "compact, delete", true},
		{"cleanup.policy", "shred", false},
		{"compression.type", "zstd", true},
		{"compression.type", "brotli", false},
		{"min.insync.replicas", "0", false},
		{"segment.bytes", "3000000000", false}, // not an int
		{"min.cleanable.dirty.ratio", "1.5", false},
		{"unclean.leader.election.enable", "yes", false},
		{"message.timestamp.type", "LogAppendTime", true},
		{"no.such.config", "1", false},
		// Kafka's ThrottledReplicaListValidator.
		{"leader.replication.throttled.replicas", "", true},
		{"leader.replication.throttled.replicas", "*", true},
		{"leader.replication.throttled.replicas", " * ", true},
		{"leader.replication.throttled.replicas", "0:1,1:2", true},
		{"leader.replication.throttled.replicas", "0:1 , 1:2,", true},
		{"follower.replication.throttled.replicas", "10:3", true},
		{"follower.replication.throttled.replicas", "*,0:1", false},
		{"follower.replication.throttled.replicas", "**", false},
		{"follower.replication.throttled.replicas", "0", false},
		{"follower.replication.throttled.replicas", "0:", false},
		{"follower.replication.throttled.replicas", ":1", false},
		{"follower.replication.throttled.replicas", "0:1:2", false},
		{"follower.replication.throttled.replicas", "a:1", false},
		{"follower.replication.throttled.replicas", "-1:1", false},
		{"follower.replication.throttled.replicas", "0 : 1", false},
	} {
		err := Validate(tc.name, tc.value)
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%s=%q) = %v, want ok=%v", tc.name, tc.value, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%s=%q) error %v does not wrap ErrInvalid", tc.name, tc.value, err)
		}
	}
}

func TestResolvePrecedence(t *testing.T) {
	broker := map[string]string{"log.retention.hours": "48", "log.retention.minutes": "90", "log.segment.bytes": "1000"}
	s := Resolve(map[string]string{"segment.bytes": "2000"}, broker)

	v, _ := s.Get("retention.ms")
	if v.Value != "5400000" || v.Source != SourceStaticBroker {
		t.Errorf("retention.ms = %s from %d, want 5400000 (log.retention.minutes wins over hours) from the broker", v.Value, v.Source)
	}
	if len(v.Synonyms) != 3 || v.Synonyms[0].Name != "log.retention.minutes" || v.Synonyms[2].Source != SourceDefault {
		t.Errorf("synonyms = %+v", v.Synonyms)
	}
	v, _ = s.Get("segment.bytes")
	if v.Value != "2000" || v.Source != SourceTopic {
		t.Errorf("segment.bytes = %s from %d, want the topic's 2000", v.Value, v.Source)
	}
	v, _ = s.Get("cleanup.policy")
	if v.Value != "delete" || v.Source != SourceDefault {
		t.Errorf("cleanup.policy = %s from %d", v.Value, v.Source)
	}
	lc := s.LogConfig()
	if lc.RetentionAge != 90*time.Minute || lc.SegmentBytes != 2000 || !lc.Delete || lc.Compact {
		t.Errorf("log config = %+v", lc)
	}
	if Resolve(map[string]string{"retention.ms": "-1"}, nil).LogConfig().RetentionAge >= 0 {
		t.Error("retention.ms=-1 must mean keep forever")
	}
}

func TestThrottledReplica(t *testing.T) {
	for _, tc := range []struct {
		list            string
		partition, node int32
		want            bool
	}{
		{"", 0, 1, false},
		{"*", 7, 3, true},
		{" * ", 0, 0, true},
		{"0:1,1:2", 0, 1, true},
		{"0:1,1:2", 1, 2, true},
		{"0:1,1:2", 1, 1, false},
		{"0:1 , 12:2,", 12, 2, true},
		{"0:1 , 12:2,", 2, 2, false},
	} {
		if got := ThrottledReplica(tc.list, tc.partition, tc.node); got != tc.want {
			t.Errorf("ThrottledReplica(%q, %d, %d) = %v, want %v", tc.list, tc.partition, tc.node, got, tc.want)
		}
	}
}

func TestCleanupPolicy(t *testing.T) {
	for _, tc := range []struct {
		topic, broker   string // "" = not set
		compact, delete bool
	}{
		{"", "", false, true}, // Kafka's default: delete
		{"compact", "", true, false},
		{"compact, delete", "", true, true},
		{"delete", "compact", false, true},
		{"", "compact", true, false}, // log.cleanup.policy
	} {
		overrides, props := map[string]string{}, map[string]string{}
		if tc.topic != "" {
			overrides["cleanup.policy"] = tc.topic
		}
		if tc.broker != "" {
			props["log.cleanup.policy"] = tc.broker
		}
		s := Resolve(overrides, props)
		if s.Compact() != tc.compact || s.Delete() != tc.delete {
			t.Errorf("topic %q, broker %q: Compact %v Delete %v, want %v %v",
				tc.topic, tc.broker, s.Compact(), s.Delete(), tc.compact, tc.delete)
		}
	}
}

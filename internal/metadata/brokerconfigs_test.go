package metadata

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type brokerConfigStore interface {
	BrokerConfigs(node int32) map[string]string
	SetBrokerConfigs(node int32, configs map[string]string) error
}

// TestBrokerConfigs runs one script against both stores: set, replace and
// remove the configs of a node and of the cluster default; they survive a
// reopen (Local) and reach another store on the cluster (Etcd).
func TestBrokerConfigs(t *testing.T) {
	rate := map[string]string{"leader.replication.throttled.rate": "1000"}
	both := map[string]string{"leader.replication.throttled.rate": "5", "follower.replication.throttled.rate": "7"}
	script := func(t *testing.T, s brokerConfigStore) {
		if got := s.BrokerConfigs(1); len(got) != 0 {
			t.Errorf("new store: node 1 has %v", got)
		}
		if err := s.SetBrokerConfigs(1, rate); err != nil {
			t.Fatal(err)
		}
		if err := s.SetBrokerConfigs(DefaultBrokerConfigs, both); err != nil {
			t.Fatal(err)
		}
		got := s.BrokerConfigs(1)
		if diff := cmp.Diff(rate, got); diff != "" {
			t.Errorf("node 1 (-want +got):\n%s", diff)
		}
		got["mutated"] = "x" // a copy
		if diff := cmp.Diff(both, s.BrokerConfigs(DefaultBrokerConfigs)); diff != "" {
			t.Errorf("default (-want +got):\n%s", diff)
		}
		if err := s.SetBrokerConfigs(-2, rate); err == nil {
			t.Error("node -2 accepted")
		}
	}
	finish := func(t *testing.T, s brokerConfigStore) {
		if diff := cmp.Diff(rate, s.BrokerConfigs(1)); diff != "" {
			t.Errorf("node 1 after reopen (-want +got):\n%s", diff)
		}
		if err := s.SetBrokerConfigs(1, nil); err != nil {
			t.Fatal(err)
		}
		if got := s.BrokerConfigs(1); len(got) != 0 {
			t.Errorf("node 1 after removal: %v", got)
		}
		if diff := cmp.Diff(both, s.BrokerConfigs(DefaultBrokerConfigs)); diff != "" {
			t.Errorf("default after node 1's removal (-want +got):\n%s", diff)
		}
	}

	t.Run("local", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "meta.json")
		l, err := OpenLocal(path, "c")
		if err != nil {
			t.Fatal(err)
		}
		v := l.Version()
		script(t, l)
		if l.Version() == v {
			t.Error("version did not change")
		}
		if l, err = OpenLocal(path, "c"); err != nil {
			t.Fatal(err)
		}
		finish(t, l)
	})
	t.Run("etcd", func(t *testing.T) {
		a := openEtcd(t, EtcdConfig{})
		script(t, a)
		b := openEtcd(t, EtcdConfig{}) // loads what a wrote
		finish(t, b)
		eventually(t, 10*time.Second, "a to see b's removal", func() bool { return len(a.BrokerConfigs(1)) == 0 })
	})
}

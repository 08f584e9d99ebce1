package probe_test

import (
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/fjord-io/fjord/internal/probe"
	"github.com/fjord-io/fjord/internal/quorum/quorumtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	quorumtest.Stop()
	os.Exit(code)
}

func TestListsBrokers(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	if err := probe.ListsBrokers(t.Context(), addr, []int32{0, 1, 2}); err != nil {
		t.Fatalf("a formed cluster of 0-2: %v", err)
	}
	err = probe.ListsBrokers(t.Context(), addr, []int32{1, 2, 3})
	if err == nil || !strings.Contains(err.Error(), "not yet all of [1 2 3]") {
		t.Fatalf("broker 3 missing: err = %v", err)
	}
}

func TestListsBrokersNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := probe.ListsBrokers(t.Context(), addr, []int32{0}); err == nil || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("err = %v, want a connect error", err)
	}
}

func TestQuorumHealthy(t *testing.T) {
	hc := &http.Client{Timeout: probe.Timeout}
	if err := probe.QuorumHealthy(t.Context(), hc, quorumtest.URL(t)); err != nil {
		t.Fatalf("a one-member quorum: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	if err := probe.QuorumHealthy(t.Context(), hc, url); err == nil {
		t.Fatal("nothing listening: no error")
	}
}

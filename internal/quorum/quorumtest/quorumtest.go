// Package quorumtest gives a package's tests one embedded single-member
// metadata quorum, started on first use and stopped by the package's
// TestMain. Tests share it by using their own cluster names, so each test's
// keys are its own.
package quorumtest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fjord-io/fjord/internal/quorum"
)

var shared struct {
	once   sync.Once
	dir    string
	member *quorum.Member
	url    string
	err    error
}

// URL starts the shared member on first use and returns its client URL,
// http://127.0.0.1:PORT.
func URL(tb testing.TB) string {
	tb.Helper()
	q := &shared
	q.once.Do(func() {
		if q.dir, q.err = os.MkdirTemp("", "fjord-quorum-test-"); q.err != nil {
			return
		}
		var peer net.Listener
		if peer, q.err = net.Listen("tcp", "127.0.0.1:0"); q.err != nil {
			return
		}
		peerAddr := peer.Addr().String()
		peer.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		q.member, q.err = quorum.Start(ctx, quorum.Config{
			Name:         "test",
			DataDir:      filepath.Join(q.dir, "etcd"),
			ListenClient: "127.0.0.1:0",
			ListenPeer:   peerAddr,
		})
		if q.err == nil {
			q.url = q.member.ClientURL()
		}
	})
	if q.err != nil {
		tb.Fatalf("start the test quorum: %v", q.err)
	}
	return q.url
}

// Stop stops the shared member, if it was started, and removes its data.
// TestMain calls it after m.Run.
func Stop() {
	if shared.member != nil {
		shared.member.Close()
		shared.member = nil
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
}

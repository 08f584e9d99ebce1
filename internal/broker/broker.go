// Package broker is a Kafka-protocol broker: the listener, the per-connection
// request loop, dispatch by API key to one handler per API (one file each), and
// the partitions this broker hosts.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/fjord-io/fjord/internal/group"
	"github.com/fjord-io/fjord/internal/metadata"
)

// Broker is one Kafka broker. Create it with New, run it with Serve or Run.
type Broker struct {
	cfg      Config
	settings settings
	log      *slog.Logger
	meta     *metadata.Local
	parts    *partitions
	sessions *fetchSessions
	pids     producerIDs
	groups   *group.Coordinator
	groupLog *offsetsLog
	host     string
	port     int32

	// conns tracks open connections so shutdown can close them.
	connMu sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // every goroutine the broker starts
}

// New opens the broker's data directory, its metadata and every partition
// log it hosts. It does not listen yet.
func New(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := resolveSettings(cfg.Props)
	if err != nil {
		return nil, err
	}
	host, portStr, _ := net.SplitHostPort(cfg.Advertised)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("advertised port %q: %w", portStr, err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	meta, err := metadata.OpenLocal(filepath.Join(cfg.DataDir, "cluster-metadata.json"), cfg.ClusterID)
	if err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:      cfg,
		settings: st,
		log:      slog.Default().With("node", cfg.NodeID),
		meta:     meta,
		host:     host,
		port:     int32(port),
		conns:    make(map[net.Conn]struct{}),
		sessions: newFetchSessions(st.fetchSessionSlots),
	}
	b.parts, err = openPartitions(cfg.DataDir, cfg.NodeID, meta, cfg.Props)
	if err != nil {
		return nil, err
	}
	gcfg, err := groupConfig(cfg.Props, func(topic string, p int32) bool { return b.parts.get(topic, p) != nil })
	if err != nil {
		b.parts.close()
		return nil, err
	}
	b.groupLog = &offsetsLog{b: b, partitions: gcfg.Partitions}
	b.groups = group.New(gcfg, b.groupLog, b.log)
	if err := b.groups.Load(); err != nil {
		b.parts.close()
		return nil, err
	}
	return b, nil
}

// Run listens on the configured address and serves until ctx is done.
func (b *Broker) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", b.cfg.Listen)
	if err != nil {
		b.parts.close()
		return fmt.Errorf("listen: %w", err)
	}
	return b.Serve(ctx, ln)
}

// Serve accepts connections on ln until ctx is done, then closes the
// listener, every connection and every log, waits for all goroutines, and
// returns nil. An accept error other than shutdown is returned after the same
// cleanup.
func (b *Broker) Serve(ctx context.Context, ln net.Listener) error {
	b.log.Info("broker serving", "listen", ln.Addr().String(), "advertised", b.cfg.Advertised, "cluster", b.meta.ClusterID())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	b.wg.Add(3)
	go func() {
		defer b.wg.Done()
		b.groups.Run(ctx)
	}()
	go func() {
		defer b.wg.Done()
		<-ctx.Done()
		ln.Close()
		b.closeConns()
	}()
	go func() {
		defer b.wg.Done()
		b.parts.maintain(ctx, b.settings, b.log)
	}()

	var acceptErr error
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				acceptErr = fmt.Errorf("accept: %w", err)
			}
			break
		}
		if !b.track(nc) {
			nc.Close()
			break
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer b.untrack(nc)
			b.serveConn(ctx, nc)
		}()
	}
	cancel()
	b.wg.Wait()
	b.parts.close()
	b.log.Info("broker stopped")
	return acceptErr
}

func (b *Broker) track(nc net.Conn) bool {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	if b.closed {
		return false
	}
	b.conns[nc] = struct{}{}
	return true
}

func (b *Broker) untrack(nc net.Conn) {
	b.connMu.Lock()
	delete(b.conns, nc)
	b.connMu.Unlock()
}

func (b *Broker) closeConns() {
	b.connMu.Lock()
	b.closed = true
	for nc := range b.conns {
		nc.Close()
	}
	b.connMu.Unlock()
}

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

	"github.com/fjord-io/fjord/internal/controller"
	"github.com/fjord-io/fjord/internal/group"
	"github.com/fjord-io/fjord/internal/metadata"
)

// Broker is one Kafka broker. Create it with New, run it with Serve or Run.
type Broker struct {
	cfg      Config
	settings settings
	log      *slog.Logger
	meta     store
	etcd     *metadata.Etcd // the replicated store; nil when standalone
	self     metadata.Broker
	parts    *partitions
	fetchers *replicaFetchers
	isr      *isrManager
	// quotas are the replication throttles, leader and follower side
	// (throttle.go).
	quotas replicationThrottles
	// ctlConfig configures the controller this broker runs when elected.
	ctlConfig controller.Config
	sessions  *fetchSessions
	pids      producerIDs
	groups    *group.Coordinator
	groupLog  *offsetsLog
	host      string
	port      int32

	// conns tracks open connections so shutdown can close them.
	connMu sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // every goroutine the broker starts
}

// New opens the broker's data directory, its metadata and every partition
// log it hosts. It does not listen yet. With MetadataEndpoints set, the
// metadata is the cluster's, in etcd, and New waits (up to a minute) for
// the quorum to answer.
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
	ctlConfig, err := controller.ParseConfig(cfg.Props)
	if err != nil {
		return nil, err
	}
	dirID, err := loadDirID(cfg.DataDir, cfg.NodeID)
	if err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:       cfg,
		settings:  st,
		log:       slog.Default().With("node", cfg.NodeID),
		host:      host,
		port:      int32(port),
		conns:     make(map[net.Conn]struct{}),
		sessions:  newFetchSessions(st.fetchSessionSlots),
		ctlConfig: ctlConfig,
		self:      metadata.Broker{NodeID: cfg.NodeID, Host: host, Port: int32(port), Rack: cfg.Rack, DirID: dirID},
	}
	if len(cfg.MetadataEndpoints) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		e, err := metadata.OpenEtcd(ctx, metadata.EtcdConfig{
			Endpoints:  cfg.MetadataEndpoints,
			Cluster:    cfg.Cluster,
			ClusterID:  cfg.ClusterID,
			SessionTTL: st.sessionTimeout,
		})
		cancel()
		if err != nil {
			return nil, err
		}
		b.meta, b.etcd = e, e
	} else {
		l, err := metadata.OpenLocal(filepath.Join(cfg.DataDir, "cluster-metadata.json"), cfg.ClusterID)
		if err != nil {
			return nil, err
		}
		l.SetBroker(b.self)
		b.meta = l
	}
	b.parts = newPartitions(cfg.DataDir, cfg.NodeID, b.meta, cfg.Props, b.log)
	b.fetchers = newReplicaFetchers(b)
	b.isr = newISRManager(b)
	if b.etcd != nil {
		b.parts.mayLead = b.unfenced
		b.parts.follow = b.fetchers.follow
		b.parts.unfollow = b.fetchers.unfollow
	}
	fail := func(err error) (*Broker, error) {
		if b.etcd != nil {
			b.etcd.Close()
		}
		return nil, err
	}
	gcfg, err := groupConfig(cfg.Props, b.partitionExists)
	if err != nil {
		return fail(err)
	}
	b.groupLog = &offsetsLog{b: b, partitions: gcfg.Partitions}
	b.groups = group.New(gcfg, b.groupLog, b.log)
	b.parts.led = b.groupLog.led
	if err := b.parts.open(); err != nil {
		return fail(err)
	}
	return b, nil
}

// unfencedEpoch is what a store that fences brokers (Etcd) offers.
type unfencedEpoch interface {
	UnfencedEpoch(node int32) int64
}

// unfenced reports whether this broker may lead partitions: it is
// registered, and the controller has processed this registration (Kafka's
// unfenced broker), so leaderships left from a previous incarnation have
// been settled first.
func (b *Broker) unfenced() bool {
	for _, br := range b.meta.Brokers() {
		if br.NodeID != b.cfg.NodeID {
			continue
		}
		if br.DirID != b.self.DirID {
			return false // another broker with our id
		}
		if f, ok := b.meta.(unfencedEpoch); ok {
			return f.UnfencedEpoch(b.cfg.NodeID) == br.Epoch
		}
		return true
	}
	return false
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

	// The cluster membership (registration, controller campaign, metadata
	// watch, replication) outlives the listener by a little: on shutdown
	// the registration goes first, so that the controller moves leadership
	// away while this broker still answers (a controlled shutdown).
	clusterCtx, stopCluster := context.WithCancel(context.Background())
	defer stopCluster()
	clusterDone := make(chan struct{})
	if b.etcd != nil {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer close(clusterDone)
			b.runCluster(clusterCtx)
		}()
	} else {
		close(clusterDone)
	}

	b.wg.Add(3)
	go func() {
		defer b.wg.Done()
		b.groups.Run(ctx)
	}()
	go func() {
		defer b.wg.Done()
		<-ctx.Done()
		b.handOver(stopCluster, clusterDone)
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
	if b.etcd != nil {
		b.etcd.Close()
	}
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

// Package quorum runs one member of the etcd quorum that holds a cluster's
// metadata (the role ZooKeeper plays in MSK). It is etcd's own server,
// embedded through go.etcd.io/etcd/server/v3/embed; this package only turns a
// small Config into etcd's and runs the member until its context ends.
//
// A quorum has one member (development) or three (a member may be lost
// without losing writes). Members listen on loopback addresses only: the
// quorum has no TLS or authentication yet, so nothing outside this host may
// reach it.
package quorum

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Config describes one quorum member.
type Config struct {
	// Name is the member's name, unique within the quorum.
	Name string
	// DataDir holds the member's write-ahead log and database. A member
	// restarted on the same DataDir resumes where it stopped, whatever
	// InitialClusterState says.
	DataDir string
	// ListenClient is the loopback host:port clients connect to. Port 0
	// picks a free port; Member.ClientURL reports it.
	ListenClient string
	// ListenPeer is the loopback host:port the other members connect to.
	ListenPeer string
	// InitialCluster lists every member as name=http://host:port, comma
	// separated, this one included; 1 or 3 members. Default: this member
	// alone, Name=http://ListenPeer.
	InitialCluster string
	// InitialClusterState is "new" when the members listed in
	// InitialCluster bootstrap a quorum together, "existing" when this
	// member joins a running quorum that already lists it. Default "new".
	InitialClusterState string
	// LogLevel is etcd's log level: debug, info, warn or error (default).
	LogLevel string
}

// Settings that are not Config fields, and why.
const (
	// maxTxnOps bounds the operations in one etcd transaction. Creating a
	// topic writes one key per partition in one transaction, so this is the
	// largest partition count a topic can be created with (less two keys).
	// etcd's default is 128. An external etcd needs --max-txn-ops too.
	maxTxnOps = 16384
	// maxRequestBytes bounds one request; a topic of 10,000 partitions is
	// about 1.5 MB of keys and values. etcd's default is 1.5 MiB.
	maxRequestBytes = 8 << 20
	// compactionRetention keeps an hour of history: watchers that fall
	// further behind reload from a snapshot. etcd's default keeps all of it.
	compactionRetention = "1h"
	clusterToken        = "fjord"
)

func (c *Config) setDefaults() {
	if c.InitialCluster == "" && c.Name != "" && c.ListenPeer != "" {
		c.InitialCluster = c.Name + "=http://" + c.ListenPeer
	}
	if c.InitialClusterState == "" {
		c.InitialClusterState = embed.ClusterStateFlagNew
	}
	if c.LogLevel == "" {
		c.LogLevel = "error"
	}
}

// Validate reports the first thing wrong with c, after defaults.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.Name == "":
		return errors.New("a member name is required")
	case strings.ContainsAny(c.Name, "=,"):
		return fmt.Errorf("member name %q contains '=' or ','", c.Name)
	case c.DataDir == "":
		return errors.New("a data directory is required")
	}
	if err := checkLoopback("client", c.ListenClient, true); err != nil {
		return err
	}
	if err := checkLoopback("peer", c.ListenPeer, false); err != nil {
		return err
	}
	members, err := parseInitialCluster(c.InitialCluster)
	if err != nil {
		return err
	}
	if n := len(members); n != 1 && n != 3 {
		return fmt.Errorf("initial cluster has %d members; use 1 or 3", n)
	}
	self, ok := members[c.Name]
	if !ok {
		return fmt.Errorf("initial cluster %q does not list this member, %q", c.InitialCluster, c.Name)
	}
	if self != "http://"+c.ListenPeer {
		return fmt.Errorf("initial cluster gives member %q the peer URL %s, but it listens on %s", c.Name, self, c.ListenPeer)
	}
	switch c.InitialClusterState {
	case embed.ClusterStateFlagNew, embed.ClusterStateFlagExisting:
	default:
		return fmt.Errorf("initial cluster state %q: use new or existing", c.InitialClusterState)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log level %q: use debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// checkLoopback checks that addr is host:port with a loopback IP host.
func checkLoopback(what, addr string, zeroPort bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s address %q: %w", what, addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s address %q: the quorum listens on loopback addresses only (such as 127.0.0.1)", what, addr)
	}
	if port == "" || port == "0" && !zeroPort {
		return fmt.Errorf("%s address %q: a port is required", what, addr)
	}
	return nil
}

// parseInitialCluster maps member names to peer URLs.
func parseInitialCluster(s string) (map[string]string, error) {
	members := make(map[string]string)
	for _, m := range strings.Split(s, ",") {
		name, u, ok := strings.Cut(m, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("initial cluster entry %q: want name=http://host:port", m)
		}
		if _, dup := members[name]; dup {
			return nil, fmt.Errorf("initial cluster lists member %q twice", name)
		}
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "http" || pu.Path != "" {
			return nil, fmt.Errorf("initial cluster entry %q: want name=http://host:port", m)
		}
		if err := checkLoopback("peer", pu.Host, false); err != nil {
			return nil, fmt.Errorf("initial cluster member %q: %w", name, err)
		}
		members[name] = u
	}
	return members, nil
}

// embedConfig translates a validated, defaulted Config into etcd's. etcd
// logs through a zap logger at c.LogLevel that goes quiet once closing is
// set: a member that is stopped on purpose logs each of its listeners'
// closing as an error.
func (c Config) embedConfig(closing *atomic.Bool) (*embed.Config, error) {
	ec := embed.NewConfig()
	level, err := zapcore.ParseLevel(c.LogLevel)
	if err != nil {
		return nil, err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), level)
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(quietCore{core, closing}))
	ec.Name = c.Name
	ec.Dir = c.DataDir
	client, err := url.Parse("http://" + c.ListenClient)
	if err != nil {
		return nil, err
	}
	peer, err := url.Parse("http://" + c.ListenPeer)
	if err != nil {
		return nil, err
	}
	ec.ListenClientUrls = []url.URL{*client}
	ec.AdvertiseClientUrls = []url.URL{*client}
	ec.ListenPeerUrls = []url.URL{*peer}
	ec.AdvertisePeerUrls = []url.URL{*peer}
	ec.InitialCluster = c.InitialCluster
	ec.ClusterState = c.InitialClusterState
	ec.InitialClusterToken = clusterToken
	ec.MaxTxnOps = maxTxnOps
	ec.MaxRequestBytes = maxRequestBytes
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = compactionRetention
	return ec, nil
}

// quietCore drops every entry once closing is set.
type quietCore struct {
	zapcore.Core
	closing *atomic.Bool
}

func (c quietCore) With(fields []zapcore.Field) zapcore.Core {
	return quietCore{c.Core.With(fields), c.closing}
}

func (c quietCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.closing.Load() {
		return ce
	}
	return c.Core.Check(e, ce)
}

// Member is a running quorum member.
type Member struct {
	etcd      *embed.Etcd
	closing   *atomic.Bool
	closeOnce sync.Once
}

// Start starts a member and returns once it serves clients, which for a new
// three-member quorum is once a majority of its members have started. If ctx
// ends first, the member is stopped and ctx's error returned. The caller must
// Close the member.
func Start(ctx context.Context, cfg Config) (*Member, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	closing := new(atomic.Bool)
	ec, err := cfg.embedConfig(closing)
	if err != nil {
		return nil, err
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start quorum member %s: %w", cfg.Name, err)
	}
	m := &Member{etcd: e, closing: closing}
	select {
	case <-e.Server.ReadyNotify():
		return m, nil
	case err := <-e.Err():
		m.Close()
		return nil, fmt.Errorf("start quorum member %s: %w", cfg.Name, err)
	case <-ctx.Done():
		m.Close()
		return nil, ctx.Err()
	}
}

// ClientURL is the URL clients reach this member on, such as
// http://127.0.0.1:2379.
func (m *Member) ClientURL() string {
	return "http://" + m.etcd.Clients[0].Addr().String()
}

// Err returns a channel that receives an error if the member fails while
// serving.
func (m *Member) Err() <-chan error { return m.etcd.Err() }

// Stopped returns a channel that is closed when the member's server stops,
// by Close or by itself (for example when it is removed from the quorum).
func (m *Member) Stopped() <-chan struct{} { return m.etcd.Server.StopNotify() }

// Close stops the member: a leader first hands leadership to another
// member. It returns once the member's listeners, goroutines and files are
// released. Close is idempotent.
func (m *Member) Close() {
	m.closeOnce.Do(func() {
		m.closing.Store(true)
		m.etcd.Close()
	})
}

// Run runs one member until ctx ends, then stops it cleanly and returns nil.
// It returns an error if the member cannot start or fails while serving.
func Run(ctx context.Context, cfg Config) error {
	m, err := Start(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer m.Close()
	slog.Info("quorum member serving", "name", cfg.Name, "client", m.ClientURL(), "peer", "http://"+cfg.ListenPeer)
	select {
	case <-ctx.Done():
		slog.Info("quorum member stopping", "name", cfg.Name)
		return nil
	case err := <-m.Err():
		return fmt.Errorf("quorum member %s: %w", cfg.Name, err)
	case <-m.Stopped():
		return fmt.Errorf("quorum member %s stopped by itself", cfg.Name)
	}
}

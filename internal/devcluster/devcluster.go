// Package devcluster runs a local Kafka cluster in the foreground for
// development: each broker is its own `fjord broker` OS process and, for
// more than one broker, each member of the metadata quorum its own `fjord
// quorum` process; every process is supervised and restarted if it dies.
//
// The ports and directories are described in layout.go. Each running
// process's PID is in its directory (broker-<i>/broker.pid,
// quorum-<j>/quorum.pid), and a file named "hold" there keeps it down
// (holdFile).
package devcluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Config describes a development cluster.
type Config struct {
	// Brokers is the number of brokers, 1 or more (0 means 1). More than
	// one also runs a metadata quorum (quorumSize).
	Brokers int
	// Port is broker 0's port; broker i listens on Port+i, on 127.0.0.1,
	// and the quorum members on the ports after the brokers' (layout.go).
	Port int
	// DataDir holds one directory per broker and quorum member, the
	// cluster id, and the properties file of a multi-broker cluster.
	DataDir string
	// Binary is the fjord executable the processes run; empty means this one.
	Binary string
	// ConfigFile is a server.properties file for every broker. For more
	// than one broker it is merged over the dev defaults (devProperties).
	ConfigFile string
	// LogLevel is passed to the brokers and quorum members.
	LogLevel string
	// Out receives the bootstrap line once every broker answers.
	Out io.Writer
	// Logs receives the processes' stdout and stderr; nil means os.Stderr.
	Logs io.Writer
}

// Validate checks the config and fills defaults.
func (c *Config) Validate() error {
	if c.Brokers == 0 {
		c.Brokers = 1
	}
	if c.Brokers < 0 {
		return fmt.Errorf("--brokers %d: need at least one broker", c.Brokers)
	}
	if c.Port <= 0 || c.lastPort() > 65535 {
		return fmt.Errorf("port %d is out of range: a cluster of %d brokers uses ports %d-%d", c.Port, c.Brokers, c.Port, c.lastPort())
	}
	if c.DataDir == "" {
		return errors.New("no data directory")
	}
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find fjord binary: %w", err)
		}
		c.Binary = exe
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
	if c.Logs == nil {
		c.Logs = os.Stderr
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	return nil
}

// Run starts the cluster and supervises it until ctx is done, then stops it
// and returns nil: the brokers first, then the quorum members, each with
// SIGTERM and, after a grace period, SIGKILL. A process that exits on its
// own is restarted with backoff. The bootstrap line is written to cfg.Out
// once every broker answers and knows every other.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	clusterID, err := loadClusterID(filepath.Join(cfg.DataDir, "cluster.id"))
	if err != nil {
		return err
	}
	if err := checkLayout(cfg); err != nil {
		return err
	}
	configFile := cfg.ConfigFile
	if cfg.members() > 0 {
		configFile = filepath.Join(cfg.DataDir, "server.properties")
		if err := writeProperties(configFile, cfg.ConfigFile, cfg.Brokers); err != nil {
			return err
		}
	}
	members, err := quorumChildren(cfg)
	if err != nil {
		return err
	}
	brokers, err := brokerChildren(cfg, clusterID, configFile)
	if err != nil {
		return err
	}

	// The quorum outlives the brokers: it is stopped only once they have,
	// one member at a time. A leader that stops hands leadership to a
	// member still running, and the last member has none to hand it to;
	// members stopped together would wait out etcd's timeout for a
	// handover to a member that is stopping too.
	var stops []func()
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	for _, m := range members {
		mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.supervise(mctx)
		}()
		stops = append(stops, func() {
			cancel()
			<-done
		})
	}
	if len(members) > 0 {
		if err := waitQuorum(ctx, cfg.clientURLs()); err != nil {
			return nil // ctx is done
		}
		slog.Info("metadata quorum ready", "members", cfg.initialCluster())
	}

	var bwg sync.WaitGroup
	for _, b := range brokers {
		bwg.Go(func() { b.supervise(ctx) })
	}
	addrs := cfg.brokerAddrs()
	if err := waitReady(ctx, addrs); err == nil {
		fmt.Fprintf(cfg.Out, "bootstrap: %s\n", strings.Join(addrs, ","))
	}
	bwg.Wait()
	return nil
}

// quorumChildren returns the quorum members of cfg's cluster, creating
// their directories.
func quorumChildren(cfg Config) ([]*child, error) {
	var out []*child
	for j := range cfg.members() {
		dir := filepath.Join(cfg.DataDir, memberName(j))
		// etcd wants its data directory private to its user.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create quorum member dir: %w", err)
		}
		out = append(out, &child{
			name:   "quorum member " + strconv.Itoa(j),
			binary: cfg.Binary,
			args: []string{"quorum",
				"--name", memberName(j),
				"--data-dir", dir,
				"--listen-client", cfg.memberClientAddr(j),
				"--listen-peer", cfg.memberPeerAddr(j),
				"--initial-cluster", cfg.initialCluster(),
				// A member restarted on its data directory resumes
				// from it whatever this says (internal/quorum).
				"--initial-cluster-state", "new",
				"--log-level", cfg.LogLevel,
			},
			dir:     dir,
			dirPerm: 0o700,
			pidFile: filepath.Join(dir, "quorum.pid"),
			output:  cfg.Logs,
			log:     slog.Default().With("quorum-member", j),
		})
	}
	return out, nil
}

// brokerChildren returns the brokers of cfg's cluster, creating their
// directories.
func brokerChildren(cfg Config, clusterID, configFile string) ([]*child, error) {
	var out []*child
	for i := range cfg.Brokers {
		dir := filepath.Join(cfg.DataDir, "broker-"+strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create broker dir: %w", err)
		}
		addr := cfg.brokerAddr(i)
		args := []string{"broker",
			"--node-id", strconv.Itoa(i),
			"--listen", addr,
			"--advertised", addr,
			"--data-dir", dir,
			"--rack", zones[i%len(zones)],
			"--cluster-id", clusterID,
			"--log-level", cfg.LogLevel,
		}
		if cfg.members() > 0 {
			args = append(args,
				"--metadata-endpoints", strings.Join(cfg.clientURLs(), ","),
				"--cluster", clusterName,
			)
		}
		if configFile != "" {
			args = append(args, "--config", configFile)
		}
		out = append(out, &child{
			name:    "broker " + strconv.Itoa(i),
			binary:  cfg.Binary,
			args:    args,
			dir:     dir,
			dirPerm: 0o755,
			pidFile: filepath.Join(dir, "broker.pid"),
			output:  cfg.Logs,
			log:     slog.Default().With("broker", i),
		})
	}
	return out, nil
}

// layoutFile records the broker count and port a multi-broker data
// directory was created with: its quorum members know each other by those
// ports, and its brokers keep their data in the quorum, so it cannot run
// with others.
const layoutFile = "dev.layout"

// checkLayout refuses a data directory created for a multi-broker cluster
// with another broker count or port, and records the layout on the first
// start of a multi-broker cluster.
func checkLayout(cfg Config) error {
	path := filepath.Join(cfg.DataDir, layoutFile)
	want := fmt.Sprintf("brokers=%d port=%d\n", cfg.Brokers, cfg.Port)
	b, err := os.ReadFile(path)
	switch {
	case err == nil && string(b) == want:
		return nil
	case err == nil:
		was := strings.NewReplacer("brokers=", "--brokers ", "port=", "--port ").Replace(strings.TrimSpace(string(b)))
		return fmt.Errorf("data dir %s holds a cluster started with %s: its metadata quorum needs the same --brokers and --port, or use another --data-dir",
			cfg.DataDir, was)
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("read layout: %w", err)
	case cfg.members() == 0:
		return nil // a standalone broker has no layout to keep
	}
	if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	return nil
}

// loadClusterID reads the cluster id, creating it on first start.
func loadClusterID(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read cluster id: %w", err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write cluster id: %w", err)
	}
	return id, nil
}

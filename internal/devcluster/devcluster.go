// Package devcluster runs a local Kafka cluster in the foreground for
// development: each broker is its own `fjord broker` OS process, supervised
// and restarted if it dies.
package devcluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config describes a development cluster.
type Config struct {
	// Brokers is the number of brokers.
	Brokers int
	// Port is broker 0's port; broker i listens on Port+i, on 127.0.0.1.
	Port int
	// DataDir holds one directory per broker and the cluster id.
	DataDir string
	// Binary is the fjord executable the brokers run; empty means this one.
	Binary string
	// ConfigFile is a server.properties file passed to every broker.
	ConfigFile string
	// LogLevel is passed to the brokers.
	LogLevel string
	// Out receives the bootstrap line once every broker answers.
	Out io.Writer
}

// Validate checks the config and fills defaults.
func (c *Config) Validate() error {
	if c.Brokers == 0 {
		c.Brokers = 1
	}
	if c.Brokers != 1 {
		return fmt.Errorf("--brokers %d: multi-broker clusters need replication, which is not built yet; run with --brokers 1", c.Brokers)
	}
	if c.Port <= 0 || c.Port+c.Brokers-1 > 65535 {
		return fmt.Errorf("port %d is out of range", c.Port)
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
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	return nil
}

// zones are the racks brokers are spread over, in turn.
var zones = []string{"zone-a", "zone-b", "zone-c"}

// Run starts the brokers and supervises them until ctx is done, then stops
// them (SIGTERM, then SIGKILL after a grace period) and returns nil. A broker
// that exits on its own is restarted with backoff.
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
	var wg sync.WaitGroup
	addrs := make([]string, cfg.Brokers)
	for i := 0; i < cfg.Brokers; i++ {
		b := brokerProc{
			cfg:       cfg,
			id:        i,
			addr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port+i)),
			dir:       filepath.Join(cfg.DataDir, "broker-"+strconv.Itoa(i)),
			clusterID: clusterID,
		}
		addrs[i] = b.addr
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.supervise(ctx)
		}()
	}
	bootstrap := strings.Join(addrs, ",")
	if err := waitReady(ctx, addrs); err == nil {
		fmt.Fprintf(cfg.Out, "bootstrap: %s\n", bootstrap)
	}
	wg.Wait()
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

type brokerProc struct {
	cfg       Config
	id        int
	addr      string
	dir       string
	clusterID string
}

// supervise runs the broker process, restarting it when it exits, until ctx
// is done.
func (b *brokerProc) supervise(ctx context.Context) {
	// The children die with this process (Pdeathsig), which the kernel ties
	// to the thread that started them: keep this goroutine on one thread.
	runtime.LockOSThread()
	log := slog.Default().With("broker", b.id)
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		started := time.Now()
		err := b.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > 30*time.Second {
			backoff = 200 * time.Millisecond
		}
		log.Warn("broker exited; restarting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// stopGrace is how long a broker gets to stop after SIGTERM.
const stopGrace = 15 * time.Second

func (b *brokerProc) runOnce(ctx context.Context) error {
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	args := []string{"broker",
		"--node-id", strconv.Itoa(b.id),
		"--listen", b.addr,
		"--advertised", b.addr,
		"--data-dir", b.dir,
		"--rack", zones[b.id%len(zones)],
		"--cluster-id", b.clusterID,
		"--log-level", b.cfg.LogLevel,
	}
	if b.cfg.ConfigFile != "" {
		args = append(args, "--config", b.cfg.ConfigFile)
	}
	cmd := exec.Command(b.cfg.Binary, args...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	pidFile := filepath.Join(b.dir, "broker.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		slog.Warn("write pid file", "err", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		os.Remove(pidFile)
		return err
	case <-ctx.Done():
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(stopGrace):
		cmd.Process.Kill()
		<-done
	}
	os.Remove(pidFile)
	return nil
}

// waitReady returns once every broker answers an ApiVersions request.
func waitReady(ctx context.Context, addrs []string) error {
	for _, addr := range addrs {
		for {
			if err := ping(ctx, addr); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// ping sends one ApiVersions request to addr.
func ping(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	return err
}

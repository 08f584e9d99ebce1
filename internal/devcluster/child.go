package devcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// holdFile is the name of the file that keeps a broker or quorum member
// down: while <dir>/hold exists (broker-<i>/hold, quorum-<j>/hold), the
// supervisor stops that process (SIGTERM) if it runs and does not start it
// again; removing the file starts it. Killing a held process (SIGKILL) keeps
// it down as well, which is how a test takes brokers out for good.
const holdFile = "hold"

// Supervision timings.
const (
	// stopGrace is how long a process gets to stop after SIGTERM before
	// SIGKILL.
	stopGrace = 15 * time.Second
	// minBackoff and maxBackoff bound the wait before a process that
	// exited by itself is started again; the wait doubles with each exit
	// and is reset once a process has run for resetBackoffAfter.
	minBackoff        = 200 * time.Millisecond
	maxBackoff        = 5 * time.Second
	resetBackoffAfter = 30 * time.Second
	// holdPoll is how often the hold file is looked for.
	holdPoll = 200 * time.Millisecond
)

// errHeld is runOnce's result when it stopped the process for its hold file.
var errHeld = errors.New("held")

// child is one supervised OS process of the cluster: a broker or a quorum
// member. dir holds its PID file while it runs, and its hold file.
type child struct {
	name    string // for logs: "broker 0", "quorum member 1"
	binary  string
	args    []string
	dir     string
	dirPerm os.FileMode
	pidFile string
	output  io.Writer // the process's stdout and stderr
	log     *slog.Logger
}

func (c *child) holdPath() string { return filepath.Join(c.dir, holdFile) }

func (c *child) held() bool {
	_, err := os.Stat(c.holdPath())
	return err == nil
}

// supervise runs the process until ctx is done, starting it again whenever
// it exits, after a backoff, or when its hold file goes away. It returns
// once the process has stopped.
func (c *child) supervise(ctx context.Context) {
	// The processes die with this one (Pdeathsig), which the kernel ties to
	// the thread that started them: keep this goroutine on one thread, and
	// let the thread end with it.
	runtime.LockOSThread()
	backoff := minBackoff
	if c.held() {
		c.log.Info(c.name+" is held; remove the hold file to start it", "hold", c.holdPath())
	}
	for {
		if !c.waitUnheld(ctx) {
			return
		}
		started := time.Now()
		err := c.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errHeld) || c.held() {
			c.log.Info(c.name+" stopped and held; remove the hold file to start it", "exit", err, "hold", c.holdPath())
			backoff = minBackoff
			continue
		}
		if time.Since(started) > resetBackoffAfter {
			backoff = minBackoff
		}
		c.log.Warn(c.name+" exited; restarting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// waitUnheld returns true once the hold file is absent, or false if ctx is
// done first.
func (c *child) waitUnheld(ctx context.Context) bool {
	if !c.held() {
		return true
	}
	tick := time.NewTicker(holdPoll)
	defer tick.Stop()
	for c.held() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	c.log.Info(c.name + " released; starting it")
	return true
}

// runOnce starts the process and waits for it to exit. When ctx is done or
// the hold file appears, it stops the process (SIGTERM, then SIGKILL after
// stopGrace) and returns nil or errHeld.
func (c *child) runOnce(ctx context.Context) error {
	if err := os.MkdirAll(c.dir, c.dirPerm); err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	cmd := exec.Command(c.binary, c.args...)
	cmd.Stdout = c.output
	cmd.Stderr = c.output
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	if err := os.WriteFile(c.pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		c.log.Warn("write pid file", "err", err)
	}
	defer os.Remove(c.pidFile)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(holdPoll)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err == nil {
				err = errors.New("exit status 0")
			}
			return err
		case <-ctx.Done():
			stop(cmd, done)
			return nil
		case <-tick.C:
			if c.held() {
				c.log.Info("stopping "+c.name+" for its hold file", "hold", c.holdPath())
				stop(cmd, done)
				return errHeld
			}
		}
	}
}

// stop sends cmd SIGTERM, then SIGKILL if it has not exited after
// stopGrace, and returns once it has exited (done delivers Wait's result).
func stop(cmd *exec.Cmd, done <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(stopGrace):
		_ = cmd.Process.Kill()
		<-done
	}
}

package provision

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// This file reads Linux's /proc to find a cluster's processes (brokers and
// quorum members) by their command line. Each is identified by the
// --data-dir it was started with, which is unique to one process of one
// cluster; that is what lets a restarted control plane adopt the processes
// an earlier run started.

// dataDirOf returns the value of --data-dir in a NUL-separated command line.
func dataDirOf(cmdline []byte) (string, bool) {
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	for i, a := range args {
		if a == "--data-dir" || a == "-data-dir" {
			if i+1 < len(args) {
				return args[i+1], true
			}
			return "", false
		}
		if v, ok := strings.CutPrefix(a, "--data-dir="); ok {
			return v, true
		}
		if v, ok := strings.CutPrefix(a, "-data-dir="); ok {
			return v, true
		}
	}
	return "", false
}

// running reports whether pid is a live (not zombie) process that leads
// its process group and was started with --data-dir dataDir.
func running(pid int, dataDir string) bool {
	if pid <= 0 || !leader(pid) {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	d, ok := dataDirOf(cmdline)
	return ok && d == dataDir
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	state, _, ok := stat(pid)
	return ok && state != 'Z' && state != 'X'
}

// leader reports whether pid is alive and leads its process group. Brokers
// and quorum members are started with Setpgid, so they do; a child a broker's launcher forks
// (a shell running sleep, say) shares its command line for a moment but not
// its leadership, and is not mistaken for a second broker.
func leader(pid int) bool {
	state, pgrp, ok := stat(pid)
	return ok && state != 'Z' && state != 'X' && pgrp == pid
}

// stat reads the state and process group of pid from /proc/PID/stat.
func stat(pid int) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) S ppid pgrp ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return 0, 0, false
	}
	pgrp, err = strconv.Atoi(f[2])
	if err != nil || len(f[0]) != 1 {
		return 0, 0, false
	}
	return f[0][0], pgrp, true
}

// scan returns the live process-group leaders whose --data-dir lies under
// root, by data dir.
func scan(root string) (map[string][]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	prefix := root + string(filepath.Separator)
	found := map[string][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		d, ok := dataDirOf(cmdline)
		if !ok || !strings.HasPrefix(d, prefix) || !leader(pid) {
			continue
		}
		found[d] = append(found[d], pid)
	}
	return found, nil
}

// signal sends sig to pid's process group if pid leads one (the processes
// are started with Setpgid), else to pid alone.
func signal(pid int, sig syscall.Signal) error {
	target := pid
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
		target = -pid
	}
	err := syscall.Kill(target, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

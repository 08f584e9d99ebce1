package bench

import "syscall"

// childAttr makes a child broker die with this process, so an abandoned
// comparison leaves no broker behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// syncDisks writes dirty pages back, so one run's writeback does not land
// in the next run's latencies.
func syncDisks() { syscall.Sync() }

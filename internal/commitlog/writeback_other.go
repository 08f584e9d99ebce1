//go:build !linux

package commitlog

// startWriteback does nothing where sync_file_range does not exist; the OS
// writes dirty pages back on its own schedule.
func (sf *segFile) startWriteback(from, to int64) bool { return true }

package commitlog

import "golang.org/x/sys/unix"

// startWriteback starts the kernel writing bytes [from, to) of the file back
// to disk (sync_file_range with SYNC_FILE_RANGE_WRITE: start, do not wait),
// from a goroutine, because even starting writeback can block on a busy
// device and the caller holds the log's locks. It reports false, doing
// nothing, while an earlier writeback of this file is still being started;
// the caller keeps the range and asks again after a later append.
//
// The goroutine holds a reference to the file, so the file stays open until
// it is done; it exits after one sync_file_range call, and Log.Close waits
// for it (segFile.wb).
func (sf *segFile) startWriteback(from, to int64) bool {
	if !sf.writingBack.CompareAndSwap(false, true) {
		return false
	}
	sf.acquire()
	sf.wb.Add(1)
	go func() {
		defer sf.wb.Done()
		defer sf.release()
		defer sf.writingBack.Store(false)
		rc, err := sf.f.SyscallConn()
		if err != nil {
			return
		}
		// Errors are ignored: this writeback is only a head start, and a
		// write that fails is reported by the next fsync.
		rc.Control(func(fd uintptr) {
			unix.SyncFileRange(int(fd), from, to-from, unix.SYNC_FILE_RANGE_WRITE)
		})
	}()
	return true
}

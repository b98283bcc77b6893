package repository

import (
	"os"

	"golang.org/x/sys/unix"
)

// preallocate reserves size bytes for f so that the file system allocates
// its blocks once rather than write by write. Failure is harmless: writes
// then allocate as they go.
func preallocate(f *os.File, size int64) {
	_ = unix.Fallocate(int(f.Fd()), 0, 0, size)
}

// startWriteback asks the kernel to start writing a range to disk now, so
// that writeback overlaps the rest of the restore and the final fsync only
// waits for the tail. It does not wait, and failure only costs speed.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

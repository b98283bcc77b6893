package sqlitesrc

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// SQLite's unix VFS lock bytes: the main file's lock range starts at the
// pending byte (0x40000000), and every connection to a WAL database holds a
// shared lock on the dead-man-switch byte of the -shm file (offset 128).
const (
	sqlitePendingByte = 0x40000000
	sqliteLockRange   = 2 + 510 // pending, reserved and the shared range
	shmDMSOffset      = 128
)

// inUseByOtherProcess reports whether another process holds SQLite locks on
// the database at path. POSIX locks of this process are invisible to
// F_GETLK, so connections inside this process are not reported.
func inUseByOtherProcess(path string) (bool, error) {
	if held, err := lockHeld(path, sqlitePendingByte, sqliteLockRange); err != nil || held {
		return held, err
	}
	held, err := lockHeld(path+"-shm", shmDMSOffset, 1)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return held, err
}

func lockHeld(path string, start, length int64) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			f, err = os.Open(path)
		}
		if err != nil {
			return false, err
		}
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: start, Len: length}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil {
		return false, err
	}
	return lk.Type != unix.F_UNLCK, nil
}

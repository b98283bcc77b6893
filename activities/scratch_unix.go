//go:build unix

package activities

import (
	"os"
	"syscall"
)

// lockScratch takes an exclusive flock on f, which lasts until f is
// closed or its process ends; with wait false it fails at once when
// another open file holds the lock.
func lockScratch(f *os.File, wait bool) error {
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	return syscall.Flock(int(f.Fd()), how)
}

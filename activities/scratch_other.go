//go:build !unix

package activities

import (
	"errors"
	"os"
)

// lockScratch cannot lock here: scratch files are never taken for stale.
func lockScratch(f *os.File, wait bool) error {
	if wait {
		return nil
	}
	return errors.New("scratch files are not locked on this system")
}

package activities

import (
	"os"
	"path/filepath"
	"time"
)

// Scratch files. Verification and exports rebuild a backup's image in the
// worker's scratch directory and remove it when they end. A worker killed
// on the way cannot, and the retry makes a file of its own, so every crash
// would leave a database-sized file behind (found by the crash-point
// campaign). Each scratch file is therefore held under an exclusive lock
// (flock) while it is open, and making a new one first removes those of its
// kind whose holder is gone: the lock goes with the process that held it.

// staleScratchAge protects a file just created and not yet locked: a file
// younger than this is never removed.
const staleScratchAge = 5 * time.Second

// createScratch creates dir/<kind>-<id>-*.db, locked for as long as it is
// open, after removing the unlocked <kind>-*.db files that are older than
// staleScratchAge. The caller closes and removes it.
func createScratch(dir, kind, id string) (*os.File, error) {
	sweepScratch(dir, kind)
	f, err := os.CreateTemp(dir, kind+"-"+id+"-*.db")
	if err != nil {
		return nil, err
	}
	if err := lockScratch(f, true); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// sweepScratch removes the <kind>-*.db files of dir that no live process
// holds. It is best effort: what it cannot remove, it leaves.
func sweepScratch(dir, kind string) {
	paths, _ := filepath.Glob(filepath.Join(dir, kind+"-*.db"))
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil || time.Since(info.ModTime()) < staleScratchAge {
			continue
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if lockScratch(f, false) == nil {
			os.Remove(p)
		}
		f.Close()
	}
}

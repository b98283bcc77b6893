package sqlitesrc

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// mappedReads: the snapshot connection reads the database through SQLite's
// memory map (PRAGMA mmap_size) rather than a pread per page, which takes
// a third of a backup's reading time. Pages already read are released from
// the process (releaseMapped) so that the map does not grow the worker's
// memory by the size of the database.
const mappedReads = true

// mmapLimit is the most SQLite maps; SQLite caps it at its compile-time
// maximum (2 GiB by default) and reads the rest with pread.
const mmapLimit = 1 << 40

// releaseMapped drops this process's page-table entries for the first
// upTo bytes of every shared mapping of path's file (SQLite's). The data
// stays in the page cache; a later read of those pages faults them back
// in. Errors only mean the memory is not released early.
func releaseMapped(path string, upTo int64) {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[4] != strconv.FormatUint(st.Ino, 10) || !strings.Contains(fields[1], "s") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(fields[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil || int64(off) >= upTo {
			continue
		}
		n := min(end-start, uint64(upTo)-off)
		n &^= uint64(os.Getpagesize() - 1)
		if n > 0 {
			_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(n), unix.MADV_DONTNEED)
		}
	}
}

package sqlitesrc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mappingRSS returns the resident kilobytes of the mapping starting at addr
// (from /proc/self/smaps).
func mappingRSS(t *testing.T, addr uintptr) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if lo, _, ok := strings.Cut(strings.Fields(line)[0], "-"); ok && !strings.HasSuffix(strings.Fields(line)[0], ":") {
			in = lo == fmt.Sprintf("%x", addr)
			continue
		}
		if in && strings.HasPrefix(line, "Rss:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return kb
		}
	}
	t.Fatalf("mapping at %x not found", addr)
	return 0
}

// Pages read through the map are released from the process: the map does
// not grow the worker's memory by the size of the database.
func TestReleaseMappedDropsReadPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.db")
	const size = 32 << 20
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	sum := 0
	for i := 0; i < size; i += 4096 {
		sum += int(m[i])
	}
	t.Logf("touched %d pages", size/4096)
	addr := uintptr(unsafePointer(m))
	if rss := mappingRSS(t, addr); rss < 30000 {
		t.Fatalf("touched mapping resident %d kB, want ~32768", rss)
	}
	releaseMapped(path, size/2)
	if rss := mappingRSS(t, addr); rss > 17000 || rss < 15000 {
		t.Fatalf("after releasing the first half, %d kB resident, want ~16384", rss)
	}
	releaseMapped(path, size)
	if rss := mappingRSS(t, addr); rss > 100 {
		t.Fatalf("after releasing all, %d kB resident", rss)
	}
	if sum != 0 {
		t.Fatal("the file should read as zeros")
	}
}

func unsafePointer(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

// A database file cut short behind SQLite's back while the scan reads it
// through the map faults (SIGBUS) on the next page: the snapshot returns an
// error naming the file, and the process goes on.
func TestTruncatedFileDuringMappedScanIsAnError(t *testing.T) {
	path := newLedger(t, 20000)
	snap, err := OpenSnapshot(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if snap.PageCount < 64 {
		t.Fatalf("only %d pages", snap.PageCount)
	}
	err = snap.Pages(context.Background(), func(pgno uint32, _ []byte) error {
		if pgno == 8 {
			// What no SQLite writer does: the file loses its tail.
			if err := os.Truncate(path, 16*int64(snap.PageSize)); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	})
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) {
		t.Fatalf("scan of a file cut short: %v", err)
	}
}

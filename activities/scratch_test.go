//go:build unix

package activities

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A scratch file whose holder died is removed when the next one is made;
// one still held, or just made, is not.
func TestScratchFilesOfDeadHoldersAreRemoved(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Minute)
	stale := filepath.Join(dir, "verify-20261126T031910.043Z-fe4e298e-123.db")
	os.WriteFile(stale, []byte("what a killed worker left"), 0o600)
	os.Chtimes(stale, old, old)
	fresh := filepath.Join(dir, "verify-20261126T031910.043Z-fe4e298e-456.db")
	os.WriteFile(fresh, []byte("just created, not yet locked"), 0o600)
	other := filepath.Join(dir, "export-20261126T031910.043Z-fe4e298e-789.db")
	os.WriteFile(other, []byte("another kind"), 0o600)
	os.Chtimes(other, old, old)

	held, err := createScratch(dir, "verify", "20261126T031910.043Z-fe4e298e")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	os.Chtimes(held.Name(), old, old) // a long verification: old, but held
	for path, want := range map[string]bool{stale: false, fresh: true, other: true, held.Name(): true} {
		if _, err := os.Stat(path); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(path), err == nil, want)
		}
	}
	second, err := createScratch(dir, "verify", "20261126T031910.043Z-fe4e298e")
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, err := os.Stat(held.Name()); err != nil {
		t.Fatal("a scratch file in use was removed")
	}
	held.Close() // its holder is gone
	third, err := createScratch(dir, "verify", "x")
	if err != nil {
		t.Fatal(err)
	}
	third.Close()
	if _, err := os.Stat(held.Name()); err == nil {
		t.Fatal("the file of a holder that is gone was kept")
	}
}

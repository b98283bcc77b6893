package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-dr/bulwark/repository"
	"github.com/bulwark-dr/bulwark/workflows"
)

// expectOneLineError runs the CLI, expects exit 1 and a single stderr line
// that contains every one of wants.
func expectOneLineError(t *testing.T, c *cluster, wants []string, args ...string) {
	t.Helper()
	_, stderr, code := c.cli(args...)
	if code != 1 {
		t.Errorf("bulwark %v: exit %d, want 1 (stderr %q)", args, code, stderr)
		return
	}
	if lines := strings.Count(strings.TrimRight(stderr, "\n"), "\n") + 1; lines != 1 {
		t.Errorf("bulwark %v: %d lines of error, want one:\n%s", args, lines, stderr)
	}
	for _, w := range wants {
		if !strings.Contains(stderr, w) {
			t.Errorf("bulwark %v: error %q does not mention %q", args, strings.TrimSpace(stderr), w)
		}
	}
}

func TestBadInputGivesOneLineErrorsAndLosesNothing(t *testing.T) {
	c := newCluster(t, "")
	dir := c.dir
	notSQLite := filepath.Join(dir, "notes.txt")
	os.WriteFile(notSQLite, []byte("groceries: 12.50\nrent: 800.00\n"+strings.Repeat("x", 200)), 0o644)
	good := newFinance(t, dir, 0)
	data, _ := os.ReadFile(good)
	truncated := filepath.Join(dir, "truncated.db")
	os.WriteFile(truncated, data[:len(data)/3+7], 0o644)

	cfg := configFor(dir, "") + `  - name: missing
    path: ` + filepath.Join(dir, "nowhere.db") + `
  - name: notes
    path: ` + notSQLite + `
  - name: truncated
    path: ` + truncated + "\n"
	os.WriteFile(c.config, []byte(cfg), 0o600)
	w := c.startWorker()

	expectOneLineError(t, c, []string{"does not exist", "nowhere.db", "NoDatabase"}, "backup", "missing")
	expectOneLineError(t, c, []string{"SQLite header", "notes.txt"}, "backup", "notes")
	expectOneLineError(t, c, []string{"truncated.db", "truncated"}, "backup", "truncated")
	expectOneLineError(t, c, []string{`"nope" is not in`}, "backup", "nope")
	for _, p := range []string{notSQLite, truncated} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s was touched: %v", p, err)
		}
	}

	var res workflows.BackupResult
	json.Unmarshal([]byte(c.mustCLI("backup", "finance", "--json")), &res)

	// An unwritable restore target.
	blocker := filepath.Join(dir, "a-file")
	os.WriteFile(blocker, []byte("keep me"), 0o600)
	expectOneLineError(t, c, []string{"a-file", "not a directory"}, "restore", "finance", "latest", "--to", filepath.Join(blocker, "x.db"))
	if b, _ := os.ReadFile(blocker); string(b) != "keep me" {
		t.Fatal("blocking file changed")
	}

	// A corrupted chunk, then a missing one: restore fails, writes nothing,
	// and verify names the problem.
	chunk := filepath.Join(dir, "backups", filepath.FromSlash(repository.ChunkKey("finance", res.BackupID, 0)))
	orig, err := os.ReadFile(chunk)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), orig...)
	flipped[len(flipped)/2] ^= 1
	os.WriteFile(chunk, flipped, 0o600)
	target := filepath.Join(dir, "restored.db")
	expectOneLineError(t, c, []string{"chunk 0", res.BackupID, "CorruptBackup"}, "restore", "finance", res.BackupID, "--to", target)
	if _, err := os.Stat(target); err == nil {
		t.Fatal("a corrupt restore left a file at the target")
	}
	out, _, code := c.cli("verify", "finance", res.BackupID)
	if code == 0 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "chunk 0") {
		t.Fatalf("verify of a corrupt backup: exit %d\n%s", code, out)
	}
	os.Remove(chunk)
	expectOneLineError(t, c, []string{"chunk 0", "not found"}, "restore", "finance", res.BackupID, "--to", target)
	os.WriteFile(chunk, orig, 0o600)

	// A wrong key: the worker starts with another key file.
	w.stop()
	keyPath := filepath.Join(dir, "keys", "bulwark.key")
	realKey, _ := os.ReadFile(keyPath)
	os.Remove(keyPath)
	w = c.startWorker() // creates a new, different key
	expectOneLineError(t, c, []string{"wrong key", "cannot unwrap"}, "restore", "finance", res.BackupID, "--to", target)
	if _, err := os.Stat(target); err == nil {
		t.Fatal("a restore with the wrong key left a file")
	}
	w.stop()
	os.WriteFile(keyPath, realKey, 0o600)
	c.startWorker()
	c.mustCLI("restore", "finance", res.BackupID, "--to", target)
	if hashOf(t, target) != res.ImageHash {
		t.Fatal("restore after repairing everything differs")
	}

	// A malformed config: the CLI says which line and setting.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("destination: x\nkeeper: keyfile:///k\ndatabses:\n  - name: finance\n"), 0o600)
	expectOneLineError(t, c, []string{"bad.yaml", "databses", "unknown setting"}, "list", "--config", bad)
	os.WriteFile(bad, []byte("destination: x\nkeeper: keyfile:///k\ndatabases:\n  - name: Finance DB\n    path: f.db\n"), 0o600)
	expectOneLineError(t, c, []string{"databases[0].name", `"finance-db"`}, "list", "--config", bad)
	os.WriteFile(bad, []byte("destination: [unclosed\n"), 0o600)
	expectOneLineError(t, c, []string{"bad.yaml", "line 1"}, "list", "--config", bad)

	if ids := listed(t, dir); len(ids) != 1 || ids[0] != res.BackupID {
		t.Fatalf("backups after all the bad input: %v", ids)
	}
}

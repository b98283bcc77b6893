package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/workflows"
)

func TestExportSQLAndCSVEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("sqlite3"); err != nil {
		// CI installs the shell (.ci/run), so there a missing one is a
		// failure, not a reason to leave the round trip unproven.
		if os.Getenv("BULWARK_REQUIRE_SQLITE3") != "" {
			t.Fatal("the sqlite3 shell is required (BULWARK_REQUIRE_SQLITE3 is set) but not installed")
		}
		t.Skip("the sqlite3 command is not installed (.ci/run installs it)")
	}
	c := newCluster(t, "")
	os.WriteFile(c.config, []byte(configFor(c.dir, "")), 0o600)
	newFinance(t, c.dir, 0)
	c.startWorker()
	var res workflows.BackupResult
	json.Unmarshal([]byte(c.mustCLI("backup", "finance", "--json")), &res)
	image := filepath.Join(c.dir, "image.db")
	c.mustCLI("restore", "finance", res.BackupID, "--to", image)

	dir := filepath.Join(c.dir, "export-sql")
	var ex workflows.ExportResult
	if err := json.Unmarshal([]byte(c.mustCLI("export", "finance", res.BackupID, "--format", "sql", "--to", dir, "--json")), &ex); err != nil {
		t.Fatal(err)
	}
	if len(ex.Paths) != 1 {
		t.Fatalf("sql export wrote %v", ex.Paths)
	}
	// sqlite3 replays the dump into a database with the same schema and rows.
	loaded := filepath.Join(c.dir, "loaded.db")
	cmd := exec.Command("sqlite3", loaded)
	dump, _ := os.ReadFile(ex.Paths[0])
	cmd.Stdin = bytes.NewReader(dump)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sqlite3 < dump: %v\n%s", err, out)
	}
	for _, q := range []string{
		"SELECT group_concat(type || ':' || name || ':' || coalesce(sql, ''), char(10)) FROM (SELECT * FROM sqlite_schema ORDER BY type, name)",
		"SELECT count(*) || ':' || sum(amount_pence) || ':' || sum(length(description)) FROM expenses",
		"SELECT count(*) || ':' || sum(length(full_name)) FROM users",
		"SELECT count(*) FROM incomes",
		"SELECT * FROM writer_state",
	} {
		want, got := sqliteQuery(t, image, q), sqliteQuery(t, loaded, q)
		if want != got {
			t.Fatalf("%s\nbackup: %.300s\ndump:   %.300s", q, want, got)
		}
	}

	// CSV: one file per table with a header row.
	csvDir := filepath.Join(c.dir, "export-csv")
	json.Unmarshal([]byte(c.mustCLI("export", "finance", res.BackupID, "--format", "csv", "--to", csvDir, "--json")), &ex)
	head, err := os.ReadFile(filepath.Join(csvDir, "expenses.csv"))
	if err != nil || !strings.HasPrefix(string(head), `"expense_id","user_id",`) {
		t.Fatalf("expenses.csv: %v %.80q", err, head)
	}
	// Exports are listed with their backup, and never overwrite files.
	var list activities.ListOutput
	json.Unmarshal([]byte(c.mustCLI("list", "finance", "--json")), &list)
	if got := strings.Join(list.Backups[0].Exports, ","); got != "sql,csv" {
		t.Fatalf("exports listed: %q", got)
	}
	expectOneLineError(t, c, []string{"already exists", "nothing is overwritten"}, "export", "finance", res.BackupID, "--format", "csv", "--to", csvDir)
}

func sqliteQuery(t *testing.T, db, q string) string {
	t.Helper()
	out, err := exec.Command("sqlite3", db, q).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %s: %v\n%s", q, err, out)
	}
	return string(out)
}

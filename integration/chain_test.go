package integration

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/repository"
	"github.com/bulwark-dr/bulwark/workflows"
)

func TestIncrementalChainsAndTableRestoreEndToEnd(t *testing.T) {
	c := newCluster(t, "")
	os.WriteFile(c.config, []byte(configFor(c.dir, "")), 0o600)
	src := newFinance(t, c.dir, 8<<20)
	c.startWorker()
	backup := func(typ string) workflows.BackupResult {
		t.Helper()
		var res workflows.BackupResult
		if err := json.Unmarshal([]byte(c.mustCLI("backup", "finance", "--type", typ, "--json")), &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	db, err := sql.Open("sqlite", src)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	first := backup("incremental")
	if first.Type != "full" || !strings.Contains(first.FullBecause, "no earlier backup") {
		t.Fatalf("first backup: %s (%q)", first.Type, first.FullBecause)
	}
	if _, err := db.Exec(`DELETE FROM expenses WHERE expense_id BETWEEN 1000 AND 1600`); err != nil {
		t.Fatal(err)
	}
	incr := backup("incremental")
	if incr.Type != "incremental" || incr.Parent != first.BackupID || incr.ChangedPages >= incr.PageCount/2 {
		t.Fatalf("incremental: %+v", incr.SnapshotOutput)
	}
	db.Exec(`UPDATE incomes SET modified_at = '2026-11-25T12:00:00Z' WHERE income_id % 3 = 0`)
	diff := backup("differential")
	if diff.Type != "differential" || diff.Parent != first.BackupID {
		t.Fatalf("differential: %+v", diff.SnapshotOutput)
	}

	var list activities.ListOutput
	json.Unmarshal([]byte(c.mustCLI("list", "finance", "--json")), &list)
	if len(list.Backups) != 3 || list.Backups[1].Parent != first.BackupID {
		t.Fatalf("list: %+v", list.Backups)
	}
	target := filepath.Join(c.dir, "incr.db")
	var rr workflows.RestoreResult
	json.Unmarshal([]byte(c.mustCLI("restore", "finance", incr.BackupID, "--to", target, "--json")), &rr)
	if hashOf(t, target) != incr.ImageHash {
		t.Fatal("restored incremental differs from its snapshot")
	}

	// Bring the deleted expenses back into the live database.
	var before int64
	db.QueryRow(`SELECT count(*) FROM expenses`).Scan(&before)
	out := c.mustCLI("restore-table", "finance", first.BackupID, "expenses", "--mode", "append")
	var after int64
	db.QueryRow(`SELECT count(*) FROM expenses`).Scan(&after)
	if after <= before || !strings.Contains(out, "row(s) written") || !strings.Contains(out, ".emergency-") {
		t.Fatalf("restore-table append: %d → %d rows\n%s", before, after, out)
	}

	// Damage the incremental's chunk: verifying it names the damaged backup
	// and everything that depends on it; the differential is unaffected.
	chunk := filepath.Join(c.dir, "backups", filepath.FromSlash(repository.ChunkKey("finance", incr.BackupID, 0)))
	data, _ := os.ReadFile(chunk)
	data[len(data)/2] ^= 0xff
	os.WriteFile(chunk, data, 0o600)
	vout, _, code := c.cli("verify", "finance", incr.BackupID)
	if code == 0 || !strings.Contains(vout, "backup "+incr.BackupID+" is damaged") || !strings.Contains(vout, "cannot be restored because of it: "+incr.BackupID) {
		t.Fatalf("verify of a damaged incremental: exit %d\n%s", code, vout)
	}
	c.mustCLI("verify", "finance", diff.BackupID)
}

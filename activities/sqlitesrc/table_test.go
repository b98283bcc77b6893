package sqlitesrc

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// tableFixture backs up a ledger, then changes the live database: deletes
// and updates entries, adds an account and entries that reference it. It
// returns the live path and the staged backup image.
func tableFixture(t *testing.T) (live, image string) {
	t.Helper()
	f := newFixture(t)
	live = newLedger(t, 1000)
	db, _ := sql.Open("sqlite", live)
	defer db.Close()
	mustExec(t, db, `CREATE TRIGGER entries_no_zero BEFORE INSERT ON entries WHEN NEW.amount = 0 BEGIN SELECT RAISE(ABORT, 'zero amount'); END`)
	if _, err := f.backup(t, live, id1, nil); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `DELETE FROM entries WHERE id <= 100`)
	mustExec(t, db, `UPDATE entries SET memo = 'changed live' WHERE id BETWEEN 101 AND 110`)
	mustExec(t, db, `INSERT INTO accounts(id, name) VALUES (3, 'savings')`)
	mustExec(t, db, `INSERT INTO entries(account, amount, memo) VALUES (3, 5, 'new live row')`)
	mustExec(t, db, `DROP INDEX entries_account`)
	image = filepath.Join(t.TempDir(), "image.db")
	if _, err := RestoreToTemp(context.Background(), RestoreOptions{Bucket: f.bucket, Keeper: f.keeper.Keeper, Database: "ledger", BackupID: id1, TempPath: image}); err != nil {
		t.Fatal(err)
	}
	return live, image
}

func queryInt(t *testing.T, path, q string) int64 {
	t.Helper()
	db, _ := sql.Open("sqlite", path)
	defer db.Close()
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestRestoreTableReplaceUnderConcurrentReader(t *testing.T) {
	live, image := tableFixture(t)
	before := queryInt(t, live, `SELECT count(*) FROM entries`)
	backupRows := queryInt(t, image, `SELECT count(*) FROM entries`)

	// A reader keeps counting entries: it must only ever see the table as it
	// was or as restored.
	stopReader := concurrentReader(t, live, "entries", func(n int64) bool { return n == before || n == backupRows })
	// entries references accounts(3) only through the new live row, which
	// replace removes; so replace succeeds and the new row goes.
	res, err := RestoreTable(context.Background(), TableRestoreOptions{Image: image, Live: live, Table: "entries", Mode: TableReplace, EmergencyCopy: live + ".emergency"})
	stopReader()
	if err != nil {
		t.Fatal(err)
	}
	if got := queryInt(t, live, `SELECT count(*) FROM entries`); got != backupRows || res.RowsWritten != backupRows {
		t.Fatalf("entries after replace: %d (written %d), backup has %d", got, res.RowsWritten, backupRows)
	}
	if queryInt(t, live, `SELECT count(*) FROM sqlite_schema WHERE name IN ('entries_account', 'entries_no_zero')`) != 2 {
		t.Fatal("index or trigger not restored")
	}
	if queryInt(t, live+".emergency", `SELECT count(*) FROM entries`) != before {
		t.Fatal("emergency copy does not hold the live table as it was")
	}
	if chk, err := CheckFile(context.Background(), live); err != nil || !chk.OK() {
		t.Fatalf("live database after replace: %v %v", chk, err)
	}
}

// concurrentReader counts the rows of table in a loop on its own connection
// until the returned function is called, failing the test if a count is not
// ok or a query fails: a table restore is one transaction, so readers see the
// table before or after it, never in between or missing.
func concurrentReader(t *testing.T, live, table string, ok func(int64) bool) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var reads atomic.Int64
	var bad atomic.Value
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		db, _ := sql.Open("sqlite", "file:"+live+"?_pragma=busy_timeout(10000)")
		defer db.Close()
		for {
			select {
			case <-done:
				return
			default:
			}
			var n int64
			if err := db.QueryRow(`SELECT count(*) FROM ` + QuoteIdent(table)).Scan(&n); err != nil {
				bad.Store("reader: " + err.Error())
				continue
			}
			if !ok(n) {
				bad.Store("reader saw an intermediate row count " + strconv.FormatInt(n, 10))
			}
			reads.Add(1)
		}
	}()
	return func() {
		t.Helper()
		close(done)
		wg.Wait()
		if v := bad.Load(); v != nil {
			t.Fatal(v)
		}
		if reads.Load() == 0 {
			t.Fatal("the concurrent reader never read")
		}
	}
}

func TestRestoreTableAppendBringsBackDeletedRowsOnly(t *testing.T) {
	live, image := tableFixture(t)
	before := queryInt(t, live, `SELECT count(*) FROM entries`)
	stopReader := concurrentReader(t, live, "entries", func(n int64) bool { return n == before || n == before+100 })
	res, err := RestoreTable(context.Background(), TableRestoreOptions{Image: image, Live: live, Table: "entries", Mode: TableAppend, EmergencyCopy: live + ".emergency"})
	stopReader()
	if err != nil {
		t.Fatal(err)
	}
	if res.RowsWritten != 100 {
		t.Fatalf("appended %d rows, want the 100 deleted ones", res.RowsWritten)
	}
	if queryInt(t, live, `SELECT count(*) FROM entries WHERE memo = 'changed live'`) != 10 {
		t.Fatal("append overwrote rows changed live")
	}
	if queryInt(t, live, `SELECT count(*) FROM entries WHERE memo = 'new live row'`) != 1 {
		t.Fatal("append lost a row added live")
	}
}

func TestRestoreTableNewNameLeavesLiveTableAlone(t *testing.T) {
	live, image := tableFixture(t)
	before := queryInt(t, live, `SELECT count(*) FROM entries`)
	stopReader := concurrentReader(t, live, "entries", func(n int64) bool { return n == before })
	res, err := RestoreTable(context.Background(), TableRestoreOptions{Image: image, Live: live, Table: "entries", Mode: TableNewName, EmergencyCopy: live + ".emergency"})
	stopReader()
	if err != nil {
		t.Fatal(err)
	}
	if res.Into != "entries_restored" || queryInt(t, live, `SELECT count(*) FROM entries_restored`) != res.RowsInBackup {
		t.Fatalf("result %+v", res)
	}
	if queryInt(t, live, `SELECT count(*) FROM entries`) != before {
		t.Fatal("live table changed")
	}
	if queryInt(t, live, `SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'entries_restored'`) != 1 {
		t.Fatal("index not created on the restored copy")
	}
	_, err = RestoreTable(context.Background(), TableRestoreOptions{Image: image, Live: live, Table: "entries", Mode: TableNewName, EmergencyCopy: live + ".emergency2"})
	if !errors.Is(err, ErrTableRestore) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second new-name restore: %v", err)
	}
}

func TestRestoreTableRefusesForeignKeyViolations(t *testing.T) {
	live, image := tableFixture(t)
	// The backup's accounts lack account 3, which a live entry references.
	_, err := RestoreTable(context.Background(), TableRestoreOptions{Image: image, Live: live, Table: "accounts", Mode: TableReplace, EmergencyCopy: live + ".emergency"})
	if !errors.Is(err, ErrTableRestore) || !strings.Contains(err.Error(), "entries row") || !strings.Contains(err.Error(), "accounts") {
		t.Fatalf("got %v", err)
	}
	if queryInt(t, live, `SELECT count(*) FROM accounts WHERE id = 3`) != 1 {
		t.Fatal("the refused restore changed the live table")
	}
	_, err = RestoreTable(context.Background(), TableRestoreOptions{Image: image, Live: live, Table: "payees", Mode: TableReplace, EmergencyCopy: live + ".emergency2"})
	if !errors.Is(err, ErrTableRestore) || !strings.Contains(err.Error(), `no table "payees"`) {
		t.Fatalf("missing table: %v", err)
	}
}

func TestRestoreTableAppendRefusesSchemaMismatch(t *testing.T) {
	live, image := tableFixture(t)
	db, _ := sql.Open("sqlite", live)
	mustExec(t, db, `ALTER TABLE entries ADD COLUMN category TEXT`)
	db.Close()
	_, err := RestoreTable(context.Background(), TableRestoreOptions{Image: image, Live: live, Table: "entries", Mode: TableAppend, EmergencyCopy: live + ".emergency"})
	if !errors.Is(err, ErrTableRestore) || !strings.Contains(err.Error(), "new-name") {
		t.Fatalf("got %v", err)
	}
}

func TestRenameDDL(t *testing.T) {
	got, err := renameCreate(`CREATE TABLE IF NOT EXISTS "my ""t"" " (a INTEGER PRIMARY KEY, b)`, "TABLE", "x_restored")
	if err != nil || got != `CREATE TABLE "x_restored" (a INTEGER PRIMARY KEY, b)` {
		t.Fatalf("%q %v", got, err)
	}
	got, err = renameIndex(`create unique index [ix a] on "t"(a, b DESC) WHERE a > 0`, "t_restored_idx1", "t_restored")
	if err != nil || got != `CREATE UNIQUE INDEX "t_restored_idx1" ON "t_restored"(a, b DESC) WHERE a > 0` {
		t.Fatalf("%q %v", got, err)
	}
}

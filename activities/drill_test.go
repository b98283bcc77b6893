package activities

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/bulwark-dr/bulwark/repository"
)

// drillFixture is a real database with one real backup in a real file
// bucket, and activities whose scratch directory is a temp dir.
type drillFixture struct {
	acts  *SQLiteActivities
	live  string
	dir   string // the drills scratch directory
	state string // fileState of the live database after the backup
}

func newDrillFixture(t *testing.T) *drillFixture {
	t.Helper()
	live := newDatabase(t)
	acts, _ := newActivities(t, live)
	acts.ScratchDir = t.TempDir()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	if _, err := env.ExecuteActivity(acts.SnapshotSQLite, SnapshotInput{Database: "finance", BackupID: testBackupID}); err != nil {
		t.Fatal(err)
	}
	return &drillFixture{acts: acts, live: live, dir: filepath.Join(acts.ScratchDir, DrillsDirName), state: fileState(t, live)}
}

func (f *drillFixture) drill(t *testing.T, in RestoreDrillInput) (RestoreDrillOutput, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(f.acts)
	val, err := env.ExecuteActivity(f.acts.RestoreDrill, in)
	if err != nil {
		return RestoreDrillOutput{}, err
	}
	var out RestoreDrillOutput
	if err := val.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out, nil
}

// afterwards checks what every drill must leave behind: no scratch file
// (only the lock file, and the files of keep), and the live database
// exactly as it was.
func (f *drillFixture) afterwards(t *testing.T, out RestoreDrillOutput, keep ...string) {
	t.Helper()
	keep = append([]string{"finance.lock"}, keep...)
	sort.Strings(keep)
	if !out.ScratchRemoved || !strings.HasPrefix(out.ScratchPath, f.dir+string(filepath.Separator)) {
		t.Errorf("scratch %q removed %v, want a removed file in %s", out.ScratchPath, out.ScratchRemoved, f.dir)
	}
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if !reflect.DeepEqual(left, keep) {
		t.Errorf("left in the scratch directory: %v, want %v", left, keep)
	}
	if fileState(t, f.live) != f.state {
		t.Error("the live database or its directory changed during the drill")
	}
}

func TestRestoreDrillOfGoodBackupPasses(t *testing.T) {
	f := newDrillFixture(t)
	// Left by earlier attempts whose worker died: the one of this database
	// goes, the one of a database whose name extends this one's stays.
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := "finance-20261001T020000.000Z-0000beef.db"
	other := "finance-eu-20261001T020000.000Z-0000beef.db"
	for _, name := range []string{stale, other} {
		if err := os.WriteFile(filepath.Join(f.dir, name), []byte("stale"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	out, err := f.drill(t, RestoreDrillInput{Database: "finance", BackupID: testBackupID, Queries: []string{
		"SELECT count(*) FROM expenses",
		"SELECT id, amount_pence, description, NULL AS missing, x'00ff' AS raw FROM expenses WHERE id = 8",
		"SELECT max(amount_pence) > 0 AS positive FROM expenses",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !out.OK || !out.Restored || !out.ChecksOK || len(out.Problems) != 0 {
		t.Fatalf("drill of a good backup failed: %+v", out)
	}
	if out.BackupID != testBackupID || out.Integrity != "ok" || out.ForeignKeys != "ok" || out.Tables != 1 || out.Rows != 30000 || out.ImageBytes == 0 || out.ImageHash == "" || out.SnapshotAt.IsZero() {
		t.Errorf("result %+v", out)
	}
	if out.RestoreDuration <= 0 || out.CheckDuration <= 0 || out.QueryDuration <= 0 || out.Duration < out.RestoreDuration+out.CheckDuration+out.QueryDuration {
		t.Errorf("durations: restore %v, check %v, queries %v, total %v", out.RestoreDuration, out.CheckDuration, out.QueryDuration, out.Duration)
	}
	want := []DrillQueryResult{
		{Columns: []string{"count(*)"}, Row: []string{"30000"}},
		{Columns: []string{"id", "amount_pence", "description", "missing", "raw"}, Row: []string{"8", "91", "groceries at shop 7, paid by card", "NULL", "x'00ff'"}},
		{Columns: []string{"positive"}, Row: []string{"1"}},
	}
	if len(out.Queries) != len(want) {
		t.Fatalf("queries: %+v", out.Queries)
	}
	for i, q := range out.Queries {
		if !q.OK || q.Error != "" || q.Seconds <= 0 || !reflect.DeepEqual(q.Columns, want[i].Columns) || !reflect.DeepEqual(q.Row, want[i].Row) {
			t.Errorf("query %d: %+v, want %+v", i+1, q, want[i])
		}
	}
	f.afterwards(t, out, other)
}

// A query that errors, returns no row, or would write fails the drill —
// a result naming the query, not an activity error — while the restore and
// SQLite's checks still pass.
func TestRestoreDrillFailingQueriesFailTheDrill(t *testing.T) {
	f := newDrillFixture(t)
	out, err := f.drill(t, RestoreDrillInput{Database: "finance", BackupID: testBackupID, Queries: []string{
		"SELECT count(*) FROM expenses",
		"SELECT * FROM expenses WHERE amount_pence < 0",
		"SELECT count(*) FROM payroll",
		"DELETE FROM expenses",
	}})
	if err != nil {
		t.Fatalf("a failing query is a failed drill, not an error: %v", err)
	}
	if out.OK || !out.Restored || !out.ChecksOK {
		t.Fatalf("drill: %+v", out)
	}
	q := out.Queries
	if len(q) != 4 || !q[0].OK || q[1].OK || q[2].OK || q[3].OK {
		t.Fatalf("queries: %+v", q)
	}
	if q[1].Error != "returned no row" || !strings.Contains(q[2].Error, "payroll") || !strings.Contains(q[3].Error, "readonly") {
		t.Errorf("errors: %q, %q, %q", q[1].Error, q[2].Error, q[3].Error)
	}
	wantProblems := []string{
		"query 2 (SELECT * FROM expenses WHERE amount_pence < 0): returned no row",
		"query 3 (SELECT count(*) FROM payroll): ",
		"query 4 (DELETE FROM expenses): ",
	}
	if len(out.Problems) != len(wantProblems) {
		t.Fatalf("problems %q", out.Problems)
	}
	for i, p := range wantProblems {
		if !strings.HasPrefix(out.Problems[i], p) {
			t.Errorf("problem %q, want it to start %q", out.Problems[i], p)
		}
	}
	f.afterwards(t, out)
}

// A damaged chunk makes the backup unrestorable: the drill fails with a
// problem naming the backup and the damage, and still cleans up.
func TestRestoreDrillOfDamagedBackupFails(t *testing.T) {
	f := newDrillFixture(t)
	ctx := context.Background()
	key := repository.ChunkKey("finance", testBackupID, 1)
	data, err := f.acts.Bucket.ReadAll(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := f.acts.Bucket.WriteAll(ctx, key, data, nil); err != nil {
		t.Fatal(err)
	}
	out, err := f.drill(t, RestoreDrillInput{Database: "finance", BackupID: testBackupID, Queries: []string{"SELECT count(*) FROM expenses"}})
	if err != nil {
		t.Fatalf("a damaged backup is a failed drill, not an error: %v", err)
	}
	if out.OK || out.Restored || out.ChecksOK || len(out.Problems) != 1 || len(out.Queries) != 0 {
		t.Fatalf("drill: %+v", out)
	}
	if p := out.Problems[0]; !strings.Contains(p, "backup "+testBackupID+" cannot be restored") || !strings.Contains(p, key) {
		t.Errorf("problem %q does not name the backup and the damaged chunk", p)
	}
	f.afterwards(t, out)
}

// A second drill of the database on this host waits for the first to end
// instead of writing the same scratch file.
func TestRestoreDrillWaitsForAnotherDrillOfTheDatabase(t *testing.T) {
	f := newDrillFixture(t)
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockDrills(context.Background(), f.dir, "finance", func() {})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		out RestoreDrillOutput
		err error
	}
	done := make(chan result, 1)
	go func() {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestActivityEnvironment()
		env.RegisterActivity(f.acts)
		val, err := env.ExecuteActivity(f.acts.RestoreDrill, RestoreDrillInput{Database: "finance", BackupID: testBackupID})
		var out RestoreDrillOutput
		if err == nil {
			err = val.Get(&out)
		}
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("the drill ran while another held the lock: %+v, %v", r.out, r.err)
	case <-time.After(1500 * time.Millisecond):
	}
	unlock()
	select {
	case r := <-done:
		if r.err != nil || !r.out.OK {
			t.Fatalf("drill after the lock was released: %+v, %v", r.out, r.err)
		}
		f.afterwards(t, r.out)
	case <-time.After(time.Minute):
		t.Fatal("the drill did not run once the lock was released")
	}
}

// A backup that is not there is a finding too.
func TestRestoreDrillOfMissingBackupFails(t *testing.T) {
	f := newDrillFixture(t)
	const missing = "20261126T020000.000Z-0000dead"
	out, err := f.drill(t, RestoreDrillInput{Database: "finance", BackupID: missing})
	if err != nil {
		t.Fatal(err)
	}
	if out.OK || out.Restored || len(out.Problems) != 1 || !strings.Contains(out.Problems[0], missing) {
		t.Fatalf("drill: %+v", out)
	}
	f.afterwards(t, out)
}

func TestRestoreDrillBadInput(t *testing.T) {
	f := newDrillFixture(t)
	many := make([]string, MaxDrillQueries+1)
	for i := range many {
		many[i] = "SELECT 1"
	}
	for name, in := range map[string]RestoreDrillInput{
		"database not on this host": {Database: "payroll", BackupID: testBackupID},
		"bad backup id":             {Database: "finance", BackupID: "latest"},
		"too many queries":          {Database: "finance", BackupID: testBackupID, Queries: many},
		"empty query":               {Database: "finance", BackupID: testBackupID, Queries: []string{"SELECT 1", "  "}},
		"query too long":            {Database: "finance", BackupID: testBackupID, Queries: []string{"SELECT '" + strings.Repeat("x", MaxDrillQueryBytes) + "'"}},
	} {
		_, err := f.drill(t, in)
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != ErrTypeBadInput || !app.NonRetryable() {
			t.Errorf("%s: got %v, want non-retryable %s", name, err, ErrTypeBadInput)
		}
	}
	if fileState(t, f.live) != f.state {
		t.Error("the live database changed")
	}
}

// Drill records go to the primary and list newest first, bounded.
func TestRecordAndListDrills(t *testing.T) {
	_, bucket := newActivities(t, newDatabase(t))
	storage := &StorageActivities{Bucket: bucket, Worker: "test"}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(storage)

	base := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	var keys []string
	for i := range 3 {
		at := base.Add(time.Duration(i) * 24 * time.Hour)
		val, err := env.ExecuteActivity(storage.RecordDrill, RecordDrillInput{Record: repository.DrillRecord{
			Database: "finance", Host: "db1", BackupID: testBackupID, StartedAt: at, FinishedAt: at.Add(time.Minute), OK: i != 1, RestoreSeconds: 1.5,
		}})
		if err != nil {
			t.Fatal(err)
		}
		var out RecordDrillOutput
		val.Get(&out)
		if out.Key != repository.DrillRecordKey("finance", at) {
			t.Fatalf("recorded at %s", out.Key)
		}
		keys = append(keys, out.Key)
	}

	list := func(limit int) ListDrillsOutput {
		t.Helper()
		val, err := env.ExecuteActivity(storage.ListDrills, ListDrillsInput{Database: "finance", Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		var out ListDrillsOutput
		val.Get(&out)
		return out
	}
	all := list(0)
	if len(all.Drills) != 3 || all.Truncated || all.Drills[0].Key != keys[2] || all.Drills[2].Key != keys[0] || all.Drills[1].OK {
		t.Fatalf("listed %+v", all)
	}
	two := list(2)
	if len(two.Drills) != 2 || !two.Truncated || two.Drills[0].Key != keys[2] || two.Drills[1].Key != keys[1] {
		t.Fatalf("limit 2 listed %+v", two)
	}

	_, err := env.ExecuteActivity(storage.RecordDrill, RecordDrillInput{Record: repository.DrillRecord{Database: "Finance!", StartedAt: base}})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrTypeBadInput {
		t.Errorf("record with a bad name: %v", err)
	}
}

package activities

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/secrets/localsecrets"

	"github.com/bulwark-dr/bulwark/activities/sqlitesrc"
	"github.com/bulwark-dr/bulwark/keeper"
	"github.com/bulwark-dr/bulwark/repository"
)

const testBackupID = "20261125T020000Z-00c0ffee"

func newDatabase(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "finance.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE expenses(id INTEGER PRIMARY KEY, amount_pence INTEGER, description TEXT)`); err != nil {
		t.Fatal(err)
	}
	tx, _ := db.Begin()
	for i := 0; i < 30000; i++ {
		tx.Exec(`INSERT INTO expenses(amount_pence, description) VALUES (?, ?)`, i*13%9999, fmt.Sprintf("groceries at shop %d, paid by card", i%97))
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return path
}

func newActivities(t *testing.T, dbPath string) (*SQLiteActivities, *blob.Bucket) {
	t.Helper()
	b, err := fileblob.OpenBucket(t.TempDir(), &fileblob.Options{NoTempDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	k, _ := localsecrets.NewRandomKey()
	return &SQLiteActivities{
		Host: "test", Databases: map[string]string{"finance": dbPath}, Bucket: b,
		Keeper: sqlitesrc.KeeperWithDescription{Keeper: localsecrets.NewKeeper(k), Description: "test"}, ChunkBytes: 64 << 10,
	}, b
}

func TestSnapshotResumesFromHeartbeat(t *testing.T) {
	path := newDatabase(t)
	acts, bucket := newActivities(t, path)

	// A first attempt uploads some chunks and dies.
	ctx, cancel := context.WithCancel(context.Background())
	var started int
	_, err := sqlitesrc.Backup(ctx, sqlitesrc.BackupOptions{
		Path: path, Database: "finance", BackupID: testBackupID, Bucket: bucket, Keeper: acts.Keeper, ChunkBytes: acts.ChunkBytes,
		Progress: func(p sqlitesrc.BackupProgress) {
			if p.SettledChunks >= 3 && started == 0 {
				started = p.SubmittedChunks
				cancel()
			}
		},
	})
	if err == nil {
		t.Fatal("first attempt was meant to be interrupted")
	}

	// The retry gets the last heartbeat of the first attempt.
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	env.SetHeartbeatDetails(Progress{Phase: "backup", Chunk: 3, Submitted: started})
	val, err := env.ExecuteActivity(acts.SnapshotSQLite, SnapshotInput{Database: "finance", BackupID: testBackupID})
	if err != nil {
		t.Fatal(err)
	}
	var out SnapshotOutput
	val.Get(&out)
	if out.ReusedChunks < 3 {
		t.Fatalf("resumed snapshot re-used %d chunks, want ≥ 3", out.ReusedChunks)
	}
	ids, _ := repository.ListBackups(context.Background(), bucket, "finance")
	if len(ids) != 1 {
		t.Fatalf("listed %v", ids)
	}
}

func TestRestoreResumesFromHeartbeat(t *testing.T) {
	path := newDatabase(t)
	acts, _ := newActivities(t, path)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	val, err := env.ExecuteActivity(acts.SnapshotSQLite, SnapshotInput{Database: "finance", BackupID: testBackupID})
	if err != nil {
		t.Fatal(err)
	}
	var snap SnapshotOutput
	val.Get(&snap)

	target := filepath.Join(t.TempDir(), "restored.db")
	// A first attempt staged the first chunks; a resumed attempt fills in the
	// rest and the result is still the exact image.
	tmp := sqlitesrc.TempPathFor(target, testBackupID)
	if _, err := sqlitesrc.RestoreToTemp(context.Background(), sqlitesrc.RestoreOptions{
		Bucket: acts.Bucket, Keeper: acts.Keeper.Keeper, Database: "finance", BackupID: testBackupID, TempPath: tmp,
	}); err != nil {
		t.Fatal(err)
	}
	env2 := s.NewTestActivityEnvironment()
	env2.RegisterActivity(acts)
	env2.SetHeartbeatDetails(Progress{Phase: "restore", Chunk: snap.Chunks - 1})
	val, err = env2.ExecuteActivity(acts.RestoreSQLite, RestoreInput{Database: "finance", BackupID: testBackupID, Target: target})
	if err != nil {
		t.Fatal(err)
	}
	var out RestoreOutput
	val.Get(&out)
	if h, _, _ := repository.ImageHashFile(out.TempPath); h != snap.ImageHash {
		t.Fatal("resumed restore does not match the image")
	}
}

func TestBoundaryMakesPermanentErrorsNonRetryable(t *testing.T) {
	cases := map[error]string{
		fmt.Errorf("x: %w", repository.ErrCorrupt):        ErrTypeCorruptBackup,
		fmt.Errorf("x: %w", repository.ErrWrongKey):       ErrTypeWrongKey,
		fmt.Errorf("x: %w", keeper.ErrKeyFile):            ErrTypeWrongKey,
		fmt.Errorf("x: %w", repository.ErrNotFound):       ErrTypeNotFound,
		fmt.Errorf("x: %w", sqlitesrc.ErrNotSQLite):       ErrTypeNotSQLite,
		fmt.Errorf("x: %w", sqlitesrc.ErrDamaged):         ErrTypeSourceDamaged,
		fmt.Errorf("x: %w", sqlitesrc.ErrNoDatabase):      ErrTypeNoDatabase,
		&sqlitesrc.TargetError{Msg: "not writable"}:       ErrTypeRestoreTarget,
		fmt.Errorf("x: %w", repository.ErrBadInput):       ErrTypeBadInput,
		fmt.Errorf("%w", repository.ErrUnsupportedFormat): ErrTypeUnsupported,
	}
	for in, want := range cases {
		var app *temporal.ApplicationError
		if err := boundary(in); !errors.As(err, &app) || app.Type() != want || !app.NonRetryable() {
			t.Errorf("%v: got %v, want non-retryable %s", in, err, want)
		}
	}
	transient := errors.New("connection reset by peer")
	if err := boundary(transient); err != transient {
		t.Errorf("transient error changed: %v", err)
	}
}

func TestSnapshotOfUnknownDatabaseIsBadInput(t *testing.T) {
	acts, _ := newActivities(t, newDatabase(t))
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	_, err := env.ExecuteActivity(acts.SnapshotSQLite, SnapshotInput{Database: "payroll", BackupID: testBackupID})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrTypeBadInput {
		t.Fatalf("got %v", err)
	}
}

package sqlitesrc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/secrets/localsecrets"

	"github.com/bulwark-dr/bulwark/repository"
)

// newLedger creates a WAL-mode database with a ledger whose rows always sum
// to zero within a committed transaction, so a torn snapshot shows up as a
// non-zero sum.
func newLedger(t *testing.T, rows int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, `CREATE TABLE accounts(id INTEGER PRIMARY KEY, name TEXT NOT NULL)`)
	mustExec(t, db, `CREATE TABLE entries(id INTEGER PRIMARY KEY, account INTEGER NOT NULL REFERENCES accounts(id), amount INTEGER NOT NULL, memo TEXT, blob BLOB)`)
	mustExec(t, db, `CREATE INDEX entries_account ON entries(account)`)
	mustExec(t, db, `INSERT INTO accounts(id, name) VALUES (1, 'cash'), (2, 'café')`)
	tx, _ := db.Begin()
	for i := 0; i < rows; i++ {
		memo := strings.Repeat(fmt.Sprintf("entry %d ", i), 8)
		if _, err := tx.Exec(`INSERT INTO entries(account, amount, memo, blob) VALUES (1, ?, ?, randomblob(64)), (2, ?, ?, NULL)`, i+1, memo, -(i + 1), memo); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// runWriter commits balanced pairs of entries, updates and deletes until ctx
// ends, and returns how many commits it made.
func runWriter(ctx context.Context, t *testing.T, path string) *atomic.Int64 {
	var commits atomic.Int64
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer db.Close()
		for i := 0; ctx.Err() == nil; i++ {
			tx, err := db.Begin()
			if err != nil {
				continue
			}
			tx.Exec(`INSERT INTO entries(account, amount, memo) VALUES (1, ?, 'live'), (2, ?, 'live')`, i, -i)
			tx.Exec(`UPDATE entries SET amount = amount + 7 WHERE id = (SELECT min(id) FROM entries WHERE account = 1)`)
			tx.Exec(`UPDATE entries SET amount = amount - 7 WHERE id = (SELECT min(id) FROM entries WHERE account = 2)`)
			if i%10 == 0 {
				tx.Exec(`DELETE FROM entries WHERE memo = 'live' AND amount = ?`, i-10)
				tx.Exec(`DELETE FROM entries WHERE memo = 'live' AND amount = ?`, -(i - 10))
			}
			if tx.Commit() == nil {
				commits.Add(1)
			}
		}
	}()
	t.Cleanup(wg.Wait)
	return &commits
}

type fixture struct {
	bucket *blob.Bucket
	keeper KeeperWithDescription
	dir    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	b, err := fileblob.OpenBucket(filepath.Join(dir, "store"), &fileblob.Options{CreateDir: true, NoTempDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	k, _ := localsecrets.NewRandomKey()
	return &fixture{bucket: b, keeper: KeeperWithDescription{Keeper: localsecrets.NewKeeper(k), Description: "test key"}, dir: dir}
}

func (f *fixture) backup(t *testing.T, path, id string, mutate func(*BackupOptions)) (*BackupResult, error) {
	t.Helper()
	return f.backupCtx(context.Background(), t, path, id, mutate)
}

func (f *fixture) backupCtx(ctx context.Context, t *testing.T, path, id string, mutate func(*BackupOptions)) (*BackupResult, error) {
	t.Helper()
	opts := BackupOptions{
		Path: path, Database: "ledger", BackupID: id, Host: "test", Tool: "bulwark-test",
		Bucket: f.bucket, Keeper: f.keeper, ChunkBytes: 64 << 10,
	}
	if mutate != nil {
		mutate(&opts)
	}
	return Backup(ctx, opts)
}

func (f *fixture) restore(t *testing.T, id string) (string, error) {
	t.Helper()
	out := filepath.Join(f.dir, id+".db")
	_, err := RestoreToTemp(context.Background(), RestoreOptions{
		Bucket: f.bucket, Keeper: f.keeper.Keeper, Database: "ledger", BackupID: id, TempPath: out,
	})
	return out, err
}

func ledgerSum(t *testing.T, path string) (sum, rows int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT coalesce(sum(amount), 0), count(*) FROM entries`).Scan(&sum, &rows); err != nil {
		t.Fatal(err)
	}
	return sum, rows
}

const id1 = "20261125T120000Z-0000000a"

func TestBackupUnderLiveWriterRestoresCommittedState(t *testing.T) {
	f := newFixture(t)
	path := newLedger(t, 20000)
	ctx, stop := context.WithCancel(context.Background())
	commits := runWriter(ctx, t, path)
	time.Sleep(100 * time.Millisecond)
	before := commits.Load()
	res, err := f.backup(t, path, id1, nil)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	if commits.Load() == before {
		t.Fatalf("writer made no commits during the backup; the test proves nothing")
	}
	m := res.Manifest
	if len(m.Chunks) < 2 {
		t.Fatalf("want several chunks, got %d", len(m.Chunks))
	}
	out, err := f.restore(t, id1)
	if err != nil {
		t.Fatal(err)
	}
	sum, hash := mustHash(t, out)
	if sum != m.ImageDigest() {
		t.Fatalf("restored image hash %s, manifest %s", sum, m.ImageDigest())
	}
	_ = hash
	check, err := CheckFile(context.Background(), out)
	if err != nil || !check.OK() {
		t.Fatalf("check restored: %v %v", check, err)
	}
	if s, rows := ledgerSum(t, out); s != 0 {
		t.Fatalf("restored ledger sums to %d over %d rows: not a committed state", s, rows)
	}
	var entries int64
	for _, tr := range m.Tables {
		if tr.Name == "entries" {
			entries = tr.Rows
		}
	}
	if _, rows := ledgerSum(t, out); rows != entries {
		t.Fatalf("restored %d entries, manifest counted %d", rows, entries)
	}
	if check.SchemaHash != m.SchemaSHA256 {
		t.Fatalf("schema hash differs")
	}
}

func mustHash(t *testing.T, path string) (string, int64) {
	t.Helper()
	s, n, err := repository.ImageHashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return s, n
}

func TestBadSources(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	notSQLite := filepath.Join(dir, "notes.txt")
	os.WriteFile(notSQLite, []byte("this is not a database, just some text that is long enough"), 0o644)
	good := newLedger(t, 500)
	data, _ := os.ReadFile(good)
	truncated := filepath.Join(dir, "truncated.db")
	os.WriteFile(truncated, data[:len(data)/2+100], 0o644)
	cases := []struct {
		path string
		want error
		text string
	}{
		{filepath.Join(dir, "missing.db"), ErrNoDatabase, "does not exist"},
		{notSQLite, ErrNotSQLite, "SQLite header"},
		{truncated, ErrDamaged, "truncated"},
		{dir, ErrNotSQLite, "directory"},
	}
	for _, c := range cases {
		_, err := f.backup(t, c.path, id1, nil)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("backup of %s: got %v, want %v mentioning %q", c.path, err, c.want, c.text)
		}
	}
	ids, _ := repository.ListBackups(context.Background(), f.bucket, "ledger")
	if len(ids) != 0 {
		t.Fatalf("failed backups are listed: %v", ids)
	}
}

func TestWrongKeyAndDamagedChunks(t *testing.T) {
	f := newFixture(t)
	path := newLedger(t, 3000)
	if _, err := f.backup(t, path, id1, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	other, _ := localsecrets.NewRandomKey()
	_, err := RestoreToTemp(ctx, RestoreOptions{Bucket: f.bucket, Keeper: localsecrets.NewKeeper(other), Database: "ledger", BackupID: id1, TempPath: filepath.Join(f.dir, "x.db")})
	if !errors.Is(err, repository.ErrWrongKey) {
		t.Fatalf("restore with another key: %v", err)
	}

	chunk1 := repository.ChunkKey("ledger", id1, 1)
	orig, _ := f.bucket.ReadAll(ctx, chunk1)
	damage := func(name string, fn func() error, want error) {
		t.Helper()
		if err := fn(); err != nil {
			t.Fatal(err)
		}
		out, err := f.restore(t, id1)
		if !errors.Is(err, want) {
			t.Errorf("%s: restore gave %v, want %v", name, err, want)
		}
		if _, serr := os.Stat(out); serr == nil {
			t.Errorf("%s: a restored file was left at %s", name, out)
		}
		if err := f.bucket.WriteAll(ctx, chunk1, orig, nil); err != nil {
			t.Fatal(err)
		}
	}
	damage("bit flip", func() error {
		b := append([]byte(nil), orig...)
		b[len(b)/2] ^= 0x40
		return f.bucket.WriteAll(ctx, chunk1, b, nil)
	}, repository.ErrCorrupt)
	damage("truncation", func() error { return f.bucket.WriteAll(ctx, chunk1, orig[:len(orig)-10], nil) }, repository.ErrCorrupt)
	damage("missing", func() error { return f.bucket.Delete(ctx, chunk1) }, repository.ErrNotFound)
	damage("swapped", func() error {
		c0, _ := f.bucket.ReadAll(ctx, repository.ChunkKey("ledger", id1, 0))
		return f.bucket.WriteAll(ctx, chunk1, c0, nil)
	}, repository.ErrCorrupt)
	if _, err := f.restore(t, id1); err != nil {
		t.Fatalf("restore after repairing: %v", err)
	}
}

func TestInterruptedBackupIsNotListedAndResumes(t *testing.T) {
	f := newFixture(t)
	path := newLedger(t, 20000)
	ctx, cancel := context.WithCancel(context.Background())
	settledAtCancel := 0
	_, err := f.backupCtx(ctx, t, path, id1, func(o *BackupOptions) {
		o.Progress = func(p BackupProgress) {
			if p.SettledChunks >= 4 && settledAtCancel == 0 {
				settledAtCancel = p.SettledChunks
				cancel()
			}
		}
	})
	if err == nil {
		t.Fatal("cancelled backup reported success")
	}
	ids, err := repository.ListBackups(context.Background(), f.bucket, "ledger")
	if err != nil || len(ids) != 0 {
		t.Fatalf("interrupted backup listed: %v %v", ids, err)
	}
	// The retry finds the key envelope and the chunks already uploaded.
	res, err := f.backup(t, path, id1, func(o *BackupOptions) { o.ResumeBelow = settledAtCancel + 8 })
	if err != nil {
		t.Fatal(err)
	}
	if res.ReusedChunks < settledAtCancel {
		t.Fatalf("resumed backup re-used %d chunks, want at least %d", res.ReusedChunks, settledAtCancel)
	}
	out, err := f.restore(t, id1)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := mustHash(t, out); s != res.Manifest.ImageDigest() {
		t.Fatal("resumed backup does not restore to its image")
	}
	// A retry after the manifest was written does nothing.
	again, err := f.backup(t, path, id1, nil)
	if err != nil || !again.AlreadyDone {
		t.Fatalf("retry after completion: %+v %v", again, err)
	}
}

func TestResumeAfterDatabaseChangedReuploadsChangedChunks(t *testing.T) {
	f := newFixture(t)
	path := newLedger(t, 20000)
	ctx, cancel := context.WithCancel(context.Background())
	_, _ = Backup(ctx, BackupOptions{Path: path, Database: "ledger", BackupID: id1, Bucket: f.bucket, Keeper: f.keeper, ChunkBytes: 64 << 10,
		Progress: func(p BackupProgress) {
			if p.SettledChunks >= 6 {
				cancel()
			}
		}})
	db, _ := sql.Open("sqlite", path)
	mustExec(t, db, `UPDATE entries SET memo = 'changed after the first attempt' WHERE id % 50 = 0`)
	db.Close()
	res, err := f.backup(t, path, id1, func(o *BackupOptions) { o.ResumeBelow = 1 << 20 })
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.restore(t, id1)
	if err != nil {
		t.Fatal(err)
	}
	live, _ := mustHash(t, path)
	_ = live
	got, _ := mustHash(t, out)
	if got != res.Manifest.ImageDigest() {
		t.Fatal("mixed-attempt backup restores to a different image")
	}
	var changed int
	odb, _ := sql.Open("sqlite", "file:"+out+"?mode=ro&immutable=1")
	defer odb.Close()
	odb.QueryRow(`SELECT count(*) FROM entries WHERE memo = 'changed after the first attempt'`).Scan(&changed)
	if changed == 0 {
		t.Fatal("restored image lacks the change made before the retry: stale chunks were re-used")
	}
}

func TestSwapInKeepsEmergencyCopyAndDropsStaleWAL(t *testing.T) {
	f := newFixture(t)
	path := newLedger(t, 2000)
	if _, err := f.backup(t, path, id1, nil); err != nil {
		t.Fatal(err)
	}
	// The target has un-checkpointed changes in its WAL.
	target := newLedger(t, 10)
	db, _ := sql.Open("sqlite", "file:"+target+"?_pragma=journal_mode(WAL)")
	db.Exec(`PRAGMA wal_autocheckpoint=0`)
	mustExec(t, db, `INSERT INTO accounts(id, name) VALUES (99, 'only in the old WAL')`)
	db.Close() // closing checkpoints; re-create a WAL by hand below
	db2, _ := sql.Open("sqlite", "file:"+target)
	db2.Exec(`PRAGMA wal_autocheckpoint=0`)
	conn, _ := db2.Conn(context.Background())
	conn.ExecContext(context.Background(), `PRAGMA wal_autocheckpoint=0`)
	conn.ExecContext(context.Background(), `INSERT INTO accounts(id, name) VALUES (100, 'wal')`)
	walBefore, _ := os.ReadFile(target + "-wal")
	oldHash, _ := mustHash(t, target)

	tmp := TempPathFor(target, id1)
	if _, err := RestoreToTemp(context.Background(), RestoreOptions{Bucket: f.bucket, Keeper: f.keeper.Keeper, Database: "ledger", BackupID: id1, TempPath: tmp}); err != nil {
		t.Fatal(err)
	}
	emergency := target + ".emergency-" + id1
	saved, err := SwapIn(tmp, target, emergency)
	conn.Close()
	db2.Close()
	if err != nil {
		t.Fatal(err)
	}
	if saved != emergency {
		t.Fatalf("emergency copy at %q, want %q", saved, emergency)
	}
	if h, _ := mustHash(t, emergency); h != oldHash {
		t.Fatal("emergency copy differs from the replaced file")
	}
	if len(walBefore) > 0 {
		if _, err := os.Stat(emergency + "-wal"); err != nil {
			t.Fatalf("old WAL not kept with the emergency copy: %v", err)
		}
	}
	check, err := CheckFile(context.Background(), target)
	if err != nil || !check.OK() {
		t.Fatalf("restored target: %v %v", check, err)
	}
	// A second swap must not overwrite the first emergency copy.
	tmp2 := TempPathFor(target, id1)
	os.WriteFile(tmp2, []byte("x"), 0o600)
	if _, err := SwapIn(tmp2, target, emergency); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("second swap with the same emergency name: %v", err)
	}
}

func TestCheckTarget(t *testing.T) {
	dir := t.TempDir()
	if exists, err := CheckTarget(filepath.Join(dir, "new-dir", "x.db")); err != nil || exists {
		t.Fatalf("missing directory is created: %v %v", exists, err)
	}
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o600)
	if _, err := CheckTarget(filepath.Join(blocker, "x.db")); !errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), blocker) {
		t.Fatalf("directory path through a file: %v", err)
	}
	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o500)
	if os.Geteuid() != 0 { // root writes anywhere
		if _, err := CheckTarget(filepath.Join(ro, "x.db")); !errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), "not writable") {
			t.Fatalf("read-only directory: %v", err)
		}
	}
	exists, err := CheckTarget(filepath.Join(dir, "new.db"))
	if err != nil || exists {
		t.Fatalf("new target: %v %v", exists, err)
	}
}

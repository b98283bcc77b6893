package activities

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"gocloud.dev/blob/memblob"

	"github.com/bulwark-dr/bulwark/repository"
)

func assess(t *testing.T, acts *SQLiteActivities, in AssessInput) (AssessOutput, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	val, err := env.ExecuteActivity(acts.AssessDatabase, in)
	if err != nil {
		return AssessOutput{}, err
	}
	var out AssessOutput
	if err := val.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out, nil
}

// fileState is a file's bytes and the names in its directory: assessing
// must change neither.
func fileState(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{string(h.Sum(nil))}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return strings.Join(names, "\n")
}

// copyFile copies a database into a directory of its own.
func copyFile(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// AssessDatabase on real files: a healthy database, one with a page
// overwritten in the middle, one encrypted (as ransomware leaves it), and
// none at all. It only reads: the bytes and the directory stay as they were.
func TestAssessDatabaseHealthyDamagedMissing(t *testing.T) {
	path := newDatabase(t)
	acts, _ := newActivities(t, path)

	healthy, err := assess(t, acts, AssessInput{Database: "finance"})
	if err != nil {
		t.Fatal(err)
	}
	if healthy.Verdict != VerdictHealthy || !healthy.Exists || healthy.Path != path || healthy.Bytes == 0 || healthy.ModTime.IsZero() ||
		healthy.Integrity != "ok" || healthy.ForeignKeys != "ok" || healthy.Tables != 1 || healthy.Rows != 30000 {
		t.Fatalf("healthy: %+v", healthy)
	}

	damaged := copyFile(t, path)
	info, _ := os.Stat(damaged)
	f, err := os.OpenFile(damaged, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	if _, err := f.WriteAt(garbage, info.Size()/2/4096*4096); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	before := fileState(t, damaged)
	out, err := assess(t, acts, AssessInput{Database: "finance", Path: damaged})
	if err != nil {
		t.Fatal(err)
	}
	if out.Verdict != VerdictDamaged || !out.Exists || out.Reason == "" {
		t.Fatalf("damaged: %+v", out)
	}
	if fileState(t, damaged) != before {
		t.Fatal("assessing changed the file or created files next to it")
	}

	encrypted := filepath.Join(t.TempDir(), "finance.db")
	noise := make([]byte, 64<<10)
	rand.Read(noise)
	if err := os.WriteFile(encrypted, noise, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = assess(t, acts, AssessInput{Database: "finance", Path: encrypted})
	if err != nil {
		t.Fatal(err)
	}
	if out.Verdict != VerdictDamaged || !strings.Contains(out.Reason, "not an SQLite database") {
		t.Fatalf("encrypted: %+v", out)
	}

	acts.Databases["gone"] = filepath.Join(t.TempDir(), "gone.db")
	out, err = assess(t, acts, AssessInput{Database: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Verdict != VerdictMissing || out.Exists {
		t.Fatalf("missing: %+v", out)
	}
	if _, err := os.Stat(acts.Databases["gone"]); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("assessing a missing database created it")
	}

	for _, in := range []AssessInput{{Database: "payroll"}, {Database: "finance", Path: "finance.db"}} {
		_, err := assess(t, acts, in)
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != ErrTypeBadInput {
			t.Errorf("%+v: got %v, want bad input", in, err)
		}
	}
}

// RestoreSQLite with From reads the named destination first and falls back
// to the others, the primary first, for what it lacks.
func TestRestoreSQLiteReadsFromNamedDestinationFirst(t *testing.T) {
	ctx := context.Background()
	path := newDatabase(t)
	acts, primary := newActivities(t, path)
	vault := memblob.OpenBucket(nil)
	defer vault.Close()
	acts.PrimaryName = "local"
	acts.Fallbacks = []repository.Source{{Name: "vault", Bucket: vault}}

	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	val, err := env.ExecuteActivity(acts.SnapshotSQLite, SnapshotInput{Database: "finance", BackupID: testBackupID})
	if err != nil {
		t.Fatal(err)
	}
	var snap SnapshotOutput
	val.Get(&snap)
	if snap.Chunks < 2 {
		t.Fatalf("want a backup of several chunks, got %d", snap.Chunks)
	}
	if _, err := repository.Replicate(ctx, primary, vault, "vault", acts.Keeper.Keeper, "finance", testBackupID, repository.ReplicateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The primary's first chunk is damaged, the vault's second is gone.
	if err := primary.WriteAll(ctx, repository.ChunkKey("finance", testBackupID, 0), []byte("encrypted by an attacker"), nil); err != nil {
		t.Fatal(err)
	}

	restore := func(in RestoreInput) (RestoreOutput, error) {
		t.Helper()
		in.Database, in.BackupID, in.Target = "finance", testBackupID, filepath.Join(t.TempDir(), "restored.db")
		env := s.NewTestActivityEnvironment()
		env.RegisterActivity(acts)
		val, err := env.ExecuteActivity(acts.RestoreSQLite, in)
		if err != nil {
			return RestoreOutput{}, err
		}
		var out RestoreOutput
		val.Get(&out)
		if h, _, _ := repository.ImageHashFile(out.TempPath); h != snap.ImageHash {
			t.Fatal("restored image differs from the backup")
		}
		return out, nil
	}

	// From the primary (the default), the damaged chunk comes from the vault.
	out, err := restore(RestoreInput{})
	if err != nil {
		t.Fatal(err)
	}
	if out.Source != "local" || len(out.Healed) != 1 || !strings.Contains(out.Healed[0], "read from vault") {
		t.Fatalf("from the primary: source %s healed %v", out.Source, out.Healed)
	}
	// From the vault, nothing is read from the primary.
	out, err = restore(RestoreInput{From: "vault"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Source != "vault" || len(out.Healed) != 0 {
		t.Fatalf("from the vault: source %s healed %v", out.Source, out.Healed)
	}
	// What the vault lacks comes from the primary.
	if err := vault.Delete(ctx, repository.ChunkKey("finance", testBackupID, 1)); err != nil {
		t.Fatal(err)
	}
	out, err = restore(RestoreInput{From: "vault"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Source != "vault" || len(out.Healed) != 1 || !strings.Contains(out.Healed[0], "chunks/00000001") || !strings.Contains(out.Healed[0], "read from local") {
		t.Fatalf("from the vault missing a chunk: source %s healed %v", out.Source, out.Healed)
	}

	for _, in := range []RestoreInput{{From: "tape"}, {From: "vault", Repair: true}} {
		_, err := restore(in)
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != ErrTypeBadInput {
			t.Errorf("%+v: got %v, want bad input", in, err)
		}
	}
}

// FindRestorePoint picks the newest verified backup taken strictly before
// the anomaly, on the destination named: a copy there must be verified, and
// a manifest that does not authenticate is passed over.
func TestFindRestorePointBeforeAnomalyOnLockedDestination(t *testing.T) {
	ctx := context.Background()
	path := newDatabase(t)
	acts, primary := newActivities(t, path)
	vault := memblob.OpenBucket(nil)
	defer vault.Close()
	storage := &StorageActivities{
		Bucket: primary, Keeper: acts.Keeper.Keeper, Worker: "test",
		Destinations: []Destination{
			{Name: "local", Role: "primary", Bucket: primary},
			{Name: "vault", Role: "secondary", Bucket: vault, LockMode: "compliance", LockPeriod: 30 * 24 * time.Hour},
		},
	}
	day := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	verified := func(id string, ok bool) {
		t.Helper()
		if err := repository.WriteVerifyRecord(ctx, primary, "finance", repository.VerifyRecordKey("finance", id, time.Now()),
			repository.VerifyRecord{BackupID: id, OK: ok, VerifiedAt: time.Now().UTC().Format(time.RFC3339Nano)}); err != nil {
			t.Fatal(err)
		}
	}
	replicate := func(id string) {
		t.Helper()
		if _, err := repository.Replicate(ctx, primary, vault, "vault", acts.Keeper.Keeper, "finance", id, repository.ReplicateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for i, suffix := range []string{"0000000a", "0000000b", "0000000c", "0000000d", "0000000e"} {
		ids = append(ids, backupAt(t, acts, path, repository.BackupFull, day.Add(time.Duration(i)*24*time.Hour), suffix))
	}
	// Manifests record when the snapshot was really taken.
	snapshotAt := func(id string) time.Time {
		t.Helper()
		b, err := repository.ReadBackup(ctx, primary, "finance", id)
		if err != nil {
			t.Fatal(err)
		}
		return b.Manifest.SnapshotAt
	}
	// Backups 0 and 1 are verified; 2 failed verification; 3 was taken
	// exactly at the anomaly and 4 after it. All are copied to the vault.
	anomaly := snapshotAt(ids[3])
	verified(ids[0], true)
	verified(ids[1], true)
	verified(ids[2], false)
	verified(ids[3], true)
	verified(ids[4], true)
	for _, id := range ids {
		replicate(id)
	}

	var s testsuite.WorkflowTestSuite
	find := func(in RestorePointInput) (RestorePointOutput, error) {
		t.Helper()
		env := s.NewTestActivityEnvironment()
		env.RegisterActivity(storage)
		in.Database = "finance"
		val, err := env.ExecuteActivity(storage.FindRestorePoint, in)
		if err != nil {
			return RestorePointOutput{}, err
		}
		var out RestorePointOutput
		val.Get(&out)
		return out, nil
	}

	out, err := find(RestorePointInput{Before: anomaly, From: "vault"})
	if err != nil {
		t.Fatal(err)
	}
	if out.BackupID != ids[1] || !out.SnapshotAt.Equal(snapshotAt(ids[1])) || out.Destination != "vault" || out.LockMode != "compliance" ||
		out.NotBefore != 2 || len(out.Skipped) != 1 || !strings.Contains(out.Skipped[0], "failed verification") {
		t.Fatalf("before the anomaly on the vault: %+v", out)
	}

	// No anomaly: the newest verified backup, on the primary.
	out, err = find(RestorePointInput{})
	if err != nil {
		t.Fatal(err)
	}
	if out.BackupID != ids[4] || out.Destination != "local" || out.LockMode != "" {
		t.Fatalf("newest on the primary: %+v", out)
	}

	// A copy without its replica record on the vault is not a verified
	// copy; a manifest planted on the vault does not authenticate.
	if err := vault.Delete(ctx, repository.ReplicaRecordKey("finance", ids[1], "vault")); err != nil {
		t.Fatal(err)
	}
	forged := repository.NewBackupID(day.Add(36*time.Hour), "0000f00d")
	raw, err := vault.ReadAll(ctx, repository.ManifestKey("finance", ids[1]))
	if err != nil {
		t.Fatal(err)
	}
	raw = []byte(strings.ReplaceAll(string(raw), ids[1], forged))
	if err := vault.WriteAll(ctx, repository.ManifestKey("finance", forged), raw, nil); err != nil {
		t.Fatal(err)
	}
	if err := vault.WriteAll(ctx, repository.ReplicaRecordKey("finance", forged, "vault"), []byte(`{"backup_id":"`+forged+`","destination":"vault"}`), nil); err != nil {
		t.Fatal(err)
	}
	if err := repository.WriteVerifyRecord(ctx, vault, "finance", repository.VerifyRecordKey("finance", forged, time.Now()), repository.VerifyRecord{BackupID: forged, OK: true}); err != nil {
		t.Fatal(err)
	}
	out, err = find(RestorePointInput{Before: anomaly, From: "vault"})
	if err != nil {
		t.Fatal(err)
	}
	if out.BackupID != ids[0] || len(out.Skipped) != 3 ||
		!slices.ContainsFunc(out.Skipped, func(s string) bool { return strings.HasPrefix(s, forged) && strings.Contains(s, "authenticate") }) ||
		!slices.ContainsFunc(out.Skipped, func(s string) bool {
			return strings.HasPrefix(s, ids[1]) && strings.Contains(s, "no verified copy on vault")
		}) {
		t.Fatalf("with a forged manifest and a copy unverified: %+v", out)
	}

	if _, err := find(RestorePointInput{From: "tape"}); err == nil || !strings.Contains(err.Error(), `"tape"`) {
		t.Fatalf("unknown destination: %v", err)
	}
}

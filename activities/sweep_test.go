package activities

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"

	"github.com/bulwark-dr/bulwark/activities/sqlitesrc"
	"github.com/bulwark-dr/bulwark/repository"
)

// What a crashed backup and a crashed write leave on a real file://
// destination is swept once it is older than the cut-off, and the backup
// that stays still verifies; a dry run finds the same and removes nothing.
func TestSweepOrphansRemovesWhatCrashesLeft(t *testing.T) {
	ctx := context.Background()
	path := newDatabase(t)
	acts, _ := newActivities(t, path)
	dir := t.TempDir()
	bucket, err := fileblob.OpenBucket(dir, &fileblob.Options{NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	acts.Bucket = bucket
	day := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
	kept := backupAt(t, acts, path, repository.BackupFull, day, "0000000a")

	// A backup whose worker died after a few chunks: no manifest.
	abandoned := repository.NewBackupID(day.Add(time.Hour), "0000000b")
	cctx, cancel := context.WithCancel(ctx)
	_, err = sqlitesrc.Backup(cctx, sqlitesrc.BackupOptions{
		Path: path, Database: "finance", BackupID: abandoned, Bucket: bucket, Keeper: acts.Keeper, ChunkBytes: acts.ChunkBytes, StartedAt: day.Add(time.Hour),
		Progress: func(p sqlitesrc.BackupProgress) {
			if p.SettledChunks >= 2 {
				cancel()
			}
		},
	})
	cancel()
	if err == nil {
		t.Fatal("the abandoned backup was meant to be interrupted")
	}
	// A write of the kept backup's verification record cut short.
	tmp := repository.VerifyRecordKey("finance", kept, day) + ".18a2b3c4d5e6f708.tmp"
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, tmp)), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, tmp), []byte(`{"backup_id":`), 0o600)
	old := time.Now().Add(-48 * time.Hour)
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			os.Chtimes(p, old, old)
		}
		return nil
	})
	leftovers, _ := repository.BackupObjects(ctx, bucket, "finance", abandoned)
	if len(leftovers) < 3 {
		t.Fatalf("the abandoned backup left %d objects", len(leftovers))
	}

	storage := &StorageActivities{
		Bucket: bucket, Keeper: acts.Keeper.Keeper, Worker: "test", TempDir: t.TempDir(),
		Destinations: []Destination{{Name: "local", Role: "primary", Bucket: bucket}},
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(storage)
	sweep := func(in SweepInput) SweepOutput {
		t.Helper()
		val, err := env.ExecuteActivity(storage.SweepOrphans, in)
		if err != nil {
			t.Fatal(err)
		}
		var out SweepOutput
		val.Get(&out)
		return out
	}
	in := SweepInput{Database: "finance", Destination: "local", Before: time.Now().Add(-24 * time.Hour), DryRun: true}
	dry := sweep(in)
	if dry.Objects != len(leftovers)+1 || !strings.Contains(strings.Join(dry.Examples, "\n"), "unfinished write") {
		t.Fatalf("dry run found %+v; %d objects were left", dry, len(leftovers)+1)
	}
	if _, err := os.Stat(filepath.Join(dir, tmp)); err != nil {
		t.Fatal("the dry run removed an orphan")
	}
	in.DryRun = false
	if real := sweep(in); real.Objects != dry.Objects || real.Bytes != dry.Bytes {
		t.Fatalf("the real run removed %+v, the dry run found %+v", real, dry)
	}
	if left, _ := repository.FindOrphans(ctx, bucket, "finance", time.Now().Add(time.Hour)); len(left) != 0 {
		t.Fatalf("left behind: %+v", left)
	}
	if again := sweep(in); again.Objects != 0 {
		t.Fatalf("a second sweep found %+v", again)
	}
	val, err := env.ExecuteActivity(storage.VerifyBackup, VerifyInput{Database: "finance", BackupID: kept})
	if err != nil {
		t.Fatal(err)
	}
	var v VerifyOutput
	if val.Get(&v); !v.OK {
		t.Fatalf("the kept backup no longer verifies: %v", v.Problems)
	}
	if _, err := env.ExecuteActivity(storage.SweepOrphans, SweepInput{Database: "finance", Destination: "local"}); err == nil {
		t.Fatal("a sweep without a cut-off was accepted")
	}
}

// Removing a backup's copy from a secondary removes the primary's record of
// that copy: list, status and the DR runbook must not count a copy that is
// gone (found by the crash-point campaign: retention on the secondary left
// the record behind).
func TestForgetOnACopyRemovesThePrimarysRecord(t *testing.T) {
	path := newDatabase(t)
	acts, primary := newActivities(t, path)
	nas := memblob.OpenBucket(nil)
	defer nas.Close()
	storage := &StorageActivities{
		Bucket: primary, Keeper: acts.Keeper.Keeper, Worker: "test",
		Destinations: []Destination{{Name: "local", Role: "primary", Bucket: primary}, {Name: "nas", Role: "secondary", Bucket: nas}},
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(storage)
	id := backupAt(t, acts, path, repository.BackupFull, time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC), "0000000a")
	if _, err := env.ExecuteActivity(storage.ReplicateBackup, ReplicateInput{Database: "finance", BackupID: id, To: "nas"}); err != nil {
		t.Fatal(err)
	}
	records := func() int {
		recs, err := repository.ReplicaRecords(context.Background(), primary, "finance", id)
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	if records() != 1 {
		t.Fatal("the copy was not recorded on the primary")
	}
	if _, err := env.ExecuteActivity(storage.ForgetBackup, ForgetInput{Database: "finance", Destination: "nas", BackupID: id}); err != nil {
		t.Fatal(err)
	}
	if n := records(); n != 0 {
		t.Fatalf("the primary still records %d copy(ies) after the copy was removed", n)
	}
	if _, err := repository.ReadBackup(context.Background(), primary, "finance", id); err != nil {
		t.Fatalf("the primary's backup was touched: %v", err)
	}
}

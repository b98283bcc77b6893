package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"gocloud.dev/blob/memblob"

	"github.com/bulwark-dr/bulwark/activities/sqlitesrc"
	"github.com/bulwark-dr/bulwark/repository"
	"github.com/bulwark-dr/bulwark/retention"
)

// backupAt writes a real backup of path with an id of the given time.
func backupAt(t *testing.T, acts *SQLiteActivities, path string, typ repository.BackupType, at time.Time, suffix string) string {
	t.Helper()
	id := repository.NewBackupID(at, suffix)
	if _, err := sqlitesrc.Backup(context.Background(), sqlitesrc.BackupOptions{
		Type: typ, Path: path, Database: "finance", BackupID: id, Bucket: acts.Bucket, Keeper: acts.Keeper,
		ChunkBytes: acts.ChunkBytes, StartedAt: at,
	}); err != nil {
		t.Fatal(err)
	}
	return id
}

// Replication, the retention plan and forgetting, on real backups in real
// buckets: the plan keeps what the policy and the chains need, a real run
// removes exactly what the plan marked, and a locked copy is never
// removed before its lock ends.
func TestReplicatePlanAndForget(t *testing.T) {
	ctx := context.Background()
	path := newDatabase(t)
	acts, primary := newActivities(t, path)
	cloud := memblob.OpenBucket(nil)
	defer cloud.Close()
	storage := &StorageActivities{
		Bucket: primary, Keeper: acts.Keeper.Keeper, Worker: "test",
		Destinations: []Destination{
			{Name: "local", Role: "primary", Bucket: primary, Retention: retention.Policy{KeepLast: 2}},
			{Name: "cloud", Role: "tertiary", Bucket: cloud, LockMode: "compliance", LockPeriod: 30 * 24 * time.Hour, Retention: retention.Policy{KeepLast: 1}},
		},
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(storage)

	day := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
	full := backupAt(t, acts, path, repository.BackupFull, day, "0000000a")
	incr1 := backupAt(t, acts, path, repository.BackupIncremental, day.Add(24*time.Hour), "0000000b")
	full2 := backupAt(t, acts, path, repository.BackupFull, day.Add(48*time.Hour), "0000000c")
	incr2 := backupAt(t, acts, path, repository.BackupIncremental, day.Add(72*time.Hour), "0000000d")

	for _, id := range []string{full, incr1} {
		val, err := env.ExecuteActivity(storage.ReplicateBackup, ReplicateInput{Database: "finance", BackupID: id, To: "cloud"})
		if err != nil {
			t.Fatal(err)
		}
		var out ReplicateOutput
		val.Get(&out)
		if out.Copied != out.Objects || out.Objects < 3 || out.LockedUntil.Before(time.Now().Add(29*24*time.Hour)) {
			t.Fatalf("replicate %s: %+v", id, out)
		}
	}
	if _, err := env.ExecuteActivity(storage.ReplicateBackup, ReplicateInput{Database: "finance", BackupID: full, To: "local"}); err == nil || !strings.Contains(err.Error(), "is the primary") {
		t.Fatalf("replicating to the primary: %v", err)
	}

	plan := func(dest string, now time.Time) CleanupPlan {
		t.Helper()
		val, err := env.ExecuteActivity(storage.PlanCleanup, CleanupInput{Database: "finance", Destination: dest, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		var p CleanupPlan
		val.Get(&p)
		return p
	}
	kept := func(p CleanupPlan) string {
		var ids []string
		for _, d := range p.Decisions {
			if d.Keep {
				ids = append(ids, d.BackupID)
			}
		}
		return strings.Join(ids, ",")
	}
	now := day.Add(96 * time.Hour)
	// keep_last 2 picks incr2 and full2; incr2 needs full2 anyway.
	local := plan("local", now)
	if got, want := kept(local), incr2+","+full2; got != want {
		t.Fatalf("local keeps %s, want %s\n%+v", got, want, local.Decisions)
	}
	// On the cloud, keep_last 1 picks incr1, which needs full; both are
	// locked for 30 days anyway.
	cloudPlan := plan("cloud", now)
	if got := kept(cloudPlan); got != incr1+","+full {
		t.Fatalf("cloud keeps %s", got)
	}
	if r := strings.Join(cloudPlan.Decisions[1].Reasons, "; "); !strings.Contains(r, "locked until") || !strings.Contains(r, "parent of "+incr1) {
		t.Fatalf("cloud reasons for %s: %s", full, r)
	}

	// The real run removes exactly what the plan marked, newest first.
	for _, d := range local.Decisions {
		if d.Keep {
			continue
		}
		if _, err := env.ExecuteActivity(storage.ForgetBackup, ForgetInput{Database: "finance", Destination: "local", BackupID: d.BackupID, Now: now}); err != nil {
			t.Fatalf("forget %s: %v", d.BackupID, err)
		}
	}
	ids, _ := repository.ListBackups(ctx, primary, "finance")
	if strings.Join(ids, ",") != full2+","+incr2 {
		t.Fatalf("local holds %v after cleanup", ids)
	}
	if objs, _ := repository.BackupObjects(ctx, primary, "finance", full); len(objs) != 0 {
		t.Fatalf("%d objects of a forgotten backup remain", len(objs))
	}
	if again := plan("local", now); kept(again) != kept(local) || len(again.Decisions) != 2 {
		t.Fatalf("a second plan differs: %+v", again.Decisions)
	}
	// Forgetting left tombstones: the history from the newest backup back
	// is whole, and verification (which checks it) passes.
	for _, id := range []string{full, incr1} {
		if ok, _ := primary.Exists(ctx, repository.TombstoneKey("finance", id)); !ok {
			t.Fatalf("no tombstone for forgotten %s", id)
		}
	}
	if problems, err := repository.CheckHistory(ctx, primary, storage.Keeper, "finance", incr2); err != nil || len(problems) != 0 {
		t.Fatalf("history after cleanup: %v %v", problems, err)
	}
	if val, err := env.ExecuteActivity(storage.VerifyBackup, VerifyInput{Database: "finance", BackupID: incr2}); err != nil {
		t.Fatal(err)
	} else if vout := (VerifyOutput{}); val.Get(&vout) != nil || !vout.OK {
		t.Fatalf("verify after cleanup: %+v", vout)
	}

	// Forgetting a locked copy is refused before anything is deleted.
	_, err := env.ExecuteActivity(storage.ForgetBackup, ForgetInput{Database: "finance", Destination: "cloud", BackupID: incr1, Now: now})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != ErrTypeLocked || !strings.Contains(err.Error(), "locked until") || !strings.Contains(err.Error(), `"cloud"`) {
		t.Fatalf("forgetting a locked copy: %v", err)
	}
	if ids, _ := repository.ListBackups(ctx, cloud, "finance"); len(ids) != 2 {
		t.Fatalf("the cloud lost a locked backup: %v", ids)
	}
	// After the lock, it goes; a parent with a dependent is refused.
	later := time.Now().Add(31 * 24 * time.Hour) // the lock runs from the real copy time
	if _, err := env.ExecuteActivity(storage.ForgetBackup, ForgetInput{Database: "finance", Destination: "cloud", BackupID: full, Now: later}); err == nil || !strings.Contains(err.Error(), incr1) {
		t.Fatalf("forgetting a parent before its child: %v", err)
	}
	if _, err := env.ExecuteActivity(storage.ForgetBackup, ForgetInput{Database: "finance", Destination: "cloud", BackupID: incr1, Now: later}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := repository.ListBackups(ctx, cloud, "finance"); len(ids) != 1 || ids[0] != full {
		t.Fatalf("cloud holds %v", ids)
	}
}

// Capacity sizes what each destination really holds (every object of every
// backup, counted on disk independently here) and projects its policy.
func TestCapacityReportsRealSizes(t *testing.T) {
	path := newDatabase(t)
	acts, primary := newActivities(t, path)
	storage := &StorageActivities{
		Bucket: primary, Keeper: acts.Keeper.Keeper, Worker: "test",
		Destinations: []Destination{{Name: "local", Role: "primary", Bucket: primary, Retention: retention.Policy{KeepDaily: 7}}},
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(storage)
	day := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
	for i := range 10 {
		backupAt(t, acts, path, repository.BackupFull, day.Add(time.Duration(i)*24*time.Hour), fmt.Sprintf("%08x", i+1))
	}
	val, err := env.ExecuteActivity(storage.Capacity, CapacityInput{Database: "finance", Now: day.Add(10 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var out CapacityOutput
	val.Get(&out)
	if len(out.Rows) != 1 || out.Rows[0].Error != "" {
		t.Fatalf("rows %+v", out.Rows)
	}
	rep := out.Rows[0].Report
	var onDisk int64
	ids, _ := repository.ListBackups(context.Background(), primary, "finance")
	for _, id := range ids {
		objs, err := repository.BackupObjects(context.Background(), primary, "finance", id)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			onDisk += o.Size
		}
	}
	if rep.Backups != 10 || rep.StoredBytes != onDisk {
		t.Fatalf("report %d backups, %d bytes; the store holds 10 backups, %d bytes", rep.Backups, rep.StoredBytes, onDisk)
	}
	// Ten equal daily fulls kept 7 days: the need is seven of them.
	per := onDisk / 10
	if rep.Projected < 7*per*9/10 || rep.Projected > 7*per*11/10 {
		t.Fatalf("projected %d, want about 7 × %d", rep.Projected, per)
	}
}

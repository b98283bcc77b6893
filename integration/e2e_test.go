package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"gocloud.dev/blob/fileblob"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/activities/sqlitesrc"
	"github.com/bulwark-dr/bulwark/demodb"
	"github.com/bulwark-dr/bulwark/repository"
	"github.com/bulwark-dr/bulwark/workflows"
)

func configFor(dir, extra string) string {
	return fmt.Sprintf(`destination: %[1]s/backups
keeper: keyfile://%[1]s/keys/bulwark.key
host: e2e
databases:
  - name: finance
    path: %[1]s/finance.db
%[2]s`, dir, extra)
}

// newFinance creates the demo database at dir/finance.db.
func newFinance(t *testing.T, dir string, targetBytes int64) string {
	t.Helper()
	path := filepath.Join(dir, "finance.db")
	if _, err := demodb.Generate(context.Background(), path, demodb.Options{Users: 40, TargetBytes: targetBytes, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	return path
}

func hashOf(t *testing.T, path string) string {
	t.Helper()
	h, _, err := repository.ImageHashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// fileSum is the SHA-256 of a file's bytes, for files that need not be
// databases (hashOf reads a SQLite header).
func fileSum(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func listed(t *testing.T, dir string) []string {
	t.Helper()
	b, err := fileblob.OpenBucket(filepath.Join(dir, "backups"), &fileblob.Options{CreateDir: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ids, err := repository.ListBackups(context.Background(), b, "finance")
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestBackupVerifyRestoreEndToEnd(t *testing.T) {
	c := newCluster(t, "")
	os.WriteFile(c.config, []byte(configFor(c.dir, "")), 0o600)
	src := newFinance(t, c.dir, 0)
	c.startWorker()

	var res workflows.BackupResult
	if err := json.Unmarshal([]byte(c.mustCLI("backup", "finance", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Verify == nil || !res.Verify.OK || res.ImageBytes == 0 || res.StoredBytes >= res.ImageBytes {
		t.Fatalf("backup result %+v", res)
	}
	info, err := os.Stat(filepath.Join(c.dir, "keys", "bulwark.key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", info, err)
	}

	var list activities.ListOutput
	json.Unmarshal([]byte(c.mustCLI("list", "finance", "--json")), &list)
	if len(list.Backups) != 1 || list.Backups[0].BackupID != res.BackupID || list.Backups[0].Verified != "ok" {
		t.Fatalf("list: %+v", list)
	}
	if out := c.mustCLI("verify", "finance", res.BackupID); !strings.Contains(out, "verified ok") {
		t.Fatalf("verify: %s", out)
	}

	// Restore to a new file: no approval needed; the image equals the snapshot.
	target := filepath.Join(c.dir, "restored", "finance.db")
	var rr workflows.RestoreResult
	json.Unmarshal([]byte(c.mustCLI("restore", "finance", res.BackupID, "--to", target, "--json")), &rr)
	if hashOf(t, target) != res.ImageHash || rr.ImageHash != res.ImageHash {
		t.Fatal("restored file differs from the backup's image")
	}
	if chk, err := sqlitesrc.CheckFile(context.Background(), target); err != nil || !chk.OK() {
		t.Fatalf("restored file: %v %v", chk, err)
	}

	// Restoring over an existing file waits for approval, then keeps the
	// replaced file as an emergency copy.
	os.WriteFile(target, []byte("SQLite format 3\x00 not really, but precious"), 0o600)
	precious := fileSum(t, target)
	out := c.mustCLI("restore", "finance", "latest", "--to", target, "--detach", "--json")
	var started map[string]string
	json.Unmarshal([]byte(out), &started)
	wfID := started["workflow_id"]
	waitFor(t, 60*time.Second, func() bool {
		v, err := c.client.QueryWorkflow(context.Background(), wfID, "", workflows.QueryStatus)
		var st workflows.RestoreStatus
		return err == nil && v.Get(&st) == nil && st.Phase == workflows.PhaseAwaitApproval
	})
	if fileSum(t, target) != precious {
		t.Fatal("target changed before approval")
	}
	c.mustCLI("approve", wfID)
	if err := c.client.GetWorkflow(context.Background(), wfID, "").Get(context.Background(), &rr); err != nil {
		t.Fatal(err)
	}
	if rr.EmergencyCopy == "" || fileSum(t, rr.EmergencyCopy) != precious || hashOf(t, target) != res.ImageHash {
		t.Fatalf("after approval: %+v", rr)
	}
	replayHistory(t, c, workflows.BackupWorkflowID("finance"), "", "backup")
	replayHistory(t, c, workflows.VerifyWorkflowID("finance", res.BackupID), "", "verify")
	replayHistory(t, c, wfID, "", "restore-approved")
	if hashOf(t, src) == "" {
		t.Fatal("source vanished")
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// heartbeat returns the progress of the activity a workflow is running.
func heartbeat(c *cluster, wfID string) (activities.Progress, bool) {
	var p activities.Progress
	desc, err := c.client.DescribeWorkflowExecution(context.Background(), wfID, "")
	if err != nil {
		return p, false
	}
	for _, a := range desc.GetPendingActivities() {
		if d := a.GetHeartbeatDetails(); d != nil && len(d.GetPayloads()) > 0 {
			if converter.GetDefaultDataConverter().FromPayloads(d, &p) == nil {
				return p, true
			}
		}
	}
	return p, false
}

func TestWorkerKilledMidBackupResumesAndNothingPartialIsListed(t *testing.T) {
	c := newCluster(t, "")
	os.WriteFile(c.config, []byte(configFor(c.dir, "limits:\n  upload: 1MiB\n")), 0o600)
	newFinance(t, c.dir, 24<<20)
	w := c.startWorker()

	run, err := c.client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: workflows.BackupWorkflowID("finance"), TaskQueue: activities.WorkflowQueue,
	}, workflows.BackupWorkflow, workflows.BackupRequest{Database: "finance", Host: "e2e", Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	var before activities.Progress
	waitFor(t, 90*time.Second, func() bool {
		p, ok := heartbeat(c, run.GetID())
		before = p
		return ok && p.Chunk >= 2
	})
	w.kill()
	if total := (before.Total + sqlitesrc.DefaultChunkBytes - 1) / sqlitesrc.DefaultChunkBytes; int64(before.Chunk) >= total {
		t.Fatalf("worker killed after the last chunk (%d of %d): not mid-backup", before.Chunk, total)
	}
	if ids := listed(t, c.dir); len(ids) != 0 {
		t.Fatalf("a partial backup is listed: %v", ids)
	}
	c.startWorker()
	var res workflows.BackupResult
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	if res.ReusedChunks < before.Chunk {
		t.Fatalf("resumed backup re-used %d chunks; %d were durable before the kill", res.ReusedChunks, before.Chunk)
	}
	if res.Verify == nil || !res.Verify.OK {
		t.Fatalf("resumed backup does not verify: %+v", res.Verify)
	}
	if ids := listed(t, c.dir); len(ids) != 1 || ids[0] != res.BackupID {
		t.Fatalf("listed %v, want only %s", ids, res.BackupID)
	}
}

func TestWorkerKilledMidRestoreResumes(t *testing.T) {
	c := newCluster(t, "")
	os.WriteFile(c.config, []byte(configFor(c.dir, "")), 0o600)
	newFinance(t, c.dir, 24<<20)
	w := c.startWorker()
	var res workflows.BackupResult
	json.Unmarshal([]byte(c.mustCLI("backup", "finance", "--no-verify", "--json")), &res)
	w.stop()

	os.WriteFile(c.config, []byte(configFor(c.dir, "limits:\n  download: 2MiB\n")), 0o600)
	w = c.startWorker()
	target := filepath.Join(c.dir, "restored.db")
	run, err := c.client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: workflows.RestoreWorkflowID("finance", target), TaskQueue: activities.WorkflowQueue,
	}, workflows.RestoreWorkflow, workflows.RestoreRequest{Database: "finance", Host: "e2e", Backup: res.BackupID, Target: target})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 90*time.Second, func() bool {
		p, ok := heartbeat(c, run.GetID())
		return ok && p.Phase == "restore" && p.Chunk >= 2
	})
	w.kill()
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a partial restore is visible at the target")
	}
	w2 := c.startWorker()
	var rr workflows.RestoreResult
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := run.Get(ctx, &rr); err != nil {
		t.Fatal(err)
	}
	if hashOf(t, target) != res.ImageHash {
		t.Fatal("resumed restore differs from the backup's image")
	}
	if !strings.Contains(w2.out.String(), "resuming restore") {
		t.Fatalf("the second worker started over instead of resuming:\n%s", w2.out.String())
	}
	if _, err := os.Stat(sqlitesrc.TempPathFor(target, res.BackupID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("staged file left behind")
	}
}

func TestHotBackupUnderContinuousWriterRestoresCommittedState(t *testing.T) {
	c := newCluster(t, "")
	os.WriteFile(c.config, []byte(configFor(c.dir, "")), 0o600)
	src := newFinance(t, c.dir, 16<<20)
	c.startWorker()

	ctx, stop := context.WithCancel(context.Background())
	type result struct {
		stats demodb.WriterStats
		err   error
	}
	done := make(chan result, 1)
	go func() {
		st, err := demodb.RunWriter(ctx, src, demodb.WriterOptions{Seed: 3})
		done <- result{st, err}
	}()
	time.Sleep(300 * time.Millisecond) // let the writer get going
	var ids []string
	for i := 0; i < 3; i++ {
		var res workflows.BackupResult
		if err := json.Unmarshal([]byte(c.mustCLI("backup", "finance", "--json")), &res); err != nil {
			t.Fatal(err)
		}
		if res.Verify == nil || !res.Verify.OK {
			t.Fatalf("backup %d under the writer does not verify: %+v", i, res.Verify)
		}
		ids = append(ids, res.BackupID)
	}
	stop()
	r := <-done
	if r.err != nil && !errors.Is(r.err, context.Canceled) {
		t.Fatal(r.err)
	}
	if r.stats.Commits < 10 {
		t.Fatalf("writer committed only %d times; the test proves nothing", r.stats.Commits)
	}
	t.Logf("writer: %d commits, max commit latency %s, p99 %s", r.stats.Commits, r.stats.MaxCommitLatency, r.stats.P99CommitLatency)
	for _, id := range ids {
		target := filepath.Join(c.dir, "restored-"+id+".db")
		var rr workflows.RestoreResult
		json.Unmarshal([]byte(c.mustCLI("restore", "finance", id, "--to", target, "--json")), &rr)
		if hashOf(t, target) != rr.ImageHash {
			t.Fatal("restored image differs from the manifest")
		}
		if err := demodb.CheckConsistent(context.Background(), target); err != nil {
			t.Fatalf("backup %s is not a committed state: %v", id, err)
		}
	}
}

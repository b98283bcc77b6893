package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/destinations/destinationtest"
	"github.com/bulwark-dr/bulwark/repository"
	"github.com/bulwark-dr/bulwark/workflows"
)

// objectsUnder returns key → bytes of every object of a backup.
func objectsUnder(t *testing.T, b *blob.Bucket, prefix string) map[string][]byte {
	t.Helper()
	objs, err := repository.BackupObjects(context.Background(), b, "finance", prefix)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, o := range objs {
		data, err := b.ReadAll(context.Background(), o.Key)
		if err != nil {
			t.Fatal(err)
		}
		out[o.Key] = data
	}
	return out
}

// 3-2-1 under fault: a backup is copied to a NAS (file://) and a cloud
// (s3:// with Object Lock, a real S3 protocol server on loopback) by a
// worker process that is killed mid-copy. After a restart every object is
// present once at each destination, verified, and no object that was
// already intact when the worker died is written again.
func TestReplicationSurvivesAKilledWorker(t *testing.T) {
	s3 := destinationtest.StartS3(t) // the worker inherits its AWS environment
	c := newCluster(t, "")
	cfg := fmt.Sprintf(`keeper: keyfile://%[1]s/keys/bulwark.key
host: e2e
limits:
  upload: 1MiB
destinations:
  - name: local
    url: %[1]s/backups
    role: primary
  - name: nas
    url: %[1]s/nas
    role: secondary
    retention: {keep_last: 1}
  - name: cloud
    url: %[2]s
    role: tertiary
    object_lock: {mode: governance, period: 1d}
databases:
  - name: finance
    path: %[1]s/finance.db
`, c.dir, s3.URL)
	os.WriteFile(c.config, []byte(cfg), 0o600)
	newFinance(t, c.dir, 12<<20)
	w := c.startWorker()
	run, err := c.client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: workflows.BackupWorkflowID("finance"), TaskQueue: activities.WorkflowQueue,
	}, workflows.BackupWorkflow, workflows.BackupRequest{Database: "finance", Host: "e2e", Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	var id string
	waitFor(t, 2*time.Minute, func() bool {
		ids := listed(t, c.dir)
		if len(ids) == 1 {
			id = ids[0]
		}
		return id != ""
	})
	waitFor(t, 2*time.Minute, func() bool {
		p, ok := heartbeat(c, workflows.ReplicateWorkflowID("finance", id))
		return ok && p.Chunk >= 2
	})
	w.kill()
	killedAt := len(s3.Requests())

	primary, err := fileblob.OpenBucket(filepath.Join(c.dir, "backups"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	nas, err := fileblob.OpenBucket(filepath.Join(c.dir, "nas"), &fileblob.Options{CreateDir: true})
	if err != nil {
		t.Fatal(err)
	}
	defer nas.Close()
	cloud, err := blob.OpenBucket(context.Background(), s3.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer cloud.Close()
	source := objectsUnder(t, primary, id)
	if len(source) < 4 {
		t.Fatalf("the backup has %d objects", len(source))
	}
	// What is intact at each destination at the moment of the kill.
	intactCloud := map[string]bool{}
	for k, v := range objectsUnder(t, cloud, id) {
		intactCloud[k] = bytes.Equal(v, source[k])
	}
	type stamp struct{ ino, mtime int64 }
	intactNAS := map[string]stamp{}
	for k, v := range objectsUnder(t, nas, id) {
		if bytes.Equal(v, source[k]) {
			fi, _ := os.Stat(filepath.Join(c.dir, "nas", filepath.FromSlash(k)))
			st := fi.Sys().(*syscall.Stat_t)
			intactNAS[k] = stamp{int64(st.Ino), fi.ModTime().UnixNano()}
		}
	}
	if len(intactCloud)+len(intactNAS) == 0 {
		t.Fatal("nothing was copied before the kill: not mid-copy")
	}

	c.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var res workflows.BackupResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	if r := res.Replication; r == nil || len(r.Copies) != 2 || len(r.Failed) != 0 {
		t.Fatalf("replication %+v", res.Replication)
	}
	// Every destination holds exactly the primary's objects, byte for byte
	// (plus each side's replica records).
	for name, b := range map[string]*blob.Bucket{"nas": nas, "cloud": cloud} {
		got := objectsUnder(t, b, id)
		for k, v := range source {
			if strings.Contains(k, "/replicas/") {
				continue
			}
			if !bytes.Equal(got[k], v) {
				t.Errorf("%s: %s differs from the primary or is missing", name, k)
			}
		}
		for k := range got {
			if _, ok := source[k]; !ok && !strings.Contains(k, "/replicas/") {
				t.Errorf("%s: unexpected object %s", name, k)
			}
		}
	}
	// Nothing intact at the kill was written again.
	for _, r := range s3.Requests()[killedAt:] {
		switch r.Op() {
		case "PutObject", "CreateMultipartUpload", "CopyObject":
			if intactCloud[r.Key()] {
				t.Errorf("cloud: %s was intact before the kill and was written again", r.Key())
			}
			if !strings.Contains(r.Key(), "/replicas/") && r.Header.Get("X-Amz-Object-Lock-Mode") != "GOVERNANCE" {
				t.Errorf("cloud: %s written without its object lock", r.Key())
			}
		}
	}
	for k, before := range intactNAS {
		fi, err := os.Stat(filepath.Join(c.dir, "nas", filepath.FromSlash(k)))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int64(st.Ino) != before.ino || fi.ModTime().UnixNano() != before.mtime {
			t.Errorf("nas: %s was intact before the kill and was written again", k)
		}
	}
	// Self-healing: a chunk damaged on the primary fails verify, named by
	// key, while restore reads it from a copy and, with --repair, puts the
	// good copy back.
	chunk := repository.ChunkKey("finance", id, 0)
	data := source[chunk]
	damaged := append([]byte(nil), data...)
	damaged[len(damaged)/2] ^= 0x10
	if err := os.WriteFile(filepath.Join(c.dir, "backups", filepath.FromSlash(chunk)), damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	vout, _, code := c.cli("verify", "finance", id)
	if code == 0 || !strings.Contains(vout, chunk) || !strings.Contains(vout, "intact copy was read from nas") {
		t.Fatalf("verify of a damaged primary (exit %d):\n%s", code, vout)
	}
	target := filepath.Join(c.dir, "healed.db")
	rout := c.mustCLI("restore", "finance", id, "--to", target, "--repair")
	if !strings.Contains(rout, "healed: "+chunk) || hashOf(t, target) != res.ImageHash {
		t.Fatalf("restore with a damaged primary:\n%s", rout)
	}
	if got, _ := os.ReadFile(filepath.Join(c.dir, "backups", filepath.FromSlash(chunk))); !bytes.Equal(got, data) {
		t.Fatal("--repair did not write the good copy back to the primary")
	}
	c.mustCLI("verify", "finance", id)

	replayHistory(t, c, workflows.ReplicateWorkflowID("finance", id), "", "replicate")

	// list says where the backup lives; forget --dry-run explains the plan.
	if out := c.mustCLI("list", "finance"); !strings.Contains(out, "local,cloud,nas") {
		t.Fatalf("list does not show the locations:\n%s", out)
	}
	capOut := c.mustCLI("capacity")
	for _, want := range []string{"RECOMMENDED", "local", "nas", "cloud", "keep_last 1"} {
		if !strings.Contains(capOut, want) {
			t.Fatalf("capacity output lacks %q:\n%s", want, capOut)
		}
	}
	out := c.mustCLI("forget", "finance", "--dry-run")
	for _, want := range []string{"nas (keep_last 1):", id, "keep", "last 1", "local", "no retention policy"} {
		if !strings.Contains(out, want) {
			t.Fatalf("forget --dry-run output lacks %q:\n%s", want, out)
		}
	}
}

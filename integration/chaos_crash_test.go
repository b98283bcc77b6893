package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/activities/sqlitesrc"
	"github.com/bulwark-dr/bulwark/keeper"
	"github.com/bulwark-dr/bulwark/repository"
	"github.com/bulwark-dr/bulwark/workflows"
)

// crashRegressionSeeds are seeds of crash-point runs that failed and were
// fixed; every run of the test, smoke or full, makes them first.
var crashRegressionSeeds = []string{
	// A full backup killed while it wrote its chunks; its check found that
	// retention on the secondary had left the primary's record of the
	// removed copy (ForgetBackup now removes it first).
	"255967badd08d90c",
	// An incremental backup killed while it was verified: the killed
	// attempt's scratch image stayed in the worker's scratch directory
	// (scratch files are now locked while in use, and the next one made
	// removes those whose holder is gone).
	"37b67c2fa488e8e5",
}

// Crash points (issue #7, part 1). Each run picks an operation — a full or
// incremental backup (snapshot, verification and replication), a
// replication, a cleanup, a restore to a new path — and a moment: a time
// after its start, or a number of bytes written (to the primary, the
// secondary or the restore's staged file). At that moment the worker is
// killed with SIGKILL and a new one is started. The run survives when:
//
//   - the workflow completes, with the result it would have had without the
//     crash (a verified and replicated backup, a verified copy, a restore
//     byte-identical to the manifest, a cleanup without failures);
//   - the next cleanup leaves no orphan: every object on each destination is
//     part of a backup with a manifest there (its key, chunks the manifest
//     lists, page index, verification and replica records), a tombstone or
//     a drill record; temp files of writes cut short and backups without a
//     manifest are orphans;
//   - nothing a kept backup needs was removed: every backup each retention
//     plan keeps is still listed, every backup on the primary verifies, and
//     every backup on the secondary restores byte-identical to its manifest;
//   - replica records tell the truth: a backup the primary says is on the
//     secondary is there;
//   - the host keeps nothing of the killed attempts: no scratch files of
//     verification, no staged restore files.
func TestChaosCrashPoints(t *testing.T) {
	part := newChaosPart("crash points", "TestChaosCrashPoints")
	defer part.record(t)
	seeds := chaosSeeds(t, chaosSeedRuns(t, 3, 50, len(crashRegressionSeeds)), crashRegressionSeeds...)
	stats := map[string]int{}
	e := newCrashEnv(t, stats)
	var total time.Duration
	for i, seed := range seeds {
		begin := time.Now()
		what, err := e.run(seed)
		took := time.Since(begin)
		total += took
		if err != nil {
			part.failed(t, seed, fmt.Errorf("%s: %w", what, err))
			t.Logf("run %d/%d seed %s FAILED after %s: %s", i+1, len(seeds), seed, took.Round(100*time.Millisecond), what)
			e.close()
			e = newCrashEnv(t, stats) // what a failed run left must not fail the next
			continue
		}
		part.survived()
		t.Logf("run %d/%d seed %s survived in %s: %s", i+1, len(seeds), seed, took.Round(100*time.Millisecond), what)
	}
	var ops []string
	for _, op := range crashOps {
		if n := stats[op]; n > 0 {
			ops = append(ops, fmt.Sprintf("%s %d", op, n))
		}
	}
	part.note("operations: %s", strings.Join(ops, ", "))
	part.note("%d orphan object(s) swept by the cleanup after a run", stats["orphans swept"])
	part.note("kills by time %d, by bytes %d; %d kill(s) came after the operation ended and were retried sooner",
		stats["kill by time"], stats["kill by bytes"], stats["missed"])
	var where []string
	for k, n := range stats {
		if w, ok := strings.CutPrefix(k, "in "); ok {
			where = append(where, fmt.Sprintf("%s %d", w, n))
		}
	}
	slices.Sort(where)
	part.note("killed in: %s", strings.Join(where, ", "))
	if len(seeds) > 0 {
		part.note("%s per run", (total / time.Duration(len(seeds))).Round(100*time.Millisecond))
	}
}

// The operations a run can interrupt, and how often each is picked.
var (
	crashOps     = []string{"full backup", "incremental backup", "replicate", "cleanup", "restore"}
	crashWeights = []int{5, 4, 4, 3, 4}
)

const chaosHost = "chaos"

// crashEnv is one embedded server, a worker, a database and two file
// destinations, shared by the runs of a test.
type crashEnv struct {
	t         *testing.T
	c         *cluster
	w         *proc
	db        string
	primary   *blob.Bucket
	secondary *blob.Bucket
	keeper    *keeper.Keeper
	verifier  *activities.StorageActivities
	actEnv    *testsuite.TestActivityEnvironment
	// est is how long each operation takes without a crash.
	est map[string]time.Duration
	// fullStored is what the last full backup stored.
	fullStored int64
	stats      map[string]int
	// checked holds the chainStamp of each backup ("local/<id>",
	// "nas/<id>") when it last passed its check.
	checked map[string]string
}

func newCrashEnv(t *testing.T, stats map[string]int) *crashEnv {
	t.Helper()
	c := newCluster(t, "")
	cfg := fmt.Sprintf(`keeper: keyfile://%[1]s/keys/bulwark.key
host: %[2]s
scratch_dir: %[1]s/scratch
limits:
  upload: 6MiB
  download: 12MiB
destinations:
  - name: local
    url: %[1]s/backups
    role: primary
    retention: {keep_last: 3}
  - name: nas
    url: %[1]s/nas
    role: secondary
    retention: {keep_last: 2}
databases:
  - name: finance
    path: %[1]s/finance.db
`, c.dir, chaosHost)
	if err := os.WriteFile(c.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &crashEnv{t: t, c: c, db: newFinance(t, c.dir, 24<<20), est: map[string]time.Duration{}, stats: stats, checked: map[string]string{}}
	e.w = c.startWorker()
	open := func(name string) *blob.Bucket {
		b, err := fileblob.OpenBucket(filepath.Join(c.dir, name), &fileblob.Options{CreateDir: true, NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	e.primary, e.secondary = open("backups"), open("nas")

	// Warm-up: each operation once, without a crash, for its duration.
	ctx := context.Background()
	timed := func(op string, f func() error) {
		t.Helper()
		begin := time.Now()
		if err := f(); err != nil {
			t.Fatalf("warm-up %s: %v", op, err)
		}
		e.est[op] = time.Since(begin)
	}
	var full workflows.BackupResult
	timed("full backup", func() error {
		var err error
		full, err = e.backup(ctx, "full", true)
		return err
	})
	e.fullStored = full.StoredBytes
	kp, err := keeper.Open(ctx, fmt.Sprintf("keyfile://%s/keys/bulwark.key", c.dir), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kp.Close() })
	e.keeper = kp
	e.verifier = &activities.StorageActivities{
		Bucket: e.primary, Keeper: kp, Worker: "chaos-check", TempDir: t.TempDir(), Workers: 2,
		Destinations: []activities.Destination{{Name: "local", Role: "primary", Bucket: e.primary}, {Name: "nas", Role: "secondary", Bucket: e.secondary}},
	}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quiet{})
	e.actEnv = s.NewTestActivityEnvironment()
	e.actEnv.RegisterActivity(e.verifier)

	timed("incremental backup", func() error {
		e.mutate(rand.New(rand.NewPCG(1, 2)))
		_, err := e.backup(ctx, "incremental", true)
		return err
	})
	timed("restore", func() error {
		target := filepath.Join(c.dir, "restores", "warm-up.db")
		run, err := c.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.RestoreWorkflowID("finance", target), TaskQueue: activities.WorkflowQueue},
			workflows.RestoreWorkflow, workflows.RestoreRequest{Database: "finance", Host: chaosHost, Backup: full.BackupID, Target: target})
		if err != nil {
			return err
		}
		var rr workflows.RestoreResult
		if err := run.Get(ctx, &rr); err != nil {
			return err
		}
		return os.Remove(target)
	})
	unreplicated, err := e.backup(ctx, "full", false)
	if err != nil {
		t.Fatal(err)
	}
	timed("replicate", func() error {
		run, err := e.replicate(ctx, unreplicated.BackupID)
		if err != nil {
			return err
		}
		var res workflows.ReplicateResult
		return run.Get(ctx, &res)
	})
	timed("cleanup", func() error {
		_, err := e.cleanup(ctx, 0)
		return err
	})
	t.Logf("warm-up: %v; a full backup stores %d bytes", e.est, e.fullStored)
	return e
}

func (e *crashEnv) close() {
	e.w.stop()
	e.c.server.stop()
}

// backup runs a backup to the end.
func (e *crashEnv) backup(ctx context.Context, typ string, verify bool) (workflows.BackupResult, error) {
	var res workflows.BackupResult
	run, err := e.startBackup(ctx, typ, verify)
	if err != nil {
		return res, err
	}
	err = run.Get(ctx, &res)
	return res, err
}

func (e *crashEnv) startBackup(ctx context.Context, typ string, verify bool) (client.WorkflowRun, error) {
	return e.c.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.BackupWorkflowID("finance"), TaskQueue: activities.WorkflowQueue},
		workflows.BackupWorkflow, workflows.BackupRequest{Database: "finance", Host: chaosHost, Type: typ, Verify: verify})
}

func (e *crashEnv) replicate(ctx context.Context, id string) (client.WorkflowRun, error) {
	return e.c.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.ReplicateWorkflowID("finance", id), TaskQueue: activities.WorkflowQueue},
		workflows.ReplicateWorkflow, workflows.ReplicateRequest{Database: "finance", BackupID: id})
}

func (e *crashEnv) startCleanup(ctx context.Context, grace time.Duration) (client.WorkflowRun, error) {
	return e.c.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.CleanupWorkflowID("finance"), TaskQueue: activities.WorkflowQueue},
		workflows.CleanupWorkflow, workflows.CleanupRequest{Database: "finance", OrphanGrace: grace})
}

func (e *crashEnv) cleanup(ctx context.Context, grace time.Duration) (workflows.CleanupResult, error) {
	var res workflows.CleanupResult
	run, err := e.startCleanup(ctx, grace)
	if err != nil {
		return res, err
	}
	err = run.Get(ctx, &res)
	return res, err
}

// cleanupPlan counts the backups retention would remove now, by
// destination.
func (e *crashEnv) cleanupPlan(ctx context.Context) (map[string]int, error) {
	run, err := e.c.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.CleanupWorkflowID("finance"), TaskQueue: activities.WorkflowQueue},
		workflows.CleanupWorkflow, workflows.CleanupRequest{Database: "finance", DryRun: true})
	if err != nil {
		return nil, err
	}
	var res workflows.CleanupResult
	if err := run.Get(ctx, &res); err != nil {
		return nil, err
	}
	going := map[string]int{}
	for _, p := range res.Plans {
		for _, d := range p.Decisions {
			if !d.Keep {
				going[p.Destination]++
			}
		}
	}
	return going, nil
}

// mutate changes a few hundred rows of the live database, so that an
// incremental backup has pages to store.
func (e *crashEnv) mutate(r *rand.Rand) {
	e.t.Helper()
	db, err := sql.Open("sqlite", e.db)
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE expenses SET amount_pence = amount_pence + 1, modified_at = ? WHERE expense_id % 61 = ?`,
		time.Now().UTC().Format(time.RFC3339Nano), r.IntN(61)); err != nil {
		e.t.Fatal(err)
	}
}

// crashOp is an operation under way: its workflow, what the kill moment
// watches, and the check of its result.
type crashOp struct {
	name  string
	wfID  string
	watch string       // what measure counts, for the run's description
	total int64        // how much measure grows over the whole operation
	meas  func() int64 // nil: only time-based kills
	check func(ctx context.Context) (string, error)
}

// run makes one crash-point run and returns what it did.
func (e *crashEnv) run(seed string) (string, error) {
	ctx := context.Background()
	r := seedRand(seed)
	op := pickWeighted(r, crashOps, crashWeights)
	byBytes := r.IntN(2) == 0
	frac := 0.03 + 0.94*r.Float64()
	e.stats[op]++
	var desc string
	var o *crashOp
	for attempt := 0; ; attempt++ {
		var err error
		o, err = e.start(ctx, op, r)
		if err != nil {
			return op + ": start", err
		}
		hit, how, err := e.killDuring(o, byBytes, frac)
		desc = fmt.Sprintf("%s, worker killed %s", op, how)
		if err != nil {
			return desc, err
		}
		e.w = e.c.startWorker()
		if hit {
			break
		}
		// The operation ended before its moment: its result must still be
		// right, then the run tries an earlier moment.
		e.stats["missed"]++
		if _, err := o.check(ctx); err != nil {
			return desc + " (after it ended)", err
		}
		if attempt == 3 {
			return desc, errors.New("four attempts ended before the worker could be killed")
		}
		frac /= 3
	}
	if byBytes && o.meas != nil {
		e.stats["kill by bytes"]++
	} else {
		e.stats["kill by time"]++
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	begin := time.Now()
	result, err := o.check(wctx)
	desc += fmt.Sprintf("; completed %s after the kill", time.Since(begin).Round(100*time.Millisecond))
	if result != "" {
		desc += ": " + result
	}
	if err != nil {
		return desc, err
	}
	begin = time.Now()
	swept, err := e.checkRepository(ctx)
	desc += fmt.Sprintf("; %s swept; checks %s", swept, time.Since(begin).Round(100*time.Millisecond))
	return desc, err
}

func pickWeighted(r *rand.Rand, names []string, weights []int) string {
	sum := 0
	for _, w := range weights {
		sum += w
	}
	n := r.IntN(sum)
	for i, w := range weights {
		if n < w {
			return names[i]
		}
		n -= w
	}
	return names[len(names)-1]
}

// start prepares what op needs and starts its workflow.
func (e *crashEnv) start(ctx context.Context, op string, r *rand.Rand) (*crashOp, error) {
	c := e.c
	o := &crashOp{name: op}
	growth := func(dir string) func() int64 {
		return func() int64 { n, _ := treeBytes(dir); return n }
	}
	switch op {
	case "full backup", "incremental backup":
		typ := strings.Fields(op)[0]
		if typ == "incremental" {
			e.mutate(r)
		}
		run, err := e.startBackup(ctx, typ, true)
		if err != nil {
			return nil, err
		}
		o.wfID = run.GetID()
		if typ == "full" {
			dest := []string{"backups", "nas"}[r.IntN(2)]
			o.watch, o.total, o.meas = "bytes written to "+dest, e.fullStored, growth(filepath.Join(c.dir, dest))
		}
		o.check = func(ctx context.Context) (string, error) {
			var res workflows.BackupResult
			if err := run.Get(ctx, &res); err != nil {
				return "", err
			}
			what := fmt.Sprintf("%s backup %s, %d chunks, %d re-used", res.Type, res.BackupID, res.Chunks, res.ReusedChunks)
			if res.Type != typ {
				return what, fmt.Errorf("asked for a %s backup, got a %s one because %s", typ, res.Type, res.FullBecause)
			}
			if res.Verify == nil || !res.Verify.OK {
				return what, fmt.Errorf("the backup does not verify: %+v", res.Verify)
			}
			if res.Replication == nil || len(res.Replication.Copies) != 1 || len(res.Replication.Failed) != 0 {
				return what, fmt.Errorf("replication %+v", res.Replication)
			}
			if typ == "full" {
				e.fullStored = res.StoredBytes
			}
			return what, nil
		}
	case "replicate":
		typ := []string{"full", "incremental"}[r.IntN(2)]
		e.mutate(r)
		b, err := e.backup(ctx, typ, false)
		if err != nil {
			return nil, fmt.Errorf("the backup to replicate: %w", err)
		}
		run, err := e.replicate(ctx, b.BackupID)
		if err != nil {
			return nil, err
		}
		o.wfID = run.GetID()
		if b.Type == "full" {
			o.watch, o.total, o.meas = "bytes copied to nas", b.StoredBytes, growth(filepath.Join(c.dir, "nas"))
		}
		o.check = func(ctx context.Context) (string, error) {
			var res workflows.ReplicateResult
			if err := run.Get(ctx, &res); err != nil {
				return "", err
			}
			if len(res.Copies) != 1 || len(res.Failed) != 0 {
				return "", fmt.Errorf("replication of %s: %+v", b.BackupID, res)
			}
			cp := res.Copies[0]
			return fmt.Sprintf("%s backup %s copied: %d objects, %d already there", b.Type, b.BackupID, cp.Objects, cp.AlreadyThere), nil
		}
	case "cleanup":
		// Backups that each destination's retention removes: a chain
		// goes only when a newer verified full backup is kept.
		for i := 0; ; i++ {
			plan, err := e.cleanupPlan(ctx)
			if err != nil {
				return nil, err
			}
			if plan["local"] > 0 && plan["nas"] > 0 {
				break
			}
			if i == 3 {
				return nil, fmt.Errorf("retention would remove nothing after %d more backups: %v", i, plan)
			}
			typ := []string{"full", "incremental"}[i%2]
			e.mutate(r)
			if _, err := e.backup(ctx, typ, true); err != nil {
				return nil, fmt.Errorf("a backup for cleanup to remove: %w", err)
			}
		}
		run, err := e.startCleanup(ctx, 0)
		if err != nil {
			return nil, err
		}
		o.wfID = run.GetID()
		o.check = func(ctx context.Context) (string, error) {
			var res workflows.CleanupResult
			if err := run.Get(ctx, &res); err != nil {
				return "", err
			}
			going := 0
			for _, p := range res.Plans {
				for _, d := range p.Decisions {
					if !d.Keep {
						going++
					}
				}
			}
			if len(res.Removed) != going || going == 0 {
				return "", fmt.Errorf("cleanup removed %d backup(s), its plans %d: %+v", len(res.Removed), going, res.Plans)
			}
			return fmt.Sprintf("%d backup(s) removed", len(res.Removed)), nil
		}
	case "restore":
		ids, err := repository.ListBackups(ctx, e.primary, "finance")
		if err != nil || len(ids) == 0 {
			return nil, fmt.Errorf("backups to restore: %v %v", ids, err)
		}
		id := ids[r.IntN(len(ids))]
		b, err := repository.ReadBackup(ctx, e.primary, "finance", id)
		if err != nil {
			return nil, err
		}
		target := filepath.Join(c.dir, "restores", fmt.Sprintf("%d.db", r.Uint32()))
		run, err := c.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.RestoreWorkflowID("finance", target), TaskQueue: activities.WorkflowQueue},
			workflows.RestoreWorkflow, workflows.RestoreRequest{Database: "finance", Host: chaosHost, Backup: id, Target: target})
		if err != nil {
			return nil, err
		}
		o.wfID = run.GetID()
		staged := sqlitesrc.TempPathFor(target, id)
		o.watch, o.total, o.meas = "bytes staged", b.Manifest.ImageBytes, growth(staged)
		o.check = func(ctx context.Context) (string, error) {
			var rr workflows.RestoreResult
			if err := run.Get(ctx, &rr); err != nil {
				return "", err
			}
			what := fmt.Sprintf("%s backup %s restored", b.Manifest.Type, id)
			want := b.Manifest.ImageDigest()
			h, _, err := repository.ImageHashFile(target)
			if err != nil {
				return what, err
			}
			if rr.ImageHash != want || h != want {
				return what, fmt.Errorf("restored image %s (workflow says %s), the manifest's is %s", h, rr.ImageHash, want)
			}
			if _, err := os.Stat(staged); !errors.Is(err, os.ErrNotExist) {
				return what, fmt.Errorf("the staged file %s is left behind", staged)
			}
			return what, os.Remove(target)
		}
	default:
		return nil, fmt.Errorf("unknown operation %q", op)
	}
	return o, nil
}

// killDuring waits for the kill moment — frac of the operation's bytes, or
// of its duration — and kills the worker with SIGKILL. hit is false when
// the workflow had ended before.
func (e *crashEnv) killDuring(o *crashOp, byBytes bool, frac float64) (hit bool, how string, err error) {
	begin := time.Now()
	delay := time.Duration(frac * float64(e.est[o.name]))
	var base, threshold int64
	useBytes := byBytes && o.meas != nil && o.total > 0
	if useBytes {
		base = o.meas()
		threshold = int64(frac * float64(o.total))
		how = fmt.Sprintf("after %d of ~%d %s", threshold, o.total, o.watch)
	} else {
		how = fmt.Sprintf("%s after the start (%.0f%% of %s)", delay.Round(time.Millisecond), frac*100, e.est[o.name].Round(time.Millisecond))
	}
	lastCheck := time.Now()
	for {
		if useBytes && o.meas()-base >= threshold || !useBytes && time.Since(begin) >= delay {
			break
		}
		if time.Since(lastCheck) > 50*time.Millisecond {
			lastCheck = time.Now()
			if open, err := workflowOpen(e.c, o.wfID); err != nil {
				return false, how, err
			} else if !open {
				e.w.kill()
				return false, how + " (it had ended)", nil
			}
		}
		if time.Since(begin) > 5*time.Minute {
			return false, how, errors.New("the kill moment never came")
		}
		time.Sleep(2 * time.Millisecond)
	}
	e.w.kill()
	open, err := workflowOpen(e.c, o.wfID)
	if err != nil {
		return false, how, err
	}
	if !open {
		return false, how + " (it had ended)", nil
	}
	where := pendingWork(e.c, o.wfID)
	e.stats["in "+where]++
	return true, how + " in " + where, nil
}

// checkRepository runs a cleanup that sweeps every orphan at once, then
// checks both destinations and the host.
func (e *crashEnv) checkRepository(ctx context.Context) (swept string, err error) {
	res, err := e.cleanup(ctx, time.Millisecond)
	if err != nil {
		return "nothing", fmt.Errorf("the cleanup after the run: %w", err)
	}
	if err := replayErr(e.c, workflows.CleanupWorkflowID("finance"), "cleanup-sweep"); err != nil {
		return "nothing", err
	}
	var parts []string
	for _, s := range res.Swept {
		if s.Objects > 0 {
			parts = append(parts, fmt.Sprintf("%d orphan(s) on %s", s.Objects, s.Destination))
			e.stats["orphans swept"] += s.Objects
		}
	}
	swept = "no orphan"
	if len(parts) > 0 {
		swept = strings.Join(parts, ", ")
	}
	return swept, e.checkDestinations(ctx, res)
}

// checkDestinations checks both destinations and the host after the
// cleanup that swept the orphans.
func (e *crashEnv) checkDestinations(ctx context.Context, res workflows.CleanupResult) error {
	buckets := map[string]*blob.Bucket{"local": e.primary, "nas": e.secondary}
	dirs := map[string]string{"local": "backups", "nas": "nas"}
	// Nothing a kept backup needs was removed: what each plan keeps is
	// still there.
	for _, p := range res.Plans {
		ids, err := repository.ListBackups(ctx, buckets[p.Destination], "finance")
		if err != nil {
			return err
		}
		for _, d := range p.Decisions {
			if d.Keep && !slices.Contains(ids, d.BackupID) {
				return fmt.Errorf("%s: backup %s, kept by retention (%s), is gone", p.Destination, d.BackupID, strings.Join(d.Reasons, "; "))
			}
		}
	}
	for _, name := range []string{"local", "nas"} {
		if orphans := unreferenced(filepath.Join(e.c.dir, dirs[name])); len(orphans) > 0 {
			return fmt.Errorf("%s: %d orphan(s) survived the cleanup: %s", name, len(orphans), strings.Join(orphans[:min(5, len(orphans))], "; "))
		}
	}
	// Every backup on the primary verifies (the activity the workers run,
	// here without their bandwidth limit); every backup on the secondary
	// restores byte-identical to its manifest. A backup whose chain's
	// objects are unchanged since it last passed is not read again, but the
	// newest always is: its history check walks back through all the
	// others and their tombstones.
	ids, err := repository.ListBackups(ctx, e.primary, "finance")
	if err != nil {
		return err
	}
	for i, id := range ids {
		stamp, err := chainStamp(ctx, filepath.Join(e.c.dir, "backups"), e.primary, id)
		if err != nil {
			return fmt.Errorf("chain of %s: %w", id, err)
		}
		if i == len(ids)-1 || e.checked["local/"+id] != stamp {
			if err := e.verify(id); err != nil {
				return err
			}
			e.checked["local/"+id] = stamp
		}
		recs, err := repository.ReplicaRecords(ctx, e.primary, "finance", id)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if _, err := repository.ReadBackup(ctx, buckets[rec.Destination], "finance", id); err != nil {
				return fmt.Errorf("the primary records a copy of %s on %s, which does not hold it: %v", id, rec.Destination, err)
			}
		}
	}
	copies, err := repository.ListBackups(ctx, e.secondary, "finance")
	if err != nil {
		return err
	}
	for _, id := range copies {
		stamp, err := chainStamp(ctx, filepath.Join(e.c.dir, "nas"), e.secondary, id)
		if err != nil {
			return fmt.Errorf("nas: chain of %s: %w", id, err)
		}
		if e.checked["nas/"+id] == stamp {
			continue
		}
		if err := e.restoresIdentical(ctx, e.secondary, id); err != nil {
			return fmt.Errorf("nas: %w", err)
		}
		e.checked["nas/"+id] = stamp
	}
	// The host keeps nothing of the killed attempts.
	if _, n := treeBytes(filepath.Join(e.c.dir, "scratch")); n > 0 {
		return fmt.Errorf("%d verification scratch file(s) left in %s", n, filepath.Join(e.c.dir, "scratch"))
	}
	if m, _ := filepath.Glob(filepath.Join(e.c.dir, "restores", "*.bulwark-restore-*")); len(m) > 0 {
		return fmt.Errorf("staged restore files left: %v", m)
	}
	return nil
}

// verify runs the verification activity on a backup of the primary.
func (e *crashEnv) verify(id string) error {
	val, err := e.actEnv.ExecuteActivity(e.verifier.VerifyBackup, activities.VerifyInput{Database: "finance", BackupID: id})
	if err != nil {
		return fmt.Errorf("verify %s: %w", id, err)
	}
	var v activities.VerifyOutput
	if err := val.Get(&v); err != nil || !v.OK {
		return fmt.Errorf("backup %s does not verify: %v %v", id, v.Problems, err)
	}
	return nil
}

// chainStamp fingerprints what a backup needs on a file destination: each
// object of each backup of its chain (but their verification and replica
// records) by name, size, modification time and inode. No write or
// removal leaves it unchanged.
func chainStamp(ctx context.Context, dir string, b *blob.Bucket, id string) (string, error) {
	ids, err := repository.ChainIDs(ctx, b, "finance", id)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, cid := range ids {
		root := filepath.Join(dir, "databases", "finance", "backups", cid)
		filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(root, p)
			if strings.HasPrefix(rel, "verify/") || strings.HasPrefix(rel, "replicas/") {
				return nil
			}
			var ino uint64
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				ino = st.Ino
			}
			fmt.Fprintf(&sb, "%s/%s %d %d %d\n", cid, rel, info.Size(), info.ModTime().UnixNano(), ino)
			return nil
		})
	}
	return sb.String(), nil
}

// restoresIdentical rebuilds a backup from one bucket and compares the
// file's image hash with its manifest's.
func (e *crashEnv) restoresIdentical(ctx context.Context, b *blob.Bucket, id string) error {
	chain, err := repository.Chain(ctx, b, e.keeper, "finance", id)
	if err != nil {
		return fmt.Errorf("chain of %s: %w", id, err)
	}
	f, err := os.CreateTemp(e.t.TempDir(), "restore-*.db")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := repository.RestoreImage(ctx, b, chain, f, repository.RestoreOptions{Workers: 2}); err != nil {
		return fmt.Errorf("restore %s: %w", id, err)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	got, _, err := repository.ImageHashFile(f.Name())
	if err != nil {
		return err
	}
	if want := chain[len(chain)-1].Manifest().ImageDigest(); got != want {
		return fmt.Errorf("backup %s restores to image %s, its manifest says %s", id, got, want)
	}
	return nil
}

// unreferenced walks a file destination and returns every file that is not
// part of the repository: under databases/finance/backups/<id>/ only the
// key, the manifest, the chunks it lists, its page index, verification and
// replica records of a backup whose manifest is there; tombstones; drill
// records. It is written from FORMAT.md, independently of the sweep.
func unreferenced(dir string) []string {
	var out []string
	manifests := map[string]*repository.Manifest{}
	manifestOf := func(id string) *repository.Manifest {
		if m, ok := manifests[id]; ok {
			return m
		}
		data, err := os.ReadFile(filepath.Join(dir, "databases", "finance", "backups", id, "manifest.json"))
		var m *repository.Manifest
		if err == nil {
			m, _ = repository.ParseManifest(data)
		}
		manifests[id] = m
		return m
	}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		ok := false
		switch {
		case len(parts) == 4 && parts[0] == "databases" && parts[1] == "finance" && parts[2] == "forgotten":
			id, isJSON := strings.CutSuffix(parts[3], ".json")
			ok = isJSON && repository.ValidateBackupID(id) == nil
		case len(parts) == 4 && parts[0] == "databases" && parts[1] == "finance" && parts[2] == "drills":
			ok = strings.HasSuffix(parts[3], ".json")
		case len(parts) >= 5 && parts[0] == "databases" && parts[1] == "finance" && parts[2] == "backups":
			m := manifestOf(parts[3])
			if m == nil {
				break
			}
			rest := parts[4:]
			switch {
			case len(rest) == 1:
				ok = rest[0] == "manifest.json" || rest[0] == "key.json" || rest[0] == "pages.idx" && m.PageIndex != nil
			case len(rest) == 2 && rest[0] == "chunks":
				n, err := strconv.Atoi(rest[1])
				ok = err == nil && len(rest[1]) == 8 && n < len(m.Chunks)
			case len(rest) == 2 && (rest[0] == "verify" || rest[0] == "replicas"):
				ok = strings.HasSuffix(rest[1], ".json")
			}
		}
		if !ok {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

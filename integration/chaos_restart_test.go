package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/keeper"
	"github.com/bulwark-dr/bulwark/repository"
	"github.com/bulwark-dr/bulwark/workflows"
)

// restartRegressionSeeds are seeds of server-restart runs that failed and
// were fixed; every run of the test, smoke or full, makes them first.
var restartRegressionSeeds = []string{
	// A hardware-failure recovery whose server was killed while it
	// assessed: its first workflow task ran again ten seconds after the
	// restart, and the runbook took that as the moment of the declaration,
	// reporting an RTO of 1.3 s for a recovery of 8.6 s (the declaration
	// is now the workflow's start).
	"2260485f33a6ab45",
}

// Server restarts (issue #7, part 2). The runs alternate between a
// scheduled pipeline run (PipelineWorkflow: backup, verification,
// replication, retention, RPO check) and a disaster recovery of a corrupt
// or lost database (DisasterRecoveryWorkflow, driven with the CLI as an
// operator would). At a random moment of each — for a recovery: while it
// assesses, while it waits for approval, while it restores, or while it
// waits for operations to resume — the embedded Temporal server is killed
// (SIGKILL, sometimes SIGTERM), stays down for up to two seconds, and is
// started again on the same database; the worker is left to reconnect by
// itself. The run survives when the workflow goes on from where it stood
// and ends as it would have without the restart: every pipeline step
// passes and its backup restores byte-identical from both destinations; the
// recovery restores the database byte-identical to the backup it chose and
// reports its timeline and the RTO and RPO it reached, measured from the
// run. Each history is replayed against the workflow code.
func TestChaosServerRestarts(t *testing.T) {
	part := newChaosPart("server restarts", "TestChaosServerRestarts")
	defer part.record(t)
	seeds := chaosSeeds(t, chaosSeedRuns(t, 1, 10, len(restartRegressionSeeds)), restartRegressionSeeds...)
	// The fresh runs alternate, a pipeline first: the seed's last bit
	// chooses, so that a replayed seed makes the same kind of run.
	if os.Getenv("BULWARK_CHAOS_SEED") == "" {
		for i := len(restartRegressionSeeds); i < len(seeds); i++ {
			v, _ := parseSeed(seeds[i])
			seeds[i] = fmt.Sprintf("%016x", v&^1|uint64((i-len(restartRegressionSeeds))%2))
		}
	}
	e := newRestartEnv(t)
	kills := map[string]int{}
	var total time.Duration
	for i, seed := range seeds {
		begin := time.Now()
		what, err := e.run(seed, kills)
		took := time.Since(begin)
		total += took
		if err != nil {
			part.failed(t, seed, fmt.Errorf("%s: %w", what, err))
			t.Logf("run %d/%d seed %s FAILED after %s: %s", i+1, len(seeds), seed, took.Round(100*time.Millisecond), what)
			e.close()
			e = newRestartEnv(t) // what a failed run left must not fail the next
			continue
		}
		part.survived()
		t.Logf("run %d/%d seed %s survived in %s: %s", i+1, len(seeds), seed, took.Round(100*time.Millisecond), what)
	}
	part.note("pipeline runs %d, disaster recoveries %d; server killed with SIGKILL %d, SIGTERM %d times",
		kills["pipeline"], kills["dr"], kills["SIGKILL"], kills["SIGTERM"])
	if len(seeds) > 0 {
		part.note("%s per run", (total / time.Duration(len(seeds))).Round(100*time.Millisecond))
	}
}

type restartEnv struct {
	t       *testing.T
	c       *cluster
	w       *proc
	live    string
	buckets map[string]*blob.Bucket
	keeper  *keeper.Keeper
	// last is the newest backup a pipeline made: the restore point of the
	// next recovery.
	last *workflows.BackupResult
	// estPipeline is how long a pipeline run takes without a restart;
	// estAssess and estRestore how long the last recovery took to reach
	// the approval, and from the approval to the resumption.
	estPipeline, estAssess, estRestore time.Duration
}

func newRestartEnv(t *testing.T) *restartEnv {
	t.Helper()
	c := newCluster(t, "")
	cfg := fmt.Sprintf(`keeper: keyfile://%[1]s/keys/bulwark.key
host: %[2]s
limits:
  upload: 4MiB
  download: 8MiB
destinations:
  - name: local
    url: %[1]s/backups
    role: primary
    retention: {keep_last: 2}
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
	e := &restartEnv{t: t, c: c, live: newFinance(t, c.dir, 16<<20), buckets: map[string]*blob.Bucket{},
		estAssess: 500 * time.Millisecond, estRestore: time.Second}
	e.w = c.startWorker()
	for name, dir := range map[string]string{"local": "backups", "nas": "nas"} {
		b, err := fileblob.OpenBucket(filepath.Join(c.dir, dir), &fileblob.Options{CreateDir: true, NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		e.buckets[name] = b
	}
	begin := time.Now()
	if _, err := e.pipeline(context.Background(), "warm-up", "full", nil); err != nil {
		t.Fatalf("warm-up pipeline: %v", err)
	}
	e.estPipeline = time.Since(begin)
	kp, err := keeper.Open(context.Background(), fmt.Sprintf("keyfile://%s/keys/bulwark.key", c.dir), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kp.Close() })
	e.keeper = kp
	t.Logf("warm-up: a pipeline run takes %s", e.estPipeline.Round(time.Millisecond))
	return e
}

func (e *restartEnv) close() {
	e.w.stop()
	e.c.server.stop()
}

// restart kills the server with sig, leaves it down for a while, and starts
// it again.
func (e *restartEnv) restart(r *rand.Rand, kills map[string]int) string {
	sig := syscall.SIGKILL
	if r.IntN(10) < 3 {
		sig = syscall.SIGTERM
	}
	down := time.Duration(r.IntN(2000)) * time.Millisecond
	name := map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGTERM: "SIGTERM"}[sig]
	kills[name]++
	e.c.killServer(sig, down)
	return fmt.Sprintf("server %s, down %s", name, down)
}

// run makes one run: a pipeline for an even seed, a recovery for an odd one.
func (e *restartEnv) run(seed string, kills map[string]int) (string, error) {
	r := seedRand(seed)
	v, _ := parseSeed(seed)
	ctx := context.Background()
	if v%2 == 0 || e.last == nil {
		kills["pipeline"]++
		typ := []string{"full", "incremental"}[r.IntN(2)]
		frac := 0.05 + 0.9*r.Float64()
		var how string
		b, err := e.pipeline(ctx, seed, typ, func(id string) {
			time.Sleep(time.Duration(frac * float64(e.estPipeline)))
			where := pendingWork(e.c, id)
			how = fmt.Sprintf("%s %.0f%% into the run (in %s)", e.restart(r, kills), frac*100, where)
		})
		desc := fmt.Sprintf("%s pipeline, %s", typ, how)
		if err != nil {
			return desc, err
		}
		desc += fmt.Sprintf(": %s backup %s", b.Type, b.BackupID)
		if v%2 == 0 {
			return desc, nil
		}
		// A recovery needs a backup: this one was the setup.
		kills["pipeline"]--
	}
	kills["dr"]++
	return e.recover(ctx, seed, r, kills)
}

// pipeline runs a pipeline; during, when set, runs while it does.
func (e *restartEnv) pipeline(ctx context.Context, seed, typ string, during func(id string)) (workflows.BackupResult, error) {
	id := "chaos-pipeline/" + seed
	run, err := e.c.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: activities.WorkflowQueue},
		workflows.PipelineWorkflow, workflows.PipelineRequest{Database: "finance", Host: chaosHost, Type: typ, Schedule: "chaos", Verify: true, Cleanup: true, RPO: time.Hour})
	if err != nil {
		return workflows.BackupResult{}, err
	}
	if during != nil {
		during(id)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var res workflows.PipelineResult
	if err := run.Get(wctx, &res); err != nil {
		return workflows.BackupResult{}, err
	}
	var names []string
	for _, s := range res.Steps {
		if !s.OK {
			return workflows.BackupResult{}, fmt.Errorf("step %s failed: %s", s.Name, s.Detail)
		}
		names = append(names, s.Name)
	}
	b := res.Backup
	switch {
	case strings.Join(names, ",") != "backup,cleanup,rpo":
		return workflows.BackupResult{}, fmt.Errorf("steps %v", names)
	case b == nil || b.Verify == nil || !b.Verify.OK:
		return workflows.BackupResult{}, fmt.Errorf("the backup is not verified: %+v", b)
	case b.Replication == nil || len(b.Replication.Copies) != 1:
		return *b, fmt.Errorf("the backup was not copied: %+v", b.Replication)
	case res.Breached || res.Newest != b.BackupID:
		return *b, fmt.Errorf("RPO check: newest verified %s (breached %v), the run's backup %s", res.Newest, res.Breached, b.BackupID)
	}
	if during != nil {
		for name, bucket := range e.buckets {
			if err := restoresFrom(ctx, e.t, bucket, e.keeper, b.BackupID, b.ImageHash); err != nil {
				return *b, fmt.Errorf("%s: %w", name, err)
			}
		}
		if err := replayErr(e.c, id, "pipeline-server-restart"); err != nil {
			return *b, err
		}
	}
	e.last = b
	return *b, nil
}

// recover runs a disaster recovery with the CLI and restarts the server in
// one of its phases.
func (e *restartEnv) recover(ctx context.Context, seed string, r *rand.Rand, kills map[string]int) (string, error) {
	incident := "chaos-" + seed
	id := workflows.DRWorkflowID(incident)
	backup := *e.last
	scenario := []string{workflows.ScenarioCorruption, workflows.ScenarioHardwareFailure}[r.IntN(2)]
	phase := []string{"assessing", "awaiting approval", "restoring", "awaiting resumption"}[r.IntN(4)]
	frac := r.Float64()
	args := []string{"dr", "start", incident, "--scenario", scenario}
	target := e.live
	switch scenario {
	case workflows.ScenarioCorruption:
		f, err := os.OpenFile(e.live, os.O_RDWR, 0)
		if err != nil {
			return scenario, err
		}
		info, _ := f.Stat()
		f.WriteAt([]byte(strings.Repeat("\xde\xad\xbe\xef", 2048)), info.Size()/2/4096*4096)
		f.Close()
	case workflows.ScenarioHardwareFailure:
		os.Remove(e.live)
		target = filepath.Join(e.c.dir, "new-disk-"+seed, "finance.db")
		args = append(args, "--target", "finance="+target)
	}
	desc := fmt.Sprintf("%s recovery, server restarted while %s", scenario, phase)
	cli := func(args ...string) error {
		out, errOut, code := e.c.cli(args...)
		if code != 0 {
			return fmt.Errorf("bulwark %s: exit %d: %s %s", strings.Join(args, " "), code, out, errOut)
		}
		return nil
	}
	waitStep := func(step string) error {
		deadline := time.Now().Add(5 * time.Minute)
		for time.Now().Before(deadline) {
			if rep, ok := drStatus(e.c, id); ok && rep.Step == step && rep.WaitingFor != "" {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return fmt.Errorf("the recovery did not reach %q", step)
	}
	begin := time.Now()
	if err := cli(args...); err != nil {
		return desc, err
	}
	if phase == "assessing" {
		time.Sleep(time.Duration(frac * float64(e.estAssess)))
		desc += fmt.Sprintf(" (%s after the start, %s)", time.Since(begin).Round(time.Millisecond), e.restart(r, kills))
	}
	if err := waitStep(workflows.DRStepApproval); err != nil {
		return desc, err
	}
	if phase != "assessing" {
		e.estAssess = time.Since(begin)
	}
	if phase == "awaiting approval" {
		desc += " (" + e.restart(r, kills) + ")"
	}
	if err := cli("dr", "approve", incident); err != nil {
		return desc, err
	}
	approved := time.Now()
	if phase == "restoring" {
		time.Sleep(time.Duration(frac * float64(e.estRestore)))
		desc += fmt.Sprintf(" (%s after the approval, %s)", time.Since(approved).Round(time.Millisecond), e.restart(r, kills))
	}
	if err := waitStep(workflows.DRStepResume); err != nil {
		return desc, err
	}
	if phase != "restoring" {
		e.estRestore = time.Since(approved)
	}
	if phase == "awaiting resumption" {
		desc += " (" + e.restart(r, kills) + ")"
	}
	if err := cli("dr", "resume", incident); err != nil {
		return desc, err
	}
	resumed := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var rep workflows.DRReport
	if err := e.c.client.GetWorkflow(wctx, id, "").Get(wctx, &rep); err != nil {
		return desc, err
	}
	if rep.Outcome != workflows.DROutcomeRecovered || len(rep.Databases) != 1 {
		return desc, fmt.Errorf("outcome %q: %s", rep.Outcome, strings.Join(rep.Notes, "; "))
	}
	d := rep.Databases[0]
	desc += fmt.Sprintf(": restored %s, RTO reached %s (wall clock %s), report %s after the resumption",
		d.BackupID, time.Duration(rep.RTOReached).Round(time.Millisecond), resumed.Sub(begin).Round(time.Millisecond), time.Since(resumed).Round(time.Millisecond))
	h, _, err := repository.ImageHashFile(target)
	switch {
	case err != nil:
		return desc, err
	case d.BackupID != backup.BackupID || h != backup.ImageHash || d.After == nil || d.After.Verdict != "healthy":
		return desc, fmt.Errorf("restored %s (image %s), the newest verified backup is %s (image %s); after: %+v", d.BackupID, h, backup.BackupID, backup.ImageHash, d.After)
	case scenario == workflows.ScenarioCorruption && (d.EmergencyCopy == "" || !exists(d.EmergencyCopy)):
		return desc, fmt.Errorf("the damaged file was not kept: %q", d.EmergencyCopy)
	}
	// The RTO is tracked and measured from the run itself, from the moment
	// the disaster was declared: when the runbook started, however late a
	// worker first ran it.
	started, err := startTime(e.c, id)
	if err != nil {
		return desc, err
	}
	rto := time.Duration(rep.RTOReached)
	switch {
	case !rep.DeclaredAt.Equal(started):
		return desc, fmt.Errorf("declared at %s, but the runbook was started at %s: the RTO clock started %s late",
			rep.DeclaredAt.Format(time.RFC3339Nano), started.Format(time.RFC3339Nano), rep.DeclaredAt.Sub(started))
	case rto <= 0 || rto != rep.ResumedAt.Sub(rep.DeclaredAt) || !rep.RTOMet || rep.RTODeadline.IsZero() || time.Duration(rep.RTOObjective) <= 0:
		return desc, fmt.Errorf("RTO: reached %s, resumed %s after declaring, met %v, deadline %s, objective %s",
			rto, rep.ResumedAt.Sub(rep.DeclaredAt), rep.RTOMet, rep.RTODeadline, time.Duration(rep.RTOObjective))
	case time.Duration(d.DataLoss) != rep.DeclaredAt.Sub(d.SnapshotAt) || !rep.RPOMet:
		return desc, fmt.Errorf("RPO: data lost %s, declared %s after the snapshot", time.Duration(d.DataLoss), rep.DeclaredAt.Sub(d.SnapshotAt))
	case len(rep.Timeline) != 10 || rep.ApprovedBy == "" || rep.ResumedBy == "":
		return desc, fmt.Errorf("timeline of %d steps, approved by %q, resumed by %q", len(rep.Timeline), rep.ApprovedBy, rep.ResumedBy)
	}
	if err := replayErr(e.c, id, "dr-server-restart"); err != nil {
		return desc, err
	}
	if target != e.live {
		// The new disk becomes the database's home, as the operator would
		// make it, so that the next pipeline backs it up.
		if err := os.Rename(target, e.live); err != nil {
			return desc, err
		}
	}
	return desc, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// restoresFrom rebuilds a backup from one bucket and compares the file's
// image hash with want.
func restoresFrom(ctx context.Context, t *testing.T, b *blob.Bucket, kp *keeper.Keeper, id, want string) error {
	chain, err := repository.Chain(ctx, b, kp, "finance", id)
	if err != nil {
		return fmt.Errorf("chain of %s: %w", id, err)
	}
	f, err := os.CreateTemp(t.TempDir(), "restore-*.db")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := repository.RestoreImage(ctx, b, chain, f, repository.RestoreOptions{Workers: 2}); err != nil {
		return fmt.Errorf("restore %s: %w", id, err)
	}
	got, _, err := repository.ImageHashFile(f.Name())
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("backup %s restores to image %s, want %s", id, got, want)
	}
	return nil
}

// startTime is when a workflow was started.
func startTime(c *cluster, id string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := c.client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return time.Time{}, err
	}
	return d.GetWorkflowExecutionInfo().GetStartTime().AsTime(), nil
}

// replayErr replays a finished workflow's history against the workflow
// code, as replayHistory does, returning the error; with
// BULWARK_RECORD_HISTORIES=<dir> the history is saved there as <name>.json.
func replayErr(c *cluster, wfID, name string) error {
	ctx := context.Background()
	it := c.client.GetWorkflowHistory(ctx, wfID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return err
		}
		h.Events = append(h.Events, ev)
	}
	r := worker.NewWorkflowReplayer()
	for _, wf := range workflows.All() {
		r.RegisterWorkflow(wf)
	}
	if err := r.ReplayWorkflowHistory(nil, h); err != nil {
		return fmt.Errorf("replay %s: %w", wfID, err)
	}
	if dir := os.Getenv("BULWARK_RECORD_HISTORIES"); dir != "" {
		b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644)
	}
	return nil
}

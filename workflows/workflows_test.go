package workflows

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/notify"
	"github.com/bulwark-dr/bulwark/repository"
)

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(BackupWorkflow)
	env.RegisterWorkflow(VerifyWorkflow)
	env.RegisterWorkflow(RestoreWorkflow)
	env.RegisterWorkflow(ListBackupsWorkflow)
	env.RegisterWorkflow(ReplicateWorkflow)
	env.RegisterWorkflow(CleanupWorkflow)
	env.RegisterWorkflow(PipelineWorkflow)
	env.RegisterActivity(&activities.SQLiteActivities{})
	env.RegisterActivity(&activities.StorageActivities{})
	return env
}

func snapshotOK(_ context.Context, in activities.SnapshotInput) (activities.SnapshotOutput, error) {
	return activities.SnapshotOutput{BackupID: in.BackupID, ImageBytes: 4096, StoredBytes: 1000, Chunks: 1}, nil
}

func TestBackupRetriesTransientFailuresThenVerifies(t *testing.T) {
	env := newEnv(t)
	calls := 0
	var ids []string
	env.OnActivity("SnapshotSQLite", mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.SnapshotInput) (activities.SnapshotOutput, error) {
			calls++
			ids = append(ids, in.BackupID)
			if calls < 3 {
				return activities.SnapshotOutput{}, errors.New("upload chunk 3: connection reset")
			}
			return snapshotOK(ctx, in)
		})
	env.OnActivity("VerifyBackup", mock.Anything, mock.Anything).Return(activities.VerifyOutput{OK: true}, nil)
	env.OnActivity("ListDestinations", mock.Anything).Return([]activities.DestinationInfo{{Name: "local", Role: "primary"}}, nil)
	env.ExecuteWorkflow(BackupWorkflow, BackupRequest{Database: "finance", Host: "laptop", Verify: true})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackupResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Fatalf("snapshot attempts %d, want 3", calls)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("retries used different backup ids %v: a retry must rewrite the same objects", ids)
	}
	if repository.ValidateBackupID(res.BackupID) != nil || res.Verify == nil || !res.Verify.OK {
		t.Fatalf("result %+v", res)
	}
}

func TestBackupStopsOnNonRetryableError(t *testing.T) {
	env := newEnv(t)
	calls := 0
	env.OnActivity("SnapshotSQLite", mock.Anything, mock.Anything).Return(
		func(context.Context, activities.SnapshotInput) (activities.SnapshotOutput, error) {
			calls++
			return activities.SnapshotOutput{}, temporal.NewNonRetryableApplicationError("not an SQLite database: /data/notes.txt", activities.ErrTypeNotSQLite, nil)
		})
	env.ExecuteWorkflow(BackupWorkflow, BackupRequest{Database: "finance", Host: "laptop"})
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != activities.ErrTypeNotSQLite {
		t.Fatalf("got %v, want a %s application error", err, activities.ErrTypeNotSQLite)
	}
	if calls != 1 {
		t.Fatalf("non-retryable error attempted %d times", calls)
	}
}

func TestBackupRejectsBadRequests(t *testing.T) {
	for _, req := range []BackupRequest{
		{Database: "Finance DB", Host: "h"},
		{Database: "finance"},
		{Database: "finance", Host: "h", Type: "weekly"},
	} {
		env := newEnv(t)
		env.ExecuteWorkflow(BackupWorkflow, req)
		var app *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != activities.ErrTypeBadInput {
			t.Errorf("%+v: got %v", req, err)
		}
	}
}

func TestBackupFailsWhenVerificationFails(t *testing.T) {
	env := newEnv(t)
	env.OnActivity("SnapshotSQLite", mock.Anything, mock.Anything).Return(snapshotOK)
	env.OnActivity("VerifyBackup", mock.Anything, mock.Anything).Return(activities.VerifyOutput{OK: false, Problems: []string{"integrity_check: page 7 is never used"}}, nil)
	env.ExecuteWorkflow(BackupWorkflow, BackupRequest{Database: "finance", Host: "laptop", Verify: true})
	var app *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != activities.ErrTypeCheckFailed || !strings.Contains(app.Error(), "page 7") {
		t.Fatalf("got %v", env.GetWorkflowError())
	}
}

const backupID = "20261125T020000Z-0123abcd"

// restoreMocks mocks the activities of a restore to an existing file and
// counts swaps and discards.
func restoreMocks(env *testsuite.TestWorkflowEnvironment, exists bool) (swaps, discards *int) {
	swaps, discards = new(int), new(int)
	env.OnActivity("ResolveBackup", mock.Anything, mock.Anything).Return(activities.ResolveOutput{BackupID: backupID}, nil)
	env.OnActivity("InspectRestoreTarget", mock.Anything, mock.Anything).Return(activities.TargetOutput{Target: "/data/finance.db", Exists: exists}, nil)
	env.OnActivity("RestoreSQLite", mock.Anything, mock.Anything).Return(activities.RestoreOutput{TempPath: "/data/finance.db.bulwark-restore-" + backupID, ImageBytes: 4096}, nil)
	env.OnActivity("SwapInRestore", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SwapInput) (activities.SwapOutput, error) {
			*swaps++
			if !strings.HasPrefix(in.EmergencyPath, "/data/finance.db.emergency-") {
				return activities.SwapOutput{}, errors.New("bad emergency path " + in.EmergencyPath)
			}
			return activities.SwapOutput{EmergencyCopy: in.EmergencyPath}, nil
		})
	env.OnActivity("DiscardRestore", mock.Anything, mock.Anything).Return(
		func(context.Context, activities.DiscardInput) error { *discards++; return nil })
	return swaps, discards
}

func queryStatus(t *testing.T, env *testsuite.TestWorkflowEnvironment) RestoreStatus {
	t.Helper()
	v, err := env.QueryWorkflow(QueryStatus)
	if err != nil {
		t.Fatal(err)
	}
	var st RestoreStatus
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRestoreWaitsForApprovalBeforeReplacing(t *testing.T) {
	env := newEnv(t)
	swaps, discards := restoreMocks(env, true)
	var waiting RestoreStatus
	env.RegisterDelayedCallback(func() {
		waiting = queryStatus(t, env)
		if *swaps != 0 {
			t.Error("swapped before approval")
		}
		env.SignalWorkflow(SignalApprove, ApproveSignal{By: "alice@ops"})
	}, time.Hour)
	env.ExecuteWorkflow(RestoreWorkflow, RestoreRequest{Database: "finance", Host: "laptop", Backup: "latest"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if waiting.Phase != PhaseAwaitApproval || !strings.Contains(waiting.WaitingFor, "/data/finance.db") || waiting.StagedFile == "" {
		t.Fatalf("status while waiting: %+v", waiting)
	}
	var res RestoreResult
	env.GetWorkflowResult(&res)
	if *swaps != 1 || *discards != 0 || res.ApprovedBy != "alice@ops" || res.EmergencyCopy == "" {
		t.Fatalf("swaps %d discards %d result %+v", *swaps, *discards, res)
	}
	if st := queryStatus(t, env); st.Phase != PhaseDone {
		t.Fatalf("final phase %q", st.Phase)
	}
}

func TestRestoreToNewFileNeedsNoApproval(t *testing.T) {
	env := newEnv(t)
	swaps, _ := restoreMocks(env, false)
	env.ExecuteWorkflow(RestoreWorkflow, RestoreRequest{Database: "finance", Host: "laptop", Backup: backupID, Target: "/data/new.db"})
	if err := env.GetWorkflowError(); err != nil || *swaps != 1 {
		t.Fatalf("err %v swaps %d", err, *swaps)
	}
}

func TestRestoreRejectedOrTimedOutLeavesTargetAlone(t *testing.T) {
	for _, c := range []struct {
		name   string
		signal bool
	}{{"rejected", true}, {"timed out", false}} {
		env := newEnv(t)
		swaps, discards := restoreMocks(env, true)
		if c.signal {
			env.RegisterDelayedCallback(func() {
				env.SignalWorkflow(SignalReject, ApproveSignal{By: "bob", Reason: "wrong backup"})
			}, time.Minute)
		}
		env.ExecuteWorkflow(RestoreWorkflow, RestoreRequest{Database: "finance", Host: "laptop", Backup: "latest", ApprovalTimeout: time.Hour})
		var app *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != ErrTypeRejected {
			t.Fatalf("%s: got %v", c.name, err)
		}
		if *swaps != 0 || *discards != 1 {
			t.Fatalf("%s: swaps %d discards %d", c.name, *swaps, *discards)
		}
	}
}

func TestRestoreCancelledWhileAwaitingApprovalDiscardsStagedFile(t *testing.T) {
	env := newEnv(t)
	swaps, discards := restoreMocks(env, true)
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
	env.ExecuteWorkflow(RestoreWorkflow, RestoreRequest{Database: "finance", Host: "laptop", Backup: "latest"})
	if err := env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("got %v, want cancellation", err)
	}
	if *swaps != 0 || *discards != 1 {
		t.Fatalf("swaps %d discards %d", *swaps, *discards)
	}
}

func TestRestoreCancelledWhileStagingDiscardsPartialFile(t *testing.T) {
	env := newEnv(t)
	discards := 0
	env.OnActivity("ResolveBackup", mock.Anything, mock.Anything).Return(activities.ResolveOutput{BackupID: backupID}, nil)
	env.OnActivity("InspectRestoreTarget", mock.Anything, mock.Anything).Return(activities.TargetOutput{Target: "/data/new.db"}, nil)
	env.OnActivity("RestoreSQLite", mock.Anything, mock.Anything).After(time.Hour).Return(activities.RestoreOutput{}, nil)
	env.OnActivity("DiscardRestore", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DiscardInput) error {
			if in.Target != "/data/new.db" || in.BackupID != backupID {
				return errors.New("discard of the wrong file")
			}
			discards++
			return nil
		})
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
	env.ExecuteWorkflow(RestoreWorkflow, RestoreRequest{Database: "finance", Host: "laptop", Backup: "latest"})
	if err := env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("got %v, want cancellation", err)
	}
	if discards != 1 {
		t.Fatalf("discards %d, want 1", discards)
	}
}

func TestRestoreApprovedUpFrontDoesNotWait(t *testing.T) {
	env := newEnv(t)
	swaps, _ := restoreMocks(env, true)
	env.ExecuteWorkflow(RestoreWorkflow, RestoreRequest{Database: "finance", Host: "laptop", Backup: "latest", Approved: true})
	if err := env.GetWorkflowError(); err != nil || *swaps != 1 {
		t.Fatalf("err %v swaps %d", err, *swaps)
	}
}

// A verified backup is copied to every other destination at once; a
// destination that fails is named in the result, the others still get
// their copy, and the backup itself stands.
func TestBackupReplicatesToEveryOtherDestination(t *testing.T) {
	env := newEnv(t)
	env.OnActivity("SnapshotSQLite", mock.Anything, mock.Anything).Return(snapshotOK)
	env.OnActivity("VerifyBackup", mock.Anything, mock.Anything).Return(activities.VerifyOutput{OK: true}, nil)
	env.OnActivity("ListDestinations", mock.Anything).Return([]activities.DestinationInfo{
		{Name: "local", Role: "primary"}, {Name: "nas", Role: "secondary"}, {Name: "cloud", Role: "tertiary"},
	}, nil)
	var mu sync.Mutex
	var asked []string
	env.OnActivity("ReplicateBackup", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReplicateInput) (activities.ReplicateOutput, error) {
			mu.Lock()
			asked = append(asked, in.To)
			mu.Unlock()
			if in.To == "cloud" {
				return activities.ReplicateOutput{}, temporal.NewNonRetryableApplicationError("bucket finance-backups does not exist", activities.ErrTypeNotFound, nil)
			}
			return activities.ReplicateOutput{Destination: in.To, Objects: 4, Copied: 4}, nil
		})
	env.ExecuteWorkflow(BackupWorkflow, BackupRequest{Database: "finance", Host: "laptop", Verify: true})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackupResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	sort.Strings(asked)
	if strings.Join(asked, ",") != "cloud,nas" {
		t.Fatalf("replicated to %v, want nas and cloud, never the primary", asked)
	}
	r := res.Replication
	if r == nil || len(r.Copies) != 1 || r.Copies[0].Destination != "nas" || !strings.Contains(r.Failed["cloud"], "does not exist") {
		t.Fatalf("replication %+v", r)
	}
}

func TestReplicateRefusesUnknownDestinationsAndThePrimary(t *testing.T) {
	for _, to := range []string{"tape", "local"} {
		env := newEnv(t)
		env.OnActivity("ListDestinations", mock.Anything).Return([]activities.DestinationInfo{{Name: "local", Role: "primary"}, {Name: "nas", Role: "secondary"}}, nil)
		env.ExecuteWorkflow(ReplicateWorkflow, ReplicateRequest{Database: "finance", BackupID: "20261126T010203.000Z-0badcafe", To: []string{to}})
		var app *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != activities.ErrTypeBadInput || !strings.Contains(err.Error(), to) {
			t.Errorf("to %s: got %v, want bad input naming it", to, err)
		}
	}
}

// A dry run and a real run of cleanup act on the same plan: the real run
// forgets exactly the backups the dry run lists as going, newest first, and
// stops on a destination at the first failure.
func TestCleanupDryRunAndRealRunAgree(t *testing.T) {
	plan := activities.CleanupPlan{Destination: "local", Decisions: []activities.CleanupDecision{
		{BackupID: "20261105T020000.000Z-0000000d", Keep: true, Reasons: []string{"last 1"}},
		{BackupID: "20261104T020000.000Z-0000000c", Keep: true, Reasons: []string{"parent of 20261105T020000.000Z-0000000d"}},
		{BackupID: "20261103T020000.000Z-0000000b", Keep: false, Reasons: []string{"no rule keeps it"}},
		{BackupID: "20261102T020000.000Z-0000000a", Keep: false, Reasons: []string{"no rule keeps it"}},
	}}
	run := func(dryRun bool) (CleanupResult, []string) {
		env := newEnv(t)
		env.OnActivity("ListDestinations", mock.Anything).Return([]activities.DestinationInfo{{Name: "local", Role: "primary"}}, nil)
		env.OnActivity("PlanCleanup", mock.Anything, mock.Anything).Return(plan, nil)
		var forgotten []string
		env.OnActivity("ForgetBackup", mock.Anything, mock.Anything).Return(
			func(_ context.Context, in activities.ForgetInput) (activities.ForgetOutput, error) {
				forgotten = append(forgotten, in.BackupID)
				return activities.ForgetOutput{BackupID: in.BackupID, Objects: 3}, nil
			})
		env.OnActivity("SweepOrphans", mock.Anything, mock.Anything).Return(activities.SweepOutput{Destination: "local"}, nil)
		env.ExecuteWorkflow(CleanupWorkflow, CleanupRequest{Database: "finance", DryRun: dryRun})
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		var res CleanupResult
		env.GetWorkflowResult(&res)
		return res, forgotten
	}
	dry, none := run(true)
	if len(none) != 0 || len(dry.Plans) != 1 {
		t.Fatalf("dry run forgot %v", none)
	}
	var going []string
	for _, d := range dry.Plans[0].Decisions {
		if !d.Keep {
			going = append(going, d.BackupID)
		}
	}
	_, forgotten := run(false)
	if strings.Join(forgotten, ",") != strings.Join(going, ",") {
		t.Fatalf("real run forgot %v, dry run said %v", forgotten, going)
	}
}

func TestPipelineBacksUpCleansAndChecksRPO(t *testing.T) {
	env := newEnv(t)
	start := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	env.OnActivity("SnapshotSQLite", mock.Anything, mock.Anything).Return(snapshotOK)
	env.OnActivity("VerifyBackup", mock.Anything, mock.Anything).Return(activities.VerifyOutput{OK: true}, nil)
	env.OnActivity("ListDestinations", mock.Anything).Return([]activities.DestinationInfo{{Name: "local", Role: "primary"}}, nil)
	env.OnActivity("PlanCleanup", mock.Anything, mock.Anything).Return(activities.CleanupPlan{Destination: "local"}, nil)
	env.OnActivity("SweepOrphans", mock.Anything, mock.Anything).Return(activities.SweepOutput{Destination: "local"}, nil)
	env.OnActivity("NewestVerified", mock.Anything, mock.Anything).Return(activities.NewestVerifiedOutput{BackupID: "20261126T020000.000Z-0000abcd", SnapshotAt: start}, nil)
	env.ExecuteWorkflow(PipelineWorkflow, PipelineRequest{Database: "finance", Host: "laptop", Type: "full", Verify: true, Cleanup: true, RPO: 24 * time.Hour})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res PipelineResult
	env.GetWorkflowResult(&res)
	var names []string
	for _, s := range res.Steps {
		if !s.OK {
			t.Fatalf("step %+v failed", s)
		}
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "backup,cleanup,rpo" || res.Breached || res.Backup == nil || res.Cleanup == nil {
		t.Fatalf("result %+v", res)
	}
}

// A failed backup skips retention (never thin out copies while the newest
// is missing), still checks the RPO, and fails the run naming both.
func TestPipelineFailedBackupBreachesRPO(t *testing.T) {
	env := newEnv(t)
	start := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	env.OnActivity("SnapshotSQLite", mock.Anything, mock.Anything).Return(activities.SnapshotOutput{},
		temporal.NewNonRetryableApplicationError("no database at /data/finance.db", activities.ErrTypeNoDatabase, nil))
	env.OnActivity("NewestVerified", mock.Anything, mock.Anything).Return(activities.NewestVerifiedOutput{BackupID: "20261124T020000.000Z-0000abcd", SnapshotAt: start.Add(-48 * time.Hour)}, nil)
	var events []notify.Event
	env.OnActivity("Notify", mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.NotifyInput) (activities.NotifyOutput, error) {
		events = append(events, in.Event)
		return activities.NotifyOutput{Channels: []string{"ops"}}, nil
	})
	env.ExecuteWorkflow(PipelineWorkflow, PipelineRequest{Database: "finance", Host: "laptop", Type: "full", Verify: true, Cleanup: true, RPO: 24 * time.Hour})
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != "PipelineFailed" {
		t.Fatalf("got %v, want a failed pipeline", err)
	}
	var res PipelineResult
	if !app.HasDetails() || app.Details(&res) != nil {
		t.Fatal("no result in the failure")
	}
	if len(res.Steps) != 2 || res.Steps[0].Name != "backup" || res.Steps[1].Name != "rpo" || !res.Breached || res.RPOAge != 48*time.Hour {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(strings.Join(res.Failures, "\n"), "RPO breached") {
		t.Fatalf("failures %v", res.Failures)
	}
	// The operators hear of both, each once, with an id a retry repeats.
	if len(events) != 2 || events[0].Kind != notify.KindFailure || events[1].Kind != notify.KindRPOBreach ||
		!strings.Contains(events[0].Text, "no database") || !strings.Contains(events[1].Text, "48h0m0s old") ||
		events[0].ID == events[1].ID || events[0].Validate() != nil || events[1].Validate() != nil {
		t.Fatalf("events %+v", events)
	}
}

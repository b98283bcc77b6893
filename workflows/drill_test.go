package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/notify"
	"github.com/bulwark-dr/bulwark/repository"
)

const drillBackupID = "20261125T020000.000Z-00c0ffee"

// drillStart is when every test's drill starts.
var drillStart = time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)

// drillFixture mocks the activities of a drill and records the calls in
// order. The knobs make one step fail.
type drillFixture struct {
	env *testsuite.TestWorkflowEnvironment
	// out is what RestoreDrill returns; restoreErr, when set, is returned
	// instead.
	out        activities.RestoreDrillOutput
	restoreErr error
	resolveErr error
	// recordFailures fail that many RecordDrill attempts (transient);
	// recordErr fails every attempt.
	recordFailures int
	recordErr      error
	notifyErr      error

	mu        sync.Mutex
	calls     []string
	restoreQ  string
	restoreIn activities.RestoreDrillInput
	records   []repository.DrillRecord // every RecordDrill attempt
	events    []notify.Event
}

func passedDrill() activities.RestoreDrillOutput {
	return activities.RestoreDrillOutput{
		BackupID: drillBackupID, ScratchPath: "/var/lib/bulwark/scratch/drills/finance-" + drillBackupID + ".db", ScratchRemoved: true,
		Restored: true, SnapshotAt: drillStart.Add(-26 * time.Hour), ImageBytes: 1 << 20, ImageHash: "xxh3-pages-sha256:abc",
		Integrity: "ok", ForeignKeys: "ok", Tables: 3, Rows: 1200, ChecksOK: true, OK: true,
		Queries:         []activities.DrillQueryResult{{SQL: "SELECT count(*) FROM users", OK: true, Columns: []string{"count(*)"}, Row: []string{"1000"}, Seconds: 0.01}},
		RestoreDuration: activities.Duration(90 * time.Second), CheckDuration: activities.Duration(4 * time.Second),
		QueryDuration: activities.Duration(10 * time.Millisecond), Duration: activities.Duration(95 * time.Second),
	}
}

func newDrillFixture(t *testing.T) *drillFixture {
	t.Helper()
	env := newEnv(t)
	env.RegisterWorkflow(DrillWorkflow)
	env.RegisterWorkflow(ListDrillsWorkflow)
	env.SetStartTime(drillStart)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: DrillWorkflowID("finance")})
	f := &drillFixture{env: env, out: passedDrill()}
	call := func(name string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, name)
	}
	env.OnActivity("ResolveBackup", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ResolveInput) (activities.ResolveOutput, error) {
			call("ResolveBackup")
			if f.resolveErr != nil {
				return activities.ResolveOutput{}, f.resolveErr
			}
			return activities.ResolveOutput{BackupID: drillBackupID}, nil
		})
	env.OnActivity("RestoreDrill", mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.RestoreDrillInput) (activities.RestoreDrillOutput, error) {
			call("RestoreDrill")
			f.mu.Lock()
			f.restoreQ, f.restoreIn = activity.GetInfo(ctx).TaskQueue, in
			f.mu.Unlock()
			if f.restoreErr != nil {
				return activities.RestoreDrillOutput{}, f.restoreErr
			}
			return f.out, nil
		})
	env.OnActivity("RecordDrill", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordDrillInput) (activities.RecordDrillOutput, error) {
			call("RecordDrill")
			f.mu.Lock()
			defer f.mu.Unlock()
			f.records = append(f.records, in.Record)
			if f.recordErr != nil {
				return activities.RecordDrillOutput{}, f.recordErr
			}
			if len(f.records) <= f.recordFailures {
				return activities.RecordDrillOutput{}, errors.New("connection reset by peer")
			}
			return activities.RecordDrillOutput{Key: repository.DrillRecordKey(in.Record.Database, in.Record.StartedAt)}, nil
		})
	env.OnActivity("Notify", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NotifyInput) (activities.NotifyOutput, error) {
			call("Notify")
			if err := in.Event.Validate(); err != nil {
				return activities.NotifyOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeNotificationRejected, nil)
			}
			if f.notifyErr != nil {
				return activities.NotifyOutput{}, f.notifyErr
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			f.events = append(f.events, in.Event)
			return activities.NotifyOutput{Channels: []string{"ops"}}, nil
		})
	return f
}

// run executes a drill and returns its result, from the workflow's result
// or, for a failed drill, from the error's details.
func (f *drillFixture) run(t *testing.T, req DrillRequest) (DrillResult, *temporal.ApplicationError) {
	t.Helper()
	f.env.ExecuteWorkflow(DrillWorkflow, req)
	if !f.env.IsWorkflowCompleted() {
		t.Fatal("drill did not complete")
	}
	var res DrillResult
	err := f.env.GetWorkflowError()
	if err == nil {
		if err := f.env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		return res, nil
	}
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		t.Fatalf("drill failed without an application error: %v", err)
	}
	if app.Type() == ErrTypeDrillFailed {
		if err := app.Details(&res); err != nil {
			t.Fatal(err)
		}
	}
	return res, app
}

func (f *drillFixture) wantCalls(t *testing.T, want ...string) {
	t.Helper()
	if strings.Join(f.calls, ",") != strings.Join(want, ",") {
		t.Errorf("activities called %v, want %v", f.calls, want)
	}
}

var drillRequest = DrillRequest{
	Database: "finance", Host: "db1", Queries: []string{"SELECT count(*) FROM users"}, Schedule: "monthly-drill",
}

func TestDrillRestoresRecordsAndNotifiesInOrder(t *testing.T) {
	f := newDrillFixture(t)
	f.recordFailures = 1 // the record is retried: it must be the same record, so the same key
	res, app := f.run(t, drillRequest)
	if app != nil {
		t.Fatalf("drill failed: %v", app)
	}
	f.wantCalls(t, "ResolveBackup", "RestoreDrill", "RecordDrill", "RecordDrill", "Notify")
	if f.restoreQ != activities.HostQueue("db1") {
		t.Errorf("RestoreDrill ran on %s, want the database's host queue", f.restoreQ)
	}
	if f.restoreIn.Database != "finance" || f.restoreIn.BackupID != drillBackupID || len(f.restoreIn.Queries) != 1 {
		t.Errorf("RestoreDrill input %+v", f.restoreIn)
	}

	if len(f.records) != 2 || f.records[0].StartedAt != f.records[1].StartedAt || f.records[0].FinishedAt != f.records[1].FinishedAt {
		t.Fatalf("the retried record differs: %+v", f.records)
	}
	wantKey := repository.DrillRecordKey("finance", drillStart)
	rec := res.Record
	if res.RecordKey != wantKey || rec.Key != wantKey || res.RecordError != "" {
		t.Errorf("record key %q (%q), want %q", res.RecordKey, rec.Key, wantKey)
	}
	if !rec.OK || !rec.Restored || !rec.ChecksOK || len(rec.Problems) != 0 || rec.Database != "finance" || rec.Host != "db1" ||
		rec.BackupRef != "latest" || rec.BackupID != drillBackupID || rec.Schedule != "monthly-drill" || !rec.StartedAt.Equal(drillStart) ||
		rec.FinishedAt.Before(rec.StartedAt) || rec.RestoreSeconds != 90 || rec.CheckSeconds != 4 || rec.IntegrityCheck != "ok" ||
		rec.Rows != 1200 || !rec.ScratchRemoved || len(rec.Queries) != 1 || rec.Queries[0].Row[0] != "1000" || !strings.HasPrefix(rec.Workflow, DrillWorkflowID("finance")+"/") {
		t.Errorf("record %+v", rec)
	}

	if !res.Notified || res.NotifyError != "" || res.Severity != notify.SeverityInfo {
		t.Errorf("notified %v (%q), severity %s", res.Notified, res.NotifyError, res.Severity)
	}
	if len(f.events) != 1 {
		t.Fatalf("events %+v", f.events)
	}
	ev := f.events[0]
	if ev.Kind != notify.KindDrillResult || ev.Severity != notify.SeverityInfo || ev.Database != "finance" || !strings.Contains(ev.Title, "passed") ||
		ev.Fields["record"] != wantKey || ev.Fields["restore_time"] != "1m30s" || ev.Fields["schedule"] != "monthly-drill" || ev.Fields["backup"] != drillBackupID ||
		ev.Fields["workflow"] != DrillWorkflowID("finance") || !strings.HasPrefix(ev.ID, DrillWorkflowID("finance")+"/") ||
		!strings.Contains(ev.Text, "application checks: 1 of 1 passed") || !ev.At.Equal(rec.FinishedAt) {
		t.Errorf("event %+v", ev)
	}
}

// A backup named by id needs no resolving.
func TestDrillOfANamedBackup(t *testing.T) {
	f := newDrillFixture(t)
	req := drillRequest
	req.Backup = drillBackupID
	if _, app := f.run(t, req); app != nil {
		t.Fatal(app)
	}
	f.wantCalls(t, "RestoreDrill", "RecordDrill", "Notify")
	if f.restoreIn.BackupID != drillBackupID {
		t.Errorf("restored %s", f.restoreIn.BackupID)
	}
}

// Every failed drill is recorded and notified, then fails the workflow with
// the result in its details; the severity says whether the data would have
// come back.
func TestDrillFailuresAreRecordedAndNotified(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(f *drillFixture)
		severity string
		problem  string
		calls    []string
	}{
		{
			name: "an application query fails",
			setup: func(f *drillFixture) {
				f.out.OK = false
				f.out.Queries[0].OK, f.out.Queries[0].Error, f.out.Queries[0].Row = false, "returned no row", nil
				f.out.Problems = []string{"query 1 (SELECT count(*) FROM users): returned no row"}
			},
			severity: notify.SeverityWarning, problem: "query 1 (SELECT count(*) FROM users): returned no row",
		},
		{
			name: "the restored copy fails integrity_check",
			setup: func(f *drillFixture) {
				f.out.OK, f.out.ChecksOK, f.out.Integrity = false, false, "*** in database main *** Page 7 is never used"
				f.out.Problems = []string{"integrity_check: *** in database main *** Page 7 is never used"}
			},
			severity: notify.SeverityCritical, problem: "integrity_check: ",
		},
		{
			name: "the backup cannot be restored",
			setup: func(f *drillFixture) {
				f.out = activities.RestoreDrillOutput{BackupID: drillBackupID, ScratchRemoved: true,
					Problems: []string{"backup " + drillBackupID + " cannot be restored: authenticate chunk 1: corrupt backup data"}}
			},
			severity: notify.SeverityCritical, problem: "cannot be restored",
		},
		{
			name: "the drill cannot run on the host",
			setup: func(f *drillFixture) {
				f.restoreErr = temporal.NewNonRetryableApplicationError("drill scratch directory /scratch/drills: permission denied", activities.ErrTypeRestoreTarget, nil)
			},
			severity: notify.SeverityCritical, problem: "the drill on host db1 did not complete",
		},
		{
			name: "there is no backup",
			setup: func(f *drillFixture) {
				f.resolveErr = temporal.NewNonRetryableApplicationError("not found: database finance has no complete backups", activities.ErrTypeNotFound, nil)
			},
			severity: notify.SeverityCritical, problem: "could not be resolved",
			calls: []string{"ResolveBackup", "RecordDrill", "Notify"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newDrillFixture(t)
			c.setup(f)
			res, app := f.run(t, drillRequest)
			if app == nil || app.Type() != ErrTypeDrillFailed || !app.NonRetryable() || !strings.Contains(app.Error(), c.problem) {
				t.Fatalf("workflow error %v, want %s naming %q", app, ErrTypeDrillFailed, c.problem)
			}
			calls := c.calls
			if calls == nil {
				calls = []string{"ResolveBackup", "RestoreDrill", "RecordDrill", "Notify"}
			}
			f.wantCalls(t, calls...)
			if len(f.records) != 1 || f.records[0].OK || !strings.Contains(strings.Join(f.records[0].Problems, "\n"), c.problem) {
				t.Fatalf("recorded %+v", f.records)
			}
			if res.Record.OK || res.RecordKey == "" || res.Severity != c.severity || !res.Notified {
				t.Errorf("result %+v", res)
			}
			if len(f.events) != 1 {
				t.Fatalf("events %+v", f.events)
			}
			ev := f.events[0]
			if ev.Kind != notify.KindDrillResult || ev.Severity != c.severity || !strings.Contains(ev.Title, "FAILED") || !strings.Contains(ev.Text, c.problem) {
				t.Errorf("event %+v, want severity %s", ev, c.severity)
			}
		})
	}
}

// A notification that cannot be delivered is noted; the drill still passes.
func TestDrillNotificationFailureDoesNotFailTheDrill(t *testing.T) {
	f := newDrillFixture(t)
	f.notifyErr = temporal.NewNonRetryableApplicationError("notify ops: post https://hooks.example.com: 403 Forbidden", activities.ErrTypeNotificationRejected, nil)
	res, app := f.run(t, drillRequest)
	if app != nil {
		t.Fatalf("a notification failure failed the drill: %v", app)
	}
	if res.Notified || !strings.Contains(res.NotifyError, "403") || !res.Record.OK || res.RecordKey == "" {
		t.Errorf("result %+v", res)
	}
	f.wantCalls(t, "ResolveBackup", "RestoreDrill", "RecordDrill", "Notify")
}

// A drill that passed but could not be documented fails, after telling the
// contacts so.
func TestDrillRecordFailureFailsTheWorkflow(t *testing.T) {
	f := newDrillFixture(t)
	f.recordErr = temporal.NewNonRetryableApplicationError("write databases/finance/drills/x.json: permission denied", "AccessDenied", nil)
	res, app := f.run(t, drillRequest)
	if app == nil || app.Type() != ErrTypeDrillFailed || !strings.Contains(app.Error(), "record could not be written") {
		t.Fatalf("workflow error %v", app)
	}
	if !res.Record.OK || res.RecordKey != "" || res.RecordError == "" || res.Severity != notify.SeverityWarning || !res.Notified {
		t.Errorf("result %+v", res)
	}
	if len(f.events) != 1 || !strings.Contains(f.events[0].Text, "could not be written") || f.events[0].Severity != notify.SeverityWarning {
		t.Errorf("events %+v", f.events)
	}
}

func TestDrillBadRequests(t *testing.T) {
	many := make([]string, activities.MaxDrillQueries+1)
	for i := range many {
		many[i] = "SELECT 1"
	}
	for name, req := range map[string]DrillRequest{
		"bad database name": {Database: "Finance/..", Host: "db1"},
		"no host":           {Database: "finance"},
		"bad backup":        {Database: "finance", Host: "db1", Backup: "yesterday"},
		"too many queries":  {Database: "finance", Host: "db1", Queries: many},
		"empty query":       {Database: "finance", Host: "db1", Queries: []string{""}},
		"negative timeout":  {Database: "finance", Host: "db1", HostTimeout: -time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			f := newDrillFixture(t)
			_, app := f.run(t, req)
			if app == nil || app.Type() != activities.ErrTypeBadInput {
				t.Fatalf("got %v, want %s", app, activities.ErrTypeBadInput)
			}
			f.wantCalls(t)
		})
	}
}

func TestListDrillsWorkflow(t *testing.T) {
	env := newEnv(t)
	env.RegisterWorkflow(ListDrillsWorkflow)
	env.OnActivity("ListDrills", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ListDrillsInput) (activities.ListDrillsOutput, error) {
			if in.Database != "finance" || in.Limit != 2 {
				return activities.ListDrillsOutput{}, temporal.NewNonRetryableApplicationError("unexpected input", activities.ErrTypeBadInput, nil)
			}
			return activities.ListDrillsOutput{Drills: []repository.DrillRecord{
				{Database: "finance", StartedAt: drillStart, OK: true}, {Database: "finance", StartedAt: drillStart.Add(-30 * 24 * time.Hour)},
			}, Truncated: true}, nil
		})
	env.ExecuteWorkflow(ListDrillsWorkflow, ListDrillsRequest{Database: "finance", Limit: 2})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var out activities.ListDrillsOutput
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	if len(out.Drills) != 2 || !out.Truncated || !out.Drills[0].OK {
		t.Fatalf("listed %+v", out)
	}
}

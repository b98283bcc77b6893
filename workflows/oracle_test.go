package workflows

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"

	"github.com/bulwark-dr/bulwark/activities"
)

func newOracleEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	env := newEnv(t)
	env.RegisterWorkflow(OracleRestoreWorkflow)
	env.RegisterActivity(&activities.OracleActivities{})
	return env
}

func TestOracleBackupRunsOnTheOracleQueueThenVerifiesAndReplicates(t *testing.T) {
	e := newOracleEnv(t)
	var queue string
	e.OnActivity("BackupOracle", mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.SnapshotInput) (activities.SnapshotOutput, error) {
			queue = activity.GetInfo(ctx).TaskQueue
			return activities.SnapshotOutput{BackupID: in.BackupID, Tables: 5, Rows: 1200}, nil
		})
	e.OnActivity("SnapshotSQLite", mock.Anything, mock.Anything).Return(
		func(context.Context, activities.SnapshotInput) (activities.SnapshotOutput, error) {
			t.Error("an Oracle backup ran the SQLite snapshot")
			return activities.SnapshotOutput{}, nil
		})
	e.OnActivity("VerifyBackup", mock.Anything, mock.Anything).Return(activities.VerifyOutput{OK: true}, nil)
	e.OnActivity("ListDestinations", mock.Anything).Return([]activities.DestinationInfo{{Name: "local", Role: "primary"}}, nil)
	e.ExecuteWorkflow(BackupWorkflow, BackupRequest{Database: "central", Engine: "oracle", Verify: true})
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackupResult
	if err := e.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if queue != activities.OracleQueue || res.Verify == nil || !res.Verify.OK || res.Rows != 1200 {
		t.Fatalf("queue %q, result %+v", queue, res)
	}
}

func TestOracleBackupRejectsUnknownEngine(t *testing.T) {
	e := newOracleEnv(t)
	e.ExecuteWorkflow(BackupWorkflow, BackupRequest{Database: "central", Engine: "postgres"})
	if err := e.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), `engine "postgres"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestOracleRestoreTakesAVerifiedEmergencyCopyBeforeReplacing(t *testing.T) {
	for _, c := range []struct {
		name      string
		in        activities.OracleRestoreInput
		emergency bool
	}{
		{"table replace (default)", activities.OracleRestoreInput{Tables: []string{"FINANCE_EXPENSE"}}, true},
		{"table append", activities.OracleRestoreInput{Tables: []string{"FINANCE_EXPENSE"}, Mode: "append"}, true},
		{"table new name", activities.OracleRestoreInput{Tables: []string{"FINANCE_EXPENSE"}, Mode: "new-name", NewName: "EXPENSE_OLD"}, false},
		{"schema create", activities.OracleRestoreInput{TargetSchema: "FINANCE_COPY"}, false},
		{"schema replace", activities.OracleRestoreInput{Mode: "replace"}, true},
		{"datapump replace", activities.OracleRestoreInput{Method: "datapump", TableExistsAction: "REPLACE"}, true},
		{"datapump skip", activities.OracleRestoreInput{Method: "datapump", TableExistsAction: "SKIP"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newOracleEnv(t)
			var order []string
			var emergencyTables []string
			e.OnActivity("ResolveBackup", mock.Anything, mock.Anything).Return(activities.ResolveOutput{BackupID: "20261120T010000.000Z-0123abcd"}, nil)
			e.OnActivity("BackupOracle", mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.SnapshotInput) (activities.SnapshotOutput, error) {
					order = append(order, "backup")
					emergencyTables = in.Tables
					return activities.SnapshotOutput{BackupID: in.BackupID}, nil
				})
			e.OnActivity("VerifyBackup", mock.Anything, mock.Anything).Return(
				func(context.Context, activities.VerifyInput) (activities.VerifyOutput, error) {
					order = append(order, "verify")
					return activities.VerifyOutput{OK: true}, nil
				})
			e.OnActivity("RestoreOracle", mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.OracleRestoreInput) (activities.OracleRestoreOutput, error) {
					order = append(order, "restore")
					if in.BackupID != "20261120T010000.000Z-0123abcd" || in.Database != "central" {
						t.Errorf("restore input %+v", in)
					}
					return activities.OracleRestoreOutput{Schema: "FINANCE"}, nil
				})
			e.ExecuteWorkflow(OracleRestoreWorkflow, OracleRestoreRequest{Database: "central", OracleRestoreInput: c.in})
			if err := e.GetWorkflowError(); err != nil {
				t.Fatal(err)
			}
			var res OracleRestoreResult
			e.GetWorkflowResult(&res)
			want := "restore"
			if c.emergency {
				want = "backup verify restore"
				if res.EmergencyBackup == "" || strings.Join(emergencyTables, ",") != strings.Join(c.in.Tables, ",") {
					t.Fatalf("emergency %q of tables %v", res.EmergencyBackup, emergencyTables)
				}
			}
			if got := strings.Join(order, " "); got != want {
				t.Fatalf("steps %q, want %q", got, want)
			}
		})
	}
}

func TestOracleRestoreStopsWhenTheEmergencyCopyFailsVerification(t *testing.T) {
	e := newOracleEnv(t)
	e.OnActivity("ResolveBackup", mock.Anything, mock.Anything).Return(activities.ResolveOutput{BackupID: "20261120T010000.000Z-0123abcd"}, nil)
	e.OnActivity("BackupOracle", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SnapshotInput) (activities.SnapshotOutput, error) {
			return activities.SnapshotOutput{BackupID: in.BackupID}, nil
		})
	e.OnActivity("VerifyBackup", mock.Anything, mock.Anything).Return(activities.VerifyOutput{OK: false, Problems: []string{"table X digest differs"}}, nil)
	restored := false
	e.OnActivity("RestoreOracle", mock.Anything, mock.Anything).Return(
		func(context.Context, activities.OracleRestoreInput) (activities.OracleRestoreOutput, error) {
			restored = true
			return activities.OracleRestoreOutput{}, nil
		})
	e.ExecuteWorkflow(OracleRestoreWorkflow, OracleRestoreRequest{Database: "central", OracleRestoreInput: activities.OracleRestoreInput{Mode: "replace"}})
	err := e.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "nothing was changed") || restored {
		t.Fatalf("err %v, restored %v", err, restored)
	}
}

// An Oracle schema in a disaster recovery: assessed over SQL on the oracle
// queue, restored in place by OracleRestoreWorkflow (a verified emergency
// copy first), assessed again, next to a SQLite database.
func TestDRRestoresAnOracleSchemaInPlace(t *testing.T) {
	f := newDRFixture(t)
	f.env.RegisterWorkflow(OracleRestoreWorkflow)
	f.env.RegisterActivity(&activities.OracleActivities{})
	var (
		mu       sync.Mutex
		steps    []string
		restored bool
	)
	f.env.OnActivity("AssessOracle", mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.AssessInput) (activities.AssessOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			if q := activity.GetInfo(ctx).TaskQueue; q != activities.OracleQueue {
				t.Errorf("AssessOracle ran on %s", q)
			}
			steps = append(steps, "assess")
			if !restored {
				return activities.AssessOutput{Verdict: activities.VerdictDamaged, Reason: "2 invalid objects"}, nil
			}
			return activities.AssessOutput{Verdict: activities.VerdictHealthy, Reason: "6 tables", Tables: 6}, nil
		})
	f.env.OnActivity("ResolveBackup", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ResolveInput) (activities.ResolveOutput, error) {
			return activities.ResolveOutput{BackupID: in.Ref}, nil
		})
	f.env.OnActivity("BackupOracle", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SnapshotInput) (activities.SnapshotOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			steps = append(steps, "emergency-backup")
			return activities.SnapshotOutput{BackupID: in.BackupID}, nil
		})
	f.env.OnActivity("VerifyBackup", mock.Anything, mock.Anything).Return(activities.VerifyOutput{OK: true}, nil)
	f.env.OnActivity("RestoreOracle", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.OracleRestoreInput) (activities.OracleRestoreOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			if in.Mode != "replace" || in.Database != "central" {
				t.Errorf("restore input %+v", in)
			}
			steps = append(steps, "restore")
			restored = true
			return activities.OracleRestoreOutput{Schema: "FINANCE"}, nil
		})
	f.at(20*time.Minute, SignalApproveRestore, DRSignal{By: "bob@dr"})
	f.at(time.Hour, SignalResumeOperations, DRSignal{By: "carol@app"})
	f.env.ExecuteWorkflow(DisasterRecoveryWorkflow, DRRequest{Incident: "inc-7", Scenario: ScenarioCorruption, DeclaredBy: "alice@ops",
		Databases: []DRDatabase{{Name: "central", Engine: "oracle", Priority: "P1"}, {Name: "finance", Host: "db1"}}})
	rep := f.report(t)
	if got := strings.Join(steps, " "); got != "assess emergency-backup restore assess" {
		t.Fatalf("oracle steps %q", got)
	}
	var central *DRDatabaseReport
	for i := range rep.Databases {
		if rep.Databases[i].Name == "central" {
			central = &rep.Databases[i]
		}
	}
	if central == nil || central.Status != DRVerified || !strings.HasPrefix(central.EmergencyCopy, "backup ") ||
		central.Target != "schema FINANCE" || central.Before.Verdict != activities.VerdictDamaged {
		t.Fatalf("central in the report: %+v", central)
	}
	if rep.Databases[0].Name != "central" {
		t.Fatalf("P1 Oracle schema not restored first: %+v", rep.Databases)
	}
}

func TestDRRefusesATargetPathForAnOracleSchema(t *testing.T) {
	f := newDRFixture(t)
	f.env.ExecuteWorkflow(DisasterRecoveryWorkflow, DRRequest{Scenario: ScenarioHardwareFailure, DeclaredBy: "a",
		Databases: []DRDatabase{{Name: "central", Engine: "oracle", TargetPath: "/x"}}})
	err := f.env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "restored in place") {
		t.Fatalf("err = %v", err)
	}
}

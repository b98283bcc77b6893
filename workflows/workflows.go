// Package workflows orchestrates Bulwark's activities. Workflow code is
// deterministic: time comes from workflow.Now, ids derive from workflow
// inputs and run ids, and nothing here does I/O.
package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/bulwark-dr/bulwark/activities"
)

// Workflow id prefixes: ids are business keys, so a second start of the same
// operation on the same database finds the running one instead of racing it.
const (
	BackupIDPrefix  = "backup/"
	VerifyIDPrefix  = "verify/"
	RestoreIDPrefix = "restore/"
	TableIDPrefix   = "restore-table/"
)

// BackupWorkflowID is the id of the backup workflow of a database. One
// database has at most one backup running at a time.
func BackupWorkflowID(database string) string { return BackupIDPrefix + database }

// VerifyWorkflowID is the id of the verification of one backup.
func VerifyWorkflowID(database, backupID string) string {
	return VerifyIDPrefix + database + "/" + backupID
}

// RestoreWorkflowID is the id of a restore to one target: two restores to
// the same file cannot run at once.
func RestoreWorkflowID(database, target string) string {
	return RestoreIDPrefix + database + "/" + target
}

// RestoreTableWorkflowID is the id of a table restore: one at a time per
// table of a database.
func RestoreTableWorkflowID(database, table string) string {
	return TableIDPrefix + database + "/" + table
}

// Signal and query names.
const (
	SignalApprove = "approve"
	SignalReject  = "reject"
	QueryStatus   = "status"
)

// Activity method values, used only for their names and types. Workflows
// never call them directly.
var (
	sqliteActs  *activities.SQLiteActivities
	storageActs *activities.StorageActivities
	oracleActs  *activities.OracleActivities
)

// nonRetryable lists the error types that activities already mark as
// non-retryable; naming them in the retry policy as well makes the policy
// readable on its own.
var nonRetryable = []string{
	activities.ErrTypeBadInput, activities.ErrTypeNoDatabase, activities.ErrTypeNotSQLite,
	activities.ErrTypeSourceDamaged, activities.ErrTypeCorruptBackup, activities.ErrTypeNotFound,
	activities.ErrTypeWrongKey, activities.ErrTypeRestoreTarget, activities.ErrTypeUnsupported,
	activities.ErrTypeTableRefused, activities.ErrTypeLocked, activities.ErrTypeOracleRefused,
}

// longActivity is for activities that move a whole database: generous
// start-to-close, a short heartbeat timeout so that a dead worker is noticed
// within seconds (activities heartbeat every second whatever their speed),
// and retries that resume from the heartbeat.
func longActivity(ctx workflow.Context, queue string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           queue,
		StartToCloseTimeout: 6 * time.Hour,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        10,
			NonRetryableErrorTypes: nonRetryable,
		},
	})
}

// shortActivity is for quick checks and metadata reads.
func shortActivity(ctx workflow.Context, queue string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           queue,
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: nonRetryable,
		},
	})
}

// runSuffix is eight hex digits unique to this run, recorded in history
// with SideEffect: replays and activity retries see the same value, so a
// backup's object keys are stable, while nothing depends on how a replay
// names the execution (replayers use synthetic ids).
func runSuffix(ctx workflow.Context) string {
	info := workflow.GetInfo(ctx)
	seed := info.WorkflowExecution.ID + "\x00" + info.WorkflowExecution.RunID
	var suffix string
	enc := workflow.SideEffect(ctx, func(workflow.Context) any {
		sum := sha256.Sum256([]byte(seed))
		return hex.EncodeToString(sum[:4])
	})
	if err := enc.Get(&suffix); err != nil || len(suffix) != 8 {
		// Only a corrupted history gets here; fail the task so it is retried.
		panic(fmt.Sprintf("backup id suffix from history: %q %v", suffix, err))
	}
	return suffix
}

// All lists every workflow, for workers to register and replayers to
// replay against.
func All() []any {
	return []any{
		BackupWorkflow, VerifyWorkflow, RestoreWorkflow, RestoreTableWorkflow, ExportWorkflow, ListBackupsWorkflow,
		ReplicateWorkflow, CleanupWorkflow, CapacityWorkflow, PipelineWorkflow, DisasterRecoveryWorkflow,
		DrillWorkflow, ListDrillsWorkflow, OracleRestoreWorkflow, RMANBackupWorkflow,
	}
}

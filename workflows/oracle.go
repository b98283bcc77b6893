package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/repository"
)

// OracleRestoreRequest restores a logical backup of an Oracle database.
// Backup is an id, "latest" or a time (the newest backup at or before it).
type OracleRestoreRequest struct {
	Database string `json:"database"`
	Backup   string `json:"backup"`
	activities.OracleRestoreInput
}

// OracleRestoreResult is the restore's report with the emergency copy taken
// before anything was replaced.
type OracleRestoreResult struct {
	BackupID        string                         `json:"backup_id"`
	EmergencyBackup string                         `json:"emergency_backup,omitempty"`
	Report          activities.OracleRestoreOutput `json:"report"`
}

// replaces reports whether a restore can overwrite existing data.
func replaces(in activities.OracleRestoreInput) bool {
	switch {
	case in.Method == "datapump":
		return in.TableExistsAction == "REPLACE" || in.TableExistsAction == "TRUNCATE" || in.TableExistsAction == "APPEND"
	case len(in.Tables) > 0:
		return in.Mode == "" || in.Mode == "replace" || in.Mode == "append"
	default:
		return in.Mode == "replace"
	}
}

// OracleRestoreWorkflow restores a schema or single tables from a logical
// backup. Whatever it would replace is first backed up (the emergency copy,
// a logical backup of the target schema, verified), so nothing existing is
// lost; then the restore runs on the oracle queue and checks every table it
// loaded against the backup's row counts and digests.
func OracleRestoreWorkflow(ctx workflow.Context, req OracleRestoreRequest) (OracleRestoreResult, error) {
	if err := repository.ValidateDatabaseName(req.Database); err != nil {
		return OracleRestoreResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeBadInput, nil)
	}
	if req.Backup == "" {
		req.Backup = "latest"
	}
	id, err := resolve(ctx, req.Database, req.Backup)
	if err != nil {
		return OracleRestoreResult{}, err
	}
	res := OracleRestoreResult{BackupID: id}
	in := req.OracleRestoreInput
	in.Database, in.BackupID = req.Database, id
	if replaces(in) {
		started := workflow.Now(ctx)
		emergencyID := repository.NewBackupID(started, runSuffix(ctx))
		var snap activities.SnapshotOutput
		err := workflow.ExecuteActivity(longActivity(ctx, activities.OracleQueue), oracleActs.BackupOracle,
			activities.SnapshotInput{Database: req.Database, BackupID: emergencyID, StartedAt: started,
				Schema: in.TargetSchema, Tables: in.Tables}).Get(ctx, &snap)
		if err != nil {
			return res, fmt.Errorf("emergency copy before the restore (nothing was changed): %w", err)
		}
		var v activities.VerifyOutput
		if err := workflow.ExecuteActivity(longActivity(ctx, activities.StorageQueue), storageActs.VerifyBackup,
			activities.VerifyInput{Database: req.Database, BackupID: emergencyID}).Get(ctx, &v); err != nil || !v.OK {
			return res, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("emergency copy %s did not verify (%v %v); nothing was changed", emergencyID, err, v.Problems),
				activities.ErrTypeCheckFailed, nil)
		}
		res.EmergencyBackup = emergencyID
	}
	err = workflow.ExecuteActivity(longActivity(ctx, activities.OracleQueue), oracleActs.RestoreOracle, in).Get(ctx, &res.Report)
	return res, err
}

// RMANBackupWorkflow runs an RMAN incremental backup on the database host's
// worker. A worker without rman answers "not available", which the result
// says; it is not a failure.
func RMANBackupWorkflow(ctx workflow.Context, in activities.RMANInput) (activities.RMANOutput, error) {
	var out activities.RMANOutput
	err := workflow.ExecuteActivity(longActivity(ctx, activities.OracleQueue), oracleActs.RMANBackup, in).Get(ctx, &out)
	return out, err
}

// OracleRestoreWorkflowID is the id of a restore of an Oracle database: one
// at a time per database.
func OracleRestoreWorkflowID(database string) string { return "oracle-restore/" + database }

// RMANBackupWorkflowID is the id of an RMAN backup of a database.
func RMANBackupWorkflowID(database string) string { return "oracle-rman/" + database }

package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/repository"
)

// BackupRequest starts a backup of one database.
type BackupRequest struct {
	Database string `json:"database"`
	Host     string `json:"host"` // the host whose worker has the file
	Type     string `json:"type"` // full (default), incremental or differential
	Verify   bool   `json:"verify"`
	// Engine is "" or sqlite for a SQLite file on Host, oracle for a
	// logical backup of an Oracle schema on the oracle queue.
	Engine string `json:"engine,omitempty"`
}

// BackupResult is what a backup workflow returns: references and figures.
type BackupResult struct {
	activities.SnapshotOutput
	Database string                   `json:"database"`
	Host     string                   `json:"host"`
	Verify   *activities.VerifyOutput `json:"verify,omitempty"`
	// Replication is the copies to the other destinations; Failed names
	// those without a verified copy.
	Replication *ReplicateResult `json:"replication,omitempty"`
}

// BackupWorkflow takes a hot backup of a SQLite database on its host and,
// when asked, verifies it in a child workflow.
func BackupWorkflow(ctx workflow.Context, req BackupRequest) (BackupResult, error) {
	if err := repository.ValidateDatabaseName(req.Database); err != nil {
		return BackupResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeBadInput, nil)
	}
	oracle := req.Engine == "oracle"
	if req.Engine != "" && req.Engine != "sqlite" && !oracle {
		return BackupResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("engine %q is not sqlite or oracle", req.Engine), activities.ErrTypeBadInput, nil)
	}
	if req.Host == "" && !oracle {
		return BackupResult{}, temporal.NewNonRetryableApplicationError("backup request names no host", activities.ErrTypeBadInput, nil)
	}
	switch repository.BackupType(req.Type) {
	case "", repository.BackupFull, repository.BackupIncremental, repository.BackupDifferential:
	default:
		return BackupResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("backup type %q is not one of full, incremental, differential", req.Type), activities.ErrTypeBadInput, nil)
	}
	started := workflow.Now(ctx)
	suffix := runSuffix(ctx)
	backupID := repository.NewBackupID(started, suffix)
	// Histories recorded before backup ids had milliseconds must replay
	// with the ids they used (their verify child's id contains it).
	if workflow.GetVersion(ctx, "backup-id-milliseconds", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		backupID = repository.NewBackupIDSeconds(started, suffix)
	}
	workflow.GetLogger(ctx).Info("backup starting", "database", req.Database, "backup", backupID)

	var snap activities.SnapshotOutput
	in := activities.SnapshotInput{Database: req.Database, Type: req.Type, BackupID: backupID, StartedAt: started}
	var err error
	if oracle {
		// Verify, replication and cleanup below are the same for both
		// engines: they work on objects and manifests.
		err = workflow.ExecuteActivity(longActivity(ctx, activities.OracleQueue), oracleActs.BackupOracle, in).Get(ctx, &snap)
	} else {
		err = workflow.ExecuteActivity(longActivity(ctx, activities.HostQueue(req.Host)), sqliteActs.SnapshotSQLite, in).Get(ctx, &snap)
	}
	if err != nil {
		return BackupResult{}, err
	}
	res := BackupResult{SnapshotOutput: snap, Database: req.Database, Host: req.Host}
	if !req.Verify {
		return res, nil
	}
	child := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: VerifyWorkflowID(req.Database, backupID),
		TaskQueue:  activities.WorkflowQueue,
	})
	var v activities.VerifyOutput
	if err := workflow.ExecuteChildWorkflow(child, VerifyWorkflow, VerifyRequest{Database: req.Database, BackupID: backupID}).Get(ctx, &v); err != nil {
		return res, fmt.Errorf("verify backup %s: %w", backupID, err)
	}
	res.Verify = &v
	if !v.OK {
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("backup %s was written but failed verification: %v", backupID, v.Problems),
			activities.ErrTypeCheckFailed, nil, res)
	}
	// Only a verified backup is copied to the other destinations (3-2-1).
	// Histories from before replication existed end here.
	if workflow.GetVersion(ctx, "replicate-after-backup", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return res, nil
	}
	rep := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: ReplicateWorkflowID(req.Database, backupID),
		TaskQueue:  activities.WorkflowQueue,
	})
	var r ReplicateResult
	if err := workflow.ExecuteChildWorkflow(rep, ReplicateWorkflow, ReplicateRequest{Database: req.Database, BackupID: backupID}).Get(ctx, &r); err != nil {
		// The backup itself is good and stays; the missing copies are
		// reported in the result for the caller (and alerts) to act on.
		workflow.GetLogger(ctx).Warn("replication incomplete", "backup", backupID, "error", err)
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.HasDetails() {
			_ = appErr.Details(&r)
		}
		if len(r.Failed) == 0 {
			r.Failed = map[string]string{"*": err.Error()}
		}
	}
	res.Replication = &r
	return res, nil
}

// VerifyRequest names a backup to verify; BackupID may be "latest".
type VerifyRequest struct {
	Database string `json:"database"`
	BackupID string `json:"backup_id"`
}

// VerifyWorkflow verifies one backup on any storage worker.
func VerifyWorkflow(ctx workflow.Context, req VerifyRequest) (activities.VerifyOutput, error) {
	id, err := resolve(ctx, req.Database, req.BackupID)
	if err != nil {
		return activities.VerifyOutput{}, err
	}
	var out activities.VerifyOutput
	err = workflow.ExecuteActivity(longActivity(ctx, activities.StorageQueue), storageActs.VerifyBackup,
		activities.VerifyInput{Database: req.Database, BackupID: id}).Get(ctx, &out)
	return out, err
}

// ListRequest lists backups; Database "" lists all.
type ListRequest struct {
	Database string `json:"database"`
	Limit    int    `json:"limit"`
}

// ListBackupsWorkflow returns the complete backups in storage. It is a
// workflow so that clients need no storage credentials: workers hold them.
func ListBackupsWorkflow(ctx workflow.Context, req ListRequest) (activities.ListOutput, error) {
	var out activities.ListOutput
	err := workflow.ExecuteActivity(shortActivity(ctx, activities.StorageQueue), storageActs.ListBackups,
		activities.ListInput{Database: req.Database, Limit: req.Limit}).Get(ctx, &out)
	return out, err
}

func resolve(ctx workflow.Context, database, ref string) (string, error) {
	if repository.ValidateBackupID(ref) == nil {
		return ref, nil
	}
	var out activities.ResolveOutput
	err := workflow.ExecuteActivity(shortActivity(ctx, activities.StorageQueue), storageActs.ResolveBackup,
		activities.ResolveInput{Database: database, Ref: ref}).Get(ctx, &out)
	return out.BackupID, err
}

package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/activities/sqlitesrc"
	"github.com/bulwark-dr/bulwark/repository"
)

// RestoreTableRequest restores one table of a backup into a live database.
type RestoreTableRequest struct {
	Database string `json:"database"`
	Host     string `json:"host"`
	Backup   string `json:"backup"` // id, "latest", or an RFC 3339 time
	Table    string `json:"table"`
	Into     string `json:"into"` // "" = the database's configured path
	Mode     string `json:"mode"` // replace, append or new-name
	// Approved skips the wait for approval that replace mode needs.
	Approved        bool          `json:"approved"`
	ApprovalTimeout time.Duration `json:"approval_timeout"`
}

// RestoreTableWorkflow resolves the backup, waits for approval when the
// mode replaces a live table, and restores the table in one transaction on
// the database's host. Append and new-name never destroy live rows, and an
// emergency copy of the live database is made in every mode.
func RestoreTableWorkflow(ctx workflow.Context, req RestoreTableRequest) (activities.TableOutput, error) {
	status := RestoreStatus{Phase: PhaseResolving, Target: req.Into}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (RestoreStatus, error) { return status, nil }); err != nil {
		return activities.TableOutput{}, err
	}
	bad := func(format string, args ...any) error {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), activities.ErrTypeBadInput, nil)
	}
	if err := repository.ValidateDatabaseName(req.Database); err != nil {
		return activities.TableOutput{}, bad("%v", err)
	}
	if req.Host == "" || req.Table == "" {
		return activities.TableOutput{}, bad("a table restore needs a host and a table")
	}
	switch req.Mode {
	case sqlitesrc.TableReplace, sqlitesrc.TableAppend, sqlitesrc.TableNewName:
	default:
		return activities.TableOutput{}, bad("mode %q is not one of replace, append, new-name", req.Mode)
	}
	backupID, err := resolve(ctx, req.Database, req.Backup)
	if err != nil {
		return activities.TableOutput{}, err
	}
	status.BackupID = backupID
	if req.Mode == sqlitesrc.TableReplace && !req.Approved {
		status.Phase = PhaseAwaitApproval
		status.WaitingFor = fmt.Sprintf("approval to replace table %s of %s with its contents in backup %s (an emergency copy of the database is made first): signal %q, or run bulwark approve %s",
			req.Table, req.Database, backupID, SignalApprove, workflow.GetInfo(ctx).WorkflowExecution.ID)
		if _, err := awaitApproval(ctx, req.ApprovalTimeout); err != nil {
			status.Phase = PhaseRejected
			return activities.TableOutput{}, err
		}
		status.WaitingFor = ""
	}
	status.Phase = PhaseStaging
	into := ""
	if req.Into != "" {
		into = req.Into
	}
	emergency := ""
	if into != "" {
		emergency = into + ".emergency-" + workflow.Now(ctx).UTC().Format("20060102T150405Z")
	}
	var out activities.TableOutput
	err = workflow.ExecuteActivity(longActivity(ctx, activities.HostQueue(req.Host)), sqliteActs.RestoreTable, activities.TableInput{
		Database: req.Database, BackupID: backupID, Table: req.Table, Into: into, Mode: req.Mode, EmergencyPath: emergency,
	}).Get(ctx, &out)
	if err != nil {
		return out, err
	}
	status.Phase, status.EmergencyCopy = PhaseDone, out.EmergencyCopy
	return out, nil
}

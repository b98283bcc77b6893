package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/repository"
)

// RestoreRequest restores a backup to a file on the database's host.
type RestoreRequest struct {
	Database string `json:"database"`
	Host     string `json:"host"`
	// Backup is a backup id, "latest", or an RFC 3339 time (newest at or before).
	Backup string `json:"backup"`
	// Target is the file to restore to; "" means the database's configured path.
	Target string `json:"target"`
	// Approved allows replacing an existing file without waiting for the
	// approve signal (the CLI's --yes).
	Approved bool `json:"approved"`
	// ApprovalTimeout bounds the wait for approval; 0 means 24 hours.
	ApprovalTimeout time.Duration `json:"approval_timeout"`
	// Repair writes good copies read from other destinations back to the
	// primary when its copy of an object is missing or damaged.
	Repair bool `json:"repair,omitempty"`
}

// RestoreStatus is what the status query returns.
type RestoreStatus struct {
	Phase         string `json:"phase"`
	WaitingFor    string `json:"waiting_for,omitempty"`
	BackupID      string `json:"backup_id,omitempty"`
	Target        string `json:"target,omitempty"`
	TargetExists  bool   `json:"target_exists"`
	StagedFile    string `json:"staged_file,omitempty"`
	EmergencyCopy string `json:"emergency_copy,omitempty"`
}

// Restore phases, in order.
const (
	PhaseResolving     = "resolving backup"
	PhaseInspecting    = "inspecting target"
	PhaseStaging       = "downloading and verifying"
	PhaseAwaitApproval = "awaiting approval"
	PhaseSwapping      = "moving restored file into place"
	PhaseDone          = "done"
	PhaseRejected      = "rejected"
)

// ApproveSignal approves replacing an existing file.
type ApproveSignal struct {
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

// RestoreResult is what a restore returns.
type RestoreResult struct {
	BackupID      string `json:"backup_id"`
	Target        string `json:"target"`
	ImageBytes    int64  `json:"image_bytes"`
	ImageHash     string `json:"image_hash"`
	EmergencyCopy string `json:"emergency_copy,omitempty"`
	// Healed lists objects read from another destination (self-healing).
	Healed     []string            `json:"healed,omitempty"`
	ApprovedBy string              `json:"approved_by,omitempty"`
	Duration   activities.Duration `json:"duration"`
}

// RestoreWorkflow stages a backup next to the target, checks it against the
// manifest, waits for approval when a file would be replaced, then swaps it
// in keeping the old file as an emergency copy. A rejection, timeout or
// cancellation removes the staged file and leaves the target untouched.
func RestoreWorkflow(ctx workflow.Context, req RestoreRequest) (RestoreResult, error) {
	start := workflow.Now(ctx)
	status := RestoreStatus{Phase: PhaseResolving}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (RestoreStatus, error) { return status, nil }); err != nil {
		return RestoreResult{}, err
	}
	if err := repository.ValidateDatabaseName(req.Database); err != nil {
		return RestoreResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeBadInput, nil)
	}
	if req.Host == "" {
		return RestoreResult{}, temporal.NewNonRetryableApplicationError("restore request names no host", activities.ErrTypeBadInput, nil)
	}
	backupID, err := resolve(ctx, req.Database, req.Backup)
	if err != nil {
		return RestoreResult{}, err
	}
	status.BackupID = backupID
	hostQueue := activities.HostQueue(req.Host)

	status.Phase = PhaseInspecting
	var target activities.TargetOutput
	if err := workflow.ExecuteActivity(shortActivity(ctx, hostQueue), sqliteActs.InspectRestoreTarget,
		activities.TargetInput{Database: req.Database, Target: req.Target}).Get(ctx, &target); err != nil {
		return RestoreResult{}, err
	}
	status.Target, status.TargetExists = target.Target, target.Exists

	discard := func() {
		// Runs on cancellation too, so it needs a context that is not cancelled.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		_ = workflow.ExecuteActivity(shortActivity(dctx, hostQueue), sqliteActs.DiscardRestore,
			activities.DiscardInput{Target: target.Target, BackupID: backupID}).Get(dctx, nil)
		status.StagedFile = ""
	}

	status.Phase = PhaseStaging
	var staged activities.RestoreOutput
	if err := workflow.ExecuteActivity(longActivity(ctx, hostQueue), sqliteActs.RestoreSQLite,
		activities.RestoreInput{Database: req.Database, BackupID: backupID, Target: target.Target, Repair: req.Repair}).Get(ctx, &staged); err != nil {
		if temporal.IsCanceledError(err) {
			discard() // a partly written staged file must not linger
		}
		return RestoreResult{}, err
	}
	status.StagedFile = staged.TempPath

	res := RestoreResult{BackupID: backupID, Target: target.Target, ImageBytes: staged.ImageBytes, ImageHash: staged.ImageHash, Healed: staged.Healed}
	if target.Exists && !req.Approved {
		status.Phase = PhaseAwaitApproval
		status.WaitingFor = fmt.Sprintf("approval to replace %s with backup %s (the current file will be kept as an emergency copy): signal %q, or run bulwark approve %s",
			target.Target, backupID, SignalApprove, workflow.GetInfo(ctx).WorkflowExecution.ID)
		approval, err := awaitApproval(ctx, req.ApprovalTimeout)
		status.WaitingFor = ""
		if err != nil {
			status.Phase = PhaseRejected
			discard()
			return res, err
		}
		res.ApprovedBy = approval.By
	} else if req.Approved {
		res.ApprovedBy = "request (--yes)"
	}

	status.Phase = PhaseSwapping
	emergency := target.Target + ".emergency-" + workflow.Now(ctx).UTC().Format("20060102T150405Z")
	var swapped activities.SwapOutput
	if err := workflow.ExecuteActivity(shortActivity(ctx, hostQueue), sqliteActs.SwapInRestore,
		activities.SwapInput{TempPath: staged.TempPath, Target: target.Target, EmergencyPath: emergency}).Get(ctx, &swapped); err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			discard()
		}
		return res, err
	}
	status.Phase, status.StagedFile, status.EmergencyCopy = PhaseDone, "", swapped.EmergencyCopy
	res.EmergencyCopy = swapped.EmergencyCopy
	res.Duration = activities.Duration(workflow.Now(ctx).Sub(start))
	return res, nil
}

// ErrTypeRejected is the error type of a restore that was rejected or whose
// approval timed out.
const ErrTypeRejected = "RestoreRejected"

func awaitApproval(ctx workflow.Context, timeout time.Duration) (ApproveSignal, error) {
	if timeout <= 0 {
		timeout = 24 * time.Hour
	}
	var approval, rejection ApproveSignal
	approved, rejected, timedOut := false, false, false
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(workflow.GetSignalChannel(ctx, SignalApprove), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, &approval)
		approved = true
	})
	sel.AddReceive(workflow.GetSignalChannel(ctx, SignalReject), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, &rejection)
		rejected = true
	})
	sel.AddFuture(workflow.NewTimer(timerCtx, timeout), func(workflow.Future) { timedOut = true })
	sel.Select(ctx)
	if err := ctx.Err(); err != nil {
		return approval, temporal.NewCanceledError("restore cancelled while awaiting approval")
	}
	switch {
	case approved:
		return approval, nil
	case rejected:
		return approval, temporal.NewNonRetryableApplicationError(fmt.Sprintf("restore rejected by %s: %s", rejection.By, rejection.Reason), ErrTypeRejected, nil)
	case timedOut:
		return approval, temporal.NewNonRetryableApplicationError(fmt.Sprintf("no approval within %s; the target was left untouched", timeout), ErrTypeRejected, nil)
	}
	return approval, nil
}

package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/notify"
	"github.com/bulwark-dr/bulwark/repository"
)

// PipelineRequest is one scheduled run for a database: a backup (verified
// and replicated), then retention, then the RPO check.
type PipelineRequest struct {
	Database string `json:"database"`
	Host     string `json:"host"`
	Type     string `json:"type"`
	Schedule string `json:"schedule"`
	Verify   bool   `json:"verify"`
	Cleanup  bool   `json:"cleanup"`
	// Engine is "" (SQLite) or oracle.
	Engine string `json:"engine,omitempty"`
	// RPO is the most data, in time, the database may lose: the newest
	// verified backup must never be older. 0 turns the check off.
	RPO time.Duration `json:"rpo,omitempty"`
}

// PipelineStep is one step's outcome.
type PipelineStep struct {
	Name     string        `json:"name"`
	OK       bool          `json:"ok"`
	Detail   string        `json:"detail,omitempty"`
	Duration time.Duration `json:"duration"`
}

// PipelineResult summarises a run.
type PipelineResult struct {
	Database string         `json:"database"`
	Schedule string         `json:"schedule,omitempty"`
	Steps    []PipelineStep `json:"steps"`
	Backup   *BackupResult  `json:"backup,omitempty"`
	Cleanup  *CleanupResult `json:"cleanup,omitempty"`
	RPOAge   time.Duration  `json:"rpo_age,omitempty"` // age of the newest verified backup at the end
	RPO      time.Duration  `json:"rpo,omitempty"`
	Breached bool           `json:"rpo_breached,omitempty"`
	Newest   string         `json:"newest_verified,omitempty"`
	Failures []string       `json:"failures,omitempty"`
	// Alerts lists the notifications sent (or why one could not be).
	Alerts   []string  `json:"alerts,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// PipelineWorkflow runs the steps of a scheduled backup in order, each as a
// child workflow with its own timeout: backup (which verifies and copies to
// the other destinations), cleanup (retention on every destination), and
// the RPO check. A failed step is recorded and the run goes on where that
// is safe (the RPO check always runs: a failed backup is exactly when it
// matters); the run fails at the end naming every failed step, so the
// schedule's history shows it.
func PipelineWorkflow(ctx workflow.Context, req PipelineRequest) (PipelineResult, error) {
	if err := repository.ValidateDatabaseName(req.Database); err != nil {
		return PipelineResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeBadInput, nil)
	}
	res := PipelineResult{Database: req.Database, Schedule: req.Schedule, RPO: req.RPO, Started: workflow.Now(ctx)}
	step := func(name string, start time.Time, err error, detail string) bool {
		s := PipelineStep{Name: name, OK: err == nil, Detail: detail, Duration: workflow.Now(ctx).Sub(start)}
		if err != nil {
			s.Detail = err.Error()
			res.Failures = append(res.Failures, name+": "+err.Error())
		}
		res.Steps = append(res.Steps, s)
		return err == nil
	}

	start := workflow.Now(ctx)
	var b BackupResult
	err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: BackupWorkflowID(req.Database), TaskQueue: activities.WorkflowQueue,
		WorkflowExecutionTimeout: 12 * time.Hour,
	}), BackupWorkflow, BackupRequest{Database: req.Database, Host: req.Host, Type: req.Type, Verify: req.Verify, Engine: req.Engine}).Get(ctx, &b)
	if err == nil {
		res.Backup = &b
		detail := fmt.Sprintf("%s backup %s, %d bytes stored", b.Type, b.BackupID, b.StoredBytes)
		if b.Replication != nil && len(b.Replication.Failed) > 0 {
			err = fmt.Errorf("backup %s has no verified copy on %d destination(s)", b.BackupID, len(b.Replication.Failed))
		}
		step("backup", start, err, detail)
	} else {
		step("backup", start, err, "")
	}

	// Retention only after a good backup: never thin out the copies while
	// the newest one is missing.
	if req.Cleanup && err == nil {
		start = workflow.Now(ctx)
		var c CleanupResult
		err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: CleanupWorkflowID(req.Database), TaskQueue: activities.WorkflowQueue,
			WorkflowExecutionTimeout: 6 * time.Hour,
		}), CleanupWorkflow, CleanupRequest{Database: req.Database}).Get(ctx, &c)
		res.Cleanup = &c
		step("cleanup", start, err, fmt.Sprintf("%d backup(s) removed", len(c.Removed)))
	}

	if req.RPO > 0 {
		start = workflow.Now(ctx)
		var newest activities.NewestVerifiedOutput
		err := workflow.ExecuteActivity(shortActivity(ctx, activities.StorageQueue), storageActs.NewestVerified,
			activities.NewestVerifiedInput{Database: req.Database}).Get(ctx, &newest)
		if err == nil {
			res.Newest = newest.BackupID
			res.RPOAge = workflow.Now(ctx).Sub(newest.SnapshotAt)
			if newest.BackupID == "" || res.RPOAge > req.RPO {
				res.Breached = true
				err = fmt.Errorf("RPO breached: the newest verified backup of %s is %s (%s old), the objective is %s",
					req.Database, orNone(newest.BackupID), res.RPOAge.Round(time.Minute), req.RPO)
			}
		}
		step("rpo", start, err, fmt.Sprintf("newest verified backup %s is %s old (objective %s)", orNone(newest.BackupID), res.RPOAge.Round(time.Minute), req.RPO))
	}
	res.Finished = workflow.Now(ctx)
	alert := func(kind, severity, title, text string) {
		err := sendEvent(ctx, notify.Event{
			Kind: kind, Severity: severity, Title: title, Text: text, Database: req.Database,
			Fields: map[string]string{"schedule": req.Schedule, "workflow": workflow.GetInfo(ctx).WorkflowExecution.ID},
			At:     res.Finished, ID: eventID(ctx, kind),
		})
		if err != nil {
			res.Alerts = append(res.Alerts, kind+" not sent: "+err.Error())
			return
		}
		res.Alerts = append(res.Alerts, kind+" sent")
	}
	var stepFailures []string
	for _, s := range res.Steps {
		if !s.OK && s.Name != "rpo" {
			stepFailures = append(stepFailures, s.Name+": "+s.Detail)
		}
	}
	if len(stepFailures) > 0 {
		alert(notify.KindFailure, notify.SeverityCritical, fmt.Sprintf("scheduled backup of %s failed", req.Database), strings.Join(stepFailures, "\n"))
	}
	if res.Breached {
		alert(notify.KindRPOBreach, notify.SeverityCritical, fmt.Sprintf("RPO breached for %s", req.Database),
			fmt.Sprintf("the newest verified backup is %s (%s old); the objective is %s", orNone(res.Newest), res.RPOAge.Round(time.Minute), req.RPO))
	}
	if len(res.Failures) > 0 {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("pipeline of %s: %d step(s) failed: %v", req.Database, len(res.Failures), res.Failures), "PipelineFailed", nil, res)
	}
	return res, nil
}

func orNone(id string) string {
	if id == "" {
		return "(none)"
	}
	return id
}

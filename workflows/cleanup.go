package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/repository"
)

// CleanupIDPrefix starts the ids of cleanup workflows: one per database.
const CleanupIDPrefix = "cleanup/"

// CleanupWorkflowID is the id of the cleanup of a database: one at a time.
func CleanupWorkflowID(database string) string { return CleanupIDPrefix + database }

// CleanupRequest applies retention to one database on the named
// destinations (empty: all of them). DryRun plans without deleting.
type CleanupRequest struct {
	Database     string   `json:"database"`
	Destinations []string `json:"destinations,omitempty"`
	DryRun       bool     `json:"dry_run"`
	// OrphanGrace is how old an object nothing references must be before
	// it is removed (0: DefaultOrphanGrace). A backup or copy in progress
	// has no manifest yet: the grace period keeps its objects.
	OrphanGrace time.Duration `json:"orphan_grace,omitempty"`
}

// DefaultOrphanGrace is the age after which cleanup removes objects that
// no complete backup references: what crashed backups, copies and writes
// left. A backup or copy in progress writes an object every few seconds.
const DefaultOrphanGrace = 24 * time.Hour

// CleanupResult is every destination's plan and what was removed.
type CleanupResult struct {
	DryRun  bool                      `json:"dry_run"`
	Plans   []activities.CleanupPlan  `json:"plans"`
	Removed []activities.ForgetOutput `json:"removed,omitempty"`
	Failed  []string                  `json:"failed,omitempty"`
	// Swept counts the orphans removed on each destination (found, in a
	// dry run).
	Swept []activities.SweepOutput `json:"swept,omitempty"`
}

// CleanupWorkflow applies each destination's grandfather-father-son policy
// to a database's backups. The plan is made once, at workflow time, and a
// real run removes exactly the backups the plan marks, newest first (a
// child before its parent), so a run cut short never breaks a chain and a
// dry run shows precisely what a real run would do.
func CleanupWorkflow(ctx workflow.Context, req CleanupRequest) (CleanupResult, error) {
	if err := repository.ValidateDatabaseName(req.Database); err != nil {
		return CleanupResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeBadInput, nil)
	}
	res := CleanupResult{DryRun: req.DryRun}
	var dests []activities.DestinationInfo
	if err := workflow.ExecuteActivity(shortActivity(ctx, activities.StorageQueue), storageActs.ListDestinations).Get(ctx, &dests); err != nil {
		return res, err
	}
	names, err := pickDestinations(dests, req.Destinations, true)
	if err != nil {
		return res, err
	}
	now := workflow.Now(ctx)
	// Histories from before the orphan sweep existed do not sweep.
	sweep := workflow.GetVersion(ctx, "sweep-orphans", workflow.DefaultVersion, 1) == 1
	grace := req.OrphanGrace
	if grace <= 0 {
		grace = DefaultOrphanGrace
	}
	for _, name := range names {
		var plan activities.CleanupPlan
		if err := workflow.ExecuteActivity(shortActivity(ctx, activities.StorageQueue), storageActs.PlanCleanup,
			activities.CleanupInput{Database: req.Database, Destination: name, Now: now}).Get(ctx, &plan); err != nil {
			return res, err
		}
		res.Plans = append(res.Plans, plan)
		failedBefore := len(res.Failed)
		for _, d := range plan.Decisions {
			if d.Keep || req.DryRun {
				continue
			}
			var out activities.ForgetOutput
			err := workflow.ExecuteActivity(longActivity(ctx, activities.StorageQueue), storageActs.ForgetBackup,
				activities.ForgetInput{Database: req.Database, Destination: name, BackupID: d.BackupID, Now: now, Reason: "retention (" + plan.Policy + "): " + strings.Join(d.Reasons, "; ")}).Get(ctx, &out)
			if err != nil {
				// Stop on this destination: what is older may be what
				// this backup depends on.
				res.Failed = append(res.Failed, fmt.Sprintf("%s on %s: %v", d.BackupID, name, err))
				break
			}
			res.Removed = append(res.Removed, out)
		}
		// Then what crashes left there, unless a removal failed: the sweep
		// would find that backup's remains, and they may be locked.
		if sweep && len(res.Failed) == failedBefore {
			var out activities.SweepOutput
			err := workflow.ExecuteActivity(longActivity(ctx, activities.StorageQueue), storageActs.SweepOrphans,
				activities.SweepInput{Database: req.Database, Destination: name, Before: now.Add(-grace), DryRun: req.DryRun}).Get(ctx, &out)
			if err != nil {
				res.Failed = append(res.Failed, fmt.Sprintf("orphans on %s: %v", name, err))
				continue
			}
			res.Swept = append(res.Swept, out)
		}
	}
	if len(res.Failed) > 0 {
		return res, temporal.NewApplicationError("cleanup incomplete: "+strings.Join(res.Failed, "; "), "CleanupFailed", res)
	}
	return res, nil
}

// CapacityRequest asks for the capacity report of one database, or of all
// ("").
type CapacityRequest struct {
	Database string `json:"database,omitempty"`
}

// CapacityWorkflow reports, per destination and database, what is stored,
// its growth per day, and the space the retention policy will need. It is
// a workflow so that clients need no storage credentials.
func CapacityWorkflow(ctx workflow.Context, req CapacityRequest) (activities.CapacityOutput, error) {
	var out activities.CapacityOutput
	// It lists and sizes every backup and simulates each policy: minutes on
	// a large repository, with nothing to heartbeat or resume.
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           activities.StorageQueue,
		StartToCloseTimeout: 30 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: nonRetryable},
	})
	err := workflow.ExecuteActivity(actx, storageActs.Capacity,
		activities.CapacityInput{Database: req.Database, Now: workflow.Now(ctx)}).Get(ctx, &out)
	return out, err
}

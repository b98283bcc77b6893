package workflows

import (
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/repository"
)

// ReplicateIDPrefix starts the ids of replication workflows: one per backup.
const ReplicateIDPrefix = "replicate/"

// ReplicateWorkflowID is the id of the replication of one backup.
func ReplicateWorkflowID(database, backupID string) string {
	return ReplicateIDPrefix + database + "/" + backupID
}

// ReplicateRequest asks for copies of a backup; To "" or empty means every
// destination other than the primary.
type ReplicateRequest struct {
	Database string   `json:"database"`
	BackupID string   `json:"backup_id"` // an id, "latest" or an RFC 3339 time
	To       []string `json:"to,omitempty"`
}

// ReplicateResult lists the verified copies and the destinations that
// failed, with why.
type ReplicateResult struct {
	BackupID string                       `json:"backup_id"`
	Copies   []activities.ReplicateOutput `json:"copies"`
	Failed   map[string]string            `json:"failed,omitempty"`
}

// ReplicateWorkflow copies a backup from the primary to the other
// destinations, all at once, each copy verified at its destination. One
// destination failing does not stop the others; the workflow fails at the
// end, naming every destination without a verified copy.
func ReplicateWorkflow(ctx workflow.Context, req ReplicateRequest) (ReplicateResult, error) {
	if err := repository.ValidateDatabaseName(req.Database); err != nil {
		return ReplicateResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeBadInput, nil)
	}
	id, err := resolve(ctx, req.Database, req.BackupID)
	if err != nil {
		return ReplicateResult{}, err
	}
	res := ReplicateResult{BackupID: id}
	var dests []activities.DestinationInfo
	if err := workflow.ExecuteActivity(shortActivity(ctx, activities.StorageQueue), storageActs.ListDestinations).Get(ctx, &dests); err != nil {
		return res, err
	}
	targets, err := pickDestinations(dests, req.To, false)
	if err != nil {
		return res, err
	}
	futures := make([]workflow.Future, len(targets))
	for i, to := range targets {
		futures[i] = workflow.ExecuteActivity(longActivity(ctx, activities.StorageQueue), storageActs.ReplicateBackup,
			activities.ReplicateInput{Database: req.Database, BackupID: id, To: to})
	}
	var failed []string
	for i, f := range futures {
		var out activities.ReplicateOutput
		if err := f.Get(ctx, &out); err != nil {
			if res.Failed == nil {
				res.Failed = map[string]string{}
			}
			res.Failed[targets[i]] = err.Error()
			failed = append(failed, fmt.Sprintf("%s: %v", targets[i], err))
			continue
		}
		res.Copies = append(res.Copies, out)
	}
	if len(failed) > 0 {
		return res, temporal.NewApplicationError(fmt.Sprintf("backup %s has no verified copy on %d destination(s): %s", id, len(failed), strings.Join(failed, "; ")), "ReplicationFailed", res)
	}
	return res, nil
}

// pickDestinations picks the named destinations (all of them when none is
// named), in configuration order, without repeats. Naming one that is not
// configured is bad input, and so is naming the primary when the operation
// is not for it (copies go from the primary to the others).
func pickDestinations(dests []activities.DestinationInfo, want []string, withPrimary bool) ([]string, error) {
	var names, eligible []string
	for _, d := range dests {
		names = append(names, d.Name)
		if withPrimary || d.Role != "primary" {
			eligible = append(eligible, d.Name)
		}
	}
	for _, w := range want {
		switch {
		case slices.Contains(eligible, w):
		case slices.Contains(names, w):
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("destination %q is the primary: backups are written there, not copied to it", w), activities.ErrTypeBadInput, nil)
		default:
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("destination %q is not configured (configured: %s)", w, strings.Join(names, ", ")), activities.ErrTypeBadInput, nil)
		}
	}
	if len(want) == 0 {
		return eligible, nil
	}
	var out []string
	for _, n := range eligible {
		if slices.Contains(want, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

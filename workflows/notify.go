package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/notify"
)

// sendEvent delivers an event through the Notify activity. A receiver that
// is down is retried with backoff for up to two hours (the event keeps its
// id, so a receiver that saw it already can drop the repeat); a refusal is
// final. Notifications never decide a workflow's outcome: the caller
// records the error and goes on.
func sendEvent(ctx workflow.Context, ev notify.Event) error {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              activities.StorageQueue,
		StartToCloseTimeout:    2 * time.Minute,
		ScheduleToCloseTimeout: 2 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        5 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        5 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeNotificationRejected},
		},
	})
	return workflow.ExecuteActivity(actx, storageActs.Notify, activities.NotifyInput{Event: ev}).Get(ctx, nil)
}

// eventID is unique to this run and what it reports, and the same on
// every retry and replay.
func eventID(ctx workflow.Context, what string) string {
	info := workflow.GetInfo(ctx)
	return info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID + "/" + what
}

package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/bulwark-dr/bulwark/notify"
)

// ErrTypeNotificationRejected: a channel refused an event for good (HTTP
// 4xx, SMTP 5xx, an invalid event); retrying the same event cannot help.
const ErrTypeNotificationRejected = "NotificationRejected"

// NotifyInput is one event, built by the workflow (so every retry sends
// the same event with the same idempotency key).
type NotifyInput struct {
	Event notify.Event `json:"event"`
}

// NotifyOutput names the channels the event went to.
type NotifyOutput struct {
	Channels []string `json:"channels"`
}

// Notify sends an event to the channels routed for its kind. A temporary
// failure of any channel fails the attempt and Temporal retries it; the
// receivers recognise a repeat by the event's id.
func (a *StorageActivities) Notify(ctx context.Context, in NotifyInput) (NotifyOutput, error) {
	if a.Notifier == nil {
		return NotifyOutput{}, nil
	}
	out := NotifyOutput{Channels: a.Notifier.Route(in.Event.Kind)}
	if err := a.Notifier.Send(ctx, in.Event); err != nil {
		if errors.Is(err, notify.ErrPermanent) {
			return out, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeNotificationRejected, err)
		}
		return out, err
	}
	return out, nil
}

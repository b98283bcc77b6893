package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/bulwark-dr/bulwark/activities"
)

// Cleanup sweeps each destination's orphans after its removals, with the
// cut-off its grace period gives (a dry run only counts them), and not on a
// destination where a removal failed: that backup's remains are not
// orphans of a crash.
func TestCleanupSweepsOrphansAfterRemovals(t *testing.T) {
	start := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	plan := func(dest string) activities.CleanupPlan {
		return activities.CleanupPlan{Destination: dest, Decisions: []activities.CleanupDecision{
			{BackupID: "20261105T020000.000Z-0000000d", Keep: true},
			{BackupID: "20261103T020000.000Z-0000000b", Keep: false},
		}}
	}
	run := func(req CleanupRequest, failForgetOn string) (CleanupResult, []string, error) {
		env := newEnv(t)
		env.SetStartTime(start)
		env.OnActivity("ListDestinations", mock.Anything).Return([]activities.DestinationInfo{{Name: "local", Role: "primary"}, {Name: "nas", Role: "secondary"}}, nil)
		env.OnActivity("PlanCleanup", mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CleanupInput) (activities.CleanupPlan, error) {
			return plan(in.Destination), nil
		})
		var calls []string
		env.OnActivity("ForgetBackup", mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ForgetInput) (activities.ForgetOutput, error) {
			calls = append(calls, "forget "+in.Destination)
			if in.Destination == failForgetOn {
				return activities.ForgetOutput{}, temporal.NewNonRetryableApplicationError("locked", activities.ErrTypeLocked, nil)
			}
			return activities.ForgetOutput{BackupID: in.BackupID}, nil
		})
		env.OnActivity("SweepOrphans", mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SweepInput) (activities.SweepOutput, error) {
			calls = append(calls, "sweep "+in.Destination+" before "+in.Before.Format(time.RFC3339)+map[bool]string{true: " (dry run)"}[in.DryRun])
			return activities.SweepOutput{Destination: in.Destination, Objects: 2}, nil
		})
		env.ExecuteWorkflow(CleanupWorkflow, req)
		var res CleanupResult
		err := env.GetWorkflowError()
		if err == nil {
			env.GetWorkflowResult(&res)
		}
		return res, calls, err
	}

	res, calls, err := run(CleanupRequest{Database: "finance"}, "")
	want := "forget local, sweep local before 2026-11-25T02:00:00Z, forget nas, sweep nas before 2026-11-25T02:00:00Z"
	if err != nil || strings.Join(calls, ", ") != want || len(res.Swept) != 2 {
		t.Fatalf("calls %q (want %q), swept %+v, err %v", strings.Join(calls, ", "), want, res.Swept, err)
	}
	_, calls, _ = run(CleanupRequest{Database: "finance", DryRun: true, OrphanGrace: time.Minute}, "")
	want = "sweep local before 2026-11-26T01:59:00Z (dry run), sweep nas before 2026-11-26T01:59:00Z (dry run)"
	if strings.Join(calls, ", ") != want {
		t.Fatalf("dry run calls %q, want %q", strings.Join(calls, ", "), want)
	}
	_, calls, err = run(CleanupRequest{Database: "finance"}, "local")
	want = "forget local, forget nas, sweep nas before 2026-11-25T02:00:00Z"
	if err == nil || strings.Join(calls, ", ") != want {
		t.Fatalf("with a failed removal: calls %q (want %q), err %v", strings.Join(calls, ", "), want, err)
	}
}

package integration

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bulwark-dr/bulwark/workflows"
)

// The strategy's SQLite rows of section 2.3 (the daily full runs Monday to
// Saturday: on Sunday the weekly full takes its 02:00 slot).
const seedSchedules = `timezone: Europe/London
schedules:
  - {name: finance-daily-full, database: finance, type: full, cron: "0 2 * * 1-6"}
  - {name: finance-noon-differential, database: finance, type: differential, cron: "0 12 * * *"}
  - {name: finance-weekly-full, database: finance, type: full, cron: "0 2 * * sun"}
  - {name: finance-monthly-full, database: finance, type: full, cron: "0 3 1 * *"}
`

// matching asks the server's own calendar engine when a schedule fires
// between from and to.
func matching(t *testing.T, c *cluster, id string, from, to time.Time) []time.Time {
	t.Helper()
	resp, err := c.client.WorkflowService().ListScheduleMatchingTimes(context.Background(), &workflowservice.ListScheduleMatchingTimesRequest{
		Namespace: "default", ScheduleId: id, StartTime: timestamppb.New(from), EndTime: timestamppb.New(to),
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for _, ts := range resp.GetStartTime() {
		out = append(out, ts.AsTime())
	}
	return out
}

func TestSchedulesApplyReconcilesAndFireTheSeedCalendar(t *testing.T) {
	c := newCluster(t, "")
	os.WriteFile(c.config, []byte(configFor(c.dir, seedSchedules)), 0o600)
	newFinance(t, c.dir, 0)
	c.startWorker()

	out := c.mustCLI("schedules", "apply")
	if strings.Count(out, "created") != 4 {
		t.Fatalf("first apply:\n%s", out)
	}
	// Applying the same config again changes nothing.
	out = c.mustCLI("schedules", "apply")
	if strings.Count(out, "unchanged") != 4 || strings.Contains(out, "created") || strings.Contains(out, "updated") || strings.Contains(out, "deleted") {
		t.Fatalf("second apply changed something:\n%s", out)
	}

	// A month of the calendar, as the server computes it: December 2026 in
	// London is UTC+0.
	london, _ := time.LoadLocation("Europe/London")
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, london)
	to := from.AddDate(0, 1, 0)
	var wantDaily, wantNoon, wantSunday []time.Time
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		if d.Weekday() == time.Sunday {
			wantSunday = append(wantSunday, d.Add(2*time.Hour))
		} else {
			wantDaily = append(wantDaily, d.Add(2*time.Hour))
		}
		wantNoon = append(wantNoon, d.Add(12*time.Hour))
	}
	for id, want := range map[string][]time.Time{
		"bulwark/finance-daily-full":        wantDaily,
		"bulwark/finance-noon-differential": wantNoon,
		"bulwark/finance-weekly-full":       wantSunday,
		"bulwark/finance-monthly-full":      {from.Add(3 * time.Hour)},
	} {
		got := matching(t, c, id, from, to)
		if len(got) != len(want) {
			t.Fatalf("%s fires %d times in December, want %d: %v", id, len(got), len(want), got)
		}
		for i := range got {
			if !got[i].Equal(want[i]) {
				t.Fatalf("%s fires at %v, want %v", id, got[i], want[i])
			}
		}
	}

	// Triggering a schedule runs the pipeline: backup, verify, cleanup.
	h := c.client.ScheduleClient().GetHandle(context.Background(), "bulwark/finance-daily-full")
	if err := h.Trigger(context.Background(), client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	var runID string
	waitFor(t, 30*time.Second, func() bool {
		d, err := h.Describe(context.Background())
		if err == nil && len(d.Info.RecentActions) > 0 {
			runID = d.Info.RecentActions[0].StartWorkflowResult.WorkflowID
		}
		return runID != ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var res workflows.PipelineResult
	if err := c.client.GetWorkflow(ctx, runID, "").Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Steps) != 2 || res.Steps[0].Name != "backup" || res.Steps[1].Name != "cleanup" || res.Backup == nil || res.Backup.Verify == nil || !res.Backup.Verify.OK {
		t.Fatalf("pipeline result %+v", res)
	}
	if ids := listed(t, c.dir); len(ids) != 1 || ids[0] != res.Backup.BackupID {
		t.Fatalf("listed %v", ids)
	}

	// list shows the next runs; a config change updates one schedule and
	// deletes the one no longer named.
	if out := c.mustCLI("schedules", "list"); !strings.Contains(out, "bulwark/finance-weekly-full") || !strings.Contains(out, "0 2 * * 0") {
		t.Fatalf("schedules list:\n%s", out)
	}
	changed := strings.Replace(seedSchedules, `cron: "0 12 * * *"`, `cron: "30 12 * * *"`, 1)
	changed = strings.Replace(changed, "  - {name: finance-monthly-full, database: finance, type: full, cron: \"0 3 1 * *\"}\n", "", 1)
	os.WriteFile(c.config, []byte(configFor(c.dir, changed)), 0o600)
	out = c.mustCLI("schedules", "apply")
	for _, want := range []string{"updated   bulwark/finance-noon-differential", "deleted   bulwark/finance-monthly-full", "unchanged bulwark/finance-daily-full"} {
		if !strings.Contains(out, want) {
			t.Fatalf("apply after a change lacks %q:\n%s", want, out)
		}
	}
	if got := matching(t, c, "bulwark/finance-noon-differential", from, from.AddDate(0, 0, 1)); len(got) != 1 || !got[0].Equal(from.Add(12*time.Hour+30*time.Minute)) {
		t.Fatalf("updated schedule fires at %v", got)
	}
	out = c.mustCLI("schedules", "apply")
	if strings.Contains(out, "updated") || strings.Contains(out, "deleted") || strings.Contains(out, "created") {
		t.Fatalf("apply after apply changed something:\n%s", out)
	}
}

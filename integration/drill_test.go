package integration

import (
	"os"
	"strings"
	"testing"

	"github.com/bulwark-dr/bulwark/workflows"
)

// A restore drill from the CLI: the newest backup restored to scratch,
// checked by SQLite and by the application's queries, recorded and listed;
// a query that finds nothing fails the drill; the configured drill becomes
// a schedule.
func TestRestoreDrills(t *testing.T) {
	c := newCluster(t, "")
	os.WriteFile(c.config, []byte(configFor(c.dir, `    drill:
      cron: "0 4 1 * *"
      queries:
        - SELECT count(*) FROM users
        - SELECT count(*) FROM expenses WHERE amount_pence > 0
`)), 0o600)
	live := newFinance(t, c.dir, 0)
	before := fileSum(t, live)
	c.startWorker()
	c.mustCLI("backup", "finance")

	out := c.mustCLI("drill", "finance")
	if !strings.Contains(out, "drill of finance PASSED") || !strings.Contains(out, "SELECT count(*) FROM users") {
		t.Fatalf("drill:\n%s", out)
	}
	replayHistory(t, c, workflows.DrillWorkflowID("finance"), "", "drill")
	out, errOut, code := c.cli("drill", "finance", "--query", "SELECT 'nobody at all' FROM users WHERE user_id < 0")
	if code == 0 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "nobody at all") {
		t.Fatalf("a drill whose query finds nothing (exit %d):\n%s\n%s", code, out, errOut)
	}
	list := c.mustCLI("drills", "finance")
	if strings.Count(list, "passed") != 1 || strings.Count(list, "FAILED") != 1 {
		t.Fatalf("drills:\n%s", list)
	}
	// Health at a glance names the failed drill, the newest backup is there.
	if out := c.mustCLI("status"); !strings.Contains(out, "last drill failed") || !strings.Contains(out, "primary") {
		t.Fatalf("status:\n%s", out)
	}
	if fileSum(t, live) != before {
		t.Fatal("a drill changed the live database")
	}
	if out := c.mustCLI("schedules", "apply"); !strings.Contains(out, "created   bulwark/drill-finance") {
		t.Fatalf("schedules apply:\n%s", out)
	}
}

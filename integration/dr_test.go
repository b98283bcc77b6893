package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-dr/bulwark/workflows"
)

// drStatus queries the runbook's status.
func drStatus(c *cluster, id string) (workflows.DRReport, bool) {
	var r workflows.DRReport
	v, err := c.client.QueryWorkflow(context.Background(), id, "", workflows.QueryDRStatus)
	return r, err == nil && v.Get(&r) == nil
}

// The corruption runbook end to end on the embedded server, with a damaged
// live database: the worker is killed and the server restarted while the
// runbook waits for approval, and it goes on from the same step. The report's
// RTO and RPO are measured from the run itself.
func TestDisasterRecoveryOfACorruptDatabase(t *testing.T) {
	c := newCluster(t, "")
	os.WriteFile(c.config, []byte(configFor(c.dir, "")), 0o600)
	live := newFinance(t, c.dir, 8<<20)
	w := c.startWorker()
	var backup workflows.BackupResult
	json.Unmarshal([]byte(c.mustCLI("backup", "finance", "--json")), &backup)

	// Corrupt the live file in the middle, as a disk would.
	f, err := os.OpenFile(live, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := f.Stat()
	f.WriteAt([]byte(strings.Repeat("\xde\xad\xbe\xef", 2048)), info.Size()/2/4096*4096)
	f.Close()

	out := c.mustCLI("dr", "start", "inc-1", "--scenario", "corruption")
	if !strings.Contains(out, "declared corruption (inc-1)") {
		t.Fatalf("dr start:\n%s", out)
	}
	id := workflows.DRWorkflowID("inc-1")
	waitFor(t, 60*time.Second, func() bool {
		r, ok := drStatus(c, id)
		return ok && r.Step == workflows.DRStepApproval && r.WaitingFor != ""
	})
	before, _ := drStatus(c, id)
	if len(before.Databases) != 1 || before.Databases[0].Before == nil || before.Databases[0].Before.Verdict != "damaged" || before.Databases[0].BackupID != backup.BackupID {
		t.Fatalf("assessment and restore point before approval: %+v", before.Databases)
	}

	// A crash of the worker and a restart of the server while it waits.
	w.kill()
	c.restartServer()
	c.startWorker()
	if out := c.mustCLI("dr", "status", "inc-1"); !strings.Contains(out, "waiting for") {
		t.Fatalf("status after the restarts:\n%s", out)
	}
	c.mustCLI("dr", "approve", "inc-1")
	waitFor(t, 90*time.Second, func() bool {
		r, ok := drStatus(c, id)
		return ok && r.Step == workflows.DRStepResume && r.WaitingFor != ""
	})
	c.mustCLI("dr", "resume", "inc-1")
	var rep workflows.DRReport
	json.Unmarshal([]byte(c.mustCLI("dr", "report", "inc-1", "--json")), &rep)
	if rep.Outcome != workflows.DROutcomeRecovered {
		t.Fatalf("outcome %q: %+v", rep.Outcome, rep)
	}
	d := rep.Databases[0]
	if d.After == nil || d.After.Verdict != "healthy" || d.EmergencyCopy == "" || hashOf(t, live) != backup.ImageHash {
		t.Fatalf("restored database %+v", d)
	}
	if _, err := os.Stat(d.EmergencyCopy); err != nil {
		t.Fatalf("the damaged file was not kept: %v", err)
	}
	// Measured, not estimated: declared → resumed, and declared − snapshot.
	if got := time.Duration(rep.RTOReached); got != rep.ResumedAt.Sub(rep.DeclaredAt) || got <= 0 || !rep.RTOMet {
		t.Fatalf("RTO reached %v, resumed %v after declaring", got, rep.ResumedAt.Sub(rep.DeclaredAt))
	}
	if got := time.Duration(d.DataLoss); got != rep.DeclaredAt.Sub(d.SnapshotAt) || got <= 0 || !rep.RPOMet {
		t.Fatalf("data lost %v, declared %v after the snapshot", got, rep.DeclaredAt.Sub(d.SnapshotAt))
	}
	if len(rep.Timeline) != 10 || rep.ApprovedBy == "" || rep.ResumedBy == "" {
		t.Fatalf("timeline %d steps, approved by %q, resumed by %q", len(rep.Timeline), rep.ApprovedBy, rep.ResumedBy)
	}
	if filepath.Dir(d.EmergencyCopy) != filepath.Dir(live) {
		t.Fatalf("emergency copy %s not next to %s", d.EmergencyCopy, live)
	}
	replayHistory(t, c, id, "", "dr-corruption")
}

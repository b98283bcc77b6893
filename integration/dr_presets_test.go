package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-dr/bulwark/destinations/destinationtest"
	"github.com/bulwark-dr/bulwark/workflows"
)

// The other scenario presets end to end on the embedded server, each with a
// live database that is damaged or gone: ransomware restores the newest
// verified backup before the anomaly from the write-once copy (S3 Object
// Lock on a real S3 protocol server on loopback), a hardware failure
// restores to a new path, a site disaster restores from the offsite copy.
func TestDisasterRecoveryPresets(t *testing.T) {
	s3 := destinationtest.StartS3(t)
	c := newCluster(t, "")
	os.WriteFile(c.config, []byte(fmt.Sprintf(`keeper: keyfile://%[1]s/keys/bulwark.key
host: e2e
destinations:
  - {name: local, url: %[1]s/backups, role: primary}
  - name: vault
    url: %[2]s
    role: tertiary
    object_lock: {mode: governance, period: 1d}
databases:
  - name: finance
    path: %[1]s/finance.db
`, c.dir, s3.URL)), 0o600)
	live := newFinance(t, c.dir, 0)
	c.startWorker()
	var backup workflows.BackupResult
	json.Unmarshal([]byte(c.mustCLI("backup", "finance", "--json")), &backup)
	if backup.Replication == nil || len(backup.Replication.Copies) != 1 {
		t.Fatalf("the backup was not copied to the vault: %+v", backup.Replication)
	}
	time.Sleep(1100 * time.Millisecond) // the anomaly comes strictly after the backup
	anomaly := time.Now().UTC().Truncate(time.Second)

	encrypt := func() { // what ransomware leaves behind
		data, _ := os.ReadFile(live)
		for i := range data {
			data[i] ^= 0x5a
		}
		os.WriteFile(live, data, 0o600)
	}
	newPath := filepath.Join(c.dir, "new-disk", "finance.db")
	for _, tc := range []struct {
		incident, scenario string
		damage             func()
		args               []string
		target, from       string
	}{
		{"ransom", workflows.ScenarioRansomware, encrypt, []string{"--from", "vault", "--anomaly-since", anomaly.Format(time.RFC3339)}, live, "vault"},
		{"disk", workflows.ScenarioHardwareFailure, func() { os.Remove(live) }, []string{"--target", "finance=" + newPath}, newPath, ""},
		{"site", workflows.ScenarioSiteDisaster, encrypt, []string{"--from", "vault"}, live, "vault"},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			tc.damage()
			c.mustCLI(append([]string{"dr", "start", tc.incident, "--scenario", tc.scenario}, tc.args...)...)
			id := workflows.DRWorkflowID(tc.incident)
			waitFor(t, 60*time.Second, func() bool {
				r, ok := drStatus(c, id)
				return ok && r.Step == workflows.DRStepApproval && r.WaitingFor != ""
			})
			c.mustCLI("dr", "approve", tc.incident)
			waitFor(t, 90*time.Second, func() bool {
				r, ok := drStatus(c, id)
				return ok && r.Step == workflows.DRStepResume && r.WaitingFor != ""
			})
			c.mustCLI("dr", "resume", tc.incident)
			var rep workflows.DRReport
			json.Unmarshal([]byte(c.mustCLI("dr", "report", tc.incident, "--json")), &rep)
			d := rep.Databases[0]
			if rep.Outcome != workflows.DROutcomeRecovered || d.BackupID != backup.BackupID || d.From != tc.from && !(tc.from == "" && d.From == "local") {
				t.Fatalf("report: outcome %q, backup %s from %q\n%s", rep.Outcome, d.BackupID, d.From, strings.Join(rep.Notes, "\n"))
			}
			if d.Target != tc.target || hashOf(t, tc.target) != backup.ImageHash || d.After == nil || d.After.Verdict != "healthy" {
				t.Fatalf("restored %+v", d)
			}
			if time.Duration(rep.RTOReached) != rep.ResumedAt.Sub(rep.DeclaredAt) || time.Duration(d.DataLoss) != rep.DeclaredAt.Sub(d.SnapshotAt) {
				t.Fatalf("RTO %v / RPO %v not measured from the run", time.Duration(rep.RTOReached), time.Duration(d.DataLoss))
			}
		})
	}
}

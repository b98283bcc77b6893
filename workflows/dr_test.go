package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/notify"
)

// declared is when every test's disaster is declared (the workflow's start).
var declared = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

// drBackup is one backup in the fake catalogue the storage mocks answer
// from: taken age before the declaration, verified or not, and copied (with
// a verified copy) to the listed destinations besides the primary.
type drBackup struct {
	age      time.Duration
	verified bool
	copies   []string
}

func (b drBackup) id(db string) string {
	return declared.Add(-b.age).UTC().Format("20060102T150405.000Z") + fmt.Sprintf("-%08x", len(db))
}

// drFixture mocks every activity of a disaster recovery and records the
// calls, in order.
type drFixture struct {
	env        *testsuite.TestWorkflowEnvironment
	catalogue  []drBackup // oldest first
	failRestor string     // database whose RestoreSQLite fails for good
	refuse     string     // events whose title contains it are refused

	mu        sync.Mutex
	assessed  []activities.AssessInput
	points    []activities.RestorePointInput
	restores  []activities.RestoreInput
	restoreQ  []string // task queue of each RestoreSQLite
	swaps     []activities.SwapInput
	discards  []activities.DiscardInput
	events    []notify.Event
	restored  map[string]bool // target paths swapped in
	newestHit int
}

func newDRFixture(t *testing.T) *drFixture {
	t.Helper()
	env := newEnv(t)
	env.RegisterWorkflow(DisasterRecoveryWorkflow)
	env.SetStartTime(declared)
	f := &drFixture{env: env, restored: map[string]bool{}, catalogue: []drBackup{
		{age: 50 * time.Hour, verified: true, copies: []string{"vault", "cloud"}},
		{age: 40 * time.Hour, verified: true, copies: []string{"vault", "cloud"}},
		{age: 32 * time.Hour, verified: false, copies: []string{"vault", "cloud"}},
		{age: 30 * time.Hour, verified: true, copies: []string{"vault", "cloud"}}, // exactly at the anomaly
		{age: 29 * time.Hour, verified: true, copies: []string{"vault", "cloud"}},
		{age: 6 * time.Hour, verified: true, copies: []string{"cloud"}},
		{age: 2 * time.Hour, verified: false},
	}}
	env.OnActivity("ListDestinations", mock.Anything).Return([]activities.DestinationInfo{
		{Name: "local", Role: "primary"}, {Name: "vault", Role: "secondary"}, {Name: "cloud", Role: "tertiary"},
	}, nil)
	env.OnActivity("AssessDatabase", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AssessInput) (activities.AssessOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.assessed = append(f.assessed, in)
			if in.Path == "" { // the live file: damaged
				return activities.AssessOutput{Path: "/data/" + in.Database + ".db", Exists: true, Verdict: activities.VerdictDamaged, Reason: "integrity_check: page 7 is never used"}, nil
			}
			if !f.restored[in.Path] {
				return activities.AssessOutput{Path: in.Path, Verdict: activities.VerdictMissing, Reason: "no file"}, nil
			}
			return activities.AssessOutput{Path: in.Path, Exists: true, Verdict: activities.VerdictHealthy, Integrity: "ok", ForeignKeys: "ok", Tables: 3, Rows: 1000}, nil
		})
	env.OnActivity("NewestVerified", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NewestVerifiedInput) (activities.NewestVerifiedOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.newestHit++
			for i := len(f.catalogue) - 1; i >= 0; i-- {
				if b := f.catalogue[i]; b.verified {
					return activities.NewestVerifiedOutput{BackupID: b.id(in.Database), SnapshotAt: declared.Add(-b.age)}, nil
				}
			}
			return activities.NewestVerifiedOutput{}, nil
		})
	env.OnActivity("FindRestorePoint", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RestorePointInput) (activities.RestorePointOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.points = append(f.points, in)
			out := activities.RestorePointOutput{Destination: in.From}
			if in.From == "vault" {
				out.LockMode = "compliance"
			}
			for i := len(f.catalogue) - 1; i >= 0; i-- {
				b := f.catalogue[i]
				at := declared.Add(-b.age)
				onDest := in.From == "" || in.From == "local"
				for _, c := range b.copies {
					onDest = onDest || c == in.From
				}
				switch {
				case !onDest:
				case !in.Before.IsZero() && !at.Before(in.Before):
					out.NotBefore++
				case !b.verified:
					out.Skipped = append(out.Skipped, b.id(in.Database)+": never verified")
				default:
					out.BackupID, out.SnapshotAt = b.id(in.Database), at
					return out, nil
				}
			}
			return out, nil
		})
	env.OnActivity("InspectRestoreTarget", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.TargetInput) (activities.TargetOutput, error) {
			if in.Target != "" { // a new path on new hardware
				return activities.TargetOutput{Target: in.Target}, nil
			}
			return activities.TargetOutput{Target: "/data/" + in.Database + ".db", Exists: true}, nil
		})
	env.OnActivity("RestoreSQLite", mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.RestoreInput) (activities.RestoreOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.restores = append(f.restores, in)
			f.restoreQ = append(f.restoreQ, activity.GetInfo(ctx).TaskQueue)
			if in.Database == f.failRestor {
				return activities.RestoreOutput{}, temporal.NewNonRetryableApplicationError("restore "+in.BackupID+": chunk 3 is damaged on every destination", activities.ErrTypeCorruptBackup, nil)
			}
			source := in.From
			if source == "" {
				source = "local"
			}
			return activities.RestoreOutput{TempPath: in.Target + ".bulwark-restore-" + in.BackupID, ImageBytes: 4096, ImageHash: "sha256:ab", Source: source}, nil
		})
	env.OnActivity("SwapInRestore", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SwapInput) (activities.SwapOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.swaps = append(f.swaps, in)
			f.restored[in.Target] = true
			if !strings.HasPrefix(in.EmergencyPath, in.Target+".emergency-") {
				return activities.SwapOutput{}, errors.New("bad emergency path " + in.EmergencyPath)
			}
			if strings.HasPrefix(in.Target, "/data/") { // an existing file is kept
				return activities.SwapOutput{EmergencyCopy: in.EmergencyPath}, nil
			}
			return activities.SwapOutput{}, nil
		})
	env.OnActivity("DiscardRestore", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DiscardInput) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.discards = append(f.discards, in)
			return nil
		})
	env.OnActivity("Notify", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NotifyInput) (activities.NotifyOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if err := in.Event.Validate(); err != nil {
				return activities.NotifyOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeNotificationRejected, nil)
			}
			if f.refuse != "" && strings.Contains(in.Event.Title, f.refuse) {
				return activities.NotifyOutput{}, temporal.NewNonRetryableApplicationError("webhook answered 403", activities.ErrTypeNotificationRejected, nil)
			}
			f.events = append(f.events, in.Event)
			return activities.NotifyOutput{Channels: []string{"ops"}}, nil
		})
	return f
}

// at sends a signal at a simulated time after the declaration.
func (f *drFixture) at(d time.Duration, signal string, sig DRSignal) {
	f.env.RegisterDelayedCallback(func() { f.env.SignalWorkflow(signal, sig) }, d)
}

func (f *drFixture) status(t *testing.T) DRReport {
	t.Helper()
	v, err := f.env.QueryWorkflow(QueryDRStatus)
	if err != nil {
		t.Fatal(err)
	}
	var st DRReport
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func (f *drFixture) report(t *testing.T) DRReport {
	t.Helper()
	if err := f.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var rep DRReport
	if err := f.env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// titles lists the titles of the events sent that contain s.
func (f *drFixture) titles(s string) []string {
	var out []string
	for _, e := range f.events {
		if strings.Contains(e.Title, s) {
			out = append(out, e.Title)
		}
	}
	return out
}

func (f *drFixture) restoreOrder() string {
	var names []string
	for _, in := range f.restores {
		names = append(names, in.Database)
	}
	return strings.Join(names, ",")
}

// Three databases given in the wrong order: the priority rule makes auth P1,
// finance P2 and reports P3.
func drDatabases(host string) []DRDatabase {
	return []DRDatabase{{Name: "reports", Host: host}, {Name: "finance", Host: host}, {Name: "auth", Host: host}}
}

// Every scenario preset, through all ten steps: the approve and resume
// signals come at simulated times, and the report measures the RTO from
// the declaration to the resume signal and the data lost from each restore
// point's snapshot time.
func TestDRScenarioPresetsRunEveryStep(t *testing.T) {
	cases := []struct {
		scenario        string
		req             DRRequest
		rto, rpo        time.Duration
		approve, resume time.Duration
		age             time.Duration // of the restore point chosen
		from            string        // the destination restores read first
		host            string        // the host the restores run on
		target          func(db string) string
	}{
		{scenario: ScenarioCorruption, rto: 2 * time.Hour, rpo: 24 * time.Hour, approve: 20 * time.Minute, resume: time.Hour,
			age: 6 * time.Hour, from: "local", host: "db1", target: func(db string) string { return "/data/" + db + ".db" }},
		{scenario: ScenarioHardwareFailure, rto: 4 * time.Hour, rpo: 24 * time.Hour, approve: 30 * time.Minute, resume: 2*time.Hour + 15*time.Minute,
			age: 6 * time.Hour, from: "local", host: "spare", target: func(db string) string { return "/mnt/new/" + db + ".db" }},
		{scenario: ScenarioRansomware, req: DRRequest{From: "vault", AnomalySince: declared.Add(-30 * time.Hour)},
			rto: 8 * time.Hour, rpo: 48 * time.Hour, approve: time.Hour, resume: 5 * time.Hour,
			age: 40 * time.Hour, from: "vault", host: "db1", target: func(db string) string { return "/data/" + db + ".db" }},
		{scenario: ScenarioSiteDisaster, req: DRRequest{From: "cloud"},
			rto: 24 * time.Hour, rpo: 24 * time.Hour, approve: 2 * time.Hour, resume: 10 * time.Hour,
			age: 6 * time.Hour, from: "cloud", host: "db1", target: func(db string) string { return "/data/" + db + ".db" }},
	}
	for _, c := range cases {
		t.Run(c.scenario, func(t *testing.T) {
			f := newDRFixture(t)
			req := c.req
			req.Incident, req.Scenario, req.DeclaredBy, req.Databases = "inc-42", c.scenario, "alice@ops", drDatabases("db1")
			if c.scenario == ScenarioHardwareFailure {
				for i := range req.Databases {
					req.Databases[i].TargetHost, req.Databases[i].TargetPath = "spare", c.target(req.Databases[i].Name)
				}
			}
			var waiting, resuming DRReport
			restoredBeforeApproval := -1
			f.env.RegisterDelayedCallback(func() {
				waiting = f.status(t)
				restoredBeforeApproval = len(f.restores)
			}, c.approve-time.Minute)
			f.env.RegisterDelayedCallback(func() { resuming = f.status(t) }, c.resume-time.Minute)
			f.at(c.approve, SignalApproveRestore, DRSignal{By: "bob@dr", Reason: "assessment reviewed"})
			f.at(c.resume, SignalResumeOperations, DRSignal{By: "carol@app"})
			f.env.ExecuteWorkflow(DisasterRecoveryWorkflow, req)
			rep := f.report(t)

			// The status while waiting for approval says so, and nothing
			// has been restored yet.
			if waiting.Step != DRStepApproval || !strings.Contains(waiting.WaitingFor, SignalApproveRestore) ||
				!strings.Contains(waiting.WaitingFor, SignalAbort) || len(waiting.Timeline) != 6 || waiting.Timeline[5].Outcome != "running" ||
				restoredBeforeApproval != 0 {
				t.Fatalf("status while awaiting approval: %+v (restores %d)", waiting, restoredBeforeApproval)
			}
			for _, s := range waiting.Timeline[:5] {
				if s.Outcome != "ok" || s.Ended.IsZero() {
					t.Fatalf("step before approval: %+v", s)
				}
			}
			if resuming.Step != DRStepResume || !strings.Contains(resuming.WaitingFor, SignalResumeOperations) || resuming.ApprovedBy != "bob@dr" {
				t.Fatalf("status while awaiting resume: %+v", resuming)
			}

			// The report.
			if rep.Outcome != DROutcomeRecovered || rep.Scenario != c.scenario || rep.DeclaredBy != "alice@ops" || !rep.DeclaredAt.Equal(declared) {
				t.Fatalf("report %+v", rep)
			}
			if time.Duration(rep.RTOObjective) != c.rto || time.Duration(rep.RPOObjective) != c.rpo || !rep.RTODeadline.Equal(declared.Add(c.rto)) {
				t.Fatalf("objectives %s %s, want the preset's %s %s", time.Duration(rep.RTOObjective), time.Duration(rep.RPOObjective), c.rto, c.rpo)
			}
			if time.Duration(rep.RTOReached) != c.resume || !rep.RTOMet || !rep.ResumedAt.Equal(declared.Add(c.resume)) || rep.ResumedBy != "carol@app" {
				t.Fatalf("RTO reached %s (met %v) resumed %s by %s, want %s", time.Duration(rep.RTOReached), rep.RTOMet, rep.ResumedAt, rep.ResumedBy, c.resume)
			}
			if rep.ApprovedBy != "bob@dr" || !rep.ApprovedAt.Equal(declared.Add(c.approve)) {
				t.Fatalf("approved by %q at %s", rep.ApprovedBy, rep.ApprovedAt)
			}
			if time.Duration(rep.RPOReached) != c.age || !rep.RPOMet {
				t.Fatalf("RPO reached %s (met %v), want %s", time.Duration(rep.RPOReached), rep.RPOMet, c.age)
			}
			if len(rep.Timeline) != 10 {
				t.Fatalf("timeline %+v", rep.Timeline)
			}
			for i, s := range rep.Timeline {
				if s.Number != i+1 || s.Outcome != "ok" || s.Started.IsZero() || s.Ended.Before(s.Started) {
					t.Fatalf("step %+v", s)
				}
			}
			if !rep.Timeline[5].Ended.Equal(declared.Add(c.approve)) || !rep.Timeline[8].Ended.Equal(declared.Add(c.resume)) {
				t.Fatalf("approval ended %s, resume ended %s", rep.Timeline[5].Ended, rep.Timeline[8].Ended)
			}

			// P1 before P2 before P3, each from the chosen point and source.
			if got := f.restoreOrder(); got != "auth,finance,reports" {
				t.Fatalf("restore order %s, want auth,finance,reports", got)
			}
			for i, in := range f.restores {
				wantFrom := c.req.From
				if in.From != wantFrom || in.Target != c.target(in.Database) || f.restoreQ[i] != activities.HostQueue(c.host) {
					t.Fatalf("restore %+v on %s, want from %q to %s on %s", in, f.restoreQ[i], wantFrom, c.target(in.Database), c.host)
				}
			}
			for i, d := range rep.Databases {
				want := []string{"auth", "finance", "reports"}[i]
				if d.Name != want || d.Priority != "P"+fmt.Sprint(i+1) || !d.PriorityRule || d.Status != DRVerified {
					t.Fatalf("database %d: %+v", i, d)
				}
				if !d.SnapshotAt.Equal(declared.Add(-c.age)) || time.Duration(d.DataLoss) != c.age || d.From != c.from {
					t.Fatalf("%s: snapshot %s data loss %s from %s, want %s old from %s", d.Name, d.SnapshotAt, time.Duration(d.DataLoss), d.From, c.age, c.from)
				}
				if d.Before == nil || d.Before.Verdict != activities.VerdictDamaged || d.After == nil || d.After.Verdict != activities.VerdictHealthy {
					t.Fatalf("%s: assessments %+v %+v", d.Name, d.Before, d.After)
				}
				if d.Target != c.target(d.Name) || (d.EmergencyCopy != "") != strings.HasPrefix(d.Target, "/data/") {
					t.Fatalf("%s: target %s emergency copy %q", d.Name, d.Target, d.EmergencyCopy)
				}
			}
			// The live files are assessed on their own host, the restored
			// ones where they were restored.
			for _, a := range f.assessed {
				if a.Path != "" && a.Path != c.target(a.Database) {
					t.Fatalf("assessed %+v", a)
				}
			}

			// Ransomware: the newest verified backup strictly before the
			// anomaly, on the locked destination.
			switch c.scenario {
			case ScenarioRansomware:
				for _, p := range f.points {
					if p.From != "vault" || !p.Before.Equal(c.req.AnomalySince) {
						t.Fatalf("restore point asked %+v", p)
					}
				}
				if d := rep.Databases[0]; d.LockMode != "compliance" || !strings.Contains(d.PointNote, "2 newer backup(s) taken at or after 2026-11-24T21:00:00Z") || !strings.Contains(d.PointNote, "never verified") {
					t.Fatalf("ransomware restore point %+v", d)
				}
			case ScenarioSiteDisaster:
				if len(f.points) != 3 || f.points[0].From != "cloud" || !f.points[0].Before.Equal(declared) {
					t.Fatalf("restore points asked %+v", f.points)
				}
			default:
				if f.newestHit != 3 || len(f.points) != 0 {
					t.Fatalf("NewestVerified called %d times, FindRestorePoint %d", f.newestHit, len(f.points))
				}
			}

			// One dr_step event per step, plus the two waits; no RTO alert.
			ids := map[string]bool{}
			for _, e := range f.events {
				if e.Kind != notify.KindDRStep || ids[e.ID] {
					t.Fatalf("event %+v", e)
				}
				ids[e.ID] = true
			}
			if len(f.events) != 12 || rep.NotificationsSent != 12 || rep.NotificationsFailed != 0 || len(f.titles("RTO")) != 0 {
				t.Fatalf("%d events, report %d sent %d failed: %v", len(f.events), rep.NotificationsSent, rep.NotificationsFailed, f.titles(""))
			}
			if len(f.titles("disaster declared")) != 1 || len(f.titles("approval needed")) != 1 {
				t.Fatalf("events %v", f.titles(""))
			}
		})
	}
}

// Approval that comes after 75% of the RTO raises one "RTO at risk" alert;
// operations resumed after the deadline raise one "RTO missed" as well.
func TestDRAlertsOnceWhenRTOAtRiskAndWhenMissed(t *testing.T) {
	for _, c := range []struct {
		name           string
		resume         time.Duration
		missed, rtoMet bool
	}{
		{"resumed in time", 110 * time.Minute, false, true},
		{"resumed late", 150 * time.Minute, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newDRFixture(t)
			f.at(100*time.Minute, SignalApproveRestore, DRSignal{By: "bob@dr"}) // 75% of 2h is 90m
			f.at(c.resume, SignalResumeOperations, DRSignal{By: "carol@app"})
			f.env.ExecuteWorkflow(DisasterRecoveryWorkflow, DRRequest{Scenario: ScenarioCorruption, DeclaredBy: "alice", Databases: drDatabases("db1")})
			rep := f.report(t)
			atRisk, missed := f.titles("RTO at risk"), f.titles("RTO missed")
			if len(atRisk) != 1 || (len(missed) == 1) != c.missed || len(missed) > 1 {
				t.Fatalf("at risk %v, missed %v", atRisk, missed)
			}
			for _, e := range f.events {
				if strings.Contains(e.Title, "RTO at risk") && (e.Severity != notify.SeverityCritical || !e.At.Equal(declared.Add(90*time.Minute)) ||
					!strings.Contains(e.Text, DRStepApproval)) {
					t.Fatalf("at-risk event %+v", e)
				}
			}
			if !rep.RTOAtRisk || rep.RTOMissed != c.missed || rep.RTOMet != c.rtoMet || time.Duration(rep.RTOReached) != c.resume {
				t.Fatalf("report: at risk %v missed %v met %v reached %s", rep.RTOAtRisk, rep.RTOMissed, rep.RTOMet, time.Duration(rep.RTOReached))
			}
		})
	}
}

// An abort at the approval gate ends the run cleanly: nothing is restored,
// the report says who aborted, and the later steps are skipped.
func TestDRAbortAtApprovalEndsWithReport(t *testing.T) {
	f := newDRFixture(t)
	f.at(30*time.Minute, SignalAbort, DRSignal{By: "bob@dr", Reason: "false alarm: the disk came back"})
	f.env.ExecuteWorkflow(DisasterRecoveryWorkflow, DRRequest{Scenario: ScenarioHardwareFailure, DeclaredBy: "alice", Databases: drDatabases("db1")})
	rep := f.report(t)
	if rep.Outcome != DROutcomeAborted || rep.AbortedBy != "bob@dr" || !strings.Contains(rep.AbortReason, "false alarm") || rep.RTOMet || rep.ApprovedBy != "" {
		t.Fatalf("report %+v", rep)
	}
	if len(f.restores) != 0 || len(f.swaps) != 0 {
		t.Fatalf("restored %v after an abort", f.restores)
	}
	var outcomes []string
	for _, s := range rep.Timeline {
		outcomes = append(outcomes, s.Outcome)
	}
	if strings.Join(outcomes, ",") != "ok,ok,ok,ok,ok,aborted,skipped,skipped,skipped,ok" {
		t.Fatalf("timeline outcomes %v", outcomes)
	}
	for _, d := range rep.Databases {
		if d.Status != DRReady || d.BackupID == "" {
			t.Fatalf("database %+v", d)
		}
	}
}

// A restore that fails for one database discards its staged file and is in
// the report; the others are restored and the run goes on.
func TestDRFailedRestoreOfOneDatabaseIsDiscardedAndReported(t *testing.T) {
	f := newDRFixture(t)
	f.failRestor = "finance"
	f.at(10*time.Minute, SignalApproveRestore, DRSignal{By: "bob@dr"})
	f.at(time.Hour, SignalResumeOperations, DRSignal{By: "carol@app"})
	f.env.ExecuteWorkflow(DisasterRecoveryWorkflow, DRRequest{Scenario: ScenarioCorruption, DeclaredBy: "alice", Databases: drDatabases("db1")})
	rep := f.report(t)
	if got := f.restoreOrder(); got != "auth,finance,reports" {
		t.Fatalf("restore order %s", got)
	}
	if len(f.discards) != 1 || f.discards[0].Target != "/data/finance.db" || f.discards[0].BackupID != rep.Databases[1].BackupID {
		t.Fatalf("discards %+v", f.discards)
	}
	for _, s := range f.swaps {
		if s.Target == "/data/finance.db" {
			t.Fatal("swapped in a failed restore")
		}
	}
	fin := rep.Databases[1]
	if fin.Name != "finance" || fin.Status != DRRestoreFailed || !fin.Discarded || !strings.Contains(fin.Error, "damaged on every destination") || fin.After != nil {
		t.Fatalf("finance %+v", fin)
	}
	if rep.Databases[0].Status != DRVerified || rep.Databases[2].Status != DRVerified {
		t.Fatalf("others %+v", rep.Databases)
	}
	if rep.Outcome != DROutcomePartial || rep.Timeline[6].Outcome != "partial" || !strings.Contains(rep.Timeline[6].Detail, "finance FAILED") {
		t.Fatalf("outcome %s, restore step %+v", rep.Outcome, rep.Timeline[6])
	}
	if len(f.titles("step 7, restore: partial")) != 1 {
		t.Fatalf("events %v", f.titles(""))
	}
}

// An approval that names nobody, or skips a database the run does not know,
// is noted and ignored; a good one may leave databases alone.
func TestDRApprovalMustNameApproverAndKnownDatabases(t *testing.T) {
	f := newDRFixture(t)
	f.at(10*time.Minute, SignalApproveRestore, DRSignal{})
	f.at(20*time.Minute, SignalApproveRestore, DRSignal{By: "bob@dr", Skip: []string{"payroll"}})
	f.at(30*time.Minute, SignalApproveRestore, DRSignal{By: "bob@dr", Skip: []string{"reports"}})
	f.at(time.Hour, SignalResumeOperations, DRSignal{By: "carol@app"})
	f.env.ExecuteWorkflow(DisasterRecoveryWorkflow, DRRequest{Scenario: ScenarioCorruption, DeclaredBy: "alice", Databases: drDatabases("db1")})
	rep := f.report(t)
	if len(rep.Notes) != 2 || !strings.Contains(rep.Notes[0], "who approves") || !strings.Contains(rep.Notes[1], `"payroll"`) {
		t.Fatalf("notes %v", rep.Notes)
	}
	if !rep.ApprovedAt.Equal(declared.Add(30*time.Minute)) || f.restoreOrder() != "auth,finance" || rep.Databases[2].Status != DRSkipped {
		t.Fatalf("approved at %s, restored %s, reports %+v", rep.ApprovedAt, f.restoreOrder(), rep.Databases[2])
	}
	if rep.Outcome != DROutcomeRecovered {
		t.Fatalf("outcome %s", rep.Outcome)
	}
}

// With no verified backup for any database there is nothing to approve:
// the run fails at once with the report in the error's details.
func TestDRWithoutRestorePointFails(t *testing.T) {
	f := newDRFixture(t)
	f.catalogue = nil
	f.env.ExecuteWorkflow(DisasterRecoveryWorkflow, DRRequest{Scenario: ScenarioCorruption, DeclaredBy: "alice", Databases: drDatabases("db1")})
	var app *temporal.ApplicationError
	if err := f.env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != ErrTypeDRFailed {
		t.Fatalf("got %v", err)
	}
	var rep DRReport
	if err := app.Details(&rep); err != nil {
		t.Fatal(err)
	}
	if rep.Outcome != DROutcomeFailed || rep.Databases[0].Status != DRNoRestorePoint || len(rep.Timeline) != 10 || rep.Timeline[5].Outcome != "skipped" {
		t.Fatalf("report %+v", rep)
	}
}

func TestDRRejectsBadRequests(t *testing.T) {
	good := func() DRRequest {
		return DRRequest{Scenario: ScenarioRansomware, DeclaredBy: "alice", From: "vault", Databases: drDatabases("db1")}
	}
	cases := map[string]func(*DRRequest){
		"unknown scenario":        func(r *DRRequest) { r.Scenario = "flood" },
		"ransomware without from": func(r *DRRequest) { r.From = "" },
		"unknown destination":     func(r *DRRequest) { r.From = "tape" },
		"nobody declares":         func(r *DRRequest) { r.DeclaredBy = " " },
		"no databases":            func(r *DRRequest) { r.Databases = nil },
		"database twice":          func(r *DRRequest) { r.Databases = append(r.Databases, DRDatabase{Name: "auth", Host: "db2"}) },
		"bad priority":            func(r *DRRequest) { r.Databases[0].Priority = "urgent" },
		"relative target":         func(r *DRRequest) { r.Databases[0].TargetPath = "new/reports.db" },
		"no host":                 func(r *DRRequest) { r.Databases[0].Host = "" },
		"anomaly in the future":   func(r *DRRequest) { r.AnomalySince = declared.Add(time.Hour) },
	}
	for name, change := range cases {
		f := newDRFixture(t)
		req := good()
		change(&req)
		f.env.ExecuteWorkflow(DisasterRecoveryWorkflow, req)
		var app *temporal.ApplicationError
		if err := f.env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != activities.ErrTypeBadInput {
			t.Errorf("%s: got %v", name, err)
		}
		if len(f.events) != 0 || len(f.restores) != 0 {
			t.Errorf("%s: acted on a bad request", name)
		}
	}
}

func TestDefaultPriority(t *testing.T) {
	for name, want := range map[string]string{
		"auth": PriorityP1, "users": PriorityP1, "core": PriorityP1,
		"finance": PriorityP2, "history": PriorityP2,
		"reports": PriorityP3, "audit_log": PriorityP3, "user_analytics": PriorityP3,
	} {
		if got := DefaultPriority(name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

// A backup the schedule took after the declaration (of the damaged file)
// is never the restore point: the newest verified one before it is.
func TestDRNeverRestoresBackupTakenAfterDeclaration(t *testing.T) {
	f := newDRFixture(t)
	f.catalogue = append(f.catalogue, drBackup{age: -10 * time.Minute, verified: true})
	f.at(10*time.Minute, SignalApproveRestore, DRSignal{By: "bob@dr"})
	f.at(time.Hour, SignalResumeOperations, DRSignal{By: "carol@app"})
	f.env.ExecuteWorkflow(DisasterRecoveryWorkflow, DRRequest{Scenario: ScenarioCorruption, DeclaredBy: "alice", Databases: []DRDatabase{{Name: "finance", Host: "db1"}}})
	rep := f.report(t)
	d := rep.Databases[0]
	if !d.SnapshotAt.Equal(declared.Add(-6*time.Hour)) || time.Duration(d.DataLoss) != 6*time.Hour || d.From != "local" {
		t.Fatalf("restore point %+v", d)
	}
	if len(f.points) != 1 || !f.points[0].Before.Equal(declared) || f.points[0].From != "" {
		t.Fatalf("restore points asked %+v", f.points)
	}
}

// A notification the receiver refuses is in the report; the recovery goes on.
func TestDRFailedNotificationIsRecordedNotFatal(t *testing.T) {
	f := newDRFixture(t)
	f.refuse = "disaster declared"
	f.at(10*time.Minute, SignalApproveRestore, DRSignal{By: "bob@dr"})
	f.at(time.Hour, SignalResumeOperations, DRSignal{By: "carol@app"})
	f.env.ExecuteWorkflow(DisasterRecoveryWorkflow, DRRequest{Scenario: ScenarioCorruption, DeclaredBy: "alice", Databases: drDatabases("db1")})
	rep := f.report(t)
	if rep.Outcome != DROutcomeRecovered || rep.NotificationsFailed != 1 || rep.NotificationsSent != 11 {
		t.Fatalf("outcome %s, %d sent, %d failed", rep.Outcome, rep.NotificationsSent, rep.NotificationsFailed)
	}
	for _, n := range rep.Notifications {
		if strings.Contains(n.Title, "disaster declared") != (n.Status == "failed") || (n.Status == "failed" && !strings.Contains(n.Error, "403")) {
			t.Fatalf("notification %+v", n)
		}
	}
}

// Cancelling the run while it waits for approval changes nothing.
func TestDRCancelledWhileAwaitingApproval(t *testing.T) {
	f := newDRFixture(t)
	f.env.RegisterDelayedCallback(f.env.CancelWorkflow, 30*time.Minute)
	f.env.ExecuteWorkflow(DisasterRecoveryWorkflow, DRRequest{Scenario: ScenarioCorruption, DeclaredBy: "alice", Databases: drDatabases("db1")})
	if err := f.env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("got %v, want cancellation", err)
	}
	if len(f.restores) != 0 || len(f.swaps) != 0 {
		t.Fatalf("restored %v", f.restores)
	}
}

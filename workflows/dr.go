package workflows

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/notify"
	"github.com/bulwark-dr/bulwark/repository"
)

// The disaster recovery plan of the backup and recovery strategy (section 6)
// as one durable workflow. Its steps, with the strategy's in brackets:
//
//  1. declare (1. Declare Disaster) — validate the request, record the time
//  2. notify contacts (2. Activate DR Team) — a dr_step event
//  3. assess damage (3. Assess Damage) — AssessDatabase on each host
//  4. choose restore point — the newest verified backup, before the anomaly
//  5. prepare target (4. Prepare DR Site) — InspectRestoreTarget
//  6. approval — wait for the approve-restore (or abort) signal
//  7. restore (5. Restore Databases) — in priority order, P1 first
//  8. verify integrity (6. Verify Integrity) — AssessDatabase on the restored files
//  9. resume operations (7. Resume Operations) — wait for resume-operations
//  10. post-incident report (8. Post-DR Analysis) — the workflow's result
//
// Alongside the steps an RTO watch warns once when 75% of the RTO has gone
// by and once when it has passed, until operations resume.

// DRIDPrefix starts the workflow id of a disaster recovery.
const DRIDPrefix = "dr/"

// DRWorkflowID is the id of the disaster recovery of one incident: its name,
// or the time it was declared (such as 20261126T0300Z). A second start for
// the same incident finds the running one.
func DRWorkflowID(incident string) string { return DRIDPrefix + incident }

// Signal and query names of DisasterRecoveryWorkflow. Every signal carries a
// DRSignal.
const (
	SignalApproveRestore   = "approve-restore"
	SignalAbort            = "abort"
	SignalResumeOperations = "resume-operations"
	QueryDRStatus          = "dr-status"
)

// Disaster scenarios (strategy section 6.1).
const (
	ScenarioCorruption      = "corruption"
	ScenarioHardwareFailure = "hardware_failure"
	ScenarioRansomware      = "ransomware"
	ScenarioSiteDisaster    = "site_disaster"
)

// Recovery priorities (strategy section 6.2): P1 databases are restored
// first.
const (
	PriorityP1 = "P1"
	PriorityP2 = "P2"
	PriorityP3 = "P3"
)

// DRPreset returns a scenario's recovery time and recovery point objectives
// and whether its restores must read from a named destination (ransomware:
// a copy under a write-once lock; site disaster: the offsite copy). ok is
// false for an unknown scenario.
func DRPreset(scenario string) (rto, rpo time.Duration, needsFrom, ok bool) {
	switch scenario {
	case ScenarioCorruption:
		return 2 * time.Hour, 24 * time.Hour, false, true
	case ScenarioHardwareFailure:
		return 4 * time.Hour, 24 * time.Hour, false, true
	case ScenarioRansomware:
		return 8 * time.Hour, 48 * time.Hour, true, true
	case ScenarioSiteDisaster:
		return 24 * time.Hour, 24 * time.Hour, true, true
	}
	return 0, 0, false, false
}

// DefaultPriority is the priority of a database the request gives none,
// from its name and the strategy's table: reports, analytics, audit and
// logs are P3; authentication, users, accounts and core data are P1;
// everything else is P2.
func DefaultPriority(name string) string {
	for _, w := range []string{"report", "analytic", "audit", "log", "metric", "stat"} {
		if strings.Contains(name, w) {
			return PriorityP3
		}
	}
	for _, w := range []string{"auth", "user", "account", "login", "session", "core"} {
		if strings.Contains(name, w) {
			return PriorityP1
		}
	}
	return PriorityP2
}

// DRDatabase is one database affected by the disaster.
type DRDatabase struct {
	Name string `json:"name"`
	// Host is where the database lives (and is assessed).
	Host string `json:"host"`
	// Priority is P1, P2 or P3; "" applies DefaultPriority.
	Priority string `json:"priority,omitempty"`
	// TargetHost and TargetPath send the restore elsewhere (new hardware
	// after a hardware failure, a cloud host after a site disaster).
	// "" is the database's host and its configured path there; a path
	// must be absolute.
	TargetHost string `json:"target_host,omitempty"`
	TargetPath string `json:"target_path,omitempty"`
	// Engine is "" (SQLite) or oracle: an Oracle schema is assessed over
	// SQL and restored in place from its logical backup, after a verified
	// emergency copy of what is there (OracleRestoreWorkflow).
	Engine string `json:"engine,omitempty"`
}

// DRRequest declares a disaster.
type DRRequest struct {
	// Incident names the incident in notifications and the report.
	Incident   string       `json:"incident,omitempty"`
	Scenario   string       `json:"scenario"`
	Databases  []DRDatabase `json:"databases"`
	DeclaredBy string       `json:"declared_by"`
	// AnomalySince is when the attack or corruption began: the restore
	// point is the newest verified backup taken strictly before it.
	AnomalySince time.Time `json:"anomaly_since,omitzero"`
	// From is the destination restores read first; required for
	// ransomware (a destination with a write-once lock) and site_disaster
	// (the offsite destination). "" is the primary.
	From string `json:"from,omitempty"`
	// RTO and RPO are the objectives; 0 takes the scenario's preset.
	RTO time.Duration `json:"rto,omitempty"`
	RPO time.Duration `json:"rpo,omitempty"`
	// HostTimeout bounds the wait for a host's worker to take a check or a
	// restore (a host lost with the disaster never will); 0 is 5 minutes.
	HostTimeout time.Duration `json:"host_timeout,omitempty"`
}

// DRSignal is the payload of the approve-restore, abort and
// resume-operations signals.
type DRSignal struct {
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
	// Skip (approve-restore only) names databases not to restore, such as
	// ones the assessment found healthy.
	Skip []string `json:"skip,omitempty"`
}

// DRStep is one step of the runbook in the timeline.
type DRStep struct {
	Number  int       `json:"number"`
	Name    string    `json:"name"`
	Started time.Time `json:"started,omitzero"` // zero for a skipped step
	Ended   time.Time `json:"ended,omitzero"`
	// Outcome is running, ok, partial, failed, skipped or aborted.
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// Database states in a DRDatabaseReport.
const (
	DRPending            = "pending"
	DRNoRestorePoint     = "no restore point"
	DRReady              = "ready"
	DRSkipped            = "skipped by approver"
	DRRestored           = "restored"
	DRRestoreFailed      = "restore failed"
	DRVerified           = "verified"
	DRVerificationFailed = "verification failed"
	DRNotRestored        = "not restored (aborted)"
)

// Verdicts of an assessment besides AssessDatabase's own: the host did not
// answer in time, or the check failed (the host does not know the
// database, say).
const (
	VerdictUnreachable = "unreachable"
	VerdictUnknown     = "unknown"
)

// DRDatabaseReport is what happened to one database.
type DRDatabaseReport struct {
	Name         string `json:"name"`
	Host         string `json:"host"`
	Engine       string `json:"engine,omitempty"`
	Priority     string `json:"priority"`
	PriorityRule bool   `json:"priority_by_rule,omitempty"` // from DefaultPriority
	Status       string `json:"status"`
	Error        string `json:"error,omitempty"`
	// Before and After are the assessments of the live file and of the
	// restored one.
	Before *activities.AssessOutput `json:"before,omitempty"`
	After  *activities.AssessOutput `json:"after,omitempty"`
	// The restore point and the data lost: declared time − snapshot time.
	BackupID     string              `json:"backup_id,omitempty"`
	SnapshotAt   time.Time           `json:"snapshot_at,omitzero"`
	From         string              `json:"from,omitempty"` // destination read first
	LockMode     string              `json:"lock_mode,omitempty"`
	PointNote    string              `json:"restore_point_note,omitempty"`
	DataLoss     activities.Duration `json:"data_loss"`
	TargetHost   string              `json:"target_host"`
	TargetPath   string              `json:"target_path,omitempty"` // as requested
	Target       string              `json:"target,omitempty"`      // resolved on the target host
	TargetExists bool                `json:"target_existed"`
	TargetNote   string              `json:"target_note,omitempty"`
	ImageBytes   int64               `json:"image_bytes,omitempty"`
	ImageHash    string              `json:"image_hash,omitempty"`
	Healed       []string            `json:"healed,omitempty"`
	// EmergencyCopy is where the replaced file was kept.
	EmergencyCopy string    `json:"emergency_copy,omitempty"`
	Discarded     bool      `json:"staged_file_discarded,omitempty"`
	RestoredAt    time.Time `json:"restored_at,omitzero"`
}

// DRNotification is one event sent (or not) to the DR contacts.
type DRNotification struct {
	Title    string    `json:"title"`
	Severity string    `json:"severity"`
	At       time.Time `json:"at"`
	// Status is pending, sent or failed.
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Outcomes of a disaster recovery.
const (
	DROutcomeRecovered = "recovered"
	DROutcomePartial   = "partially recovered"
	DROutcomeAborted   = "aborted"
	DROutcomeFailed    = "failed"
)

// ErrTypeDRFailed is the error type of a disaster recovery that restored
// nothing; its details hold the DRReport.
const ErrTypeDRFailed = "DisasterRecoveryFailed"

// DRReport is the status of a disaster recovery while it runs (the
// dr-status query) and its post-incident report when it ends.
type DRReport struct {
	Incident     string    `json:"incident,omitempty"`
	Scenario     string    `json:"scenario"`
	DeclaredBy   string    `json:"declared_by"`
	DeclaredAt   time.Time `json:"declared_at"`
	AnomalySince time.Time `json:"anomaly_since,omitzero"`
	From         string    `json:"from,omitempty"`
	// Step is the step running now; WaitingFor says what it waits for.
	Step       string `json:"step"`
	WaitingFor string `json:"waiting_for,omitempty"`
	// Outcome is empty until the run ends.
	Outcome   string             `json:"outcome,omitempty"`
	Timeline  []DRStep           `json:"timeline"`
	Databases []DRDatabaseReport `json:"databases"`
	// RTOReached is the time from declaration to the resume-operations
	// signal, in workflow time; 0 until then.
	RTOObjective activities.Duration `json:"rto_objective"`
	RTODeadline  time.Time           `json:"rto_deadline"`
	RTOReached   activities.Duration `json:"rto_reached"`
	RTOMet       bool                `json:"rto_met"`
	RTOAtRisk    bool                `json:"rto_at_risk_alerted,omitempty"`
	RTOMissed    bool                `json:"rto_missed_alerted,omitempty"`
	// RPOReached is the largest data-loss window of a restored database.
	RPOObjective activities.Duration `json:"rpo_objective"`
	RPOReached   activities.Duration `json:"rpo_reached"`
	RPOMet       bool                `json:"rpo_met"`
	ApprovedBy   string              `json:"approved_by,omitempty"`
	ApprovedAt   time.Time           `json:"approved_at,omitzero"`
	ResumedBy    string              `json:"resumed_by,omitempty"`
	ResumedAt    time.Time           `json:"resumed_at,omitzero"`
	AbortedBy    string              `json:"aborted_by,omitempty"`
	AbortReason  string              `json:"abort_reason,omitempty"`
	// Notes are signals ignored and objectives exceeded, in order.
	Notes               []string         `json:"notes,omitempty"`
	NotificationsSent   int              `json:"notifications_sent"`
	NotificationsFailed int              `json:"notifications_failed"`
	Notifications       []DRNotification `json:"notifications"`
	Finished            time.Time        `json:"finished,omitzero"`
}

// Step names, in order.
const (
	DRStepDeclare      = "declare"
	DRStepNotify       = "notify contacts"
	DRStepAssess       = "assess damage"
	DRStepRestorePoint = "choose restore point"
	DRStepPrepare      = "prepare target"
	DRStepApproval     = "approval"
	DRStepRestore      = "restore"
	DRStepVerify       = "verify integrity"
	DRStepResume       = "resume operations"
	DRStepReport       = "post-incident report"
)

const (
	// drDefaultHostWait bounds the wait for a host's worker to take a task.
	drDefaultHostWait = 5 * time.Minute
	// drNotificationGrace bounds the wait, at the end, for notifications
	// still being delivered.
	drNotificationGrace = 15 * time.Minute
)

// DisasterRecoveryWorkflow runs the disaster recovery plan for the databases
// of a request: it assesses them, picks each one's restore point, waits for
// a human to approve, restores them in priority order (keeping every
// replaced file as an emergency copy), checks the restored files, and waits
// for operations to resume. Every step is in the timeline and sent to the
// DR contacts as a dr_step event; a notification that fails is recorded and
// never stops the recovery. The report is the result (an abort is a result
// too); a run that could restore nothing fails with ErrTypeDRFailed and the
// report in its details.
func DisasterRecoveryWorkflow(ctx workflow.Context, req DRRequest) (DRReport, error) {
	r := &drRun{ctx: ctx, req: req, rep: &DRReport{
		Incident: req.Incident, Scenario: req.Scenario, DeclaredBy: req.DeclaredBy,
		AnomalySince: req.AnomalySince, From: req.From, Step: DRStepDeclare,
		Timeline: []DRStep{}, Databases: []DRDatabaseReport{}, Notifications: []DRNotification{},
	}}
	if err := workflow.SetQueryHandler(ctx, QueryDRStatus, func() (DRReport, error) { return *r.rep, nil }); err != nil {
		return DRReport{}, err
	}
	return r.run()
}

type drRun struct {
	ctx      workflow.Context
	req      DRRequest
	rep      *DRReport
	hostWait time.Duration
	primary  string
	pending  int  // notifications in flight
	resumed  bool // operations resumed, or the run is over: the RTO watch stops
}

func (r *drRun) run() (DRReport, error) {
	ctx, rep := r.ctx, r.rep

	// 1. Declare.
	s := r.begin(DRStepDeclare)
	rep.DeclaredAt = workflow.Now(ctx)
	// The disaster was declared when the runbook was started, which can be
	// long before a worker first runs it (no worker up, a server restarted
	// under it): the RTO clock and the data-loss window start then.
	if workflow.GetVersion(ctx, "dr-declared-at-start", workflow.DefaultVersion, 1) == 1 {
		rep.DeclaredAt = workflow.GetInfo(ctx).WorkflowStartTime
		rep.Timeline[s].Started = rep.DeclaredAt
	}
	rto, rpo, err := r.validate()
	if err != nil {
		return DRReport{}, err
	}
	rep.RTOObjective, rep.RPOObjective = activities.Duration(rto), activities.Duration(rpo)
	rep.RTODeadline = rep.DeclaredAt.Add(rto)
	var dests []activities.DestinationInfo
	if err := workflow.ExecuteActivity(shortActivity(ctx, activities.StorageQueue), storageActs.ListDestinations).Get(ctx, &dests); err != nil {
		return DRReport{}, err
	}
	if err := r.checkFrom(dests); err != nil {
		return DRReport{}, err
	}
	r.end(s, "ok", fmt.Sprintf("%s declared by %s for %d database(s); RTO %s (deadline %s), RPO %s",
		rep.Scenario, rep.DeclaredBy, len(rep.Databases), rto, rep.RTODeadline.UTC().Format(time.RFC3339), rpo))

	watchCtx, stopWatch := workflow.WithCancel(ctx)
	defer stopWatch()
	workflow.Go(watchCtx, r.watchRTO)

	// 2. Notify the DR contacts: this step's event is the declaration.
	s = r.begin(DRStepNotify)
	st := &r.rep.Timeline[s]
	st.Outcome, st.Ended, st.Detail = "ok", workflow.Now(ctx), "disaster declared to the DR contacts (delivery: see notifications)"
	r.notify(notify.SeverityCritical, "dr-step-2-declared", fmt.Sprintf("%sdisaster declared: %s", r.label(), rep.Scenario), r.declaration())

	// 3. Assess the damage, every database at once.
	s = r.begin(DRStepAssess)
	r.assess(s)
	if err := r.cancelled(); err != nil {
		return *rep, err
	}

	// 4. Choose each database's restore point.
	s = r.begin(DRStepRestorePoint)
	r.chooseRestorePoints(s)
	if err := r.cancelled(); err != nil {
		return *rep, err
	}
	if r.count(DRReady) == 0 {
		return r.fail("no database has a verified backup to restore")
	}

	// 5. Prepare the targets.
	s = r.begin(DRStepPrepare)
	r.prepare(s)
	if err := r.cancelled(); err != nil {
		return *rep, err
	}

	// 6. Approval.
	s = r.begin(DRStepApproval)
	aborted, err := r.awaitApproval(s)
	if err != nil {
		return *rep, err
	}
	if aborted {
		return r.finish()
	}

	// 7. Restore, P1 first.
	s = r.begin(DRStepRestore)
	if err := r.restoreAll(s); err != nil {
		return *rep, err
	}
	if rep.AbortedBy != "" {
		return r.finish()
	}
	if r.count(DRRestored) == 0 {
		return r.fail("no database could be restored")
	}

	// 8. Verify the restored files.
	s = r.begin(DRStepVerify)
	r.verify(s)
	if err := r.cancelled(); err != nil {
		return *rep, err
	}

	// 9. Wait for operations to resume.
	s = r.begin(DRStepResume)
	if err := r.awaitResume(s); err != nil {
		return *rep, err
	}
	return r.finish()
}

// cancelled returns a cancellation error once the run is being cancelled:
// the steps that check many databases record each failure and go on, so
// they are followed by this.
func (r *drRun) cancelled() error {
	if r.ctx.Err() != nil {
		return temporal.NewCanceledError("disaster recovery cancelled during step " + r.rep.Step)
	}
	return nil
}

// validate checks the request and fills in the databases of the report.
func (r *drRun) validate() (rto, rpo time.Duration, err error) {
	req := r.req
	bad := func(format string, args ...any) (time.Duration, time.Duration, error) {
		return 0, 0, temporal.NewNonRetryableApplicationError("disaster recovery request: "+fmt.Sprintf(format, args...), activities.ErrTypeBadInput, nil)
	}
	rto, rpo, needsFrom, ok := DRPreset(req.Scenario)
	if !ok {
		return bad("scenario %q is not one of %s, %s, %s, %s", req.Scenario, ScenarioCorruption, ScenarioHardwareFailure, ScenarioRansomware, ScenarioSiteDisaster)
	}
	if strings.TrimSpace(req.DeclaredBy) == "" {
		return bad("declared_by is empty: say who declares the disaster")
	}
	if len(req.Incident) > 100 || strings.IndexFunc(req.Incident, func(c rune) bool { return c <= ' ' || c > '~' }) >= 0 {
		return bad("incident %q must be at most 100 printable characters without spaces", req.Incident)
	}
	if len(req.Databases) == 0 {
		return bad("no databases named")
	}
	if needsFrom && req.From == "" {
		which := "the offsite destination"
		if req.Scenario == ScenarioRansomware {
			which = "one with a write-once lock the attacker could not change"
		}
		return bad("scenario %s restores from a named destination (from): %s", req.Scenario, which)
	}
	if req.RTO < 0 || req.RPO < 0 || req.HostTimeout < 0 {
		return bad("rto, rpo and host_timeout must not be negative")
	}
	if !req.AnomalySince.IsZero() && req.AnomalySince.After(r.rep.DeclaredAt) {
		return bad("anomaly_since %s is after the declaration", req.AnomalySince.UTC().Format(time.RFC3339))
	}
	if req.RTO > 0 {
		rto = req.RTO
	}
	if req.RPO > 0 {
		rpo = req.RPO
	}
	r.hostWait = req.HostTimeout
	if r.hostWait == 0 {
		r.hostWait = drDefaultHostWait
	}
	var seen []string
	for _, d := range req.Databases {
		if err := repository.ValidateDatabaseName(d.Name); err != nil {
			return bad("%v", err)
		}
		for _, s := range seen {
			if s == d.Name {
				return bad("database %s is named twice", d.Name)
			}
		}
		seen = append(seen, d.Name)
		switch d.Engine {
		case "", "sqlite":
		case "oracle":
			if d.TargetPath != "" || d.TargetHost != "" {
				return bad("database %s is an Oracle schema: it is restored in place, with no target host or path", d.Name)
			}
			if d.Host == "" {
				d.Host = activities.OracleQueue
			}
		default:
			return bad("engine %q of %s is not sqlite or oracle", d.Engine, d.Name)
		}
		if d.Host == "" {
			return bad("database %s names no host", d.Name)
		}
		if d.TargetPath != "" && !path.IsAbs(d.TargetPath) {
			return bad("target path %q of %s must be absolute", d.TargetPath, d.Name)
		}
		db := DRDatabaseReport{Name: d.Name, Host: d.Host, Priority: d.Priority, Status: DRPending,
			TargetHost: d.TargetHost, TargetPath: d.TargetPath, Engine: d.Engine}
		switch d.Priority {
		case PriorityP1, PriorityP2, PriorityP3:
		case "":
			db.Priority, db.PriorityRule = DefaultPriority(d.Name), true
		default:
			return bad("priority %q of %s is not P1, P2 or P3", d.Priority, d.Name)
		}
		if db.TargetHost == "" {
			db.TargetHost = d.Host
		}
		r.rep.Databases = append(r.rep.Databases, db)
	}
	// Restore order: P1 first; within a priority, the request's order.
	sort.SliceStable(r.rep.Databases, func(i, j int) bool { return r.rep.Databases[i].Priority < r.rep.Databases[j].Priority })
	return rto, rpo, nil
}

// checkFrom makes sure the source destination is configured, and learns the
// primary's name for the report.
func (r *drRun) checkFrom(dests []activities.DestinationInfo) error {
	var names []string
	found := r.req.From == ""
	for _, d := range dests {
		if d.Role == "primary" && r.primary == "" {
			r.primary = d.Name
		}
		found = found || d.Name == r.req.From
		names = append(names, d.Name)
	}
	if r.primary == "" && len(dests) > 0 {
		r.primary = dests[0].Name
	}
	if !found {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("disaster recovery request: destination %q is not configured (configured: %s)", r.req.From, strings.Join(names, ", ")), activities.ErrTypeBadInput, nil)
	}
	return nil
}

// oracleActivity is for work on an Oracle database, from any worker on the
// oracle queue; like a lost host, an unreachable queue times out.
func (r *drRun) oracleActivity() workflow.Context {
	return workflow.WithActivityOptions(r.ctx, workflow.ActivityOptions{
		TaskQueue:              activities.OracleQueue,
		ScheduleToStartTimeout: r.hostWait,
		StartToCloseTimeout:    time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			MaximumAttempts: 3, NonRetryableErrorTypes: nonRetryable,
		},
	})
}

// hostActivity is for work on a database's host, which may have been lost
// with the disaster: a host that does not take the task within hostWait
// times out instead of holding up the recovery.
func (r *drRun) hostActivity(host string, startToClose time.Duration, heartbeat bool) workflow.Context {
	opts := workflow.ActivityOptions{
		TaskQueue:              activities.HostQueue(host),
		ScheduleToStartTimeout: r.hostWait,
		StartToCloseTimeout:    startToClose,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        3,
			NonRetryableErrorTypes: nonRetryable,
		},
	}
	if heartbeat {
		opts.HeartbeatTimeout = 10 * time.Second
	}
	return workflow.WithActivityOptions(r.ctx, opts)
}

func (r *drRun) assess(s int) {
	futures := make([]workflow.Future, len(r.rep.Databases))
	for i, d := range r.rep.Databases {
		if d.Engine == "oracle" {
			futures[i] = workflow.ExecuteActivity(r.oracleActivity(), oracleActs.AssessOracle, activities.AssessInput{Database: d.Name})
			continue
		}
		futures[i] = workflow.ExecuteActivity(r.hostActivity(d.Host, time.Hour, true), sqliteActs.AssessDatabase,
			activities.AssessInput{Database: d.Name})
	}
	var lines []string
	for i := range r.rep.Databases {
		d := &r.rep.Databases[i]
		a := r.assessment(futures[i], d.Host)
		d.Before = &a
		lines = append(lines, fmt.Sprintf("%s on %s: %s (%s)", d.Name, d.Host, a.Verdict, a.Reason))
	}
	r.end(s, "ok", strings.Join(lines, "\n"))
}

// assessment turns an AssessDatabase result into a verdict, an error
// included: a host that never answered is unreachable.
func (r *drRun) assessment(f workflow.Future, host string) activities.AssessOutput {
	var a activities.AssessOutput
	err := f.Get(r.ctx, &a)
	var timeout *temporal.TimeoutError
	switch {
	case err == nil:
	case errors.As(err, &timeout):
		a = activities.AssessOutput{Verdict: VerdictUnreachable, Reason: fmt.Sprintf("host %s did not answer: %v", host, err)}
	default:
		a = activities.AssessOutput{Verdict: VerdictUnknown, Reason: err.Error()}
	}
	return a
}

// chooseRestorePoints picks each database's backup: the newest verified
// one (NewestVerified) or, with an anomaly time or a source destination,
// the newest verified one taken before the anomaly (or the declaration) on
// that destination (FindRestorePoint). A backup taken after the declaration
// (the schedule kept running on the damaged file) is never chosen.
func (r *drRun) chooseRestorePoints(s int) {
	futures := make([]workflow.Future, len(r.rep.Databases))
	simple := r.req.From == "" && r.req.AnomalySince.IsZero()
	before := r.req.AnomalySince
	if before.IsZero() {
		before = r.rep.DeclaredAt
	}
	find := func(db string) workflow.Future {
		return workflow.ExecuteActivity(shortActivity(r.ctx, activities.StorageQueue), storageActs.FindRestorePoint,
			activities.RestorePointInput{Database: db, Before: before, From: r.req.From})
	}
	for i, d := range r.rep.Databases {
		if simple {
			futures[i] = workflow.ExecuteActivity(shortActivity(r.ctx, activities.StorageQueue), storageActs.NewestVerified,
				activities.NewestVerifiedInput{Database: d.Name})
		} else {
			futures[i] = find(d.Name)
		}
	}
	var lines []string
	worst := time.Duration(0)
	for i := range r.rep.Databases {
		d := &r.rep.Databases[i]
		var p activities.RestorePointOutput
		var err error
		if simple {
			var n activities.NewestVerifiedOutput
			err = futures[i].Get(r.ctx, &n)
			p = activities.RestorePointOutput{BackupID: n.BackupID, SnapshotAt: n.SnapshotAt, Destination: r.primary}
			if err == nil && n.BackupID != "" && !n.SnapshotAt.Before(before) {
				p = activities.RestorePointOutput{}
				err = find(d.Name).Get(r.ctx, &p)
			}
		} else {
			err = futures[i].Get(r.ctx, &p)
		}
		switch {
		case err != nil:
			d.Status, d.Error = DRNoRestorePoint, err.Error()
		case p.BackupID == "":
			d.Status, d.Error = DRNoRestorePoint, "no verified backup"+r.beforeText()+" on "+orNone(p.Destination)
			if len(p.Skipped) > 0 {
				d.Error += "; skipped: " + strings.Join(p.Skipped, "; ")
			}
		default:
			d.Status = DRReady
			d.BackupID, d.SnapshotAt, d.From, d.LockMode = p.BackupID, p.SnapshotAt, p.Destination, p.LockMode
			d.DataLoss = activities.Duration(r.rep.DeclaredAt.Sub(p.SnapshotAt))
			var notes []string
			if p.NotBefore > 0 {
				notes = append(notes, fmt.Sprintf("%d newer backup(s) taken at or after %s passed over", p.NotBefore, before.UTC().Format(time.RFC3339)))
			}
			if r.req.Scenario == ScenarioRansomware && r.req.AnomalySince.IsZero() {
				notes = append(notes, "no anomaly_since given: this is the newest verified copy, which may postdate the attack")
			}
			if len(p.Skipped) > 0 {
				notes = append(notes, "skipped: "+strings.Join(p.Skipped, "; "))
			}
			if r.req.Scenario == ScenarioRansomware && p.LockMode == "" {
				notes = append(notes, fmt.Sprintf("destination %s has no write-once lock: an attacker could have changed it", p.Destination))
			}
			d.PointNote = strings.Join(notes, "; ")
			worst = max(worst, time.Duration(d.DataLoss))
		}
		if d.Status == DRReady {
			lines = append(lines, fmt.Sprintf("%s: backup %s taken %s on %s, data loss %s", d.Name, d.BackupID,
				d.SnapshotAt.UTC().Format(time.RFC3339), d.From, time.Duration(d.DataLoss)))
		} else {
			lines = append(lines, fmt.Sprintf("%s: %s: %s", d.Name, d.Status, d.Error))
		}
	}
	if worst > time.Duration(r.rep.RPOObjective) {
		r.note(fmt.Sprintf("RPO objective %s exceeded: the restore points lose up to %s of data", time.Duration(r.rep.RPOObjective), worst))
	}
	r.end(s, r.outcome(r.count(DRReady), len(r.rep.Databases)), strings.Join(lines, "\n"))
}

func (r *drRun) beforeText() string {
	if r.req.AnomalySince.IsZero() {
		return " taken before the declaration"
	}
	return " taken before " + r.req.AnomalySince.UTC().Format(time.RFC3339)
}

// prepare inspects every restore target. A problem (the file still open in
// the application, a directory that cannot be written) is reported for
// the approver to fix; the target is inspected again before its restore.
func (r *drRun) prepare(s int) {
	futures := make([]workflow.Future, len(r.rep.Databases))
	for i, d := range r.rep.Databases {
		if d.Status == DRReady && d.Engine != "oracle" {
			futures[i] = workflow.ExecuteActivity(r.hostActivity(d.TargetHost, 2*time.Minute, false), sqliteActs.InspectRestoreTarget,
				activities.TargetInput{Database: d.Name, Target: d.TargetPath})
		}
	}
	var lines []string
	problems := 0
	for i := range r.rep.Databases {
		d := &r.rep.Databases[i]
		if d.Status == DRReady && d.Engine == "oracle" {
			d.Target = "schema of " + d.Name
			lines = append(lines, fmt.Sprintf("%s: Oracle schema restored in place; what it replaces is backed up and verified first", d.Name))
			continue
		}
		if futures[i] == nil {
			continue
		}
		var t activities.TargetOutput
		if err := futures[i].Get(r.ctx, &t); err != nil {
			problems++
			d.TargetNote = err.Error()
			lines = append(lines, fmt.Sprintf("%s on %s: %v", d.Name, d.TargetHost, err))
			continue
		}
		d.Target, d.TargetExists = t.Target, t.Exists
		what := "new file"
		if t.Exists {
			what = "replaces the file there (kept as an emergency copy)"
		}
		lines = append(lines, fmt.Sprintf("%s: %s on %s, %s", d.Name, t.Target, d.TargetHost, what))
	}
	outcome := "ok"
	if problems > 0 {
		outcome = "partial"
	}
	r.end(s, outcome, strings.Join(lines, "\n"))
}

// awaitApproval waits for approve-restore or abort. An approval without a
// name, or skipping a database the run does not restore (or every one), is
// noted and the wait goes on.
func (r *drRun) awaitApproval(s int) (aborted bool, err error) {
	ctx, rep := r.ctx, r.rep
	var plan []string
	for _, d := range rep.Databases {
		if d.Status == DRReady {
			plan = append(plan, fmt.Sprintf("%s (%s) from backup %s", d.Name, d.Priority, d.BackupID))
		}
	}
	rep.WaitingFor = fmt.Sprintf("approval to restore %s: signal %q with {\"by\": ...} (\"skip\" lists databases to leave alone), or %q to stop; workflow %s",
		strings.Join(plan, ", "), SignalApproveRestore, SignalAbort, workflow.GetInfo(ctx).WorkflowExecution.ID)
	r.notify(notify.SeverityWarning, "dr-step-6-waiting", r.label()+"approval needed to restore", rep.WaitingFor)
	approveCh := workflow.GetSignalChannel(ctx, SignalApproveRestore)
	abortCh := workflow.GetSignalChannel(ctx, SignalAbort)
	for {
		var sig DRSignal
		approved := false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(approveCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &sig); approved = true })
		sel.AddReceive(abortCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &sig); aborted = true })
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		sel.Select(ctx)
		if ctx.Err() != nil {
			return false, temporal.NewCanceledError("disaster recovery cancelled while awaiting approval")
		}
		if aborted {
			rep.WaitingFor = ""
			r.abort(s, sig)
			return true, nil
		}
		if !approved {
			continue
		}
		if problem := r.checkApproval(sig); problem != "" {
			r.note(fmt.Sprintf("%s signal from %q at %s ignored: %s", SignalApproveRestore, sig.By, workflow.Now(ctx).UTC().Format(time.RFC3339), problem))
			continue
		}
		rep.WaitingFor = ""
		rep.ApprovedBy, rep.ApprovedAt = sig.By, workflow.Now(ctx)
		for i := range rep.Databases {
			for _, name := range sig.Skip {
				if rep.Databases[i].Name == name {
					rep.Databases[i].Status = DRSkipped
				}
			}
		}
		detail := "approved by " + sig.By
		if sig.Reason != "" {
			detail += ": " + sig.Reason
		}
		if len(sig.Skip) > 0 {
			detail += "; not restoring " + strings.Join(sig.Skip, ", ")
		}
		r.end(s, "ok", detail)
		return false, nil
	}
}

func (r *drRun) checkApproval(sig DRSignal) string {
	if strings.TrimSpace(sig.By) == "" {
		return "it does not say who approves (by)"
	}
	skipped := 0
	for _, name := range sig.Skip {
		found := false
		for _, d := range r.rep.Databases {
			if d.Name == name && d.Status == DRReady {
				found = true
			}
		}
		if !found {
			return fmt.Sprintf("skip names %q, which is not a database this recovery restores", name)
		}
		skipped++
	}
	if skipped >= r.count(DRReady) {
		return "it skips every database; signal " + SignalAbort + " to stop instead"
	}
	return ""
}

func (r *drRun) abort(s int, sig DRSignal) {
	r.rep.AbortedBy, r.rep.AbortReason = orUnknown(sig.By), sig.Reason
	r.end(s, "aborted", fmt.Sprintf("aborted by %s: %s", r.rep.AbortedBy, sig.Reason))
}

// restoreAll restores the databases in priority order, one at a time so
// that the first get the bandwidth. A failed restore is recorded and the
// others go on. An abort signal stops before the next database.
func (r *drRun) restoreAll(s int) error {
	abortCh := workflow.GetSignalChannel(r.ctx, SignalAbort)
	attempted := 0
	for i := range r.rep.Databases {
		d := &r.rep.Databases[i]
		if d.Status != DRReady {
			continue
		}
		var sig DRSignal
		if r.rep.AbortedBy == "" && abortCh.ReceiveAsync(&sig) {
			r.rep.AbortedBy, r.rep.AbortReason = orUnknown(sig.By), sig.Reason
		}
		if r.rep.AbortedBy != "" {
			d.Status = DRNotRestored
			continue
		}
		attempted++
		if err := r.restoreOne(d); err != nil {
			return err
		}
	}
	var lines []string
	for _, d := range r.rep.Databases {
		switch d.Status {
		case DRRestored:
			lines = append(lines, fmt.Sprintf("%s restored from %s (%s) to %s on %s", d.Name, d.BackupID, d.From, d.Target, d.TargetHost))
		case DRRestoreFailed:
			lines = append(lines, fmt.Sprintf("%s FAILED: %s", d.Name, d.Error))
		case DRNotRestored:
			lines = append(lines, d.Name+" not restored: aborted")
		}
	}
	outcome := r.outcome(r.count(DRRestored), attempted)
	if r.rep.AbortedBy != "" {
		outcome = "aborted"
		lines = append(lines, fmt.Sprintf("aborted by %s: %s", r.rep.AbortedBy, r.rep.AbortReason))
	}
	r.end(s, outcome, strings.Join(lines, "\n"))
	return nil
}

// restoreOne stages, then swaps in, one database, as RestoreWorkflow does:
// the staged file is discarded if anything fails, and an existing file is
// kept as an emergency copy. Only a cancellation is returned as an error.
func (r *drRun) restoreOne(d *DRDatabaseReport) error {
	ctx := r.ctx
	failed := func(err error) {
		d.Status, d.Error = DRRestoreFailed, err.Error()
	}
	if d.Engine == "oracle" {
		child := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID + "/" + OracleRestoreWorkflowID(d.Name),
			TaskQueue:  activities.WorkflowQueue,
		})
		var res OracleRestoreResult
		err := workflow.ExecuteChildWorkflow(child, OracleRestoreWorkflow, OracleRestoreRequest{Database: d.Name, Backup: d.BackupID,
			OracleRestoreInput: activities.OracleRestoreInput{Mode: "replace"}}).Get(ctx, &res)
		if res.EmergencyBackup != "" {
			d.EmergencyCopy = "backup " + res.EmergencyBackup
		}
		if err != nil {
			failed(fmt.Errorf("restore: %w", err))
			return cancelled(ctx, err)
		}
		d.Target = "schema " + res.Report.Schema
		d.Status, d.RestoredAt = DRRestored, workflow.Now(ctx)
		return nil
	}
	var target activities.TargetOutput
	if err := workflow.ExecuteActivity(r.hostActivity(d.TargetHost, 2*time.Minute, false), sqliteActs.InspectRestoreTarget,
		activities.TargetInput{Database: d.Name, Target: d.TargetPath}).Get(ctx, &target); err != nil {
		failed(fmt.Errorf("inspect target: %w", err))
		return cancelled(ctx, err)
	}
	d.Target, d.TargetExists, d.TargetNote = target.Target, target.Exists, ""
	hostQueue := activities.HostQueue(d.TargetHost)
	discard := func() {
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		err := workflow.ExecuteActivity(shortActivity(dctx, hostQueue), sqliteActs.DiscardRestore,
			activities.DiscardInput{Target: target.Target, BackupID: d.BackupID}).Get(dctx, nil)
		d.Discarded = err == nil
		if err != nil {
			d.Error += "; the staged file could not be removed: " + err.Error()
		}
	}
	from := r.req.From
	var staged activities.RestoreOutput
	if err := workflow.ExecuteActivity(longActivity(ctx, hostQueue), sqliteActs.RestoreSQLite,
		activities.RestoreInput{Database: d.Name, BackupID: d.BackupID, Target: target.Target, From: from}).Get(ctx, &staged); err != nil {
		failed(fmt.Errorf("restore: %w", err))
		discard()
		return cancelled(ctx, err)
	}
	d.ImageBytes, d.ImageHash, d.Healed = staged.ImageBytes, staged.ImageHash, staged.Healed
	if staged.Source != "" {
		d.From = staged.Source
	}
	emergency := target.Target + ".emergency-" + workflow.Now(ctx).UTC().Format("20060102T150405Z")
	var swapped activities.SwapOutput
	if err := workflow.ExecuteActivity(shortActivity(ctx, hostQueue), sqliteActs.SwapInRestore,
		activities.SwapInput{TempPath: staged.TempPath, Target: target.Target, EmergencyPath: emergency}).Get(ctx, &swapped); err != nil {
		failed(fmt.Errorf("move into place: %w", err))
		d.EmergencyCopy = swapped.EmergencyCopy
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			discard()
		}
		return cancelled(ctx, err)
	}
	d.Status, d.EmergencyCopy, d.RestoredAt = DRRestored, swapped.EmergencyCopy, workflow.Now(ctx)
	return nil
}

// cancelled returns err when the workflow is being cancelled, nil otherwise.
func cancelled(ctx workflow.Context, err error) error {
	if ctx.Err() != nil || temporal.IsCanceledError(err) {
		return err
	}
	return nil
}

// verify assesses every restored file, on its target host.
func (r *drRun) verify(s int) {
	futures := make([]workflow.Future, len(r.rep.Databases))
	for i, d := range r.rep.Databases {
		if d.Status == DRRestored && d.Engine == "oracle" {
			futures[i] = workflow.ExecuteActivity(r.oracleActivity(), oracleActs.AssessOracle, activities.AssessInput{Database: d.Name})
			continue
		}
		if d.Status == DRRestored {
			futures[i] = workflow.ExecuteActivity(r.hostActivity(d.TargetHost, time.Hour, true), sqliteActs.AssessDatabase,
				activities.AssessInput{Database: d.Name, Path: d.Target})
		}
	}
	var lines []string
	verified, checked := 0, 0
	for i := range r.rep.Databases {
		d := &r.rep.Databases[i]
		if futures[i] == nil {
			continue
		}
		checked++
		a := r.assessment(futures[i], d.TargetHost)
		d.After = &a
		if a.Verdict == activities.VerdictHealthy {
			d.Status = DRVerified
			verified++
		} else {
			d.Status, d.Error = DRVerificationFailed, fmt.Sprintf("restored file is %s: %s", a.Verdict, a.Reason)
		}
		lines = append(lines, fmt.Sprintf("%s: %s (%s)", d.Name, a.Verdict, a.Reason))
	}
	r.end(s, r.outcome(verified, checked), strings.Join(lines, "\n"))
}

// awaitResume waits for the operator to say operations are back (or to
// abort, ending the run without that).
func (r *drRun) awaitResume(s int) error {
	ctx, rep := r.ctx, r.rep
	rep.WaitingFor = fmt.Sprintf("the operator to resume operations: signal %q with {\"by\": ...} once the applications run on the restored databases; workflow %s",
		SignalResumeOperations, workflow.GetInfo(ctx).WorkflowExecution.ID)
	r.notify(notify.SeverityWarning, "dr-step-9-waiting", r.label()+"restored: waiting for operations to resume", rep.WaitingFor)
	resumeCh := workflow.GetSignalChannel(ctx, SignalResumeOperations)
	abortCh := workflow.GetSignalChannel(ctx, SignalAbort)
	for {
		var sig DRSignal
		resumed, aborted := false, false
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(resumeCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &sig); resumed = true })
		sel.AddReceive(abortCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &sig); aborted = true })
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
		sel.Select(ctx)
		switch {
		case ctx.Err() != nil:
			return temporal.NewCanceledError("disaster recovery cancelled while awaiting resume-operations")
		case aborted:
			rep.WaitingFor = ""
			r.abort(s, sig)
			return nil
		case !resumed:
			continue
		case strings.TrimSpace(sig.By) == "":
			r.note(fmt.Sprintf("%s signal at %s ignored: it does not say who resumes (by)", SignalResumeOperations, workflow.Now(ctx).UTC().Format(time.RFC3339)))
			continue
		}
		rep.WaitingFor = ""
		rep.ResumedBy, rep.ResumedAt = sig.By, workflow.Now(ctx)
		r.resumed = true
		rep.RTOReached = activities.Duration(rep.ResumedAt.Sub(rep.DeclaredAt))
		detail := fmt.Sprintf("operations resumed by %s, %s after the declaration", sig.By, time.Duration(rep.RTOReached))
		if sig.Reason != "" {
			detail += ": " + sig.Reason
		}
		r.end(s, "ok", detail)
		return nil
	}
}

// finish writes the post-incident report.
func (r *drRun) finish() (DRReport, error) {
	rep := r.rep
	s := r.begin(DRStepReport)
	r.resumed = true
	r.summarise()
	r.end(s, "ok", r.summary())
	r.drain()
	rep.Step, rep.Finished = "done", workflow.Now(r.ctx)
	return *rep, nil
}

// fail ends a run that can restore nothing.
func (r *drRun) fail(why string) (DRReport, error) {
	rep := r.rep
	r.note(why)
	s := r.begin(DRStepReport)
	r.resumed = true
	r.summarise()
	rep.Outcome = DROutcomeFailed
	r.end(s, "failed", why+"\n"+r.summary())
	r.drain()
	rep.Step, rep.Finished = "done", workflow.Now(r.ctx)
	return *rep, temporal.NewNonRetryableApplicationError(fmt.Sprintf("disaster recovery %s: %s", r.label(), why), ErrTypeDRFailed, nil, *rep)
}

func (r *drRun) summarise() {
	rep := r.rep
	rep.RTOMet = !rep.ResumedAt.IsZero() && rep.RTOReached <= rep.RTOObjective
	worst, restored, failed, intended := time.Duration(0), 0, 0, 0
	for _, d := range rep.Databases {
		switch d.Status {
		case DRSkipped:
			continue
		case DRVerified, DRRestored:
			restored++
			worst = max(worst, time.Duration(d.DataLoss))
		default:
			failed++
		}
		intended++
	}
	rep.RPOReached = activities.Duration(worst)
	rep.RPOMet = restored > 0 && worst <= time.Duration(rep.RPOObjective)
	switch {
	case rep.AbortedBy != "":
		rep.Outcome = DROutcomeAborted
	case restored == 0:
		rep.Outcome = DROutcomeFailed
	case failed > 0 || restored < intended || r.count(DRRestored) > 0:
		// A database restored but not verified counts as partial.
		rep.Outcome = DROutcomePartial
	default:
		rep.Outcome = DROutcomeRecovered
	}
}

func (r *drRun) summary() string {
	rep := r.rep
	rto := "not reached: operations were not resumed"
	if !rep.ResumedAt.IsZero() {
		rto = fmt.Sprintf("%s (objective %s, %s)", time.Duration(rep.RTOReached), time.Duration(rep.RTOObjective), metText(rep.RTOMet))
	}
	lines := []string{
		"outcome: " + rep.Outcome,
		"RTO: " + rto,
		fmt.Sprintf("RPO: data loss up to %s (objective %s, %s)", time.Duration(rep.RPOReached), time.Duration(rep.RPOObjective), metText(rep.RPOMet)),
	}
	for _, d := range rep.Databases {
		line := fmt.Sprintf("%s (%s): %s", d.Name, d.Priority, d.Status)
		if d.BackupID != "" {
			line += fmt.Sprintf(", backup %s from %s, data loss %s", d.BackupID, d.From, time.Duration(d.DataLoss))
		}
		if d.EmergencyCopy != "" {
			line += ", emergency copy " + d.EmergencyCopy
		}
		if d.Error != "" {
			line += ": " + d.Error
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func metText(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}

// drain waits, for a while, for notifications still being delivered, so
// that the report says which arrived.
func (r *drRun) drain() {
	if r.pending > 0 {
		_, _ = workflow.AwaitWithTimeout(r.ctx, drNotificationGrace, func() bool { return r.pending == 0 })
	}
}

// watchRTO warns once when 75% of the RTO has gone by and once when it has
// passed, unless operations have resumed.
func (r *drRun) watchRTO(ctx workflow.Context) {
	rep := r.rep
	rto := time.Duration(rep.RTOObjective)
	sleepUntil := func(t time.Time) bool {
		return workflow.Sleep(ctx, max(0, t.Sub(workflow.Now(ctx)))) == nil && !r.resumed
	}
	if !sleepUntil(rep.DeclaredAt.Add(rto * 3 / 4)) {
		return
	}
	rep.RTOAtRisk = true
	r.notify(notify.SeverityCritical, "dr-rto-at-risk", r.label()+"RTO at risk",
		fmt.Sprintf("75%% of the %s RTO has passed; the deadline is %s. Now at step %q%s.", rto, rep.RTODeadline.UTC().Format(time.RFC3339), rep.Step, waitingText(rep.WaitingFor)))
	if !sleepUntil(rep.RTODeadline) {
		return
	}
	rep.RTOMissed = true
	r.notify(notify.SeverityCritical, "dr-rto-missed", r.label()+"RTO missed",
		fmt.Sprintf("the %s RTO passed at %s and operations have not resumed. Now at step %q%s.", rto, rep.RTODeadline.UTC().Format(time.RFC3339), rep.Step, waitingText(rep.WaitingFor)))
}

func waitingText(w string) string {
	if w == "" {
		return ""
	}
	return ", waiting for " + w
}

// drSteps are the steps in order; a step's number is its place here.
func drSteps() []string {
	return []string{DRStepDeclare, DRStepNotify, DRStepAssess, DRStepRestorePoint, DRStepPrepare,
		DRStepApproval, DRStepRestore, DRStepVerify, DRStepResume, DRStepReport}
}

// begin starts a step in the timeline and returns its index. Steps the run
// passed over (after an abort, or when nothing can be restored) are
// entered as skipped.
func (r *drRun) begin(name string) int {
	r.rep.Step = name
	for n, step := range drSteps() {
		if step == name {
			r.rep.Timeline = append(r.rep.Timeline, DRStep{Number: n + 1, Name: name, Started: workflow.Now(r.ctx), Outcome: "running"})
			break
		}
		if n >= len(r.rep.Timeline) {
			r.rep.Timeline = append(r.rep.Timeline, DRStep{Number: n + 1, Name: step, Outcome: "skipped"})
		}
	}
	return len(r.rep.Timeline) - 1
}

// end closes a step and tells the DR contacts.
func (r *drRun) end(i int, outcome, detail string) {
	st := &r.rep.Timeline[i]
	st.Ended, st.Outcome, st.Detail = workflow.Now(r.ctx), outcome, detail
	severity := notify.SeverityInfo
	switch outcome {
	case "partial", "aborted":
		severity = notify.SeverityWarning
	case "failed":
		severity = notify.SeverityCritical
	}
	r.notify(severity, fmt.Sprintf("dr-step-%d-%s", st.Number, strings.ReplaceAll(st.Name, " ", "-")),
		fmt.Sprintf("%sstep %d, %s: %s", r.label(), st.Number, st.Name, outcome), detail)
}

// notify sends a dr_step event without waiting for it: a receiver that is
// down is retried for hours by sendEvent and must not hold up the recovery.
// The outcome is recorded in the report when it is known.
func (r *drRun) notify(severity, what, title, text string) {
	now := workflow.Now(r.ctx)
	ev := notify.Event{
		Kind: notify.KindDRStep, Severity: severity, Title: title, Text: text, At: now, ID: eventID(r.ctx, what),
		Fields: map[string]string{"scenario": r.req.Scenario, "incident": r.req.Incident, "workflow": workflow.GetInfo(r.ctx).WorkflowExecution.ID},
	}
	i := len(r.rep.Notifications)
	r.rep.Notifications = append(r.rep.Notifications, DRNotification{Title: title, Severity: severity, At: now, Status: "pending"})
	r.pending++
	workflow.Go(r.ctx, func(gctx workflow.Context) {
		err := sendEvent(gctx, ev)
		r.pending--
		n := &r.rep.Notifications[i]
		if err != nil {
			n.Status, n.Error = "failed", err.Error()
			r.rep.NotificationsFailed++
			return
		}
		n.Status = "sent"
		r.rep.NotificationsSent++
	})
}

func (r *drRun) declaration() string {
	rep := r.rep
	lines := []string{
		fmt.Sprintf("declared by %s at %s", rep.DeclaredBy, rep.DeclaredAt.UTC().Format(time.RFC3339)),
		fmt.Sprintf("RTO %s: operations must resume by %s; RPO %s", time.Duration(rep.RTOObjective), rep.RTODeadline.UTC().Format(time.RFC3339), time.Duration(rep.RPOObjective)),
	}
	if !rep.AnomalySince.IsZero() {
		lines = append(lines, "anomaly since "+rep.AnomalySince.UTC().Format(time.RFC3339)+": restoring from backups taken before it")
	}
	if rep.From != "" {
		lines = append(lines, "restoring from destination "+rep.From)
	}
	for _, d := range rep.Databases {
		lines = append(lines, fmt.Sprintf("%s %s on %s", d.Priority, d.Name, d.Host))
	}
	return strings.Join(lines, "\n")
}

func (r *drRun) label() string {
	if r.req.Incident != "" {
		return "DR " + r.req.Incident + ": "
	}
	return "DR: "
}

func (r *drRun) note(s string) { r.rep.Notes = append(r.rep.Notes, s) }

func (r *drRun) count(status string) int {
	n := 0
	for _, d := range r.rep.Databases {
		if d.Status == status {
			n++
		}
	}
	return n
}

// outcome of a step that succeeded for ok of n databases.
func (r *drRun) outcome(ok, n int) string {
	switch {
	case ok == n:
		return "ok"
	case ok == 0:
		return "failed"
	}
	return "partial"
}

func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(unknown)"
	}
	return s
}

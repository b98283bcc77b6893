package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/notify"
	"github.com/bulwark-dr/bulwark/repository"
)

// Restore drills: the strategy's monthly restore tests (section 8), each
// one documented. A drill restores a backup on the database's host to a
// scratch file, checks it with SQLite and with the application's queries,
// measures the restore time, deletes the file, stores a record next to the
// backups and notifies the drill_result contacts.

// DrillIDPrefix starts the workflow id of a restore drill.
const DrillIDPrefix = "drill/"

// DrillWorkflowID is the id of the restore drill of a database: one drill
// per database at a time.
func DrillWorkflowID(database string) string { return DrillIDPrefix + database }

// ErrTypeDrillFailed is the error type of a drill that failed, or whose
// record could not be written; its details hold the DrillResult.
const ErrTypeDrillFailed = "DrillFailed"

// drillDefaultHostWait bounds the wait for the host's worker to take the
// drill: a scheduled drill of a host that is down fails and says so
// instead of waiting for ever.
const drillDefaultHostWait = 15 * time.Minute

// DrillRequest asks for a restore drill of one database.
type DrillRequest struct {
	Database string `json:"database"`
	// Host is the host of the database, where the drill restores.
	Host string `json:"host"`
	// Backup is "latest" (or ""), a backup id, or an RFC 3339 time (the
	// newest backup at or before it).
	Backup string `json:"backup,omitempty"`
	// Queries are application checks, such as "SELECT count(*) FROM users
	// WHERE active": each runs read-only on the restored copy and must
	// return a row, whose values are recorded. At most
	// activities.MaxDrillQueries.
	Queries []string `json:"queries,omitempty"`
	// Schedule names the schedule that started the drill ("" by hand).
	Schedule string `json:"schedule,omitempty"`
	// HostTimeout bounds the wait for the host's worker to take the drill;
	// 0 is 15 minutes.
	HostTimeout time.Duration `json:"host_timeout,omitempty"`
}

// DrillResult is the outcome of a drill: the record as stored, where it
// was stored, and whether the notification went.
type DrillResult struct {
	Record repository.DrillRecord `json:"record"`
	// RecordKey is the record's key on the primary; RecordError says why
	// it could not be written.
	RecordKey   string `json:"record_key,omitempty"`
	RecordError string `json:"record_error,omitempty"`
	// Severity is the notification's: info for a drill that passed,
	// critical when the backup could not be restored or fails SQLite's
	// checks, warning for other failures (an application query, an object
	// read from another destination, a scratch file left behind).
	Severity    string `json:"severity"`
	Notified    bool   `json:"notified"`
	NotifyError string `json:"notify_error,omitempty"`
}

// DrillWorkflow runs a restore drill: it resolves the backup, restores it
// with RestoreDrill on the database's host (to a scratch file, never the
// database's path), stores the result with RecordDrill, and sends a
// drill_result notification. A drill that fails is recorded and notified
// like one that passes, then the workflow fails with ErrTypeDrillFailed and
// the result in its details, so a schedule's history shows it. A
// notification that cannot be sent is noted in the result and never fails
// the drill.
func DrillWorkflow(ctx workflow.Context, req DrillRequest) (DrillResult, error) {
	ref, err := validateDrill(req)
	if err != nil {
		return DrillResult{}, err
	}
	info := workflow.GetInfo(ctx)
	rec := repository.DrillRecord{
		Database: req.Database, Host: req.Host, BackupRef: ref, Schedule: req.Schedule,
		Workflow:  info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID,
		StartedAt: workflow.Now(ctx).UTC(),
	}

	var out activities.RestoreDrillOutput
	ran := false
	backupID, err := resolve(ctx, req.Database, ref)
	switch {
	case temporal.IsCanceledError(err):
		return DrillResult{}, err
	case err != nil:
		rec.Problems = append(rec.Problems, fmt.Sprintf("backup %q of %s could not be resolved: %v", ref, req.Database, err))
	default:
		rec.BackupID = backupID
		err = workflow.ExecuteActivity(drillActivity(ctx, req), sqliteActs.RestoreDrill, activities.RestoreDrillInput{
			Database: req.Database, BackupID: backupID, Queries: req.Queries,
		}).Get(ctx, &out)
		switch {
		case temporal.IsCanceledError(err):
			return DrillResult{}, err
		case err != nil:
			rec.Problems = append(rec.Problems, fmt.Sprintf("the drill on host %s did not complete: %v", req.Host, err))
		default:
			ran = true
		}
	}
	if ran {
		fillDrillRecord(&rec, out)
	}
	rec.FinishedAt = workflow.Now(ctx).UTC()
	rec.TotalSeconds = rec.FinishedAt.Sub(rec.StartedAt).Seconds()

	res := DrillResult{Severity: drillSeverity(rec)}
	var recorded activities.RecordDrillOutput
	if err := workflow.ExecuteActivity(shortActivity(ctx, activities.StorageQueue), storageActs.RecordDrill,
		activities.RecordDrillInput{Record: rec}).Get(ctx, &recorded); err != nil {
		res.RecordError = err.Error()
		if res.Severity == notify.SeverityInfo {
			res.Severity = notify.SeverityWarning
		}
	} else {
		res.RecordKey, rec.Key = recorded.Key, recorded.Key
	}
	res.Record = rec

	if err := sendEvent(ctx, drillEvent(ctx, req, res)); err != nil {
		res.NotifyError = err.Error()
	} else {
		res.Notified = true
	}

	switch {
	case !rec.OK:
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("restore drill of %s failed: %s", req.Database, strings.Join(rec.Problems, "; ")),
			ErrTypeDrillFailed, nil, res)
	case res.RecordError != "":
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("restore drill of %s passed but its record could not be written: %s", req.Database, res.RecordError),
			ErrTypeDrillFailed, nil, res)
	}
	return res, nil
}

// validateDrill checks a request and returns the backup reference to
// resolve.
func validateDrill(req DrillRequest) (string, error) {
	bad := func(format string, args ...any) (string, error) {
		return "", temporal.NewNonRetryableApplicationError("drill request: "+fmt.Sprintf(format, args...), activities.ErrTypeBadInput, nil)
	}
	if err := repository.ValidateDatabaseName(req.Database); err != nil {
		return bad("%v", err)
	}
	if req.Host == "" {
		return bad("names no host")
	}
	if req.HostTimeout < 0 {
		return bad("host_timeout must not be negative")
	}
	if err := activities.CheckDrillQueries(req.Queries); err != nil {
		return bad("%v", err)
	}
	ref := strings.TrimSpace(req.Backup)
	if ref == "" {
		ref = "latest"
	}
	if ref != "latest" && repository.ValidateBackupID(ref) != nil {
		if _, err := time.Parse(time.RFC3339, ref); err != nil {
			return bad("backup %q is neither a backup id, \"latest\", nor an RFC 3339 time such as 2026-11-01T14:00:00Z", ref)
		}
	}
	return ref, nil
}

// drillActivity runs the drill on the database's host: long, heartbeating,
// and bounded in how long it waits for that host's worker.
func drillActivity(ctx workflow.Context, req DrillRequest) workflow.Context {
	wait := req.HostTimeout
	if wait == 0 {
		wait = drillDefaultHostWait
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              activities.HostQueue(req.Host),
		ScheduleToStartTimeout: wait,
		StartToCloseTimeout:    6 * time.Hour,
		HeartbeatTimeout:       10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: nonRetryable,
		},
	})
}

func fillDrillRecord(rec *repository.DrillRecord, out activities.RestoreDrillOutput) {
	rec.OK = out.OK
	rec.Problems = append(rec.Problems, out.Problems...)
	rec.Restored, rec.ChecksOK = out.Restored, out.ChecksOK
	rec.SnapshotAt, rec.ImageBytes, rec.ImageHash, rec.Healed = out.SnapshotAt, out.ImageBytes, out.ImageHash, out.Healed
	rec.IntegrityCheck, rec.ForeignKeys, rec.Tables, rec.Rows = out.Integrity, out.ForeignKeys, out.Tables, out.Rows
	rec.Queries = out.Queries
	rec.ScratchPath, rec.ScratchRemoved = out.ScratchPath, out.ScratchRemoved
	rec.RestoreSeconds = time.Duration(out.RestoreDuration).Seconds()
	rec.CheckSeconds = time.Duration(out.CheckDuration).Seconds()
	rec.QuerySeconds = time.Duration(out.QueryDuration).Seconds()
}

// drillSeverity: critical when the backup could not be restored or its
// copy fails SQLite's checks (a restore would not bring the data back),
// warning for any other failure, info when the drill passed.
func drillSeverity(rec repository.DrillRecord) string {
	switch {
	case rec.OK:
		return notify.SeverityInfo
	case !rec.Restored || !rec.ChecksOK:
		return notify.SeverityCritical
	}
	return notify.SeverityWarning
}

func drillEvent(ctx workflow.Context, req DrillRequest, res DrillResult) notify.Event {
	rec := res.Record
	title := fmt.Sprintf("restore drill of %s passed", rec.Database)
	if !rec.OK {
		title = fmt.Sprintf("restore drill of %s FAILED", rec.Database)
	}
	restoreTime := (time.Duration(rec.RestoreSeconds * float64(time.Second))).Round(time.Millisecond)
	var lines []string
	if rec.Restored {
		lines = append(lines, fmt.Sprintf("backup %s (taken %s) restored on %s in %s (%d bytes)",
			rec.BackupID, rec.SnapshotAt.UTC().Format(time.RFC3339), rec.Host, restoreTime, rec.ImageBytes))
		lines = append(lines, fmt.Sprintf("integrity_check: %s; foreign_key_check: %s; %d table(s), %d row(s)",
			rec.IntegrityCheck, rec.ForeignKeys, rec.Tables, rec.Rows))
		passed := 0
		for _, q := range rec.Queries {
			if q.OK {
				passed++
			}
		}
		if len(rec.Queries) > 0 {
			lines = append(lines, fmt.Sprintf("application checks: %d of %d passed", passed, len(rec.Queries)))
		}
	} else {
		lines = append(lines, fmt.Sprintf("backup %s was not restored on %s", orNone(rec.BackupID), rec.Host))
	}
	if len(rec.Problems) > 0 {
		lines = append(lines, "problems:")
		for _, p := range rec.Problems {
			lines = append(lines, "- "+p)
		}
	}
	if res.RecordKey != "" {
		lines = append(lines, "record: "+res.RecordKey)
	} else {
		lines = append(lines, "the drill's record could not be written: "+res.RecordError)
	}
	fields := map[string]string{
		"backup":   orNone(rec.BackupID),
		"host":     rec.Host,
		"workflow": workflow.GetInfo(ctx).WorkflowExecution.ID,
	}
	if rec.Restored {
		fields["restore_time"] = restoreTime.String()
	}
	if res.RecordKey != "" {
		fields["record"] = res.RecordKey
	}
	if req.Schedule != "" {
		fields["schedule"] = req.Schedule
	}
	return notify.Event{
		Kind: notify.KindDrillResult, Severity: res.Severity, Title: title, Text: strings.Join(lines, "\n"),
		Database: rec.Database, Fields: fields, At: rec.FinishedAt, ID: eventID(ctx, notify.KindDrillResult),
	}
}

// ListDrillsRequest asks for the newest drill records of a database.
type ListDrillsRequest struct {
	Database string `json:"database"`
	// Limit is the most records returned; 0 is
	// activities.DefaultDrillListLimit, and at most
	// activities.MaxDrillListLimit are.
	Limit int `json:"limit,omitempty"`
}

// ListDrillsWorkflow returns the newest drill records of a database, newest
// first. It is a workflow so that clients need no storage credentials.
func ListDrillsWorkflow(ctx workflow.Context, req ListDrillsRequest) (activities.ListDrillsOutput, error) {
	var out activities.ListDrillsOutput
	err := workflow.ExecuteActivity(shortActivity(ctx, activities.StorageQueue), storageActs.ListDrills,
		activities.ListDrillsInput{Database: req.Database, Limit: req.Limit}).Get(ctx, &out)
	return out, err
}

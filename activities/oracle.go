package activities

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"gocloud.dev/blob"

	"github.com/bulwark-dr/bulwark/activities/oraclesrc"
	"github.com/bulwark-dr/bulwark/metrics"
	"github.com/bulwark-dr/bulwark/repository"
)

// OracleQueue is the task queue of workers that can reach the Oracle
// databases (any worker with network access and the password; RMAN only on
// the database host).
const OracleQueue = "bulwark-oracle"

// Error types of the Oracle activities.
const (
	ErrTypeOracleRefused     = "OracleRestoreRefused"
	ErrTypeRMANUnavailable   = "RMANUnavailable"
	ErrTypeOracleUnreachable = "OracleUnreachable"
)

// OracleDatabase is one configured Oracle database. The password is read
// when a connection is made, from where the config says; it is never part
// of an activity's input or output.
type OracleDatabase struct {
	Name              string
	Conn              oraclesrc.Conn // without the password
	Password          func() (string, error)
	Schema            string
	Tables            []string
	DataPumpDirectory string
	RMANPath          string
}

// OracleActivities back up and restore Oracle schemas over SQL with go-ora.
// A worker registers them on OracleQueue when the config names an Oracle
// database.
type OracleActivities struct {
	Databases         map[string]OracleDatabase
	Bucket            *blob.Bucket
	Keeper            repository.SecretsKeeper
	KeeperDescription string
	Tool              string
	Metrics           *metrics.Bulwark
	// Open connects to a database; nil uses go-ora (tests substitute it).
	Open func(c oraclesrc.Conn) (*sql.DB, error)
}

func (a *OracleActivities) database(name string) (OracleDatabase, error) {
	d, ok := a.Databases[name]
	if !ok {
		return OracleDatabase{}, badInput("Oracle database %q is not configured on this worker (configured here: %s)", name, oracleNames(a.Databases))
	}
	return d, nil
}

func oracleNames(m map[string]OracleDatabase) string {
	names := map[string]string{}
	for k := range m {
		names[k] = ""
	}
	return keys(names)
}

func (a *OracleActivities) connect(d OracleDatabase) (*sql.DB, error) {
	pw, err := d.Password()
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, nil)
	}
	c := d.Conn
	c.Password = pw
	open := a.Open
	if open == nil {
		open = oraclesrc.Open
	}
	db, err := open(c)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("Oracle %s: %v", d.Conn, err), ErrTypeBadInput, nil)
	}
	return db, nil
}

// BackupOracle takes a consistent logical backup of a schema at one SCN:
// DDL, code, grants and every table's rows, streamed into sealed export
// parts, plus a Data Pump export at the same SCN when a directory is
// configured. A retry after a crash discards the incomplete attempt and
// starts again (a logical export cannot resume at the same SCN once undo has
// moved on); a backup that completed is returned as it is.
func (a *OracleActivities) BackupOracle(ctx context.Context, in SnapshotInput) (SnapshotOutput, error) {
	start := time.Now()
	d, err := a.database(in.Database)
	if err != nil {
		return SnapshotOutput{}, err
	}
	if in.Type != "" && in.Type != string(repository.BackupFull) {
		return SnapshotOutput{}, badInput("an Oracle logical backup is always full; backup type %q is for SQLite (use RMAN level 1 for Oracle incrementals)", in.Type)
	}
	if err := repository.ValidateBackupID(in.BackupID); err != nil {
		return SnapshotOutput{}, boundary(err)
	}
	if b, err := repository.ReadBackup(ctx, a.Bucket, in.Database, in.BackupID); err == nil {
		return oracleOutput(b.Manifest, time.Since(start)), nil
	}
	if _, err := repository.DiscardIncomplete(ctx, a.Bucket, in.Database, in.BackupID); err != nil {
		return SnapshotOutput{}, boundary(err)
	}
	db, err := a.connect(d)
	if err != nil {
		return SnapshotOutput{}, err
	}
	defer db.Close()

	lb, err := repository.NewLogicalBackup(ctx, a.Bucket, a.Keeper, a.KeeperDescription, in.Database, in.BackupID, time.Now())
	if err != nil {
		return SnapshotOutput{}, boundary(err)
	}
	// Heartbeats go out every second from their own goroutine: one large
	// table, or a Data Pump job, takes longer than the heartbeat timeout.
	hb := startHeartbeat(ctx, Progress{Phase: "export"})
	defer hb.close()
	schema, tables := d.Schema, d.Tables
	if in.Schema != "" {
		schema, tables = in.Schema, in.Tables
	}
	var rows int64
	exp, err := oraclesrc.Export(ctx, db, oraclesrc.ExportOptions{
		Schema: schema, Tables: tables,
		Progress: func(table string, n int64) {
			rows += n
			hb.set(Progress{Phase: "export " + table, Offset: rows})
		},
	}, sinkFor(lb, repository.ExportOracle))
	if err != nil {
		return SnapshotOutput{}, fmt.Errorf("export schema %s of %s: %w", schema, d.Conn, err)
	}
	info := &repository.LogicalInfo{Schema: schema, SCN: exp.SCN, Exports: []string{repository.ExportOracle}, DDLStable: exp.DDLStable}
	if d.DataPumpDirectory != "" {
		job := "BULWARK$DP_" + strings.ToUpper(strings.NewReplacer("-", "", ".", "", "T", "", "Z", "").Replace(in.BackupID))
		if len(job) > 30 {
			job = job[:30]
		}
		hb.set(Progress{Phase: "datapump", Offset: rows})
		if _, err := oraclesrc.RunDataPumpExport(ctx, db, job, schema, d.DataPumpDirectory, exp.SCN, sinkFor(lb, repository.ExportDataPump), "schema.dmp"); err != nil {
			return SnapshotOutput{}, fmt.Errorf("Data Pump export of %s: %w", schema, err)
		}
		info.Exports = append(info.Exports, repository.ExportDataPump)
		info.DataPump = job
	}
	m := &repository.Manifest{
		Logical: info,
		Database: repository.DatabaseIdentity{Name: in.Database, Engine: repository.EngineOracle,
			Host: d.Conn.Host, Path: d.Conn.Service, SQLiteVersion: ""},
		Compression: "zstd",
		StartedAt:   in.StartedAt, SnapshotAt: time.Now().UTC(), Tool: a.Tool,
	}
	for _, t := range exp.Tables() {
		m.Tables = append(m.Tables, repository.TableRows{Name: t.Name, Rows: t.Rows, Digest: t.Digest})
	}
	if _, _, err := lb.Commit(m); err != nil {
		return SnapshotOutput{}, boundary(err)
	}
	a.Metrics.Succeeded(in.Database, "backup", "primary", time.Now(), time.Since(start))
	return oracleOutput(m, time.Since(start)), nil
}

func oracleOutput(m *repository.Manifest, took time.Duration) SnapshotOutput {
	out := SnapshotOutput{BackupID: m.BackupID, Type: string(repository.BackupFull),
		ManifestKey: repository.ManifestKey(m.Database.Name, m.BackupID), StoredBytes: m.StoredBytes,
		ImageHash: m.ImageDigest(), Tables: len(m.Tables), SnapshotAt: m.SnapshotAt, Duration: Duration(took),
		JournalMode: "scn " + m.Logical.SCN}
	for _, t := range m.Tables {
		out.Rows += t.Rows
	}
	return out
}

// sinkFor stores files of one export kind of a logical backup.
func sinkFor(lb *repository.LogicalBackup, kind string) oraclesrc.FileSink {
	return logicalSink{lb: lb, kind: kind}
}

type logicalSink struct {
	lb   *repository.LogicalBackup
	kind string
}

func (s logicalSink) Create(name string) (io.WriteCloser, error) { return s.lb.Create(s.kind, name) }

// logicalSource reads the row streams of a logical backup.
type logicalSource struct{ lf *repository.LogicalFiles }

func (s logicalSource) Open(name string) (io.ReadCloser, error) {
	return s.lf.Open(repository.ExportOracle, name)
}

// VerifyLogical checks a logical backup without a database: every part's
// hash and authentication, schema.json, and every table's row stream decoded
// to the end with its row count and digest compared with the manifest.
func VerifyLogical(ctx context.Context, bucket *blob.Bucket, keeper repository.SecretsKeeper, b *repository.Backup) []string {
	lf, err := repository.OpenLogical(ctx, bucket, keeper, b)
	if err != nil {
		return []string{err.Error()}
	}
	exp, err := readSchemaExport(lf)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	recorded := map[string]repository.TableRows{}
	for _, t := range b.Manifest.Tables {
		recorded[t.Name] = t
	}
	for _, t := range exp.Tables() {
		activity.RecordHeartbeat(ctx, Progress{Phase: "verify " + t.Name})
		rows, digest, err := digestRowStream(lf, t)
		if err != nil {
			problems = append(problems, fmt.Sprintf("table %s: %v", t.Name, err))
			continue
		}
		want, ok := recorded[t.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("table %s is in schema.json but not in the manifest", t.Name))
		case rows != want.Rows || digest != want.Digest:
			problems = append(problems, fmt.Sprintf("table %s: %d rows with digest %s; the manifest recorded %d with %s", t.Name, rows, digest, want.Rows, want.Digest))
		}
		delete(recorded, t.Name)
	}
	for name := range recorded {
		problems = append(problems, fmt.Sprintf("table %s is in the manifest but has no rows in the backup", name))
	}
	for _, kind := range b.Manifest.Logical.Exports[1:] {
		for _, f := range lf.Files(kind) {
			r, err := lf.Open(kind, f.Name)
			if err == nil {
				_, err = io.Copy(io.Discard, r)
				r.Close()
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s file %s: %v", kind, f.Name, err))
			}
		}
	}
	return problems
}

func readSchemaExport(lf *repository.LogicalFiles) (*oraclesrc.SchemaExport, error) {
	r, err := lf.Open(repository.ExportOracle, oraclesrc.SchemaFile)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, err
	}
	return oraclesrc.ParseSchemaExport(data)
}

func digestRowStream(lf *repository.LogicalFiles, t oraclesrc.SchemaObject) (int64, string, error) {
	cols, err := t.ColumnList()
	if err != nil {
		return 0, "", err
	}
	r, err := lf.Open(repository.ExportOracle, t.RowsFile)
	if err != nil {
		return 0, "", err
	}
	defer r.Close()
	dec, err := oraclesrc.NewDecoder(r)
	if err != nil {
		return 0, "", err
	}
	digest := oraclesrc.NewTableDigest(cols)
	for {
		err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, "", err
		}
		// LOB values are readers valid until the next Value: digest each
		// as it comes, in constant memory.
		digest.StartRow()
		for i := range cols {
			v, err := dec.Value()
			if err != nil {
				return 0, "", err
			}
			if err := digest.Value(i, v); err != nil {
				return 0, "", err
			}
		}
		digest.EndRow()
	}
	// The part reader checks the whole file's hash when it reaches the end.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return 0, "", err
	}
	return int64(digest.Rows()), digest.String(), nil
}

// OracleRestoreInput asks for a logical backup to be restored into a live
// schema.
type OracleRestoreInput struct {
	Database string `json:"database"`
	BackupID string `json:"backup_id"`
	// TargetSchema "" restores into the backup's schema.
	TargetSchema string   `json:"target_schema,omitempty"`
	Tables       []string `json:"tables,omitempty"`
	Mode         string   `json:"mode,omitempty"`
	NewName      string   `json:"new_name,omitempty"`
	// Method is "rows" (default: Bulwark's own restore from the row
	// streams) or "datapump" (import the stored dump with DBMS_DATAPUMP).
	Method string `json:"method,omitempty"`
	// TableExistsAction is Data Pump's (SKIP, APPEND, TRUNCATE, REPLACE).
	TableExistsAction string `json:"table_exists_action,omitempty"`
}

// OracleRestoreOutput reports what was restored and how it checked out.
type OracleRestoreOutput struct {
	Schema   string                  `json:"schema"`
	Tables   []oraclesrc.TableResult `json:"tables"`
	Invalid  []string                `json:"invalid,omitempty"`
	Warnings []string                `json:"warnings,omitempty"`
	Duration Duration                `json:"duration"`
}

// oracleRestoreProgress is the heartbeat of a restore: the rows committed
// per table, so that a retry skips them.
type oracleRestoreProgress struct {
	Phase string           `json:"phase"`
	Done  map[string]int64 `json:"done"`
}

// RestoreOracle restores a logical backup into a schema: the whole schema in
// dependency order, or single tables (replace, append, new name), and checks
// every table it loaded against the backup's row counts and digests.
func (a *OracleActivities) RestoreOracle(ctx context.Context, in OracleRestoreInput) (OracleRestoreOutput, error) {
	start := time.Now()
	d, err := a.database(in.Database)
	if err != nil {
		return OracleRestoreOutput{}, err
	}
	b, err := repository.ReadBackup(ctx, a.Bucket, in.Database, in.BackupID)
	if err != nil {
		return OracleRestoreOutput{}, boundary(err)
	}
	if !b.Manifest.IsLogical() {
		return OracleRestoreOutput{}, badInput("backup %s of %s is a SQLite backup", in.BackupID, in.Database)
	}
	lf, err := repository.OpenLogical(ctx, a.Bucket, a.Keeper, b)
	if err != nil {
		return OracleRestoreOutput{}, boundary(err)
	}
	exp, err := readSchemaExport(lf)
	if err != nil {
		return OracleRestoreOutput{}, boundary(fmt.Errorf("%w: %v", repository.ErrCorrupt, err))
	}
	target := in.TargetSchema
	if target != "" {
		if target, err = oraclesrc.NormalizeIdent(target); err != nil {
			return OracleRestoreOutput{}, badInput("target schema: %v", err)
		}
	}
	tables := make([]string, len(in.Tables))
	for i, t := range in.Tables {
		if tables[i], err = oraclesrc.NormalizeIdent(t); err != nil {
			return OracleRestoreOutput{}, badInput("table: %v", err)
		}
	}
	if _, err := oraclesrc.PlanTableRestore(exp, oraclesrc.RestoreOptions{Tables: tables, Mode: in.Mode, NewName: in.NewName}); err != nil {
		return OracleRestoreOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeOracleRefused, err)
	}
	db, err := a.connect(d)
	if err != nil {
		return OracleRestoreOutput{}, err
	}
	defer db.Close()

	if in.Method == "datapump" {
		if !strings.Contains(strings.Join(b.Manifest.Logical.Exports, ","), repository.ExportDataPump) {
			return OracleRestoreOutput{}, badInput("backup %s has no Data Pump export (configure datapump_directory to take one)", in.BackupID)
		}
		if d.DataPumpDirectory == "" {
			return OracleRestoreOutput{}, badInput("database %s has no datapump_directory to import through", in.Database)
		}
		r, err := lf.Open(repository.ExportDataPump, "schema.dmp")
		if err != nil {
			return OracleRestoreOutput{}, boundary(err)
		}
		defer r.Close()
		action := in.TableExistsAction
		if action == "" {
			action = "SKIP"
		}
		remap := ""
		if target != "" && target != exp.Schema {
			remap = target
		}
		job := "BULWARK$IMP_" + fmt.Sprint(time.Now().Unix())
		res, err := oraclesrc.RunDataPumpImport(ctx, db, job, exp.Schema, remap, d.DataPumpDirectory, action, tables, r)
		if err != nil {
			return OracleRestoreOutput{}, fmt.Errorf("Data Pump import: %w", err)
		}
		out := OracleRestoreOutput{Schema: cmp.Or(target, exp.Schema), Duration: Duration(time.Since(start))}
		out.Warnings = append(out.Warnings, fmt.Sprintf("Data Pump job %s imported %d bytes of dump", res.Job, res.Bytes))
		return out, nil
	}

	var prog oracleRestoreProgress
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &prog)
	}
	mode := in.Mode
	if prog.Phase == "restoring" && len(tables) == 0 && (mode == "" || mode == oraclesrc.ModeCreate) {
		// An earlier attempt of this schema restore died after creating
		// objects (a create restore starts only into an empty schema): they
		// are its own, and this attempt replaces them.
		mode = oraclesrc.ModeReplace
	}
	// A replace or new-name restore is idempotent from the start; an append
	// must not insert the committed rows again.
	done := map[string]int64{}
	if in.Mode == oraclesrc.ModeAppend {
		done = prog.Done
	}
	// What this attempt skips stays recorded, so that a third attempt
	// skips it too.
	prog.Done = map[string]int64{}
	for t, n := range done {
		prog.Done[t] = n
	}
	prog.Phase = "restoring"
	hb := startHeartbeat(ctx, prog)
	defer hb.close()
	rep, err := oraclesrc.Restore(ctx, db, exp, logicalSource{lf}, oraclesrc.RestoreOptions{
		TargetSchema: target, Tables: tables, Mode: mode, NewName: in.NewName, Done: done,
		Progress: func(table string, rows int64) {
			prog.Done[table] = rows
			hb.set(oracleRestoreProgress{Phase: prog.Phase, Done: maps.Clone(prog.Done)})
		},
	})
	if rep == nil {
		if errors.Is(err, oraclesrc.ErrRestoreRefused) {
			return OracleRestoreOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeOracleRefused, err)
		}
		return OracleRestoreOutput{}, err
	}
	out := OracleRestoreOutput{Schema: rep.Schema, Tables: rep.Tables, Invalid: rep.Invalid, Warnings: rep.Warnings, Duration: Duration(time.Since(start))}
	if err != nil {
		return out, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeCheckFailed, err, out)
	}
	return out, nil
}

// RMANInput asks for an RMAN incremental backup on the database host.
type RMANInput struct {
	Database string `json:"database"`
	Level    int    `json:"level"`
	Tag      string `json:"tag"`
}

// RMANOutput reports an RMAN run; Available false means this worker has no
// rman, which is a note in the pipeline, not a failure.
type RMANOutput struct {
	Available bool     `json:"available"`
	Note      string   `json:"note,omitempty"`
	Errors    []string `json:"errors,omitempty"`
	Duration  Duration `json:"duration"`
}

// RMANBackup runs an RMAN level 0 or 1 backup with operating-system
// authentication on a worker that runs on the database host.
func (a *OracleActivities) RMANBackup(ctx context.Context, in RMANInput) (RMANOutput, error) {
	start := time.Now()
	d, err := a.database(in.Database)
	if err != nil {
		return RMANOutput{}, err
	}
	script, err := oraclesrc.RMANBackupScript(in.Level, in.Tag)
	if err != nil {
		return RMANOutput{}, badInput("%v", err)
	}
	res, err := oraclesrc.RunRMAN(ctx, d.RMANPath, script)
	if errors.Is(err, oraclesrc.ErrRMANUnavailable) {
		return RMANOutput{Available: false, Note: "rman is not available on this worker: RMAN backups run on a worker on the database host", Duration: Duration(time.Since(start))}, nil
	}
	out := RMANOutput{Available: true, Errors: res.Errors, Duration: Duration(time.Since(start))}
	if err != nil {
		return out, err
	}
	return out, nil
}

// AssessOracle looks at a live Oracle schema for the DR runbook: whether the
// database answers, how many tables and rows the schema holds, and whether
// any object is INVALID. Healthy means reachable, with tables and no
// invalid object; an unreachable database is an error, which the runbook
// reports as such.
func (a *OracleActivities) AssessOracle(ctx context.Context, in AssessInput) (AssessOutput, error) {
	start := time.Now()
	d, err := a.database(in.Database)
	if err != nil {
		return AssessOutput{}, err
	}
	out := AssessOutput{Path: d.Conn.String() + " schema " + d.Schema}
	db, err := a.connect(d)
	if err != nil {
		return out, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	st, err := oraclesrc.AssessSchema(ctx, db, d.Schema)
	if err != nil {
		return out, temporal.NewApplicationError(fmt.Sprintf("Oracle %s does not answer: %v", d.Conn, err), ErrTypeOracleUnreachable)
	}
	out.Exists, out.Tables, out.Rows = st.Tables > 0, st.Tables, st.Rows
	out.Duration = Duration(time.Since(start))
	switch {
	case st.Tables == 0:
		out.Verdict, out.Reason = VerdictMissing, fmt.Sprintf("schema %s has no tables", d.Schema)
	case len(st.Invalid) > 0:
		out.Verdict, out.Reason = VerdictDamaged, fmt.Sprintf("%d invalid objects: %s", len(st.Invalid), strings.Join(st.Invalid, ", "))
	case len(st.Unreadable) > 0:
		out.Verdict, out.Reason = VerdictDamaged, "tables that cannot be read: "+strings.Join(st.Unreadable, "; ")
	default:
		out.Verdict, out.Reason = VerdictHealthy, fmt.Sprintf("%d tables, %d rows, no invalid object", st.Tables, st.Rows)
	}
	out.Integrity = out.Verdict
	return out, nil
}

package activities

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/bulwark-dr/bulwark/activities/sqlitesrc"
	"github.com/bulwark-dr/bulwark/repository"
)

// Bounds of a restore drill's application checks. They keep the drill's
// input, result and record small (every query's text and first row cross
// Temporal and are stored in the record).
const (
	MaxDrillQueries    = 20   // queries per drill
	MaxDrillQueryBytes = 4000 // bytes of SQL per query
	maxDrillColumns    = 16   // columns of a first row kept
	maxDrillValueBytes = 256  // bytes of a value kept
	// drillQueryTimeout bounds one application check: a query that runs
	// away must not hold the host's worker for the activity's hours.
	drillQueryTimeout = 5 * time.Minute
)

// DrillsDirName is the directory under SQLiteActivities.ScratchDir that
// holds the scratch files of restore drills.
const DrillsDirName = "drills"

// RestoreDrillInput asks for a restore drill of one backup on this host.
type RestoreDrillInput struct {
	Database string `json:"database"`
	BackupID string `json:"backup_id"`
	// Queries are application checks: each must return a row.
	Queries []string `json:"queries,omitempty"`
}

// DrillQueryResult is the outcome of one application check.
type DrillQueryResult = repository.DrillQuery

// RestoreDrillOutput is what a restore drill found. A drill that fails —
// the backup cannot be restored, a check or a query fails — has OK false
// and says why in Problems; it is not an activity error.
type RestoreDrillOutput struct {
	BackupID string `json:"backup_id"`
	// ScratchPath is where the backup was restored; ScratchRemoved says the
	// file is gone again.
	ScratchPath    string `json:"scratch_path"`
	ScratchRemoved bool   `json:"scratch_removed"`
	// Restored: the image was written, fsynced and matched the manifest's
	// hash and size.
	Restored   bool      `json:"restored"`
	SnapshotAt time.Time `json:"snapshot_at,omitzero"`
	ImageBytes int64     `json:"image_bytes,omitempty"`
	ImageHash  string    `json:"image_hash,omitempty"`
	// Healed lists objects read from another destination because the
	// primary's copy was missing or damaged; each is also a problem.
	Healed      []string `json:"healed,omitempty"`
	Integrity   string   `json:"integrity_check,omitempty"`
	ForeignKeys string   `json:"foreign_key_check,omitempty"`
	Tables      int      `json:"tables,omitempty"`
	Rows        int64    `json:"rows,omitempty"`
	// ChecksOK: integrity_check and foreign_key_check pass, and the schema
	// hash and every table's row count equal the manifest's.
	ChecksOK bool               `json:"checks_ok"`
	Queries  []DrillQueryResult `json:"queries,omitempty"`
	OK       bool               `json:"ok"`
	Problems []string           `json:"problems,omitempty"`
	// RestoreDuration is the download, write, fsync and hash check of the
	// whole image: the measured restore time.
	RestoreDuration Duration `json:"restore_duration"`
	CheckDuration   Duration `json:"check_duration"`
	QueryDuration   Duration `json:"query_duration"`
	Duration        Duration `json:"duration"`
}

// CheckDrillQueries reports whether queries can be a drill's application
// checks: at most MaxDrillQueries, none empty or longer than
// MaxDrillQueryBytes.
func CheckDrillQueries(queries []string) error {
	if len(queries) > MaxDrillQueries {
		return fmt.Errorf("%d drill queries, at most %d are allowed", len(queries), MaxDrillQueries)
	}
	for i, q := range queries {
		switch {
		case strings.TrimSpace(q) == "":
			return fmt.Errorf("drill query %d is empty", i+1)
		case len(q) > MaxDrillQueryBytes:
			return fmt.Errorf("drill query %d has %d bytes, at most %d are allowed", i+1, len(q), MaxDrillQueryBytes)
		}
	}
	return nil
}

// RestoreDrill proves that a backup can be restored on this host, and
// measures how long that takes. It restores the backup with the machinery
// of RestoreSQLite (other destinations stand in for objects the primary
// lost, and are reported) to a scratch file under ScratchDir/drills — never
// the database's own path — then runs SQLite's integrity_check and
// foreign_key_check, compares the schema and row counts with the manifest,
// and runs each application query read-only, keeping its first row. The
// scratch file is removed however the drill ends.
//
// Drills of one database on this host run one at a time (a file lock;
// a second waits, heartbeating), so the drill also removes scratch files
// that a dead worker left. A retried attempt starts over rather than
// resuming: the drill measures a whole restore. The database must be
// configured on this host, the host a real restore would run on.
func (a *SQLiteActivities) RestoreDrill(ctx context.Context, in RestoreDrillInput) (out RestoreDrillOutput, err error) {
	start := time.Now()
	out.BackupID = in.BackupID
	if _, err := a.path(in.Database); err != nil {
		return out, err
	}
	if err := repository.ValidateBackupID(in.BackupID); err != nil {
		return out, boundary(err)
	}
	if err := CheckDrillQueries(in.Queries); err != nil {
		return out, badInput("%v", err)
	}
	dir, err := a.drillDir()
	if err != nil {
		return out, err
	}
	scratch := filepath.Join(dir, in.Database+"-"+in.BackupID+".db")
	for name, p := range a.Databases {
		if abs, err := filepath.Abs(p); err == nil && abs == scratch {
			return out, badInput("the drill's scratch file %s is the path of database %s; choose another scratch directory", scratch, name)
		}
	}
	hb := startHeartbeat(ctx, Progress{Phase: "drill: restore"})
	defer hb.close()
	// Two drills of one database (a scheduled one and one started by hand)
	// would write the same scratch file; the second waits for the first.
	unlock, err := lockDrills(ctx, dir, in.Database, func() {
		hb.set(Progress{Phase: "drill: waiting for another drill of " + in.Database + " on this host"})
	})
	if err != nil {
		return out, err
	}
	defer unlock()
	hb.set(Progress{Phase: "drill: restore"})
	// An attempt whose worker died left its file behind; with the lock
	// held, any file of this database is stale.
	removeStaleDrills(dir, in.Database)
	out.ScratchPath = scratch
	defer func() {
		if rmErr := removeScratch(scratch); rmErr != nil {
			out.Problems = append(out.Problems, fmt.Sprintf("the scratch file could not be removed: %v", rmErr))
			out.OK = false
		} else {
			out.ScratchRemoved = true
		}
		out.Duration = Duration(time.Since(start))
	}()
	var (
		healMu sync.Mutex
		healed []string
	)
	t0 := time.Now()
	m, err := sqlitesrc.RestoreToTemp(ctx, sqlitesrc.RestoreOptions{
		Bucket: a.Bucket, Keeper: a.Keeper.Keeper, Database: in.Database, BackupID: in.BackupID,
		TempPath: scratch, Workers: a.Workers, Limiter: a.DownloadLimit,
		Progress: func(settled int, bytes, total int64) {
			hb.set(Progress{Phase: "drill: restore", Chunk: settled, Offset: bytes, Total: total})
		},
		PrimaryName: a.PrimaryName, Fallbacks: a.Fallbacks,
		OnHeal: func(h repository.Heal) {
			healMu.Lock()
			defer healMu.Unlock()
			healed = append(healed, h.String())
		},
	})
	out.RestoreDuration = Duration(time.Since(t0))
	sort.Strings(healed)
	out.Healed = healed
	for _, h := range healed {
		out.Problems = append(out.Problems, "the primary's copy is missing or damaged: "+h)
	}
	if err != nil {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		if !backupUnrestorable(err) {
			return out, boundary(fmt.Errorf("drill: restore %s of %s: %w", in.BackupID, in.Database, err))
		}
		out.Problems = append(out.Problems, fmt.Sprintf("backup %s cannot be restored: %v", in.BackupID, err))
		return out, nil
	}
	out.Restored, out.SnapshotAt, out.ImageBytes, out.ImageHash = true, m.SnapshotAt, m.ImageBytes, m.ImageDigest()

	hb.set(Progress{Phase: "drill: check", Offset: m.ImageBytes, Total: m.ImageBytes})
	t1 := time.Now()
	checkProblems := a.drillCheck(ctx, scratch, m, &out)
	out.CheckDuration = Duration(time.Since(t1))
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	out.ChecksOK = len(checkProblems) == 0
	out.Problems = append(out.Problems, checkProblems...)

	hb.set(Progress{Phase: "drill: queries", Offset: m.ImageBytes, Total: m.ImageBytes})
	t2 := time.Now()
	out.Queries, err = runDrillQueries(ctx, scratch, in.Queries)
	out.QueryDuration = Duration(time.Since(t2))
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	if err != nil {
		out.Problems = append(out.Problems, "application checks: "+err.Error())
	}
	for i, q := range out.Queries {
		if !q.OK {
			out.Problems = append(out.Problems, fmt.Sprintf("query %d (%s): %s", i+1, shorten(oneLine(q.SQL), 120), q.Error))
		}
	}
	out.OK = len(out.Problems) == 0
	return out, nil
}

// drillDir creates and returns the directory of drill scratch files.
func (a *SQLiteActivities) drillDir() (string, error) {
	root := a.ScratchDir
	if root == "" {
		root = os.TempDir()
	}
	dir, err := filepath.Abs(filepath.Join(root, DrillsDirName))
	if err != nil {
		return "", badInput("scratch directory %q: %v", root, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", boundary(&sqlitesrc.TargetError{Msg: fmt.Sprintf("drill scratch directory %s: %v", dir, err)})
	}
	return dir, nil
}

// backupUnrestorable reports whether a restore failed because of the
// backup itself — damaged, missing, sealed with another key, or written by
// a newer Bulwark: what a drill exists to find, so a finding rather than
// an error.
func backupUnrestorable(err error) bool {
	return errors.Is(err, repository.ErrCorrupt) || errors.Is(err, repository.ErrNotFound) ||
		errors.Is(err, repository.ErrWrongKey) || errors.Is(err, repository.ErrUnsupportedFormat)
}

// drillCheck runs SQLite's checks on the restored file and compares it with
// the manifest, filling in out; it returns the problems found.
func (a *SQLiteActivities) drillCheck(ctx context.Context, path string, m *repository.Manifest, out *RestoreDrillOutput) []string {
	check, err := sqlitesrc.CheckFile(ctx, path)
	out.Integrity, out.ForeignKeys, out.Tables = check.Integrity, check.ForeignKeys, len(check.Tables)
	for _, t := range check.Tables {
		out.Rows += t.Rows
	}
	if err != nil {
		return []string{"SQLite cannot check the restored file: " + err.Error()}
	}
	var problems []string
	if check.Integrity != "ok" {
		problems = append(problems, "integrity_check: "+check.Integrity)
	}
	if check.ForeignKeys != "ok" {
		problems = append(problems, "foreign_key_check: "+check.ForeignKeys)
	}
	if check.SchemaHash != m.SchemaSHA256 {
		problems = append(problems, "the schema differs from the manifest's schema hash")
	}
	got := make(map[string]int64, len(check.Tables))
	for _, t := range check.Tables {
		got[t.Name] = t.Rows
	}
	for _, t := range m.Tables {
		if r, ok := got[t.Name]; !ok {
			problems = append(problems, fmt.Sprintf("table %s is missing (the manifest counted %d rows)", t.Name, t.Rows))
		} else if r != t.Rows {
			problems = append(problems, fmt.Sprintf("table %s has %d rows, the manifest counted %d", t.Name, r, t.Rows))
		}
	}
	return problems
}

// runDrillQueries runs each query on the restored file, read-only: the
// file is opened immutable and read-only with query_only set, so a query
// that would write fails instead. The error is for a file that cannot be
// opened at all.
func runDrillQueries(ctx context.Context, path string, queries []string) ([]DrillQueryResult, error) {
	if len(queries) == 0 {
		return nil, nil
	}
	results := make([]DrillQueryResult, len(queries))
	for i, q := range queries {
		results[i] = DrillQueryResult{SQL: q, Error: "not run"}
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("immutable", "1")
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return results, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	for i, query := range queries {
		if ctx.Err() != nil {
			break
		}
		results[i] = runDrillQuery(ctx, db, query)
	}
	if err := db.Close(); err != nil {
		return results, fmt.Errorf("close %s: %w", path, err)
	}
	return results, nil
}

func runDrillQuery(ctx context.Context, db *sql.DB, query string) DrillQueryResult {
	start := time.Now()
	res := DrillQueryResult{SQL: query}
	fail := func(err error) DrillQueryResult {
		res.OK, res.Error = false, err.Error()
		res.Seconds = time.Since(start).Seconds()
		return res
	}
	qctx, cancel := context.WithTimeout(ctx, drillQueryTimeout)
	defer cancel()
	rows, err := db.QueryContext(qctx, query)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return fail(err)
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return fail(err)
		}
		return fail(errors.New("returned no row"))
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return fail(err)
	}
	if err := rows.Close(); err != nil {
		return fail(err)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	n := min(len(cols), maxDrillColumns)
	res.Columns, res.Row = make([]string, n), make([]string, n)
	for i := range n {
		res.Columns[i] = shorten(cols[i], maxDrillValueBytes)
		res.Row[i] = drillValue(vals[i])
	}
	res.OK = true
	res.Seconds = time.Since(start).Seconds()
	return res
}

// drillValue renders a value of a result row as text.
func drillValue(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		if utf8.Valid(v) {
			s = string(v)
		} else {
			return shorten("x'"+hex.EncodeToString(v[:min(len(v), maxDrillValueBytes/2)])+"'", maxDrillValueBytes)
		}
	case string:
		s = v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	default:
		s = fmt.Sprint(v)
	}
	return shorten(s, maxDrillValueBytes)
}

// shorten cuts s to at most n bytes, on a rune boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// removeScratch removes a drill's scratch file and any file SQLite might
// have left next to it. A file already gone is fine.
func removeScratch(path string) error {
	var errs []error
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lockDrills takes this host's lock on the drills of database, an flock on
// <dir>/<database>.lock, polling once a second (and calling waiting) while
// another drill holds it. The kernel releases the lock of a worker that
// dies, so a lock is never stale. The lock file itself stays: removing it
// would let two drills lock different files of the same name.
func lockDrills(ctx context.Context, dir, database string, waiting func()) (func(), error) {
	path := filepath.Join(dir, database+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, boundary(&sqlitesrc.TargetError{Msg: fmt.Sprintf("drill lock %s: %v", path, err)})
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close() // nothing was written
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		waiting()
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// removeStaleDrills removes the scratch files of earlier drills of database
// in dir: exactly <database>-<backup id>.db, so the files of a database
// whose name extends this one's are left alone.
func removeStaleDrills(dir, database string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), database+"-")
		if !ok || e.IsDir() {
			continue
		}
		if id, ok := strings.CutSuffix(rest, ".db"); ok && repository.ValidateBackupID(id) == nil {
			_ = removeScratch(filepath.Join(dir, e.Name()))
		}
	}
}

// RecordDrillInput is the record of a finished drill, built by the
// workflow.
type RecordDrillInput struct {
	Record repository.DrillRecord `json:"record"`
}

// RecordDrillOutput is where the record was stored.
type RecordDrillOutput struct {
	Key string `json:"key"`
}

// RecordDrill stores the record of a restore drill on the primary under
// databases/<database>/drills/<start time>.json. The key derives from the
// record, so a retry rewrites the same object.
func (a *StorageActivities) RecordDrill(ctx context.Context, in RecordDrillInput) (RecordDrillOutput, error) {
	key, err := repository.WriteDrillRecord(ctx, a.Bucket, in.Record)
	if err != nil {
		return RecordDrillOutput{}, boundary(fmt.Errorf("record drill of %s: %w", in.Record.Database, err))
	}
	// The metrics follow the record: a drill counts once it is on file.
	r := in.Record
	a.Metrics.Check(r.Database, "drill", r.OK)
	if r.OK {
		a.Metrics.Succeeded(r.Database, "drill", a.primary().Name, r.FinishedAt, r.FinishedAt.Sub(r.StartedAt))
	} else {
		a.Metrics.Failed(r.Database, "drill")
	}
	return RecordDrillOutput{Key: key}, nil
}

// Bounds of ListDrills.
const (
	DefaultDrillListLimit = 20
	MaxDrillListLimit     = 100
	// maxDrillListBytes keeps a listing well under Temporal's payload limit.
	maxDrillListBytes = 1 << 20
)

// ListDrillsInput names a database whose drill records to list.
type ListDrillsInput struct {
	Database string `json:"database"`
	// Limit is the most records returned, newest first; 0 is
	// DefaultDrillListLimit, and at most MaxDrillListLimit are returned.
	Limit int `json:"limit,omitempty"`
}

// ListDrillsOutput is the newest drill records of a database, newest first.
type ListDrillsOutput struct {
	Drills []repository.DrillRecord `json:"drills"`
	// Truncated says there are older records than those listed.
	Truncated bool `json:"truncated"`
}

// ListDrills returns the newest drill records of a database, newest first.
// The listing is bounded in count and in bytes.
func (a *StorageActivities) ListDrills(ctx context.Context, in ListDrillsInput) (ListDrillsOutput, error) {
	if err := repository.ValidateDatabaseName(in.Database); err != nil {
		return ListDrillsOutput{}, boundary(err)
	}
	limit := in.Limit
	if limit <= 0 {
		limit = DefaultDrillListLimit
	}
	limit = min(limit, MaxDrillListLimit)
	recs, err := repository.ListDrillRecords(ctx, a.Bucket, in.Database, limit+1)
	if err != nil {
		return ListDrillsOutput{}, boundary(fmt.Errorf("list drills of %s: %w", in.Database, err))
	}
	out := ListDrillsOutput{Drills: []repository.DrillRecord{}}
	if len(recs) > limit {
		recs, out.Truncated = recs[:limit], true
	}
	size := 0
	for _, r := range recs {
		data, err := json.Marshal(r)
		if err != nil {
			return ListDrillsOutput{}, err
		}
		if size += len(data); size > maxDrillListBytes {
			out.Truncated = true
			break
		}
		out.Drills = append(out.Drills, r)
	}
	return out, nil
}

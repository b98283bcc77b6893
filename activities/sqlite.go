package activities

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"gocloud.dev/blob"
	"golang.org/x/time/rate"

	"github.com/bulwark-dr/bulwark/activities/sqlitesrc"
	"github.com/bulwark-dr/bulwark/metrics"
	"github.com/bulwark-dr/bulwark/repository"
)

// SQLiteActivities work on the SQLite files of one host. The worker of that
// host registers them on HostQueue(host).
type SQLiteActivities struct {
	Host string
	// Databases maps configured names to absolute paths on this host.
	Databases   map[string]string
	Bucket      *blob.Bucket
	Keeper      sqlitesrc.KeeperWithDescription
	Compression string
	Workers     int
	ChunkBytes  int
	Tool        string
	// UploadLimit and DownloadLimit bound bandwidth to and from the
	// destination; nil means unlimited. They are shared by all activities of
	// this worker.
	UploadLimit   *rate.Limiter
	DownloadLimit *rate.Limiter
	// ScratchDir holds images staged for table restores.
	ScratchDir string
	// Metrics records outcomes for the worker's /metrics; nil records nothing.
	Metrics *metrics.Bulwark
	// PrimaryName names Bucket; Fallbacks are the other destinations,
	// which restores read from when the primary's copy is missing or damaged.
	PrimaryName string
	Fallbacks   []repository.Source
}

func (a *SQLiteActivities) path(name string) (string, error) {
	p, ok := a.Databases[name]
	if !ok {
		return "", badInput("database %q is not configured on host %s (configured here: %s)", name, a.Host, keys(a.Databases))
	}
	return p, nil
}

// SnapshotSQLite takes a hot, consistent snapshot of a database and stores it
// as a full backup. On retry it resumes: chunks an earlier attempt uploaded
// are re-used when the database still holds the same pages.
func (a *SQLiteActivities) SnapshotSQLite(ctx context.Context, in SnapshotInput) (SnapshotOutput, error) {
	start := time.Now()
	path, err := a.path(in.Database)
	if err != nil {
		return SnapshotOutput{}, err
	}
	if err := repository.ValidateBackupID(in.BackupID); err != nil {
		return SnapshotOutput{}, boundary(err)
	}
	var resume Progress
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &resume)
		activity.GetLogger(ctx).Info("resuming backup", "backup", in.BackupID, "chunks_settled", resume.Chunk, "chunks_started", resume.Submitted)
	}
	hb := startHeartbeat(ctx, Progress{Phase: "backup", Chunk: resume.Chunk, Submitted: resume.Submitted})
	defer hb.close()
	typ := repository.BackupType(in.Type)
	switch typ {
	case "", repository.BackupFull, repository.BackupIncremental, repository.BackupDifferential:
	default:
		return SnapshotOutput{}, badInput("backup type %q is not one of full, incremental, differential", in.Type)
	}
	res, err := sqlitesrc.Backup(ctx, sqlitesrc.BackupOptions{
		Type: typ, Path: path, Database: in.Database, BackupID: in.BackupID, Host: a.Host, Tool: a.Tool,
		Bucket: a.Bucket, Keeper: a.Keeper, Compression: a.Compression, Workers: a.Workers,
		ChunkBytes: a.ChunkBytes, ResumeBelow: resume.Submitted, StartedAt: in.StartedAt, Limiter: a.UploadLimit,
		Progress: func(p sqlitesrc.BackupProgress) {
			// Submitted never goes below what an earlier attempt started:
			// those chunks may exist and must be checked before re-use.
			hb.set(Progress{Phase: "backup", Chunk: p.SettledChunks, Submitted: max(p.SubmittedChunks, resume.Submitted), Offset: p.SettledBytes, Total: p.TotalBytes})
		},
	})
	if err != nil {
		a.Metrics.Failed(in.Database, "backup")
		return SnapshotOutput{}, boundary(fmt.Errorf("back up %s: %w", in.Database, err))
	}
	m := res.Manifest
	out := SnapshotOutput{
		BackupID: m.BackupID, Type: string(m.Type), Parent: m.Parent, FullBecause: m.FullBecause, ChangedPages: res.ChangedPages,
		ManifestKey: repository.ManifestKey(m.Database.Name, m.BackupID),
		PageCount:   m.PageCount, ImageBytes: m.ImageBytes, StoredBytes: m.StoredBytes,
		ImageHash: m.ImageDigest(), Chunks: len(m.Chunks), ReusedChunks: res.ReusedChunks,
		Tables: len(m.Tables), JournalMode: m.Database.JournalMode, SnapshotAt: m.SnapshotAt,
		Duration: Duration(time.Since(start)),
	}
	for _, t := range m.Tables {
		out.Rows += t.Rows
	}
	a.Metrics.Succeeded(in.Database, "backup", a.PrimaryName, time.Now(), time.Since(start))
	a.Metrics.Backup(in.Database, out.Type, out.StoredBytes, out.ImageBytes)
	return out, nil
}

// InspectRestoreTarget resolves a restore target and says whether a file is
// already there. A target that cannot be written, or that another process
// has open, is a non-retryable error.
func (a *SQLiteActivities) InspectRestoreTarget(ctx context.Context, in TargetInput) (TargetOutput, error) {
	target := in.Target
	if target == "" {
		p, err := a.path(in.Database)
		if err != nil {
			return TargetOutput{}, err
		}
		target = p
	}
	abs, err := filepath.Abs(target)
	if err != nil {
		return TargetOutput{}, badInput("restore target %q: %v", target, err)
	}
	exists, err := sqlitesrc.CheckTarget(abs)
	if err != nil {
		return TargetOutput{}, boundary(err)
	}
	return TargetOutput{Target: abs, Exists: exists}, nil
}

// RestoreSQLite stages a backup next to its target: it writes the image to a
// temp file, fsyncs it and checks its hash against the manifest. It resumes
// from the last chunk its heartbeat recorded.
func (a *SQLiteActivities) RestoreSQLite(ctx context.Context, in RestoreInput) (RestoreOutput, error) {
	start := time.Now()
	if !filepath.IsAbs(in.Target) {
		return RestoreOutput{}, badInput("restore target %q must be an absolute path", in.Target)
	}
	source, bucket, fallbacks, err := a.sourcesFrom(in.From)
	if err != nil {
		return RestoreOutput{}, err
	}
	if in.Repair && source != a.PrimaryName {
		return RestoreOutput{}, badInput("repair writes to the primary %q; it cannot be combined with reading from %q first", a.PrimaryName, in.From)
	}
	var resume Progress
	tmp := sqlitesrc.TempPathFor(in.Target, in.BackupID)
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &resume); err != nil {
			resume = Progress{}
		}
		if _, err := os.Stat(tmp); err != nil {
			resume = Progress{} // the staged file is gone: start over
		}
	}
	if resume.Chunk > 0 {
		activity.GetLogger(ctx).Info("resuming restore", "backup", in.BackupID, "from_chunk", resume.Chunk)
	}
	hb := startHeartbeat(ctx, resume)
	defer hb.close()
	var (
		mu     sync.Mutex
		healed []string
	)
	m, err := sqlitesrc.RestoreToTemp(ctx, sqlitesrc.RestoreOptions{
		Bucket: bucket, Keeper: a.Keeper.Keeper, Database: in.Database, BackupID: in.BackupID,
		TempPath: tmp, StartChunk: resume.Chunk, Workers: a.Workers, Limiter: a.DownloadLimit,
		Progress: func(settled int, bytes, total int64) {
			hb.set(Progress{Phase: "restore", Chunk: settled, Offset: bytes, Total: total})
		},
		PrimaryName: source, Fallbacks: fallbacks, Repair: in.Repair,
		OnHeal: func(h repository.Heal) {
			mu.Lock()
			defer mu.Unlock()
			healed = append(healed, h.String())
			activity.GetLogger(ctx).Warn("read from another destination", "key", h.Key, "from", h.From, "problem", h.Problem, "repaired", h.Repaired)
		},
	})
	if err != nil {
		return RestoreOutput{}, boundary(fmt.Errorf("restore %s of %s: %w", in.BackupID, in.Database, err))
	}
	sort.Strings(healed)
	return RestoreOutput{TempPath: tmp, ImageBytes: m.ImageBytes, ImageHash: m.ImageDigest(), Healed: healed, Source: source, Duration: Duration(time.Since(start))}, nil
}

// sourcesFrom orders the destinations a restore reads: from first ("" is
// the primary), then the others in their configured order, primary first.
// A name that is not configured on this host is bad input.
func (a *SQLiteActivities) sourcesFrom(from string) (string, *blob.Bucket, []repository.Source, error) {
	if from == "" || from == a.PrimaryName {
		return a.PrimaryName, a.Bucket, a.Fallbacks, nil
	}
	names := []string{a.PrimaryName}
	for i, s := range a.Fallbacks {
		if s.Name == from {
			others := append([]repository.Source{{Name: a.PrimaryName, Bucket: a.Bucket}}, a.Fallbacks[:i]...)
			return s.Name, s.Bucket, append(others, a.Fallbacks[i+1:]...), nil
		}
		names = append(names, s.Name)
	}
	return "", nil, nil, badInput("destination %q is not configured on host %s (configured: %s)", from, a.Host, strings.Join(names, ", "))
}

// SwapInRestore moves a staged restore into place, keeping any existing file
// as an emergency copy.
func (a *SQLiteActivities) SwapInRestore(ctx context.Context, in SwapInput) (SwapOutput, error) {
	if !filepath.IsAbs(in.Target) || !filepath.IsAbs(in.TempPath) || !filepath.IsAbs(in.EmergencyPath) {
		return SwapOutput{}, badInput("swap paths must be absolute")
	}
	saved, err := sqlitesrc.SwapIn(in.TempPath, in.Target, in.EmergencyPath)
	if err != nil {
		return SwapOutput{EmergencyCopy: saved}, boundary(err)
	}
	return SwapOutput{EmergencyCopy: saved}, nil
}

// DiscardRestore removes the staged restore of a backup to a target (after
// a rejection, a timeout or a cancellation, possibly mid-download). A file
// already gone is fine; the target itself is never touched.
func (a *SQLiteActivities) DiscardRestore(ctx context.Context, in DiscardInput) error {
	if !filepath.IsAbs(in.Target) {
		return badInput("restore target %q must be an absolute path", in.Target)
	}
	if err := repository.ValidateBackupID(in.BackupID); err != nil {
		return boundary(err)
	}
	tmp := sqlitesrc.TempPathFor(in.Target, in.BackupID)
	if err := os.Remove(tmp); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove staged restore %s: %w", tmp, err)
	}
	return nil
}

// RestoreTable restores one table of a backup into a live database on this
// host: it stages the backup's image in the scratch directory, makes an
// emergency copy of the live database, and changes the table in one
// transaction (see sqlitesrc.RestoreTable).
func (a *SQLiteActivities) RestoreTable(ctx context.Context, in TableInput) (TableOutput, error) {
	into := in.Into
	if into == "" {
		p, err := a.path(in.Database)
		if err != nil {
			return TableOutput{}, err
		}
		into = p
	}
	if !filepath.IsAbs(into) || (in.EmergencyPath != "" && !filepath.IsAbs(in.EmergencyPath)) {
		return TableOutput{}, badInput("table restore paths must be absolute")
	}
	if err := repository.ValidateBackupID(in.BackupID); err != nil {
		return TableOutput{}, boundary(err)
	}
	emergency := in.EmergencyPath
	if emergency == "" {
		emergency = into + ".emergency-" + time.Now().UTC().Format("20060102T150405Z")
	}
	if attempt := activity.GetInfo(ctx).Attempt; attempt > 1 {
		// An earlier attempt may have made its copy before it died; each
		// attempt keeps its own rather than refusing to overwrite one.
		emergency += fmt.Sprintf(".attempt%d", attempt)
	}
	dir := a.ScratchDir
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return TableOutput{}, boundary(&sqlitesrc.TargetError{Msg: fmt.Sprintf("scratch directory %s: %v", dir, err)})
	}
	image := filepath.Join(dir, "table-restore-"+in.Database+"-"+in.BackupID+".db")
	defer os.Remove(image)
	hb := startHeartbeat(ctx, Progress{Phase: "stage"})
	defer hb.close()
	if _, err := sqlitesrc.RestoreToTemp(ctx, sqlitesrc.RestoreOptions{
		Bucket: a.Bucket, Keeper: a.Keeper.Keeper, Database: in.Database, BackupID: in.BackupID,
		TempPath: image, Workers: a.Workers, Limiter: a.DownloadLimit,
		Progress: func(settled int, bytes, total int64) {
			hb.set(Progress{Phase: "stage", Chunk: settled, Offset: bytes, Total: total})
		},
	}); err != nil {
		return TableOutput{}, boundary(fmt.Errorf("stage %s of %s: %w", in.BackupID, in.Database, err))
	}
	res, err := sqlitesrc.RestoreTable(ctx, sqlitesrc.TableRestoreOptions{
		Image: image, Live: into, Table: in.Table, Mode: in.Mode, EmergencyCopy: emergency,
	})
	if err != nil {
		return res, boundary(fmt.Errorf("restore table %s of %s: %w", in.Table, in.BackupID, err))
	}
	return res, nil
}

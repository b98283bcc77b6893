package activities

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"gocloud.dev/blob"
	"golang.org/x/time/rate"

	"github.com/bulwark-dr/bulwark/activities/sqlitesrc"
	"github.com/bulwark-dr/bulwark/metrics"
	"github.com/bulwark-dr/bulwark/notify"
	"github.com/bulwark-dr/bulwark/repository"
)

// StorageActivities read and check backups in storage; any worker can run
// them.
type StorageActivities struct {
	// Bucket is the primary destination's bucket.
	Bucket *blob.Bucket
	// Destinations are every configured destination, primary first.
	Destinations []Destination
	Keeper       repository.SecretsKeeper
	TempDir      string // scratch space for rebuilding images during verify
	Worker       string
	Workers      int
	// DownloadLimit bounds bandwidth from the destination; nil is unlimited.
	DownloadLimit *rate.Limiter
	// UploadLimit bounds bandwidth of copies to other destinations.
	UploadLimit *rate.Limiter
	// Notifier sends events to the configured channels; nil sends nothing.
	Notifier *notify.Router
	// Metrics records outcomes for the worker's /metrics; nil records nothing.
	Metrics *metrics.Bulwark
}

// VerifyBackup reads every object of a backup back, checks hashes and
// authentication, rebuilds the database in a scratch file, runs SQLite's
// integrity and foreign key checks, compares row counts, schema and image
// hash with the manifest, and stores the result next to the backup. A backup
// that fails verification is reported in the output (OK false) and the
// record, not as an activity error, so the workflow can act on it.
func (a *StorageActivities) VerifyBackup(ctx context.Context, in VerifyInput) (VerifyOutput, error) {
	start := time.Now()
	out := VerifyOutput{BackupID: in.BackupID}
	b, err := repository.ReadBackup(ctx, a.Bucket, in.Database, in.BackupID)
	if err != nil {
		return out, boundary(err)
	}
	m := b.Manifest
	out.Chunks = len(m.Chunks)
	problems, check := a.verify(ctx, b)
	out.Problems = problems
	out.OK = len(problems) == 0
	out.Integrity, out.ForeignKey = check.Integrity, check.ForeignKeys
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	for _, c := range m.Chunks {
		out.BytesRead += c.StoredBytes
	}
	now := time.Now()
	rec := repository.VerifyRecord{
		BackupID: in.BackupID, VerifiedAt: now.UTC().Format(time.RFC3339Nano), OK: out.OK,
		Problems: problems, ChunksChecked: out.Chunks, BytesRead: out.BytesRead,
		ImageHash: m.ImageDigest(), IntegrityCheck: check.Integrity, ForeignKeys: check.ForeignKeys,
		Worker: a.Worker,
	}
	a.Metrics.Check(in.Database, "verify", out.OK)
	if out.OK {
		a.Metrics.Succeeded(in.Database, "verify", a.primary().Name, now, time.Since(start))
	} else {
		a.Metrics.Failed(in.Database, "verify")
	}
	out.RecordKey = repository.VerifyRecordKey(in.Database, in.BackupID, now)
	if err := repository.WriteVerifyRecord(ctx, a.Bucket, in.Database, out.RecordKey, rec); err != nil {
		return out, fmt.Errorf("record verification of %s: %w", in.BackupID, err)
	}
	out.Duration = Duration(time.Since(start))
	return out, nil
}

// verify returns every problem found; an empty list means the backup is
// good. The chain is checked oldest first, each backup's own objects
// without decrypting; the first damaged backup is reported with every
// backup that depends on it. Only an intact chain is rebuilt and checked by
// SQLite.
func (a *StorageActivities) verify(ctx context.Context, b *repository.Backup) ([]string, sqlitesrc.CheckResult) {
	var check sqlitesrc.CheckResult
	m := b.Manifest
	db := m.Database.Name
	// A damaged backup is named with every backup that depends on it. The
	// per-backup object check that finds it reads every chunk, so it runs
	// only when the chain or the rebuild fails: a healthy backup is read once.
	damaged := func(cause error) ([]string, sqlitesrc.CheckResult) {
		ids, chainErr := repository.ChainIDs(ctx, a.Bucket, db, m.BackupID)
		broken := ""
		if chainErr != nil {
			broken, cause = ids[0], chainErr // the ancestor whose manifest cannot be read
		}
		for _, id := range ids {
			if broken != "" {
				break
			}
			activity.RecordHeartbeat(ctx, Progress{Phase: "verify"})
			if err := repository.CheckObjects(ctx, a.Bucket, a.Keeper, db, id); err != nil {
				broken, cause = id, err
			}
		}
		if broken == "" {
			return []string{cause.Error()}, check
		}
		affected, err := repository.Dependents(ctx, a.Bucket, db, broken)
		if err != nil {
			affected = []string{broken, m.BackupID}
		}
		return []string{fmt.Sprintf("backup %s is damaged (%v); backups that cannot be restored because of it: %s",
			broken, cause, strings.Join(affected, ", "))}, check
	}

	// Other destinations stand in for objects the primary lost, so that the
	// rebuild shows whether the backup is still recoverable; every object
	// read from elsewhere is still a problem of the primary, reported by key.
	primary := a.primary()
	var fallbacks []repository.Source
	for _, d := range a.Destinations {
		if d.Name != primary.Name {
			fallbacks = append(fallbacks, repository.Source{Name: d.Name, Bucket: d.Bucket})
		}
	}
	sources := append([]repository.Source{{Name: primary.Name, Bucket: a.Bucket}}, fallbacks...)
	var (
		healMu sync.Mutex
		heals  []string
	)
	onHeal := func(h repository.Heal) {
		healMu.Lock()
		defer healMu.Unlock()
		heals = append(heals, fmt.Sprintf("%s is damaged or missing on %s (%s); an intact copy was read from %s", h.Key, primary.Name, h.Problem, h.From))
	}
	chain, chainHeals, err := repository.ChainFrom(ctx, sources, a.Keeper, db, m.BackupID)
	if err != nil {
		return damaged(err)
	}
	for _, h := range chainHeals {
		onHeal(h)
	}
	// The page indexes of the older backups: the next backup on this chain
	// reads them, merged with this backup's. A page index healed here is
	// reported once, even when the comparison below reads it again.
	indexHealed := map[string]bool{}
	if len(fallbacks) > 0 {
		for _, l := range chain[:len(chain)-1] {
			hs, err := repository.CheckPageIndexFrom(ctx, sources, l, repository.HealOptions{})
			if err != nil {
				return damaged(err)
			}
			for _, h := range hs {
				indexHealed[h.Key] = true
				onHeal(h)
			}
		}
	}
	dir := a.TempDir
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return []string{fmt.Sprintf("scratch directory %s: %v", dir, err)}, check
	}
	f, err := os.CreateTemp(dir, "verify-"+m.BackupID+"-*.db")
	if err != nil {
		return []string{fmt.Sprintf("scratch file in %s: %v", dir, err)}, check
	}
	defer os.Remove(f.Name())
	defer f.Close()
	hb := startHeartbeat(ctx, Progress{Phase: "verify", Total: m.ImageBytes})
	defer hb.close()
	sum, err := repository.RestoreImage(ctx, a.Bucket, chain, f, repository.RestoreOptions{
		Workers: a.Workers, Limiter: a.DownloadLimit,
		Fallbacks: fallbacks, PrimaryName: primary.Name, OnHeal: onHeal,
		Progress: func(settled int, bytes int64) {
			hb.set(Progress{Phase: "verify", Chunk: settled, Offset: bytes, Total: m.ImageBytes})
		},
	})
	if err != nil {
		if ctx.Err() != nil {
			return []string{err.Error()}, check
		}
		hb.close()
		return damaged(err)
	}
	var problems []string
	if sum != m.ImageDigest() {
		problems = append(problems, fmt.Sprintf("image hash %s differs from the manifest's %s", sum, m.ImageDigest()))
	}
	if m.PageIndex != nil {
		// The backup's page index lists only what changed since its parent
		// (unless it is a full backup or an older one): the hashes of the
		// whole image are merged along the chain.
		page, hs, err := repository.PageIndexMismatchFrom(ctx, sources, chain, f, repository.HealOptions{})
		for _, h := range hs {
			if !indexHealed[h.Key] {
				onHeal(h)
			}
		}
		if err != nil {
			problems = append(problems, "page index: "+err.Error())
		} else if page != 0 {
			problems = append(problems, fmt.Sprintf("page index differs from the image at page %d", page))
		}
	}
	sort.Strings(heals)
	problems = append(problems, heals...)
	// The history's hash chain from this backup back: a backup removed or
	// replaced behind Bulwark's back is named here.
	if history, err := repository.CheckHistory(ctx, a.Bucket, a.Keeper, db, m.BackupID); err != nil {
		problems = append(problems, "history: "+err.Error())
	} else {
		problems = append(problems, history...)
	}
	check, err = sqlitesrc.CheckFile(ctx, f.Name())
	if err != nil {
		return append(problems, err.Error()), check
	}
	if check.Integrity != "ok" {
		problems = append(problems, "integrity_check: "+check.Integrity)
	}
	if check.ForeignKeys != "ok" {
		problems = append(problems, "foreign_key_check: "+check.ForeignKeys)
	}
	if check.SchemaHash != m.SchemaSHA256 {
		problems = append(problems, "schema differs from the manifest's schema hash")
	}
	got := map[string]int64{}
	for _, t := range check.Tables {
		got[t.Name] = t.Rows
	}
	for _, t := range m.Tables {
		if r, ok := got[t.Name]; !ok || r != t.Rows {
			problems = append(problems, fmt.Sprintf("table %s has %d rows, the manifest counted %d", t.Name, r, t.Rows))
		}
	}
	return problems, check
}

// ListBackups lists complete backups with their last verification. Only
// backups whose manifest exists appear.
func (a *StorageActivities) ListBackups(ctx context.Context, in ListInput) (ListOutput, error) {
	limit := in.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var names []string
	if in.Database != "" {
		if err := repository.ValidateDatabaseName(in.Database); err != nil {
			return ListOutput{}, boundary(err)
		}
		names = []string{in.Database}
	} else {
		var err error
		if names, err = repository.ListDatabases(ctx, a.Bucket); err != nil {
			return ListOutput{}, err
		}
	}
	var out ListOutput
	for _, db := range names {
		ids, err := repository.ListBackups(ctx, a.Bucket, db)
		if err != nil {
			return ListOutput{}, err
		}
		for _, id := range ids {
			s := BackupSummary{Database: db, BackupID: id, Verified: "never"}
			b, err := repository.ReadBackup(ctx, a.Bucket, db, id)
			if err != nil {
				s.Verified = "UNREADABLE: " + err.Error()
				out.Backups = append(out.Backups, s)
				continue
			}
			m := b.Manifest
			s.Type, s.Parent, s.SnapshotAt = string(m.Type), m.Parent, m.SnapshotAt
			s.ImageBytes, s.StoredBytes, s.Chunks = m.ImageBytes, m.StoredBytes, len(m.Chunks)
			if kinds, err := repository.ExportKinds(ctx, a.Bucket, db, id); err == nil {
				s.Exports = kinds
			}
			s.Locations = []string{a.primary().Name}
			if recs, err := repository.ReplicaRecords(ctx, a.Bucket, db, id); err == nil {
				for _, r := range recs {
					s.Locations = append(s.Locations, r.Destination)
				}
			}
			if rec, err := repository.LatestVerifyRecord(ctx, a.Bucket, db, id); err == nil && rec != nil {
				s.Verified, s.VerifiedAt = "ok", rec.VerifiedAt
				if !rec.OK {
					s.Verified = "FAILED"
				}
			}
			out.Backups = append(out.Backups, s)
		}
	}
	sort.SliceStable(out.Backups, func(i, j int) bool {
		return repository.CompareBackupIDs(out.Backups[i].BackupID, out.Backups[j].BackupID) < 0
	})
	if len(out.Backups) > limit {
		out.Backups, out.Truncated = out.Backups[len(out.Backups)-limit:], true
	}
	return out, nil
}

// ResolveBackup turns "latest", a backup id, or a time (RFC 3339: the newest
// backup at or before it) into a backup id.
func (a *StorageActivities) ResolveBackup(ctx context.Context, in ResolveInput) (ResolveOutput, error) {
	if err := repository.ValidateDatabaseName(in.Database); err != nil {
		return ResolveOutput{}, boundary(err)
	}
	ref := strings.TrimSpace(in.Ref)
	if repository.ValidateBackupID(ref) == nil {
		if _, err := repository.ReadBackup(ctx, a.Bucket, in.Database, ref); err != nil {
			return ResolveOutput{}, boundary(err)
		}
		return ResolveOutput{BackupID: ref}, nil
	}
	var until time.Time
	if ref != "" && ref != "latest" {
		t, err := time.Parse(time.RFC3339, ref)
		if err != nil {
			return ResolveOutput{}, badInput("backup %q is neither a backup id, \"latest\", nor an RFC 3339 time such as 2026-11-01T14:00:00Z", ref)
		}
		until = t
	}
	ids, err := repository.ListBackups(ctx, a.Bucket, in.Database)
	if err != nil {
		return ResolveOutput{}, err
	}
	for i := len(ids) - 1; i >= 0; i-- {
		if until.IsZero() {
			return ResolveOutput{BackupID: ids[i]}, nil
		}
		b, err := repository.ReadBackup(ctx, a.Bucket, in.Database, ids[i])
		if err != nil {
			continue
		}
		if !b.Manifest.SnapshotAt.After(until) {
			return ResolveOutput{BackupID: ids[i]}, nil
		}
	}
	if until.IsZero() {
		return ResolveOutput{}, boundary(fmt.Errorf("%w: database %s has no complete backups", repository.ErrNotFound, in.Database))
	}
	return ResolveOutput{}, boundary(fmt.Errorf("%w: database %s has no backup at or before %s", repository.ErrNotFound, in.Database, until.Format(time.RFC3339)))
}

// NewestVerifiedInput names a database.
type NewestVerifiedInput struct {
	Database string `json:"database"`
}

// NewestVerifiedOutput is the newest backup that passed verification ("" when
// none has).
type NewestVerifiedOutput struct {
	BackupID   string    `json:"backup_id"`
	SnapshotAt time.Time `json:"snapshot_at"`
}

// NewestVerified finds the newest backup of a database on the primary whose
// latest verification passed: the point a restore could return to now, the
// measure of the recovery point objective.
func (a *StorageActivities) NewestVerified(ctx context.Context, in NewestVerifiedInput) (NewestVerifiedOutput, error) {
	if err := repository.ValidateDatabaseName(in.Database); err != nil {
		return NewestVerifiedOutput{}, boundary(err)
	}
	ids, err := repository.ListBackups(ctx, a.Bucket, in.Database)
	if err != nil {
		return NewestVerifiedOutput{}, err
	}
	for i := len(ids) - 1; i >= 0; i-- {
		rec, err := repository.LatestVerifyRecord(ctx, a.Bucket, in.Database, ids[i])
		if err != nil || rec == nil || !rec.OK {
			continue
		}
		b, err := repository.ReadBackup(ctx, a.Bucket, in.Database, ids[i])
		if err != nil {
			continue
		}
		a.Metrics.RPOAge(in.Database, time.Since(b.Manifest.SnapshotAt))
		return NewestVerifiedOutput{BackupID: ids[i], SnapshotAt: b.Manifest.SnapshotAt}, nil
	}
	return NewestVerifiedOutput{}, nil
}

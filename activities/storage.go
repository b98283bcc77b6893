package activities

import (
	"context"
	"errors"
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
	var (
		problems []string
		check    sqlitesrc.CheckResult
	)
	if m.IsLogical() {
		// No image to rebuild: every file is read back and every table's
		// rows decoded and digested against the manifest.
		problems = VerifyLogical(ctx, a.Bucket, a.Keeper, b)
		check.Integrity = "not applicable (Oracle logical backup: rows and digests checked)"
	} else {
		var err error
		if problems, check, err = a.verify(ctx, b); err != nil {
			// Storage failed, not the backup: nothing is recorded, and the
			// retry policy tries again.
			a.Metrics.Failed(in.Database, "verify")
			return out, fmt.Errorf("verify %s: %w", in.BackupID, err)
		}
	}
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
// SQLite. An error is a storage fault (unreachable, refusing, the context
// ending), which says nothing about the backup: it is returned for the
// retry policy to try again, never recorded as a problem.
func (a *StorageActivities) verify(ctx context.Context, b *repository.Backup) ([]string, sqlitesrc.CheckResult, error) {
	var check sqlitesrc.CheckResult
	m := b.Manifest
	db := m.Database.Name
	// A damaged backup is named with every backup that depends on it. The
	// per-backup object check that finds it reads every chunk, so it runs
	// only when the chain or the rebuild fails: a healthy backup is read once.
	damaged := func(cause error) ([]string, sqlitesrc.CheckResult, error) {
		if storageFault(cause) {
			return nil, check, cause
		}
		ids, chainErr := repository.ChainIDs(ctx, a.Bucket, db, m.BackupID)
		if chainErr != nil && storageFault(chainErr) {
			return nil, check, chainErr
		}
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
				if storageFault(err) {
					return nil, check, err
				}
				broken, cause = id, err
			}
		}
		if broken == "" {
			return []string{cause.Error()}, check, nil
		}
		affected, err := repository.Dependents(ctx, a.Bucket, db, broken)
		if err != nil {
			affected = []string{broken, m.BackupID}
		}
		return []string{fmt.Sprintf("backup %s is damaged (%v); backups that cannot be restored because of it: %s",
			broken, cause, strings.Join(affected, ", "))}, check, nil
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
	// Compare with the manifest as authenticated, not as first read.
	m = chain[len(chain)-1].Manifest()
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
		return []string{fmt.Sprintf("scratch directory %s: %v", dir, err)}, check, nil
	}
	f, err := createScratch(dir, "verify", m.BackupID)
	if err != nil {
		return []string{fmt.Sprintf("scratch file in %s: %v", dir, err)}, check, nil
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
			return nil, check, err
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
		if err != nil && storageFault(err) {
			return nil, check, err
		} else if err != nil {
			problems = append(problems, "page index: "+err.Error())
		} else if page != 0 {
			problems = append(problems, fmt.Sprintf("page index differs from the image at page %d", page))
		}
	}
	sort.Strings(heals)
	problems = append(problems, heals...)
	// The history's hash chain from this backup back: a backup removed or
	// replaced behind Bulwark's back is named here.
	if history, err := repository.CheckHistory(ctx, a.Bucket, a.Keeper, db, m.BackupID); err != nil && storageFault(err) {
		return nil, check, err
	} else if err != nil {
		problems = append(problems, "history: "+err.Error())
	} else {
		problems = append(problems, history...)
	}
	check, err = sqlitesrc.CheckFile(ctx, f.Name())
	if err != nil {
		return append(problems, err.Error()), check, nil
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
	return problems, check, nil
}

// storageFault reports an error that says nothing about the stored backup
// — storage unreachable or refusing, the context ending — as opposed to an
// object missing or damaged, a wrong key or bad input.
func storageFault(err error) bool {
	for _, e := range []error{repository.ErrCorrupt, repository.ErrNotFound, repository.ErrWrongKey, repository.ErrUnsupportedFormat, repository.ErrBadInput} {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
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
			// A restore reads the other destinations for a manifest the
			// primary lost or holds damaged: the backup exists if one of
			// them has it.
			if storageFault(err) || a.readElsewhere(ctx, in.Database, ref) == nil {
				return ResolveOutput{}, boundary(err)
			}
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
		if err != nil && !storageFault(err) {
			if other := a.readElsewhere(ctx, in.Database, ids[i]); other != nil {
				b, err = other, nil // the restore heals the primary's copy from there too
			}
		}
		if err != nil {
			if started, terr := repository.BackupTime(ids[i]); (terr == nil && started.After(until)) || errors.Is(err, repository.ErrNotFound) {
				continue // started after the time asked for, or gone since it was listed
			}
			// Skipping it would silently restore an older point.
			return ResolveOutput{}, boundary(fmt.Errorf("backup %s may be the newest at or before %s, but its manifest cannot be read: %w", ids[i], until.Format(time.RFC3339), err))
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

// readElsewhere reads the manifest of backupID from the first destination
// other than the primary that holds it readable, or returns nil.
func (a *StorageActivities) readElsewhere(ctx context.Context, database, backupID string) *repository.Backup {
	primary := a.primary().Name
	for _, d := range a.Destinations {
		if d.Name == primary {
			continue
		}
		if b, err := repository.ReadBackup(ctx, d.Bucket, database, backupID); err == nil {
			return b
		}
	}
	return nil
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

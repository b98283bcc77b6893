package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/bulwark-dr/bulwark/destinations"
	"github.com/bulwark-dr/bulwark/repository"
	"github.com/bulwark-dr/bulwark/retention"
)

// ErrTypeLocked: a deletion was refused because the destination's
// write-once lock has not expired. Retrying cannot help before that date.
const ErrTypeLocked = "Locked"

// CleanupInput asks for the retention plan of one database on one
// destination at a moment (the workflow's time, so a replay plans alike).
type CleanupInput struct {
	Database    string    `json:"database"`
	Destination string    `json:"destination"`
	Now         time.Time `json:"now"`
}

// CleanupDecision is one backup of a plan: kept with every rule that keeps
// it, or removed with why.
type CleanupDecision struct {
	BackupID   string    `json:"backup_id"`
	Type       string    `json:"type"`
	SnapshotAt time.Time `json:"snapshot_at"`
	Keep       bool      `json:"keep"`
	Reasons    []string  `json:"reasons"`
}

// CleanupPlan is a destination's plan, newest backup first: the order in
// which removals are safe (children before their parents).
type CleanupPlan struct {
	Destination string            `json:"destination"`
	Policy      string            `json:"policy"`
	Skipped     string            `json:"skipped,omitempty"` // why nothing was planned
	Decisions   []CleanupDecision `json:"decisions"`
}

// PlanCleanup applies the destination's retention policy to the backups it
// holds. It reads and deletes nothing else: `forget --dry-run` shows exactly
// this plan, and a real run removes exactly its Keep=false backups.
func (a *StorageActivities) PlanCleanup(ctx context.Context, in CleanupInput) (CleanupPlan, error) {
	if err := repository.ValidateDatabaseName(in.Database); err != nil {
		return CleanupPlan{}, boundary(err)
	}
	d, err := a.destination(in.Destination)
	if err != nil {
		return CleanupPlan{}, err
	}
	plan := CleanupPlan{Destination: d.Name, Policy: d.Retention.String(), Decisions: []CleanupDecision{}}
	if d.Retention == (retention.Policy{}) {
		plan.Skipped = "no retention policy: every backup is kept"
		return plan, nil
	}
	sized, err := a.sizedBackups(ctx, d, in.Database)
	if err != nil {
		return plan, err
	}
	// Unreadable manifests are left out by sizedBackups: retention must not
	// delete what it cannot describe. Verify reports them.
	var backups []retention.Backup
	types := map[string]string{}
	for _, sb := range sized {
		rb := sb.Backup
		if until, err := a.lockedUntil(ctx, d, in.Database, rb.ID); err == nil {
			rb.LockedUntil = until
		}
		types[rb.ID] = rb.Type
		backups = append(backups, rb)
	}
	decisions, err := retention.Plan(backups, d.Retention, in.Now)
	if err != nil {
		return plan, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, err)
	}
	byID := map[string]retention.Backup{}
	for _, b := range backups {
		byID[b.ID] = b
	}
	for _, dec := range decisions {
		plan.Decisions = append(plan.Decisions, CleanupDecision{
			BackupID: dec.ID, Type: types[dec.ID], SnapshotAt: byID[dec.ID].Time, Keep: dec.Keep, Reasons: dec.Reasons,
		})
	}
	return plan, nil
}

// lockedUntil is the later of the lock Bulwark recorded when it copied the
// backup there and the lock the destination reports on its manifest.
func (a *StorageActivities) lockedUntil(ctx context.Context, d Destination, database, id string) (time.Time, error) {
	var until time.Time
	recs, err := repository.ReplicaRecords(ctx, d.Bucket, database, id)
	if err != nil {
		return until, err
	}
	for _, r := range recs {
		if r.Destination == d.Name && r.LockedUntil.After(until) {
			until = r.LockedUntil
		}
	}
	if d.LockMode != "" {
		if t, err := destinations.LockedUntil(ctx, d.Bucket, repository.ManifestKey(database, id)); err == nil && t.After(until) {
			until = t
		}
	}
	return until, nil
}

// ForgetInput names one backup to remove from one destination.
type ForgetInput struct {
	Database    string    `json:"database"`
	Destination string    `json:"destination"`
	BackupID    string    `json:"backup_id"`
	Now         time.Time `json:"now"`
	// Reason is recorded in the backup's tombstone.
	Reason string `json:"reason,omitempty"`
}

// ForgetOutput reports what was deleted.
type ForgetOutput struct {
	BackupID string `json:"backup_id"`
	Objects  int    `json:"objects"`
	Bytes    int64  `json:"bytes"`
}

// ForgetBackup deletes one backup from one destination: the manifest first,
// so that from then on the backup is not listed and nothing starts to use
// it, then its other objects. A backup still under a write-once lock is
// refused before anything is deleted. Another backup that depends on it is
// refused too: retention never breaks a chain, and neither does this.
func (a *StorageActivities) ForgetBackup(ctx context.Context, in ForgetInput) (ForgetOutput, error) {
	out := ForgetOutput{BackupID: in.BackupID}
	if err := repository.ValidateDatabaseName(in.Database); err != nil {
		return out, boundary(err)
	}
	if err := repository.ValidateBackupID(in.BackupID); err != nil {
		return out, boundary(err)
	}
	d, err := a.destination(in.Destination)
	if err != nil {
		return out, err
	}
	// It runs under a heartbeat timeout: removing thousands of chunks from
	// a remote destination takes longer than that.
	hb := startHeartbeat(ctx, Progress{Phase: "forget " + in.BackupID})
	defer hb.close()
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	until, err := a.lockedUntil(ctx, d, in.Database, in.BackupID)
	if err != nil {
		return out, err
	}
	if until.After(now) {
		return out, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("refusing to forget backup %s on %q: it is locked until %s (%s); retention keeps it until then",
				in.BackupID, d.Name, until.UTC().Format(time.RFC3339), lockName(d.LockMode)), ErrTypeLocked, nil)
	}
	dependents, err := repository.Dependents(ctx, d.Bucket, in.Database, in.BackupID)
	if err != nil {
		return out, err
	}
	var others []string
	for _, id := range dependents {
		if id != in.BackupID {
			others = append(others, id)
		}
	}
	if len(others) > 0 {
		return out, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("refusing to forget backup %s on %q: %s depend(s) on it; forget them first", in.BackupID, d.Name, strings.Join(others, ", ")),
			ErrTypeBadInput, nil)
	}
	// The primary's record of this copy goes before the copy: `list`,
	// `status` and the DR runbook must never count a copy that is gone.
	// (A record under the primary's own write-once lock stays.)
	if primary := a.primary(); d.Name != primary.Name && primary.Bucket != nil {
		pd := destinations.Destination{Name: primary.Name, Lock: destinations.Lock{Mode: primary.LockMode, Period: primary.LockPeriod}}
		err := destinations.Delete(ctx, pd, primary.Bucket, repository.ReplicaRecordKey(in.Database, in.BackupID, d.Name), now, time.Time{})
		if err != nil && !repository.IsNotFound(err) && !errors.Is(err, destinations.ErrLocked) {
			return out, fmt.Errorf("remove the primary's record of the copy on %s: %w", d.Name, err)
		}
	}
	// The tombstone keeps the history's hash chain whole through this
	// removal; it goes first, so a run cut short leaves no unexplained gap.
	reason := in.Reason
	if reason == "" {
		reason = "forgotten on request"
	}
	if err := repository.WriteTombstone(ctx, d.Bucket, a.Keeper, in.Database, in.BackupID, reason, now); err != nil && !repository.IsNotFound(err) {
		return out, boundary(fmt.Errorf("record the removal of %s: %w", in.BackupID, err))
	}
	dest := destinations.Destination{Name: d.Name, Lock: destinations.Lock{Mode: d.LockMode, Period: d.LockPeriod}}
	manifest := repository.ManifestKey(in.Database, in.BackupID)
	if err := destinations.Delete(ctx, dest, d.Bucket, manifest, now, until); err != nil && !repository.IsNotFound(err) {
		return out, lockedOr(err)
	}
	objs, err := repository.BackupObjects(ctx, d.Bucket, in.Database, in.BackupID)
	if err != nil {
		return out, err
	}
	for _, o := range objs {
		if err := destinations.Delete(ctx, dest, d.Bucket, o.Key, now, until); err != nil && !repository.IsNotFound(err) {
			return out, lockedOr(err)
		}
		out.Objects++
		out.Bytes += o.Size
		hb.set(Progress{Phase: "forget " + in.BackupID, Chunk: out.Objects, Submitted: len(objs), Offset: out.Bytes})
	}
	return out, nil
}

func lockedOr(err error) error {
	if errors.Is(err, destinations.ErrLocked) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeLocked, err)
	}
	return err
}

func lockName(mode string) string {
	if mode == "" {
		return "recorded lock"
	}
	return "S3 Object Lock, " + mode
}

// SweepInput asks for the orphans of a database on one destination: objects
// that no complete backup references, last written before Before (the
// workflow's time minus a grace period, so that a backup or copy in
// progress is never touched).
type SweepInput struct {
	Database    string    `json:"database"`
	Destination string    `json:"destination"`
	Before      time.Time `json:"before"`
	// DryRun finds the orphans without removing them.
	DryRun bool `json:"dry_run,omitempty"`
}

// SweepOutput counts the orphans removed (or, in a dry run, found).
type SweepOutput struct {
	Destination string `json:"destination"`
	Objects     int    `json:"objects"`
	Bytes       int64  `json:"bytes"`
	// Locked orphans are kept by the destination's write-once lock until
	// it ends; a later cleanup removes them.
	Locked int `json:"locked,omitempty"`
	// Examples are the first few orphans, each with what left it.
	Examples []string `json:"examples,omitempty"`
}

// maxSweepExamples bounds the orphans a sweep names in its output.
const maxSweepExamples = 10

// SweepOrphans removes what crashes left on a destination and nothing will
// ever read: temp files of writes cut short, objects of backups and copies
// that never got a manifest, what a removal cut short left, chunks past a
// manifest's last one (repository.FindOrphans says exactly which). Only
// objects older than in.Before go, so a backup or copy still being written
// is left alone. A retry starts over: what is gone is not found again.
func (a *StorageActivities) SweepOrphans(ctx context.Context, in SweepInput) (SweepOutput, error) {
	out := SweepOutput{Destination: in.Destination}
	if err := repository.ValidateDatabaseName(in.Database); err != nil {
		return out, boundary(err)
	}
	if in.Before.IsZero() {
		return out, badInput("sweep of %s on %q names no cut-off time", in.Database, in.Destination)
	}
	d, err := a.destination(in.Destination)
	if err != nil {
		return out, err
	}
	hb := startHeartbeat(ctx, Progress{Phase: "sweep orphans on " + d.Name})
	defer hb.close()
	orphans, err := repository.FindOrphans(ctx, d.Bucket, in.Database, in.Before)
	if err != nil {
		return out, boundary(fmt.Errorf("find orphans of %s on %s: %w", in.Database, d.Name, err))
	}
	dest := destinations.Destination{Name: d.Name, Lock: destinations.Lock{Mode: d.LockMode, Period: d.LockPeriod}}
	now := time.Now()
	for i, o := range orphans {
		if !in.DryRun {
			err := destinations.Delete(ctx, dest, d.Bucket, o.Key, now, time.Time{})
			switch {
			case errors.Is(err, destinations.ErrLocked):
				out.Locked++
				continue
			case err != nil && !repository.IsNotFound(err):
				return out, fmt.Errorf("remove orphan %s on %s: %w", o.Key, d.Name, err)
			}
		}
		out.Objects++
		out.Bytes += o.Size
		if len(out.Examples) < maxSweepExamples {
			out.Examples = append(out.Examples, o.Key+": "+o.Why)
		}
		hb.set(Progress{Phase: "sweep orphans on " + d.Name, Chunk: i + 1, Submitted: len(orphans), Offset: out.Bytes})
	}
	if out.Objects > 0 && !in.DryRun {
		activity.GetLogger(ctx).Info("removed orphans", "database", in.Database, "destination", d.Name, "objects", out.Objects, "bytes", out.Bytes)
	}
	return out, nil
}

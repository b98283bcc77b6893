package activities

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/bulwark-dr/bulwark/repository"
	"github.com/bulwark-dr/bulwark/retention"
)

// Destination is one configured place backups are kept, opened once by the
// worker. The primary is where backups are written; the others receive
// verified copies.
type Destination struct {
	Name   string
	Role   string // primary, secondary, tertiary
	Bucket *blob.Bucket
	// LockMode and LockPeriod describe the destination's write-once lock
	// (S3 Object Lock); LockMode "" is none.
	LockMode   string
	LockPeriod time.Duration
	// Retention is the policy cleanup applies here; empty keeps everything.
	Retention retention.Policy
}

// DestinationInfo is what workflows learn about a destination: no URL, no
// credentials, only what orchestration needs.
type DestinationInfo struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// ReplicateInput asks for a copy of a backup on one destination.
type ReplicateInput struct {
	Database string `json:"database"`
	BackupID string `json:"backup_id"`
	To       string `json:"to"`
}

// ReplicateOutput summarises one destination's copy.
type ReplicateOutput struct {
	Destination  string    `json:"destination"`
	Objects      int       `json:"objects"`
	Copied       int       `json:"copied"`
	AlreadyThere int       `json:"already_there"`
	Bytes        int64     `json:"bytes"`
	CopiedBytes  int64     `json:"copied_bytes"`
	VerifiedAt   time.Time `json:"verified_at"`
	LockedUntil  time.Time `json:"locked_until,omitzero"`
	Duration     Duration  `json:"duration"`
}

// primary returns the destination backups are written to.
func (a *StorageActivities) primary() Destination {
	for _, d := range a.Destinations {
		if d.Role == "primary" {
			return d
		}
	}
	return Destination{Name: "primary", Role: "primary", Bucket: a.Bucket}
}

func (a *StorageActivities) destination(name string) (Destination, error) {
	var names []string
	for _, d := range a.Destinations {
		if d.Name == name {
			return d, nil
		}
		names = append(names, d.Name)
	}
	return Destination{}, badInput("destination %q is not configured on worker %s (configured: %s)", name, a.Worker, strings.Join(names, ", "))
}

// ListDestinations returns the configured destinations, primary first.
func (a *StorageActivities) ListDestinations(ctx context.Context) ([]DestinationInfo, error) {
	out := []DestinationInfo{}
	for _, d := range a.Destinations {
		out = append(out, DestinationInfo{Name: d.Name, Role: d.Role})
	}
	if len(out) == 0 {
		out = append(out, DestinationInfo{Name: "primary", Role: "primary"})
	}
	return out, nil
}

// ReplicateBackup copies a backup from the primary to destination To and
// verifies every object there. Re-running it (a retry after a crash, or
// `bulwark replicate`) writes only what is missing or damaged.
func (a *StorageActivities) ReplicateBackup(ctx context.Context, in ReplicateInput) (ReplicateOutput, error) {
	start := time.Now()
	if err := repository.ValidateDatabaseName(in.Database); err != nil {
		return ReplicateOutput{}, boundary(err)
	}
	if err := repository.ValidateBackupID(in.BackupID); err != nil {
		return ReplicateOutput{}, boundary(err)
	}
	to, err := a.destination(in.To)
	if err != nil {
		return ReplicateOutput{}, err
	}
	from := a.primary()
	if to.Name == from.Name {
		return ReplicateOutput{}, badInput("destination %q is the primary: backups are written there, not copied to it", in.To)
	}
	hb := startHeartbeat(ctx, Progress{Phase: "replicate " + to.Name})
	defer hb.close()
	var lockedUntil time.Time
	if to.LockMode != "" {
		lockedUntil = time.Now().Add(to.LockPeriod).UTC()
	}
	rec, err := repository.Replicate(ctx, from.Bucket, to.Bucket, to.Name, a.Keeper, in.Database, in.BackupID, repository.ReplicateOptions{
		Parallel: 4, LockedUntil: lockedUntil, Limiter: a.UploadLimit,
		Progress: func(done, total int, bytes int64) {
			hb.set(Progress{Phase: "replicate " + to.Name, Chunk: done, Submitted: total, Offset: bytes})
		},
	})
	if err != nil {
		a.Metrics.Failed(in.Database, "replicate")
		return ReplicateOutput{}, boundary(fmt.Errorf("replicate %s to %s: %w", in.BackupID, to.Name, err))
	}
	a.Metrics.Succeeded(in.Database, "replicate", to.Name, rec.VerifiedAt, time.Since(start))
	return ReplicateOutput{
		Destination: to.Name, Objects: rec.Objects, Copied: rec.Copied, AlreadyThere: rec.AlreadyThere,
		Bytes: rec.Bytes, CopiedBytes: rec.CopiedBytes, VerifiedAt: rec.VerifiedAt, LockedUntil: rec.LockedUntil,
		Duration: Duration(time.Since(start)),
	}, nil
}

package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulwark-dr/bulwark/capacity"
	"github.com/bulwark-dr/bulwark/repository"
	"github.com/bulwark-dr/bulwark/retention"
)

// CapacityInput asks for the capacity report of one database ("" for all)
// at a moment (the workflow's time).
type CapacityInput struct {
	Database string    `json:"database,omitempty"`
	Now      time.Time `json:"now"`
}

// CapacityRow is one database on one destination.
type CapacityRow struct {
	Destination string          `json:"destination"`
	Database    string          `json:"database"`
	Policy      string          `json:"policy"`
	Report      capacity.Report `json:"report"`
	Error       string          `json:"error,omitempty"`
}

// CapacityOutput is the whole report, destination by destination in
// configuration order.
type CapacityOutput struct {
	Rows []CapacityRow `json:"rows"`
}

// Capacity measures what each destination holds per database and projects,
// from the real sizes and the inferred schedule, the space its retention
// policy will need (the strategy's capacity planning, computed).
func (a *StorageActivities) Capacity(ctx context.Context, in CapacityInput) (CapacityOutput, error) {
	var out CapacityOutput
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	for _, d := range a.allDestinations() {
		var names []string
		if in.Database != "" {
			if err := repository.ValidateDatabaseName(in.Database); err != nil {
				return out, boundary(err)
			}
			names = []string{in.Database}
		} else {
			var err error
			if names, err = repository.ListDatabases(ctx, d.Bucket); err != nil {
				return out, fmt.Errorf("list databases on %s: %w", d.Name, err)
			}
		}
		for _, db := range names {
			row := CapacityRow{Destination: d.Name, Database: db, Policy: d.Retention.String()}
			backups, err := a.sizedBackups(ctx, d, db)
			if err != nil {
				return out, err
			}
			row.Report, err = capacity.Project(backups, d.Retention, now)
			switch {
			case errors.Is(err, capacity.ErrNoBackups):
				row.Error = fmt.Sprintf("no backups of %s on %s to project from", db, d.Name)
			case err != nil:
				row.Error = err.Error()
			}
			out.Rows = append(out.Rows, row)
		}
	}
	return out, nil
}

// allDestinations is the configured destinations, or the primary alone.
func (a *StorageActivities) allDestinations() []Destination {
	if len(a.Destinations) > 0 {
		return a.Destinations
	}
	return []Destination{a.primary()}
}

// sizedBackups lists the complete backups of db on d with every object's
// bytes counted.
func (a *StorageActivities) sizedBackups(ctx context.Context, d Destination, db string) ([]capacity.Backup, error) {
	ids, err := repository.ListBackups(ctx, d.Bucket, db)
	if err != nil {
		return nil, err
	}
	var out []capacity.Backup
	for _, id := range ids {
		b, err := repository.ReadBackup(ctx, d.Bucket, db, id)
		if err != nil {
			continue // unreadable: verify reports it; it cannot be sized
		}
		objs, err := repository.BackupObjects(ctx, d.Bucket, db, id)
		if err != nil {
			return nil, err
		}
		var stored int64
		for _, o := range objs {
			stored += o.Size
		}
		m := b.Manifest
		cb := capacity.Backup{
			Backup:      retention.Backup{ID: id, Type: string(m.Type), Parent: m.Parent, Time: m.SnapshotAt},
			StoredBytes: stored, ImageBytes: m.ImageBytes,
		}
		if rec, err := repository.LatestVerifyRecord(ctx, d.Bucket, db, id); err == nil && rec != nil && rec.OK {
			cb.Verified = true
		}
		out = append(out, cb)
	}
	return out, nil
}

package activities

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/bulwark-dr/bulwark/activities/sqlitesrc"
	"github.com/bulwark-dr/bulwark/repository"
)

// Verdicts of AssessDatabase.
const (
	VerdictHealthy = "healthy" // the file exists and SQLite's checks pass
	VerdictDamaged = "damaged" // the file exists but is unreadable, not SQLite, or fails a check
	VerdictMissing = "missing" // there is no file
)

// AssessInput names a database file on this host to assess.
type AssessInput struct {
	Database string `json:"database"`
	// Path is the file to assess (absolute); "" means the database's
	// configured path. A restored file at a new path is assessed this way,
	// on a host where the database need not be configured.
	Path string `json:"path,omitempty"`
}

// AssessOutput is what is at a database's path and what SQLite says of it.
type AssessOutput struct {
	Path    string    `json:"path"`
	Exists  bool      `json:"exists"`
	Bytes   int64     `json:"bytes"`
	ModTime time.Time `json:"mod_time,omitzero"`
	// WALBytes is the size of the write-ahead log next to the file. The
	// checks read the main file only: a non-empty log holds transactions
	// they did not see.
	WALBytes    int64  `json:"wal_bytes,omitempty"`
	Integrity   string `json:"integrity_check,omitempty"`
	ForeignKeys string `json:"foreign_key_check,omitempty"`
	Tables      int    `json:"tables,omitempty"`
	Rows        int64  `json:"rows,omitempty"`
	// Verdict is healthy, damaged or missing; Reason says why in a line.
	Verdict  string   `json:"verdict"`
	Reason   string   `json:"reason,omitempty"`
	Duration Duration `json:"duration"`
}

// AssessDatabase says whether a database file on this host is healthy: does
// it exist, its size and modification time, and SQLite's integrity_check and
// foreign_key_check. It only reads: the file is opened immutable, so no
// lock, journal, -wal or -shm file is written next to it. A damaged or
// missing file is a verdict, not an error; an unknown database or a relative
// path is bad input.
func (a *SQLiteActivities) AssessDatabase(ctx context.Context, in AssessInput) (AssessOutput, error) {
	start := time.Now()
	path := in.Path
	if path == "" {
		p, err := a.path(in.Database)
		if err != nil {
			return AssessOutput{}, err
		}
		path = p
	} else if !filepath.IsAbs(path) {
		return AssessOutput{}, badInput("path %q to assess must be absolute", path)
	}
	out := AssessOutput{Path: path}
	done := func(verdict, reason string) (AssessOutput, error) {
		out.Verdict, out.Reason, out.Duration = verdict, reason, Duration(time.Since(start))
		return out, nil
	}
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return done(VerdictMissing, "no file at "+path)
	case err != nil:
		return done(VerdictDamaged, "cannot stat the file: "+err.Error())
	case info.IsDir():
		return done(VerdictDamaged, path+" is a directory")
	}
	out.Exists, out.Bytes, out.ModTime = true, info.Size(), info.ModTime().UTC()
	if wal, err := os.Stat(path + "-wal"); err == nil {
		out.WALBytes = wal.Size()
	}
	hb := startHeartbeat(ctx, Progress{Phase: "assess", Total: out.Bytes})
	defer hb.close()
	check, err := sqlitesrc.CheckFile(ctx, path)
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	out.Integrity, out.ForeignKeys = check.Integrity, check.ForeignKeys
	out.Tables = len(check.Tables)
	for _, t := range check.Tables {
		out.Rows += t.Rows
	}
	note := ""
	if out.WALBytes > 0 {
		note = fmt.Sprintf(" (a %d-byte write-ahead log was not checked)", out.WALBytes)
	}
	if err != nil {
		// Not SQLite (encrypted by ransomware, overwritten), damaged, or
		// unreadable (an I/O error of a failing disk): the file cannot be
		// trusted either way.
		return done(VerdictDamaged, err.Error()+note)
	}
	var problems []string
	if check.Integrity != "ok" {
		problems = append(problems, "integrity_check: "+check.Integrity)
	}
	if check.ForeignKeys != "ok" {
		problems = append(problems, "foreign_key_check: "+check.ForeignKeys)
	}
	if len(problems) > 0 {
		return done(VerdictDamaged, strings.Join(problems, "; ")+note)
	}
	return done(VerdictHealthy, fmt.Sprintf("integrity_check and foreign_key_check pass; %d tables, %d rows%s", out.Tables, out.Rows, note))
}

// RestorePointInput asks for the newest backup of a database a disaster
// recovery can return to.
type RestorePointInput struct {
	Database string `json:"database"`
	// Before, when set, excludes backups taken at or after it: the moment
	// an attack or a corruption began.
	Before time.Time `json:"before,omitzero"`
	// From is the destination to look on ("" is the primary).
	From string `json:"from,omitempty"`
}

// RestorePointOutput is the backup chosen ("" when none qualifies).
type RestorePointOutput struct {
	BackupID    string    `json:"backup_id"`
	SnapshotAt  time.Time `json:"snapshot_at,omitzero"`
	Destination string    `json:"destination"`
	// LockMode is the destination's write-once lock ("" is none).
	LockMode   string `json:"lock_mode,omitempty"`
	VerifiedAt string `json:"verified_at,omitempty"`
	// NotBefore counts the newer backups taken at or after Before.
	NotBefore int `json:"not_before,omitempty"`
	// Skipped says why newer backups (before Before) were passed over, at
	// most maxSkipped of them.
	Skipped []string `json:"skipped,omitempty"`
}

const maxSkipped = 10

// FindRestorePoint finds the newest backup of a database on one destination
// that was taken before in.Before (when set) and passed verification, and
// whose whole chain is there with a manifest that authenticates. On a
// destination other than the primary, the copy itself must have been
// verified there (its replica record). A manifest planted on a destination
// by an attacker does not authenticate and is skipped.
func (a *StorageActivities) FindRestorePoint(ctx context.Context, in RestorePointInput) (RestorePointOutput, error) {
	if err := repository.ValidateDatabaseName(in.Database); err != nil {
		return RestorePointOutput{}, boundary(err)
	}
	dest := a.primary()
	if in.From != "" {
		d, err := a.destination(in.From)
		if err != nil {
			return RestorePointOutput{}, err
		}
		dest = d
	}
	bucket := dest.Bucket
	if bucket == nil {
		bucket = a.Bucket
	}
	out := RestorePointOutput{Destination: dest.Name, LockMode: dest.LockMode}
	ids, err := repository.ListBackups(ctx, bucket, in.Database)
	if err != nil {
		return RestorePointOutput{}, fmt.Errorf("list backups of %s on %s: %w", in.Database, dest.Name, err)
	}
	skip := func(id, why string) {
		if len(out.Skipped) < maxSkipped {
			out.Skipped = append(out.Skipped, id+": "+why)
		}
	}
	for i := len(ids) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return RestorePointOutput{}, err
		}
		id := ids[i]
		b, err := repository.ReadBackup(ctx, bucket, in.Database, id)
		if err != nil {
			skip(id, "manifest unreadable: "+err.Error())
			continue
		}
		if !in.Before.IsZero() && !b.Manifest.SnapshotAt.Before(in.Before) {
			out.NotBefore++
			continue
		}
		rec, err := repository.LatestVerifyRecord(ctx, bucket, in.Database, id)
		switch {
		case err != nil:
			skip(id, "verification record unreadable: "+err.Error())
			continue
		case rec == nil:
			skip(id, "never verified")
			continue
		case !rec.OK:
			skip(id, "failed verification")
			continue
		}
		if dest.Name != a.primary().Name && !hasReplicaRecord(ctx, bucket, in.Database, id, dest.Name) {
			skip(id, "no verified copy on "+dest.Name)
			continue
		}
		if _, err := b.Open(ctx, a.Keeper); err != nil {
			skip(id, "manifest does not authenticate: "+err.Error())
			continue
		}
		if _, err := repository.ChainIDs(ctx, bucket, in.Database, id); err != nil {
			skip(id, "chain incomplete on "+dest.Name+": "+err.Error())
			continue
		}
		out.BackupID, out.SnapshotAt, out.VerifiedAt = id, b.Manifest.SnapshotAt, rec.VerifiedAt
		return out, nil
	}
	return out, nil
}

// hasReplicaRecord reports whether bucket holds the record of a verified
// copy of the backup on dest.
func hasReplicaRecord(ctx context.Context, bucket *blob.Bucket, database, backupID, dest string) bool {
	recs, err := repository.ReplicaRecords(ctx, bucket, database, backupID)
	if err != nil {
		return false
	}
	for _, r := range recs {
		if r.Destination == dest {
			return true
		}
	}
	return false
}

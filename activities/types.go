// Package activities holds Bulwark's Temporal activities: structs that carry
// their dependencies (buckets, keepers, the databases of this host), built
// once by the worker. Only references cross Temporal: names, ids, keys,
// sizes and hashes, never pages or rows.
package activities

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/bulwark-dr/bulwark/activities/sqlitesrc"
	"github.com/bulwark-dr/bulwark/keeper"
	"github.com/bulwark-dr/bulwark/repository"
	"github.com/bulwark-dr/bulwark/retention"
)

// Task queues. A SQLite file lives on one host, so its activities run on that
// host's queue; storage work (verify, list) runs on any worker.
const (
	WorkflowQueue = "bulwark-workflows"
	StorageQueue  = "bulwark-storage"
)

// HostQueue is the task queue of the worker that owns the databases of host.
func HostQueue(host string) string { return "bulwark-sqlite@" + host }

// Application error types. Each is non-retryable: retrying cannot fix it.
const (
	ErrTypeBadInput      = "BadInput"
	ErrTypeNoDatabase    = "NoDatabase"
	ErrTypeNotSQLite     = "NotSQLite"
	ErrTypeSourceDamaged = "SourceDamaged"
	ErrTypeCorruptBackup = "CorruptBackup"
	ErrTypeNotFound      = "BackupNotFound"
	ErrTypeWrongKey      = "WrongKey"
	ErrTypeRestoreTarget = "RestoreTarget"
	ErrTypeUnsupported   = "UnsupportedFormat"
	ErrTypeCheckFailed   = "CheckFailed"
	ErrTypeTableRefused  = "TableRestoreRefused"
)

// Progress is the heartbeat of long activities: enough to draw a progress
// bar and to resume after a worker dies.
type Progress struct {
	Phase     string `json:"phase"`
	Chunk     int    `json:"chunk"`     // chunks settled in order: all below are durable
	Submitted int    `json:"submitted"` // chunks started; those at or above Chunk may be partial
	Offset    int64  `json:"offset"`    // bytes processed
	Total     int64  `json:"total"`     // bytes in all
}

// boundary classifies an error once, where it leaves an activity: bad input,
// corruption, wrong keys and unusable targets become non-retryable
// application errors with a typed reason; everything else is left to the
// retry policy.
func boundary(err error) error {
	if err == nil {
		return nil
	}
	typ := ""
	switch {
	case errors.Is(err, repository.ErrWrongKey), errors.Is(err, keeper.ErrKeyFile):
		typ = ErrTypeWrongKey
	case errors.Is(err, repository.ErrCorrupt):
		typ = ErrTypeCorruptBackup
	case errors.Is(err, repository.ErrNotFound):
		typ = ErrTypeNotFound
	case errors.Is(err, repository.ErrUnsupportedFormat):
		typ = ErrTypeUnsupported
	case errors.Is(err, repository.ErrBadInput), errors.Is(err, retention.ErrBadInput):
		typ = ErrTypeBadInput
	case errors.Is(err, sqlitesrc.ErrNoDatabase):
		typ = ErrTypeNoDatabase
	case errors.Is(err, sqlitesrc.ErrNotSQLite):
		typ = ErrTypeNotSQLite
	case errors.Is(err, sqlitesrc.ErrDamaged):
		typ = ErrTypeSourceDamaged
	case errors.Is(err, sqlitesrc.ErrTarget):
		typ = ErrTypeRestoreTarget
	case errors.Is(err, sqlitesrc.ErrTableRestore):
		typ = ErrTypeTableRefused
	default:
		return err
	}
	return temporal.NewNonRetryableApplicationError(err.Error(), typ, err)
}

func badInput(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrTypeBadInput, nil)
}

// SnapshotInput asks for a backup of a database on this host.
type SnapshotInput struct {
	Database string `json:"database"`
	// Type is full, incremental or differential ("" is full).
	Type      string    `json:"type,omitempty"`
	BackupID  string    `json:"backup_id"`
	StartedAt time.Time `json:"started_at"`
	// Schema and Tables override an Oracle database's configured scope (an
	// emergency copy of a restore's target); empty for SQLite.
	Schema string   `json:"schema,omitempty"`
	Tables []string `json:"tables,omitempty"`
}

// SnapshotOutput describes the backup written.
type SnapshotOutput struct {
	BackupID string `json:"backup_id"`
	Type     string `json:"type"`
	Parent   string `json:"parent,omitempty"`
	// FullBecause says why an incremental or differential became full.
	FullBecause  string    `json:"full_because,omitempty"`
	ChangedPages int64     `json:"changed_pages"`
	ManifestKey  string    `json:"manifest_key"`
	PageCount    int64     `json:"page_count"`
	ImageBytes   int64     `json:"image_bytes"`
	StoredBytes  int64     `json:"stored_bytes"`
	ImageHash    string    `json:"image_hash"`
	Chunks       int       `json:"chunks"`
	ReusedChunks int       `json:"reused_chunks"`
	Tables       int       `json:"tables"`
	Rows         int64     `json:"rows"`
	JournalMode  string    `json:"journal_mode"`
	SnapshotAt   time.Time `json:"snapshot_at"`
	Duration     Duration  `json:"duration"`
}

// TargetInput names a restore target on this host.
type TargetInput struct {
	Database string `json:"database"`
	Target   string `json:"target"` // "" = the configured path of the database
}

// TargetOutput says what is at a restore target.
type TargetOutput struct {
	Target string `json:"target"` // resolved absolute path
	Exists bool   `json:"exists"`
}

// RestoreInput asks for a backup to be staged next to a target.
type RestoreInput struct {
	Database string `json:"database"`
	BackupID string `json:"backup_id"`
	Target   string `json:"target"` // resolved path from InspectRestoreTarget
	// Repair writes good copies found on other destinations back to the
	// primary when its copy is missing or damaged.
	Repair bool `json:"repair,omitempty"`
	// From names the destination to read first ("" is the primary); the
	// others, primary first, stand in for objects it lacks. A disaster
	// recovery reads a locked or offsite copy this way. It cannot be
	// combined with Repair, which writes to the primary.
	From string `json:"from,omitempty"`
}

// RestoreOutput describes a staged, verified restore.
type RestoreOutput struct {
	TempPath   string `json:"temp_path"`
	ImageBytes int64  `json:"image_bytes"`
	ImageHash  string `json:"image_hash"`
	// Healed lists objects read from another destination because the
	// primary's copy was missing or damaged (and whether it was repaired).
	Healed []string `json:"healed,omitempty"`
	// Source is the destination read first: RestoreInput.From, or the
	// primary's name.
	Source   string   `json:"source,omitempty"`
	Duration Duration `json:"duration"`
}

// SwapInput moves a staged restore into place.
type SwapInput struct {
	TempPath      string `json:"temp_path"`
	Target        string `json:"target"`
	EmergencyPath string `json:"emergency_path"`
}

// SwapOutput says where the replaced file was kept.
type SwapOutput struct {
	EmergencyCopy string `json:"emergency_copy,omitempty"`
}

// DiscardInput removes the staged restore of a backup to a target, if any.
type DiscardInput struct {
	Target   string `json:"target"`
	BackupID string `json:"backup_id"`
}

// TableInput asks for one table of a backup to be restored into a live
// database on this host.
type TableInput struct {
	Database string `json:"database"`
	BackupID string `json:"backup_id"`
	Table    string `json:"table"`
	// Into is the live database; "" means the database's configured path.
	Into          string `json:"into"`
	Mode          string `json:"mode"`
	EmergencyPath string `json:"emergency_path"` // "" derives one from Into and the time
}

// TableOutput says what a table restore did.
type TableOutput = sqlitesrc.TableRestoreResult

// VerifyInput names a backup to verify.
type VerifyInput struct {
	Database string `json:"database"`
	BackupID string `json:"backup_id"`
}

// VerifyOutput is the outcome of a verification, also stored as a record
// next to the backup.
type VerifyOutput struct {
	BackupID   string   `json:"backup_id"`
	OK         bool     `json:"ok"`
	Problems   []string `json:"problems,omitempty"`
	Chunks     int      `json:"chunks"`
	BytesRead  int64    `json:"bytes_read"`
	RecordKey  string   `json:"record_key"`
	Integrity  string   `json:"integrity_check"`
	ForeignKey string   `json:"foreign_key_check"`
	Duration   Duration `json:"duration"`
}

// ListInput names a database whose backups to list; "" lists every database.
type ListInput struct {
	Database string `json:"database"`
	Limit    int    `json:"limit"`
}

// BackupSummary is one line of a listing.
type BackupSummary struct {
	Database    string    `json:"database"`
	BackupID    string    `json:"backup_id"`
	Type        string    `json:"type"`
	Parent      string    `json:"parent,omitempty"`
	SnapshotAt  time.Time `json:"snapshot_at"`
	ImageBytes  int64     `json:"image_bytes"`
	StoredBytes int64     `json:"stored_bytes"`
	Chunks      int       `json:"chunks"`
	Verified    string    `json:"verified"` // "ok", "FAILED", or "never"
	VerifiedAt  string    `json:"verified_at,omitempty"`
	Exports     []string  `json:"exports,omitempty"` // logical exports stored with it: sql, csv
	// Locations are the destinations holding the backup: the primary and
	// every destination with a verified copy.
	Locations []string `json:"locations,omitempty"`
}

// ListOutput is a bounded listing, newest last.
type ListOutput struct {
	Backups   []BackupSummary `json:"backups"`
	Truncated bool            `json:"truncated"`
}

// ResolveInput picks a backup: an id, "latest", or the newest at or before a
// time (RFC 3339).
type ResolveInput struct {
	Database string `json:"database"`
	Ref      string `json:"ref"`
}

// ResolveOutput is the backup id chosen.
type ResolveOutput struct {
	BackupID string `json:"backup_id"`
}

// Duration is a time.Duration that reads well in JSON and in histories.
type Duration time.Duration

// MarshalText renders the duration like "1.25s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses what MarshalText writes.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

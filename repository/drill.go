package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"
)

// drillsDir holds a database's restore drill records:
// databases/<database>/drills/<time>.json, one per drill.
const drillsDir = "/drills/"

// drillTimeLayout names a drill record by the time the drill started. It is
// fixed-width, so keys sort in time order.
const drillTimeLayout = "20060102T150405.000000000Z"

// maxDrillRecordBytes bounds a drill record read back; a record holds the
// first row of a bounded number of queries and is far smaller.
const maxDrillRecordBytes = 1 << 20

// DrillQuery is one application check of a restore drill: a query run
// read-only on the restored copy, which passes when it returns a row.
type DrillQuery struct {
	SQL string `json:"sql"`
	OK  bool   `json:"ok"`
	// Columns and Row are the first row returned, each value as text (NULL
	// as "NULL", a blob that is not UTF-8 in hex), long values shortened.
	Columns []string `json:"columns,omitempty"`
	Row     []string `json:"row,omitempty"`
	// Error says why the check failed: the query's error, or that it
	// returned no row.
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
}

// DrillRecord documents one restore drill: a backup restored to a scratch
// file on the database's host, checked by SQLite and by the application's
// queries, then deleted. Durations are in seconds; RestoreSeconds (the
// download, write, fsync and hash check of the whole image) is the measured
// restore time, the evidence for the recovery time objective.
type DrillRecord struct {
	// Key is where the record is stored; set by WriteDrillRecord and
	// ListDrillRecords.
	Key      string `json:"key,omitempty"`
	Database string `json:"database"`
	Host     string `json:"host"`
	// BackupRef is what the drill asked for ("latest", an id or a time);
	// BackupID is the backup it resolved to ("" when none could be found).
	BackupRef  string    `json:"backup_ref,omitempty"`
	BackupID   string    `json:"backup_id,omitempty"`
	SnapshotAt time.Time `json:"snapshot_at,omitzero"`
	Schedule   string    `json:"schedule,omitempty"`
	Workflow   string    `json:"workflow,omitempty"` // workflow id and run id
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	OK         bool      `json:"ok"`
	Problems   []string  `json:"problems,omitempty"`
	// Restored says whether the image was written and matched the
	// manifest's hash; ChecksOK whether integrity_check, foreign_key_check,
	// the schema hash and the row counts all agree with the manifest.
	Restored       bool         `json:"restored"`
	ChecksOK       bool         `json:"checks_ok"`
	ImageBytes     int64        `json:"image_bytes,omitempty"`
	ImageHash      string       `json:"image_hash,omitempty"`
	Healed         []string     `json:"healed,omitempty"`
	IntegrityCheck string       `json:"integrity_check,omitempty"`
	ForeignKeys    string       `json:"foreign_key_check,omitempty"`
	Tables         int          `json:"tables,omitempty"`
	Rows           int64        `json:"rows,omitempty"`
	Queries        []DrillQuery `json:"queries,omitempty"`
	ScratchPath    string       `json:"scratch_path,omitempty"`
	ScratchRemoved bool         `json:"scratch_removed"`
	RestoreSeconds float64      `json:"restore_seconds"`
	CheckSeconds   float64      `json:"check_seconds"`
	QuerySeconds   float64      `json:"query_seconds"`
	// TotalSeconds is the drill from start to finish in workflow time,
	// including waits for the host's worker.
	TotalSeconds float64 `json:"total_seconds"`
}

// DrillsPrefix is the prefix under which a database's drill records live.
func DrillsPrefix(database string) string {
	return databasesPrefix + database + drillsDir
}

// DrillRecordKey is the key of the record of a drill of database started at
// at. Drills of one database never run at once, so the time names one.
func DrillRecordKey(database string, at time.Time) string {
	return DrillsPrefix(database) + at.UTC().Format(drillTimeLayout) + ".json"
}

// WriteDrillRecord stores rec under the key DrillRecordKey(rec.Database,
// rec.StartedAt) and returns the key. Writing the same record again
// replaces it, so a retry leaves one record.
func WriteDrillRecord(ctx context.Context, bucket *blob.Bucket, rec DrillRecord) (string, error) {
	if err := ValidateDatabaseName(rec.Database); err != nil {
		return "", err
	}
	if rec.StartedAt.IsZero() {
		return "", fmt.Errorf("%w: drill record of %s has no start time", ErrBadInput, rec.Database)
	}
	rec.Key = DrillRecordKey(rec.Database, rec.StartedAt)
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return "", err
	}
	if _, err := putObject(ctx, bucket, rec.Key, data, true); err != nil {
		return "", err
	}
	return rec.Key, nil
}

// ListDrillRecords returns the drill records of a database, newest first,
// at most limit of them (limit ≤ 0: all). Objects in the drills directory
// that are not named like a record (in-flight writes among them) are
// ignored. A record that cannot be read or parsed is listed with OK false
// and the reason as its problem, so one bad object does not hide the rest;
// a failure to list or to reach the bucket is an error.
func ListDrillRecords(ctx context.Context, bucket *blob.Bucket, database string, limit int) ([]DrillRecord, error) {
	if err := ValidateDatabaseName(database); err != nil {
		return nil, err
	}
	prefix := DrillsPrefix(database)
	objs, err := listDir(ctx, bucket, prefix)
	if err != nil {
		return nil, fmt.Errorf("list drill records of %s: %w", database, err)
	}
	var keys []string
	for _, o := range objs {
		if o.IsDir {
			continue
		}
		stamp, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, prefix), ".json")
		if !ok {
			continue
		}
		if _, err := time.Parse(drillTimeLayout, stamp); err != nil {
			continue
		}
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	slices.Reverse(keys)
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]DrillRecord, 0, len(keys))
	var buf []byte
	for _, key := range keys {
		data, err := getObject(ctx, bucket, key, maxDrillRecordBytes, buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			switch {
			case IsNotFound(err):
				continue // removed since it was listed
			case !errors.Is(err, ErrCorrupt):
				return nil, err
			}
			out = append(out, DrillRecord{Key: key, Database: database, Problems: []string{"unreadable drill record: " + err.Error()}})
			continue
		}
		buf = data
		var rec DrillRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			out = append(out, DrillRecord{Key: key, Database: database, Problems: []string{fmt.Sprintf("unreadable drill record: %v", err)}})
			continue
		}
		rec.Key = key
		out = append(out, rec)
	}
	return out, nil
}

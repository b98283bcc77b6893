// Package repository defines Bulwark's object layout in a *blob.Bucket: how a
// backup's chunks, key envelope, manifest and verification records are named,
// sealed and read back. FORMAT.md at the top of the repository is the
// human-readable version of this file; keep the two in step.
package repository

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// FormatVersion is the version of the object format written by this code.
// Readers reject manifests with a newer version instead of guessing.
const FormatVersion = 3

const (
	databasesPrefix = "databases/"
	backupsDir      = "/backups/"
	manifestName    = "manifest.json"
	keyName         = "key.json"
	chunksDir       = "chunks/"
	verifyDir       = "verify/"
)

var (
	databaseNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	backupIDPattern     = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}(\.[0-9]{3})?Z-[0-9a-f]{8}$`)
)

// ValidateDatabaseName reports whether name can be used as a database name.
// Names become path segments in object keys, so they are restricted to a safe
// alphabet; anything else would allow one database to reach into another's
// objects.
func ValidateDatabaseName(name string) error {
	if !databaseNamePattern.MatchString(name) {
		return fmt.Errorf("%w: database name %q must be 1-63 characters of a-z, 0-9, '_' or '-', starting with a letter or digit", ErrBadInput, name)
	}
	return nil
}

// ValidateBackupID reports whether id has the shape produced by NewBackupID
// (or by the first releases, without milliseconds).
func ValidateBackupID(id string) error {
	if !backupIDPattern.MatchString(id) {
		return fmt.Errorf("%w: backup id %q is not of the form 20060102T150405.000Z-0123abcd", ErrBadInput, id)
	}
	return nil
}

const (
	backupIDLayout        = "20060102T150405.000Z"
	backupIDLayoutSeconds = "20060102T150405Z"
)

// NewBackupID builds a backup id from the moment the backup was started, to
// the millisecond, and a unique suffix (eight lowercase hex digits). Backups
// of one database never run at once (their workflow id is a business key),
// so their ids are strictly ordered by time, which listing, parent
// selection, retention and point-in-time restore rely on.
func NewBackupID(started time.Time, suffix string) string {
	return started.UTC().Format(backupIDLayout) + "-" + suffix
}

// NewBackupIDSeconds builds an id in the first releases' format, to the
// second; only workflow histories recorded then still produce it.
func NewBackupIDSeconds(started time.Time, suffix string) string {
	return started.UTC().Format(backupIDLayoutSeconds) + "-" + suffix
}

// BackupTime returns the start time encoded in a backup id.
func BackupTime(id string) (time.Time, error) {
	if err := ValidateBackupID(id); err != nil {
		return time.Time{}, err
	}
	stamp, _, _ := strings.Cut(id, "-")
	if strings.Contains(stamp, ".") {
		return time.Parse(backupIDLayout, stamp)
	}
	return time.Parse(backupIDLayoutSeconds, stamp)
}

// CompareBackupIDs orders valid backup ids by time, then by id: negative
// when a is older than b.
func CompareBackupIDs(a, b string) int {
	ta, errA := BackupTime(a)
	tb, errB := BackupTime(b)
	if errA == nil && errB == nil && !ta.Equal(tb) {
		return ta.Compare(tb)
	}
	return strings.Compare(a, b)
}

// BackupPrefix is the prefix under which every object of one backup lives.
func BackupPrefix(database, backupID string) string {
	return databasesPrefix + database + backupsDir + backupID + "/"
}

// BackupsPrefix is the prefix under which all backups of a database live.
func BackupsPrefix(database string) string {
	return databasesPrefix + database + backupsDir
}

// ManifestKey is the key of a backup's manifest, the object written last.
func ManifestKey(database, backupID string) string {
	return BackupPrefix(database, backupID) + manifestName
}

// KeyEnvelopeKey is the key of a backup's wrapped data key, written first so
// that a retried backup reuses the same data key.
func KeyEnvelopeKey(database, backupID string) string {
	return BackupPrefix(database, backupID) + keyName
}

// ChunkKey is the key of chunk number index of a backup. The index is
// zero-padded so that keys list in chunk order.
func ChunkKey(database, backupID string, index int) string {
	return BackupPrefix(database, backupID) + chunksDir + fmt.Sprintf("%08d", index)
}

// VerifyRecordKey is the key of a verification record written at time at.
func VerifyRecordKey(database, backupID string, at time.Time) string {
	return BackupPrefix(database, backupID) + verifyDir + at.UTC().Format("20060102T150405.000000000Z") + ".json"
}

// chunkIndexFromKey parses the index out of a chunk key; ok is false for keys
// that are not chunks of this backup.
func chunkIndexFromKey(prefix, key string) (int, bool) {
	rest, found := strings.CutPrefix(key, prefix+chunksDir)
	if !found || len(rest) != 8 {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

package repository

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Logical backups (Oracle's) hold rows, not pages. They use the same
// repository as SQLite backups — a key envelope, sealed and compressed
// export parts, authenticated export manifests, and a manifest written last —
// so listing, retention, replication, tombstones and verification of objects
// treat them alike. Their manifest has no page fields and no chunks; it
// carries a Logical section instead:
//
//	…/<backup-id>/key.json
//	…/<backup-id>/exports/<engine>/<file>/0000000N   schema.json and one row stream per table
//	…/<backup-id>/exports/<engine>.json               the export manifest
//	…/<backup-id>/exports/datapump/…                  a Data Pump dump, when one was taken
//	…/<backup-id>/manifest.json                        last
//
// The manifest's image hash is the SHA-256 of the export manifests' file
// lists (name, size and SHA-256 of each file, in order), so that one digest
// names the whole backup as for SQLite.

// Engines a manifest names.
const (
	EngineSQLite = "sqlite"
	EngineOracle = "oracle"
)

// Export kinds of logical backups.
const (
	ExportOracle   = "oracle"
	ExportDataPump = "datapump"
)

// LogicalInfo describes a logical backup.
type LogicalInfo struct {
	// Schema is the schema exported, SCN the system change number every
	// table was read at (decimal text).
	Schema string `json:"schema"`
	SCN    string `json:"scn"`
	// Exports lists the export kinds that hold the backup, in order; the
	// first holds schema.json and the row streams.
	Exports []string `json:"exports"`
	// DDLStable is false when DDL ran in the schema while it was exported.
	DDLStable bool `json:"ddl_stable"`
	// DataPump names the Data Pump job whose dump is stored, if any.
	DataPump string `json:"datapump,omitempty"`
}

// IsLogical reports whether m is a logical (row) backup.
func (m *Manifest) IsLogical() bool { return m.Logical != nil }

func (m *Manifest) checkLogical(bad func(string, ...any) error) error {
	l := m.Logical
	if m.Database.Engine != EngineOracle {
		return bad("a logical backup of engine %q", m.Database.Engine)
	}
	if m.Type != BackupFull || m.Parent != "" {
		return bad("a logical backup is always full")
	}
	if m.PageSize != 0 || m.PageCount != 0 || m.ImageBytes != 0 || len(m.Chunks) != 0 || m.PageIndex != nil {
		return bad("a logical backup has pages or chunks")
	}
	if l.Schema == "" || len(l.Schema) > 128 || strings.ContainsAny(l.Schema, "\"\x00") {
		return bad("schema %q", l.Schema)
	}
	if l.SCN == "" || len(l.SCN) > 40 || strings.Trim(l.SCN, "0123456789") != "" {
		return bad("SCN %q is not a decimal number", l.SCN)
	}
	if len(l.Exports) == 0 || len(l.Exports) > 4 {
		return bad("%d exports", len(l.Exports))
	}
	for _, k := range l.Exports {
		if k != ExportOracle && k != ExportDataPump {
			return bad("unknown export %q", k)
		}
	}
	if _, err := hex.DecodeString(m.ImageHash); err != nil || len(m.ImageHash) != 64 || m.ImageSHA256 != "" {
		return bad("contents hash %q is not a SHA-256", m.ImageHash)
	}
	for _, t := range m.Tables {
		if t.Rows < 0 {
			return bad("table %q has %d rows", t.Name, t.Rows)
		}
	}
	return nil
}

// LogicalBackup writes a logical backup: files first, the manifest last.
type LogicalBackup struct {
	ctx      context.Context
	bucket   *blob.Bucket
	key      *DataKey
	keeper   SecretsKeeper
	env      KeyEnvelope
	database string
	backupID string
	files    map[string][]ExportFile
}

// NewLogicalBackup starts a logical backup with a fresh data key.
func NewLogicalBackup(ctx context.Context, bucket *blob.Bucket, keeper SecretsKeeper, keeperDescription, database, backupID string, now time.Time) (*LogicalBackup, error) {
	if err := ValidateDatabaseName(database); err != nil {
		return nil, err
	}
	if err := ValidateBackupID(backupID); err != nil {
		return nil, err
	}
	key, env, err := NewDataKey(ctx, keeper, keeperDescription, now)
	if err != nil {
		return nil, err
	}
	if err := WriteKeyEnvelope(ctx, bucket, database, backupID, env); err != nil {
		return nil, err
	}
	return &LogicalBackup{ctx: ctx, bucket: bucket, key: key, keeper: keeper, env: env, database: database, backupID: backupID,
		files: map[string][]ExportFile{}}, nil
}

// Create starts file name of export kind; Close stores its last part and
// records it for the export manifest.
func (l *LogicalBackup) Create(kind, name string) (io.WriteCloser, error) {
	w, err := NewExportWriter(l.ctx, l.bucket, l.key, l.database, l.backupID, kind, name)
	if err != nil {
		return nil, err
	}
	return &logicalFile{w: w, done: func(f ExportFile) { l.files[kind] = append(l.files[kind], f) }}, nil
}

type logicalFile struct {
	w      *ExportWriter
	done   func(ExportFile)
	closed bool
}

func (f *logicalFile) Write(p []byte) (int, error) { return f.w.Write(p) }

func (f *logicalFile) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	ef, err := f.w.Close()
	if err != nil {
		return err
	}
	f.done(ef)
	return nil
}

// Files returns the files written so far of kind.
func (l *LogicalBackup) Files(kind string) []ExportFile {
	return append([]ExportFile(nil), l.files[kind]...)
}

// Commit writes the export manifests and then m, completed with the key,
// the history link and the contents hash. From then on the backup is
// listed.
func (l *LogicalBackup) Commit(m *Manifest) (string, int64, error) {
	if m.Logical == nil {
		return "", 0, fmt.Errorf("%w: logical backup without logical info", ErrBadInput)
	}
	m.BackupID, m.Database.Name, m.Database.Engine = l.backupID, l.database, EngineOracle
	m.Type, m.Key = BackupFull, l.env
	var stored int64
	exports := map[string][]ExportFile{}
	for _, kind := range m.Logical.Exports {
		files := l.files[kind]
		sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
		if err := WriteExportManifest(l.ctx, l.bucket, l.key, l.database, ExportManifest{BackupID: l.backupID, Kind: kind, Files: files}); err != nil {
			return "", 0, fmt.Errorf("store export manifest %s: %w", kind, err)
		}
		exports[kind] = files
		for _, f := range files {
			for _, p := range f.Parts {
				stored += p.StoredBytes
			}
		}
	}
	m.ImageHash = contentsHash(m.Logical.Exports, exports)
	m.StoredBytes = stored
	history, err := AuthenticHistoryLinkFor(l.ctx, l.bucket, l.keeper, l.database)
	if err != nil {
		return "", 0, err
	}
	m.History = history
	if _, err := WriteManifest(l.ctx, l.bucket, l.key, m); err != nil {
		return "", 0, err
	}
	return ManifestKey(l.database, l.backupID), stored, nil
}

// contentsHash is a logical backup's image hash: the SHA-256 of its export
// manifests' file lists (kind, name, size and SHA-256 of each file), in the
// order of kinds.
func contentsHash(kinds []string, files map[string][]ExportFile) string {
	h := sha256.New()
	for _, kind := range kinds {
		for _, f := range files[kind] {
			fmt.Fprintf(h, "%s\x00%s\x00%d\x00%s\n", kind, f.Name, f.Bytes, f.SHA256)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// LogicalFiles opens a logical backup's files for reading: each file is
// checked part by part (hash, authentication) and as a whole.
type LogicalFiles struct {
	ctx      context.Context
	bucket   *blob.Bucket
	key      *DataKey
	m        *Manifest
	manifest map[string]*ExportManifest
}

// OpenLogical authenticates a logical backup and reads its export
// manifests.
func OpenLogical(ctx context.Context, bucket *blob.Bucket, keeper SecretsKeeper, b *Backup) (*LogicalFiles, error) {
	m := b.Manifest
	if !m.IsLogical() {
		return nil, fmt.Errorf("%w: backup %s is a SQLite backup, not a logical one", ErrBadInput, m.BackupID)
	}
	key, err := b.Open(ctx, keeper)
	if err != nil {
		return nil, err
	}
	lf := &LogicalFiles{ctx: ctx, bucket: bucket, key: key, m: m, manifest: map[string]*ExportManifest{}}
	exports := map[string][]ExportFile{}
	for _, kind := range m.Logical.Exports {
		em, err := ReadExportManifest(ctx, bucket, key, m.Database.Name, m.BackupID, kind)
		if err != nil {
			return nil, fmt.Errorf("backup %s: %w", m.BackupID, err)
		}
		lf.manifest[kind] = em
		exports[kind] = em.Files
	}
	if got := contentsHash(m.Logical.Exports, exports); got != m.ImageHash {
		return nil, fmt.Errorf("%w: backup %s: its export manifests hash to %s, the manifest says %s", ErrCorrupt, m.BackupID, got, m.ImageHash)
	}
	return lf, nil
}

// Files lists the files of export kind.
func (lf *LogicalFiles) Files(kind string) []ExportFile {
	if em := lf.manifest[kind]; em != nil {
		return append([]ExportFile(nil), em.Files...)
	}
	return nil
}

// Open streams file name of export kind. Reading fails with ErrCorrupt on
// any damaged part; the whole file's hash is checked at the end, so a
// reader must read to io.EOF before trusting what it read.
func (lf *LogicalFiles) Open(kind, name string) (io.ReadCloser, error) {
	em := lf.manifest[kind]
	if em == nil {
		return nil, fmt.Errorf("%w: backup %s has no %s export", ErrNotFound, lf.m.BackupID, kind)
	}
	for _, f := range em.Files {
		if f.Name == name {
			pr, pw := io.Pipe()
			go func() {
				pw.CloseWithError(CopyExportFile(lf.ctx, lf.bucket, lf.key, lf.m.Database.Name, lf.m.BackupID, kind, f, pw))
			}()
			return pr, nil
		}
	}
	return nil, fmt.Errorf("%w: backup %s has no file %q in its %s export", ErrNotFound, lf.m.BackupID, name, kind)
}

// refuseLogical stops the page-image paths (chains, restore of a file,
// drills) at a logical backup with an error that says what to do instead.
func refuseLogical(m *Manifest) error {
	if m.IsLogical() {
		return fmt.Errorf("%w: backup %s is a logical backup of Oracle schema %s, not a SQLite image: restore it with `bulwark oracle restore`", ErrBadInput, m.BackupID, m.Logical.Schema)
	}
	return nil
}

// DiscardIncomplete deletes what an interrupted attempt left of a backup
// that has no manifest, so that a retry starts clean and no stale part is
// ever copied with it. A complete backup is never touched.
func DiscardIncomplete(ctx context.Context, bucket *blob.Bucket, database, backupID string) (int, error) {
	if err := ValidateDatabaseName(database); err != nil {
		return 0, err
	}
	if err := ValidateBackupID(backupID); err != nil {
		return 0, err
	}
	if ok, err := bucket.Exists(ctx, ManifestKey(database, backupID)); err != nil {
		return 0, err
	} else if ok {
		return 0, fmt.Errorf("%w: backup %s is complete; it is not discarded", ErrBadInput, backupID)
	}
	objs, err := listTree(ctx, bucket, BackupPrefix(database, backupID))
	if err != nil {
		return 0, err
	}
	for _, o := range objs {
		if err := bucket.Delete(ctx, o.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return 0, fmt.Errorf("discard %s: %w", o.Key, err)
		}
	}
	return len(objs), nil
}

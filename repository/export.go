package repository

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"regexp"

	"github.com/klauspost/compress/zstd"
	"gocloud.dev/blob"
)

// Logical exports (an SQL dump, CSV files) are artifacts of a backup:
//
//	…/<backup-id>/exports/<format>/<file>/00000000   parts of each file
//	…/<backup-id>/exports/<format>.json              written last; lists the files
//
// Each part is up to 4 MiB of the file, compressed with zstd and sealed with
// AES-256-GCM under the backup's data key, with additional data
// "bulwark export v1\0" | backup id | format | file | part number, so parts
// cannot be swapped between files, formats or backups. The export manifest
// is authenticated like a backup manifest.
const (
	exportsDir      = "exports/"
	exportPartBytes = 4 << 20
)

var exportNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._ -]{0,200}$`)

// exportKindPattern is what an export kind (sql, csv, oracle, …) looks like:
// it becomes part of object keys.
var exportKindPattern = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

// ExportFile is one file of an export.
type ExportFile struct {
	Name   string      `json:"name"`
	Table  string      `json:"table,omitempty"` // the table a CSV file holds
	Bytes  int64       `json:"bytes"`
	SHA256 string      `json:"sha256"` // of the file's contents
	Rows   int64       `json:"rows,omitempty"`
	Parts  []ObjectRef `json:"parts"`
}

// ExportManifest lists the files of one export of a backup.
type ExportManifest struct {
	Format   int          `json:"format"`
	BackupID string       `json:"backup_id"`
	Kind     string       `json:"kind"` // "sql" or "csv"
	Files    []ExportFile `json:"files"`
}

// ExportManifestKey is the key of the manifest of an export of kind.
func ExportManifestKey(database, backupID, kind string) string {
	return BackupPrefix(database, backupID) + exportsDir + kind + ".json"
}

func exportPartKey(database, backupID, kind, name string, part int) string {
	return BackupPrefix(database, backupID) + exportsDir + kind + "/" + name + "/" + fmt.Sprintf("%08d", part)
}

func exportAAD(backupID, kind, name string, part int) []byte {
	aad := []byte("bulwark export v1\x00" + backupID + "\x00" + kind + "\x00" + name + "\x00")
	return binary.BigEndian.AppendUint64(aad, uint64(part))
}

// ValidateExportName reports whether name can be an export file name: it
// becomes part of object keys and of a file path on restore.
func ValidateExportName(name string) error {
	if !exportNamePattern.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%w: export file name %q must be 1-200 characters of letters, digits, '.', '_', '-' or space", ErrBadInput, name)
	}
	return nil
}

// ExportWriter streams one export file into sealed parts.
type ExportWriter struct {
	ctx      context.Context
	bucket   *blob.Bucket
	key      *DataKey
	database string
	backupID string
	kind     string
	name     string
	enc      *zstd.Encoder
	buf      []byte
	sealed   []byte
	sum      hash.Hash
	file     ExportFile
}

// NewExportWriter starts writing file name of an export of kind.
func NewExportWriter(ctx context.Context, bucket *blob.Bucket, key *DataKey, database, backupID, kind, name string) (*ExportWriter, error) {
	if err := ValidateExportName(name); err != nil {
		return nil, err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, err
	}
	return &ExportWriter{ctx: ctx, bucket: bucket, key: key, database: database, backupID: backupID, kind: kind, name: name,
		enc: enc, buf: make([]byte, 0, exportPartBytes), sum: sha256.New(), file: ExportFile{Name: name}}, nil
}

// Write buffers p and uploads every full part.
func (w *ExportWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), cap(w.buf)-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (w *ExportWriter) flush() error {
	part := len(w.file.Parts)
	w.sum.Write(w.buf)
	w.file.Bytes += int64(len(w.buf))
	compressed := w.enc.EncodeAll(w.buf, nil)
	nonce := make([]byte, chunkNonceSize)
	if _, err := randRead(nonce); err != nil {
		return err
	}
	w.sealed = w.key.chunkAEAD.Seal(append(w.sealed[:0], nonce...), nonce, compressed, exportAAD(w.backupID, w.kind, w.name, part))
	sum := sha256.Sum256(w.sealed)
	if _, err := putObject(w.ctx, w.bucket, exportPartKey(w.database, w.backupID, w.kind, w.name, part), w.sealed, false); err != nil {
		return fmt.Errorf("upload part %d of %s: %w", part, w.name, err)
	}
	w.file.Parts = append(w.file.Parts, ObjectRef{StoredBytes: int64(len(w.sealed)), StoredSHA256: hex.EncodeToString(sum[:])})
	w.buf = w.buf[:0]
	return nil
}

// Close uploads the last part and returns the file's description.
func (w *ExportWriter) Close() (ExportFile, error) {
	defer w.enc.Close()
	if len(w.buf) > 0 || len(w.file.Parts) == 0 {
		if err := w.flush(); err != nil {
			return ExportFile{}, err
		}
	}
	w.file.SHA256 = hex.EncodeToString(w.sum.Sum(nil))
	return w.file, nil
}

// WriteExportManifest authenticates and stores an export's manifest; from
// then on the export is listed with its backup.
func WriteExportManifest(ctx context.Context, bucket *blob.Bucket, key *DataKey, database string, m ExportManifest) error {
	m.Format = FormatVersion
	body, err := json.MarshalIndent(m, "  ", "  ")
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(manifestFile{Body: body, MAC: hex.EncodeToString(key.mac([]byte("export manifest"), body))}, "", "  ")
	if err != nil {
		return err
	}
	_, err = putObject(ctx, bucket, ExportManifestKey(database, m.BackupID, m.Kind), data, true)
	return err
}

// ReadExportManifest reads and authenticates an export's manifest.
func ReadExportManifest(ctx context.Context, bucket *blob.Bucket, key *DataKey, database, backupID, kind string) (*ExportManifest, error) {
	if !exportKindPattern.MatchString(kind) {
		return nil, fmt.Errorf("%w: export kind %q is not a kind name (sql, csv, …)", ErrBadInput, kind)
	}
	objKey := ExportManifestKey(database, backupID, kind)
	data, err := getObject(ctx, bucket, objKey, MaxChunkBytes, nil)
	if err != nil {
		return nil, err
	}
	var f manifestFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, &ObjectError{Op: "parse", Key: objKey, Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
	}
	got, _ := hex.DecodeString(f.MAC)
	if !equalMAC(key.mac([]byte("export manifest"), f.Body), got) {
		return nil, &ObjectError{Op: "authenticate", Key: objKey, Err: fmt.Errorf("%w: export manifest fails authentication", ErrCorrupt)}
	}
	var m ExportManifest
	if err := json.Unmarshal(f.Body, &m); err != nil {
		return nil, &ObjectError{Op: "parse", Key: objKey, Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
	}
	if m.BackupID != backupID || m.Kind != kind {
		return nil, &ObjectError{Op: "parse", Key: objKey, Err: fmt.Errorf("%w: export manifest is of %s/%s", ErrCorrupt, m.BackupID, m.Kind)}
	}
	if m.Format > FormatVersion {
		return nil, &ObjectError{Op: "parse", Key: objKey, Err: fmt.Errorf("%w: export manifest format %d, this Bulwark reads up to %d; upgrade Bulwark", ErrUnsupportedFormat, m.Format, FormatVersion)}
	}
	names := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		if err := ValidateExportName(f.Name); err != nil {
			return nil, &ObjectError{Op: "parse", Key: objKey, Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
		}
		if names[f.Name] {
			return nil, &ObjectError{Op: "parse", Key: objKey, Err: fmt.Errorf("%w: export file name %q appears twice", ErrCorrupt, f.Name)}
		}
		names[f.Name] = true
		if f.Bytes < 0 || f.Rows < 0 || !isSHA256Hex(f.SHA256) {
			return nil, &ObjectError{Op: "parse", Key: objKey, Err: fmt.Errorf("%w: export file %q has bytes %d, rows %d, sha256 %q", ErrCorrupt, f.Name, f.Bytes, f.Rows, f.SHA256)}
		}
		for i, p := range f.Parts {
			if p.StoredBytes < 0 || p.StoredBytes > MaxChunkBytes || !isSHA256Hex(p.StoredSHA256) {
				return nil, &ObjectError{Op: "parse", Key: objKey, Err: fmt.Errorf("%w: part %d of export file %q has absurd size %d or hash %q", ErrCorrupt, i, f.Name, p.StoredBytes, p.StoredSHA256)}
			}
		}
	}
	return &m, nil
}

// CopyExportFile writes the contents of one export file to w, checking every
// part's hash and authentication and the whole file's hash.
func CopyExportFile(ctx context.Context, bucket *blob.Bucket, key *DataKey, database, backupID, kind string, f ExportFile, w io.Writer) error {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxChunkBytes))
	if err != nil {
		return err
	}
	defer dec.Close()
	sum := sha256.New()
	var obj, plain []byte
	var total int64
	for i, ref := range f.Parts {
		objKey := exportPartKey(database, backupID, kind, f.Name, i)
		obj, err = getObject(ctx, bucket, objKey, MaxChunkBytes, obj)
		if err != nil {
			return fmt.Errorf("part %d of %s: %w", i, f.Name, err)
		}
		if h := sha256.Sum256(obj); hex.EncodeToString(h[:]) != ref.StoredSHA256 {
			return &ObjectError{Op: fmt.Sprintf("check part %d of", i), Key: objKey, Err: fmt.Errorf("%w: stored object hash differs from the export manifest", ErrCorrupt)}
		}
		if len(obj) < chunkNonceSize {
			return &ObjectError{Op: "open", Key: objKey, Err: ErrCorrupt}
		}
		compressed, err := key.chunkAEAD.Open(nil, obj[:chunkNonceSize], obj[chunkNonceSize:], exportAAD(backupID, kind, f.Name, i))
		if err != nil {
			return &ObjectError{Op: fmt.Sprintf("open part %d of", i), Key: objKey, Err: fmt.Errorf("%w: fails authentication", ErrCorrupt)}
		}
		plain, err = dec.DecodeAll(compressed, plain[:0])
		if err != nil {
			return &ObjectError{Op: "decompress", Key: objKey, Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
		}
		sum.Write(plain)
		total += int64(len(plain))
		if _, err := w.Write(plain); err != nil {
			return err
		}
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != f.SHA256 || total != f.Bytes {
		return fmt.Errorf("%w: export file %s hashes to %s (%d bytes), the manifest says %s (%d bytes)", ErrCorrupt, f.Name, got, total, f.SHA256, f.Bytes)
	}
	return nil
}

// ExportKinds lists the exports a backup has.
func ExportKinds(ctx context.Context, bucket *blob.Bucket, database, backupID string) ([]string, error) {
	var kinds []string
	for _, k := range []string{"sql", "csv"} {
		ok, err := bucket.Exists(ctx, ExportManifestKey(database, backupID, k))
		if err != nil {
			return nil, err
		}
		if ok {
			kinds = append(kinds, k)
		}
	}
	return kinds, nil
}

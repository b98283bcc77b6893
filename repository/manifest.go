package repository

import (
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// BackupType names how a backup relates to earlier ones.
type BackupType string

// Backup types. Only full backups exist in format 1 so far; the page-set
// chunk framing already carries sparse pages for the others.
const (
	BackupFull         BackupType = "full"
	BackupIncremental  BackupType = "incremental"
	BackupDifferential BackupType = "differential"
)

// Manifest describes one complete backup. It is written last: a backup
// without a manifest does not exist for listing, restore or retention.
type Manifest struct {
	Format   int              `json:"format"`
	BackupID string           `json:"backup_id"`
	Type     BackupType       `json:"type"`
	Parent   string           `json:"parent,omitempty"`
	Database DatabaseIdentity `json:"database"`

	PageSize   int   `json:"page_size"`
	PageCount  int64 `json:"page_count"`
	ImageBytes int64 `json:"image_bytes"`
	// ImageHash (format ≥ 2) is the SHA-256 of the pages' xxh3-128 hashes,
	// ImageSHA256 (format 1) the SHA-256 of the image's bytes; see
	// imagehash.go. A manifest carries exactly one.
	ImageHash   string `json:"image_hash,omitempty"`
	ImageSHA256 string `json:"image_sha256,omitempty"`
	StoredBytes int64  `json:"stored_bytes"` // sum of the chunk objects' sizes

	Compression string      `json:"compression"`
	Key         KeyEnvelope `json:"key"`
	Chunks      []ChunkRef  `json:"chunks"`
	// PageIndex is the object listing a hash of every page of the image,
	// which the next incremental or differential backup compares against.
	PageIndex *ObjectRef `json:"page_index,omitempty"`
	// History links this backup to the one that was newest when it was
	// written (tamper evidence; see history.go). Nil for the first.
	History *HistoryLink `json:"history,omitempty"`
	// FullBecause says why a backup asked to be incremental or differential
	// was taken as a full one (no usable parent).
	FullBecause string `json:"full_because,omitempty"`

	// Logical is set for logical (Oracle) backups, which have no pages;
	// see logical.go.
	Logical *LogicalInfo `json:"logical,omitempty"`

	Tables       []TableRows `json:"tables"`
	SchemaSHA256 string      `json:"schema_sha256"`

	StartedAt  time.Time `json:"started_at"`
	SnapshotAt time.Time `json:"snapshot_at"`
	FinishedAt time.Time `json:"finished_at"`
	Tool       string    `json:"tool"`
}

// DatabaseIdentity says which database a backup is of.
type DatabaseIdentity struct {
	Name          string `json:"name"` // configured name, the key prefix
	Engine        string `json:"engine"`
	Path          string `json:"path"`
	Host          string `json:"host"`
	JournalMode   string `json:"journal_mode"`
	SQLiteVersion string `json:"sqlite_version"`
	ApplicationID int64  `json:"application_id"`
	UserVersion   int64  `json:"user_version"`
}

// ChunkRef is one chunk object of a backup.
type ChunkRef struct {
	Index        int    `json:"index"`
	FirstPage    uint32 `json:"first_page"`
	PageCount    int    `json:"page_count"`
	StoredBytes  int64  `json:"stored_bytes"`
	StoredSHA256 string `json:"stored_sha256"` // of the object bytes: checkable without the key
	// SealTag is the object's AES-GCM tag (its last 16 bytes, hex). A
	// restore, which authenticates every chunk anyway, compares it instead
	// of hashing the object: a chunk that authenticates and carries this
	// tag is the object the manifest recorded, without a SHA-256 pass
	// (0.5 s of CPU in a 7-backup chain restore of 1 GiB). Empty in
	// manifests written before it existed; they are checked by hash.
	SealTag string `json:"seal_tag,omitempty"`
}

// ObjectRef names a stored object by size and hash.
type ObjectRef struct {
	StoredBytes  int64  `json:"stored_bytes"`
	StoredSHA256 string `json:"stored_sha256"`
}

// TableRows is a table's row count at snapshot time.
type TableRows struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
	// Digest is a logical backup's checksum of the table's contents
	// (oraclesrc.TableDigest), checked by verify and after a restore.
	Digest string `json:"digest,omitempty"`
}

// manifestFile is the stored form: the body's exact bytes and an HMAC over
// them made with the backup's data key, so that an altered manifest (row
// counts, hashes, chunk list) is detected by anyone holding the key.
type manifestFile struct {
	Body json.RawMessage `json:"body"`
	MAC  string          `json:"mac"`
}

// SealManifest serialises m and authenticates it with the backup's data key.
func (k *DataKey) SealManifest(m *Manifest) ([]byte, error) {
	body, err := json.MarshalIndent(m, "  ", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return json.MarshalIndent(manifestFile{
		Body: body,
		MAC:  hex.EncodeToString(k.mac([]byte("manifest"), body)),
	}, "", "  ")
}

// ParseManifest decodes a stored manifest without authenticating it. Listing
// uses it; anything that trusts the contents must call AuthenticateManifest.
func ParseManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxChunkBytes {
		return nil, fmt.Errorf("%w: manifest of %d bytes is larger than any Bulwark writes", ErrCorrupt, len(data))
	}
	var f manifestFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: manifest is not valid JSON: %v", ErrCorrupt, err)
	}
	var m Manifest
	if err := json.Unmarshal(f.Body, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest body is not valid JSON: %v", ErrCorrupt, err)
	}
	if m.Format > FormatVersion {
		return nil, fmt.Errorf("%w: manifest format %d, this Bulwark reads up to %d; upgrade Bulwark", ErrUnsupportedFormat, m.Format, FormatVersion)
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return &m, nil
}

// AuthenticateManifest checks the manifest's HMAC with the backup's data key.
func (k *DataKey) AuthenticateManifest(data []byte) error {
	var f manifestFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("%w: manifest is not valid JSON: %v", ErrCorrupt, err)
	}
	want := k.mac([]byte("manifest"), f.Body)
	got, err := hex.DecodeString(f.MAC)
	if err != nil || !hmac.Equal(want, got) {
		return fmt.Errorf("%w: manifest fails authentication (altered after it was written)", ErrCorrupt)
	}
	return nil
}

// check rejects manifests whose fields are inconsistent or dangerous to act
// on, before any byte of them drives allocation or file writes.
func (m *Manifest) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: manifest of %q: %s", ErrCorrupt, m.BackupID, fmt.Sprintf(format, args...))
	}
	if err := ValidateBackupID(m.BackupID); err != nil {
		return bad("%v", err)
	}
	if err := ValidateDatabaseName(m.Database.Name); err != nil {
		return bad("%v", err)
	}
	if m.Format < 1 {
		return bad("format %d is not a manifest format (1 to %d)", m.Format, FormatVersion)
	}
	if h := m.History; h != nil {
		if err := ValidateBackupID(h.Previous); err != nil {
			return bad("history: previous %v", err)
		}
		if !isSHA256Hex(h.PreviousSHA256) {
			return bad("history: previous_sha256 %q is not a SHA-256", h.PreviousSHA256)
		}
	}
	if m.Logical != nil {
		return m.checkLogical(bad)
	}
	if m.Database.Engine == EngineOracle {
		return bad("an Oracle backup without its logical section")
	}
	if m.PageSize < 512 || m.PageSize > 65536 || m.PageSize&(m.PageSize-1) != 0 {
		return bad("page size %d is not a power of two between 512 and 65536", m.PageSize)
	}
	if m.PageCount < 1 || m.PageCount > 0xfffffffe {
		return bad("page count %d out of range", m.PageCount)
	}
	if m.ImageBytes != m.PageCount*int64(m.PageSize) {
		return bad("image bytes %d ≠ page count × page size", m.ImageBytes)
	}
	switch m.Type {
	case BackupFull:
		if m.Parent != "" {
			return bad("a full backup has a parent")
		}
	case BackupIncremental, BackupDifferential:
		if err := ValidateBackupID(m.Parent); err != nil {
			return bad("parent: %v", err)
		}
		if CompareBackupIDs(m.Parent, m.BackupID) >= 0 {
			return bad("parent %s is not older than the backup", m.Parent)
		}
	default:
		return bad("unknown backup type %q", m.Type)
	}
	sum := m.ImageHash
	if m.Format < 2 {
		sum = m.ImageSHA256
	}
	if (m.ImageHash == "") == (m.ImageSHA256 == "") {
		return bad("a manifest carries exactly one image hash (format %d)", m.Format)
	}
	if _, err := hex.DecodeString(sum); err != nil || len(sum) != 64 {
		return bad("image hash %q is not a SHA-256", sum)
	}
	if m.StoredBytes < 0 {
		return bad("stored bytes %d is negative", m.StoredBytes)
	}
	maxPages := MaxChunkBytes / m.PageSize
	var pagesSeen int64
	next := int64(1) // the first page the next chunk may hold
	for i, c := range m.Chunks {
		if c.Index != i {
			return bad("chunk %d has index %d", i, c.Index)
		}
		if c.PageCount < 0 || c.PageCount > maxPages || c.StoredBytes < 0 || c.StoredBytes > MaxChunkBytes {
			return bad("chunk %d has absurd size (%d pages, %d bytes)", i, c.PageCount, c.StoredBytes)
		}
		if c.PageCount == 0 {
			return bad("chunk %d holds no pages", i)
		}
		if !isSHA256Hex(c.StoredSHA256) {
			return bad("chunk %d has no object hash (stored_sha256 %q)", i, c.StoredSHA256)
		}
		// Pages are stored in increasing order across chunks; a full
		// backup's chunks are consecutive runs from page 1.
		first, last := int64(c.FirstPage), int64(c.FirstPage)+int64(c.PageCount)-1
		switch {
		case first < next && i == 0:
			return bad("chunk 0 starts at page %d; pages are numbered from 1", first)
		case first < next:
			return bad("chunk %d starts at page %d, inside or before chunk %d (first pages overlap or are out of order)", i, first, i-1)
		case m.Type == BackupFull && first != next:
			return bad("chunk %d starts at page %d; a full backup's chunks are consecutive, so it must start at page %d", i, first, next)
		case last > m.PageCount:
			return bad("chunk %d holds pages %d to at least %d, beyond the image's %d pages", i, first, last, m.PageCount)
		}
		next = last + 1
		if _, err := hex.DecodeString(c.SealTag); err != nil || (c.SealTag != "" && len(c.SealTag) != 2*sealTagSize) {
			return bad("chunk %d has a malformed seal tag", i)
		}
		pagesSeen += int64(c.PageCount)
	}
	if m.Type == BackupFull && pagesSeen != m.PageCount {
		return bad("chunks hold %d pages, a full backup of %d pages needs all of them", pagesSeen, m.PageCount)
	}
	if pagesSeen > m.PageCount {
		return bad("chunks hold %d pages, more than the image's %d", pagesSeen, m.PageCount)
	}
	if m.PageIndex != nil && (!isSHA256Hex(m.PageIndex.StoredSHA256) || m.PageIndex.StoredBytes < 0) {
		return bad("page index has no object hash or size (%d bytes, stored_sha256 %q)", m.PageIndex.StoredBytes, m.PageIndex.StoredSHA256)
	}
	for i, t := range m.Tables {
		if strings.ContainsRune(t.Name, 0) || t.Rows < 0 {
			return bad("table %d (%q) has a NUL in its name or a negative row count (%d)", i, t.Name, t.Rows)
		}
	}
	return nil
}

// isSHA256Hex reports whether s is a SHA-256 in hex.
func isSHA256Hex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && len(s) == 64
}

package repository

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/zeebo/xxh3"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// A page index lists a 128-bit hash (xxh3) of every page of a backup's
// image. The next incremental or differential backup compares the pages it
// reads with it to find what changed, so it stores one per backup:
//
//	"BWI1" | page size (uint32 BE) | page count (uint64 BE) | segments…
//	segment: sealed length (uint32 BE) | nonce (12) | AES-256-GCM(hashes of up to 65536 pages)
//
// with additional data "bulwark page index v1\0" | backup id | segment
// number (uint64 BE) | last flag (1 byte), so segments cannot be reordered,
// moved between backups or cut off. Segments keep memory bounded in both
// directions: the writer and the reader hold one segment at a time.
const (
	pageIndexMagic   = "BWI1"
	pageIndexName    = "pages.idx"
	pageHashSize     = 16
	segmentPages     = 65536
	pageIndexHdrSize = len(pageIndexMagic) + 4 + 8
)

// PageIndexKey is the key of a backup's page index.
func PageIndexKey(database, backupID string) string {
	return BackupPrefix(database, backupID) + pageIndexName
}

// PageHash is the hash of one page in a page index.
type PageHash [pageHashSize]byte

// HashPage hashes a page for a page index.
func HashPage(page []byte) PageHash {
	return xxh3.Hash128(page).Bytes()
}

func pageIndexAAD(backupID string, segment uint64, last bool) []byte {
	aad := make([]byte, 0, 48+len(backupID))
	aad = append(aad, "bulwark page index v1\x00"...)
	aad = append(aad, backupID...)
	aad = append(aad, 0)
	aad = binary.BigEndian.AppendUint64(aad, segment)
	if last {
		return append(aad, 1)
	}
	return append(aad, 0)
}

// PageIndexWriter streams a page index to storage.
type PageIndexWriter struct {
	key      *DataKey
	backupID string
	w        *blob.Writer
	bw       *bufio.Writer
	cancel   context.CancelFunc
	file     *os.File
	sum      hash.Hash
	seg      []byte
	segment  uint64
	pages    uint64
	written  int64
	pageSize int
	count    uint64
}

// NewPageIndexWriter starts writing the page index of a backup whose image
// has pageCount pages of pageSize bytes. Add must then be called for every
// page in order, and Close once.
func NewPageIndexWriter(ctx context.Context, bucket *blob.Bucket, key *DataKey, database, backupID string, pageSize int, pageCount uint64) (*PageIndexWriter, error) {
	p := &PageIndexWriter{key: key, backupID: backupID, sum: sha256.New(), pageSize: pageSize, count: pageCount}
	wctx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	w, err := bucket.NewWriter(wctx, PageIndexKey(database, backupID), &blob.WriterOptions{
		ContentType: "application/octet-stream", DisableContentTypeDetection: true,
		BeforeWrite: func(as func(any) bool) error {
			var f *os.File
			if as(&f) {
				p.file = f
			}
			return nil
		},
	})
	if err != nil {
		cancel()
		return nil, &ObjectError{Op: "create", Key: PageIndexKey(database, backupID), Err: err}
	}
	p.w = w
	p.bw = bufio.NewWriterSize(io.MultiWriter(w, p.sum), 1<<16)
	hdr := append([]byte(pageIndexMagic), make([]byte, 12)...)
	binary.BigEndian.PutUint32(hdr[4:], uint32(pageSize))
	binary.BigEndian.PutUint64(hdr[8:], pageCount)
	if _, err := p.bw.Write(hdr); err != nil {
		p.Abort()
		return nil, err
	}
	p.written = int64(len(hdr))
	p.seg = make([]byte, 0, segmentPages*pageHashSize)
	return p, nil
}

// Add appends the hash of the next page.
func (p *PageIndexWriter) Add(h PageHash) error {
	p.seg = append(p.seg, h[:]...)
	p.pages++
	if len(p.seg) == cap(p.seg) && p.pages < p.count {
		return p.flush(false)
	}
	return nil
}

func (p *PageIndexWriter) flush(last bool) error {
	nonce := make([]byte, chunkNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	sealed := p.key.chunkAEAD.Seal(nonce, nonce, p.seg, pageIndexAAD(p.backupID, p.segment, last))
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(sealed)))
	if _, err := p.bw.Write(n[:]); err != nil {
		return err
	}
	if _, err := p.bw.Write(sealed); err != nil {
		return err
	}
	p.written += int64(4 + len(sealed))
	p.segment++
	p.seg = p.seg[:0]
	return nil
}

// Close writes the last segment and makes the object durable. It returns the
// object's size and SHA-256 for the manifest.
func (p *PageIndexWriter) Close() (int64, string, error) {
	defer p.cancel()
	if p.pages != p.count {
		p.Abort()
		return 0, "", fmt.Errorf("page index got %d pages, expected %d", p.pages, p.count)
	}
	if err := p.flush(true); err != nil {
		p.Abort()
		return 0, "", err
	}
	if err := p.bw.Flush(); err != nil {
		p.Abort()
		return 0, "", err
	}
	if p.file != nil {
		if err := p.file.Sync(); err != nil {
			p.Abort()
			return 0, "", err
		}
	}
	if err := p.w.Close(); err != nil {
		return 0, "", err
	}
	return p.written, hex.EncodeToString(p.sum.Sum(nil)), nil
}

// Abort discards the object being written.
func (p *PageIndexWriter) Abort() {
	p.cancel()
	_ = p.w.Close()
}

// PageIndexReader streams a stored page index page by page.
type PageIndexReader struct {
	key      *DataKey
	backupID string
	r        *blob.Reader
	br       *bufio.Reader
	sum      hash.Hash
	want     string
	PageSize int
	Count    uint64
	seg      []byte
	pos      int
	segment  uint64
	read     uint64
	last     bool
	buf      []byte
}

// OpenPageIndex opens the page index of the backup described by m, which
// must record the index's hash. The object's hash is checked when the last
// page has been read.
func OpenPageIndex(ctx context.Context, bucket *blob.Bucket, key *DataKey, m *Manifest) (*PageIndexReader, error) {
	objKey := PageIndexKey(m.Database.Name, m.BackupID)
	if m.PageIndex == nil {
		return nil, &ObjectError{Op: "open page index", Key: objKey, Err: fmt.Errorf("%w: backup %s has no page index", ErrNotFound, m.BackupID)}
	}
	r, err := bucket.NewReader(ctx, objKey, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, &ObjectError{Op: "open page index", Key: objKey, Err: ErrNotFound}
		}
		return nil, &ObjectError{Op: "open page index", Key: objKey, Err: err}
	}
	p := &PageIndexReader{key: key, backupID: m.BackupID, r: r, sum: sha256.New(), want: m.PageIndex.StoredSHA256}
	p.br = bufio.NewReaderSize(io.TeeReader(r, p.sum), 1<<16)
	hdr := make([]byte, pageIndexHdrSize)
	if _, err := io.ReadFull(p.br, hdr); err != nil || string(hdr[:4]) != pageIndexMagic {
		r.Close()
		return nil, &ObjectError{Op: "open page index", Key: objKey, Err: fmt.Errorf("%w: not a page index", ErrCorrupt)}
	}
	p.PageSize = int(binary.BigEndian.Uint32(hdr[4:]))
	p.Count = binary.BigEndian.Uint64(hdr[8:])
	if p.PageSize != m.PageSize || p.Count != uint64(m.PageCount) {
		r.Close()
		return nil, &ObjectError{Op: "open page index", Key: objKey, Err: fmt.Errorf("%w: page index describes %d pages of %d bytes, the manifest %d of %d", ErrCorrupt, p.Count, p.PageSize, m.PageCount, m.PageSize)}
	}
	return p, nil
}

// Next returns the hash of the next page; ok is false after the last page.
func (p *PageIndexReader) Next() (PageHash, bool, error) {
	var h PageHash
	if p.read == p.Count {
		return h, false, nil
	}
	if p.pos == len(p.seg) {
		if err := p.readSegment(); err != nil {
			return h, false, err
		}
	}
	copy(h[:], p.seg[p.pos:])
	p.pos += pageHashSize
	p.read++
	if p.read == p.Count {
		if err := p.finish(); err != nil {
			return h, false, err
		}
	}
	return h, true, nil
}

func (p *PageIndexReader) readSegment() error {
	if p.last {
		return fmt.Errorf("%w: page index of %s ends before page %d", ErrCorrupt, p.backupID, p.read+1)
	}
	var n [4]byte
	if _, err := io.ReadFull(p.br, n[:]); err != nil {
		return fmt.Errorf("%w: page index of %s is truncated: %v", ErrCorrupt, p.backupID, err)
	}
	size := int(binary.BigEndian.Uint32(n[:]))
	if size < chunkNonceSize+16 || size > chunkNonceSize+16+segmentPages*pageHashSize {
		return fmt.Errorf("%w: page index segment of %d bytes", ErrCorrupt, size)
	}
	if cap(p.buf) < size {
		p.buf = make([]byte, size)
	}
	sealed := p.buf[:size]
	if _, err := io.ReadFull(p.br, sealed); err != nil {
		return fmt.Errorf("%w: page index of %s is truncated: %v", ErrCorrupt, p.backupID, err)
	}
	remaining := p.Count - p.read
	last := remaining <= segmentPages
	plain, err := p.key.chunkAEAD.Open(p.seg[:0], sealed[:chunkNonceSize], sealed[chunkNonceSize:], pageIndexAAD(p.backupID, p.segment, last))
	if err != nil {
		return fmt.Errorf("%w: page index segment %d of %s fails authentication", ErrCorrupt, p.segment, p.backupID)
	}
	if want := min(remaining, segmentPages) * pageHashSize; uint64(len(plain)) != want {
		return fmt.Errorf("%w: page index segment %d holds %d bytes, expected %d", ErrCorrupt, p.segment, len(plain), want)
	}
	p.seg, p.pos, p.last = plain, 0, last
	p.segment++
	return nil
}

// finish checks that nothing follows the last segment and that the object's
// hash matches the manifest.
func (p *PageIndexReader) finish() error {
	if _, err := p.br.ReadByte(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: page index of %s has data after its last segment", ErrCorrupt, p.backupID)
	}
	if got := hex.EncodeToString(p.sum.Sum(nil)); got != p.want {
		return fmt.Errorf("%w: page index of %s hashes to %s, manifest says %s", ErrCorrupt, p.backupID, got, p.want)
	}
	return nil
}

// Close releases the reader.
func (p *PageIndexReader) Close() error { return p.r.Close() }

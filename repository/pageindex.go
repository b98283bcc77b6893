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
	"math/bits"
	"os"

	"github.com/zeebo/xxh3"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// A page index gives a 128-bit hash (xxh3) of every page of a backup's
// image. The next incremental or differential backup compares the pages it
// reads with it to find what changed, and verification compares the
// restored image with it. It comes in two formats:
//
//	"BWI1" | page size (uint32 BE) | page count (uint64 BE) | segments…   full
//	"BWI2" | page size (uint32 BE) | page count (uint64 BE) | segments…   sparse
//	segment: sealed length (uint32 BE) | nonce (12) | AES-256-GCM(plaintext)
//
// A full index (every full backup, and incrementals written before sparse
// indexes) lists the hashes of every page, up to 65536 a segment. A sparse
// index (incremental and differential backups) lists, per segment of up to
// 65536 pages, a bitmap of the pages whose hash differs from the parent
// backup's image or that the parent does not have (bit i%8 of byte i/8 for
// the segment's page i, least significant first; unused bits zero) followed
// by the hashes of just those pages. The hashes of a sparse backup's image
// are therefore the merge of its chain's indexes (see OpenChainPageIndex).
//
// The additional data of a segment is "bulwark page index v1\0" (full) or
// "bulwark page index v2\0" (sparse) | backup id | "\0" | segment number
// (uint64 BE) | last flag (1 byte), so segments cannot be reordered, moved
// between backups or formats, or cut off. Segments keep memory bounded in
// both directions: writers and readers hold one segment (per layer) at a
// time.
const (
	pageIndexMagic       = "BWI1"
	sparsePageIndexMagic = "BWI2"
	pageIndexName        = "pages.idx"
	pageHashSize         = 16
	segmentPages         = 65536
	pageIndexHdrSize     = len(pageIndexMagic) + 4 + 8
	gcmTagSize           = 16
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

// bitmapBytes is the size of the bitmap of a sparse segment of n pages.
func bitmapBytes(n int) int { return (n + 7) / 8 }

func pageIndexAAD(sparse bool, backupID string, segment uint64, last bool) []byte {
	aad := make([]byte, 0, 48+len(backupID))
	if sparse {
		aad = append(aad, "bulwark page index v2\x00"...)
	} else {
		aad = append(aad, "bulwark page index v1\x00"...)
	}
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
	sparse   bool
	w        *blob.Writer
	bw       *bufio.Writer
	cancel   context.CancelFunc
	file     *os.File
	sum      hash.Hash
	seg      []byte // the segment's plaintext so far: bitmap (sparse), then hashes
	segPages int    // pages added to the segment
	segment  uint64
	pages    uint64
	written  int64
	count    uint64
}

// NewPageIndexWriter starts writing the full page index of a backup whose
// image has pageCount pages of pageSize bytes: the format of full backups.
// Add must then be called for every page in order, and Close once.
func NewPageIndexWriter(ctx context.Context, bucket *blob.Bucket, key *DataKey, database, backupID string, pageSize int, pageCount uint64) (*PageIndexWriter, error) {
	return newPageIndexWriter(ctx, bucket, key, database, backupID, pageSize, pageCount, false)
}

// NewSparsePageIndexWriter starts writing the sparse page index of an
// incremental or differential backup whose image has pageCount pages of
// pageSize bytes. For every page in order the caller calls Add with its
// hash when it differs from the parent's (or the parent has no such page),
// AddUnchanged otherwise; then Close once.
func NewSparsePageIndexWriter(ctx context.Context, bucket *blob.Bucket, key *DataKey, database, backupID string, pageSize int, pageCount uint64) (*PageIndexWriter, error) {
	return newPageIndexWriter(ctx, bucket, key, database, backupID, pageSize, pageCount, true)
}

func newPageIndexWriter(ctx context.Context, bucket *blob.Bucket, key *DataKey, database, backupID string, pageSize int, pageCount uint64, sparse bool) (*PageIndexWriter, error) {
	p := &PageIndexWriter{key: key, backupID: backupID, sparse: sparse, sum: sha256.New(), count: pageCount}
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
	magic := pageIndexMagic
	if sparse {
		magic = sparsePageIndexMagic
	}
	hdr := append([]byte(magic), make([]byte, 12)...)
	binary.BigEndian.PutUint32(hdr[4:], uint32(pageSize))
	binary.BigEndian.PutUint64(hdr[8:], pageCount)
	if _, err := p.bw.Write(hdr); err != nil {
		p.Abort()
		return nil, err
	}
	p.written = int64(len(hdr))
	first := int(min(pageCount, segmentPages))
	p.seg = make([]byte, 0, bitmapBytes(first)+first*pageHashSize)
	p.startSegment()
	return p, nil
}

// startSegment empties the segment buffer; a sparse segment starts with a
// zeroed bitmap sized for the pages it will hold.
func (p *PageIndexWriter) startSegment() {
	p.segPages = 0
	p.seg = p.seg[:0]
	if p.sparse {
		n := bitmapBytes(int(min(p.count-p.pages, segmentPages)))
		p.seg = append(p.seg, make([]byte, n)...)
	}
}

// Add records the hash of the next page. In a sparse index it marks the
// page as changed since the parent.
func (p *PageIndexWriter) Add(h PageHash) error {
	if p.pages == p.count {
		return fmt.Errorf("page index announced %d pages and got more", p.count)
	}
	if p.sparse {
		p.seg[p.segPages>>3] |= 1 << (p.segPages & 7)
	}
	p.seg = append(p.seg, h[:]...)
	return p.advance()
}

// AddUnchanged records that the next page has the hash it has in the
// parent's image. Only a sparse index can say so.
func (p *PageIndexWriter) AddUnchanged() error {
	if !p.sparse {
		return errors.New("a full page index needs the hash of every page")
	}
	if p.pages == p.count {
		return fmt.Errorf("page index announced %d pages and got more", p.count)
	}
	return p.advance()
}

func (p *PageIndexWriter) advance() error {
	p.pages++
	p.segPages++
	if p.segPages == segmentPages && p.pages < p.count {
		if err := p.flush(false); err != nil {
			return err
		}
		p.startSegment()
	}
	return nil
}

func (p *PageIndexWriter) flush(last bool) error {
	nonce := make([]byte, chunkNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	sealed := p.key.chunkAEAD.Seal(nonce, nonce, p.seg, pageIndexAAD(p.sparse, p.backupID, p.segment, last))
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

// PageIndexReader streams the hashes of the pages of a backup's image, in
// page order, from its page index (OpenPageIndex) or from the merge of the
// page indexes of its chain (OpenChainPageIndex).
type PageIndexReader struct {
	PageSize int
	Count    uint64     // pages of the backup's image
	layers   []*idxFile // oldest first; the last is the backup's own
	read     uint64
	done     bool
}

// OpenPageIndex opens the full page index of the backup described by m,
// which must record the index's hash. The object's hash is checked when the
// last page has been read. A sparse index (incremental and differential
// backups from this version on) lists only what changed since the parent:
// it is refused with ErrBadInput, and must be read with OpenChainPageIndex.
func OpenPageIndex(ctx context.Context, bucket *blob.Bucket, key *DataKey, m *Manifest) (*PageIndexReader, error) {
	f, err := openIdxFile(ctx, bucket, key, m)
	if err != nil {
		return nil, err
	}
	if f.sparse {
		f.close()
		return nil, &ObjectError{Op: "open page index", Key: f.objKey, Err: fmt.Errorf("%w: the page index of %s backup %s is sparse (only the pages that changed since %s): read it with its chain (OpenChainPageIndex)", ErrBadInput, m.Type, m.BackupID, m.Parent)}
	}
	return &PageIndexReader{PageSize: f.pageSize, Count: f.count, layers: []*idxFile{f}}, nil
}

// OpenChainPageIndex opens the page index of the last backup of chain (as
// Chain returns it: a full backup first, each later backup's parent just
// before it) as the hash of every page of its image. A page's hash comes
// from the newest layer whose index lists it: the backup's own, else its
// parent's, and so on; a full index (BWI1) lists every page and ends the
// search, so older layers are not opened. A page that the search does not
// find, or that reaches a layer whose image is shorter, fails with
// ErrCorrupt. Every index opened is authenticated segment by segment, and
// read to its end — its hash checked against its manifest — by the time
// Next reports the last page.
func OpenChainPageIndex(ctx context.Context, bucket *blob.Bucket, chain []Layer) (*PageIndexReader, error) {
	buckets := make([]*blob.Bucket, len(chain))
	for i := range buckets {
		buckets[i] = bucket
	}
	return openChainPageIndex(ctx, chain, buckets)
}

// openChainPageIndex is OpenChainPageIndex reading the index of chain[i]
// from buckets[i].
func openChainPageIndex(ctx context.Context, chain []Layer, buckets []*blob.Bucket) (*PageIndexReader, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: no chain to read a page index from", ErrBadInput)
	}
	for i := 1; i < len(chain); i++ {
		if p, c := chain[i-1].Manifest(), chain[i].Manifest(); c.Parent != p.BackupID {
			return nil, fmt.Errorf("%w: backup %s follows %s in the chain, but its parent is %q", ErrBadInput, c.BackupID, p.BackupID, c.Parent)
		}
	}
	var rev []*idxFile // newest first
	fail := func(err error) (*PageIndexReader, error) {
		for _, f := range rev {
			f.close()
		}
		return nil, err
	}
	for i := len(chain) - 1; i >= 0; i-- {
		f, err := openIdxFile(ctx, buckets[i], chain[i].Key, chain[i].Manifest())
		if err != nil {
			return fail(err)
		}
		rev = append(rev, f)
		if f.pageSize != rev[0].pageSize {
			return fail(fmt.Errorf("%w: page index of %s has pages of %d bytes, that of %s %d", ErrCorrupt, f.backupID, f.pageSize, rev[0].backupID, rev[0].pageSize))
		}
		if !f.sparse {
			break
		}
		if i == 0 {
			return fail(fmt.Errorf("%w: the chain given for %s starts with %s, whose page index lists only what changed since its parent %s", ErrBadInput, rev[0].backupID, f.backupID, chain[0].Manifest().Parent))
		}
	}
	p := &PageIndexReader{PageSize: rev[0].pageSize, Count: rev[0].count}
	for i := len(rev) - 1; i >= 0; i-- {
		p.layers = append(p.layers, rev[i])
	}
	return p, nil
}

// Next returns the hash of the next page; ok is false after the last page.
func (p *PageIndexReader) Next() (PageHash, bool, error) {
	var h PageHash
	if p.read == p.Count {
		if !p.done {
			if err := p.finish(); err != nil {
				return h, false, err
			}
		}
		return h, false, nil
	}
	pgno := p.read + 1
	found := false
	// Every layer that has page pgno steps past it, so that each stays at
	// the same page; the newest that lists it gives the hash.
	for i := len(p.layers) - 1; i >= 0; i-- {
		f := p.layers[i]
		if pgno > f.count {
			if !found {
				child := p.layers[i+1]
				return h, false, child.corrupt("page %d is marked unchanged since %s, whose image has only %d pages", pgno, f.backupID, f.count)
			}
			continue
		}
		listed, fh, err := f.next()
		if err != nil {
			return h, false, err
		}
		if listed && !found {
			h, found = fh, true
		}
	}
	if !found {
		// Unreachable while the oldest layer is a full index; a guard.
		return h, false, p.layers[0].corrupt("page %d is in none of the page indexes of its chain", pgno)
	}
	p.read++
	if p.read == p.Count {
		if err := p.finish(); err != nil {
			return h, false, err
		}
	}
	return h, true, nil
}

// finish reads every layer to its end, authenticating what no page needed
// (pages beyond the image, when a later backup shrank it) and checking each
// object's hash.
func (p *PageIndexReader) finish() error {
	for _, f := range p.layers {
		if err := f.drain(); err != nil {
			return err
		}
	}
	p.done = true
	return nil
}

// Close releases the reader.
func (p *PageIndexReader) Close() error {
	var first error
	for _, f := range p.layers {
		if err := f.close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// idxFile reads one stored page index, of either format, a segment at a
// time.
type idxFile struct {
	key      *DataKey
	backupID string
	objKey   string
	sparse   bool
	pageSize int
	count    uint64
	r        *blob.Reader
	br       *bufio.Reader
	sum      hash.Hash
	want     string
	buf      []byte // the sealed segment, decrypted in place
	bitmap   []byte // the segment's bitmap (sparse)
	hashes   []byte // the segment's hashes not yet returned
	segPages int    // pages in the segment
	pos      int    // the segment's next page
	segment  uint64 // number of the next segment
	read     uint64 // pages stepped over
	done     bool   // the last segment, the end and the hash are checked
}

// openIdxFile opens the page index of the backup m and reads its header,
// which must agree with m.
func openIdxFile(ctx context.Context, bucket *blob.Bucket, key *DataKey, m *Manifest) (*idxFile, error) {
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
	f := &idxFile{key: key, backupID: m.BackupID, objKey: objKey, r: r, sum: sha256.New(), want: m.PageIndex.StoredSHA256}
	f.br = bufio.NewReaderSize(io.TeeReader(r, f.sum), 1<<16)
	hdr := make([]byte, pageIndexHdrSize)
	if err := f.readFull(hdr); err != nil {
		r.Close()
		return nil, err
	}
	switch string(hdr[:4]) {
	case pageIndexMagic:
	case sparsePageIndexMagic:
		f.sparse = true
	default:
		r.Close()
		return nil, &ObjectError{Op: "open page index", Key: objKey, Err: fmt.Errorf("%w: not a page index", ErrCorrupt)}
	}
	f.pageSize = int(binary.BigEndian.Uint32(hdr[4:]))
	f.count = binary.BigEndian.Uint64(hdr[8:])
	if f.pageSize != m.PageSize || f.count != uint64(m.PageCount) {
		r.Close()
		return nil, &ObjectError{Op: "open page index", Key: objKey, Err: fmt.Errorf("%w: page index describes %d pages of %d bytes, the manifest %d of %d", ErrCorrupt, f.count, f.pageSize, m.PageCount, m.PageSize)}
	}
	if f.sparse && m.Type != BackupIncremental && m.Type != BackupDifferential {
		r.Close()
		return nil, &ObjectError{Op: "open page index", Key: objKey, Err: fmt.Errorf("%w: backup %s has no parent, but its page index lists only changed pages", ErrCorrupt, m.BackupID)}
	}
	return f, nil
}

func (f *idxFile) corrupt(format string, args ...any) error {
	return &ObjectError{Op: "read page index", Key: f.objKey, Err: fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)}
}

// readFull reads len(b) bytes; an object that ends first is corrupt, any
// other error is the storage's.
func (f *idxFile) readFull(b []byte) error {
	if _, err := io.ReadFull(f.br, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return f.corrupt("truncated")
		}
		return &ObjectError{Op: "read page index", Key: f.objKey, Err: err}
	}
	return nil
}

// next steps over the next page: listed says whether the index gives its
// hash (always, in a full index).
func (f *idxFile) next() (listed bool, h PageHash, err error) {
	if f.pos == f.segPages {
		if err := f.readSegment(); err != nil {
			return false, h, err
		}
	}
	i := f.pos
	f.pos++
	f.read++
	listed = !f.sparse || f.bitmap[i>>3]&(1<<(i&7)) != 0
	if listed {
		copy(h[:], f.hashes)
		f.hashes = f.hashes[pageHashSize:]
	}
	if f.read == f.count {
		if err := f.finish(); err != nil {
			return false, h, err
		}
	}
	return listed, h, nil
}

// readSegment reads, authenticates and checks the next segment.
func (f *idxFile) readSegment() error {
	remaining := f.count - f.read
	last := remaining <= segmentPages
	pages := int(min(remaining, segmentPages))
	var n [4]byte
	if err := f.readFull(n[:]); err != nil {
		return err
	}
	size := int(binary.BigEndian.Uint32(n[:]))
	overhead := chunkNonceSize + gcmTagSize
	lo, hi := overhead+pages*pageHashSize, overhead+pages*pageHashSize
	if f.sparse {
		lo, hi = overhead+bitmapBytes(pages), overhead+bitmapBytes(pages)+pages*pageHashSize
	}
	if size < lo || size > hi {
		return f.corrupt("segment %d of %d bytes, expected %d to %d for %d pages", f.segment, size, lo, hi, pages)
	}
	if cap(f.buf) < size {
		f.buf = make([]byte, size)
	}
	sealed := f.buf[:size]
	if err := f.readFull(sealed); err != nil {
		return err
	}
	ct := sealed[chunkNonceSize:]
	plain, err := f.key.chunkAEAD.Open(ct[:0], sealed[:chunkNonceSize], ct, pageIndexAAD(f.sparse, f.backupID, f.segment, last))
	if err != nil {
		return f.corrupt("segment %d fails authentication", f.segment)
	}
	f.bitmap, f.hashes = nil, plain
	if f.sparse {
		bm := bitmapBytes(pages)
		f.bitmap, f.hashes = plain[:bm], plain[bm:]
		if pages%8 != 0 && f.bitmap[bm-1]>>(pages%8) != 0 {
			return f.corrupt("segment %d marks pages beyond its last", f.segment)
		}
		listed := 0
		for _, b := range f.bitmap {
			listed += bits.OnesCount8(b)
		}
		if len(f.hashes) != listed*pageHashSize {
			return f.corrupt("segment %d lists %d pages and holds %d bytes of hashes", f.segment, listed, len(f.hashes))
		}
	}
	f.segPages, f.pos = pages, 0
	f.segment++
	return nil
}

// finish checks, after the last segment, that nothing follows and that the
// object's hash matches the manifest.
func (f *idxFile) finish() error {
	switch _, err := f.br.ReadByte(); {
	case err == nil:
		return f.corrupt("data after the last segment")
	case !errors.Is(err, io.EOF):
		return &ObjectError{Op: "read page index", Key: f.objKey, Err: err}
	}
	if got := hex.EncodeToString(f.sum.Sum(nil)); got != f.want {
		return f.corrupt("object hashes to %s, the manifest of %s says %s", got, f.backupID, f.want)
	}
	f.done = true
	return nil
}

// drain reads and checks the rest of the index without returning hashes.
func (f *idxFile) drain() error {
	if f.done {
		return nil
	}
	if f.count == 0 {
		if err := f.readSegment(); err != nil {
			return err
		}
		return f.finish()
	}
	for {
		if f.pos == f.segPages {
			if err := f.readSegment(); err != nil {
				return err
			}
		}
		f.read += uint64(f.segPages - f.pos)
		f.pos = f.segPages
		if f.read == f.count {
			return f.finish()
		}
	}
}

func (f *idxFile) close() error { return f.r.Close() }

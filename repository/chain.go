package repository

import (
	"context"
	"errors"
	"fmt"
	"io"

	"gocloud.dev/blob"
)

// maxChainLength bounds how many backups a restore may have to apply. The
// check in Manifest makes parents strictly older, so chains cannot loop; the
// bound protects against absurdly long ones.
const maxChainLength = 10000

// Layer is one backup of a chain with its opened data key.
type Layer struct {
	Backup *Backup
	Key    *DataKey
	// Source names the source the manifest was read from (ChainFrom); it
	// is empty for Chain, which reads a single bucket.
	Source string
}

// Manifest is the layer's manifest.
func (l Layer) Manifest() *Manifest { return l.Backup.Manifest }

// Chain returns the backups needed to rebuild backupID, oldest (a full
// backup) first, each authenticated with its data key. A missing or
// damaged ancestor is reported by name.
func Chain(ctx context.Context, bucket *blob.Bucket, keeper SecretsKeeper, database, backupID string) ([]Layer, error) {
	var rev []Layer
	id := backupID
	for {
		if len(rev) == maxChainLength {
			return nil, fmt.Errorf("%w: the chain of %s is longer than %d backups", ErrCorrupt, backupID, maxChainLength)
		}
		b, err := ReadBackup(ctx, bucket, database, id)
		if err != nil {
			if id != backupID {
				return nil, fmt.Errorf("backup %s depends on %s, which cannot be read: %w", backupID, id, err)
			}
			return nil, err
		}
		if err := refuseLogical(b.Manifest); err != nil {
			return nil, err
		}
		key, err := b.Open(ctx, keeper)
		if err != nil {
			if id != backupID {
				return nil, fmt.Errorf("backup %s depends on %s: %w", backupID, id, err)
			}
			return nil, err
		}
		if len(rev) > 0 {
			if err := checkParent(rev[len(rev)-1].Manifest(), b.Manifest); err != nil {
				return nil, err
			}
		}
		rev = append(rev, Layer{Backup: b, Key: key})
		if b.Manifest.Type == BackupFull {
			break
		}
		id = b.Manifest.Parent
	}
	chain := make([]Layer, len(rev))
	for i, l := range rev {
		chain[len(rev)-1-i] = l
	}
	return chain, nil
}

// ChainIDs returns the ids of the backups that backupID depends on,
// including itself, oldest first, reading manifests only (no key needed).
// It stops at the first ancestor that cannot be read and reports it.
func ChainIDs(ctx context.Context, bucket *blob.Bucket, database, backupID string) ([]string, error) {
	var rev []string
	id := backupID
	for len(rev) < maxChainLength {
		rev = append(rev, id)
		b, err := ReadBackup(ctx, bucket, database, id)
		if err != nil {
			return reverse(rev), err
		}
		if b.Manifest.Type == BackupFull {
			return reverse(rev), nil
		}
		id = b.Manifest.Parent
	}
	return reverse(rev), fmt.Errorf("%w: the chain of %s is longer than %d backups", ErrCorrupt, backupID, maxChainLength)
}

// checkParent checks a backup of a chain against its parent: the same page
// size, and no growth that its own chunks do not hold — the pages beyond
// the parent's end are always stored, so a manifest cannot conjure up an
// image larger than the data behind it.
func checkParent(child, parent *Manifest) error {
	if parent.PageSize != child.PageSize {
		return fmt.Errorf("%w: %s has page size %d, its child %s %d", ErrCorrupt, parent.BackupID, parent.PageSize, child.BackupID, child.PageSize)
	}
	if grown := child.PageCount - parent.PageCount; grown > 0 {
		var stored int64
		for _, c := range child.Chunks {
			stored += int64(c.PageCount)
		}
		if stored < grown {
			return fmt.Errorf("%w: %s grows the image from its parent's %d pages to %d but stores %d pages; the %d pages beyond the parent's end must all be stored", ErrCorrupt, child.BackupID, parent.PageCount, child.PageCount, stored, grown)
		}
	}
	return nil
}

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// Parent is the backup a new incremental or differential backup is taken
// against, with its data key, and its chain for reading the hashes of its
// image (OpenChainPageIndex).
type Parent struct {
	Layer
	// Chain is the parent's chain, oldest first, ending with the parent.
	Chain []Layer
}

// FindParent chooses the parent of a new backup of type typ: the newest
// complete backup for an incremental, the newest full backup for a
// differential. It returns nil and the reason when there is none that can
// be trusted — never a parent whose chain is broken, that failed its last
// verification, or whose page index (merged along its chain) is missing
// or damaged — so that the caller takes a full backup instead and says why.
func FindParent(ctx context.Context, bucket *blob.Bucket, keeper SecretsKeeper, database string, typ BackupType) (*Parent, string, error) {
	ids, err := ListBackups(ctx, bucket, database)
	if err != nil {
		return nil, "", err
	}
	var candidate *Backup
	for i := len(ids) - 1; i >= 0 && candidate == nil; i-- {
		b, err := ReadBackup(ctx, bucket, database, ids[i])
		if err != nil {
			continue // listed but unreadable: verification reports it
		}
		if typ == BackupIncremental || b.Manifest.Type == BackupFull {
			candidate = b
		}
	}
	if candidate == nil {
		if typ == BackupDifferential {
			return nil, "no full backup of " + database + " exists yet", nil
		}
		return nil, "no earlier backup of " + database + " exists", nil
	}
	id := candidate.Manifest.BackupID
	chain, err := Chain(ctx, bucket, keeper, database, id)
	if err != nil {
		if isTransient(err) {
			return nil, "", err
		}
		return nil, fmt.Sprintf("the chain of the newest backup %s cannot be trusted: %v", id, err), nil
	}
	for _, l := range chain {
		rec, err := LatestVerifyRecord(ctx, bucket, database, l.Manifest().BackupID)
		if err != nil {
			return nil, "", err
		}
		if rec != nil && !rec.OK {
			return nil, fmt.Sprintf("backup %s in the chain of %s failed its last verification", l.Manifest().BackupID, id), nil
		}
	}
	if err := checkChainPageIndex(ctx, bucket, chain); err != nil {
		if isTransient(err) {
			return nil, "", err
		}
		return nil, fmt.Sprintf("the page index of %s cannot be used: %v", id, err), nil
	}
	return &Parent{Layer: chain[len(chain)-1], Chain: chain}, "", nil
}

// checkChainPageIndex reads the whole page index of the last backup of
// chain, merged along the chain: every segment of every index the merge
// needs is authenticated and every object's hash checked.
func checkChainPageIndex(ctx context.Context, bucket *blob.Bucket, chain []Layer) error {
	r, err := OpenChainPageIndex(ctx, bucket, chain)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		_, ok, err := r.Next()
		if err != nil || !ok {
			return err
		}
	}
}

// checkPageIndex reads the whole page index of one backup, of either
// format, authenticating every segment and the object's hash. A sparse
// index is checked on its own (its bitmaps and hashes), without its chain.
// It reports whether the index is sparse.
func checkPageIndex(ctx context.Context, bucket *blob.Bucket, l Layer) (sparse bool, err error) {
	f, err := openIdxFile(ctx, bucket, l.Key, l.Manifest())
	if err != nil {
		return false, err
	}
	defer f.close()
	return f.sparse, f.drain()
}

// isTransient reports errors that say nothing about the backup itself
// (storage unreachable, cancelled), which must not turn a backup into a
// full one silently.
func isTransient(err error) bool {
	return !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrWrongKey) && !errors.Is(err, ErrUnsupportedFormat) && !errors.Is(err, ErrBadInput)
}

// CheckObjects checks that every object a backup stores itself is present
// and has the hash its manifest records — chunks and the page index — and
// that the manifest authenticates. It reads but does not decrypt chunks, and
// returns the first problem CheckObjectsAll finds.
func CheckObjects(ctx context.Context, bucket *blob.Bucket, keeper SecretsKeeper, database, backupID string) error {
	problems, err := CheckObjectsAll(ctx, bucket, keeper, database, backupID)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return problems[0].Err
	}
	return nil
}

// Dependents returns, oldest first, every complete backup whose chain
// includes backupID (itself among them when it is listed): the backups a
// damaged backupID makes unrestorable.
func Dependents(ctx context.Context, bucket *blob.Bucket, database, backupID string) ([]string, error) {
	ids, err := ListBackups(ctx, bucket, database)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range ids {
		if CompareBackupIDs(id, backupID) < 0 {
			continue // parents are older than their children
		}
		chain, _ := ChainIDs(ctx, bucket, database, id)
		for _, c := range chain {
			if c == backupID {
				out = append(out, id)
				break
			}
		}
	}
	if len(out) == 0 {
		out = []string{backupID}
	}
	return out, nil
}

// PageIndexMismatch compares a restored image in f with the page index of
// the last backup of chain, merged along the chain (OpenChainPageIndex),
// and returns the first page that differs (0: none), so that the next
// incremental backup never trusts a page index that does not describe the
// image.
func PageIndexMismatch(ctx context.Context, bucket *blob.Bucket, chain []Layer, f io.ReaderAt) (uint32, error) {
	buckets := make([]*blob.Bucket, len(chain))
	for i := range buckets {
		buckets[i] = bucket
	}
	page, err := pageIndexMismatch(ctx, chain, buckets, f)
	var local *localError
	if errors.As(err, &local) {
		return 0, local.err
	}
	return page, err
}

// pageIndexMismatch is PageIndexMismatch reading the index of chain[i] from
// buckets[i], with errors reading f marked as *localError: no copy of a
// page index can cure them.
func pageIndexMismatch(ctx context.Context, chain []Layer, buckets []*blob.Bucket, f io.ReaderAt) (uint32, error) {
	r, err := openChainPageIndex(ctx, chain, buckets)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	page := make([]byte, r.PageSize)
	for pgno := uint32(1); ; pgno++ {
		h, ok, err := r.Next()
		if err != nil || !ok {
			return 0, err
		}
		if _, err := f.ReadAt(page, int64(pgno-1)*int64(len(page))); err != nil {
			return 0, &localError{err}
		}
		if HashPage(page) != h {
			return pgno, nil
		}
	}
}

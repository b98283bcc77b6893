package repository

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"golang.org/x/time/rate"
)

// Replication copies a complete backup, object by object, from one
// destination to another and checks every copy by reading it back. Objects
// keep their keys, so a copy is a backup in its own right: it lists,
// verifies and restores from the destination alone.
//
// It is idempotent: an object already at the destination with the right
// hash is left alone (it is read back and hashed, never written again), so
// a replication interrupted anywhere and run again copies only what is
// missing or damaged. The manifest is copied last: until then the copy is
// not listed at the destination.

const replicasDir = "replicas/"

// ReplicaRecord says that a destination holds a verified copy of a backup.
// It is stored next to the backup on the source and on the destination.
type ReplicaRecord struct {
	BackupID    string    `json:"backup_id"`
	Destination string    `json:"destination"`
	VerifiedAt  time.Time `json:"verified_at"`
	Objects     int       `json:"objects"`
	Bytes       int64     `json:"bytes"`
	// Copied objects were written by this run; AlreadyThere were found
	// intact from an earlier one.
	Copied       int   `json:"copied"`
	AlreadyThere int   `json:"already_there"`
	CopiedBytes  int64 `json:"copied_bytes"`
	// LockedUntil is when the destination's write-once lock on the copy
	// ends (zero: not locked).
	LockedUntil time.Time `json:"locked_until,omitzero"`
}

// ReplicaRecordKey is the key of the record of backupID's copy on dest.
func ReplicaRecordKey(database, backupID, dest string) string {
	return BackupPrefix(database, backupID) + replicasDir + dest + ".json"
}

// ReplicateOptions tunes Replicate.
type ReplicateOptions struct {
	// Parallel bounds the objects copied at once (default 4).
	Parallel int
	// Progress is called after each object settles, from worker goroutines.
	Progress func(done, total int, bytes int64)
	// LockedUntil is recorded in the replica record (the destination's lock).
	LockedUntil time.Time
	// Limiter, when set, bounds the bytes written to the destination per
	// second (offsite links are often the narrowest).
	Limiter *rate.Limiter
}

// replicaObject is one object to copy and the hash it must have, when the
// manifest records one.
type replicaObject struct {
	key  string
	hash string // hex SHA-256; "" when taken from the source's bytes
	size int64
}

// Replicate copies backup backupID of database from src to dst (named
// dstName) and verifies every object at dst. The source backup must
// authenticate with keeper, and every chunk and page index must match its
// manifest: damage is never propagated.
func Replicate(ctx context.Context, src, dst *blob.Bucket, dstName string, keeper SecretsKeeper, database, backupID string, opts ReplicateOptions) (ReplicaRecord, error) {
	rec := ReplicaRecord{BackupID: backupID, Destination: dstName}
	b, err := ReadBackup(ctx, src, database, backupID)
	if err != nil {
		return rec, err
	}
	if _, err := b.Open(ctx, keeper); err != nil {
		return rec, err
	}
	m := b.Manifest
	if m.Parent != "" {
		// The copy must restore from the destination alone, so its parent
		// must be there, complete (its manifest is copied last), first.
		parent := ManifestKey(database, m.Parent)
		ok, err := dst.Exists(ctx, parent)
		if err != nil {
			return rec, &ObjectError{Op: "look for the parent's copy", Key: parent, Err: err}
		}
		if !ok {
			return rec, &ObjectError{Op: "replicate", Key: parent, Err: fmt.Errorf("%w: backup %s depends on %s, of which %s holds no complete copy: replicate %s first", ErrNotFound, backupID, m.Parent, dstName, m.Parent)}
		}
	}
	known := map[string]string{}
	for _, c := range m.Chunks {
		known[ChunkKey(database, backupID, c.Index)] = c.StoredSHA256
	}
	if m.PageIndex != nil {
		known[PageIndexKey(database, backupID)] = m.PageIndex.StoredSHA256
	}
	keys, err := listTree(ctx, src, BackupPrefix(database, backupID))
	if err != nil {
		return rec, err
	}
	var first, exportManifests []replicaObject
	var manifest *replicaObject
	prefix := BackupPrefix(database, backupID)
	for _, obj := range keys {
		rel := strings.TrimPrefix(obj.Key, prefix)
		o := replicaObject{key: obj.Key, hash: known[obj.Key], size: obj.Size}
		switch {
		case strings.HasPrefix(rel, replicasDir):
			continue // which copies exist is each destination's own fact
		case rel == manifestName:
			manifest = &o
		case strings.HasSuffix(rel, "/"+manifestName):
			exportManifests = append(exportManifests, o)
		default:
			first = append(first, o)
		}
		delete(known, obj.Key)
	}
	if manifest == nil {
		return rec, fmt.Errorf("%w: backup %s has no manifest at the source", ErrNotFound, backupID)
	}
	if len(known) > 0 {
		missing := make([]string, 0, len(known))
		for k := range known {
			missing = append(missing, k)
		}
		sort.Strings(missing)
		return rec, &ObjectError{Op: "replicate", Key: missing[0], Err: fmt.Errorf("%w: %d object(s) of backup %s are missing at the source", ErrNotFound, len(missing), backupID)}
	}
	total := len(first) + len(exportManifests) + 1
	var (
		mu   sync.Mutex
		done int
		dirs = map[string]bool{}
	)
	settle := func(r copyResult) {
		mu.Lock()
		done++
		rec.Objects++
		rec.Bytes += r.size
		if r.copied {
			rec.Copied++
			rec.CopiedBytes += r.size
		} else {
			rec.AlreadyThere++
		}
		if r.dir != "" {
			dirs[r.dir] = true
		}
		d, n := done, rec.Bytes
		mu.Unlock()
		if opts.Progress != nil {
			opts.Progress(d, total, n)
		}
	}
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	// Data first, in parallel; then the export manifests; then the backup's
	// manifest, after every directory that received data is durable.
	if err := copyAll(ctx, src, dst, first, parallel, opts.Limiter, settle); err != nil {
		return rec, err
	}
	if err := copyAll(ctx, src, dst, exportManifests, parallel, opts.Limiter, settle); err != nil {
		return rec, err
	}
	for dir := range dirs {
		if err := SyncDir(dir); err != nil {
			return rec, fmt.Errorf("fsync %s: %w", dir, err)
		}
	}
	r, err := copyVerified(ctx, src, dst, *manifest, true, opts.Limiter)
	if err != nil {
		return rec, err
	}
	settle(r)
	rec.VerifiedAt = time.Now().UTC()
	rec.LockedUntil = opts.LockedUntil
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return rec, err
	}
	// The destination describes its own copy; the source learns where its
	// backup lives. Both are small facts, rewritten by every run.
	if _, err := putObject(ctx, dst, ReplicaRecordKey(database, backupID, dstName), data, true); err != nil {
		return rec, err
	}
	if _, err := putObject(ctx, src, ReplicaRecordKey(database, backupID, dstName), data, true); err != nil {
		return rec, err
	}
	return rec, nil
}

// ReplicaRecords returns the records of the verified copies of a backup
// that bucket knows of, by destination name.
func ReplicaRecords(ctx context.Context, bucket *blob.Bucket, database, backupID string) ([]ReplicaRecord, error) {
	objs, err := listTree(ctx, bucket, BackupPrefix(database, backupID)+replicasDir)
	if err != nil {
		return nil, err
	}
	var out []ReplicaRecord
	for _, o := range objs {
		if !strings.HasSuffix(o.Key, ".json") {
			continue
		}
		data, err := getObject(ctx, bucket, o.Key, 1<<20, nil)
		if err != nil {
			return nil, err
		}
		var r ReplicaRecord
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("%w: replica record %s: %v", ErrCorrupt, o.Key, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Destination < out[j].Destination })
	return out, nil
}

type copyResult struct {
	size   int64
	copied bool
	dir    string
}

func copyAll(ctx context.Context, src, dst *blob.Bucket, objs []replicaObject, parallel int, limiter *rate.Limiter, settle func(copyResult)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan replicaObject)
	var wg sync.WaitGroup
	for range min(parallel, max(1, len(objs))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range jobs {
				if ctx.Err() != nil {
					continue
				}
				r, err := copyVerified(ctx, src, dst, o, false, limiter)
				if err != nil {
					cancel(err)
					continue
				}
				settle(r)
			}
		}()
	}
	for _, o := range objs {
		select {
		case jobs <- o:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	return context.Cause(ctx)
}

// copyVerified makes sure dst holds o with the right hash: left alone when
// it already does, copied (streamed, hashed on the way) and read back
// otherwise.
func copyVerified(ctx context.Context, src, dst *blob.Bucket, o replicaObject, syncDir bool, limiter *rate.Limiter) (copyResult, error) {
	want := o.hash
	if want == "" {
		sum, _, err := hashObject(ctx, src, o.key)
		if err != nil {
			return copyResult{}, err
		}
		want = sum
	}
	if got, n, err := hashObject(ctx, dst, o.key); err == nil && got == want {
		return copyResult{size: n}, nil
	} else if err != nil && !IsNotFound(err) {
		return copyResult{}, err
	}
	if err := waitBandwidth(ctx, limiter, int(o.size)); err != nil {
		return copyResult{}, err
	}
	r, err := openObject(ctx, src, o.key)
	if err != nil {
		return copyResult{}, err
	}
	defer r.Close()
	// The source is checked while it streams: a copy whose source bytes do
	// not match the manifest is aborted before it becomes visible.
	dir, n, err := putStream(ctx, dst, o.key, newCheckedReader(r, o.key, want, -1), syncDir)
	if err != nil {
		return copyResult{}, unwrapCorruptRead(err)
	}
	got, _, err := hashObject(ctx, dst, o.key)
	if err != nil {
		return copyResult{}, fmt.Errorf("read back the copy of %s: %w", o.key, err)
	}
	if got != want {
		return copyResult{}, &ObjectError{Op: "verify copy of", Key: o.key, Err: fmt.Errorf("the destination holds a copy with hash %s, not %s", got, want)}
	}
	return copyResult{size: n, copied: true, dir: dir}, nil
}

// checkedReader fails the read that reaches EOF when the bytes read do not
// have the SHA-256 want (and, when size ≥ 0, that size), so that the write
// they feed is aborted and no damaged copy becomes visible.
type checkedReader struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	key  string
	want string
	size int64
}

func newCheckedReader(r io.Reader, key, want string, size int64) *checkedReader {
	if size >= 0 {
		r = io.LimitReader(r, size+1) // a longer object fails without being read whole
	}
	return &checkedReader{r: r, h: sha256.New(), key: key, want: want, size: size}
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if err == io.EOF {
		if got := hex.EncodeToString(c.h.Sum(nil)); got != c.want || (c.size >= 0 && c.n != c.size) {
			return n, &ObjectError{Op: "copy", Key: c.key, Err: fmt.Errorf("%w: the source object (%d bytes, hash %s) differs from the manifest's record (bit rot or tampering at the source; it is not copied)", ErrCorrupt, c.n, got)}
		}
	}
	return n, err
}

// unwrapCorruptRead returns the checkedReader's error when it aborted a
// write, so that callers see the damage, not the write that failed on it.
func unwrapCorruptRead(err error) error {
	var oe *ObjectError
	if errors.As(err, &oe) && errors.Is(oe.Err, ErrCorrupt) {
		return oe.Err
	}
	return err
}

// hashObject streams an object through SHA-256.
func hashObject(ctx context.Context, bucket *blob.Bucket, key string) (string, int64, error) {
	r, err := openObject(ctx, bucket, key)
	if err != nil {
		return "", 0, err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, make([]byte, 256<<10))
	if err != nil {
		return "", n, &ObjectError{Op: "read", Key: key, Err: err}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// BackupObjects lists every object stored under a backup's prefix (complete
// or not), for deletion.
func BackupObjects(ctx context.Context, bucket *blob.Bucket, database, backupID string) ([]*blob.ListObject, error) {
	return listTree(ctx, bucket, BackupPrefix(database, backupID))
}

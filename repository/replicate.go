package repository

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
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
	r, err := src.NewReader(ctx, o.key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return copyResult{}, &ObjectError{Op: "replicate", Key: o.key, Err: ErrNotFound}
		}
		return copyResult{}, &ObjectError{Op: "open source of", Key: o.key, Err: err}
	}
	defer r.Close()
	h := sha256.New()
	// The source is checked while it streams: a copy whose source bytes do
	// not match the manifest is aborted before it becomes visible.
	checked := &hashCheckingReader{r: io.TeeReader(r, h), h: h, want: want, key: o.key}
	dir, n, err := putStream(ctx, dst, o.key, checked, syncDir)
	if err != nil {
		var oe *ObjectError
		if errors.As(err, &oe) && errors.Is(oe.Err, ErrCorrupt) {
			return copyResult{}, oe.Err
		}
		return copyResult{}, err
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

// hashCheckingReader fails the read that reaches EOF when the bytes read do
// not hash to want, so the write they feed is aborted.
type hashCheckingReader struct {
	r    io.Reader
	h    interface{ Sum([]byte) []byte }
	want string
	key  string
}

func (c *hashCheckingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		if got := hex.EncodeToString(c.h.Sum(nil)); got != c.want {
			return n, &ObjectError{Op: "replicate", Key: c.key, Err: fmt.Errorf("%w: the source object's hash %s differs from the manifest's %s (bit rot or tampering at the source; it is not copied)", ErrCorrupt, got, c.want)}
		}
	}
	return n, err
}

// hashObject streams an object through SHA-256.
func hashObject(ctx context.Context, bucket *blob.Bucket, key string) (string, int64, error) {
	r, err := bucket.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return "", 0, &ObjectError{Op: "read", Key: key, Err: ErrNotFound}
		}
		return "", 0, &ObjectError{Op: "open", Key: key, Err: err}
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, make([]byte, 256<<10))
	if err != nil {
		return "", n, &ObjectError{Op: "read", Key: key, Err: err}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// listTree lists every object under prefix, descending one directory level
// at a time: flat listings of file:// buckets skip keys across pages, and a
// delimiter listing does not.
func listTree(ctx context.Context, bucket *blob.Bucket, prefix string) ([]*blob.ListObject, error) {
	var out []*blob.ListObject
	seen := map[string]bool{}
	dirs := []string{prefix}
	for len(dirs) > 0 {
		dir := dirs[len(dirs)-1]
		dirs = dirs[:len(dirs)-1]
		it := bucket.List(&blob.ListOptions{Prefix: dir, Delimiter: "/"})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", dir, err)
			}
			if seen[obj.Key] {
				continue // some S3 servers repeat common prefixes across pages
			}
			seen[obj.Key] = true
			if obj.IsDir {
				dirs = append(dirs, obj.Key)
				continue
			}
			if isTempObject(obj.Key) {
				continue
			}
			out = append(out, obj)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// isTempObject reports in-flight files of fileblob's no_tmp_dir mode
// (<key>.<random>.tmp), which are listed like objects but are not.
func isTempObject(key string) bool {
	return strings.HasSuffix(key, ".tmp")
}

// BackupObjects lists every object stored under a backup's prefix (complete
// or not), for deletion.
func BackupObjects(ctx context.Context, bucket *blob.Bucket, database, backupID string) ([]*blob.ListObject, error) {
	return listTree(ctx, bucket, BackupPrefix(database, backupID))
}

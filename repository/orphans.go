package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"
)

// Orphans. A crash leaves objects that nothing lists and nothing will ever
// read: the temp file of a write cut short (<key>.<random>.tmp, file://
// destinations in no_tmp_dir mode), the objects of a backup or a copy that
// never got its manifest, what a removal cut short left, and chunks past a
// manifest's last one (an earlier attempt of the backup stored more). A
// resumed operation re-uses or replaces most of them; the rest would take
// space for ever. Cleanup removes them, but only when they are older than a
// grace period: a backup or copy in progress has no manifest yet either, and
// it writes an object every few seconds, so a group whose newest object is
// older than the grace period is not being written.
//
// What the grace period cannot see: a backup or copy paused for longer than
// it (a host down for days with its backup waiting in the host's queue) that
// resumes exactly while the sweep deletes its objects. The resumed backup
// re-uploads what is missing when it starts, and verification after the
// backup names any object deleted after that. Likewise a copy abandoned
// longer ago than the grace period that a new replication of the same
// backup is completing while cleanup of the same database sweeps it (the
// pipeline runs the two one after the other, never together).

// Orphan is an object that no complete backup references.
type Orphan struct {
	Key     string    `json:"key"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	// Why says what left it.
	Why string `json:"why"`
}

// FindOrphans returns the objects under database's prefix in bucket that
// no complete backup references and that were last written before cutoff:
// temp files of unfinished writes; every object of a backup prefix without
// a manifest, when the newest of them and the backup's start are before
// cutoff; chunks of a complete backup past its manifest's chunks. A backup
// whose manifest cannot be read is left alone (verify reports it), and so
// is any object whose age the destination does not report.
func FindOrphans(ctx context.Context, bucket *blob.Bucket, database string, cutoff time.Time) ([]Orphan, error) {
	if err := ValidateDatabaseName(database); err != nil {
		return nil, err
	}
	objs, err := listEverything(ctx, bucket, databasesPrefix+database+"/")
	if err != nil {
		return nil, err
	}
	old := func(o *blob.ListObject) bool { return !o.ModTime.IsZero() && o.ModTime.Before(cutoff) }
	backups := BackupsPrefix(database)
	groups := map[string][]*blob.ListObject{}
	var ids []string
	var out []Orphan
	for _, o := range objs {
		rest, ok := strings.CutPrefix(o.Key, backups)
		id, _, nested := strings.Cut(rest, "/")
		if ok && nested && ValidateBackupID(id) == nil {
			if groups[id] == nil {
				ids = append(ids, id)
			}
			groups[id] = append(groups[id], o)
			continue
		}
		if isTempObject(o.Key) && old(o) {
			out = append(out, orphan(o, "an unfinished write (a temp file a crashed writer left)"))
		}
	}
	sort.Slice(ids, func(i, j int) bool { return CompareBackupIDs(ids[i], ids[j]) < 0 })
	for _, id := range ids {
		group := groups[id]
		prefix := BackupPrefix(database, id)
		hasManifest := false
		for _, o := range group {
			hasManifest = hasManifest || o.Key == prefix+manifestName
		}
		if !hasManifest {
			started, _ := BackupTime(id)
			all := started.Before(cutoff)
			for _, o := range group {
				all = all && old(o)
			}
			if !all {
				continue // a backup or copy may be in progress
			}
			why := fmt.Sprintf("backup %s has no manifest here (an abandoned backup or copy, or a removal cut short)", id)
			if _, err := bucket.Attributes(ctx, TombstoneKey(database, id)); err == nil {
				why = fmt.Sprintf("left by the removal of backup %s (it has a tombstone)", id)
			}
			for _, o := range group {
				out = append(out, orphan(o, why))
			}
			continue
		}
		chunks := -1 // unknown: a manifest that cannot be read is left alone
		if b, err := ReadBackup(ctx, bucket, database, id); err == nil {
			chunks = len(b.Manifest.Chunks)
		} else if !IsNotFound(err) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedFormat) {
			return nil, err
		}
		for _, o := range group {
			if !old(o) {
				continue
			}
			if isTempObject(o.Key) {
				out = append(out, orphan(o, "an unfinished write (a temp file a crashed writer left)"))
				continue
			}
			if i, ok := chunkIndexFromKey(prefix, o.Key); ok && chunks >= 0 && i >= chunks {
				out = append(out, orphan(o, fmt.Sprintf("chunk %d of backup %s, whose manifest has %d chunks (an earlier attempt stored more)", i, id, chunks)))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func orphan(o *blob.ListObject, why string) Orphan {
	return Orphan{Key: o.Key, Size: o.Size, ModTime: o.ModTime, Why: why}
}

// isTempObject reports whether key is a file:// destination's temp file of
// an unfinished write: <key>.<hex>.tmp. No key Bulwark writes ends in .tmp.
func isTempObject(key string) bool { return strings.HasSuffix(key, ".tmp") }

// listEverything lists every object under prefix, temp files included,
// one directory level at a time (see listDir for why).
func listEverything(ctx context.Context, bucket *blob.Bucket, prefix string) ([]*blob.ListObject, error) {
	var out []*blob.ListObject
	dirs := []string{prefix}
	for len(dirs) > 0 {
		dir := dirs[len(dirs)-1]
		dirs = dirs[:len(dirs)-1]
		seen := map[string]bool{}
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
				continue
			}
			seen[obj.Key] = true
			if obj.IsDir {
				dirs = append(dirs, obj.Key)
			} else {
				out = append(out, obj)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

package repository

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob/fileblob"
)

// What crashes leave in a file:// destination, each of its kinds: the
// orphans are found once they are older than the cutoff, never an object a
// complete backup references, never a backup that may still be written.
func TestFindOrphans(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	bucket, err := fileblob.OpenBucket(dir, &fileblob.Options{CreateDir: true, NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	keeper := newTestKeeper(t)
	img := newTestImage(40, 512, "v1")
	write := func(id string, complete bool) *DataKey {
		t.Helper()
		key, env := newTestDataKey(t, keeper)
		if err := WriteKeyEnvelope(ctx, bucket, "finance", id, env); err != nil {
			t.Fatal(err)
		}
		refs, _ := uploadImage(t, ChunkWriterOptions{Bucket: bucket, Database: "finance", BackupID: id, Key: key}, img, 16)
		if complete {
			if _, err := WriteManifest(ctx, bucket, key, fullManifest("finance", id, img, env, refs)); err != nil {
				t.Fatal(err)
			}
		}
		return key
	}
	raw := func(key string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const (
		complete   = "20260101T000000.000Z-0000000a"
		abandoned  = "20260102T000000.000Z-0000000b"
		forgotten  = "20260103T000000.000Z-0000000c"
		inProgress = "20260104T000000.000Z-0000000d"
		recentCopy = "20260105T000000.000Z-0000000e"
	)
	write(complete, true) // 3 chunks
	extraChunk := ChunkKey("finance", complete, 3)
	raw(extraChunk) // an earlier attempt stored a fourth chunk
	tmpInComplete := ChunkKey("finance", complete, 1) + ".18a2b3c4d5e6f708.tmp"
	raw(tmpInComplete)
	write(abandoned, false)
	write(forgotten, true)
	if err := WriteTombstone(ctx, bucket, keeper, "finance", forgotten, "retention", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := bucket.Delete(ctx, ManifestKey("finance", forgotten)); err != nil {
		t.Fatal(err)
	}
	tmpTombstone := TombstoneKey("finance", complete) + ".18a2b3c4d5e6f709.tmp"
	raw(tmpTombstone)
	write(inProgress, false)
	write(recentCopy, false)

	// Everything is two days old, except what is being written now: the
	// backup in progress (its newest chunk) and a fresh temp file.
	old := time.Now().Add(-48 * time.Hour)
	fresh := map[string]bool{ChunkKey("finance", inProgress, 2): true}
	freshTmp := ChunkKey("finance", recentCopy, 0) + ".18a2b3c4d5e6f70a.tmp"
	raw(freshTmp)
	fresh[freshTmp] = true
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			key := filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator)))
			if !fresh[key] {
				os.Chtimes(p, old, old)
			}
		}
		return nil
	})
	got, err := FindOrphans(ctx, bucket, "finance", time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]string{}
	for _, o := range got {
		byKey[o.Key] = o.Why
	}
	want := map[string]string{
		extraChunk:    "manifest has 3 chunks",
		tmpInComplete: "unfinished write",
		tmpTombstone:  "unfinished write",
	}
	for _, id := range []string{abandoned, forgotten} {
		objs, err := BackupObjects(ctx, bucket, "finance", id)
		if err != nil || len(objs) < 4 {
			t.Fatalf("objects of %s: %d %v", id, len(objs), err)
		}
		for _, o := range objs {
			want[o.Key] = map[string]string{abandoned: "has no manifest", forgotten: "has a tombstone"}[id]
		}
	}
	// recentCopy's chunks are old but its temp file is being written: the
	// whole group is left alone, as is the backup in progress.
	for k, why := range want {
		if !strings.Contains(byKey[k], why) {
			t.Errorf("%s: got %q, want an orphan because %q", k, byKey[k], why)
		}
	}
	for k := range byKey {
		if _, ok := want[k]; !ok {
			t.Errorf("%s is not an orphan: %s", k, byKey[k])
		}
	}
	// Once everything is old enough, only the referenced objects remain.
	all, err := FindOrphans(ctx, bucket, "finance", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range all {
		if strings.HasPrefix(o.Key, BackupPrefix("finance", complete)) && o.Key != extraChunk && o.Key != tmpInComplete {
			t.Errorf("%s of a complete backup is called an orphan: %s", o.Key, o.Why)
		}
	}
	wantAll := len(want) + 1 // freshTmp
	for _, id := range []string{inProgress, recentCopy} {
		objs, _ := BackupObjects(ctx, bucket, "finance", id)
		wantAll += len(objs)
	}
	if len(all) != wantAll {
		t.Errorf("%d orphans once everything is old, want %d", len(all), wantAll)
	}
	if _, err := FindOrphans(ctx, bucket, "Finance", time.Now()); err == nil {
		t.Fatal("an invalid database name was accepted")
	}
}

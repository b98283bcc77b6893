package repository

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
)

// replicaFixture is a backup of a 300-page image on a file:// source.
func replicaFixture(t *testing.T) (src *blob.Bucket, keeper SecretsKeeper, img *testImage, m *Manifest) {
	t.Helper()
	src = openFileBucket(t, &fileblob.Options{CreateDir: true, NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	keeper = newTestKeeper(t)
	img = newTestImage(300, 4096, "v1")
	m = storeBackup(t, src, keeper, "ledger", backupSpec{id: testBackupID, typ: BackupFull, img: img})
	return src, keeper, img, m
}

func TestReplicate(t *testing.T) {
	ctx := context.Background()
	for _, kind := range bucketKinds {
		t.Run("to "+kind.name, func(t *testing.T) {
			src, keeper, img, m := replicaFixture(t)
			dst := kind.open(t)
			rec, err := Replicate(ctx, src, dst, "nas", keeper, "ledger", testBackupID, ReplicateOptions{Parallel: 3})
			if err != nil {
				t.Fatal(err)
			}
			// key envelope + 5 chunks + page index + manifest
			if want := 1 + len(m.Chunks) + 2; rec.Objects != want || rec.Copied != want || rec.AlreadyThere != 0 {
				t.Fatalf("record %+v, want %d objects all copied", rec, want)
			}
			// The copy is a backup in its own right: it lists, checks and
			// restores from the destination alone.
			if ids, err := ListBackups(ctx, dst, "ledger"); err != nil || len(ids) != 1 || ids[0] != testBackupID {
				t.Fatalf("destination lists %v, %v", ids, err)
			}
			if err := CheckObjects(ctx, dst, keeper, "ledger", testBackupID); err != nil {
				t.Fatal(err)
			}
			b, err := ReadBackup(ctx, dst, "ledger", testBackupID)
			if err != nil {
				t.Fatal(err)
			}
			key, err := b.Open(ctx, keeper)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "restored.db")
			if got := restoreInto(t, dst, key, b.Manifest, path, RestoreOptions{}); got != img.digest() {
				t.Fatalf("restored from the copy: %s, want %s", got, img.digest())
			}
			assertFileHoldsImage(t, path, img)
			for _, bucket := range []*blob.Bucket{src, dst} {
				recs, err := ReplicaRecords(ctx, bucket, "ledger", testBackupID)
				if err != nil || len(recs) != 1 || recs[0].Destination != "nas" || recs[0].VerifiedAt.IsZero() {
					t.Fatalf("replica records %+v, %v", recs, err)
				}
			}

			// Run again: everything is there and intact, nothing is written.
			again, err := Replicate(ctx, src, dst, "nas", keeper, "ledger", testBackupID, ReplicateOptions{})
			if err != nil || again.Copied != 0 || again.AlreadyThere != rec.Objects {
				t.Fatalf("second run %+v, %v: want nothing copied", again, err)
			}

			// A copy damaged at the destination is found and replaced; only it.
			chunk := ChunkKey("ledger", testBackupID, 2)
			data, _ := dst.ReadAll(ctx, chunk)
			data[len(data)/2] ^= 0x40
			if err := dst.WriteAll(ctx, chunk, data, nil); err != nil {
				t.Fatal(err)
			}
			healed, err := Replicate(ctx, src, dst, "nas", keeper, "ledger", testBackupID, ReplicateOptions{})
			if err != nil || healed.Copied != 1 || healed.AlreadyThere != rec.Objects-1 {
				t.Fatalf("after damaging one copy: %+v, %v; want exactly one object copied", healed, err)
			}
			if err := CheckObjects(ctx, dst, keeper, "ledger", testBackupID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReplicateInterruptedCopiesOnlyWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	src, keeper, _, m := replicaFixture(t)
	dst := memblob.OpenBucket(nil)
	defer dst.Close()
	// Stop the first run after three objects have settled.
	runCtx, cancel := context.WithCancel(ctx)
	_, err := Replicate(runCtx, src, dst, "cloud", keeper, "ledger", testBackupID, ReplicateOptions{Parallel: 1, Progress: func(done, total int, _ int64) {
		if done == 3 {
			cancel()
		}
	}})
	if err == nil {
		t.Fatal("interrupted replication reported success")
	}
	if ids, _ := ListBackups(ctx, dst, "ledger"); len(ids) != 0 {
		t.Fatalf("an unfinished copy is listed: %v", ids)
	}
	rec, err := Replicate(ctx, src, dst, "cloud", keeper, "ledger", testBackupID, ReplicateOptions{Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	total := 1 + len(m.Chunks) + 2
	if rec.Objects != total || rec.AlreadyThere != 3 || rec.Copied != total-3 {
		t.Fatalf("resumed run %+v: want 3 objects found intact and %d copied", rec, total-3)
	}
}

func TestReplicateNeverCopiesDamage(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, src *blob.Bucket)
		want   error
	}{
		{"a chunk with a flipped bit", func(t *testing.T, src *blob.Bucket) {
			key := ChunkKey("ledger", testBackupID, 1)
			data, _ := src.ReadAll(ctx, key)
			data[100] ^= 1
			if err := src.WriteAll(ctx, key, data, nil); err != nil {
				t.Fatal(err)
			}
		}, ErrCorrupt},
		{"a missing page index", func(t *testing.T, src *blob.Bucket) {
			if err := src.Delete(ctx, PageIndexKey("ledger", testBackupID)); err != nil {
				t.Fatal(err)
			}
		}, ErrNotFound},
		{"an altered manifest", func(t *testing.T, src *blob.Bucket) {
			key := ManifestKey("ledger", testBackupID)
			data, _ := src.ReadAll(ctx, key)
			i := bytes.Index(data, []byte(`"mac": "`)) + len(`"mac": "`)
			data[i] ^= 0x01 // a hex digit becomes another one
			if err := src.WriteAll(ctx, key, data, nil); err != nil {
				t.Fatal(err)
			}
		}, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, keeper, _, _ := replicaFixture(t)
			tc.damage(t, src)
			dst := memblob.OpenBucket(nil)
			defer dst.Close()
			_, err := Replicate(ctx, src, dst, "nas", keeper, "ledger", testBackupID, ReplicateOptions{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if ok, _ := dst.Exists(ctx, ManifestKey("ledger", testBackupID)); ok {
				t.Fatal("the manifest of a damaged backup was copied")
			}
			if ok, _ := dst.Exists(ctx, ChunkKey("ledger", testBackupID, 1)); ok && tc.want == ErrCorrupt && tc.name == "a chunk with a flipped bit" {
				t.Fatal("a damaged chunk was copied")
			}
		})
	}
}

// Listing goes one directory level at a time: on a file:// bucket, where
// the driver's flat listing reorders "t/b-x" after "t/b/…" and loses keys
// across pages, every stored object is listed once, in order, and an
// in-flight temp file of no_tmp_dir mode is not.
func TestListTreeIsCompleteOnFileBuckets(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bucket, err := fileblob.OpenBucket(dir, &fileblob.Options{NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	want := []string{"t/a", "t/b-x"}
	for i := range 1100 {
		want = append(want, fmt.Sprintf("t/b/%04d", i))
	}
	want = append(want, "t/c/d/e")
	for _, k := range want {
		if err := bucket.WriteAll(ctx, k, []byte(k), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "t", "b", "0001.5f3a.tmp"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	sort.Strings(want)
	objs, err := listTree(ctx, bucket, "t/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.Key)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d keys, want %d; first difference at %d", len(got), len(want), firstDifference(got, want))
	}
}

func firstDifference(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

package repository

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
)

// clone returns a copy of img that can be changed independently.
func (img *testImage) clone() *testImage {
	return &testImage{pageSize: img.pageSize, data: bytes.Clone(img.data)}
}

// resize cuts img to pageCount pages, or grows it with new pages of version.
func (img *testImage) resize(pageCount int, version string) {
	if pageCount <= img.pageCount() {
		img.data = img.data[:pageCount*img.pageSize]
		return
	}
	for n := img.pageCount() + 1; n <= pageCount; n++ {
		img.data = append(img.data, pageContents(n, img.pageSize, version)...)
	}
}

// changedPages lists the pages of img that differ from parent's or that
// parent does not have: what an incremental backup of img stores.
func changedPages(parent, img *testImage) []int {
	var pages []int
	for n := 1; n <= img.pageCount(); n++ {
		if n > parent.pageCount() || !bytes.Equal(parent.page(n), img.page(n)) {
			pages = append(pages, n)
		}
	}
	return pages
}

// backupSpec describes a backup for storeBackup.
type backupSpec struct {
	id       string
	typ      BackupType
	parent   *testImage // the image the parent backup holds; nil for a full backup
	parentID string
	img      *testImage
	// fullIndex writes an incremental's or differential's page index in the
	// full format (every page's hash), as backups before sparse indexes did.
	fullIndex bool
}

// storeBackup writes a complete backup the way the backup activity does:
// key envelope, chunks (every page, or the pages that changed since the
// parent), page index (full for a full backup, sparse — the changed pages'
// hashes — for the others), manifest last. It returns the manifest.
func storeBackup(t *testing.T, bucket *blob.Bucket, keeper SecretsKeeper, database string, b backupSpec) *Manifest {
	t.Helper()
	ctx := context.Background()
	key, env := newTestDataKey(t, keeper)
	if err := WriteKeyEnvelope(ctx, bucket, database, b.id, env); err != nil {
		t.Fatal(err)
	}
	var pages []int
	if b.parent == nil {
		pages = changedPages(&testImage{pageSize: b.img.pageSize}, b.img)
	} else {
		pages = changedPages(b.parent, b.img)
	}
	refs, _ := uploadPages(t, ChunkWriterOptions{Bucket: bucket, Database: database, BackupID: b.id, Key: key}, b.img, pages, 64)

	newIndex := NewSparsePageIndexWriter
	if b.parent == nil || b.fullIndex {
		newIndex = NewPageIndexWriter
	}
	pix, err := newIndex(ctx, bucket, key, database, b.id, b.img.pageSize, uint64(b.img.pageCount()))
	if err != nil {
		t.Fatal(err)
	}
	changed := map[int]bool{}
	for _, n := range pages {
		changed[n] = true
	}
	for n := 1; n <= b.img.pageCount(); n++ {
		if b.parent != nil && !b.fullIndex && !changed[n] {
			err = pix.AddUnchanged()
		} else {
			err = pix.Add(HashPage(b.img.page(n)))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	pixBytes, pixSum, err := pix.Close()
	if err != nil {
		t.Fatal(err)
	}

	m := fullManifest(database, b.id, b.img, env, refs)
	m.Type, m.Parent = b.typ, b.parentID
	m.PageIndex = &ObjectRef{StoredBytes: pixBytes, StoredSHA256: pixSum}
	if m.History, err = HistoryLinkFor(ctx, bucket, database); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteManifest(ctx, bucket, key, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// restoreChain restores the chain ending in backupID into a new file and
// returns its path and the hash RestoreImage reported.
func restoreChain(t *testing.T, bucket *blob.Bucket, keeper SecretsKeeper, database, backupID string, opts RestoreOptions) (string, string) {
	t.Helper()
	chain, err := Chain(context.Background(), bucket, keeper, database, backupID)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "restored.db")
	return path, restoreInto(t, bucket, chain[len(chain)-1].Key, nil, path, opts, chain...)
}

// The ids of the backups in TestChains, oldest first.
const (
	fullID  = "20260101T000000Z-00000001"
	inc1ID  = "20260102T000000Z-00000002"
	inc2ID  = "20260103T000000Z-00000003"
	diffID  = "20260104T000000Z-00000004"
	full2ID = "20260105T000000Z-00000005"
)

func TestChains(t *testing.T) {
	for _, kind := range bucketKinds {
		t.Run("on "+kind.name, func(t *testing.T) { testChains(t, kind.open) })
	}
}

func testChains(t *testing.T, openBucket func(*testing.T) *blob.Bucket) {
	ctx := context.Background()
	bucket := openBucket(t)
	keeper := newTestKeeper(t)
	const database = "finance"

	// full: 300 pages. inc1: four pages changed (two in one chunk of the
	// full backup) and ten added. inc2: one page changed and the database
	// shrunk to 250 pages. diff: against full, two pages changed.
	v1 := newTestImage(300, 4096, "v1")
	v2 := v1.clone()
	for _, n := range []int{5, 64, 65, 200} {
		v2.setPage(n, "v2")
	}
	v2.resize(310, "v2")
	v3 := v2.clone()
	v3.setPage(7, "v3")
	v3.resize(250, "v3")
	vd := v1.clone()
	vd.setPage(1, "vd")
	vd.setPage(300, "vd")

	storeBackup(t, bucket, keeper, database, backupSpec{id: fullID, typ: BackupFull, img: v1})
	inc1 := storeBackup(t, bucket, keeper, database, backupSpec{id: inc1ID, typ: BackupIncremental, parent: v1, parentID: fullID, img: v2})
	storeBackup(t, bucket, keeper, database, backupSpec{id: inc2ID, typ: BackupIncremental, parent: v2, parentID: inc1ID, img: v3})
	storeBackup(t, bucket, keeper, database, backupSpec{id: diffID, typ: BackupDifferential, parent: v1, parentID: fullID, img: vd})

	t.Run("an incremental backup stores only the changed and added pages", func(t *testing.T) {
		var pages int
		for _, c := range inc1.Chunks {
			pages += c.PageCount
		}
		if pages != 14 {
			t.Fatalf("incremental holds %d pages, want 14 (4 changed, 10 added)", pages)
		}
	})

	t.Run("the chain of a backup lists it and its ancestors oldest first", func(t *testing.T) {
		for id, want := range map[string][]string{
			fullID: {fullID},
			inc1ID: {fullID, inc1ID},
			inc2ID: {fullID, inc1ID, inc2ID},
			diffID: {fullID, diffID},
		} {
			chain, err := Chain(ctx, bucket, keeper, database, id)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range chain {
				got = append(got, l.Manifest().BackupID)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Chain(%s) = %v, want %v", id, got, want)
			}
			ids, err := ChainIDs(ctx, bucket, database, id)
			if err != nil || !reflect.DeepEqual(ids, want) {
				t.Errorf("ChainIDs(%s) = %v, %v; want %v", id, ids, err, want)
			}
		}
	})

	for _, tc := range []struct {
		name string
		id   string
		img  *testImage
	}{
		{"a full backup restores its image", fullID, v1},
		{"an incremental on top of a full backup restores the newer, larger image", inc1ID, v2},
		{"a chain that shrinks the database restores the smaller image", inc2ID, v3},
		{"a differential on top of a full backup restores its image", diffID, vd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, written := restoreChain(t, bucket, keeper, database, tc.id, RestoreOptions{Workers: 3})
			assertFileHoldsImage(t, path, tc.img)
			if written != tc.img.digest() {
				t.Errorf("RestoreImage returned hash %s, the image hashes to %s", written, tc.img.digest())
			}
			chain, err := Chain(ctx, bucket, keeper, database, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if p, err := PageIndexMismatch(ctx, bucket, chain, f); err != nil || p != 0 {
				t.Errorf("PageIndexMismatch = %d, %v; the restored image should match its page index", p, err)
			}
		})
	}

	t.Run("a chain restore resumed after the full backup's chunks applies only the rest", func(t *testing.T) {
		chain, err := Chain(ctx, bucket, keeper, database, inc2ID)
		if err != nil {
			t.Fatal(err)
		}
		// An earlier attempt restored the full backup (5 chunks) into the file.
		path := filepath.Join(t.TempDir(), "resumed.db")
		if err := os.WriteFile(path, v1.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if n := len(chain[0].Manifest().Chunks); n != 5 {
			t.Fatalf("test setup: the full backup has %d chunks, want 5", n)
		}
		if ChunkCount(chain) <= 5 {
			t.Fatalf("ChunkCount = %d", ChunkCount(chain))
		}
		written := restoreInto(t, bucket, nil, nil, path, RestoreOptions{Workers: 2, StartChunk: 5}, chain...)
		assertFileHoldsImage(t, path, v3)
		if written != v3.digest() {
			t.Errorf("RestoreImage returned hash %s, the image hashes to %s", written, v3.digest())
		}
	})

	t.Run("a restored image that differs from the page index names the first differing page", func(t *testing.T) {
		chain, err := Chain(ctx, bucket, keeper, database, inc1ID)
		if err != nil {
			t.Fatal(err)
		}
		other := v2.clone()
		other.setPage(123, "tampered")
		f, err := os.Create(filepath.Join(t.TempDir(), "other.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(other.data); err != nil {
			t.Fatal(err)
		}
		if p, err := PageIndexMismatch(ctx, bucket, chain, f); err != nil || p != 123 {
			t.Fatalf("PageIndexMismatch = %d, %v; want page 123", p, err)
		}
	})

	t.Run("the dependents of a backup are every backup whose chain includes it", func(t *testing.T) {
		for id, want := range map[string][]string{
			fullID: {fullID, inc1ID, inc2ID, diffID},
			inc1ID: {inc1ID, inc2ID},
			inc2ID: {inc2ID},
			diffID: {diffID},
		} {
			got, err := Dependents(ctx, bucket, database, id)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Dependents(%s) = %v, %v; want %v", id, got, err, want)
			}
		}
	})

	t.Run("stored objects of every backup check out", func(t *testing.T) {
		for _, id := range []string{fullID, inc1ID, inc2ID, diffID} {
			if err := CheckObjects(ctx, bucket, keeper, database, id); err != nil {
				t.Errorf("CheckObjects(%s): %v", id, err)
			}
		}
	})

	t.Run("the parent of a new incremental is the newest backup, of a differential the newest full one", func(t *testing.T) {
		p, reason, err := FindParent(ctx, bucket, keeper, database, BackupIncremental)
		if err != nil || p == nil || p.Manifest().BackupID != diffID {
			t.Fatalf("incremental parent %v, %q, %v; want %s", p, reason, err, diffID)
		}
		p, reason, err = FindParent(ctx, bucket, keeper, database, BackupDifferential)
		if err != nil || p == nil || p.Manifest().BackupID != fullID {
			t.Fatalf("differential parent %v, %q, %v; want %s", p, reason, err, fullID)
		}
	})

	t.Run("a backup in the chain that failed verification is not used as a parent", func(t *testing.T) {
		at := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
		rec := VerifyRecord{BackupID: fullID, VerifiedAt: at.Format(time.RFC3339), OK: false, Problems: []string{"chunk 2 corrupt"}}
		if err := WriteVerifyRecord(ctx, bucket, database, VerifyRecordKey(database, fullID, at), rec); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := bucket.Delete(ctx, VerifyRecordKey(database, fullID, at)); err != nil {
				t.Fatal(err)
			}
		}()
		p, reason, err := FindParent(ctx, bucket, keeper, database, BackupIncremental)
		if err != nil || p != nil || !strings.Contains(reason, fullID) || !strings.Contains(reason, "verification") {
			t.Fatalf("got parent %v, reason %q, %v; want none, naming %s's failed verification", p, reason, err, fullID)
		}
	})

	t.Run("a parent whose page index is damaged is not used", func(t *testing.T) {
		k := PageIndexKey(database, diffID)
		original, err := bucket.ReadAll(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		damaged := bytes.Clone(original)
		damaged[len(damaged)-3] ^= 1
		if err := bucket.WriteAll(ctx, k, damaged, nil); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := bucket.WriteAll(ctx, k, original, nil); err != nil {
				t.Fatal(err)
			}
		}()
		p, reason, err := FindParent(ctx, bucket, keeper, database, BackupIncremental)
		if err != nil || p != nil || !strings.Contains(reason, "page index") {
			t.Fatalf("got parent %v, reason %q, %v; want none because of the page index", p, reason, err)
		}
		err = CheckObjects(ctx, bucket, keeper, database, diffID)
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("a chain whose parent is missing names the parent", func(t *testing.T) {
		hideManifest(t, bucket, database, inc1ID)
		_, err := Chain(ctx, bucket, keeper, database, inc2ID)
		wantErrorIs(t, err, ErrNotFound)
		if !strings.Contains(err.Error(), inc1ID) {
			t.Errorf("error %q does not name the missing parent %s", err, inc1ID)
		}
		ids, err := ChainIDs(ctx, bucket, database, inc2ID)
		wantErrorIs(t, err, ErrNotFound)
		if !reflect.DeepEqual(ids, []string{inc1ID, inc2ID}) {
			t.Errorf("ChainIDs = %v, want the ids up to the missing one", ids)
		}
	})

	t.Run("the newest backup is not a parent when its chain is broken", func(t *testing.T) {
		hideManifest(t, bucket, database, inc1ID)
		hideManifest(t, bucket, database, diffID) // so that inc2 is the newest
		p, reason, err := FindParent(ctx, bucket, keeper, database, BackupIncremental)
		if err != nil || p != nil || !strings.Contains(reason, inc2ID) {
			t.Errorf("got parent %v, reason %q, %v; want none, naming %s", p, reason, err, inc2ID)
		}
	})

	t.Run("a chain opened with another keeper is the wrong key", func(t *testing.T) {
		_, err := Chain(ctx, bucket, newTestKeeper(t), database, inc2ID)
		wantErrorIs(t, err, ErrWrongKey)
	})

	t.Run("a chunk of an ancestor that is damaged fails the restore of its dependents", func(t *testing.T) {
		k := ChunkKey(database, inc1ID, 0)
		original, err := bucket.ReadAll(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		damaged := bytes.Clone(original)
		damaged[len(damaged)/2] ^= 1
		if err := bucket.WriteAll(ctx, k, damaged, nil); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := bucket.WriteAll(ctx, k, original, nil); err != nil {
				t.Fatal(err)
			}
		}()
		chain, err := Chain(ctx, bucket, keeper, database, inc2ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = RestoreImage(ctx, bucket, chain, createFile(t), RestoreOptions{Workers: 2})
		wantErrorIs(t, err, ErrCorrupt)
		wantErrorIs(t, CheckObjects(ctx, bucket, keeper, database, inc1ID), ErrCorrupt)
	})

	t.Run("a newer full backup starts a new chain", func(t *testing.T) {
		storeBackup(t, bucket, keeper, database, backupSpec{id: full2ID, typ: BackupFull, img: v3})
		p, _, err := FindParent(ctx, bucket, keeper, database, BackupDifferential)
		if err != nil || p == nil || p.Manifest().BackupID != full2ID {
			t.Fatalf("differential parent %v, %v; want %s", p, err, full2ID)
		}
		ids, err := ChainIDs(ctx, bucket, database, full2ID)
		if err != nil || !reflect.DeepEqual(ids, []string{full2ID}) {
			t.Fatalf("ChainIDs = %v, %v", ids, err)
		}
	})
}

// hideManifest removes a backup's manifest until the test ends.
func hideManifest(t *testing.T, bucket *blob.Bucket, database, id string) {
	t.Helper()
	ctx := context.Background()
	k := ManifestKey(database, id)
	original, err := bucket.ReadAll(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if err := bucket.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bucket.WriteAll(ctx, k, original, nil); err != nil {
			t.Error(err)
		}
	})
}

func TestFindParentWithoutBackups(t *testing.T) {
	bucket := bucketKinds[0].open(t)
	keeper := newTestKeeper(t)
	for _, typ := range []BackupType{BackupIncremental, BackupDifferential} {
		p, reason, err := FindParent(context.Background(), bucket, keeper, "finance", typ)
		if err != nil || p != nil || !strings.Contains(reason, "finance") {
			t.Errorf("%s: got %v, %q, %v; want no parent and a reason naming the database", typ, p, reason, err)
		}
	}
}

func TestChainRefusesMismatchedPageSizes(t *testing.T) {
	bucket := bucketKinds[0].open(t)
	keeper := newTestKeeper(t)
	small := newTestImage(40, 1024, "v1")
	storeBackup(t, bucket, keeper, "finance", backupSpec{id: fullID, typ: BackupFull, img: newTestImage(10, 4096, "v1")})
	storeBackup(t, bucket, keeper, "finance", backupSpec{id: inc1ID, typ: BackupIncremental, parent: &testImage{pageSize: 1024}, parentID: fullID, img: small})
	_, err := Chain(context.Background(), bucket, keeper, "finance", inc1ID)
	wantErrorIs(t, err, ErrCorrupt)
}

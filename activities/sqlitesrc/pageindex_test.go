package sqlitesrc

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/bulwark-dr/bulwark/repository"
)

// checkpointedImage checkpoints the database (so that the file is its
// image) and returns the file's bytes.
func checkpointedImage(t *testing.T, db *sql.DB, path string) []byte {
	t.Helper()
	mustExec(t, db, `PRAGMA wal_checkpoint(TRUNCATE)`)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// pagesDiffering counts the pages of img that differ from before's or lie
// beyond its end: what an incremental of img on a backup of before stores.
func pagesDiffering(before, img []byte, pageSize int) int64 {
	var n int64
	for off := 0; off < len(img); off += pageSize {
		if off+pageSize > len(before) || !bytes.Equal(before[off:off+pageSize], img[off:off+pageSize]) {
			n++
		}
	}
	return n
}

// TestIncrementalPageIndexIsSparse takes a full backup and two incrementals
// of a database where few pages change: each incremental's page index holds
// a bitmap and the hashes of the changed pages only (16 bytes a page in a
// full index), the second incremental — comparing with the merge of the
// full index and the first incremental's sparse one — stores exactly the
// pages that changed, and the merged index of each backup is the hash of
// every page of its image.
func TestIncrementalPageIndexIsSparse(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	path := newLedger(t, 20000)
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	ids := []string{
		repository.NewBackupID(base, "000000f0"),
		repository.NewBackupID(base.Add(time.Hour), "000000f1"),
		repository.NewBackupID(base.Add(2*time.Hour), "000000f2"),
	}

	images := [][]byte{checkpointedImage(t, db, path)}
	full, err := f.backup(t, path, ids[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	pageSize, pages := full.Manifest.PageSize, full.Manifest.PageCount
	if pages < 1000 {
		t.Fatalf("test setup: %d pages, want a larger database", pages)
	}
	// Full index: header, one segment (length, nonce, tag) and every hash.
	if want := int64(16 + 32 + 16*pages); full.Manifest.PageIndex.StoredBytes != want {
		t.Fatalf("the full backup's page index has %d bytes, want %d", full.Manifest.PageIndex.StoredBytes, want)
	}

	for i, change := range []string{
		`UPDATE entries SET memo = 'first change' WHERE id % 997 = 0`,
		`UPDATE entries SET memo = 'second change' WHERE id % 1499 = 0 OR id > 39990`,
	} {
		mustExec(t, db, change)
		img := checkpointedImage(t, db, path)
		res, err := f.backup(t, path, ids[i+1], func(o *BackupOptions) { o.Type = repository.BackupIncremental })
		if err != nil {
			t.Fatal(err)
		}
		m := res.Manifest
		if m.Type != repository.BackupIncremental || m.Parent != ids[i] {
			t.Fatalf("incremental %d: %s on %q (%s)", i+1, m.Type, m.Parent, m.FullBecause)
		}
		want := pagesDiffering(images[len(images)-1], img, pageSize)
		if res.ChangedPages != want || want == 0 || want > m.PageCount/10 {
			t.Fatalf("incremental %d stored %d pages; %d of %d differ from its parent's image", i+1, res.ChangedPages, want, m.PageCount)
		}
		var stored int64
		for _, c := range m.Chunks {
			stored += int64(c.PageCount)
		}
		if stored != want {
			t.Fatalf("incremental %d's chunks hold %d pages, want %d", i+1, stored, want)
		}
		// Sparse index: header, one segment (length, nonce, tag), a bitmap
		// of every page and the changed pages' hashes.
		size := m.PageIndex.StoredBytes
		if wantSize := 16 + 32 + (m.PageCount+7)/8 + 16*want; size != wantSize {
			t.Fatalf("incremental %d's page index has %d bytes, want %d", i+1, size, wantSize)
		}
		if size*10 > 16*m.PageCount {
			t.Fatalf("incremental %d's page index has %d bytes: not well below 16 × %d pages", i+1, size, m.PageCount)
		}
		t.Logf("incremental %d: %d of %d pages changed; page index %d bytes (a full one: %d)", i+1, want, m.PageCount, size, 16+32+16*m.PageCount)
		images = append(images, img)
	}

	for i, id := range ids {
		chain, err := repository.Chain(ctx, f.bucket, f.keeper.Keeper, "ledger", id)
		if err != nil {
			t.Fatal(err)
		}
		r, err := repository.OpenChainPageIndex(ctx, f.bucket, chain)
		if err != nil {
			t.Fatal(err)
		}
		img := images[i]
		for off := 0; off < len(img); off += pageSize {
			h, ok, err := r.Next()
			if err != nil || !ok {
				t.Fatalf("backup %d: page %d: %v, %v", i, off/pageSize+1, ok, err)
			}
			if h != repository.HashPage(img[off:off+pageSize]) {
				t.Fatalf("backup %d: the merged index's hash of page %d is not the image's", i, off/pageSize+1)
			}
		}
		if _, ok, err := r.Next(); ok || err != nil {
			t.Fatalf("backup %d: the merged index goes on after the image's %d pages: %v, %v", i, len(img)/pageSize, ok, err)
		}
		r.Close()
		out, err := f.restore(t, id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, img) {
			t.Fatalf("backup %d restores to %d other bytes (%v)", i, len(got), err)
		}
	}

	// A sparse index is not a page index on its own.
	b, err := repository.ReadBackup(ctx, f.bucket, "ledger", ids[2])
	if err != nil {
		t.Fatal(err)
	}
	key, err := b.Open(ctx, f.keeper.Keeper)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repository.OpenPageIndex(ctx, f.bucket, key, b.Manifest); !errors.Is(err, repository.ErrBadInput) {
		t.Fatalf("OpenPageIndex of the sparse index of %s alone: %v, want ErrBadInput", ids[2], err)
	}
}

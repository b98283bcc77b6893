package repository

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"

	"gocloud.dev/blob"
)

// pageHashOf is a recognisable hash for page n.
func pageHashOf(n uint64) PageHash {
	var h PageHash
	binary.BigEndian.PutUint64(h[:], n)
	binary.BigEndian.PutUint64(h[8:], ^n)
	return h
}

// writePageIndex stores the index of a pageCount-page image under backup id
// and returns a manifest that describes it.
func writePageIndex(t *testing.T, bucket *blob.Bucket, key *DataKey, id string, pageCount uint64) *Manifest {
	t.Helper()
	w, err := NewPageIndexWriter(context.Background(), bucket, key, "finance", id, 4096, pageCount)
	if err != nil {
		t.Fatal(err)
	}
	for n := uint64(1); n <= pageCount; n++ {
		if err := w.Add(pageHashOf(n)); err != nil {
			t.Fatal(err)
		}
	}
	size, sum, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	return &Manifest{
		BackupID: id, Database: DatabaseIdentity{Name: "finance"}, PageSize: 4096, PageCount: int64(pageCount),
		PageIndex: &ObjectRef{StoredBytes: size, StoredSHA256: sum},
	}
}

// readPageIndex reads a whole page index and returns the hashes read before
// the first error.
func readPageIndex(bucket *blob.Bucket, key *DataKey, m *Manifest) ([]PageHash, error) {
	r, err := OpenPageIndex(context.Background(), bucket, key, m)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var hashes []PageHash
	for {
		h, ok, err := r.Next()
		if err != nil {
			return hashes, err
		}
		if !ok {
			return hashes, nil
		}
		hashes = append(hashes, h)
	}
}

// storeAltered stores data as the page index of backup id, with a manifest
// whose recorded hash matches data: only the index's own checks can catch
// what was altered.
func storeAltered(t *testing.T, bucket *blob.Bucket, m *Manifest, id string, data []byte) *Manifest {
	t.Helper()
	if err := bucket.WriteAll(context.Background(), PageIndexKey("finance", id), data, nil); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	c := *m
	c.BackupID = id
	c.PageIndex = &ObjectRef{StoredBytes: int64(len(data)), StoredSHA256: hex.EncodeToString(sum[:])}
	return &c
}

func TestPageIndex(t *testing.T) {
	ctx := context.Background()
	keeper := newTestKeeper(t)
	key, _ := newTestDataKey(t, keeper)

	for _, kind := range bucketKinds {
		t.Run("on "+kind.name, func(t *testing.T) {
			bucket := kind.open(t)
			for _, n := range []uint64{1, 1000, segmentPages, segmentPages + 1, 2*segmentPages + 5} {
				t.Run("an index of "+strconv.FormatUint(n, 10)+" pages reads back every hash in order", func(t *testing.T) {
					m := writePageIndex(t, bucket, key, testBackupID, n)
					hashes, err := readPageIndex(bucket, key, m)
					if err != nil {
						t.Fatal(err)
					}
					if uint64(len(hashes)) != n {
						t.Fatalf("read %d hashes, want %d", len(hashes), n)
					}
					for i, h := range hashes {
						if h != pageHashOf(uint64(i+1)) {
							t.Fatalf("hash %d is %x", i+1, h)
						}
					}
					obj, err := bucket.ReadAll(ctx, PageIndexKey("finance", testBackupID))
					if err != nil || int64(len(obj)) != m.PageIndex.StoredBytes {
						t.Fatalf("stored %d bytes (%v), manifest says %d", len(obj), err, m.PageIndex.StoredBytes)
					}
				})
			}
		})
	}

	bucket := bucketKinds[0].open(t)
	small := writePageIndex(t, bucket, key, testBackupID, 3)
	smallObj, err := bucket.ReadAll(ctx, PageIndexKey("finance", testBackupID))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("an index with any byte altered fails", func(t *testing.T) {
		for i := range smallObj {
			altered := bytes.Clone(smallObj)
			altered[i] ^= 0x10
			m := storeAltered(t, bucket, small, "20260102T030405Z-0000a1e7", altered)
			if _, err := readPageIndex(bucket, key, m); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("altering byte %d: got %v, want ErrCorrupt", i, err)
			}
		}
	})

	t.Run("an index whose object differs from the manifest's hash fails", func(t *testing.T) {
		m := *small
		m.PageIndex = &ObjectRef{StoredBytes: small.PageIndex.StoredBytes, StoredSHA256: hex.EncodeToString(make([]byte, 32))}
		_, err := readPageIndex(bucket, key, &m)
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("a truncated index fails", func(t *testing.T) {
		for n := range len(smallObj) {
			m := storeAltered(t, bucket, small, "20260102T030405Z-00007c47", smallObj[:n])
			if _, err := readPageIndex(bucket, key, m); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("truncated to %d bytes: got %v, want ErrCorrupt", n, err)
			}
		}
	})

	t.Run("an index with data after its last segment fails", func(t *testing.T) {
		m := storeAltered(t, bucket, small, "20260102T030405Z-0000e7a1", append(bytes.Clone(smallObj), 0))
		_, err := readPageIndex(bucket, key, m)
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("an index copied from another backup fails", func(t *testing.T) {
		m := storeAltered(t, bucket, small, "20260102T030405Z-0000c0de", smallObj)
		_, err := readPageIndex(bucket, key, m)
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("an index read with another data key fails", func(t *testing.T) {
		other, _ := newTestDataKey(t, keeper)
		_, err := readPageIndex(bucket, other, small)
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("an index whose segments are swapped fails", func(t *testing.T) {
		const id = "20260102T030405Z-00005a9d"
		m := writePageIndex(t, bucket, key, id, 3*segmentPages)
		obj, err := bucket.ReadAll(ctx, PageIndexKey("finance", id))
		if err != nil {
			t.Fatal(err)
		}
		segLen := 4 + chunkNonceSize + segmentPages*pageHashSize + 16
		first, second := pageIndexHdrSize, pageIndexHdrSize+segLen
		swapped := bytes.Clone(obj)
		copy(swapped[first:], obj[second:second+segLen])
		copy(swapped[second:], obj[first:first+segLen])
		_, err = readPageIndex(bucket, key, storeAltered(t, bucket, m, id, swapped))
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("an index cut after a full segment fails", func(t *testing.T) {
		const id = "20260102T030405Z-00000c07"
		m := writePageIndex(t, bucket, key, id, segmentPages+1)
		obj, err := bucket.ReadAll(ctx, PageIndexKey("finance", id))
		if err != nil {
			t.Fatal(err)
		}
		segLen := 4 + chunkNonceSize + segmentPages*pageHashSize + 16
		hashes, err := readPageIndex(bucket, key, storeAltered(t, bucket, m, id, obj[:pageIndexHdrSize+segLen]))
		wantErrorIs(t, err, ErrCorrupt)
		if len(hashes) != segmentPages {
			t.Errorf("read %d hashes before the error, want the first segment's %d", len(hashes), segmentPages)
		}
	})

	t.Run("an index describing another page count or size than the manifest fails to open", func(t *testing.T) {
		for _, mutate := range []func(*Manifest){
			func(m *Manifest) { m.PageCount = 4 },
			func(m *Manifest) { m.PageSize = 1024 },
		} {
			m := *small
			mutate(&m)
			_, err := OpenPageIndex(ctx, bucket, key, &m)
			wantErrorIs(t, err, ErrCorrupt)
		}
	})

	t.Run("an index that is not a page index fails to open", func(t *testing.T) {
		m := storeAltered(t, bucket, small, "20260102T030405Z-0000f11e", []byte("BWC1 a chunk, not an index"))
		_, err := OpenPageIndex(ctx, bucket, key, m)
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("a backup without a page index, or whose index is missing, is not found", func(t *testing.T) {
		m := *small
		m.PageIndex = nil
		_, err := OpenPageIndex(ctx, bucket, key, &m)
		wantErrorIs(t, err, ErrNotFound)
		m = *small
		m.BackupID = "20200101T000000Z-00000000"
		_, err = OpenPageIndex(ctx, bucket, key, &m)
		wantErrorIs(t, err, ErrNotFound)
	})

	t.Run("a writer given fewer pages than it announced stores nothing", func(t *testing.T) {
		const id = "20260102T030405Z-0000001e"
		w, err := NewPageIndexWriter(ctx, bucket, key, "finance", id, 4096, 10)
		if err != nil {
			t.Fatal(err)
		}
		for n := uint64(1); n <= 9; n++ {
			if err := w.Add(pageHashOf(n)); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := w.Close(); err == nil {
			t.Fatal("Close accepted 9 of 10 pages")
		}
		if ok, _ := bucket.Exists(ctx, PageIndexKey("finance", id)); ok {
			t.Fatal("an incomplete page index was stored")
		}
	})

	t.Run("an aborted writer stores nothing", func(t *testing.T) {
		const id = "20260102T030405Z-000000ab"
		w, err := NewPageIndexWriter(ctx, bucket, key, "finance", id, 4096, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add(pageHashOf(1)); err != nil {
			t.Fatal(err)
		}
		w.Abort()
		if ok, _ := bucket.Exists(ctx, PageIndexKey("finance", id)); ok {
			t.Fatal("an aborted page index was stored")
		}
	})

	t.Run("page hashes tell pages apart", func(t *testing.T) {
		a, b := make([]byte, 4096), make([]byte, 4096)
		b[4095] = 1
		if HashPage(a) == HashPage(b) || HashPage(a) != HashPage(bytes.Clone(a)) {
			t.Fatal("HashPage does not distinguish pages or is not deterministic")
		}
	})
}

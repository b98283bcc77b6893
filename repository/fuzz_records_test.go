package repository

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/secrets"
	"gocloud.dev/secrets/localsecrets"
)

// Fuzz tests of the decoders of stored records that fuzz_test.go does not
// cover: export manifests and parts, tombstones and history links, drill,
// replica and verification records, image files, and a chunk applied on
// top of a chain by a restore. Where the interesting code runs only after
// authentication, the fuzzer's bytes are sealed by the harness (the worst
// case: an attacker who holds the key, or a buggy writer), so that the
// fuzzer explores what Bulwark does with authentic but hostile contents.

// fuzzKeeper is a keeper with a fixed key.
func fuzzKeeper(tb testing.TB) *secrets.Keeper {
	tb.Helper()
	var raw [32]byte
	copy(raw[:], strings.Repeat("k", 32))
	k := localsecrets.NewKeeper(raw)
	tb.Cleanup(func() { k.Close() })
	return k
}

// storeFull stores a complete full backup of img in one chunk, with its
// key envelope, page index and manifest, as the backup activity does.
func storeFull(tb testing.TB, bucket *blob.Bucket, keeper SecretsKeeper, database, id string, img *testImage) {
	tb.Helper()
	ctx := context.Background()
	key, env := newTestDataKey(tb, keeper)
	if err := WriteKeyEnvelope(ctx, bucket, database, id, env); err != nil {
		tb.Fatal(err)
	}
	pages := make([]uint32, img.pageCount())
	for i := range pages {
		pages[i] = uint32(i + 1)
	}
	cw, err := NewChunkWriter(ctx, ChunkWriterOptions{Bucket: bucket, Database: database, BackupID: id, Key: key, Workers: 1,
		PayloadBytes: 8 + 4*len(pages) + len(img.data)})
	if err != nil {
		tb.Fatal(err)
	}
	buf, err := cw.Buffer()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cw.Submit(0, 1, len(pages), append(AppendPayloadHeader(buf, img.pageSize, pages), img.data...)); err != nil {
		tb.Fatal(err)
	}
	refs, _, err := cw.Close()
	if err != nil {
		tb.Fatal(err)
	}
	pix, err := NewPageIndexWriter(ctx, bucket, key, database, id, img.pageSize, uint64(len(pages)))
	if err != nil {
		tb.Fatal(err)
	}
	for n := 1; n <= len(pages); n++ {
		if err := pix.Add(HashPage(img.page(n))); err != nil {
			tb.Fatal(err)
		}
	}
	n, sum, err := pix.Close()
	if err != nil {
		tb.Fatal(err)
	}
	m := fullManifest(database, id, img, env, refs)
	m.PageIndex = &ObjectRef{StoredBytes: n, StoredSHA256: sum}
	if m.History, err = HistoryLinkFor(ctx, bucket, database); err != nil {
		tb.Fatal(err)
	}
	if _, err := WriteManifest(ctx, bucket, key, m); err != nil {
		tb.Fatal(err)
	}
}

// sealedFile builds {"body": body, "mac": …} around body as it is, with the
// MAC of label: whatever the body's bytes, they authenticate.
func sealedFile(key *DataKey, label string, body []byte) []byte {
	out := append([]byte(`{"body":`), body...)
	out = append(out, `,"mac":"`...)
	out = append(out, hex.EncodeToString(key.mac([]byte(label), body))...)
	return append(out, `"}`...)
}

// FuzzReadExportManifest: an export manifest is refused as corrupt or of a
// newer format, or it names only safe, distinct files of the export asked
// for, and writes back to the same thing.
func FuzzReadExportManifest(f *testing.F) {
	ctx := context.Background()
	key := fuzzDataKey(f)
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	valid := `{"format":3,"backup_id":"` + testBackupID + `","kind":"csv","files":[{"name":"accounts.csv","table":"accounts","bytes":16,"sha256":"` + sha64 + `","rows":1,"parts":[{"stored_bytes":64,"stored_sha256":"` + sha64 + `"}]}]}`
	f.Add([]byte(valid), true)
	f.Add(sealedFile(key, "export manifest", []byte(valid)), false)
	f.Add([]byte(strings.Replace(valid, "accounts.csv", "../../x", 1)), true)
	f.Add([]byte(strings.Replace(valid, `"format":3`, `"format":4`, 1)), true)
	f.Add([]byte(strings.Replace(valid, `"kind":"csv"`, `"kind":"sql"`, 1)), true)
	f.Add([]byte(strings.Replace(valid, `"bytes":16`, `"bytes":-16`, 1)), true)
	f.Add([]byte(`{"files":[{"name":"a"},{"name":"a"}]}`), true)
	f.Add([]byte(`null`), true)
	f.Add([]byte(`{"body":{},"mac":"00"}`), false)

	f.Fuzz(func(t *testing.T, data []byte, seal bool) {
		if seal {
			data = sealedFile(key, "export manifest", data)
		}
		if err := bucket.WriteAll(ctx, ExportManifestKey("finance", testBackupID, "csv"), data, nil); err != nil {
			t.Fatal(err)
		}
		m, err := ReadExportManifest(ctx, bucket, key, "finance", testBackupID, "csv")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedFormat) {
				t.Fatalf("error is neither corrupt nor unsupported: %v", err)
			}
			return
		}
		if m.BackupID != testBackupID || m.Kind != "csv" || m.Format > FormatVersion {
			t.Fatalf("accepted the manifest of %s/%s, format %d", m.BackupID, m.Kind, m.Format)
		}
		names := map[string]bool{}
		for _, file := range m.Files {
			if ValidateExportName(file.Name) != nil || strings.ContainsAny(file.Name, `/\`+"\x00") || strings.HasPrefix(file.Name, ".") || names[file.Name] {
				t.Fatalf("accepted file name %q", file.Name)
			}
			names[file.Name] = true
			if filepath.Base(file.Name) != file.Name || !filepath.IsLocal(file.Name) {
				t.Fatalf("file name %q is not a name in the export directory", file.Name)
			}
			if file.Bytes < 0 || file.Rows < 0 || !isSHA256Hex(file.SHA256) {
				t.Fatalf("accepted file %+v", file)
			}
			for _, p := range file.Parts {
				if p.StoredBytes < 0 || p.StoredBytes > MaxChunkBytes || !isSHA256Hex(p.StoredSHA256) {
					t.Fatalf("accepted part %+v", p)
				}
			}
		}
		// What reads can be written and reads back the same.
		if err := WriteExportManifest(ctx, bucket, key, "finance", *m); err != nil {
			t.Fatal(err)
		}
		again, err := ReadExportManifest(ctx, bucket, key, "finance", testBackupID, "csv")
		if err != nil {
			t.Fatalf("a rewritten export manifest does not read: %v", err)
		}
		m.Format = FormatVersion
		a, _ := json.Marshal(m)
		b, _ := json.Marshal(again)
		if !bytes.Equal(a, b) {
			t.Fatalf("export manifest changed in a write/read round trip:\n%s\n%s", a, b)
		}
	})
}

// FuzzCopyExportFile stores arbitrary bytes as the one part of an export
// file, either as the object itself or as the compressed contents sealed
// with the backup's key. The copy fails as corrupt, or writes exactly what
// the part decompresses to.
func FuzzCopyExportFile(f *testing.F) {
	ctx := context.Background()
	key := fuzzDataKey(f)
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		f.Fatal(err)
	}
	compressed := enc.EncodeAll([]byte("id,name\n1,alice\n"), nil)
	enc.Close()
	f.Add(compressed, true)
	f.Add(compressed[:len(compressed)-1], true)
	f.Add([]byte("not zstd"), true)
	f.Add([]byte{}, true)
	f.Add(append(make([]byte, chunkNonceSize), compressed...), false)
	f.Add([]byte{}, false)
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxChunkBytes))
	if err != nil {
		f.Fatal(err)
	}
	defer dec.Close()

	const name = "accounts.csv"
	f.Fuzz(func(t *testing.T, data []byte, seal bool) {
		obj := data
		if seal {
			nonce := make([]byte, chunkNonceSize)
			obj = key.chunkAEAD.Seal(nonce, nonce, data, exportAAD(testBackupID, "csv", name, 0))
		}
		if err := bucket.WriteAll(ctx, exportPartKey("finance", testBackupID, "csv", name, 0), obj, nil); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(obj)
		file := ExportFile{Name: name, Parts: []ObjectRef{{StoredBytes: int64(len(obj)), StoredSHA256: hex.EncodeToString(sum[:])}}}
		// The file's hash is that of what the part decompresses to, when it
		// does: the copy must then succeed and write exactly that.
		var want []byte
		decodes := false
		if seal {
			if plain, err := dec.DecodeAll(data, nil); err == nil {
				want, decodes = plain, true
				h := sha256.Sum256(plain)
				file.Bytes, file.SHA256 = int64(len(plain)), hex.EncodeToString(h[:])
			}
		}
		var out bytes.Buffer
		err := CopyExportFile(ctx, bucket, key, "finance", testBackupID, "csv", file, &out)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error is not corrupt: %v", err)
			}
			if decodes {
				t.Fatalf("an authentic part that decompresses was refused: %v", err)
			}
			return
		}
		if !decodes || !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("copied %d bytes of a part that should not copy (want %d bytes)", out.Len(), len(want))
		}
	})
}

// FuzzTombstone stores arbitrary bytes as the body of a tombstone, sealed
// with the key its envelope wraps (or as the whole file). Reading it fails
// as corrupt or names the backup it is of; the link a new backup takes from
// it is a valid id and hash; and the walk of the history that passes
// through it — next to a second tombstone, so that loops are possible —
// ends, whatever the links say.
func FuzzTombstone(f *testing.F) {
	ctx := context.Background()
	keeper := fuzzKeeper(f)
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	const (
		goneOld  = "20260101T000000.000Z-0000000a"
		goneNew  = "20260102T000000.000Z-0000000b"
		backupID = "20260103T000000.000Z-0000000c"
	)
	key, env := newTestDataKey(f, keeper)
	tombstone := func(body []byte) []byte {
		data, err := json.Marshal(tombstoneFile{Body: json.RawMessage("null"), Key: env, MAC: hex.EncodeToString(key.mac([]byte("tombstone"), body))})
		if err != nil {
			f.Fatal(err)
		}
		// The body's bytes as they are, valid JSON or not.
		return bytes.Replace(data, []byte(`"body":null`), append([]byte(`"body":`), body...), 1)
	}
	body := func(id string, link *HistoryLink) []byte {
		b, err := json.Marshal(Tombstone{BackupID: id, ManifestSHA256: sha64, History: link, ForgottenAt: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Reason: "retention"})
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	// A backup whose history passes through goneNew, then goneOld.
	img := newTestImage(3, 512, "v1")
	storeFull(f, bucket, keeper, "finance", backupID, img)
	b, err := ReadBackup(ctx, bucket, "finance", backupID)
	if err != nil {
		f.Fatal(err)
	}
	bkey, err := b.Open(ctx, keeper)
	if err != nil {
		f.Fatal(err)
	}
	m := *b.Manifest
	m.History = &HistoryLink{Previous: goneNew, PreviousSHA256: sha64}
	if err := bucket.WriteAll(ctx, ManifestKey("finance", backupID), mustSeal(f, bkey, &m), nil); err != nil {
		f.Fatal(err)
	}
	if err := bucket.WriteAll(ctx, TombstoneKey("finance", goneOld), tombstone(body(goneOld, nil)), nil); err != nil {
		f.Fatal(err)
	}

	f.Add(body(goneNew, &HistoryLink{Previous: goneOld, PreviousSHA256: sha64}), true)
	f.Add(body(goneNew, nil), true)
	f.Add(body(goneNew, &HistoryLink{Previous: goneNew, PreviousSHA256: sha64}), true)
	f.Add(body(goneNew, &HistoryLink{Previous: backupID, PreviousSHA256: sha64}), true)
	f.Add(body(goneNew, &HistoryLink{Previous: "../../x", PreviousSHA256: "zz"}), true)
	f.Add(body(goneOld, nil), true)
	f.Add(tombstone(body(goneNew, nil)), false)
	f.Add([]byte(`{"body":{},"key":{},"mac":""}`), false)
	f.Add([]byte("null"), true)

	f.Fuzz(func(t *testing.T, data []byte, seal bool) {
		if seal {
			data = tombstone(data)
		}
		for _, db := range []string{"finance", "empty"} {
			if err := bucket.WriteAll(ctx, TombstoneKey(db, goneNew), data, nil); err != nil {
				t.Fatal(err)
			}
		}
		ts, err := readTombstone(ctx, bucket, keeper, "finance", goneNew)
		if err != nil && !isDamage(err) {
			t.Fatalf("readTombstone error of no documented kind: %v", err)
		}
		if err == nil && ts.BackupID != goneNew {
			t.Fatalf("read the tombstone of %s as %s's", ts.BackupID, goneNew)
		}
		// A database with no backup left: its next backup links to the
		// newest tombstone.
		link, err := HistoryLinkFor(ctx, bucket, "empty")
		switch {
		case err != nil && !errors.Is(err, ErrCorrupt):
			t.Fatalf("HistoryLinkFor error is not corrupt: %v", err)
		case err == nil && (link == nil || link.Previous != goneNew || !isSHA256Hex(link.PreviousSHA256)):
			t.Fatalf("a new backup would link to %+v", link)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if _, err := CheckHistory(ctx, bucket, keeper, "finance", backupID); err != nil {
				t.Errorf("CheckHistory: %v", err)
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			panic("CheckHistory does not end: the history loops")
		}
	})
}

// FuzzDrillRecord stores arbitrary bytes as a drill record: listing never
// fails on it and lists it once, as a record or as an unreadable one.
func FuzzDrillRecord(f *testing.F) {
	ctx := context.Background()
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	at := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	rec, err := json.Marshal(DrillRecord{Database: "finance", Host: "db1", BackupID: testBackupID, StartedAt: at, OK: true,
		Queries: []DrillQuery{{SQL: "SELECT 1", OK: true, Columns: []string{"1"}, Row: []string{"1"}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec)
	f.Add([]byte(`{"database":"../other","key":"../../x","started_at":"not a time"}`))
	f.Add([]byte(`{"queries":[{"row":[1,2]}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{})
	key := DrillRecordKey("finance", at)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := bucket.WriteAll(ctx, key, data, nil); err != nil {
			t.Fatal(err)
		}
		recs, err := ListDrillRecords(ctx, bucket, "finance", 0)
		if err != nil {
			t.Fatalf("one bad record fails the listing: %v", err)
		}
		if len(recs) != 1 || recs[0].Key != key {
			t.Fatalf("listed %d records (%+v)", len(recs), recs)
		}
		var probe DrillRecord
		if err := json.Unmarshal(data, &probe); err == nil {
			probe.Key = key
			if !reflect.DeepEqual(recs[0], probe) {
				t.Fatalf("a record that decodes is listed as %+v", recs[0])
			}
		} else if len(recs[0].Problems) != 1 || !strings.HasPrefix(recs[0].Problems[0], "unreadable drill record") || recs[0].OK {
			t.Fatalf("an unreadable record is listed as %+v", recs[0])
		}
	})
}

// FuzzReplicaAndVerifyRecords stores arbitrary bytes as a replica record
// and as a verification record: reading them fails as corrupt or yields
// one record.
func FuzzReplicaAndVerifyRecords(f *testing.F) {
	ctx := context.Background()
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	replica, err := json.Marshal(ReplicaRecord{BackupID: testBackupID, Destination: "nas", VerifiedAt: time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC), Objects: 3, Bytes: 1000, Copied: 3, CopiedBytes: 1000})
	if err != nil {
		f.Fatal(err)
	}
	verify, err := json.Marshal(VerifyRecord{BackupID: testBackupID, VerifiedAt: "2026-11-01T03:00:00Z", OK: true, ChunksChecked: 4, RowCounts: map[string]string{"accounts": "2"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(replica)
	f.Add(verify)
	f.Add([]byte(`{"locked_until":"never","objects":-1}`))
	f.Add([]byte(`{"ok":"yes","row_counts":[]}`))
	f.Add([]byte{})
	replicaKey := ReplicaRecordKey("finance", testBackupID, "nas")
	verifyKey := VerifyRecordKey("finance", testBackupID, time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC))
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := bucket.WriteAll(ctx, replicaKey, data, nil); err != nil {
			t.Fatal(err)
		}
		if err := bucket.WriteAll(ctx, verifyKey, data, nil); err != nil {
			t.Fatal(err)
		}
		recs, err := ReplicaRecords(ctx, bucket, "finance", testBackupID)
		if err != nil && !errors.Is(err, ErrCorrupt) || err == nil && len(recs) != 1 {
			t.Fatalf("replica records %+v, %v", recs, err)
		}
		rec, err := LatestVerifyRecord(ctx, bucket, "finance", testBackupID)
		if err != nil && !errors.Is(err, ErrCorrupt) || err == nil && rec == nil {
			t.Fatalf("verify record %+v, %v", rec, err)
		}
	})
}

// FuzzImageHashFile hashes arbitrary bytes as a database file: it fails,
// or hashes every byte, in whole pages of the size its header names.
func FuzzImageHashFile(f *testing.F) {
	path := filepath.Join(f.TempDir(), "image.db")
	header := func(pageSize uint16, pages int) []byte {
		b := make([]byte, 512*pages)
		copy(b, "SQLite format 3\x00")
		b[16], b[17] = byte(pageSize>>8), byte(pageSize)
		return b
	}
	f.Add(header(512, 3))
	f.Add(header(1, 1))
	f.Add(header(512, 3)[:700])
	f.Add(header(0, 1))
	f.Add(header(1024, 1))
	f.Add([]byte("SQLite format 3"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		sum, n, err := ImageHashFile(path)
		if err != nil {
			return
		}
		pageSize := int(data[16])<<8 | int(data[17])
		if pageSize == 1 {
			pageSize = 65536
		}
		if n != int64(len(data)) || n%int64(pageSize) != 0 {
			t.Fatalf("hashed %d of %d bytes in pages of %d", n, len(data), pageSize)
		}
		ih := NewImageHasher(pageSize)
		ih.AddPages(data)
		if ih.Sum() != sum {
			t.Fatalf("image hash %s, want %s", sum, ih.Sum())
		}
	})
}

// FuzzRestoreLayer restores an incremental backup whose one chunk holds an
// arbitrary payload (sealed with the backup's key: authentic, but hostile)
// on top of a real full backup, as a restore of the chain does. Whatever
// the payload and the manifest's sizes, the restore fails as corrupt, or
// writes exactly the image the two backups describe — never a byte beyond
// it — and returns its hash.
func FuzzRestoreLayer(f *testing.F) {
	ctx := context.Background()
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	keeper := fuzzKeeper(f)
	const (
		pageSize = 512
		fullID   = "20260101T000000.000Z-00000001"
		incID    = "20260102T000000.000Z-00000002"
	)
	base := newTestImage(6, pageSize, "v1")
	storeFull(f, bucket, keeper, "finance", fullID, base)
	fb, err := ReadBackup(ctx, bucket, "finance", fullID)
	if err != nil {
		f.Fatal(err)
	}
	fullKey, err := fb.Open(ctx, keeper)
	if err != nil {
		f.Fatal(err)
	}
	full := Layer{Backup: fb, Key: fullKey}
	key, env := newTestDataKey(f, keeper)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		f.Fatal(err)
	}
	defer enc.Close()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxChunkBytes))
	if err != nil {
		f.Fatal(err)
	}
	defer dec.Close()
	file, err := os.Create(filepath.Join(f.TempDir(), "restored.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()

	page := func(n int, v string) []byte { return pageContents(n, pageSize, v) }
	set := func(numbers ...uint32) []byte {
		p := AppendPayloadHeader(nil, pageSize, numbers)
		for _, n := range numbers {
			p = append(p, page(int(n), "v2")...)
		}
		return p
	}
	f.Add(set(2, 5), false, uint32(0), uint16(0), uint16(6))
	f.Add(set(7, 8), false, uint32(0), uint16(0), uint16(8))
	f.Add(set(1), false, uint32(0), uint16(0), uint16(3))
	f.Add(set(4, 9), false, uint32(0), uint16(0), uint16(7))
	f.Add(set(1, 2, 3), false, uint32(2), uint16(2), uint16(6))
	f.Add(set(3), true, uint32(3), uint16(1), uint16(6))
	f.Add([]byte{}, false, uint32(1), uint16(1), uint16(6))

	f.Fuzz(func(t *testing.T, payload []byte, raw bool, firstPage uint32, pageCount uint16, imagePages uint16) {
		compressed := payload
		if !raw {
			compressed = enc.EncodeAll(payload, nil)
		}
		// The manifest describes the chunk as its payload does, when it
		// decodes; the fuzzer's numbers otherwise.
		plain := payload
		if raw {
			plain, _ = dec.DecodeAll(payload, nil)
		}
		s, err := DecodePayload(plain, pageSize)
		if err == nil && len(s.Pages) > 0 {
			firstPage, pageCount = s.Pages[0], uint16(min(len(s.Pages), 1<<16-1))
		}
		obj := key.SealChunk(nil, compressed, incID, 0)
		if err := bucket.WriteAll(ctx, ChunkKey("finance", incID, 0), obj, nil); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(obj)
		m := &Manifest{
			Format: FormatVersion, BackupID: incID, Type: BackupIncremental, Parent: fullID,
			Database: DatabaseIdentity{Name: "finance"}, PageSize: pageSize, PageCount: int64(imagePages), ImageBytes: int64(imagePages) * pageSize,
			ImageHash: sha64, Key: env, StoredBytes: int64(len(obj)),
			Chunks: []ChunkRef{{Index: 0, FirstPage: firstPage, PageCount: int(pageCount), StoredBytes: int64(len(obj)), StoredSHA256: hex.EncodeToString(sum[:]), SealTag: sealTag(obj)}},
		}
		// What Chain refuses never reaches a restore.
		if m.check() != nil || checkParent(m, full.Manifest()) != nil {
			return
		}
		if err := file.Truncate(0); err != nil {
			t.Fatal(err)
		}
		got, err := RestoreImage(ctx, bucket, []Layer{full, {Backup: &Backup{Manifest: m}, Key: key}}, file, RestoreOptions{Workers: 2})
		info, serr := file.Stat()
		if serr != nil {
			t.Fatal(serr)
		}
		if info.Size() > m.ImageBytes {
			t.Fatalf("the restore wrote %d bytes, the image has %d", info.Size(), m.ImageBytes)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error is not corrupt: %v", err)
			}
			return
		}
		if s.Pages == nil {
			t.Fatalf("a chunk that does not decode was restored")
		}
		// The image: the incremental's pages over the full backup's, cut
		// or grown (zeros where nothing was stored) to its page count.
		want := make([]byte, m.ImageBytes)
		copy(want, base.data)
		for i, p := range s.Pages {
			copy(want[int64(p-1)*pageSize:], s.Page(i))
		}
		restored, err := os.ReadFile(file.Name())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(restored, want) {
			t.Fatal("the restored image is not the chain's")
		}
		ih := NewImageHasher(pageSize)
		ih.AddPages(want)
		if got != ih.Sum() {
			t.Fatalf("restore returned hash %s, the image has %s", got, ih.Sum())
		}
	})
}

package repository

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/secrets/localsecrets"
)

// fuzzDataKey is a fixed data key, so that seeds sealed with it stay valid
// from run to run.
func fuzzDataKey(tb testing.TB) *DataKey {
	tb.Helper()
	key, err := deriveDataKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// sealCompact seals a manifest body given as JSON text, without the
// indentation SealManifest adds. Fuzz seeds are kept small because the fuzz
// engine's minimisation of new inputs is quadratic in their length.
func sealCompact(key *DataKey, body string) []byte {
	data, err := json.Marshal(manifestFile{Body: json.RawMessage(body), MAC: hex.EncodeToString(key.mac([]byte("manifest"), []byte(body)))})
	if err != nil {
		panic(err)
	}
	return data
}

// tinyManifest is the body of a small valid full backup: one page, one chunk.
const tinyManifest = `{"format":1,"backup_id":"20260102T030405Z-0123abcd","type":"full","database":{"name":"f"},` +
	`"page_size":512,"page_count":1,"image_bytes":512,"image_sha256":"` + sha64 + `",` +
	`"chunks":[{"index":0,"first_page":1,"page_count":1,"stored_bytes":90,"stored_sha256":"` + sha64 + `"}]}`

const sha64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func FuzzParseManifest(f *testing.F) {
	key := fuzzDataKey(f)
	hostile := func(old, new string) []byte {
		return sealCompact(key, strings.Replace(tinyManifest, old, new, 1))
	}
	f.Add(sealCompact(key, tinyManifest))
	f.Add(hostile(`"type":"full"`, `"type":"incremental","parent":"20260101T000000Z-00000000"`))
	f.Add(hostile(`"type":"full"`, `"type":"incremental","parent":"20260102T030405Z-0123abcd"`))
	f.Add(hostile(`"20260102T030405Z-0123abcd"`, `"../../x"`))
	f.Add(hostile(`"type":"full"`, `"type":"incremental","parent":"20260102T030405Z-0123abcd","backup_id":"20260102T030405.001Z-0123abcd"`))
	f.Add(hostile(`"name":"f"`, `"name":"../other"`))
	f.Add(hostile(`"format":1`, `"format":2`))
	f.Add(hostile(`"page_size":512`, `"page_size":511`))
	f.Add(hostile(`"page_count":1,"image_bytes"`, `"page_count":4294967296,"image_bytes"`))
	f.Add(hostile(`"page_count":1,"stored_bytes"`, `"page_count":131073,"stored_bytes"`))
	f.Add(hostile(`"index":0`, `"index":1`))
	f.Add(hostile(`"chunks"`, `"page_index":{"stored_bytes":64,"stored_sha256":"`+sha64+`"},"chunks"`))
	f.Add([]byte(`{"body":null,"mac":""}`))
	f.Add([]byte("not json"))

	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		authErr := key.AuthenticateManifest(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedFormat) {
				t.Fatalf("ParseManifest error is neither corrupt nor unsupported: %v", err)
			}
			return
		}
		if authErr != nil && !errors.Is(authErr, ErrCorrupt) {
			t.Fatalf("AuthenticateManifest error is not corrupt: %v", authErr)
		}

		// Whatever parses is safe to act on.
		if ValidateBackupID(m.BackupID) != nil || ValidateDatabaseName(m.Database.Name) != nil {
			t.Fatalf("accepted backup id %q, database %q", m.BackupID, m.Database.Name)
		}
		if m.PageSize < 512 || m.PageSize > 65536 || m.PageSize&(m.PageSize-1) != 0 {
			t.Fatalf("accepted page size %d", m.PageSize)
		}
		if m.PageCount < 1 || m.ImageBytes != m.PageCount*int64(m.PageSize) {
			t.Fatalf("accepted %d pages, %d image bytes", m.PageCount, m.ImageBytes)
		}
		var pages int64
		for i, c := range m.Chunks {
			if c.Index != i || c.PageCount < 0 || int64(c.PageCount)*int64(m.PageSize) > MaxChunkBytes || c.StoredBytes < 0 || c.StoredBytes > MaxChunkBytes {
				t.Fatalf("accepted chunk %d: %+v", i, c)
			}
			pages += int64(c.PageCount)
		}
		if m.Type == BackupFull && pages != m.PageCount {
			t.Fatalf("accepted a full backup of %d pages whose chunks hold %d", m.PageCount, pages)
		}
		if pages > m.PageCount {
			t.Fatalf("accepted a backup of %d pages whose chunks hold %d", m.PageCount, pages)
		}
		if m.PageIndex != nil && len(m.PageIndex.StoredSHA256) != 64 {
			t.Fatalf("accepted page index %+v", m.PageIndex)
		}
		if m.Type != BackupFull && CompareBackupIDs(m.Parent, m.BackupID) >= 0 {
			t.Fatalf("accepted parent %q of %q", m.Parent, m.BackupID)
		}

		// What parses can be sealed again and reads back the same.
		resealed, err := key.SealManifest(m)
		if err != nil {
			t.Fatalf("a parsed manifest cannot be sealed again: %v", err)
		}
		m2, err := ParseManifest(resealed)
		if err != nil {
			t.Fatalf("a resealed manifest does not parse: %v", err)
		}
		if err := key.AuthenticateManifest(resealed); err != nil {
			t.Fatalf("a resealed manifest does not authenticate: %v", err)
		}
		j1, _ := json.Marshal(m)
		j2, _ := json.Marshal(m2)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("manifest changed in a seal/parse round trip:\n%s\n%s", j1, j2)
		}
	})
}

func FuzzDecodePayload(f *testing.F) {
	f.Add(payload(512, 1, 2, 3), 512)
	f.Add(payload(4096, 7), 4096)
	f.Add(payload(512), 512)
	f.Add(payload(512, 1, 2)[:20], 512)
	f.Add(payload(512, 2, 1), 512)
	f.Add(AppendPayloadHeader(nil, 512, []uint32{1, 2, 3, 4, 5, 6}), 512)
	f.Add([]byte{0, 0, 2, 0, 0xff, 0xff, 0xff, 0xff}, 512)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}, 0)

	f.Fuzz(func(t *testing.T, data []byte, pageSize int) {
		set, err := DecodePayload(data, pageSize)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error is not corrupt: %v", err)
			}
			return
		}
		if set.PageSize != pageSize || len(set.Data) != len(set.Pages)*pageSize {
			t.Fatalf("page size %d, %d pages, %d data bytes", set.PageSize, len(set.Pages), len(set.Data))
		}
		prev := uint32(0)
		for i, p := range set.Pages {
			if p <= prev {
				t.Fatalf("page numbers not increasing at %d: %v", i, set.Pages)
			}
			prev = p
			if len(set.Page(i)) != pageSize {
				t.Fatalf("page %d has %d bytes", i, len(set.Page(i)))
			}
		}
		again := append(AppendPayloadHeader(nil, set.PageSize, set.Pages), set.Data...)
		if !bytes.Equal(again, data) {
			t.Fatal("payload does not re-encode to the same bytes")
		}
	})
}

func FuzzOpenChunk(f *testing.F) {
	key := fuzzDataKey(f)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		f.Fatal(err)
	}
	compressed := enc.EncodeAll(payload(512, 1, 2, 3), nil)
	enc.Close()
	sealed := key.SealChunk(nil, compressed, testBackupID, 0)
	f.Add(sealed, testBackupID, 0)
	f.Add(sealed, testBackupID, 1)
	f.Add(sealed, "20260102T030405Z-0123abce", 0)
	f.Add(sealed[:len(sealed)-1], testBackupID, 0)
	f.Add(key.SealChunk(nil, nil, testBackupID, 7), testBackupID, 7)
	f.Add(key.SealChunk(nil, []byte("not zstd"), testBackupID, 2), testBackupID, 2)
	f.Add([]byte(chunkMagic), testBackupID, 0)
	f.Add([]byte{}, "", -1)

	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxChunkBytes))
	if err != nil {
		f.Fatal(err)
	}
	defer dec.Close()

	f.Fuzz(func(t *testing.T, object []byte, backupID string, index int) {
		tag := chunkTag(object)
		opened, err := key.OpenChunk(nil, object, backupID, index)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error is not corrupt: %v", err)
			}
			return
		}
		if !isChunkObject(object) || len(tag) != chunkTagSize {
			t.Fatal("opened an object without a chunk header")
		}
		// Any chunk that opens was sealed by this key for exactly this
		// position, so it must round-trip.
		if !key.equalChunkMAC(backupID, index, opened, tag) {
			t.Fatal("opened a chunk whose tag does not match its contents")
		}
		again, err := key.OpenChunk(nil, key.SealChunk(nil, opened, backupID, index), backupID, index)
		if err != nil || !bytes.Equal(again, opened) {
			t.Fatalf("re-sealed chunk does not open to the same bytes: %v", err)
		}
		// The rest of the restore pipeline must not panic on it either.
		if p, err := dec.DecodeAll(opened, nil); err == nil {
			_, _ = DecodePayload(p, 512)
		}
	})
}

func FuzzReadKeyEnvelope(f *testing.F) {
	ctx := context.Background()
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	var raw [32]byte
	copy(raw[:], strings.Repeat("k", 32))
	keeper := localsecrets.NewKeeper(raw)
	defer keeper.Close()

	_, env, err := NewDataKey(ctx, keeper, "keyfile sha256:0011223344556677", sampleManifest(KeyEnvelope{}).StartedAt)
	if err != nil {
		f.Fatal(err)
	}
	valid, err := marshalEnvelope(env)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(bytes.Replace(valid, []byte(`"format": 1`), []byte(`"format": 2`), 1))
	f.Add(bytes.Replace(valid, []byte(keyAlgorithm), []byte("rot13"), 1))
	f.Add([]byte(`{"format":1,"algorithm":"hkdf-sha256/aes-256-gcm/hmac-sha256","wrapped":"AAAA"}`))
	f.Add([]byte(`{"surprise": true}`))
	f.Add([]byte(`{"created_at": "not a time"}`))
	f.Add([]byte(`null`))
	f.Add([]byte{})

	key := KeyEnvelopeKey("finance", testBackupID)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := bucket.WriteAll(ctx, key, data, nil); err != nil {
			t.Fatal(err)
		}
		got, err := ReadKeyEnvelope(ctx, bucket, "finance", testBackupID)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error is not corrupt: %v", err)
			}
			return
		}
		// Opening never panics, and fails only in the documented ways.
		if _, err := OpenDataKey(ctx, keeper, got); err != nil &&
			!errors.Is(err, ErrWrongKey) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedFormat) {
			t.Fatalf("OpenDataKey error of no documented kind: %v", err)
		}
		// What reads can be written and reads back the same.
		if err := WriteKeyEnvelope(ctx, bucket, "finance", testBackupID, got); err != nil {
			t.Fatalf("an envelope that was read cannot be written: %v", err)
		}
		again, err := ReadKeyEnvelope(ctx, bucket, "finance", testBackupID)
		if err != nil {
			t.Fatalf("a rewritten envelope does not read: %v", err)
		}
		a, _ := marshalEnvelope(got)
		b, _ := marshalEnvelope(again)
		if !bytes.Equal(a, b) {
			t.Fatalf("envelope changed in a write/read round trip:\n%s\n%s", a, b)
		}
	})
}

func FuzzOpenPageIndex(f *testing.F) {
	ctx := context.Background()
	key := fuzzDataKey(f)
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	const pages = 3
	w, err := NewPageIndexWriter(ctx, bucket, key, "finance", testBackupID, 512, pages)
	if err != nil {
		f.Fatal(err)
	}
	for n := uint64(1); n <= pages; n++ {
		if err := w.Add(pageHashOf(n)); err != nil {
			f.Fatal(err)
		}
	}
	if _, _, err := w.Close(); err != nil {
		f.Fatal(err)
	}
	valid, err := bucket.ReadAll(ctx, PageIndexKey("finance", testBackupID))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(append(bytes.Clone(valid), 0))
	f.Add(valid[:pageIndexHdrSize])
	f.Add([]byte(pageIndexMagic + "\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x03\xff\xff\xff\xff"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		if err := bucket.WriteAll(ctx, PageIndexKey("finance", testBackupID), data, nil); err != nil {
			t.Fatal(err)
		}
		// The manifest records the hash of whatever is stored, so that only
		// the index's own structure and authentication are under test.
		sum := sha256.Sum256(data)
		m := &Manifest{
			BackupID: testBackupID, Database: DatabaseIdentity{Name: "finance"}, PageSize: 512, PageCount: pages,
			PageIndex: &ObjectRef{StoredBytes: int64(len(data)), StoredSHA256: hex.EncodeToString(sum[:])},
		}
		r, err := OpenPageIndex(ctx, bucket, key, m)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error is not corrupt: %v", err)
			}
			return
		}
		defer r.Close()
		var read uint64
		for {
			h, ok, err := r.Next()
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error is not corrupt: %v", err)
				}
				return
			}
			if !ok {
				break
			}
			read++
			// Only an index this key wrote can be read to the end, and it
			// holds what was written.
			if h != pageHashOf(read) {
				t.Fatalf("hash %d is %x", read, h)
			}
		}
		if read != pages {
			t.Fatalf("read %d hashes of %d", read, pages)
		}
	})
}

package repository

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/secrets"
	"gocloud.dev/secrets/localsecrets"
)

// testBackupID is a well-formed backup id used wherever the value does not matter.
const testBackupID = "20260102T030405Z-0123abcd"

// bucketKinds lists every bucket the storage tests run against: the same test
// body must pass on each.
var bucketKinds = []struct {
	name string
	open func(t *testing.T) *blob.Bucket
}{
	{"memblob", func(t *testing.T) *blob.Bucket {
		b := memblob.OpenBucket(nil)
		t.Cleanup(func() { b.Close() })
		return b
	}},
	{"fileblob", func(t *testing.T) *blob.Bucket {
		return openFileBucket(t, &fileblob.Options{CreateDir: true, NoTempDir: true})
	}},
	// What a file:// destination from the config opens: no metadata sidecars.
	{"fileblob without metadata", func(t *testing.T) *blob.Bucket {
		return openFileBucket(t, &fileblob.Options{CreateDir: true, NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	}},
}

func openFileBucket(t *testing.T, opts *fileblob.Options) *blob.Bucket {
	t.Helper()
	b, err := fileblob.OpenBucket(filepath.Join(t.TempDir(), "store"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// newTestKeeper returns a local keeper with a fresh random key.
func newTestKeeper(t testing.TB) *secrets.Keeper {
	t.Helper()
	k, err := localsecrets.NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	keeper := localsecrets.NewKeeper(k)
	t.Cleanup(func() { keeper.Close() })
	return keeper
}

// newTestDataKey returns a data key wrapped by keeper, as a new backup makes one.
func newTestDataKey(t testing.TB, keeper SecretsKeeper) (*DataKey, KeyEnvelope) {
	t.Helper()
	key, env, err := NewDataKey(context.Background(), keeper, "test keeper", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return key, env
}

// testImage is a database image made of pages whose contents say which page
// they are and which version of the image they belong to, so that a page
// restored to the wrong place or from the wrong backup is easy to spot.
type testImage struct {
	pageSize int
	data     []byte
}

func newTestImage(pageCount, pageSize int, version string) *testImage {
	img := &testImage{pageSize: pageSize, data: make([]byte, 0, pageCount*pageSize)}
	for n := 1; n <= pageCount; n++ {
		img.data = append(img.data, pageContents(n, pageSize, version)...)
	}
	return img
}

func pageContents(n, pageSize int, version string) []byte {
	stamp := fmt.Sprintf("[page %06d of image %s]", n, version)
	return []byte(strings.Repeat(stamp, pageSize/len(stamp)+1)[:pageSize])
}

func (img *testImage) pageCount() int { return len(img.data) / img.pageSize }

func (img *testImage) page(n int) []byte {
	return img.data[(n-1)*img.pageSize : n*img.pageSize]
}

func (img *testImage) setPage(n int, version string) {
	copy(img.page(n), pageContents(n, img.pageSize, version))
}

func (img *testImage) imageHash() string {
	ih := NewImageHasher(img.pageSize)
	ih.AddPages(img.data)
	return ih.RawSum()
}

// digest is the image hash as RestoreImage returns it.
func (img *testImage) digest() string {
	ih := NewImageHasher(img.pageSize)
	ih.AddPages(img.data)
	return ih.Sum()
}

// uploadImage writes img as chunks of pagesPerChunk pages through a
// ChunkWriter, the way the SQLite backup activity does, and returns what
// Close returns.
func uploadImage(t *testing.T, opts ChunkWriterOptions, img *testImage, pagesPerChunk int) ([]ChunkRef, int) {
	t.Helper()
	all := make([]int, img.pageCount())
	for i := range all {
		all[i] = i + 1
	}
	return uploadPages(t, opts, img, all, pagesPerChunk)
}

// uploadPages writes the given pages of img (page numbers in increasing
// order) as chunks of up to pagesPerChunk pages, as a full backup (every
// page) or an incremental one (the changed pages) does.
func uploadPages(t *testing.T, opts ChunkWriterOptions, img *testImage, pages []int, pagesPerChunk int) ([]ChunkRef, int) {
	t.Helper()
	if opts.Workers == 0 {
		opts.Workers = 2
	}
	opts.PayloadBytes = 8 + 4*pagesPerChunk + pagesPerChunk*img.pageSize
	cw, err := NewChunkWriter(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for index := 0; len(pages) > 0; index++ {
		n := min(pagesPerChunk, len(pages))
		numbers := make([]uint32, n)
		for i, p := range pages[:n] {
			numbers[i] = uint32(p)
		}
		buf, err := cw.Buffer()
		if err != nil {
			t.Fatal(err)
		}
		buf = AppendPayloadHeader(buf, img.pageSize, numbers)
		for _, p := range pages[:n] {
			buf = append(buf, img.page(p)...)
		}
		if err := cw.Submit(index, numbers[0], n, buf); err != nil {
			t.Fatal(err)
		}
		pages = pages[n:]
	}
	refs, reused, err := cw.Close()
	if err != nil {
		t.Fatalf("close chunk writer: %v", err)
	}
	return refs, reused
}

// fullManifest describes a full backup of img stored as refs.
func fullManifest(database, backupID string, img *testImage, env KeyEnvelope, refs []ChunkRef) *Manifest {
	m := &Manifest{
		Format:   FormatVersion,
		BackupID: backupID,
		Type:     BackupFull,
		Database: DatabaseIdentity{
			Name: database, Engine: "sqlite", Path: "/srv/" + database + ".db", Host: "db1",
			JournalMode: "wal", SQLiteVersion: "3.50.0", ApplicationID: 42, UserVersion: 7,
		},
		PageSize:     img.pageSize,
		PageCount:    int64(img.pageCount()),
		ImageBytes:   int64(len(img.data)),
		ImageHash:    img.imageHash(),
		Compression:  CompressionDefault,
		Key:          env,
		Chunks:       refs,
		Tables:       []TableRows{{Name: "accounts", Rows: 2}, {Name: "entries", Rows: 1234}},
		SchemaSHA256: strings.Repeat("ab", 32),
		StartedAt:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		SnapshotAt:   time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC),
		FinishedAt:   time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC),
		Tool:         "bulwark-test",
	}
	for _, r := range refs {
		m.StoredBytes += r.StoredBytes
	}
	return m
}

// sampleManifest is a consistent manifest of a 300-page image in five
// chunks, without any objects behind it: for tests of the manifest alone.
func sampleManifest(env KeyEnvelope) *Manifest {
	img := newTestImage(300, 4096, "v1")
	var refs []ChunkRef
	for i, first := 0, 1; first <= 300; i, first = i+1, first+64 {
		n := min(64, 300-first+1)
		refs = append(refs, ChunkRef{Index: i, FirstPage: uint32(first), PageCount: n, StoredBytes: 1000 + int64(i), StoredSHA256: strings.Repeat(fmt.Sprintf("%02x", i), 32)})
	}
	return fullManifest("finance", testBackupID, img, env, refs)
}

func mustSeal(t testing.TB, key *DataKey, m *Manifest) []byte {
	t.Helper()
	data, err := key.SealManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func wantErrorIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want one that is %q", err, target)
	}
}

// --- chunks -------------------------------------------------------------

func TestChunkSealing(t *testing.T) {
	keeper := newTestKeeper(t)
	key, _ := newTestDataKey(t, keeper)
	compressed := []byte("compressed payload bytes, contents do not matter to sealing")
	object := key.SealChunk(nil, compressed, testBackupID, 3)

	t.Run("a sealed chunk opens to the same bytes", func(t *testing.T) {
		got, err := key.OpenChunk(nil, object, testBackupID, 3)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, compressed) {
			t.Fatalf("opened %q, sealed %q", got, compressed)
		}
		if !isChunkObject(object) {
			t.Fatal("sealed object does not start with the chunk magic")
		}
	})

	t.Run("sealing appends to dst and opening appends to dst", func(t *testing.T) {
		sealed := key.SealChunk([]byte("prefix"), compressed, testBackupID, 3)
		if !bytes.HasPrefix(sealed, []byte("prefix")) {
			t.Fatal("SealChunk overwrote dst")
		}
		got, err := key.OpenChunk([]byte("head:"), sealed[len("prefix"):], testBackupID, 3)
		if err != nil {
			t.Fatal(err)
		}
		if want := "head:" + string(compressed); string(got) != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})

	t.Run("sealing the same bytes twice gives different objects (random nonce)", func(t *testing.T) {
		again := key.SealChunk(nil, compressed, testBackupID, 3)
		if bytes.Equal(again, object) {
			t.Fatal("two seals of the same payload are identical; the nonce is not random")
		}
	})

	t.Run("an empty payload round-trips", func(t *testing.T) {
		obj := key.SealChunk(nil, nil, testBackupID, 0)
		got, err := key.OpenChunk(nil, obj, testBackupID, 0)
		if err != nil || len(got) != 0 {
			t.Fatalf("got %q, %v", got, err)
		}
	})

	t.Run("a chunk opened as part of another backup fails", func(t *testing.T) {
		_, err := key.OpenChunk(nil, object, "20260102T030405Z-0123abce", 3)
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("a chunk opened at another index fails", func(t *testing.T) {
		for _, index := range []int{0, 2, 4, -3, 3 + 1<<20} {
			_, err := key.OpenChunk(nil, object, testBackupID, index)
			wantErrorIs(t, err, ErrCorrupt)
		}
	})

	t.Run("a chunk opened with another data key fails", func(t *testing.T) {
		other, _ := newTestDataKey(t, keeper)
		_, err := other.OpenChunk(nil, object, testBackupID, 3)
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("a flipped bit anywhere in the object fails", func(t *testing.T) {
		for i := range object {
			for bit := range 8 {
				altered := bytes.Clone(object)
				altered[i] ^= 1 << bit
				if _, err := key.OpenChunk(nil, altered, testBackupID, 3); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("flipping bit %d of byte %d: got %v, want ErrCorrupt", bit, i, err)
				}
			}
		}
	})

	t.Run("a truncated object fails", func(t *testing.T) {
		for n := range len(object) {
			if _, err := key.OpenChunk(nil, object[:n], testBackupID, 3); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("object truncated to %d bytes: got %v, want ErrCorrupt", n, err)
			}
		}
	})

	t.Run("an object with bytes appended fails", func(t *testing.T) {
		_, err := key.OpenChunk(nil, append(bytes.Clone(object), 0), testBackupID, 3)
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("objects that are not chunks fail without panicking", func(t *testing.T) {
		manifest := mustSeal(t, key, sampleManifest(KeyEnvelope{}))
		for name, obj := range map[string][]byte{
			"nil":                nil,
			"empty":              {},
			"magic only":         []byte(chunkMagic),
			"magic and nonce":    append([]byte(chunkMagic), make([]byte, chunkNonceSize)...),
			"a manifest":         manifest,
			"zeros":              make([]byte, 4096),
			"other magic":        append([]byte("BWC2"), object[4:]...),
			"sqlite file header": append([]byte("SQLite format 3\x00"), make([]byte, 100)...),
		} {
			if _, err := key.OpenChunk(nil, obj, testBackupID, 3); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: got %v, want ErrCorrupt", name, err)
			}
		}
	})
}

// --- payloads -----------------------------------------------------------

// payload builds a page-set payload with the given page numbers, each page
// filled with its own number.
func payload(pageSize int, pages ...uint32) []byte {
	b := AppendPayloadHeader(nil, pageSize, pages)
	for _, p := range pages {
		b = append(b, bytes.Repeat([]byte{byte(p)}, pageSize)...)
	}
	return b
}

func TestDecodePayload(t *testing.T) {
	t.Run("a payload built with AppendPayloadHeader decodes to its pages", func(t *testing.T) {
		p := payload(512, 1, 2, 3, 7, 200)
		set, err := DecodePayload(p, 512)
		if err != nil {
			t.Fatal(err)
		}
		if set.PageSize != 512 || !reflect.DeepEqual(set.Pages, []uint32{1, 2, 3, 7, 200}) {
			t.Fatalf("got page size %d pages %v", set.PageSize, set.Pages)
		}
		for i, n := range set.Pages {
			if !bytes.Equal(set.Page(i), bytes.Repeat([]byte{byte(n)}, 512)) {
				t.Fatalf("page %d (number %d) has the wrong contents", i, n)
			}
		}
	})

	t.Run("an empty page set decodes", func(t *testing.T) {
		set, err := DecodePayload(payload(4096), 4096)
		if err != nil || len(set.Pages) != 0 || len(set.Data) != 0 {
			t.Fatalf("got %+v, %v", set, err)
		}
	})

	t.Run("the largest page number decodes", func(t *testing.T) {
		set, err := DecodePayload(payload(512, 1, 0xffffffff), 512)
		if err != nil || set.Pages[1] != 0xffffffff {
			t.Fatalf("got %v, %v", set.Pages, err)
		}
	})

	valid := payload(512, 4, 5, 9)
	withCount := func(count uint32) []byte {
		b := bytes.Clone(valid)
		b[4], b[5], b[6], b[7] = byte(count>>24), byte(count>>16), byte(count>>8), byte(count)
		return b
	}
	for _, tc := range []struct {
		name     string
		payload  []byte
		pageSize int
	}{
		{"nil payload is rejected", nil, 512},
		{"a payload shorter than its header is rejected", valid[:7], 512},
		{"a page size other than the manifest's is rejected", valid, 1024},
		{"a zero page size in the manifest is rejected", valid, 0},
		{"a negative page size in the manifest is rejected", valid, -512},
		{"a count larger than the data is rejected", withCount(4), 512},
		{"a count of 2^32-1 is rejected", withCount(0xffffffff), 512},
		{"a count that fits page numbers but not page data is rejected", append(AppendPayloadHeader(nil, 512, []uint32{1, 2, 3}), make([]byte, 100)...), 512},
		{"a count of zero with page data is rejected", withCount(0), 512},
		{"one byte of page data too many is rejected", append(bytes.Clone(valid), 0), 512},
		{"one byte of page data missing is rejected", valid[:len(valid)-1], 512},
		{"a whole page missing is rejected", valid[:len(valid)-512], 512},
		{"page number 0 is rejected", payload(512, 0, 1), 512},
		{"repeated page numbers are rejected", payload(512, 3, 3), 512},
		{"decreasing page numbers are rejected", payload(512, 5, 4), 512},
		{"page numbers that wrap around are rejected", payload(512, 0xffffffff, 1), 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodePayload(tc.payload, tc.pageSize)
			wantErrorIs(t, err, ErrCorrupt)
		})
	}
}

// --- manifests ----------------------------------------------------------

func TestManifestSealing(t *testing.T) {
	keeper := newTestKeeper(t)
	key, env := newTestDataKey(t, keeper)
	m := sampleManifest(env)
	data := mustSeal(t, key, m)

	t.Run("a sealed manifest parses to the same manifest and authenticates", func(t *testing.T) {
		got, err := ParseManifest(data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("parsed manifest differs:\n got %+v\nwant %+v", got, m)
		}
		if err := key.AuthenticateManifest(data); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("sealing is deterministic", func(t *testing.T) {
		if again := mustSeal(t, key, m); !bytes.Equal(again, data) {
			t.Fatal("sealing the same manifest twice gave different bytes")
		}
	})

	t.Run("a manifest sealed with another data key does not authenticate", func(t *testing.T) {
		other, _ := newTestDataKey(t, keeper)
		err := other.AuthenticateManifest(data)
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("altering any byte of the body makes authentication fail", func(t *testing.T) {
		var f manifestFile
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		start := bytes.Index(data, f.Body)
		if start < 0 {
			t.Fatal("body bytes not found in the stored manifest")
		}
		for i := start; i < start+len(f.Body); i++ {
			altered := bytes.Clone(data)
			altered[i] ^= 0x01
			if err := key.AuthenticateManifest(altered); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("altering byte %d (%q) of the manifest: got %v, want ErrCorrupt", i, data[i], err)
			}
		}
	})

	for _, tc := range []struct{ name, old, new string }{
		{"changing a table's row count", `"rows": 1234`, `"rows": 1235`},
		{"changing the image hash", m.ImageHash, strings.Repeat("0", 64)},
		{"changing a chunk's object hash", m.Chunks[2].StoredSHA256, strings.Repeat("f", 64)},
		{"changing the tool", `"tool": "bulwark-test"`, `"tool": "bulwark-evil"`},
	} {
		t.Run(tc.name+" parses but does not authenticate", func(t *testing.T) {
			if !bytes.Contains(data, []byte(tc.old)) {
				t.Fatalf("stored manifest does not contain %q", tc.old)
			}
			altered := bytes.Replace(data, []byte(tc.old), []byte(tc.new), 1)
			if _, err := ParseManifest(altered); err != nil {
				t.Fatalf("altered manifest should still be well-formed: %v", err)
			}
			wantErrorIs(t, key.AuthenticateManifest(altered), ErrCorrupt)
		})
	}

	t.Run("a missing, empty or non-hex MAC does not authenticate", func(t *testing.T) {
		var f manifestFile
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		for _, mac := range []string{"", "zz", f.MAC[:len(f.MAC)-2], f.MAC + "00"} {
			altered, err := json.Marshal(manifestFile{Body: f.Body, MAC: mac})
			if err != nil {
				t.Fatal(err)
			}
			if err := key.AuthenticateManifest(altered); !errors.Is(err, ErrCorrupt) {
				t.Errorf("MAC %q: got %v, want ErrCorrupt", mac, err)
			}
		}
	})

	t.Run("a manifest that is not JSON does not authenticate", func(t *testing.T) {
		wantErrorIs(t, key.AuthenticateManifest([]byte("not json")), ErrCorrupt)
	})

	t.Run("a manifest of a newer format is unsupported", func(t *testing.T) {
		newer := sampleManifest(env)
		newer.Format = FormatVersion + 1
		_, err := ParseManifest(mustSeal(t, key, newer))
		wantErrorIs(t, err, ErrUnsupportedFormat)
		if err != nil && !strings.Contains(err.Error(), "upgrade") {
			t.Errorf("error %q does not say to upgrade", err)
		}
	})

	t.Run("an incremental backup need not hold every page", func(t *testing.T) {
		inc := sampleManifest(env)
		inc.BackupID, inc.Type, inc.Parent = "20260103T000000Z-00000001", BackupIncremental, testBackupID
		inc.Chunks = inc.Chunks[:1]
		if _, err := ParseManifest(mustSeal(t, key, inc)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestParseManifestRejectsHostileManifests(t *testing.T) {
	keeper := newTestKeeper(t)
	key, env := newTestDataKey(t, keeper)

	for _, tc := range []struct {
		name   string
		mutate func(m *Manifest)
	}{
		{"a backup id with path traversal", func(m *Manifest) { m.BackupID = "../../x" }},
		{"a backup id with a slash", func(m *Manifest) { m.BackupID = testBackupID + "/../other" }},
		{"an empty backup id", func(m *Manifest) { m.BackupID = "" }},
		{"a database name reaching into another database", func(m *Manifest) { m.Database.Name = "../other" }},
		{"a database name with a slash", func(m *Manifest) { m.Database.Name = "a/b" }},
		{"an empty database name", func(m *Manifest) { m.Database.Name = "" }},
		{"a page size that is not a power of two", func(m *Manifest) { m.PageSize, m.ImageBytes = 4095, m.PageCount*4095 }},
		{"a page size below 512", func(m *Manifest) { m.PageSize, m.ImageBytes = 256, m.PageCount*256 }},
		{"a page size above 65536", func(m *Manifest) { m.PageSize, m.ImageBytes = 1<<17, m.PageCount<<17 }},
		{"an absurd page size", func(m *Manifest) { m.PageSize, m.ImageBytes = 1<<40, m.PageCount<<40 }},
		{"a zero page size", func(m *Manifest) { m.PageSize, m.ImageBytes = 0, 0 }},
		{"a negative page size", func(m *Manifest) { m.PageSize, m.ImageBytes = -4096, -4096*m.PageCount }},
		{"a page count of zero", func(m *Manifest) { m.PageCount, m.ImageBytes = 0, 0 }},
		{"a negative page count", func(m *Manifest) { m.PageCount, m.ImageBytes = -1, -4096 }},
		{"a page count above 2^32", func(m *Manifest) { m.PageCount, m.ImageBytes = 1<<32+1, (1<<32+1)*4096 }},
		{"a page count of exactly 2^32", func(m *Manifest) { m.PageCount, m.ImageBytes = 1<<32, (1<<32)*4096 }},
		{"image bytes that are not page count times page size", func(m *Manifest) { m.ImageBytes++ }},
		{"an image hash that is not hex", func(m *Manifest) { m.ImageHash = strings.Repeat("zz", 32) }},
		{"an image hash of the wrong length", func(m *Manifest) { m.ImageHash = m.ImageHash[:62] }},
		{"chunk indices out of order", func(m *Manifest) { m.Chunks[1].Index, m.Chunks[2].Index = 2, 1 }},
		{"a repeated chunk index", func(m *Manifest) { m.Chunks[2].Index = 1 }},
		{"chunk indices not starting at zero", func(m *Manifest) {
			for i := range m.Chunks {
				m.Chunks[i].Index++
			}
		}},
		{"a chunk with more pages than fit in MaxChunkBytes", func(m *Manifest) {
			m.Chunks[0].PageCount = MaxChunkBytes/m.PageSize + 1
			m.PageCount = int64(m.Chunks[0].PageCount + 300 - 64)
			m.ImageBytes = m.PageCount * int64(m.PageSize)
		}},
		{"a chunk with a negative page count", func(m *Manifest) { m.Chunks[0].PageCount, m.Chunks[1].PageCount = -1, 129 }},
		{"a chunk larger than MaxChunkBytes", func(m *Manifest) { m.Chunks[0].StoredBytes = MaxChunkBytes + 1 }},
		{"a chunk with a negative size", func(m *Manifest) { m.Chunks[0].StoredBytes = -1 }},
		{"a chunk without an object hash", func(m *Manifest) { m.Chunks[3].StoredSHA256 = "" }},
		{"a full backup whose chunks miss the last pages", func(m *Manifest) { m.Chunks = m.Chunks[:len(m.Chunks)-1] }},
		{"a full backup whose chunks hold more pages than the image", func(m *Manifest) { m.Chunks[4].PageCount++ }},
		{"a full backup without chunks", func(m *Manifest) { m.Chunks = nil }},
		{"a full backup with a parent", func(m *Manifest) { m.Parent = "20250101T000000Z-00000000" }},
		{"an incremental backup that is its own parent", func(m *Manifest) { m.Type, m.Parent = BackupIncremental, m.BackupID }},
		{"an incremental backup whose parent is newer", func(m *Manifest) { m.Type, m.Parent = BackupIncremental, "20270101T000000Z-00000000" }},
		{"a differential backup whose parent is newer", func(m *Manifest) { m.Type, m.Parent = BackupDifferential, "20270101T000000Z-00000000" }},
		{"an incremental backup without a parent", func(m *Manifest) { m.Type = BackupIncremental }},
		{"an incremental backup whose parent has path traversal", func(m *Manifest) { m.Type, m.Parent = BackupIncremental, "../../x" }},
		{"an unknown backup type", func(m *Manifest) { m.Type = "snapshot" }},
		{"an empty backup type", func(m *Manifest) { m.Type = "" }},
	} {
		t.Run(tc.name+" is rejected", func(t *testing.T) {
			m := sampleManifest(env)
			tc.mutate(m)
			_, err := ParseManifest(mustSeal(t, key, m))
			wantErrorIs(t, err, ErrCorrupt)
		})
	}

	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"a manifest that is not JSON", []byte("<html>not found</html>")},
		{"an empty object", []byte("{}")},
		{"a null body", []byte(`{"body": null, "mac": ""}`)},
		{"a body that is not an object", []byte(`{"body": [1, 2, 3], "mac": ""}`)},
		{"a body with a page count that is not a number", []byte(`{"body": {"page_count": "lots"}, "mac": ""}`)},
		{"a page count above int64", []byte(`{"body": {"page_count": 99999999999999999999}, "mac": ""}`)},
		{"an empty file", nil},
		{"a manifest larger than MaxChunkBytes", append(append([]byte(`{"body":{},"mac":"`), bytes.Repeat([]byte("a"), MaxChunkBytes)...), `"}`...)},
	} {
		t.Run(tc.name+" is rejected", func(t *testing.T) {
			_, err := ParseManifest(tc.data)
			wantErrorIs(t, err, ErrCorrupt)
		})
	}
}

// --- key envelopes ------------------------------------------------------

func TestKeyEnvelopes(t *testing.T) {
	ctx := context.Background()
	keeper := newTestKeeper(t)
	key, env := newTestDataKey(t, keeper)

	t.Run("the envelope records the algorithm, keeper and format but not the key", func(t *testing.T) {
		if env.Format != FormatVersion || env.Algorithm != keyAlgorithm || env.Keeper != "test keeper" {
			t.Fatalf("envelope %+v", env)
		}
		if len(env.Wrapped) <= 32 {
			t.Fatalf("wrapped key has %d bytes; it should be ciphertext longer than the 32-byte key", len(env.Wrapped))
		}
	})

	t.Run("the same keeper opens the envelope to the same data key", func(t *testing.T) {
		opened, err := OpenDataKey(ctx, keeper, env)
		if err != nil {
			t.Fatal(err)
		}
		object := key.SealChunk(nil, []byte("pages"), testBackupID, 0)
		if got, err := opened.OpenChunk(nil, object, testBackupID, 0); err != nil || string(got) != "pages" {
			t.Fatalf("opened key cannot open a chunk sealed by the original: %q, %v", got, err)
		}
		manifest := mustSeal(t, key, sampleManifest(env))
		if err := opened.AuthenticateManifest(manifest); err != nil {
			t.Fatalf("opened key cannot authenticate a manifest sealed by the original: %v", err)
		}
	})

	t.Run("another keeper cannot open the envelope", func(t *testing.T) {
		_, err := OpenDataKey(ctx, newTestKeeper(t), env)
		wantErrorIs(t, err, ErrWrongKey)
		if !strings.Contains(err.Error(), "test keeper") {
			t.Errorf("error %q does not name the keeper the backup was written with", err)
		}
	})

	t.Run("an envelope with an unknown algorithm is corrupt", func(t *testing.T) {
		bad := env
		bad.Algorithm = "rot13"
		_, err := OpenDataKey(ctx, keeper, bad)
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("an envelope of a newer format is unsupported", func(t *testing.T) {
		bad := env
		bad.Format = FormatVersion + 1
		_, err := OpenDataKey(ctx, keeper, bad)
		wantErrorIs(t, err, ErrUnsupportedFormat)
	})

	t.Run("an envelope wrapping a key of the wrong length is corrupt", func(t *testing.T) {
		wrapped, err := keeper.Encrypt(ctx, make([]byte, 16))
		if err != nil {
			t.Fatal(err)
		}
		bad := env
		bad.Wrapped = wrapped
		_, err = OpenDataKey(ctx, keeper, bad)
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("an envelope with altered ciphertext is the wrong key", func(t *testing.T) {
		bad := env
		bad.Wrapped = bytes.Clone(env.Wrapped)
		bad.Wrapped[len(bad.Wrapped)-1] ^= 1
		_, err := OpenDataKey(ctx, keeper, bad)
		wantErrorIs(t, err, ErrWrongKey)
	})

	for _, kind := range bucketKinds {
		t.Run("on "+kind.name, func(t *testing.T) {
			bucket := kind.open(t)

			t.Run("a stored envelope reads back unchanged", func(t *testing.T) {
				if err := WriteKeyEnvelope(ctx, bucket, "finance", testBackupID, env); err != nil {
					t.Fatal(err)
				}
				got, err := ReadKeyEnvelope(ctx, bucket, "finance", testBackupID)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, env) {
					t.Fatalf("read %+v, wrote %+v", got, env)
				}
			})

			t.Run("a missing envelope is not found", func(t *testing.T) {
				_, err := ReadKeyEnvelope(ctx, bucket, "finance", "20260102T030405Z-ffffffff")
				wantErrorIs(t, err, ErrNotFound)
				if !IsNotFound(err) {
					t.Error("IsNotFound is false for a missing envelope")
				}
			})

			for name, stored := range map[string]string{
				"not JSON":         "wrapped key",
				"an unknown field": `{"format":1,"algorithm":"x","wrapped":"","surprise":true}`,
				"not base64":       `{"format":1,"wrapped":"!!!"}`,
				"a string format":  `{"format":"1"}`,
			} {
				t.Run("an envelope that is "+name+" is corrupt", func(t *testing.T) {
					id := "20260102T030405Z-0000aaaa"
					if err := bucket.WriteAll(ctx, KeyEnvelopeKey("finance", id), []byte(stored), nil); err != nil {
						t.Fatal(err)
					}
					_, err := ReadKeyEnvelope(ctx, bucket, "finance", id)
					wantErrorIs(t, err, ErrCorrupt)
				})
			}
		})
	}
}

// --- backup and restore through storage ---------------------------------

func TestBackupAndRestore(t *testing.T) {
	for _, kind := range bucketKinds {
		t.Run("on "+kind.name, func(t *testing.T) { testBackupAndRestore(t, kind.open) })
	}
}

func testBackupAndRestore(t *testing.T, openBucket func(*testing.T) *blob.Bucket) {
	ctx := context.Background()
	bucket := openBucket(t)
	keeper := newTestKeeper(t)
	const database = "finance"
	const pagesPerChunk = 64
	img := newTestImage(300, 4096, "v1")

	key, env := newTestDataKey(t, keeper)
	if err := WriteKeyEnvelope(ctx, bucket, database, testBackupID, env); err != nil {
		t.Fatal(err)
	}
	refs, reused := uploadImage(t, ChunkWriterOptions{Bucket: bucket, Database: database, BackupID: testBackupID, Key: key, Workers: 3}, img, pagesPerChunk)
	if reused != 0 {
		t.Fatalf("a first attempt re-used %d chunks", reused)
	}
	m := fullManifest(database, testBackupID, img, env, refs)
	if _, err := WriteManifest(ctx, bucket, key, m); err != nil {
		t.Fatal(err)
	}

	t.Run("the chunk writer returns one reference per chunk, in order", func(t *testing.T) {
		if len(refs) != 5 {
			t.Fatalf("got %d chunks, want 5 (300 pages in chunks of 64)", len(refs))
		}
		var pages int
		for i, r := range refs {
			if r.Index != i || r.FirstPage != uint32(1+i*pagesPerChunk) {
				t.Errorf("chunk %d: %+v", i, r)
			}
			pages += r.PageCount
			obj, err := bucket.ReadAll(ctx, ChunkKey(database, testBackupID, i))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(obj)
			if int64(len(obj)) != r.StoredBytes || hex.EncodeToString(sum[:]) != r.StoredSHA256 {
				t.Errorf("chunk %d: stored %d bytes with hash %x, reference says %d bytes with hash %s", i, len(obj), sum, r.StoredBytes, r.StoredSHA256)
			}
			if bytes.Contains(obj, []byte("[page")) {
				t.Errorf("chunk %d holds plaintext page contents", i)
			}
		}
		if pages != img.pageCount() {
			t.Errorf("chunks hold %d pages, image has %d", pages, img.pageCount())
		}
	})

	t.Run("the backup is listed", func(t *testing.T) {
		ids, err := ListBackups(ctx, bucket, database)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ids, []string{testBackupID}) {
			t.Fatalf("listed %v", ids)
		}
	})

	t.Run("the manifest reads back, opens with the keeper, and restores the image", func(t *testing.T) {
		b, err := ReadBackup(ctx, bucket, database, testBackupID)
		if err != nil {
			t.Fatal(err)
		}
		if b.Manifest.ImageHash != img.imageHash() || b.Manifest.PageCount != 300 || len(b.Manifest.Chunks) != 5 {
			t.Fatalf("manifest %+v", b.Manifest)
		}
		restoreKey, err := b.Open(ctx, keeper)
		if err != nil {
			t.Fatal(err)
		}
		// The file already holds something longer than the image: restore
		// must overwrite it and cut it to size.
		path := filepath.Join(t.TempDir(), "restored.db")
		if err := os.WriteFile(path, bytes.Repeat([]byte{0xee}, len(img.data)+10000), 0o600); err != nil {
			t.Fatal(err)
		}
		// Progress is called from the restore's worker goroutines.
		var (
			mu          sync.Mutex
			lastSettled int
			lastBytes   int64
		)
		written := restoreInto(t, bucket, restoreKey, b.Manifest, path, RestoreOptions{Workers: 3, Progress: func(settled int, n int64) {
			mu.Lock()
			defer mu.Unlock()
			lastSettled, lastBytes = max(lastSettled, settled), max(lastBytes, n)
		}})
		assertFileHoldsImage(t, path, img)
		if written != b.Manifest.ImageDigest() {
			t.Errorf("RestoreImage returned hash %s, manifest says %s", written, b.Manifest.ImageDigest())
		}
		if lastSettled != 5 || lastBytes != int64(len(img.data)) {
			t.Errorf("progress ended at %d chunks, %d bytes; want 5 chunks, %d bytes", lastSettled, lastBytes, len(img.data))
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sum, n, err := HashImage(f, img.pageSize)
		if err != nil || sum != b.Manifest.ImageDigest() || n != b.Manifest.ImageBytes {
			t.Fatalf("HashImage = %s, %d, %v; manifest says %s, %d", sum, n, err, b.Manifest.ImageDigest(), b.Manifest.ImageBytes)
		}
	})

	t.Run("a restore resumed at a later chunk completes what an earlier attempt started", func(t *testing.T) {
		// The earlier attempt wrote chunks 0 and 1; the file holds only those.
		path := filepath.Join(t.TempDir(), "resumed.db")
		done := 2 * pagesPerChunk * img.pageSize
		if err := os.WriteFile(path, img.data[:done], 0o600); err != nil {
			t.Fatal(err)
		}
		written := restoreInto(t, bucket, key, m, path, RestoreOptions{Workers: 2, StartChunk: 2})
		assertFileHoldsImage(t, path, img)
		if written != m.ImageDigest() {
			t.Errorf("RestoreImage returned hash %s, manifest says %s", written, m.ImageDigest())
		}
	})

	t.Run("a resumed restore leaves chunks below StartChunk alone and hashes what the file holds", func(t *testing.T) {
		// The earlier attempt's pages are missing (say the staged file was
		// replaced): RestoreImage does not rewrite them, and the hash it
		// returns is of the file as it is, so the caller's check catches it.
		path := filepath.Join(t.TempDir(), "resumed.db")
		written := restoreInto(t, bucket, key, m, path, RestoreOptions{Workers: 1, StartChunk: 2})
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(img.data) {
			t.Fatalf("restored %d bytes, want %d", len(got), len(img.data))
		}
		skipped := 2 * pagesPerChunk * img.pageSize
		if !bytes.Equal(got[:skipped], make([]byte, skipped)) {
			t.Error("chunks below StartChunk were written")
		}
		if !bytes.Equal(got[skipped:], img.data[skipped:]) {
			t.Error("chunks from StartChunk on were not restored")
		}
		if sum, _, _ := HashImage(bytes.NewReader(got), img.pageSize); written != sum || written == m.ImageDigest() {
			t.Errorf("RestoreImage returned hash %s; the file hashes to %s, the manifest says %s", written, sum, m.ImageDigest())
		}
	})

	t.Run("a restore resumed past the last chunk only hashes and truncates", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "resumed.db")
		if err := os.WriteFile(path, append(bytes.Clone(img.data), "tail"...), 0o600); err != nil {
			t.Fatal(err)
		}
		written := restoreInto(t, bucket, key, m, path, RestoreOptions{StartChunk: len(m.Chunks)})
		assertFileHoldsImage(t, path, img)
		if written != m.ImageDigest() {
			t.Errorf("RestoreImage returned hash %s, manifest says %s", written, m.ImageDigest())
		}
	})

	t.Run("another keeper cannot open the backup", func(t *testing.T) {
		b, err := ReadBackup(ctx, bucket, database, testBackupID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Open(ctx, newTestKeeper(t))
		wantErrorIs(t, err, ErrWrongKey)
	})

	t.Run("a restore chain that does not start with a full backup is refused as bad input", func(t *testing.T) {
		inc := *m
		inc.Type, inc.Parent = BackupIncremental, "20250101T000000Z-00000000"
		_, err := RestoreImage(ctx, bucket, oneLayer(key, &inc), createFile(t), RestoreOptions{})
		wantErrorIs(t, err, ErrBadInput)
		_, err = RestoreImage(ctx, bucket, nil, createFile(t), RestoreOptions{})
		wantErrorIs(t, err, ErrBadInput)
	})

	t.Run("a chunk moved to another position fails to restore even with a matching manifest", func(t *testing.T) {
		// A copy of the backup whose chunk 1 is chunk 2, with the manifest
		// fixed up to match (as anyone holding the data key could): only the
		// index bound into each chunk catches the swap.
		const movedID = "20260102T030405Z-0000beef"
		moved := copyBackup(t, bucket, key, m, movedID)
		obj, err := bucket.ReadAll(ctx, ChunkKey(database, movedID, 2))
		if err != nil {
			t.Fatal(err)
		}
		if err := bucket.WriteAll(ctx, ChunkKey(database, movedID, 1), obj, nil); err != nil {
			t.Fatal(err)
		}
		moved.Chunks[1] = moved.Chunks[2]
		moved.Chunks[1].Index = 1
		_, err = RestoreImage(ctx, bucket, oneLayer(key, moved), createFile(t), RestoreOptions{Workers: 2})
		wantErrorIs(t, err, ErrCorrupt)
		var oe *ObjectError
		if !errors.As(err, &oe) || oe.Op != "open chunk 1" {
			t.Errorf("error %v is not the failure to open chunk 1", err)
		}
	})

	t.Run("chunks copied from another backup fail to restore even with a matching manifest", func(t *testing.T) {
		const otherID = "20260102T030405Z-0000cafe"
		other := *m
		other.BackupID = otherID
		for i := range other.Chunks {
			obj, err := bucket.ReadAll(ctx, ChunkKey(database, testBackupID, i))
			if err != nil {
				t.Fatal(err)
			}
			if err := bucket.WriteAll(ctx, ChunkKey(database, otherID, i), obj, nil); err != nil {
				t.Fatal(err)
			}
		}
		_, err := RestoreImage(ctx, bucket, oneLayer(key, &other), createFile(t), RestoreOptions{Workers: 2})
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("a chunk whose object differs from the manifest's hash fails to restore", func(t *testing.T) {
		const rotID = "20260102T030405Z-00000bad"
		rotten := copyBackup(t, bucket, key, m, rotID)
		k := ChunkKey(database, rotID, 3)
		obj, err := bucket.ReadAll(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		obj[len(obj)/2] ^= 0x40
		if err := bucket.WriteAll(ctx, k, obj, nil); err != nil {
			t.Fatal(err)
		}
		_, err = RestoreImage(ctx, bucket, oneLayer(key, rotten), createFile(t), RestoreOptions{Workers: 2})
		wantErrorIs(t, err, ErrCorrupt)
		var oe *ObjectError
		if !errors.As(err, &oe) || oe.Key != k {
			t.Errorf("error %v does not name chunk 3's object", err)
		}
	})

	t.Run("a chunk whose pages differ from the manifest's record fails to restore", func(t *testing.T) {
		wrong := *m
		wrong.Chunks = append([]ChunkRef(nil), m.Chunks...)
		wrong.Chunks[1].FirstPage = 66
		_, err := RestoreImage(ctx, bucket, oneLayer(key, &wrong), createFile(t), RestoreOptions{})
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("a chunk with a gap in its pages fails to restore", func(t *testing.T) {
		// Chunk 1 holds pages 65-127 and 129 (64 pages from page 65, as the
		// manifest says) sealed with the right key: only the check that a
		// full image has no gaps catches it.
		const gapID = "20260102T030405Z-00006a95"
		gappy := copyBackup(t, bucket, key, m, gapID)
		pages := make([]uint32, 0, pagesPerChunk)
		for p := uint32(65); p < 128; p++ {
			pages = append(pages, p)
		}
		pages = append(pages, 129)
		data := AppendPayloadHeader(nil, img.pageSize, pages)
		for _, p := range pages {
			data = append(data, img.page(int(p))...)
		}
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		obj := key.SealChunk(nil, enc.EncodeAll(data, nil), gapID, 1)
		enc.Close()
		if err := bucket.WriteAll(ctx, ChunkKey(database, gapID, 1), obj, nil); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(obj)
		gappy.Chunks[1].StoredBytes, gappy.Chunks[1].StoredSHA256 = int64(len(obj)), hex.EncodeToString(sum[:])
		_, err = RestoreImage(ctx, bucket, oneLayer(key, gappy), createFile(t), RestoreOptions{Workers: 2})
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("a missing chunk fails to restore as not found", func(t *testing.T) {
		gappy := *m
		gappy.BackupID = "20260102T030405Z-0000f00d" // no objects under this id
		_, err := RestoreImage(ctx, bucket, oneLayer(key, &gappy), createFile(t), RestoreOptions{Workers: 2})
		wantErrorIs(t, err, ErrNotFound)
	})

	t.Run("an altered manifest does not open", func(t *testing.T) {
		k := ManifestKey(database, testBackupID)
		original, err := bucket.ReadAll(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		altered := bytes.Replace(original, []byte(`"rows": 1234`), []byte(`"rows": 9999`), 1)
		if bytes.Equal(altered, original) {
			t.Fatal("test setup: row count not found in the manifest")
		}
		if err := bucket.WriteAll(ctx, k, altered, nil); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := bucket.WriteAll(ctx, k, original, nil); err != nil {
				t.Fatal(err)
			}
		}()
		b, err := ReadBackup(ctx, bucket, database, testBackupID)
		if err != nil {
			t.Fatalf("an altered but well-formed manifest should read: %v", err)
		}
		if b.Manifest.Tables[1].Rows != 9999 {
			t.Fatalf("test setup: read %+v", b.Manifest.Tables)
		}
		_, err = b.Open(ctx, keeper)
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("a manifest stored under another backup's name is refused", func(t *testing.T) {
		data, err := bucket.ReadAll(ctx, ManifestKey(database, testBackupID))
		if err != nil {
			t.Fatal(err)
		}
		const elsewhere = "20260102T030405Z-11111111"
		if err := bucket.WriteAll(ctx, ManifestKey(database, elsewhere), data, nil); err != nil {
			t.Fatal(err)
		}
		_, err = ReadBackup(ctx, bucket, database, elsewhere)
		wantErrorIs(t, err, ErrCorrupt)
		if err := bucket.WriteAll(ctx, ManifestKey("payroll", testBackupID), data, nil); err != nil {
			t.Fatal(err)
		}
		_, err = ReadBackup(ctx, bucket, "payroll", testBackupID)
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("a backup that does not exist is not found", func(t *testing.T) {
		_, err := ReadBackup(ctx, bucket, database, "20200101T000000Z-00000000")
		wantErrorIs(t, err, ErrNotFound)
	})

	t.Run("reading a backup with a bad name or id is bad input", func(t *testing.T) {
		_, err := ReadBackup(ctx, bucket, "../finance", testBackupID)
		wantErrorIs(t, err, ErrBadInput)
		_, err = ReadBackup(ctx, bucket, database, "../../"+testBackupID)
		wantErrorIs(t, err, ErrBadInput)
	})

	t.Run("a manifest that does not cover the image is refused before it is written", func(t *testing.T) {
		const shortID = "20260102T030405Z-00005407"
		short := fullManifest(database, shortID, img, env, refs[:4])
		_, err := WriteManifest(ctx, bucket, key, short)
		wantErrorIs(t, err, ErrCorrupt)
		if ok, _ := bucket.Exists(ctx, ManifestKey(database, shortID)); ok {
			t.Fatal("an inconsistent manifest was written")
		}
	})
}

// oneLayer is the restore chain of a single full backup.
func oneLayer(key *DataKey, m *Manifest) []Layer {
	return []Layer{{Backup: &Backup{Manifest: m}, Key: key}}
}

// restoreInto restores the full backup m (or, when given, chain) into the
// file at path, creating it if needed, and returns the image hash
// RestoreImage reports.
func restoreInto(t *testing.T, bucket *blob.Bucket, key *DataKey, m *Manifest, path string, opts RestoreOptions, chain ...Layer) string {
	t.Helper()
	if len(chain) == 0 {
		chain = oneLayer(key, m)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum, err := RestoreImage(context.Background(), bucket, chain, f, opts)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	return sum
}

func createFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "restore.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func assertFileHoldsImage(t *testing.T, path string, img *testImage) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(img.data) {
		t.Fatalf("restored file has %d bytes, image has %d", len(got), len(img.data))
	}
	for n := 1; n <= img.pageCount(); n++ {
		if p := got[(n-1)*img.pageSize : n*img.pageSize]; !bytes.Equal(p, img.page(n)) {
			t.Fatalf("restored page %d starts %q, want %q", n, p[:40], img.page(n)[:40])
		}
	}
}

// copyBackup copies the chunks of backup m to backup id to, sealing each for
// its new id as someone holding the data key could, and returns the manifest
// of the copy (not stored).
func copyBackup(t *testing.T, bucket *blob.Bucket, key *DataKey, m *Manifest, to string) *Manifest {
	t.Helper()
	ctx := context.Background()
	c := *m
	c.BackupID = to
	c.Chunks = append([]ChunkRef(nil), m.Chunks...)
	for i := range c.Chunks {
		obj, err := bucket.ReadAll(ctx, ChunkKey(m.Database.Name, m.BackupID, i))
		if err != nil {
			t.Fatal(err)
		}
		compressed, err := key.OpenChunk(nil, obj, m.BackupID, i)
		if err != nil {
			t.Fatal(err)
		}
		obj = key.SealChunk(nil, compressed, to, i)
		if err := bucket.WriteAll(ctx, ChunkKey(m.Database.Name, to, i), obj, nil); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(obj)
		c.Chunks[i].StoredBytes, c.Chunks[i].StoredSHA256, c.Chunks[i].SealTag = int64(len(obj)), hex.EncodeToString(sum[:]), sealTag(obj)
	}
	return &c
}

func TestListing(t *testing.T) {
	for _, kind := range bucketKinds {
		t.Run("on "+kind.name, func(t *testing.T) { testListing(t, kind.open) })
	}
}

func testListing(t *testing.T, openBucket func(*testing.T) *blob.Bucket) {
	ctx := context.Background()
	bucket := openBucket(t)
	keeper := newTestKeeper(t)
	img := newTestImage(20, 512, "v1")

	// writeBackup stores a complete backup, or only its key and chunks when
	// complete is false (an interrupted backup).
	writeBackup := func(database, id string, complete bool) {
		t.Helper()
		key, env := newTestDataKey(t, keeper)
		if err := WriteKeyEnvelope(ctx, bucket, database, id, env); err != nil {
			t.Fatal(err)
		}
		refs, _ := uploadImage(t, ChunkWriterOptions{Bucket: bucket, Database: database, BackupID: id, Key: key}, img, 8)
		if complete {
			if _, err := WriteManifest(ctx, bucket, key, fullManifest(database, id, img, env, refs)); err != nil {
				t.Fatal(err)
			}
		}
	}
	const (
		oldest      = "20250101T000000Z-00000001"
		middle      = "20250601T120000Z-00000002"
		newest      = "20260101T000000Z-00000003"
		interrupted = "20260201T000000Z-00000004"
	)
	// Written out of order: listing must sort by id, which is by time.
	writeBackup("finance", newest, true)
	writeBackup("finance", oldest, true)
	writeBackup("finance", middle, true)
	writeBackup("finance", interrupted, false)
	writeBackup("payroll", "20250301T000000Z-00000005", true)
	writeBackup("finance-archive", "20250301T000000Z-00000006", true)
	for _, junk := range []string{
		"databases/finance/backups/README",
		"databases/finance/backups/not-a-backup/manifest.json",
		"databases/finance/backups/20250101T000000Z-ZZZZZZZZ/manifest.json",
		"databases/finance/backups/20250101T000000Z-00000007/notes.txt",
		"databases/finance/backups/20250101T000000Z-0000000/manifest.json",
		"databases/finance/other/20250101T000000Z-00000008/manifest.json",
		"databases/Finance/backups/20250101T000000Z-00000009/manifest.json",
		"databases/stray-file",
		"elsewhere/finance/backups/20250101T000000Z-0000000a/manifest.json",
	} {
		if err := bucket.WriteAll(ctx, junk, []byte("junk"), nil); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("complete backups are listed oldest first", func(t *testing.T) {
		ids, err := ListBackups(ctx, bucket, "finance")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{oldest, middle, newest}; !reflect.DeepEqual(ids, want) {
			t.Fatalf("listed %v, want %v", ids, want)
		}
	})

	t.Run("a backup whose manifest is missing is not listed but its chunks exist", func(t *testing.T) {
		ok, err := bucket.Exists(ctx, ChunkKey("finance", interrupted, 0))
		if err != nil || !ok {
			t.Fatalf("test setup: chunk 0 of the interrupted backup is missing (%v)", err)
		}
		_, err = ReadBackup(ctx, bucket, "finance", interrupted)
		wantErrorIs(t, err, ErrNotFound)
	})

	t.Run("a database with no backups lists none", func(t *testing.T) {
		ids, err := ListBackups(ctx, bucket, "nothing-here")
		if err != nil || len(ids) != 0 {
			t.Fatalf("got %v, %v", ids, err)
		}
	})

	t.Run("listing a database whose name is invalid is bad input", func(t *testing.T) {
		for _, name := range []string{"", "../finance", "Finance", "finance/backups"} {
			if _, err := ListBackups(ctx, bucket, name); !errors.Is(err, ErrBadInput) {
				t.Errorf("ListBackups(%q): got %v, want ErrBadInput", name, err)
			}
		}
	})

	t.Run("databases with objects are listed, junk names are not", func(t *testing.T) {
		names, err := ListDatabases(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		// Listing order is the bucket's key order, in which "finance-archive/"
		// comes before "finance/"; only the set of names is promised.
		sort.Strings(names)
		if want := []string{"finance", "finance-archive", "payroll"}; !reflect.DeepEqual(names, want) {
			t.Fatalf("listed %v, want %v", names, want)
		}
	})
}

func TestChunkWriterResume(t *testing.T) {
	for _, kind := range bucketKinds {
		t.Run("on "+kind.name, func(t *testing.T) { testChunkWriterResume(t, kind.open) })
	}
}

func testChunkWriterResume(t *testing.T, openBucket func(*testing.T) *blob.Bucket) {
	ctx := context.Background()
	keeper := newTestKeeper(t)
	const database = "finance"
	const pagesPerChunk = 64

	// firstAttempt uploads v1 of a 300-page image and returns the bucket,
	// the data key re-opened from the stored envelope as a retry would, and
	// the objects as stored.
	firstAttempt := func(t *testing.T) (*blob.Bucket, *DataKey, [][]byte) {
		bucket := openBucket(t)
		key, env := newTestDataKey(t, keeper)
		if err := WriteKeyEnvelope(ctx, bucket, database, testBackupID, env); err != nil {
			t.Fatal(err)
		}
		uploadImage(t, ChunkWriterOptions{Bucket: bucket, Database: database, BackupID: testBackupID, Key: key}, newTestImage(300, 4096, "v1"), pagesPerChunk)
		env, err := ReadKeyEnvelope(ctx, bucket, database, testBackupID)
		if err != nil {
			t.Fatal(err)
		}
		retryKey, err := OpenDataKey(ctx, keeper, env)
		if err != nil {
			t.Fatal(err)
		}
		return bucket, retryKey, storedChunks(t, bucket, database, testBackupID, 5)
	}

	t.Run("identical chunks are re-used and changed ones uploaded again", func(t *testing.T) {
		bucket, key, before := firstAttempt(t)
		img := newTestImage(300, 4096, "v1")
		img.setPage(3*pagesPerChunk+10, "v2") // a page in chunk 3
		refs, reused := uploadImage(t, ChunkWriterOptions{Bucket: bucket, Database: database, BackupID: testBackupID, Key: key, ResumeBelow: 5}, img, pagesPerChunk)
		if reused != 4 {
			t.Errorf("re-used %d chunks, want 4", reused)
		}
		after := storedChunks(t, bucket, database, testBackupID, 5)
		for i := range after {
			if same := bytes.Equal(before[i], after[i]); same != (i != 3) {
				t.Errorf("chunk %d: object unchanged = %v", i, same)
			}
		}
		assertRefsMatchObjects(t, refs, after)
		assertRestores(t, bucket, key, fullManifest(database, testBackupID, img, KeyEnvelope{}, refs), img)
	})

	t.Run("only chunks below ResumeBelow are considered for re-use", func(t *testing.T) {
		bucket, key, before := firstAttempt(t)
		img := newTestImage(300, 4096, "v1")
		refs, reused := uploadImage(t, ChunkWriterOptions{Bucket: bucket, Database: database, BackupID: testBackupID, Key: key, ResumeBelow: 2}, img, pagesPerChunk)
		if reused != 2 {
			t.Errorf("re-used %d chunks, want 2", reused)
		}
		after := storedChunks(t, bucket, database, testBackupID, 5)
		for i := range after {
			if same := bytes.Equal(before[i], after[i]); same != (i < 2) {
				t.Errorf("chunk %d: object unchanged = %v", i, same)
			}
		}
		assertRefsMatchObjects(t, refs, after)
	})

	t.Run("chunks written with another data key are uploaded again", func(t *testing.T) {
		bucket, _, before := firstAttempt(t)
		otherKey, _ := newTestDataKey(t, keeper)
		img := newTestImage(300, 4096, "v1")
		refs, reused := uploadImage(t, ChunkWriterOptions{Bucket: bucket, Database: database, BackupID: testBackupID, Key: otherKey, ResumeBelow: 5}, img, pagesPerChunk)
		if reused != 0 {
			t.Errorf("re-used %d chunks sealed with another key", reused)
		}
		after := storedChunks(t, bucket, database, testBackupID, 5)
		for i := range after {
			if bytes.Equal(before[i], after[i]) {
				t.Errorf("chunk %d was not uploaded again", i)
			}
		}
		assertRestores(t, bucket, otherKey, fullManifest(database, testBackupID, img, KeyEnvelope{}, refs), img)
	})

	t.Run("objects at chunk keys that are not chunks, or whose tag differs, are uploaded again", func(t *testing.T) {
		bucket, key, before := firstAttempt(t)
		junk := ChunkKey(database, testBackupID, 1)
		if err := bucket.WriteAll(ctx, junk, []byte("not a chunk"), nil); err != nil {
			t.Fatal(err)
		}
		retagged := bytes.Clone(before[2])
		retagged[len(chunkMagic)+chunkNonceSize] ^= 1 // first byte of the tag
		if err := bucket.WriteAll(ctx, ChunkKey(database, testBackupID, 2), retagged, nil); err != nil {
			t.Fatal(err)
		}
		img := newTestImage(300, 4096, "v1")
		refs, reused := uploadImage(t, ChunkWriterOptions{Bucket: bucket, Database: database, BackupID: testBackupID, Key: key, ResumeBelow: 5}, img, pagesPerChunk)
		if reused != 3 {
			t.Errorf("re-used %d chunks, want 3", reused)
		}
		after := storedChunks(t, bucket, database, testBackupID, 5)
		assertRefsMatchObjects(t, refs, after)
		assertRestores(t, bucket, key, fullManifest(database, testBackupID, img, KeyEnvelope{}, refs), img)
	})

	// Regression: a chunk whose header tag is intact but whose ciphertext is damaged
	// (bit rot, a bad copy) is re-used on resume, because ChunkWriter.store
	// compares only the tag and never authenticates the object. The finished
	// manifest then records the damaged object's hash, and restore fails with
	// ErrCorrupt. Fixed; this guards it.
	t.Run("a damaged chunk is uploaded again even when its tag matches", func(t *testing.T) {
		bucket, key, before := firstAttempt(t)
		damaged := bytes.Clone(before[1])
		damaged[len(damaged)-20] ^= 0x80 // in the ciphertext, after the tag
		if err := bucket.WriteAll(ctx, ChunkKey(database, testBackupID, 1), damaged, nil); err != nil {
			t.Fatal(err)
		}
		img := newTestImage(300, 4096, "v1")
		refs, reused := uploadImage(t, ChunkWriterOptions{Bucket: bucket, Database: database, BackupID: testBackupID, Key: key, ResumeBelow: 5}, img, pagesPerChunk)
		if reused != 4 {
			t.Errorf("re-used %d chunks, want 4 (the damaged one must be uploaded again)", reused)
		}
		assertRestores(t, bucket, key, fullManifest(database, testBackupID, img, KeyEnvelope{}, refs), img)
	})

	t.Run("a resume with nothing uploaded yet uploads everything", func(t *testing.T) {
		bucket := openBucket(t)
		key, _ := newTestDataKey(t, keeper)
		_, reused := uploadImage(t, ChunkWriterOptions{Bucket: bucket, Database: database, BackupID: testBackupID, Key: key, ResumeBelow: 5}, newTestImage(300, 4096, "v1"), pagesPerChunk)
		if reused != 0 {
			t.Errorf("re-used %d chunks that do not exist", reused)
		}
	})
}

func storedChunks(t *testing.T, bucket *blob.Bucket, database, backupID string, n int) [][]byte {
	t.Helper()
	var objs [][]byte
	for i := range n {
		obj, err := bucket.ReadAll(context.Background(), ChunkKey(database, backupID, i))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, obj)
	}
	return objs
}

func assertRefsMatchObjects(t *testing.T, refs []ChunkRef, objs [][]byte) {
	t.Helper()
	if len(refs) != len(objs) {
		t.Fatalf("%d references for %d objects", len(refs), len(objs))
	}
	for i, r := range refs {
		sum := sha256.Sum256(objs[i])
		if r.StoredBytes != int64(len(objs[i])) || r.StoredSHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("chunk %d: reference %+v does not describe the stored object", i, r)
		}
	}
}

func assertRestores(t *testing.T, bucket *blob.Bucket, key *DataKey, m *Manifest, img *testImage) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "restored.db")
	if written := restoreInto(t, bucket, key, m, path, RestoreOptions{Workers: 2}); written != img.digest() {
		t.Errorf("RestoreImage returned hash %s, the image hashes to %s", written, img.digest())
	}
	assertFileHoldsImage(t, path, img)
}

func TestChunkWriterRejectsMisuse(t *testing.T) {
	keeper := newTestKeeper(t)
	key, _ := newTestDataKey(t, keeper)
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()

	t.Run("an unknown compression is bad input", func(t *testing.T) {
		_, err := NewChunkWriter(context.Background(), ChunkWriterOptions{Bucket: bucket, Database: "finance", BackupID: testBackupID, Key: key, Compression: "gzip"})
		wantErrorIs(t, err, ErrBadInput)
	})

	t.Run("every documented compression level is accepted", func(t *testing.T) {
		for _, c := range []string{"", CompressionDefault, CompressionBetter, CompressionBest} {
			img := newTestImage(10, 512, "v1")
			refs, _ := uploadImage(t, ChunkWriterOptions{Bucket: bucket, Database: "finance", BackupID: testBackupID, Key: key, Compression: c}, img, 4)
			assertRestores(t, bucket, key, fullManifest("finance", testBackupID, img, KeyEnvelope{}, refs), img)
		}
	})

	t.Run("a chunk submitted out of order is refused", func(t *testing.T) {
		cw, err := NewChunkWriter(context.Background(), ChunkWriterOptions{Bucket: bucket, Database: "finance", BackupID: testBackupID, Key: key, Workers: 1, PayloadBytes: 1024})
		if err != nil {
			t.Fatal(err)
		}
		buf, err := cw.Buffer()
		if err != nil {
			t.Fatal(err)
		}
		if err := cw.Submit(1, 1, 0, AppendPayloadHeader(buf, 512, nil)); err == nil {
			t.Error("submitting chunk 1 before chunk 0 succeeded")
		}
		if _, _, err := cw.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("an aborted writer reports the abort from Buffer and Close", func(t *testing.T) {
		cw, err := NewChunkWriter(context.Background(), ChunkWriterOptions{Bucket: bucket, Database: "finance", BackupID: testBackupID, Key: key, Workers: 1, PayloadBytes: 1024})
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("snapshot failed")
		cw.Abort(boom)
		// Drain the free buffers: Buffer must then report the abort.
		for {
			if _, err := cw.Buffer(); err != nil {
				if !errors.Is(err, boom) {
					t.Errorf("Buffer: got %v, want the abort cause", err)
				}
				break
			}
		}
		if _, _, err := cw.Close(); !errors.Is(err, boom) {
			t.Errorf("Close: got %v, want the abort cause", err)
		}
	})
}

// Regression: RestoreImage panics (slice bounds out of range, reader.go, the
// m.Chunks[:min(opts.StartChunk, len(m.Chunks))] prefix loop) when
// opts.StartChunk is negative, instead of refusing it as bad input. The value comes from an
// activity's heartbeat details. Fixed; this guards it.
func TestRestoreImageRefusesNegativeStartChunk(t *testing.T) {
	keeper := newTestKeeper(t)
	key, env := newTestDataKey(t, keeper)
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	img := newTestImage(10, 512, "v1")
	refs, _ := uploadImage(t, ChunkWriterOptions{Bucket: bucket, Database: "finance", BackupID: testBackupID, Key: key}, img, 4)
	m := fullManifest("finance", testBackupID, img, env, refs)
	_, err := RestoreImage(context.Background(), bucket, oneLayer(key, m), createFile(t), RestoreOptions{StartChunk: -1})
	wantErrorIs(t, err, ErrBadInput)
}

// --- names --------------------------------------------------------------

func TestValidateDatabaseName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		valid bool
	}{
		{"finance", true},
		{"a", true},
		{"0", true},
		{"db_2-archive", true},
		{"9lives", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"Finance", false},
		{"-finance", false},
		{"_finance", false},
		{"../other", false},
		{"..", false},
		{"a/b", false},
		{"a.b", false},
		{"a b", false},
		{"finance\n", false},
		{"café", false},
		{"a\x00b", false},
	} {
		verdict := "is refused"
		if tc.valid {
			verdict = "is accepted"
		}
		t.Run(fmt.Sprintf("%q %s", tc.name, verdict), func(t *testing.T) {
			err := ValidateDatabaseName(tc.name)
			if tc.valid && err != nil {
				t.Fatal(err)
			}
			if !tc.valid && !errors.Is(err, ErrBadInput) {
				t.Fatalf("got %v, want ErrBadInput", err)
			}
		})
	}
}

func TestValidateBackupID(t *testing.T) {
	for _, tc := range []struct {
		id    string
		valid bool
	}{
		{testBackupID, true},
		{"19700101T000000Z-00000000", true},
		{"20260102T030405.123Z-0123abcd", true},
		{"20260102T030405.000Z-0123abcd", true},
		{"20260102T030405.12Z-0123abcd", false},
		{"20260102T030405.1234Z-0123abcd", false},
		{"20260102T030405.Z-0123abcd", false},
		{"20260102T030405.abcZ-0123abcd", false},
		{"20260102T030405,123Z-0123abcd", false},
		{"20260102T030405Z-0123ABCD", false},
		{"20260102T030405Z-0123abc", false},
		{"20260102T030405Z-0123abcde", false},
		{"20260102T030405-0123abcd", false},
		{"20260102 030405Z-0123abcd", false},
		{"2026-01-02T03:04:05Z-0123abcd", false},
		{"20260102T030405Z_0123abcd", false},
		{"../../x", false},
		{testBackupID + "/", false},
		{"/" + testBackupID, false},
		{testBackupID + "\n", false},
		{"", false},
	} {
		verdict := "is refused"
		if tc.valid {
			verdict = "is accepted"
		}
		t.Run(fmt.Sprintf("%q %s", tc.id, verdict), func(t *testing.T) {
			err := ValidateBackupID(tc.id)
			if tc.valid && err != nil {
				t.Fatal(err)
			}
			if !tc.valid && !errors.Is(err, ErrBadInput) {
				t.Fatalf("got %v, want ErrBadInput", err)
			}
		})
	}
}

func TestBackupTime(t *testing.T) {
	started := time.Date(2026, 3, 4, 5, 6, 7, 123_456_789, time.FixedZone("CET", 3600))

	t.Run("a new id holds the start time in UTC to the millisecond", func(t *testing.T) {
		id := NewBackupID(started, "0123abcd")
		if id != "20260304T040607.123Z-0123abcd" {
			t.Fatalf("NewBackupID = %q", id)
		}
		got, err := BackupTime(id)
		if err != nil {
			t.Fatal(err)
		}
		if want := started.Truncate(time.Millisecond); !got.Equal(want) || got.Location() != time.UTC {
			t.Fatalf("BackupTime = %v, want %v in UTC", got, want)
		}
	})

	t.Run("an id of the first releases holds the start time to the second", func(t *testing.T) {
		id := NewBackupIDSeconds(started, "0123abcd")
		if id != "20260304T040607Z-0123abcd" {
			t.Fatalf("NewBackupIDSeconds = %q", id)
		}
		got, err := BackupTime(id)
		if err != nil {
			t.Fatal(err)
		}
		if want := started.Truncate(time.Second); !got.Equal(want) || got.Location() != time.UTC {
			t.Fatalf("BackupTime = %v, want %v in UTC", got, want)
		}
	})

	t.Run("a whole second has three zeros of milliseconds", func(t *testing.T) {
		if id := NewBackupID(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "00000000"); id != "20260101T000000.000Z-00000000" {
			t.Fatalf("NewBackupID = %q", id)
		}
	})

	for _, tc := range []struct{ name, id string }{
		{"a malformed id", "yesterday"},
		{"an id with path traversal", "../../x"},
	} {
		t.Run(tc.name+" is bad input", func(t *testing.T) {
			_, err := BackupTime(tc.id)
			wantErrorIs(t, err, ErrBadInput)
		})
	}

	t.Run("an id of the right shape with an impossible date has no time", func(t *testing.T) {
		if _, err := BackupTime("20261301T000000Z-0123abcd"); err == nil {
			t.Fatal("month 13 parsed")
		}
		if _, err := BackupTime("20260230T000000Z-0123abcd"); err == nil {
			t.Fatal("30 February parsed")
		}
	})
}

func TestCompareBackupIDs(t *testing.T) {
	// Oldest first. String order differs: "…00.500Z" sorts before "…00Z".
	ordered := []string{
		"20251231T235959.999Z-ffffffff",
		"20260101T000000Z-00000002",
		"20260101T000000.001Z-00000001",
		"20260101T000000.500Z-00000000",
		"20260101T000001.000Z-00000000", // the same instant as the next: by id
		"20260101T000001Z-00000000",
	}
	for i, a := range ordered {
		for j, b := range ordered {
			got := CompareBackupIDs(a, b)
			if (i < j && got >= 0) || (i > j && got <= 0) || (i == j && got != 0) {
				t.Errorf("CompareBackupIDs(%s, %s) = %d", a, b, got)
			}
		}
	}

	t.Run("listing sorts ids of both formats by time", func(t *testing.T) {
		ctx := context.Background()
		bucket := bucketKinds[0].open(t)
		for i := len(ordered) - 1; i >= 0; i-- {
			if err := bucket.WriteAll(ctx, ManifestKey("finance", ordered[i]), []byte("{}"), nil); err != nil {
				t.Fatal(err)
			}
		}
		ids, err := ListBackups(ctx, bucket, "finance")
		if err != nil || !reflect.DeepEqual(ids, ordered) {
			t.Fatalf("listed %v, %v; want %v", ids, err, ordered)
		}
	})

	t.Run("a parent of the first releases' format in the same second is older", func(t *testing.T) {
		keeper := newTestKeeper(t)
		key, env := newTestDataKey(t, keeper)
		m := sampleManifest(env)
		m.Type, m.Parent, m.BackupID = BackupIncremental, "20260101T000000Z-00000002", "20260101T000000.500Z-00000000"
		if _, err := ParseManifest(mustSeal(t, key, m)); err != nil {
			t.Fatal(err)
		}
		m.Parent, m.BackupID = m.BackupID, m.Parent
		_, err := ParseManifest(mustSeal(t, key, m))
		wantErrorIs(t, err, ErrCorrupt)
	})
}

func TestObjectKeys(t *testing.T) {
	t.Run("every object of a backup lives under its prefix", func(t *testing.T) {
		prefix := BackupPrefix("finance", testBackupID)
		if prefix != "databases/finance/backups/"+testBackupID+"/" {
			t.Fatalf("BackupPrefix = %q", prefix)
		}
		for _, k := range []string{
			ManifestKey("finance", testBackupID),
			KeyEnvelopeKey("finance", testBackupID),
			ChunkKey("finance", testBackupID, 0),
			VerifyRecordKey("finance", testBackupID, time.Now()),
		} {
			if !strings.HasPrefix(k, prefix) || !strings.HasPrefix(k, BackupsPrefix("finance")) {
				t.Errorf("%q is not under %q", k, prefix)
			}
		}
	})

	t.Run("chunk keys list in chunk order and parse back to their index", func(t *testing.T) {
		prefix := BackupPrefix("finance", testBackupID)
		prev := ""
		for _, i := range []int{0, 1, 9, 10, 99, 100, 12345678, 99999999} {
			k := ChunkKey("finance", testBackupID, i)
			if k <= prev {
				t.Errorf("%q does not sort after %q", k, prev)
			}
			prev = k
			if got, ok := chunkIndexFromKey(prefix, k); !ok || got != i {
				t.Errorf("chunkIndexFromKey(%q) = %d, %v", k, got, ok)
			}
		}
		for _, k := range []string{prefix + "manifest.json", prefix + "chunks/1", prefix + "chunks/0000000x", "other/chunks/00000001"} {
			if _, ok := chunkIndexFromKey(prefix, k); ok {
				t.Errorf("chunkIndexFromKey(%q) accepted a key that is not a chunk", k)
			}
		}
	})

	t.Run("verify records list in time order", func(t *testing.T) {
		a := VerifyRecordKey("finance", testBackupID, time.Date(2026, 1, 1, 0, 0, 0, 999, time.UTC))
		b := VerifyRecordKey("finance", testBackupID, time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC))
		if a >= b {
			t.Fatalf("%q does not sort before %q", a, b)
		}
	})
}

func TestVerifyRecords(t *testing.T) {
	for _, kind := range bucketKinds {
		t.Run("on "+kind.name, func(t *testing.T) {
			ctx := context.Background()
			bucket := kind.open(t)

			t.Run("a backup never verified has no record", func(t *testing.T) {
				rec, err := LatestVerifyRecord(ctx, bucket, "finance", testBackupID)
				if err != nil || rec != nil {
					t.Fatalf("got %+v, %v", rec, err)
				}
			})

			t.Run("the newest record is returned", func(t *testing.T) {
				base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				for i, ok := range []bool{false, true, false} {
					at := base.Add(time.Duration(i) * time.Hour)
					rec := VerifyRecord{BackupID: testBackupID, VerifiedAt: at.Format(time.RFC3339), OK: ok, ChunksChecked: i}
					if err := WriteVerifyRecord(ctx, bucket, "finance", VerifyRecordKey("finance", testBackupID, at), rec); err != nil {
						t.Fatal(err)
					}
				}
				rec, err := LatestVerifyRecord(ctx, bucket, "finance", testBackupID)
				if err != nil {
					t.Fatal(err)
				}
				if rec == nil || rec.ChunksChecked != 2 || rec.OK {
					t.Fatalf("got %+v, want the record of the third verification", rec)
				}
			})

			t.Run("a record that is not JSON is corrupt", func(t *testing.T) {
				const id = "20260102T030405Z-00000002"
				if err := bucket.WriteAll(ctx, VerifyRecordKey("finance", id, time.Now()), []byte("{"), nil); err != nil {
					t.Fatal(err)
				}
				_, err := LatestVerifyRecord(ctx, bucket, "finance", id)
				wantErrorIs(t, err, ErrCorrupt)
			})
		})
	}
}

func TestNewLimiter(t *testing.T) {
	if NewLimiter(0) != nil || NewLimiter(-1) != nil {
		t.Error("a zero or negative rate should mean no limit")
	}
	l := NewLimiter(10 << 20)
	if l == nil || l.Burst() != 1<<20 {
		t.Errorf("a 10 MiB/s limiter should have a 1 MiB burst, got %v", l)
	}
	if small := NewLimiter(1000); small.Burst() != 1000 {
		t.Errorf("a 1000 B/s limiter should have a 1000-byte burst, got %d", small.Burst())
	}
}

// A format 1 backup (image hash: SHA-256 of the image's bytes) written
// before the image hash became the SHA-256 of the page hashes still parses,
// restores and is checked with the algorithm it was written with.
func TestFormat1ImageHashStillRestores(t *testing.T) {
	ctx := context.Background()
	keeper := newTestKeeper(t)
	bucket := openFileBucket(t, &fileblob.Options{CreateDir: true, NoTempDir: true})
	key, env := newTestDataKey(t, keeper)
	img := newTestImage(300, 4096, "v1")
	refs, _ := uploadImage(t, ChunkWriterOptions{Bucket: bucket, Database: "ledger", BackupID: testBackupID, Key: key}, img, 64)
	m := fullManifest("ledger", testBackupID, img, env, refs)
	sum := sha256.Sum256(img.data)
	m.Format, m.ImageHash, m.ImageSHA256 = 1, "", hex.EncodeToString(sum[:])
	m.FinishedAt = m.SnapshotAt
	sealed, err := key.SealManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := bucket.WriteAll(ctx, ManifestKey("ledger", testBackupID), sealed, nil); err != nil {
		t.Fatal(err)
	}
	b, err := ReadBackup(ctx, bucket, "ledger", testBackupID)
	if err != nil {
		t.Fatal(err)
	}
	want := "sha256:" + hex.EncodeToString(sum[:])
	if b.Manifest.ImageDigest() != want {
		t.Fatalf("ImageDigest = %s, want %s", b.Manifest.ImageDigest(), want)
	}
	path := filepath.Join(t.TempDir(), "restored.db")
	if written := restoreInto(t, bucket, key, b.Manifest, path, RestoreOptions{Workers: 2}); written != want {
		t.Errorf("RestoreImage returned %s, want %s", written, want)
	}
	assertFileHoldsImage(t, path, img)

	// A format 2 manifest must carry the page-hash image hash, not the old one.
	m.Format = FormatVersion
	if _, err := WriteManifest(ctx, bucket, key, m); err == nil || !strings.Contains(err.Error(), "image hash") {
		t.Fatalf("WriteManifest of a format 2 manifest with only a SHA-256 image hash: %v", err)
	}
}

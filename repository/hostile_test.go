package repository

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
)

// Hand-made hostile backups (issue #7): manifests, chains, histories,
// exports and chunks that a buggy writer, or an attacker who holds the key,
// could store. Each is written through a real bucket and sealed with a real
// data key wrapped by the keeper, so it authenticates: only Bulwark's own
// checks stand between it and listing, verification and restore. Every one
// must be refused with an error that names the problem — never a panic, a
// hang, a huge allocation, or a byte written outside the restore target.

const hostileDB = "finance"

// Ids of the hostile tests' backups, oldest first.
const (
	hostileFullID  = "20260301T000000.000Z-00000001"
	hostileIncID   = "20260302T000000.000Z-00000002"
	hostileNewerID = "20260303T000000.000Z-00000003"
)

// hostileRepo is a bucket holding one real full backup of hostileDB (200
// pages of 512 bytes in four chunks, with its page index), on top of which
// the tests store hostile objects.
type hostileRepo struct {
	t      *testing.T
	bucket *blob.Bucket
	keeper SecretsKeeper
	img    *testImage
}

func newHostileRepo(t *testing.T, bucket *blob.Bucket) *hostileRepo {
	t.Helper()
	keeper := newTestKeeper(t)
	img := newTestImage(200, 512, "v1")
	storeBackup(t, bucket, keeper, hostileDB, backupSpec{id: hostileFullID, typ: BackupFull, img: img})
	return &hostileRepo{t: t, bucket: bucket, keeper: keeper, img: img}
}

// manifest returns a copy of the stored manifest of backup id and the
// backup's data key.
func (h *hostileRepo) manifest(database, id string) (*Manifest, *DataKey) {
	h.t.Helper()
	ctx := context.Background()
	b, err := ReadBackup(ctx, h.bucket, database, id)
	if err != nil {
		h.t.Fatal(err)
	}
	key, err := b.Open(ctx, h.keeper)
	if err != nil {
		h.t.Fatal(err)
	}
	data, err := json.Marshal(b.Manifest)
	if err != nil {
		h.t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		h.t.Fatal(err)
	}
	return &m, key
}

// store seals m with key and stores it as the manifest of database/id,
// without the checks WriteManifest makes.
func (h *hostileRepo) store(database, id string, key *DataKey, m *Manifest) {
	h.t.Helper()
	if err := h.bucket.WriteAll(context.Background(), ManifestKey(database, id), mustSeal(h.t, key, m), nil); err != nil {
		h.t.Fatal(err)
	}
}

// forge stores the full backup's manifest changed by mutate, sealed with the
// backup's own key, in place of the real one.
func (h *hostileRepo) forge(mutate func(m *Manifest)) string {
	m, key := h.manifest(hostileDB, hostileFullID)
	mutate(m)
	h.store(hostileDB, hostileFullID, key, m)
	return hostileFullID
}

// child stores backup id of type typ on top of parent: the full backup's
// image unchanged (no chunks, no page index), with its own data key and key
// envelope, changed by mutate. Without mutate it restores.
func (h *hostileRepo) child(id, parent string, typ BackupType, mutate func(m *Manifest)) string {
	h.t.Helper()
	m, _ := h.manifest(hostileDB, hostileFullID)
	key, env := newTestDataKey(h.t, h.keeper)
	if err := WriteKeyEnvelope(context.Background(), h.bucket, hostileDB, id, env); err != nil {
		h.t.Fatal(err)
	}
	m.BackupID, m.Type, m.Parent, m.Key = id, typ, parent, env
	m.Chunks, m.PageIndex, m.StoredBytes, m.History = nil, nil, 0, nil
	if mutate != nil {
		mutate(m)
	}
	h.store(hostileDB, id, key, m)
	return id
}

// bounded runs fn and fails when it runs for more than a minute (a hang)
// or allocates more than limit bytes.
func bounded(t *testing.T, limit uint64, fn func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("still running after a minute: a hostile backup must not hang Bulwark")
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > limit {
		t.Errorf("allocated %d MiB, more than the %d MiB allowed", n>>20, limit>>20)
	}
}

// wantRefusal checks that err refuses a hostile backup: it says want, and it
// is classified as damage (corrupt, missing, wrong key, unsupported format)
// or bad input, so that nothing retries it.
func wantRefusal(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s accepted it; want an error saying %q", what, want)
	case !strings.Contains(err.Error(), want):
		t.Errorf("%s refused it with %q, which does not say %q", what, err, want)
	case !isDamage(err) && !errors.Is(err, ErrBadInput):
		t.Errorf("%s: error %v is neither damage nor bad input", what, err)
	}
}

// refused checks that listing, verification and restore refuse backup id,
// each with an error saying want. With listed, the manifest is sound on its
// own (its MAC, key or chain is not): listing, which reads manifests
// without the key, shows it, and everything that trusts it refuses it.
func (h *hostileRepo) refused(t *testing.T, id, want string, listed bool) {
	t.Helper()
	ctx := context.Background()
	bounded(t, 64<<20, func() {
		// Listing: the activity lists the ids, then reads each manifest.
		ids, err := ListBackups(ctx, h.bucket, hostileDB)
		if err != nil {
			t.Errorf("listing: %v", err)
		}
		seen := false
		for _, listedID := range ids {
			_, err := ReadBackup(ctx, h.bucket, hostileDB, listedID)
			seen = seen || listedID == id
			switch {
			case listedID != id:
			case listed && err != nil:
				t.Errorf("listing: a sound manifest is not shown: %v", err)
			case !listed:
				wantRefusal(t, "listing", err, want)
			}
		}
		if !seen {
			t.Errorf("listing does not show %s, whose manifest exists", id)
		}
		// Verification: the chain, and each object of the backup.
		_, err = Chain(ctx, h.bucket, h.keeper, hostileDB, id)
		wantRefusal(t, "verify (chain)", err, want)
		if !listed {
			problems, err := CheckObjectsAll(ctx, h.bucket, h.keeper, hostileDB, id)
			if err == nil && len(problems) > 0 {
				err = problems[0].Err
			}
			wantRefusal(t, "verify (objects)", err, want)
		}
		// Restore: the chain, from the primary and a second copy, before any
		// file is created.
		_, _, err = ChainFrom(ctx, []Source{{Name: "primary", Bucket: h.bucket}, {Name: "copy", Bucket: h.bucket}}, h.keeper, hostileDB, id)
		wantRefusal(t, "restore", err, want)
	})
}

func TestHostileManifestsAreRefused(t *testing.T) {
	const nonHex = "zz23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name   string
		mutate func(m *Manifest)
		want   string
		listed bool // the manifest parses; only what trusts it refuses it
	}{
		// Names that would climb out of their prefix, or name another object.
		{"backup id with path traversal", func(m *Manifest) { m.BackupID = "../../../etc/passwd" }, `backup id "../../../etc/passwd"`, false},
		{"absolute backup id", func(m *Manifest) { m.BackupID = "/etc/passwd" }, `backup id "/etc/passwd"`, false},
		{"backup id with a NUL", func(m *Manifest) { m.BackupID = hostileFullID + "\x00" }, `backup id`, false},
		{"backup id with backslashes", func(m *Manifest) { m.BackupID = `..\..\` + hostileFullID }, `backup id`, false},
		{"backup id of another backup", func(m *Manifest) { m.BackupID = hostileIncID }, "stored as finance/" + hostileFullID, false},
		{"database name with path traversal", func(m *Manifest) { m.Database.Name = "../payroll" }, `database name "../payroll"`, false},
		{"absolute database name", func(m *Manifest) { m.Database.Name = "/srv/payroll" }, `database name "/srv/payroll"`, false},
		{"database name with a NUL", func(m *Manifest) { m.Database.Name = "fin\x00ance" }, `database name`, false},
		{"database name with backslashes", func(m *Manifest) { m.Database.Name = `..\payroll` }, `database name`, false},
		{"database name of another database", func(m *Manifest) { m.Database.Name = "payroll" }, "manifest is of payroll/", false},
		{"parent with path traversal", func(m *Manifest) { m.Type, m.Parent = BackupIncremental, "../../20260201T000000.000Z-00000000" }, `parent: bad input: backup id "../../`, false},
		{"absolute parent", func(m *Manifest) { m.Type, m.Parent = BackupIncremental, "/20260201T000000.000Z-00000000" }, `parent: bad input: backup id "/`, false},
		{"parent with a NUL", func(m *Manifest) { m.Type, m.Parent = BackupIncremental, "20260201T000000.000Z-00000000\x00" }, `parent: bad input: backup id`, false},
		{"parent with backslashes", func(m *Manifest) { m.Type, m.Parent = BackupIncremental, `..\20260201T000000.000Z-00000000` }, `parent: bad input: backup id`, false},
		{"history link with path traversal", func(m *Manifest) {
			m.History = &HistoryLink{Previous: "../../forgotten/x", PreviousSHA256: sha64}
		}, `history: previous bad input: backup id "../../forgotten/x"`, false},
		{"history link without a hash", func(m *Manifest) {
			m.History = &HistoryLink{Previous: "20260201T000000.000Z-00000000", PreviousSHA256: "not a hash"}
		}, `history: previous_sha256 "not a hash"`, false},
		{"table name with a NUL", func(m *Manifest) { m.Tables[0].Name = "accounts\x00../../x" }, `NUL in its name`, false},
		{"negative row count", func(m *Manifest) { m.Tables[1].Rows = -1 }, `negative row count`, false},

		// Absurd sizes.
		{"page size 0", func(m *Manifest) { m.PageSize, m.ImageBytes = 0, 0 }, "page size 0", false},
		{"page size 1", func(m *Manifest) { m.PageSize, m.ImageBytes = 1, m.PageCount }, "page size 1 ", false},
		{"page size 3", func(m *Manifest) { m.PageSize, m.ImageBytes = 3, 3*m.PageCount }, "page size 3 ", false},
		{"page size 2^40", func(m *Manifest) { m.PageSize, m.ImageBytes = 1<<40, m.PageCount<<40 }, "page size 1099511627776", false},
		{"negative page size", func(m *Manifest) { m.PageSize, m.ImageBytes = -512, -512*m.PageCount }, "page size -512", false},
		{"page count 2^62", func(m *Manifest) { m.PageCount, m.ImageBytes = 1<<62, 1<<62 }, "page count 4611686018427387904", false},
		{"page count 0", func(m *Manifest) { m.PageCount, m.ImageBytes = 0, 0 }, "page count 0", false},
		{"negative page count", func(m *Manifest) { m.PageCount, m.ImageBytes = -200, -200*512 }, "page count -200", false},
		{"negative image bytes", func(m *Manifest) { m.ImageBytes = -1 }, "image bytes -1", false},
		{"image bytes other than page size × page count", func(m *Manifest) { m.ImageBytes++ }, "image bytes 102401", false},
		{"negative stored bytes", func(m *Manifest) { m.StoredBytes = -1 }, "stored bytes -1", false},
		{"chunk of negative size", func(m *Manifest) { m.Chunks[1].StoredBytes = -1 }, "chunk 1 has absurd size", false},
		{"chunk above the object limit", func(m *Manifest) { m.Chunks[1].StoredBytes = MaxChunkBytes + 1 }, "chunk 1 has absurd size", false},
		{"chunk of more pages than fit in an object", func(m *Manifest) { m.Chunks[1].PageCount = 1 << 30 }, "chunk 1 has absurd size", false},
		{"chunk of a negative page count", func(m *Manifest) { m.Chunks[1].PageCount = -64 }, "chunk 1 has absurd size", false},
		{"chunk of no pages", func(m *Manifest) { m.Chunks[3].PageCount = 0 }, "chunk 3 holds no pages", false},
		{"chunks overlapping", func(m *Manifest) { m.Chunks[1].FirstPage = 10 }, "chunk 1 starts at page 10, inside or before chunk 0", false},
		{"chunks out of order", func(m *Manifest) {
			m.Chunks[1].FirstPage, m.Chunks[2].FirstPage = m.Chunks[2].FirstPage, m.Chunks[1].FirstPage
		}, "chunk 1 starts at page 129; a full backup's chunks are consecutive, so it must start at page 65", false},
		{"chunk starting at page 0", func(m *Manifest) { m.Chunks[0].FirstPage = 0 }, "chunk 0 starts at page 0; pages are numbered from 1", false},
		{"chunk beyond the image", func(m *Manifest) { m.Chunks[3].PageCount = 64 }, "chunk 3 holds pages 193 to at least 256, beyond the image's 200 pages", false},
		{"chunk beyond page 2^32", func(m *Manifest) { m.Chunks[3].FirstPage = 1<<32 - 1 }, "chunk 3 starts at page 4294967295", false},
		{"a full backup missing pages", func(m *Manifest) { m.Chunks = m.Chunks[:3] }, "chunks hold 192 pages, a full backup of 200 pages needs all of them", false},
		{"chunk indices out of order", func(m *Manifest) { m.Chunks[1].Index, m.Chunks[2].Index = 2, 1 }, "chunk 1 has index 2", false},
		{"negative page index size", func(m *Manifest) { m.PageIndex.StoredBytes = -1 }, "page index has no object hash or size (-1 bytes", false},

		// Format numbers.
		{"format 0", func(m *Manifest) { m.Format = 0 }, "format 0 is not a manifest format", false},
		{"negative format", func(m *Manifest) { m.Format = -3 }, "format -3 is not a manifest format", false},
		{"format from the future", func(m *Manifest) { m.Format = FormatVersion + 1 }, "upgrade Bulwark", false},
		{"format 2^40", func(m *Manifest) { m.Format = 1 << 40 }, "manifest format 1099511627776", false},
		{"unknown backup type", func(m *Manifest) { m.Type = "snapshot" }, `unknown backup type "snapshot"`, false},
		{"full backup with a parent", func(m *Manifest) { m.Parent = "20260201T000000.000Z-00000000" }, "a full backup has a parent", false},
		{"key envelope from the future", func(m *Manifest) { m.Key.Format = FormatVersion + 1 }, "key envelope format", true},
		{"key envelope of another algorithm", func(m *Manifest) { m.Key.Algorithm = "rot13" }, `key envelope algorithm "rot13"`, true},
		{"key envelope that the keeper cannot open", func(m *Manifest) { m.Key.Wrapped = []byte("not wrapped by this keeper") }, "cannot unwrap", true},

		// Hashes.
		{"image hash not in hex", func(m *Manifest) { m.ImageHash = nonHex }, `image hash "zz`, false},
		{"image hash too short", func(m *Manifest) { m.ImageHash = m.ImageHash[:40] }, "is not a SHA-256", false},
		{"image hash too long", func(m *Manifest) { m.ImageHash += "00" }, "is not a SHA-256", false},
		{"two image hashes", func(m *Manifest) { m.ImageSHA256 = m.ImageHash }, "exactly one image hash", false},
		{"no image hash", func(m *Manifest) { m.ImageHash = "" }, "exactly one image hash", false},
		{"chunk hash not in hex", func(m *Manifest) { m.Chunks[2].StoredSHA256 = nonHex }, `chunk 2 has no object hash (stored_sha256 "zz`, false},
		{"chunk hash too short", func(m *Manifest) { m.Chunks[2].StoredSHA256 = "abcd" }, `chunk 2 has no object hash (stored_sha256 "abcd")`, false},
		{"seal tag not in hex", func(m *Manifest) { m.Chunks[0].SealTag = strings.Repeat("z", 32) }, "chunk 0 has a malformed seal tag", false},
		{"seal tag of the wrong length", func(m *Manifest) { m.Chunks[0].SealTag = "abcd" }, "chunk 0 has a malformed seal tag", false},
		{"page index hash not in hex", func(m *Manifest) { m.PageIndex.StoredSHA256 = nonHex }, `page index has no object hash or size`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileRepo(t, bucketKinds[0].open(t))
			h.refused(t, h.forge(tc.mutate), tc.want, tc.listed)
		})
	}
}

func TestHostileManifestFilesAreRefused(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		alter  func(data []byte, key *DataKey) []byte
		want   string
		listed bool
	}{
		{"MAC that is not hex", func(data []byte, _ *DataKey) []byte {
			var f manifestFile
			if err := json.Unmarshal(data, &f); err != nil {
				t.Fatal(err)
			}
			return []byte(strings.Replace(string(data), f.MAC, "not hex", 1))
		}, "fails authentication", true},
		{"body changed after it was sealed", func(data []byte, _ *DataKey) []byte {
			// One more space in the body: the same manifest, other bytes.
			return []byte(strings.Replace(string(data), `"page_count": 200,`, `"page_count": 200 ,`, 1))
		}, "fails authentication", true},
		{"manifest that is not JSON", func([]byte, *DataKey) []byte { return []byte("<html>502</html>") }, "not valid JSON", false},
		{"manifest whose body is not an object", func([]byte, *DataKey) []byte { return []byte(`{"body": [1], "mac": ""}`) }, "body is not valid JSON", false},
		{"page count beyond int64", func(data []byte, key *DataKey) []byte {
			return sealCompact(key, `{"format":3,"page_count":99999999999999999999}`)
		}, "body is not valid JSON", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileRepo(t, bucketKinds[0].open(t))
			_, key := h.manifest(hostileDB, hostileFullID)
			k := ManifestKey(hostileDB, hostileFullID)
			data, err := h.bucket.ReadAll(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.bucket.WriteAll(ctx, k, tc.alter(data, key), nil); err != nil {
				t.Fatal(err)
			}
			h.refused(t, hostileFullID, tc.want, tc.listed)
		})
	}

	t.Run("a manifest of millions of chunks", func(t *testing.T) {
		// 1,200,000 one-page chunks: a consistent full backup whose
		// manifest (143 MB) no Bulwark writes. It is streamed to a file
		// bucket and must be refused by its size, before it is read.
		h := newHostileRepo(t, openFileBucket(t, &fileblob.Options{CreateDir: true, NoTempDir: true}))
		_, key := h.manifest(hostileDB, hostileFullID)
		writeHugeManifest(t, h.bucket, key, 1_200_000)
		h.refused(t, hostileFullID, "exceeds the 67108864-byte limit", false)
	})

	t.Run("requests for hostile names", func(t *testing.T) {
		h := newHostileRepo(t, bucketKinds[0].open(t))
		for _, tc := range []struct{ database, id, want string }{
			{hostileDB, "../../../etc/passwd", `backup id "../../../etc/passwd"`},
			{hostileDB, "/etc/passwd", `backup id "/etc/passwd"`},
			{hostileDB, hostileFullID + "/../../payroll", `backup id`},
			{"../payroll", hostileFullID, `database name "../payroll"`},
			{"/srv", hostileFullID, `database name "/srv"`},
			{"fin\x00ance", hostileFullID, `database name`},
		} {
			_, err := ReadBackup(ctx, h.bucket, tc.database, tc.id)
			wantRefusal(t, "listing", err, tc.want)
			_, err = Chain(ctx, h.bucket, h.keeper, tc.database, tc.id)
			wantRefusal(t, "verify", err, tc.want)
			_, err = CheckObjectsAll(ctx, h.bucket, h.keeper, tc.database, tc.id)
			wantRefusal(t, "verify (objects)", err, tc.want)
			_, _, err = ChainFrom(ctx, []Source{{Name: "primary", Bucket: h.bucket}}, h.keeper, tc.database, tc.id)
			wantRefusal(t, "restore", err, tc.want)
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("%s/%s: %v is not bad input", tc.database, tc.id, err)
			}
		}
	})
}

// writeHugeManifest streams to bucket, as the full backup's manifest, a
// consistent manifest of chunks one-page chunks sealed with key, without
// holding it in memory.
func writeHugeManifest(t *testing.T, bucket *blob.Bucket, key *DataKey, chunks int) {
	t.Helper()
	writeBody := func(w io.Writer) {
		fmt.Fprintf(w, `{"format":3,"backup_id":%q,"type":"full","database":{"name":%q},"page_size":512,"page_count":%d,"image_bytes":%d,"image_hash":%q,"chunks":[`,
			hostileFullID, hostileDB, chunks, chunks*512, sha64)
		for i := range chunks {
			if i > 0 {
				io.WriteString(w, ",")
			}
			fmt.Fprintf(w, `{"index":%d,"first_page":%d,"page_count":1,"stored_bytes":100,"stored_sha256":%q}`, i, i+1, sha64)
		}
		io.WriteString(w, "]}")
	}
	var n countingWriter
	writeBody(&n)
	mac := hmac.New(sha256.New, key.macKey)
	for _, part := range [][]byte{[]byte("manifest")} {
		binary.Write(mac, binary.BigEndian, uint64(len(part)))
		mac.Write(part)
	}
	binary.Write(mac, binary.BigEndian, uint64(n))
	writeBody(mac)

	w, err := bucket.NewWriter(context.Background(), ManifestKey(hostileDB, hostileFullID), nil)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	io.WriteString(bw, `{"body":`)
	writeBody(bw)
	fmt.Fprintf(bw, `,"mac":%q}`, hex.EncodeToString(mac.Sum(nil)))
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

func TestHostileChainsAreRefused(t *testing.T) {
	ctx := context.Background()

	t.Run("a backup that is its own parent", func(t *testing.T) {
		h := newHostileRepo(t, bucketKinds[0].open(t))
		id := h.child(hostileIncID, hostileIncID, BackupIncremental, nil)
		h.refused(t, id, "parent "+hostileIncID+" is not older than the backup", false)
	})

	t.Run("a parent newer than its child", func(t *testing.T) {
		h := newHostileRepo(t, bucketKinds[0].open(t))
		h.child(hostileNewerID, hostileFullID, BackupIncremental, nil)
		id := h.child(hostileIncID, hostileNewerID, BackupDifferential, nil)
		h.refused(t, id, "parent "+hostileNewerID+" is not older than the backup", false)
	})

	t.Run("a loop: A's parent is B, B's parent is A", func(t *testing.T) {
		h := newHostileRepo(t, bucketKinds[0].open(t))
		h.child(hostileIncID, hostileNewerID, BackupIncremental, nil)
		id := h.child(hostileNewerID, hostileIncID, BackupIncremental, nil)
		// B alone is sound; its parent A is the one that cannot be.
		h.refused(t, id, "depends on "+hostileIncID+", which cannot be read", true)
		h.refused(t, id, "parent "+hostileNewerID+" is not older than the backup", true)
	})

	t.Run("a parent that is missing", func(t *testing.T) {
		h := newHostileRepo(t, bucketKinds[0].open(t))
		id := h.child(hostileNewerID, hostileIncID, BackupIncremental, nil)
		h.refused(t, id, "depends on "+hostileIncID+", which cannot be read", true)
	})

	t.Run("a parent in another database", func(t *testing.T) {
		h := newHostileRepo(t, bucketKinds[0].open(t))
		storeBackup(t, h.bucket, h.keeper, "payroll", backupSpec{id: hostileIncID, typ: BackupFull, img: h.img})
		id := h.child(hostileNewerID, hostileIncID, BackupIncremental, nil)
		h.refused(t, id, "no complete backup "+hostileIncID+" of database finance", true)

		// The other database's manifest copied under this one's prefix.
		data, err := h.bucket.ReadAll(ctx, ManifestKey("payroll", hostileIncID))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.bucket.WriteAll(ctx, ManifestKey(hostileDB, hostileIncID), data, nil); err != nil {
			t.Fatal(err)
		}
		h.refused(t, id, "manifest is of payroll/"+hostileIncID+", stored as finance/"+hostileIncID, true)
	})

	t.Run("a parent of another page size", func(t *testing.T) {
		h := newHostileRepo(t, bucketKinds[0].open(t))
		id := h.child(hostileIncID, hostileFullID, BackupIncremental, func(m *Manifest) {
			m.PageSize, m.PageCount, m.ImageBytes = 1024, 100, 102400
		})
		h.refused(t, id, "has page size 512, its child "+hostileIncID+" 1024", true)
	})

	t.Run("an incremental that grows the image without storing the new pages", func(t *testing.T) {
		h := newHostileRepo(t, bucketKinds[0].open(t))
		id := h.child(hostileIncID, hostileFullID, BackupIncremental, func(m *Manifest) {
			m.PageCount, m.ImageBytes = 0xfffffffe, 0xfffffffe*512
		})
		h.refused(t, id, "grows the image from its parent's 200 pages to 4294967294 but stores 0 pages", true)
	})

	t.Run("a sound incremental restores", func(t *testing.T) {
		h := newHostileRepo(t, bucketKinds[0].open(t))
		id := h.child(hostileIncID, hostileFullID, BackupIncremental, nil)
		path, err := h.restore(t, id)
		if err != nil {
			t.Fatal(err)
		}
		assertFileHoldsImage(t, path, h.img)
	})

	t.Run("a chain of absurd depth", func(t *testing.T) {
		h := newHostileRepo(t, bucketKinds[0].open(t))
		m, _ := h.manifest(hostileDB, hostileFullID)
		key, env := newTestDataKey(t, h.keeper)
		m.Type, m.Key, m.Chunks, m.PageIndex, m.StoredBytes, m.History = BackupIncremental, env, nil, nil, 0, nil
		start := time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)
		parent := hostileFullID
		var tip string
		for i := range maxChainLength + 1 {
			m.BackupID, m.Parent = NewBackupID(start.Add(time.Duration(i)*time.Second), fmt.Sprintf("%08x", i)), parent
			if err := h.bucket.WriteAll(ctx, ManifestKey(hostileDB, m.BackupID), mustSeal(t, key, m), nil); err != nil {
				t.Fatal(err)
			}
			parent, tip = m.BackupID, m.BackupID
		}
		want := fmt.Sprintf("the chain of %s is longer than %d backups", tip, maxChainLength)
		bounded(t, 1<<30, func() {
			_, err := Chain(ctx, h.bucket, h.keeper, hostileDB, tip)
			wantRefusal(t, "verify (chain)", err, want)
			_, err = ChainIDs(ctx, h.bucket, hostileDB, tip)
			wantRefusal(t, "verify (chain ids)", err, want)
			_, _, err = ChainFrom(ctx, []Source{{Name: "primary", Bucket: h.bucket}}, h.keeper, hostileDB, tip)
			wantRefusal(t, "restore", err, want)
		})
	})
}

// writeTombstone stores an authenticated tombstone of id, linking to link.
func (h *hostileRepo) writeTombstone(id string, link *HistoryLink) {
	h.t.Helper()
	key, env := newTestDataKey(h.t, h.keeper)
	body, err := json.Marshal(Tombstone{BackupID: id, ManifestSHA256: sha64, History: link, ForgottenAt: time.Now().UTC(), Reason: "hostile"})
	if err != nil {
		h.t.Fatal(err)
	}
	data, err := json.Marshal(tombstoneFile{Body: body, Key: env, MAC: hex.EncodeToString(key.mac([]byte("tombstone"), body))})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.bucket.WriteAll(context.Background(), TombstoneKey(hostileDB, id), data, nil); err != nil {
		h.t.Fatal(err)
	}
}

func TestHostileHistoriesAreRefused(t *testing.T) {
	ctx := context.Background()
	// Two forgotten backups, older than the full one.
	const goneA, goneB = "20260201T000000.000Z-0000000a", "20260202T000000.000Z-0000000b"

	history := func(t *testing.T, h *hostileRepo, want string) {
		t.Helper()
		var problems []string
		var err error
		bounded(t, 64<<20, func() { problems, err = CheckHistory(ctx, h.bucket, h.keeper, hostileDB, hostileFullID) })
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(problems, "\n"), want) {
			t.Errorf("history problems %q do not say %q", problems, want)
		}
	}

	t.Run("tombstones linking round a loop", func(t *testing.T) {
		h := newHostileRepo(t, bucketKinds[0].open(t))
		h.forge(func(m *Manifest) { m.History = &HistoryLink{Previous: goneB, PreviousSHA256: sha64} })
		h.writeTombstone(goneB, &HistoryLink{Previous: goneA, PreviousSHA256: sha64})
		h.writeTombstone(goneA, &HistoryLink{Previous: goneB, PreviousSHA256: sha64})
		history(t, h, "the tombstone of "+goneA+" links to "+goneB+", which is not older")
	})

	t.Run("a tombstone that is its own predecessor", func(t *testing.T) {
		h := newHostileRepo(t, bucketKinds[0].open(t))
		h.forge(func(m *Manifest) { m.History = &HistoryLink{Previous: goneA, PreviousSHA256: sha64} })
		h.writeTombstone(goneA, &HistoryLink{Previous: goneA, PreviousSHA256: sha64})
		history(t, h, "the tombstone of "+goneA+" links to "+goneA+", which is not older")
	})

	t.Run("a tombstone linking out of its prefix", func(t *testing.T) {
		h := newHostileRepo(t, bucketKinds[0].open(t))
		h.forge(func(m *Manifest) { m.History = &HistoryLink{Previous: goneA, PreviousSHA256: sha64} })
		h.writeTombstone(goneA, &HistoryLink{Previous: "../../payroll/forgotten/x", PreviousSHA256: sha64})
		history(t, h, `the history names bad input: backup id "../../payroll/forgotten/x"`)
	})

	t.Run("a tombstone recording another backup, when the next backup links to it", func(t *testing.T) {
		// No backup is listed, only an unauthenticated tombstone: the link a
		// new backup records must not come from its body unchecked.
		h := &hostileRepo{t: t, bucket: bucketKinds[0].open(t), keeper: newTestKeeper(t)}
		h.writeTombstone(goneA, nil)
		data, err := h.bucket.ReadAll(ctx, TombstoneKey(hostileDB, goneA))
		if err != nil {
			t.Fatal(err)
		}
		data = []byte(strings.Replace(string(data), goneA, "../../x", 1))
		if err := h.bucket.WriteAll(ctx, TombstoneKey(hostileDB, goneA), data, nil); err != nil {
			t.Fatal(err)
		}
		_, err = HistoryLinkFor(ctx, h.bucket, hostileDB)
		wantRefusal(t, "the next backup", err, `records backup "../../x"`)
	})
}

// sealExportManifest seals an export manifest body as WriteExportManifest
// does, without its checks or its format number.
func sealExportManifest(t *testing.T, key *DataKey, body any) []byte {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(manifestFile{Body: b, MAC: hex.EncodeToString(key.mac([]byte("export manifest"), b))})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestHostileExportManifestsAreRefused(t *testing.T) {
	ctx := context.Background()
	h := newHostileRepo(t, bucketKinds[0].open(t))
	_, key := h.manifest(hostileDB, hostileFullID)
	w, err := NewExportWriter(ctx, h.bucket, key, hostileDB, hostileFullID, "csv", "accounts.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, "id,name\n1,alice\n"); err != nil {
		t.Fatal(err)
	}
	good, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	good.Rows, good.Table = 1, "accounts"

	for _, tc := range []struct {
		name   string
		kind   string // the kind asked for
		mutate func(m *ExportManifest)
		want   string
	}{
		{"file name with path traversal", "csv", func(m *ExportManifest) { m.Files[0].Name = "../../../../etc/cron.d/x" }, `export file name "../../../../etc/cron.d/x"`},
		{"file name ..", "csv", func(m *ExportManifest) { m.Files[0].Name = ".." }, `export file name ".."`},
		{"absolute file name", "csv", func(m *ExportManifest) { m.Files[0].Name = "/etc/passwd" }, `export file name "/etc/passwd"`},
		{"file name with backslashes", "csv", func(m *ExportManifest) { m.Files[0].Name = `..\..\x.csv` }, `export file name`},
		{"file name with a NUL", "csv", func(m *ExportManifest) { m.Files[0].Name = "a.csv\x00.sh" }, `export file name`},
		{"file name with a newline", "csv", func(m *ExportManifest) { m.Files[0].Name = "a\nb.csv" }, `export file name`},
		{"empty file name", "csv", func(m *ExportManifest) { m.Files[0].Name = "" }, `export file name ""`},
		{"hidden file name", "csv", func(m *ExportManifest) { m.Files[0].Name = ".bashrc" }, `export file name ".bashrc"`},
		{"a file name twice", "csv", func(m *ExportManifest) { m.Files = append(m.Files, m.Files[0]) }, `export file name "accounts.csv" appears twice`},
		{"negative file size", "csv", func(m *ExportManifest) { m.Files[0].Bytes = -1 }, `has bytes -1`},
		{"file hash not in hex", "csv", func(m *ExportManifest) { m.Files[0].SHA256 = strings.Repeat("z", 64) }, `sha256 "zzzz`},
		{"part above the object limit", "csv", func(m *ExportManifest) { m.Files[0].Parts[0].StoredBytes = MaxChunkBytes + 1 }, `part 0 of export file "accounts.csv" has absurd size`},
		{"part hash too short", "csv", func(m *ExportManifest) { m.Files[0].Parts[0].StoredSHA256 = "ab" }, `part 0 of export file "accounts.csv" has absurd size`},
		{"format from the future", "csv", func(m *ExportManifest) { m.Format = FormatVersion + 1 }, "upgrade Bulwark"},
		{"manifest of another kind", "csv", func(m *ExportManifest) { m.Kind = "sql" }, "export manifest is of " + hostileFullID + "/sql"},
		{"manifest of another backup", "csv", func(m *ExportManifest) { m.BackupID = hostileIncID }, "export manifest is of " + hostileIncID + "/csv"},
		{"kind with path traversal", "../../../payroll/backups/x/exports/csv", nil, `export kind "../../../payroll/backups/x/exports/csv"`},
		{"kind with a NUL", "csv\x00", nil, `export kind`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := ExportManifest{Format: FormatVersion, BackupID: hostileFullID, Kind: "csv", Files: []ExportFile{good}}
			m.Files[0].Parts = append([]ObjectRef(nil), good.Parts...)
			if tc.mutate != nil {
				tc.mutate(&m)
			}
			if err := h.bucket.WriteAll(ctx, ExportManifestKey(hostileDB, hostileFullID, "csv"), sealExportManifest(t, key, m), nil); err != nil {
				t.Fatal(err)
			}
			bounded(t, 16<<20, func() {
				_, err := ReadExportManifest(ctx, h.bucket, key, hostileDB, hostileFullID, tc.kind)
				wantRefusal(t, "fetch export", err, tc.want)
			})
		})
	}

	t.Run("a table name is data, never a path", func(t *testing.T) {
		m := ExportManifest{Format: FormatVersion, BackupID: hostileFullID, Kind: "csv", Files: []ExportFile{good}}
		m.Files[0].Table = "../../../../etc/passwd"
		if err := h.bucket.WriteAll(ctx, ExportManifestKey(hostileDB, hostileFullID, "csv"), sealExportManifest(t, key, m), nil); err != nil {
			t.Fatal(err)
		}
		got, err := ReadExportManifest(ctx, h.bucket, key, hostileDB, hostileFullID, "csv")
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		if err := CopyExportFile(ctx, h.bucket, key, hostileDB, hostileFullID, "csv", got.Files[0], &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != "id,name\n1,alice\n" || got.Files[0].Name != "accounts.csv" {
			t.Fatalf("got %q in %q", out.String(), got.Files[0].Name)
		}
	})
}

// restore restores backup id into a new directory, as the restore activity
// does (the chain from every source, then the image into a file), and
// checks that nothing but the target file was written under the directory
// and that it is no larger than the backup's image. It returns the target.
func (h *hostileRepo) restore(t *testing.T, id string) (string, error) {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	target := filepath.Join(root, "srv", "db", "restored.db")
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		t.Fatal(err)
	}
	var err error
	var claimed int64
	bounded(t, 256<<20, func() {
		var chain []Layer
		chain, _, err = ChainFrom(ctx, []Source{{Name: "primary", Bucket: h.bucket}}, h.keeper, hostileDB, id)
		if err != nil {
			return
		}
		claimed = chain[len(chain)-1].Manifest().ImageBytes
		f, ferr := os.OpenFile(target, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if ferr != nil {
			t.Error(ferr)
			return
		}
		_, err = RestoreImage(ctx, h.bucket, chain, f, RestoreOptions{Workers: 2})
		if cerr := f.Close(); cerr != nil {
			t.Error(cerr)
		}
	})
	walkErr := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir() && strings.HasPrefix(target, path+string(filepath.Separator)):
		case d.IsDir() && path == root:
		case path == target:
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Size() > claimed {
				t.Errorf("the restore target holds %d bytes, the backup's image %d", info.Size(), claimed)
			}
		default:
			t.Errorf("the restore wrote %s, outside its target %s", path, target)
		}
		return nil
	})
	if walkErr != nil {
		t.Fatal(walkErr)
	}
	return target, err
}

// forgeChunk replaces chunk index of the full backup with an object sealed
// with the backup's own key around compressed, and records it in the
// manifest as the chunk writer does: the hostile chunk authenticates and
// has the size, hash and seal tag the manifest records.
func (h *hostileRepo) forgeChunk(index int, compressed []byte) {
	h.t.Helper()
	m, key := h.manifest(hostileDB, hostileFullID)
	obj := key.SealChunk(nil, compressed, hostileFullID, index)
	if err := h.bucket.WriteAll(context.Background(), ChunkKey(hostileDB, hostileFullID, index), obj, nil); err != nil {
		h.t.Fatal(err)
	}
	sum := sha256.Sum256(obj)
	c := &m.Chunks[index]
	m.StoredBytes += int64(len(obj)) - c.StoredBytes
	c.StoredBytes, c.StoredSHA256, c.SealTag = int64(len(obj)), hex.EncodeToString(sum[:]), sealTag(obj)
	h.store(hostileDB, hostileFullID, key, m)
}

func zstdCompress(t *testing.T, payload []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(payload, nil)
}

func TestHostileRestoreStaysInItsTarget(t *testing.T) {
	for _, kind := range bucketKinds[:2] {
		t.Run(kind.name, func(t *testing.T) {
			t.Run("names in the manifest are never paths", func(t *testing.T) {
				h := newHostileRepo(t, kind.open(t))
				h.forge(func(m *Manifest) {
					m.Database.Path, m.Database.Host = "/etc/passwd", "../../../../tmp"
					m.Tables = append(m.Tables, TableRows{Name: "../../../../etc/cron.d/evil", Rows: 1}, TableRows{Name: `C:\Windows\evil`, Rows: 1})
				})
				path, err := h.restore(t, hostileFullID)
				if err != nil {
					t.Fatal(err)
				}
				assertFileHoldsImage(t, path, h.img)
			})

			// Chunks sealed with the backup's key whose contents lie about
			// their pages: each must be refused before a page is written
			// outside the image.
			pages := func(size int, numbers ...uint32) []byte {
				data := AppendPayloadHeader(nil, size, numbers)
				return append(data, make([]byte, len(numbers)*size)...)
			}
			run := func(from, n uint32) []uint32 {
				out := make([]uint32, n)
				for i := range out {
					out[i] = from + uint32(i)
				}
				return out
			}
			for _, tc := range []struct {
				name       string
				compressed func(t *testing.T) []byte
				want       string
			}{
				{"a chunk holding a page far beyond the image", func(t *testing.T) []byte {
					return zstdCompress(t, pages(512, append(run(1, 63), 1<<32-1)...))
				}, "page 4294967295 beyond the image's 200 pages"},
				{"a chunk holding other pages than the manifest says", func(t *testing.T) []byte {
					return zstdCompress(t, pages(512, run(129, 64)...))
				}, "chunk holds 64 pages from 129, manifest says 64 from 1"},
				{"a chunk of another page size", func(t *testing.T) []byte {
					return zstdCompress(t, pages(65536, run(1, 64)...))
				}, "payload page size 65536, manifest says 512"},
				{"a chunk claiming more pages than it holds", func(t *testing.T) []byte {
					return zstdCompress(t, AppendPayloadHeader(nil, 512, run(1, 64))[:8+4*10])
				}, "payload claims 64 pages in 48 bytes"},
				{"a chunk with pages out of order", func(t *testing.T) []byte {
					return zstdCompress(t, pages(512, append([]uint32{2, 1}, run(3, 62)...)...))
				}, "page numbers not increasing at entry 1 (1 after 2)"},
				{"a chunk that is not zstd", func(t *testing.T) []byte { return []byte("not zstd at all") }, "decompress chunk 0"},
				{"a decompression bomb", func(t *testing.T) []byte {
					return zstdCompress(t, make([]byte, MaxChunkBytes+(1<<20)))
				}, "decompress chunk 0"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					h := newHostileRepo(t, kind.open(t))
					h.forgeChunk(0, tc.compressed(t))
					_, err := h.restore(t, hostileFullID)
					wantRefusal(t, "restore", err, tc.want)
				})
			}
		})
	}
}

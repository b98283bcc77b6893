package repository

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"gocloud.dev/blob/fileblob"
)

// A chunk object that authenticates but is not the one the manifest
// recorded (re-sealed: the same pages under a new nonce, as a stale copy
// from an earlier attempt would be) is refused by the recorded seal tag,
// and, in a manifest without seal tags, by the object hash.
func TestRestoreRefusesAnAuthenticButDifferentChunk(t *testing.T) {
	ctx := context.Background()
	keeper := newTestKeeper(t)
	for _, withTags := range []bool{true, false} {
		bucket := openFileBucket(t, &fileblob.Options{CreateDir: true, NoTempDir: true})
		key, env := newTestDataKey(t, keeper)
		img := newTestImage(300, 4096, "v1")
		refs, _ := uploadImage(t, ChunkWriterOptions{Bucket: bucket, Database: "ledger", BackupID: testBackupID, Key: key}, img, 64)
		for _, r := range refs {
			if len(r.SealTag) != 2*sealTagSize {
				t.Fatalf("chunk %d recorded no seal tag: %+v", r.Index, r)
			}
		}
		m := fullManifest("ledger", testBackupID, img, env, refs)
		if !withTags {
			for i := range m.Chunks {
				m.Chunks[i].SealTag = ""
			}
		}
		chunk := ChunkKey("ledger", testBackupID, 2)
		obj, err := bucket.ReadAll(ctx, chunk)
		if err != nil {
			t.Fatal(err)
		}
		compressed, err := key.OpenChunk(nil, obj, testBackupID, 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := bucket.WriteAll(ctx, chunk, key.SealChunk(nil, compressed, testBackupID, 2), nil); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(t.TempDir(), "restored.db"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = RestoreImage(ctx, bucket, oneLayer(key, m), f, RestoreOptions{Workers: 2})
		f.Close()
		var oe *ObjectError
		if !errors.Is(err, ErrCorrupt) || !errors.As(err, &oe) || oe.Key != chunk {
			t.Fatalf("seal tags recorded %v: restore of a re-sealed chunk: %v", withTags, err)
		}
	}
}

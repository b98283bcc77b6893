package repository

import (
	"context"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
)

// historyFixture stores five backups of ledger (a full, two incrementals, a
// differential, a second full), each linked to the one before.
func historyFixture(t *testing.T, bucket *blob.Bucket, keeper SecretsKeeper) []string {
	t.Helper()
	v1 := newTestImage(40, 4096, "v1")
	v2 := v1.clone()
	v2.resize(50, "v2")
	v3 := v2.clone()
	copy(v3.data[4096:], pageContents(2, 4096, "v3"))
	storeBackup(t, bucket, keeper, "ledger", backupSpec{id: fullID, typ: BackupFull, img: v1})
	storeBackup(t, bucket, keeper, "ledger", backupSpec{id: inc1ID, typ: BackupIncremental, parent: v1, parentID: fullID, img: v2})
	storeBackup(t, bucket, keeper, "ledger", backupSpec{id: inc2ID, typ: BackupIncremental, parent: v2, parentID: inc1ID, img: v3})
	storeBackup(t, bucket, keeper, "ledger", backupSpec{id: diffID, typ: BackupDifferential, parent: v1, parentID: fullID, img: v3})
	storeBackup(t, bucket, keeper, "ledger", backupSpec{id: full2ID, typ: BackupFull, img: v3})
	return []string{fullID, inc1ID, inc2ID, diffID, full2ID}
}

func TestHistoryDetectsRemovedAndAlteredBackups(t *testing.T) {
	ctx := context.Background()
	for _, kind := range bucketKinds {
		t.Run(kind.name, func(t *testing.T) {
			keeper := newTestKeeper(t)

			t.Run("an intact history has no problems, and links run newest to oldest", func(t *testing.T) {
				bucket := kind.open(t)
				ids := historyFixture(t, bucket, keeper)
				if problems, err := CheckHistory(ctx, bucket, keeper, "ledger", full2ID); err != nil || len(problems) != 0 {
					t.Fatalf("problems %v, %v", problems, err)
				}
				for i, id := range ids {
					b, err := ReadBackup(ctx, bucket, "ledger", id)
					if err != nil {
						t.Fatal(err)
					}
					if i == 0 && b.Manifest.History != nil || i > 0 && (b.Manifest.History == nil || b.Manifest.History.Previous != ids[i-1]) {
						t.Fatalf("%s links to %+v", id, b.Manifest.History)
					}
				}
			})

			t.Run("a backup deleted behind Bulwark's back is named, and the walk goes on", func(t *testing.T) {
				bucket := kind.open(t)
				historyFixture(t, bucket, keeper)
				for _, id := range []string{inc1ID, diffID} {
					objs, _ := BackupObjects(ctx, bucket, "ledger", id)
					for _, o := range objs {
						bucket.Delete(ctx, o.Key)
					}
				}
				problems, err := CheckHistory(ctx, bucket, keeper, "ledger", full2ID)
				if err != nil {
					t.Fatal(err)
				}
				all := strings.Join(problems, "\n")
				if len(problems) != 2 || !strings.Contains(all, "backup "+diffID+" is missing") || !strings.Contains(all, "backup "+inc1ID+" is missing") || !strings.Contains(all, "no tombstone") {
					t.Fatalf("problems:\n%s", all)
				}
			})

			t.Run("a backup forgotten by Bulwark leaves a tombstone and the history stays whole", func(t *testing.T) {
				bucket := kind.open(t)
				historyFixture(t, bucket, keeper)
				if err := WriteTombstone(ctx, bucket, keeper, "ledger", diffID, "retention: no rule keeps it", time.Now()); err != nil {
					t.Fatal(err)
				}
				objs, _ := BackupObjects(ctx, bucket, "ledger", diffID)
				for _, o := range objs {
					bucket.Delete(ctx, o.Key)
				}
				if problems, err := CheckHistory(ctx, bucket, keeper, "ledger", full2ID); err != nil || len(problems) != 0 {
					t.Fatalf("problems %v, %v", problems, err)
				}
				// A forged tombstone (altered body) is not trusted.
				key := TombstoneKey("ledger", diffID)
				data, _ := bucket.ReadAll(ctx, key)
				forged := strings.Replace(string(data), "retention: no rule keeps it", "retention: no rule keeps it!", 1)
				bucket.WriteAll(ctx, key, []byte(forged), nil)
				problems, _ := CheckHistory(ctx, bucket, keeper, "ledger", full2ID)
				if len(problems) != 1 || !strings.Contains(problems[0], "tombstone of "+diffID+" cannot be trusted") {
					t.Fatalf("forged tombstone: %v", problems)
				}
			})

			t.Run("a manifest replaced by another validly sealed one is named", func(t *testing.T) {
				bucket := kind.open(t)
				historyFixture(t, bucket, keeper)
				// An insider with the keeper re-seals inc2 with changed row
				// counts: it authenticates, but is not what diff recorded.
				b, _ := ReadBackup(ctx, bucket, "ledger", inc2ID)
				key, err := b.Open(ctx, keeper)
				if err != nil {
					t.Fatal(err)
				}
				m := *b.Manifest
				m.Tables = []TableRows{{Name: "entries", Rows: 1}}
				if _, err := WriteManifest(ctx, bucket, key, &m); err != nil {
					t.Fatal(err)
				}
				problems, _ := CheckHistory(ctx, bucket, keeper, "ledger", full2ID)
				if len(problems) != 1 || !strings.Contains(problems[0], "backup "+inc2ID+" was altered or replaced") {
					t.Fatalf("problems %v", problems)
				}
			})
		})
	}
}

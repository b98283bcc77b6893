package sqlitesrc

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-dr/bulwark/repository"
)

// contentDigest hashes the schema and every row of every table, in a stable
// order: equal digests mean equal databases, whatever the page layout.
func contentDigest(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := sha256.New()
	var tables []string
	rows, err := db.Query(`SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, ddl string
		rows.Scan(&name, &ddl)
		fmt.Fprintf(h, "%s\n", ddl)
		tables = append(tables, name)
	}
	rows.Close()
	for _, tbl := range tables {
		r, err := db.Query(`SELECT * FROM ` + QuoteIdent(tbl) + ` ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := r.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for r.Next() {
			r.Scan(ptrs...)
			fmt.Fprintf(h, "%s:%v\n", tbl, vals)
		}
		r.Close()
	}
	return hex.EncodeToString(h.Sum(nil))
}

// mutate applies one random change: inserts, updates, deletes, a schema
// change, or a VACUUM that shrinks and renumbers pages.
func mutate(t *testing.T, db *sql.DB, rng *rand.Rand, step int) string {
	t.Helper()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("step %d: %s: %v", step, q, err)
		}
	}
	switch op := rng.IntN(7); op {
	case 0, 1:
		n := 50 + rng.IntN(400)
		tx, _ := db.Begin()
		for i := 0; i < n; i++ {
			tx.Exec(`INSERT INTO entries(account, amount, memo, blob) VALUES (?, ?, ?, randomblob(?))`, 1+rng.IntN(2), rng.IntN(10000)-5000, strings.Repeat("ünïcödé ", rng.IntN(20)), rng.IntN(600))
		}
		tx.Commit()
		return fmt.Sprintf("insert %d", n)
	case 2:
		exec(`UPDATE entries SET amount = amount + ?, memo = 'updated' WHERE id % ? = 0`, rng.IntN(100), 2+rng.IntN(20))
		return "update"
	case 3:
		exec(`DELETE FROM entries WHERE id % ? = ?`, 3+rng.IntN(5), rng.IntN(3))
		return "delete"
	case 4:
		name := fmt.Sprintf("extra_%d", step)
		exec(`CREATE TABLE ` + name + `(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID`)
		exec(`INSERT INTO `+name+` SELECT 'k' || id, blob FROM entries WHERE id % ? = 0`, 2+rng.IntN(4))
		exec(`CREATE INDEX ` + name + `_v ON ` + name + `(v)`)
		return "create table " + name
	case 5:
		var name string
		if db.QueryRow(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'extra_%' ORDER BY random() LIMIT 1`).Scan(&name) == nil {
			exec(`DROP TABLE ` + name)
			return "drop table " + name
		}
		exec(`ALTER TABLE entries ADD COLUMN c` + fmt.Sprint(step) + ` TEXT DEFAULT 'x'`)
		return "add column"
	default:
		exec(`DELETE FROM entries WHERE id % 2 = 0`)
		exec(`VACUUM`)
		return "delete half and vacuum"
	}
}

func TestPropertyEveryBackupOfEveryTypeRestoresItsSnapshot(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			f := newFixture(t)
			path := newLedger(t, 2000)
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			type snapshot struct {
				id, op, typ, fileHash, digest string
			}
			var snaps []snapshot
			base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
			types := []repository.BackupType{repository.BackupFull, repository.BackupIncremental, repository.BackupDifferential}
			for step := 0; step < 14; step++ {
				op := mutate(t, db, rng, step)
				// Checkpoint so that the file itself is the database's image:
				// the restored file must equal it byte for byte.
				if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
					t.Fatal(err)
				}
				typ := types[rng.IntN(3)]
				if step == 0 {
					typ = repository.BackupIncremental // the first becomes full and says so
				}
				id := repository.NewBackupID(base.Add(time.Duration(step)*time.Minute), fmt.Sprintf("%08x", step))
				res, err := f.backup(t, path, id, func(o *BackupOptions) { o.Type = typ })
				if err != nil {
					t.Fatalf("step %d (%s) %s backup: %v", step, op, typ, err)
				}
				m := res.Manifest
				if step == 0 && (m.Type != repository.BackupFull || m.FullBecause == "") {
					t.Fatalf("first backup asked as incremental: type %s, reason %q", m.Type, m.FullBecause)
				}
				if step > 0 && m.Type != typ {
					t.Fatalf("step %d: asked %s, got %s (%s)", step, typ, m.Type, m.FullBecause)
				}
				if m.Type != repository.BackupFull && res.ChangedPages >= m.PageCount && m.PageCount > 20 {
					t.Errorf("step %d: %s backup stored all %d pages", step, m.Type, m.PageCount)
				}
				fh, _ := mustHash(t, path)
				if fh != m.ImageDigest() {
					t.Fatalf("step %d: manifest image hash differs from the checkpointed file", step)
				}
				snaps = append(snaps, snapshot{id: id, op: op, typ: string(m.Type), fileHash: fh, digest: contentDigest(t, path)})
			}
			// Every backup restores to its own moment, byte for byte.
			for i, s := range snaps {
				out, err := f.restore(t, s.id)
				if err != nil {
					t.Fatalf("restore of backup %d (%s after %q): %v", i, s.typ, s.op, err)
				}
				if h, _ := mustHash(t, out); h != s.fileHash {
					t.Fatalf("backup %d (%s after %q) restores to different bytes", i, s.typ, s.op)
				}
				if d := contentDigest(t, out); d != s.digest {
					t.Fatalf("backup %d (%s after %q) restores different rows", i, s.typ, s.op)
				}
				os.Remove(out)
			}
		})
	}
}

func TestChainDamageNamesAffectedBackupsAndRestoreFailsCleanly(t *testing.T) {
	f := newFixture(t)
	path := newLedger(t, 3000)
	db, _ := sql.Open("sqlite", path)
	defer db.Close()
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i, typ := range []repository.BackupType{repository.BackupFull, repository.BackupIncremental, repository.BackupIncremental, repository.BackupDifferential} {
		db.Exec(`UPDATE entries SET memo = ? WHERE id % 7 = ?`, fmt.Sprint("round ", i), i)
		id := repository.NewBackupID(base.Add(time.Duration(i)*time.Hour), fmt.Sprintf("%08x", i))
		if _, err := f.backup(t, path, id, func(o *BackupOptions) { o.Type = typ }); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	ctx := context.Background()
	// Damage the first incremental: the second depends on it, the
	// differential (on the full) does not.
	victim := repository.ChunkKey("ledger", ids[1], 0)
	orig, _ := f.bucket.ReadAll(ctx, victim)
	f.bucket.WriteAll(ctx, victim, append([]byte{}, orig[:len(orig)-1]...), nil)
	err := repository.CheckObjects(ctx, f.bucket, f.keeper.Keeper, "ledger", ids[1])
	if !errors.Is(err, repository.ErrCorrupt) {
		t.Fatalf("check of the damaged backup: %v", err)
	}
	affected, _ := repository.Dependents(ctx, f.bucket, "ledger", ids[1])
	if strings.Join(affected, ",") != ids[1]+","+ids[2] {
		t.Fatalf("affected %v, want %v", affected, ids[1:3])
	}
	if _, err := f.restore(t, ids[2]); !errors.Is(err, repository.ErrCorrupt) {
		t.Fatalf("restore of a backup whose parent is corrupt: %v", err)
	}
	if _, err := f.restore(t, ids[3]); err != nil {
		t.Fatalf("the differential does not depend on the damaged incremental: %v", err)
	}
	// A missing parent manifest.
	f.bucket.WriteAll(ctx, victim, orig, nil)
	f.bucket.Delete(ctx, repository.ManifestKey("ledger", ids[1]))
	_, err = f.restore(t, ids[2])
	if !errors.Is(err, repository.ErrNotFound) || !strings.Contains(err.Error(), ids[1]) {
		t.Fatalf("restore with a missing parent: %v", err)
	}
	if _, statErr := os.Stat(filepath.Join(f.dir, ids[2]+".db")); statErr == nil {
		t.Fatal("a failed chain restore left a file")
	}
	// A new incremental cannot build on the broken chain and says so.
	res, err := f.backup(t, path, repository.NewBackupID(base.Add(5*time.Hour), "00000005"), func(o *BackupOptions) { o.Type = repository.BackupIncremental })
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Type != repository.BackupIncremental || res.Manifest.Parent != ids[3] {
		t.Fatalf("new incremental: %s on %s (%s)", res.Manifest.Type, res.Manifest.Parent, res.Manifest.FullBecause)
	}
}

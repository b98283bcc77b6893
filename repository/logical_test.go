package repository

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"
)

// writeLogical stores a logical backup with two files and returns its id.
func writeLogical(t *testing.T, lb *LogicalBackup, files map[string]string) *Manifest {
	t.Helper()
	for _, name := range []string{"schema.json", "0001 T.rows"} {
		w, err := lb.Create(ExportOracle, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, files[name]); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	m := &Manifest{
		Logical:    &LogicalInfo{Schema: "FINANCE", SCN: "1234567", Exports: []string{ExportOracle}, DDLStable: true},
		Tables:     []TableRows{{Name: "T", Rows: 3, Digest: "rowsum-sha256:00"}},
		StartedAt:  time.Now(),
		SnapshotAt: time.Now(),
		Tool:       "test",
	}
	if _, _, err := lb.Commit(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLogicalBackupRoundTrip(t *testing.T) {
	ctx := context.Background()
	bucket := memblob.OpenBucket(nil)
	keeper := newTestKeeper(t)
	id := NewBackupID(time.Now(), "0123abcd")
	lb, err := NewLogicalBackup(ctx, bucket, keeper, "test", "central", id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Repeat("row data ", 1<<20) // several parts
	files := map[string]string{"schema.json": `{"format":1}`, "0001 T.rows": rows}
	// Until the manifest is written the backup is not listed.
	w, _ := lb.Create(ExportOracle, "schema.json")
	io.WriteString(w, "partial")
	if ids, err := ListBackups(ctx, bucket, "central"); err != nil || len(ids) != 0 {
		t.Fatalf("listed before commit: %v %v", ids, err)
	}
	w.Close()
	lb.files = map[string][]ExportFile{}
	writeLogical(t, lb, files)

	ids, err := ListBackups(ctx, bucket, "central")
	if err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("ListBackups = %v, %v", ids, err)
	}
	b, err := ReadBackup(ctx, bucket, "central", id)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Manifest.IsLogical() || b.Manifest.Database.Engine != EngineOracle || b.Manifest.StoredBytes == 0 {
		t.Fatalf("manifest: %+v", b.Manifest)
	}
	lf, err := OpenLogical(ctx, bucket, keeper, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(lf.Files(ExportOracle)); got != 2 {
		t.Fatalf("%d files", got)
	}
	for name, want := range files {
		r, err := lf.Open(ExportOracle, name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != want {
			t.Fatalf("%s: %d bytes, %v", name, len(got), err)
		}
	}
	if _, err := lf.Open(ExportOracle, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}

	// The page-image paths refuse it and say what to do.
	_, err = Chain(ctx, bucket, keeper, "central", id)
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "bulwark oracle restore") {
		t.Fatalf("Chain: %v", err)
	}
	_, _, err = ChainFrom(ctx, []Source{{Name: "p", Bucket: bucket}}, keeper, "central", id)
	if !errors.Is(err, ErrBadInput) {
		t.Fatalf("ChainFrom: %v", err)
	}

	// A damaged part is found on read.
	key := exportPartKey("central", id, ExportOracle, "0001 T.rows", 1)
	obj, err := bucket.ReadAll(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	obj[len(obj)/2] ^= 1
	if err := bucket.WriteAll(ctx, key, obj, nil); err != nil {
		t.Fatal(err)
	}
	r, _ := lf.Open(ExportOracle, "0001 T.rows")
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged part read: %v", err)
	}
}

func TestLogicalManifestChecks(t *testing.T) {
	keeper := newTestKeeper(t)
	key, env := newTestDataKey(t, keeper)
	base := func() *Manifest {
		return &Manifest{Format: FormatVersion, BackupID: NewBackupID(time.Now(), "0123abcd"), Type: BackupFull,
			Database: DatabaseIdentity{Name: "central", Engine: EngineOracle}, Key: env,
			ImageHash: strings.Repeat("ab", 32),
			Logical:   &LogicalInfo{Schema: "FINANCE", SCN: "42", Exports: []string{ExportOracle}}}
	}
	cases := map[string]struct {
		edit func(*Manifest)
		want string
	}{
		"sqlite engine":  {func(m *Manifest) { m.Database.Engine = EngineSQLite }, "engine"},
		"incremental":    {func(m *Manifest) { m.Type = BackupIncremental; m.Parent = m.BackupID }, "always full"},
		"pages":          {func(m *Manifest) { m.PageSize = 4096 }, "pages or chunks"},
		"scn text":       {func(m *Manifest) { m.Logical.SCN = "12; DROP" }, "SCN"},
		"scn exponent":   {func(m *Manifest) { m.Logical.SCN = "1E+30" }, "SCN"},
		"schema quote":   {func(m *Manifest) { m.Logical.Schema = `A"B` }, "schema"},
		"unknown export": {func(m *Manifest) { m.Logical.Exports = []string{"../x"} }, "unknown export"},
		"no hash":        {func(m *Manifest) { m.ImageHash = "" }, "contents hash"},
		"negative rows":  {func(m *Manifest) { m.Tables = []TableRows{{Name: "T", Rows: -1}} }, "rows"},
		"oracle no info": {func(m *Manifest) { m.Logical = nil; m.PageSize = 4096; m.PageCount = 1; m.ImageBytes = 4096 }, "logical section"},
	}
	if _, err := ParseManifest(mustSeal(t, key, base())); err != nil {
		t.Fatalf("valid logical manifest refused: %v", err)
	}
	for name, c := range cases {
		m := base()
		c.edit(m)
		_, err := ParseManifest(mustSeal(t, key, m))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrCorrupt naming %q", name, err, c.want)
		}
	}
}

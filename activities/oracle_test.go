package activities

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/secrets/localsecrets"

	"github.com/bulwark-dr/bulwark/activities/oraclesrc"
	"github.com/bulwark-dr/bulwark/repository"
)

// oracleTestBackup stores a logical backup the way BackupOracle does, from
// rows given here instead of a live Oracle: schema.json, one row stream per
// table (every type, NULLs, empty and multi-piece LOBs) and a manifest with
// the row counts and digests. tamper changes what the manifest records.
func oracleTestBackup(t *testing.T, bucket *blob.Bucket, keeper repository.SecretsKeeper, id string, tamper func(*repository.Manifest)) {
	t.Helper()
	ctx := context.Background()
	lb, err := repository.NewLogicalBackup(ctx, bucket, keeper, "test", "central", id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cols := []oraclesrc.Column{
		{Name: "ID", Type: oraclesrc.TypeNumber},
		{Name: "AMOUNT", Type: oraclesrc.TypeNumber, Precision: 12, Scale: 2, HasScale: true, Nullable: true},
		{Name: "SPENT_ON", Type: oraclesrc.TypeDate, Nullable: true},
		{Name: "AT", Type: oraclesrc.TypeTimestampTZ, Nullable: true},
		{Name: "NOTE", Type: oraclesrc.TypeCLOB, Nullable: true},
		{Name: "RECEIPT", Type: oraclesrc.TypeBLOB, Nullable: true},
	}
	w, err := lb.Create(repository.ExportOracle, "0000 FINANCE_EXPENSE.rows")
	if err != nil {
		t.Fatal(err)
	}
	enc, err := oraclesrc.NewEncoder(w, cols)
	if err != nil {
		t.Fatal(err)
	}
	digest := oraclesrc.NewTableDigest(cols)
	big := strings.Repeat("ledger ", 400_000) // several LOB pieces and export parts
	for i := 0; i < 2000; i++ {
		row := []any{itoa(i + 1), itoa(i) + ".25",
			oraclesrc.DateTime{Year: 2026, Month: 1 + i%12, Day: 1 + i%28},
			oraclesrc.TimestampTZ{UTC: oraclesrc.DateTime{Year: 2026, Month: 3, Day: 29, Hour: 1, Minute: 30}, Zone: "Europe/London"},
			nil, []byte{}}
		switch i % 4 {
		case 0:
			row[4] = ""
		case 1:
			row[4] = "a note"
		case 2:
			row[5] = nil
		}
		if i == 7 {
			row[4] = big
		}
		if err := enc.WriteRow(row); err != nil {
			t.Fatal(err)
		}
		if err := digest.Add(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	specs := make([]oraclesrc.ColumnSpec, len(cols))
	for i, c := range cols {
		specs[i] = oraclesrc.SpecOf(c)
	}
	exp := oraclesrc.SchemaExport{Format: oraclesrc.SchemaFormat, Schema: "FINANCE", SCN: "4242", DDLStable: true,
		Objects: []oraclesrc.SchemaObject{{Kind: oraclesrc.KindTable, Name: "FINANCE_EXPENSE", DDL: []string{`CREATE TABLE "FINANCE_EXPENSE" ("ID" NUMBER)`},
			Columns: specs, RowsFile: "0000 FINANCE_EXPENSE.rows", Rows: 2000, Digest: digest.String()}}}
	body, _ := json.Marshal(exp)
	sw, _ := lb.Create(repository.ExportOracle, oraclesrc.SchemaFile)
	sw.Write(body)
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	m := &repository.Manifest{
		Logical:  &repository.LogicalInfo{Schema: "FINANCE", SCN: "4242", Exports: []string{repository.ExportOracle}, DDLStable: true},
		Database: repository.DatabaseIdentity{Name: "central", Engine: repository.EngineOracle},
		Tables:   []repository.TableRows{{Name: "FINANCE_EXPENSE", Rows: 2000, Digest: digest.String()}},
	}
	if tamper != nil {
		tamper(m)
	}
	if _, _, err := lb.Commit(m); err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func newOracleStorage(t *testing.T) (*StorageActivities, *blob.Bucket) {
	bucket := memblob.OpenBucket(nil)
	t.Cleanup(func() { bucket.Close() })
	key, _ := localsecrets.NewRandomKey()
	keeper := localsecrets.NewKeeper(key)
	return &StorageActivities{Bucket: bucket, Keeper: keeper, TempDir: t.TempDir(), Worker: "test",
		Destinations: []Destination{{Name: "primary", Role: "primary", Bucket: bucket}}}, bucket
}

func TestVerifyDecodesAndDigestsEveryTableOfALogicalBackup(t *testing.T) {
	storage, bucket := newOracleStorage(t)
	good := repository.NewBackupID(time.Now(), "0000000a")
	oracleTestBackup(t, bucket, storage.Keeper, good, nil)
	wrong := repository.NewBackupID(time.Now().Add(time.Second), "0000000b")
	oracleTestBackup(t, bucket, storage.Keeper, wrong, func(m *repository.Manifest) {
		m.Tables[0].Digest = "rowsum-sha256:" + strings.Repeat("0", 64)
	})
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(storage)
	verify := func(id string) VerifyOutput {
		val, err := env.ExecuteActivity(storage.VerifyBackup, VerifyInput{Database: "central", BackupID: id})
		if err != nil {
			t.Fatal(err)
		}
		var out VerifyOutput
		val.Get(&out)
		return out
	}
	if out := verify(good); !out.OK {
		t.Fatalf("good logical backup: %v", out.Problems)
	}
	out := verify(wrong)
	if out.OK || len(out.Problems) != 1 || !strings.Contains(out.Problems[0], "FINANCE_EXPENSE") || !strings.Contains(out.Problems[0], "digest") {
		t.Fatalf("a wrong recorded digest was not found: %+v", out)
	}

	// A damaged part of the row stream is found and named.
	ctx := context.Background()
	it := bucket.List(&blob.ListOptions{Prefix: repository.BackupPrefix("central", good) + "exports/oracle/0000 FINANCE_EXPENSE.rows/"})
	obj, err := it.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := bucket.ReadAll(ctx, obj.Key)
	data[len(data)-20] ^= 0x40
	bucket.WriteAll(ctx, obj.Key, data, nil)
	out = verify(good)
	if out.OK || !strings.Contains(strings.Join(out.Problems, " "), "FINANCE_EXPENSE") {
		t.Fatalf("a damaged row stream verified: %+v", out)
	}
}

func TestOracleActivitiesRefuseBadInputClearly(t *testing.T) {
	storage, bucket := newOracleStorage(t)
	acts := &OracleActivities{Bucket: bucket, Keeper: storage.Keeper, Databases: map[string]OracleDatabase{
		"central": {Name: "central", Conn: oraclesrc.Conn{Host: "127.0.0.1", Port: 1, Service: "X", User: "finance"},
			Password: func() (string, error) {
				return "", errors.New("environment variable BULWARK_ORACLE_PASSWORD (the Oracle password of finance) is not set")
			},
			Schema: "FINANCE", RMANPath: ""},
	}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	id := repository.NewBackupID(time.Now(), "0000000c")
	for _, c := range []struct {
		in   SnapshotInput
		want string
	}{
		{SnapshotInput{Database: "nope", BackupID: id}, `"nope" is not configured`},
		{SnapshotInput{Database: "central", BackupID: id, Type: "incremental"}, "always full"},
		{SnapshotInput{Database: "central", BackupID: "x/../y"}, "backup id"},
		{SnapshotInput{Database: "central", BackupID: id}, "BULWARK_ORACLE_PASSWORD"},
	} {
		_, err := env.ExecuteActivity(acts.BackupOracle, c.in)
		var appErr *temporal.ApplicationError
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &appErr) || !appErr.NonRetryable() {
			t.Errorf("%+v: err = %v, want a non-retryable error naming %q", c.in, err, c.want)
		}
	}
	// A logical backup's restore refuses a SQLite backup and unknown tables
	// before it connects.
	oracleTestBackup(t, bucket, storage.Keeper, id, nil)
	_, err := env.ExecuteActivity(acts.RestoreOracle, OracleRestoreInput{Database: "central", BackupID: id, Tables: []string{"NOPE"}})
	if err == nil || !strings.Contains(err.Error(), `no table "NOPE"`) || !strings.Contains(err.Error(), "FINANCE_EXPENSE") {
		t.Fatalf("unknown table: %v", err)
	}
}

func TestRMANIsANoteWhereThereIsNone(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	acts := &OracleActivities{Databases: map[string]OracleDatabase{"central": {Name: "central"}}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	val, err := env.ExecuteActivity(acts.RMANBackup, RMANInput{Database: "central", Level: 1, Tag: "NIGHTLY"})
	if err != nil {
		t.Fatal(err)
	}
	var out RMANOutput
	val.Get(&out)
	if out.Available || !strings.Contains(out.Note, "not available on this worker") {
		t.Fatalf("%+v", out)
	}
	if _, err := env.ExecuteActivity(acts.RMANBackup, RMANInput{Database: "central", Level: 2, Tag: "X"}); err == nil || !strings.Contains(err.Error(), "level 2") {
		t.Fatalf("level 2: %v", err)
	}
}

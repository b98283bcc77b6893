package repository

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Drill records list newest first whatever order they were written in,
// limit keeps the newest, and nothing but records is listed: not an
// in-flight write, not a stray object, not another database's records.
func TestDrillRecordsListNewestFirst(t *testing.T) {
	for _, kind := range bucketKinds {
		t.Run("on "+kind.name, func(t *testing.T) {
			ctx := context.Background()
			bucket := kind.open(t)

			if recs, err := ListDrillRecords(ctx, bucket, "finance", 0); err != nil || len(recs) != 0 {
				t.Fatalf("no drills yet: got %v, %v", recs, err)
			}

			base := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
			// Written out of order; the nanosecond apart pair must still sort.
			starts := []time.Time{
				base.Add(48 * time.Hour),
				base,
				base.Add(24*time.Hour + time.Nanosecond),
				base.Add(24 * time.Hour),
				base.Add(72 * time.Hour),
			}
			for i, at := range starts {
				rec := DrillRecord{
					Database: "finance", Host: "db1", BackupID: testBackupID, StartedAt: at, FinishedAt: at.Add(time.Minute),
					OK: i%2 == 0, RestoreSeconds: float64(i), Queries: []DrillQuery{{SQL: "SELECT 1", OK: true, Columns: []string{"1"}, Row: []string{"1"}}},
				}
				key, err := WriteDrillRecord(ctx, bucket, rec)
				if err != nil {
					t.Fatal(err)
				}
				if want := "databases/finance/drills/" + at.Format("20060102T150405.000000000Z") + ".json"; key != want {
					t.Fatalf("key %s, want %s", key, want)
				}
			}
			// What must not be listed: an in-flight write of a file://
			// bucket, objects not named like a record, a subdirectory, and
			// the records of a database whose name extends this one's.
			later := DrillRecordKey("finance", base.Add(96*time.Hour))
			for _, key := range []string{later + ".3141592.tmp", DrillsPrefix("finance") + "notes.txt", DrillsPrefix("finance") + "latest.json", DrillsPrefix("finance") + "old/" + "20261101T030000.000000000Z.json"} {
				if err := bucket.WriteAll(ctx, key, []byte(`{"database":"finance","ok":true}`), nil); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := WriteDrillRecord(ctx, bucket, DrillRecord{Database: "finance-eu", StartedAt: base.Add(120 * time.Hour)}); err != nil {
				t.Fatal(err)
			}

			recs, err := ListDrillRecords(ctx, bucket, "finance", 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []time.Time
			for _, r := range recs {
				got = append(got, r.StartedAt)
				if r.Key != DrillRecordKey("finance", r.StartedAt) || r.Database != "finance" {
					t.Errorf("record %+v has the wrong key or database", r)
				}
			}
			want := []time.Time{starts[4], starts[0], starts[2], starts[3], starts[1]}
			if len(got) != len(want) {
				t.Fatalf("listed %v, want %v", got, want)
			}
			for i := range want {
				if !got[i].Equal(want[i]) {
					t.Fatalf("listed %v, want %v (newest first)", got, want)
				}
			}
			if q := recs[0].Queries; len(q) != 1 || !reflect.DeepEqual(q[0].Row, []string{"1"}) || recs[0].RestoreSeconds != 4 || !recs[0].OK {
				t.Errorf("record did not round-trip: %+v", recs[0])
			}

			limited, err := ListDrillRecords(ctx, bucket, "finance", 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(limited) != 2 || !limited[0].StartedAt.Equal(starts[4]) || !limited[1].StartedAt.Equal(starts[0]) {
				t.Fatalf("limit 2 listed %+v, want the two newest", limited)
			}
		})
	}
}

// Writing the same drill again (an activity retry) replaces its record.
func TestDrillRecordRetryRewritesTheSameObject(t *testing.T) {
	ctx := context.Background()
	bucket := bucketKinds[1].open(t)
	at := time.Date(2026, 11, 1, 3, 0, 0, 123, time.UTC)
	rec := DrillRecord{Database: "finance", StartedAt: at, Problems: []string{"first attempt"}}
	k1, err := WriteDrillRecord(ctx, bucket, rec)
	if err != nil {
		t.Fatal(err)
	}
	rec.Problems = []string{"second attempt"}
	k2, err := WriteDrillRecord(ctx, bucket, rec)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ListDrillRecords(ctx, bucket, "finance", 0)
	if err != nil {
		t.Fatal(err)
	}
	if k1 != k2 || len(recs) != 1 || recs[0].Problems[0] != "second attempt" {
		t.Fatalf("keys %s %s, records %+v", k1, k2, recs)
	}
}

// A record that is not JSON is listed as unreadable instead of hiding the
// others or failing the listing.
func TestDrillRecordUnreadableIsListedAsSuch(t *testing.T) {
	ctx := context.Background()
	bucket := bucketKinds[1].open(t)
	at := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	if _, err := WriteDrillRecord(ctx, bucket, DrillRecord{Database: "finance", StartedAt: at, OK: true}); err != nil {
		t.Fatal(err)
	}
	bad := DrillRecordKey("finance", at.Add(time.Hour))
	if err := bucket.WriteAll(ctx, bad, []byte("{"), nil); err != nil {
		t.Fatal(err)
	}
	recs, err := ListDrillRecords(ctx, bucket, "finance", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Key != bad || recs[0].OK || len(recs[0].Problems) != 1 || !strings.Contains(recs[0].Problems[0], "unreadable drill record") || !recs[1].OK {
		t.Fatalf("got %+v", recs)
	}
}

func TestDrillRecordBadInput(t *testing.T) {
	ctx := context.Background()
	bucket := bucketKinds[0].open(t)
	if _, err := WriteDrillRecord(ctx, bucket, DrillRecord{Database: "../payroll", StartedAt: time.Now()}); !errors.Is(err, ErrBadInput) {
		t.Errorf("bad database name: %v", err)
	}
	if _, err := WriteDrillRecord(ctx, bucket, DrillRecord{Database: "finance"}); !errors.Is(err, ErrBadInput) {
		t.Errorf("no start time: %v", err)
	}
	if _, err := ListDrillRecords(ctx, bucket, "Finance/..", 0); !errors.Is(err, ErrBadInput) {
		t.Errorf("listing a bad name: %v", err)
	}
}

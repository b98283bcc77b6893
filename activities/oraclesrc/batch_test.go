package oraclesrc

import (
	"database/sql"
	"reflect"
	"strings"
	"testing"
)

func sliceLen(t *testing.T, a any) int {
	t.Helper()
	v := reflect.ValueOf(a)
	if v.Kind() != reflect.Slice {
		t.Fatalf("bind %T is not a slice", a)
	}
	return v.Len()
}

func TestBatcherOrderAndTypes(t *testing.T) {
	cols := []Column{
		{Name: "DOC", Type: TypeCLOB},
		{Name: "ID", Type: TypeNumber},
		{Name: "PIC", Type: TypeBLOB},
		{Name: "AT", Type: TypeTimestampTZ},
		{Name: "F", Type: TypeBinaryFloat},
		{Name: "R", Type: TypeRaw},
	}
	b, err := NewBatcher(cols, BatchLimits{MaxRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range b.Columns() {
		names = append(names, c.Name)
	}
	if want := []string{"ID", "AT", "F", "R", "DOC", "PIC"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("insert order = %v, want %v (LOBs last, otherwise table order)", names, want)
	}
	ins, err := InsertSQL("APP", "T", b.Columns())
	if err != nil {
		t.Fatal(err)
	}
	wantSQL := `INSERT INTO "APP"."T" ("ID", "AT", "F", "R", "DOC", "PIC") VALUES (:1, ` +
		`FROM_TZ(TO_TIMESTAMP(:2, 'SYYYY-MM-DD HH24:MI:SS.FF9'), 'UTC') AT TIME ZONE :3, :4, :5, :6, :7)`
	if ins != wantSQL {
		t.Fatalf("insert =\n%s\nwant\n%s", ins, wantSQL)
	}
	tz := TimestampTZ{UTC: dt(2024, 7, 1, 11, 0, 0, 5), Zone: "Europe/London"}
	if got, _ := b.Add([]any{"body", "0012.0", []byte{}, tz, float32(2), []byte{9}}); got != nil {
		t.Fatal("batch returned after one row of two")
	}
	// The second row is all NULL: slices keep their element types.
	got, err := b.Add(make([]any, 6))
	if err != nil || got == nil {
		t.Fatalf("second row: %v, %v", got, err)
	}
	want := &Batch{Rows: 2, Args: []any{
		[]sql.NullString{{String: "12", Valid: true}, {}},
		[]sql.NullString{{String: "2024-07-01 11:00:00.000000005", Valid: true}, {}},
		[]sql.NullString{{String: "Europe/London", Valid: true}, {}},
		[]sql.Null[float32]{{V: 2, Valid: true}, {}},
		[][]byte{{9}, nil},
		[]sql.NullString{{String: "body", Valid: true}, {}},
		[][]byte{{}, nil}, // empty BLOB stays distinct from NULL
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("batch = %#v\nwant %#v", got, want)
	}
	if f := b.Flush(); f != nil {
		t.Fatalf("Flush after a full batch = %#v, want nil (never an empty batch)", f)
	}
	if _, err := b.Add(make([]any, 5)); err == nil {
		t.Error("short row accepted")
	}
	if _, err := b.Add([]any{strings.NewReader("x"), nil, nil, nil, nil, nil}); err == nil {
		t.Error("streamed LOB accepted")
	}
	if _, err := b.Add([]any{nil, "1E200", nil, nil, nil, nil}); err == nil {
		t.Error("bad number accepted")
	}
}

func TestBatcherLimits(t *testing.T) {
	cols := []Column{{Name: "ID", Type: TypeNumber}, {Name: "B", Type: TypeBLOB}}
	tests := []struct {
		name     string
		limits   BatchLimits
		sizes    []int // BLOB size of each row
		wantRows []int // rows per batch, including the final Flush
	}{
		{"no rows", BatchLimits{MaxRows: 3}, nil, nil},
		{"exact multiple", BatchLimits{MaxRows: 2}, []int{1, 1, 1, 1}, []int{2, 2}},
		{"remainder", BatchLimits{MaxRows: 3}, []int{1, 1, 1, 1}, []int{3, 1}},
		{"bytes", BatchLimits{MaxRows: 100, MaxBytes: 100}, []int{40, 40, 40, 10}, []int{2, 2}},
		{"oversized row alone", BatchLimits{MaxRows: 100, MaxBytes: 100}, []int{10, 500, 10}, []int{1, 1, 1}},
		{"defaults", BatchLimits{}, make([]int, 2500), []int{1000, 1000, 500}},
	}
	for _, tt := range tests {
		b, err := NewBatcher(cols, tt.limits)
		if err != nil {
			t.Fatal(err)
		}
		var rows []int
		check := func(bt *Batch) {
			if bt == nil {
				return
			}
			if bt.Rows == 0 {
				t.Errorf("%s: empty batch", tt.name)
			}
			for _, a := range bt.Args {
				if n := sliceLen(t, a); n != bt.Rows {
					t.Errorf("%s: slice of %d, batch of %d", tt.name, n, bt.Rows)
				}
			}
			rows = append(rows, bt.Rows)
		}
		for i, n := range tt.sizes {
			bt, err := b.Add([]any{"1", make([]byte, n)})
			if err != nil {
				t.Fatalf("%s row %d: %v", tt.name, i, err)
			}
			check(bt)
		}
		check(b.Flush())
		if !reflect.DeepEqual(rows, tt.wantRows) {
			t.Errorf("%s: batches %v, want %v", tt.name, rows, tt.wantRows)
		}
	}
	if _, err := NewBatcher(cols, BatchLimits{MaxRows: -1}); err == nil {
		t.Error("negative limit accepted")
	}
	if _, err := NewBatcher(nil, BatchLimits{}); err == nil {
		t.Error("no columns accepted")
	}
}

func TestFormatText(t *testing.T) {
	tests := []struct{ got, want string }{
		{FormatDate(dt(-4712, 1, 1, 0, 0, 0, 0)), "-4712-01-01 00:00:00"},
		{FormatDate(dt(-1, 12, 31, 23, 59, 59, 0)), "-0001-12-31 23:59:59"},
		{FormatTimestamp(dt(9999, 12, 31, 23, 59, 59, 999999999)), "9999-12-31 23:59:59.999999999"},
		{FormatTimestamp(dt(1, 1, 1, 0, 0, 0, 1)), "0001-01-01 00:00:00.000000001"},
		{FormatIntervalYM(IntervalYM{Months: 14}), "+1-2"},
		{FormatIntervalYM(IntervalYM{Months: -11}), "-0-11"},
		{FormatIntervalYM(IntervalYM{}), "+0-0"},
		{FormatIntervalDS(IntervalDS{Days: 1, Nanos: 3723_500_000_000}), "+1 01:02:03.500000000"},
		{FormatIntervalDS(IntervalDS{Nanos: -1}), "-0 00:00:00.000000001"},
		{FormatIntervalDS(IntervalDS{Days: -maxIntervalLeading, Nanos: -(nanosPerDay - 1)}), "-999999999 23:59:59.999999999"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

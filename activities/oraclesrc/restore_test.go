package oraclesrc

import (
	"database/sql"
	"errors"
	"reflect"
	"strings"
	"testing"

	go_ora "github.com/sijms/go-ora/v2"
)

func TestPlanTableRestore(t *testing.T) {
	exp := parseFinance(t)
	names := func(objs []SchemaObject) []string {
		var out []string
		for _, o := range objs {
			if o.Kind != KindTable {
				t.Errorf("planned %s %s, not a table", o.Kind, o.Name)
			}
			out = append(out, o.Name)
		}
		return out
	}
	ok := []struct {
		opts RestoreOptions
		want []string
	}{
		{RestoreOptions{}, []string{"FINANCE_EXPENSE", "FINANCE_USER"}},
		{RestoreOptions{Mode: ModeCreate}, []string{"FINANCE_EXPENSE", "FINANCE_USER"}},
		{RestoreOptions{Mode: ModeReplace}, []string{"FINANCE_EXPENSE", "FINANCE_USER"}},
		{RestoreOptions{Tables: []string{"FINANCE_USER"}}, []string{"FINANCE_USER"}},
		{RestoreOptions{Tables: []string{"FINANCE_USER"}, Mode: ModeReplace}, []string{"FINANCE_USER"}},
		{RestoreOptions{Tables: []string{"FINANCE_USER", "FINANCE_EXPENSE"}, Mode: ModeAppend}, []string{"FINANCE_USER", "FINANCE_EXPENSE"}},
		{RestoreOptions{Tables: []string{"FINANCE_EXPENSE"}, Mode: ModeNewName, NewName: "Expenses before the incident"}, []string{"FINANCE_EXPENSE"}},
	}
	for _, tt := range ok {
		got, err := PlanTableRestore(exp, tt.opts)
		if err != nil || !reflect.DeepEqual(names(got), tt.want) {
			t.Errorf("PlanTableRestore(%+v) = %v, %v; want %v", tt.opts, names(got), err, tt.want)
		}
	}
	if got, _ := PlanTableRestore(exp, RestoreOptions{Tables: []string{"FINANCE_USER"}}); len(got) == 1 {
		if len(got[0].Columns) != 2 || got[0].RowsFile != "0000 FINANCE_USER.rows" || len(got[0].Identity) != 1 {
			t.Errorf("planned table lacks its columns, rows file or identity: %+v", got[0])
		}
	}

	bad := []struct {
		name    string
		opts    RestoreOptions
		refused bool
		why     string
	}{
		{"append to a whole schema", RestoreOptions{Mode: ModeAppend}, true, "is for single tables"},
		{"new name for a whole schema", RestoreOptions{Mode: ModeNewName, NewName: "X"}, true, "is for single tables"},
		{"bad schema mode", RestoreOptions{Mode: "merge"}, true, `mode "merge"`},
		{"bad table mode", RestoreOptions{Tables: []string{"FINANCE_USER"}, Mode: "create"}, true, `mode "create" is not replace, append or new-name`},
		{"mode in capitals", RestoreOptions{Tables: []string{"FINANCE_USER"}, Mode: "REPLACE"}, true, "is not replace"},
		{"new name with two tables", RestoreOptions{Tables: []string{"FINANCE_USER", "FINANCE_EXPENSE"}, Mode: ModeNewName, NewName: "X"},
			true, "exactly one table, not 2"},
		{"new name missing", RestoreOptions{Tables: []string{"FINANCE_USER"}, Mode: ModeNewName}, false, "new table name"},
		{"new name with quote", RestoreOptions{Tables: []string{"FINANCE_USER"}, Mode: ModeNewName, NewName: `X"; DROP`}, false, "new table name"},
		{"unknown table", RestoreOptions{Tables: []string{"FINANCE_USER", "PAYROLL"}}, true,
			`no table "PAYROLL" (it has FINANCE_EXPENSE, FINANCE_USER)`},
		{"table name case", RestoreOptions{Tables: []string{"finance_user"}}, true, `no table "finance_user"`},
		{"a constraint is not a table", RestoreOptions{Tables: []string{"FINANCE_API"}}, true, `no table "FINANCE_API"`},
	}
	for _, tt := range bad {
		got, err := PlanTableRestore(exp, tt.opts)
		if err == nil {
			t.Errorf("%s: planned %v", tt.name, names(got))
			continue
		}
		if errors.Is(err, ErrRestoreRefused) != tt.refused || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("%s: error %q (refused: %v), want refused %v saying %q", tt.name, err, errors.Is(err, ErrRestoreRefused), tt.refused, tt.why)
		}
	}
	if _, err := PlanTableRestore(exp, RestoreOptions{Tables: []string{"FINANCE_USER"}, Mode: ModeNewName, NewName: "X\x00"}); !errors.Is(err, ErrIdentifier) {
		t.Errorf("bad new name error %v does not wrap ErrIdentifier", err)
	}
}

func TestLobArgs(t *testing.T) {
	// Table order; the Batcher puts LOBs last, and the TIMESTAMP WITH TIME ZONE before them takes
	// two bind slots, so slot k is not column k.
	cols := []Column{
		{Name: "ID", Type: TypeNumber},
		{Name: "DOC", Type: TypeCLOB},
		{Name: "SPENT_AT", Type: TypeTimestampTZ},
		{Name: "PIC", Type: TypeBLOB},
		{Name: "R", Type: TypeRaw},
		{Name: "NOTE", Type: TypeNCLOB},
	}
	b, err := NewBatcher(cols, BatchLimits{})
	if err != nil {
		t.Fatal(err)
	}
	tz := TimestampTZ{UTC: dt(2024, 3, 31, 0, 30, 0, 0), Zone: "Europe/London"}
	rows := [][]any{
		{"1", "doc one", tz, []byte{1, 2}, []byte{9}, "note ✓"},
		{"2", nil, nil, nil, nil, nil},        // NULLs
		{"3", "", tz, []byte{}, []byte{}, ""}, // empty LOBs (and an empty RAW)
	}
	for _, r := range rows {
		if full, err := b.Add(r); err != nil || full != nil {
			t.Fatalf("Add: %v, %v", full, err)
		}
	}
	batch := b.Flush()
	ins := b.Columns()
	if names := []string{ins[0].Name, ins[1].Name, ins[2].Name, ins[3].Name, ins[4].Name, ins[5].Name}; !reflect.DeepEqual(names, []string{"ID", "SPENT_AT", "R", "DOC", "PIC", "NOTE"}) {
		t.Fatalf("insert order %v", names)
	}
	out := lobArgs(ins, batch.Args)
	if len(out) != len(batch.Args) || len(out) != 7 {
		t.Fatalf("%d args in, %d out", len(batch.Args), len(out))
	}
	// Slots 0..3 (ID, SPENT_AT ×2, R) are passed through untouched.
	for i := 0; i < 4; i++ {
		if !reflect.DeepEqual(out[i], batch.Args[i]) {
			t.Errorf("slot %d changed: %#v -> %#v", i, batch.Args[i], out[i])
		}
	}
	if _, ok := out[3].([][]byte); !ok {
		t.Errorf("RAW slot is %T, want [][]byte", out[3])
	}
	clobs, ok := out[4].([]go_ora.Clob)
	if !ok || len(clobs) != 3 {
		t.Fatalf("CLOB slot is %T", out[4])
	}
	for i, want := range []struct {
		s     string
		valid bool
	}{{"doc one", true}, {"", false}, {"", true}} {
		if clobs[i].String != want.s || clobs[i].Valid != want.valid {
			t.Errorf("CLOB row %d = %q valid %v, want %q valid %v", i, clobs[i].String, clobs[i].Valid, want.s, want.valid)
		}
	}
	blobs, ok := out[5].([]go_ora.Blob)
	if !ok || len(blobs) != 3 {
		t.Fatalf("BLOB slot is %T", out[5])
	}
	if !reflect.DeepEqual(blobs[0].Data, []byte{1, 2}) || blobs[1].Data != nil || blobs[2].Data == nil || len(blobs[2].Data) != 0 {
		t.Errorf("BLOBs = %#v, %#v, %#v; want data, NULL (nil), empty (non-nil)", blobs[0].Data, blobs[1].Data, blobs[2].Data)
	}
	nclobs, ok := out[6].([]go_ora.NClob)
	if !ok || len(nclobs) != 3 {
		t.Fatalf("NCLOB slot is %T", out[6])
	}
	if nclobs[0].String != "note ✓" || !nclobs[0].Valid || nclobs[1].Valid || !nclobs[2].Valid || nclobs[2].String != "" {
		t.Errorf("NCLOBs = %+v", nclobs)
	}

	// A LOB slot that does not hold the Batcher's slice type is left alone rather than guessed.
	odd := []any{[]string{"x"}, [][]byte{{1}}}
	got := lobArgs([]Column{{Name: "C", Type: TypeCLOB}, {Name: "B", Type: TypeBLOB}}, odd)
	if _, ok := got[0].([]string); !ok {
		t.Errorf("unexpected CLOB slice wrapped: %T", got[0])
	}
	if _, ok := got[1].([]go_ora.Blob); !ok {
		t.Errorf("BLOB slice not wrapped: %T", got[1])
	}
	// Two TIMESTAMP WITH TIME ZONE columns before a CLOB: slots 0..3, CLOB at 4.
	two := []Column{{Name: "A", Type: TypeTimestampTZ}, {Name: "B", Type: TypeTimestampTZ}, {Name: "C", Type: TypeCLOB}}
	args := []any{[]sql.NullString{{}}, []sql.NullString{{}}, []sql.NullString{{}}, []sql.NullString{{}}, []sql.NullString{{String: "c", Valid: true}}}
	got = lobArgs(two, args)
	if c, ok := got[4].([]go_ora.Clob); !ok || c[0].String != "c" {
		t.Errorf("CLOB after two zoned timestamps: %#v", got[4])
	}
	for i := 0; i < 4; i++ {
		if _, ok := got[i].([]sql.NullString); !ok {
			t.Errorf("slot %d of the timestamps became %T", i, got[i])
		}
	}
}

func TestSelectAll(t *testing.T) {
	cols := []Column{{Name: "ID", Type: TypeNumber}, {Name: "SPENT_AT", Type: TypeTimestampTZ}, {Name: "DOC", Type: TypeCLOB}}
	got, err := SelectAll("FINANCE", "FINANCE_EXPENSE", cols)
	if err != nil {
		t.Fatal(err)
	}
	want := `SELECT TO_CHAR("ID", 'TM9'), TO_CHAR(SYS_EXTRACT_UTC("SPENT_AT"), 'SYYYY-MM-DD HH24:MI:SS.FF9'), TO_CHAR("SPENT_AT", 'TZR'), "DOC" FROM "FINANCE"."FINANCE_EXPENSE"`
	if got != want {
		t.Errorf("SelectAll =\n%s\nwant\n%s", got, want)
	}
	asOf, _ := SelectAsOfSCN("FINANCE", "FINANCE_EXPENSE", cols)
	if asOf != want+" AS OF SCN :scn" {
		t.Errorf("SelectAsOfSCN = %s", asOf)
	}
	if strings.Contains(got, ":scn") || strings.Contains(got, "AS OF") {
		t.Errorf("SelectAll still reads at an SCN: %s", got)
	}
	// A table whose name ends like the clause keeps its name.
	got, err = SelectAll("FINANCE", "AS OF SCN", cols[:1])
	if err != nil || got != `SELECT TO_CHAR("ID", 'TM9') FROM "FINANCE"."AS OF SCN"` {
		t.Errorf("SelectAll of a table named like the clause = %q, %v", got, err)
	}
	for _, bad := range []struct {
		table string
		cols  []Column
	}{{`T"`, cols}, {"T", nil}, {"T", []Column{{Name: `C"`, Type: TypeNumber}}}} {
		if q, err := SelectAll("FINANCE", bad.table, bad.cols); err == nil {
			t.Errorf("SelectAll(%q, %v) = %q", bad.table, bad.cols, q)
		}
	}
}

func TestSameColumns(t *testing.T) {
	a := []Column{{Name: "ID", Type: TypeNumber, Precision: 10}, {Name: "DOC", Type: TypeCLOB}}
	tests := []struct {
		name string
		b    []Column
		want bool
	}{
		{"identical", []Column{{Name: "ID", Type: TypeNumber, Precision: 10}, {Name: "DOC", Type: TypeCLOB}}, true},
		// Dictionary figures may differ between schema.json and the stream's header.
		{"other precision and flags", []Column{{Name: "ID", Type: TypeNumber, Precision: 38, Nullable: true}, {Name: "DOC", Type: TypeCLOB, Length: 4000}}, true},
		{"other type", []Column{{Name: "ID", Type: TypeNumber}, {Name: "DOC", Type: TypeBLOB}}, false},
		{"other name", []Column{{Name: "ID", Type: TypeNumber}, {Name: "doc", Type: TypeCLOB}}, false},
		{"other order", []Column{{Name: "DOC", Type: TypeCLOB}, {Name: "ID", Type: TypeNumber}}, false},
		{"fewer", a[:1], false},
		{"more", append(append([]Column(nil), a...), Column{Name: "X", Type: TypeNumber}), false},
		{"none", nil, false},
	}
	for _, tt := range tests {
		if got := sameColumns(a, tt.b); got != tt.want {
			t.Errorf("%s: sameColumns = %v", tt.name, got)
		}
		if got := sameColumns(tt.b, a); got != tt.want {
			t.Errorf("%s (swapped): sameColumns = %v", tt.name, got)
		}
	}
}

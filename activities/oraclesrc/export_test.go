package oraclesrc

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestColumnFromDictionary(t *testing.T) {
	tests := []struct {
		name, dataType      string
		precision           int
		scale               sql.NullInt64
		dataLength, charLen int
		charUsed, nullable  string
		want                Column
	}{
		{"AMOUNT", "NUMBER", 12, sql.NullInt64{Int64: 2, Valid: true}, 22, 0, "B", "Y",
			Column{Name: "AMOUNT", Type: TypeNumber, Precision: 12, Scale: 2, HasScale: true, Length: 22, Nullable: true}},
		{"ID", "NUMBER", 0, sql.NullInt64{Int64: 0, Valid: true}, 22, 0, "B", "N",
			Column{Name: "ID", Type: TypeNumber, HasScale: true, Length: 22}}, // NUMBER(*,0)
		{"N", "NUMBER", 0, sql.NullInt64{}, 22, 0, "B", "Y",
			Column{Name: "N", Type: TypeNumber, Length: 22, Nullable: true}}, // plain NUMBER
		{"NOTE", "VARCHAR2", 0, sql.NullInt64{}, 1600, 400, "C", "Y",
			Column{Name: "NOTE", Type: TypeVarchar2, Length: 400, CharSemantics: true, Nullable: true}},
		{"CODE", "CHAR", 0, sql.NullInt64{}, 3, 3, "B", "N",
			Column{Name: "CODE", Type: TypeChar, Length: 3}},
		{"SPENT_AT", "TIMESTAMP(6) WITH TIME ZONE", 0, sql.NullInt64{Int64: 6, Valid: true}, 13, 0, "B", "Y",
			Column{Name: "SPENT_AT", Type: TypeTimestampTZ, Scale: 6, HasScale: true, Length: 13, Nullable: true}},
		{"SPAN", "INTERVAL DAY(3) TO SECOND(2)", 3, sql.NullInt64{Int64: 2, Valid: true}, 11, 0, "B", "Y",
			Column{Name: "SPAN", Type: TypeIntervalDS, Precision: 3, Scale: 2, HasScale: true, Length: 11, Nullable: true}},
		{"RATE", "FLOAT", 126, sql.NullInt64{}, 22, 0, "B", "Y",
			Column{Name: "RATE", Type: TypeNumber, Precision: 126, Length: 22, Nullable: true}},
		{"Mixed col", "BLOB", 0, sql.NullInt64{}, 4000, 0, "B", "Y",
			Column{Name: "Mixed col", Type: TypeBLOB, Length: 4000, Nullable: true}},
	}
	for _, tt := range tests {
		got, err := ColumnFromDictionary(tt.name, tt.dataType, tt.precision, tt.scale, tt.dataLength, tt.charLen, tt.charUsed, tt.nullable)
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
	for _, typ := range []string{"LONG", "LONG RAW", "BFILE", "XMLTYPE", "SDO_GEOMETRY", ""} {
		if c, err := ColumnFromDictionary("LEGACY", typ, 0, sql.NullInt64{}, 0, 0, "B", "Y"); err == nil || !strings.Contains(err.Error(), "LEGACY") {
			t.Errorf("type %q: %+v, %v; want an error naming the column", typ, c, err)
		}
	}
}

func TestScanDestinations(t *testing.T) {
	cols := []Column{{Name: "N", Type: TypeNumber}, {Name: "BF", Type: TypeBinaryFloat}, {Name: "BD", Type: TypeBinaryDouble},
		{Name: "TZ", Type: TypeTimestampTZ}, {Name: "R", Type: TypeRaw}, {Name: "CL", Type: TypeCLOB}, {Name: "BL", Type: TypeBLOB}}
	dest, get := scanDestinations(cols)
	if len(dest) != 8 || len(get) != 8 {
		t.Fatalf("%d destinations, %d getters for 8 select items", len(dest), len(get))
	}
	seen := map[any]bool{}
	for i, d := range dest {
		if seen[d] {
			t.Errorf("destination %d shared", i)
		}
		seen[d] = true
	}
	s := &fakeScanner{rows: [][]any{
		{"1", float32(0.1), 0.1, " 2024-01-01 00:00:00.000000000", "UTC", []byte{}, "", []byte{}},
		{nil, nil, nil, nil, nil, nil, nil, nil},
		{"2", float32(-1), -1.0, " 2024-01-01 00:00:00.000000000", "+01:00", []byte{7}, "c", []byte{8}},
	}}
	want := [][]any{
		{"1", float32(0.1), 0.1, " 2024-01-01 00:00:00.000000000", "UTC", []byte{}, "", []byte{}},
		{nil, nil, nil, nil, nil, nil, nil, nil},
		{"2", float32(-1), -1.0, " 2024-01-01 00:00:00.000000000", "+01:00", []byte{7}, "c", []byte{8}},
	}
	for r := 0; s.Next(); r++ {
		if err := s.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		for i, g := range get {
			v := g()
			if !equalValue(v, want[r][i]) {
				t.Errorf("row %d item %d = %#v (%T), want %#v (%T)", r, i, v, v, want[r][i], want[r][i])
			}
			if b, ok := v.([]byte); ok && b == nil {
				t.Errorf("row %d item %d: an empty value came back as nil bytes (NULL)", r, i)
			}
		}
	}
}

// memSink is a FileSink in memory.
type memSink struct {
	files    map[string]*bytes.Buffer
	closeErr error
}

type memFile struct {
	*bytes.Buffer
	err error
}

func (f memFile) Close() error { return f.err }

func (s *memSink) Create(name string) (io.WriteCloser, error) {
	if s.files == nil {
		s.files = map[string]*bytes.Buffer{}
	}
	if _, dup := s.files[name]; dup {
		return nil, fmt.Errorf("%s created twice", name)
	}
	b := &bytes.Buffer{}
	s.files[name] = b
	return memFile{b, s.closeErr}, nil
}

func TestExportTable(t *testing.T) {
	cols := []Column{{Name: "ID", Type: TypeNumber}, {Name: "EMAIL", Type: TypeVarchar2, Nullable: true}, {Name: "PHOTO", Type: TypeBLOB, Nullable: true}}
	o := SchemaObject{Kind: KindTable, Name: "FINANCE_USER", RowsFile: RowsFileName(0, "FINANCE_USER")}
	for _, c := range cols {
		o.Columns = append(o.Columns, SpecOf(c))
	}
	query, _ := SelectAsOfSCN("FINANCE", "FINANCE_USER", cols)
	w := &fakeWire{query: func(q string, args []driver.NamedValue) (*fakeResult, error) {
		if q != query {
			return nil, fmt.Errorf("query %q", q)
		}
		checkBinds(t, "SelectAsOfSCN", q, []string{args[0].Name})
		if len(args) != 1 || args[0].Value != "48213377" {
			return nil, fmt.Errorf("args %v", args)
		}
		return &fakeResult{width: 3, rows: [][]driver.Value{
			{"1", "ann@example.com", []byte{}},
			{"2", nil, nil},
			{"3", "bo@example.com", []byte("jpeg")},
		}}, nil
	}}
	sink := &memSink{}
	n, digest, err := exportTable(context.Background(), w.open(t), "FINANCE", "48213377", o, sink)
	if err != nil {
		t.Fatal(err)
	}
	stream, ok := sink.files["0000 FINANCE_USER.rows"]
	if n != 3 || !ok || len(sink.files) != 1 {
		t.Fatalf("exported %d rows into %v", n, sink.files)
	}
	gotCols, rows, decoded := decodeStream(t, stream.Bytes())
	if !reflect.DeepEqual(gotCols, cols) || decoded != digest {
		t.Errorf("stream columns %+v, digest %s vs %s", gotCols, decoded, digest)
	}
	want := [][]any{{"1", "ann@example.com", []byte{}}, {"2", nil, nil}, {"3", "bo@example.com", []byte("jpeg")}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows = %#v", rows)
	}

	// Undo gone: the error says what to do and keeps the cause.
	tooOld := errors.New("ORA-01555: snapshot too old: rollback segment number 9 with name \"_SYSSMU9$\" too small")
	w = &fakeWire{query: func(string, []driver.NamedValue) (*fakeResult, error) { return nil, tooOld }}
	_, _, err = exportTable(context.Background(), w.open(t), "FINANCE", "48213377", o, &memSink{})
	if !errors.Is(err, tooOld) || !strings.Contains(err.Error(), "take the backup again") || !strings.Contains(err.Error(), "48213377") {
		t.Errorf("ORA-01555: %v", err)
	}
	other := errors.New("ORA-00942: table or view does not exist")
	w = &fakeWire{query: func(string, []driver.NamedValue) (*fakeResult, error) { return nil, other }}
	_, _, err = exportTable(context.Background(), w.open(t), "FINANCE", "48213377", o, &memSink{})
	if !errors.Is(err, other) || strings.Contains(err.Error(), "take the backup again") {
		t.Errorf("ORA-00942: %v", err)
	}
	// A store that fails on Close fails the table.
	w = &fakeWire{query: func(string, []driver.NamedValue) (*fakeResult, error) {
		return &fakeResult{width: 3, rows: [][]driver.Value{{"1", nil, nil}}}, nil
	}}
	_, _, err = exportTable(context.Background(), w.open(t), "FINANCE", "48213377", o, &memSink{closeErr: errors.New("seal failed")})
	if err == nil || !strings.Contains(err.Error(), "seal failed") {
		t.Errorf("close error: %v", err)
	}
}

func TestGetDependentDDL(t *testing.T) {
	fks := "\n  ALTER TABLE \"FINANCE_EXPENSE\" ADD CONSTRAINT \"FINANCE_EXPENSE_USER_FK\" FOREIGN KEY (\"USER_ID\")\n\t  REFERENCES \"FINANCE_USER\" (\"ID\") ENABLE;\n" +
		"  ALTER TABLE \"FINANCE_EXPENSE\" ADD CONSTRAINT \"FINANCE_EXPENSE_APPROVER_FK\" FOREIGN KEY (\"APPROVER_ID\")\n\t  REFERENCES \"FINANCE_USER\" (\"ID\") ON DELETE SET NULL ENABLE;\n"
	answer := func(v any) *fakeWire {
		return &fakeWire{query: func(q string, args []driver.NamedValue) (*fakeResult, error) {
			st, _ := GetDependentDDL("REF_CONSTRAINT", "FINANCE", "FINANCE_EXPENSE")
			if q != st.SQL {
				return nil, fmt.Errorf("query %q", q)
			}
			var names []string
			for _, a := range args {
				names = append(names, a.Name)
			}
			checkBinds(t, "GetDependentDDL", q, names)
			if err, ok := v.(error); ok {
				return nil, err
			}
			return &fakeResult{width: 1, rows: [][]driver.Value{{v}}}, nil
		}}
	}
	got, err := getDependentDDL(context.Background(), answer(fks).open(t), "REF_CONSTRAINT", "FINANCE", "FINANCE_EXPENSE")
	if err != nil || len(got) != 2 || !strings.HasPrefix(got[1], `ALTER TABLE "FINANCE_EXPENSE" ADD CONSTRAINT "FINANCE_EXPENSE_APPROVER_FK"`) || strings.HasSuffix(got[0], ";") {
		t.Errorf("foreign keys = %q, %v", got, err)
	}
	none := errors.New("ORA-31608: specified object of type REF_CONSTRAINT not found\nORA-06512: at \"SYS.DBMS_METADATA\", line 6781")
	if got, err := getDependentDDL(context.Background(), answer(none).open(t), "REF_CONSTRAINT", "FINANCE", "FINANCE_EXPENSE"); err != nil || got != nil {
		t.Errorf("ORA-31608 = %q, %v; want nothing and no error", got, err)
	}
	denied := errors.New("ORA-31603: object \"FINANCE_EXPENSE\" of type TABLE not found in schema \"FINANCE\"")
	if _, err := getDependentDDL(context.Background(), answer(denied).open(t), "REF_CONSTRAINT", "FINANCE", "FINANCE_EXPENSE"); !errors.Is(err, denied) {
		t.Errorf("ORA-31603: %v", err)
	}
	if _, err := getDependentDDL(context.Background(), answer(fks).open(t), "GRANTS", "FINANCE", "FINANCE_EXPENSE"); err == nil {
		t.Error("unsupported dependent type accepted")
	}
}

// TestCatalogBinds checks the catalog queries against the binds Export passes them: go-ora
// needs every placeholder bound once and fails only against a live database otherwise.
func TestCatalogBinds(t *testing.T) {
	tests := []struct {
		name  string
		sql   string
		binds []string
	}{
		{"tables", catalogTablesSQL, []string{"schema"}}, // USER_DATAPUMP_JOBS: the job tables of the user exporting
		{"columns", catalogColumnsSQL, []string{"schema", "table_name"}},
		{"identity", catalogIdentitySQL, []string{"schema"}},
		{"objects", catalogObjectsSQL, []string{"schema"}},
		{"indexes", catalogIndexesSQL, []string{"schema", "owner"}},
		{"triggers", catalogTriggersSQL, []string{"schema", "owner"}},
		{"dependencies", catalogDependenciesSQL, []string{"schema", "owner"}},
		{"sequences", catalogSequencesSQL, []string{"schema"}},
		{"grants", catalogGrantsSQL, []string{"schema", "owner"}},
		{"last ddl", catalogLastDDLSQL, []string{"schema"}},
		{"version", versionSQL, nil},
		{"compile", CompileSchema, []string{"schema"}},
		{"invalid objects", InvalidObjectsSQL, []string{"schema"}},
	}
	for _, tt := range tests {
		checkBinds(t, tt.name, tt.sql, tt.binds)
	}
	for _, q := range scnQueries {
		checkBinds(t, q, q, nil)
	}
	for _, k := range dependencyKinds {
		if _, ok := kindPhase[k]; !ok {
			t.Errorf("dependency kind %s has no restore phase", k)
		}
	}
	// Every object type the catalog lists maps to a kind and a DBMS_METADATA type.
	for _, typ := range []string{"SEQUENCE", "VIEW", "PACKAGE", "PACKAGE BODY", "FUNCTION", "PROCEDURE", "TYPE", "TYPE BODY", "SYNONYM"} {
		if !strings.Contains(catalogObjectsSQL, "'"+typ+"'") {
			t.Errorf("catalog objects query does not list %s", typ)
		}
		k, ok := dependencyKinds[typ]
		if !ok {
			t.Errorf("%s has no kind", typ)
			continue
		}
		if _, err := GetDDL(string(k), "FINANCE", "X"); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

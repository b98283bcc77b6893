package oraclesrc

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestQuoteIdent(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "EMP", want: `"EMP"`},
		{in: "ORDER", want: `"ORDER"`},
		{in: "Mixed Case", want: `"Mixed Case"`},
		{in: "A$B#C_1", want: `"A$B#C_1"`},
		{in: "ÉTÉ", want: `"ÉTÉ"`},
		{in: strings.Repeat("X", 128), want: `"` + strings.Repeat("X", 128) + `"`},
		{in: strings.Repeat("X", 129), bad: true},
		{in: "", bad: true},
		{in: `X" FROM DUAL; DROP TABLE T; --`, bad: true},
		{in: "X\x00", bad: true},
		{in: "X\nY", bad: true},
	}
	for _, tt := range tests {
		got, err := QuoteIdent(tt.in)
		if tt.bad {
			if !errors.Is(err, ErrIdentifier) {
				t.Errorf("QuoteIdent(%q) = %q, %v; want ErrIdentifier", tt.in, got, err)
			}
		} else if err != nil || got != tt.want {
			t.Errorf("QuoteIdent(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNormalizeIdent(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "scott", want: "SCOTT"},
		{in: "App_1$#", want: "APP_1$#"},
		{in: `"Mixed"`, want: "Mixed"},
		{in: `"a""b"`, bad: true},
		{in: "1abc", bad: true},
		{in: "_abc", bad: true},
		{in: "a b", bad: true},
		{in: "a;drop", bad: true},
		{in: `""`, bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		got, err := NormalizeIdent(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("NormalizeIdent(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func TestSelectAsOfSCN(t *testing.T) {
	got, err := SelectAsOfSCN("APP", "Orders", []Column{
		{Name: "ID", Type: TypeNumber}, {Name: "D", Type: TypeDate}, {Name: "TS", Type: TypeTimestamp},
		{Name: "TZ", Type: TypeTimestampTZ}, {Name: "LTZ", Type: TypeTimestampLTZ},
		{Name: "YM", Type: TypeIntervalYM}, {Name: "RID", Type: TypeRowID}, {Name: "select", Type: TypeCLOB},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `SELECT TO_CHAR("ID", 'TM9'), TO_CHAR("D", 'SYYYY-MM-DD HH24:MI:SS'), ` +
		`TO_CHAR("TS", 'SYYYY-MM-DD HH24:MI:SS.FF9'), ` +
		`TO_CHAR(SYS_EXTRACT_UTC("TZ"), 'SYYYY-MM-DD HH24:MI:SS.FF9'), TO_CHAR("TZ", 'TZR'), ` +
		`TO_CHAR(SYS_EXTRACT_UTC(CAST("LTZ" AS TIMESTAMP WITH TIME ZONE)), 'SYYYY-MM-DD HH24:MI:SS.FF9'), ` +
		`TO_CHAR("YM"), CAST("RID" AS VARCHAR2(4000)), "select" FROM "APP"."Orders" AS OF SCN :scn`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []struct{ s, tb string }{{"APP", `T"; DROP`}, {"", "T"}} {
		if _, err := SelectAsOfSCN(bad.s, bad.tb, []Column{{Name: "A", Type: TypeNumber}}); err == nil {
			t.Errorf("SelectAsOfSCN(%q, %q) succeeded", bad.s, bad.tb)
		}
	}
	if _, err := SelectAsOfSCN("APP", "T", nil); err == nil {
		t.Error("no columns accepted")
	}
	if _, err := SelectAsOfSCN("APP", "T", []Column{{Name: `a"b`, Type: TypeNumber}}); err == nil {
		t.Error("bad column name accepted")
	}
}

func TestInsertSQLAllTypes(t *testing.T) {
	got, err := InsertSQL("APP", "T", []Column{
		{Name: "N", Type: TypeNumber}, {Name: "D", Type: TypeDate}, {Name: "LTZ", Type: TypeTimestampLTZ},
		{Name: "YM", Type: TypeIntervalYM}, {Name: "DS", Type: TypeIntervalDS}, {Name: "RID", Type: TypeRowID},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `INSERT INTO "APP"."T" ("N", "D", "LTZ", "YM", "DS", "RID") VALUES (:1, ` +
		`TO_DATE(:2, 'SYYYY-MM-DD HH24:MI:SS'), FROM_TZ(TO_TIMESTAMP(:3, 'SYYYY-MM-DD HH24:MI:SS.FF9'), 'UTC'), ` +
		`TO_YMINTERVAL(:4), TO_DSINTERVAL(:5), :6)`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestMetadataTransformSQL(t *testing.T) {
	got := MetadataTransformSQL()
	for _, want := range []string{
		"'DEFAULT');",
		"'SEGMENT_ATTRIBUTES', FALSE);", "'STORAGE', FALSE);", "'TABLESPACE', FALSE);",
		"'EMIT_SCHEMA', FALSE);", "'SQLTERMINATOR', TRUE);", "'CONSTRAINTS_AS_ALTER', TRUE);",
		"'REF_CONSTRAINTS', FALSE);",
	} {
		if !strings.Contains(got, "DBMS_METADATA.SET_TRANSFORM_PARAM(DBMS_METADATA.SESSION_TRANSFORM, "+want) {
			t.Errorf("transform block lacks %s:\n%s", want, got)
		}
	}
	if !strings.HasPrefix(got, "BEGIN\n") || !strings.HasSuffix(got, "END;") {
		t.Errorf("not one PL/SQL block:\n%s", got)
	}
	if strings.Index(got, "'DEFAULT'") > strings.Index(got, "'STORAGE'") {
		t.Error("DEFAULT reset must come first")
	}
}

func TestGetDDL(t *testing.T) {
	tests := []struct {
		typ, want string
		bad       bool
	}{
		{typ: "PACKAGE BODY", want: "PACKAGE_BODY"},
		{typ: "package", want: "PACKAGE_SPEC"},
		{typ: "TYPE BODY", want: "TYPE_BODY"},
		{typ: "TABLE", want: "TABLE"},
		{typ: "DATABASE LINK", bad: true},
	}
	for _, tt := range tests {
		st, err := GetDDL(tt.typ, "APP", "X")
		if tt.bad {
			if err == nil {
				t.Errorf("GetDDL(%q) succeeded", tt.typ)
			}
			continue
		}
		if err != nil || st.Binds[0].Value != tt.want || strings.Contains(st.SQL, "APP") {
			t.Errorf("GetDDL(%q) = %+v, %v", tt.typ, st, err)
		}
	}
	st, err := GetDependentDDL("REF_CONSTRAINT", "APP", "T")
	if err != nil || !reflect.DeepEqual(st.Binds, []Bind{{"dependent_type", "REF_CONSTRAINT"}, {"name", "T"}, {"schema", "APP"}}) {
		t.Errorf("GetDependentDDL = %+v, %v", st, err)
	}
	if _, err := GetDependentDDL("'; DROP", "APP", "T"); err == nil {
		t.Error("bad dependent type accepted")
	}
}

func TestDataPumpExport(t *testing.T) {
	st, err := DataPumpExport("BULWARK_EXP_1", "APP", "DATA_PUMP_DIR", "app.dmp", "app.log", "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DBMS_DATAPUMP.OPEN(operation => 'EXPORT', job_mode => 'SCHEMA', job_name => :job)",
		"'FLASHBACK_SCN', value => TO_NUMBER(:scn)", "'SCHEMA_EXPR', value => :schema_expr",
		"DBMS_DATAPUMP.START_JOB", "DBMS_DATAPUMP.DETACH", "KU$_FILE_TYPE_LOG_FILE"} {
		if !strings.Contains(st.SQL, want) {
			t.Errorf("block lacks %q", want)
		}
	}
	for _, v := range []string{"APP", "app.dmp", "123456789012", "DATA_PUMP_DIR"} {
		if strings.Contains(st.SQL, v) {
			t.Errorf("value %q written into the block instead of bound", v)
		}
	}
	wantBinds := []Bind{{"job", "BULWARK_EXP_1"}, {"dump_file", "app.dmp"}, {"directory", "DATA_PUMP_DIR"},
		{"log_file", "app.log"}, {"log_directory", "DATA_PUMP_DIR"}, {"schema_expr", "IN ('APP')"}, {"scn", "123456789012"}}
	if !reflect.DeepEqual(st.Binds, wantBinds) {
		t.Errorf("binds = %v", st.Binds)
	}
	bad := [][6]string{
		{"J", "A'PP", "D", "a.dmp", "a.log", "1"},
		{"J", "APP", "D", "../a.dmp", "a.log", "1"},
		{"J", "APP", "D", "a.dmp", "", "1"},
		{"J", "APP", "D", "a.dmp", "a.log", "1E5"},
		{"J", "APP", "D", "a.dmp", "a.log", "-1"},
		{"J", "APP", "D", "a.dmp", "a.log", "0"},
		{"J", "APP", "D", "a.dmp", "a.log", "1.5"},
		{`J"`, "APP", "D", "a.dmp", "a.log", "1"},
	}
	for _, b := range bad {
		if _, err := DataPumpExport(b[0], b[1], b[2], b[3], b[4], b[5]); err == nil {
			t.Errorf("DataPumpExport(%q) succeeded", b)
		}
	}
}

func TestSequenceSQL(t *testing.T) {
	got, err := RestartSequence("APP", "ORDER_SEQ", 1001)
	if err != nil || got != `ALTER SEQUENCE "APP"."ORDER_SEQ" RESTART START WITH 1001` {
		t.Errorf("RestartSequence = %q, %v", got, err)
	}
	if _, err := RestartSequence("APP", `S"; DROP`, 1); err == nil {
		t.Error("bad name accepted")
	}
	ddl := "\n  CREATE SEQUENCE  \"APP\".\"S\"  MINVALUE 1 MAXVALUE 9999999999999999999999999999 INCREMENT BY 1 START WITH 21 CACHE 20 NOORDER  NOCYCLE ;\n"
	stmts, err := RecreateSequence("APP", "S", ddl, 5000)
	want := []string{`DROP SEQUENCE "APP"."S"`,
		`CREATE SEQUENCE  "APP"."S"  MINVALUE 1 MAXVALUE 9999999999999999999999999999 INCREMENT BY 1 START WITH 5000 CACHE 20 NOORDER  NOCYCLE`}
	if err != nil || !reflect.DeepEqual(stmts, want) {
		t.Errorf("RecreateSequence = %q, %v", stmts, err)
	}
	if _, err := RecreateSequence("APP", "S", "CREATE TABLE t (a NUMBER);", 1); err == nil {
		t.Error("non-sequence DDL accepted")
	}
	if q, err := MaxColumnValueSQL("APP", "T", "ID"); err != nil || q != `SELECT TO_CHAR(MAX("ID"), 'TM9') FROM "APP"."T"` {
		t.Errorf("MaxColumnValueSQL = %q, %v", q, err)
	}
	for _, s := range []string{CompileSchema, InvalidObjectsSQL} {
		if !strings.Contains(s, ":schema") {
			t.Errorf("%q does not bind the schema", s)
		}
	}
}

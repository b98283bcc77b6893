package oraclesrc

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/bulwark-dr/bulwark/repository"
)

// financeTableDDL is DBMS_METADATA.GET_DDL('TABLE', 'FINANCE_EXPENSE', 'FINANCE') with the
// transforms of MetadataTransformSQL (PRETTY, SQLTERMINATOR, CONSTRAINTS_AS_ALTER, no segment
// attributes, no schema).
const financeTableDDL = `
  CREATE TABLE "FINANCE_EXPENSE" 
   (	"ID" NUMBER(*,0) NOT NULL ENABLE, 
	"USER_ID" NUMBER(*,0) NOT NULL ENABLE, 
	"AMOUNT" NUMBER(12,2) NOT NULL ENABLE, 
	"CURRENCY" CHAR(3 CHAR) DEFAULT 'EUR', 
	"NOTE" VARCHAR2(400 CHAR) DEFAULT 'n/a; see receipt', 
	"RECEIPT" BLOB, 
	"SPENT_AT" TIMESTAMP (6) WITH TIME ZONE DEFAULT SYSTIMESTAMP
   ) ;
  ALTER TABLE "FINANCE_EXPENSE" ADD CONSTRAINT "FINANCE_EXPENSE_PK" PRIMARY KEY ("ID")
  USING INDEX  ENABLE;
  ALTER TABLE "FINANCE_EXPENSE" ADD CONSTRAINT "FINANCE_EXPENSE_AMOUNT_CK" CHECK (amount >= 0 AND currency IN ('EUR', 'USD', 'GB;P')) ENABLE;
  ALTER TABLE "FINANCE_EXPENSE" ADD CONSTRAINT "FINANCE_EXPENSE_UK" UNIQUE ("USER_ID", "SPENT_AT")
  USING INDEX  ENABLE;
`

func TestSplitTableDDL(t *testing.T) {
	create, rest, err := SplitTableDDL(financeTableDDL)
	if err != nil {
		t.Fatal(err)
	}
	wantCreate := `CREATE TABLE "FINANCE_EXPENSE" 
   (	"ID" NUMBER(*,0) NOT NULL ENABLE, 
	"USER_ID" NUMBER(*,0) NOT NULL ENABLE, 
	"AMOUNT" NUMBER(12,2) NOT NULL ENABLE, 
	"CURRENCY" CHAR(3 CHAR) DEFAULT 'EUR', 
	"NOTE" VARCHAR2(400 CHAR) DEFAULT 'n/a; see receipt', 
	"RECEIPT" BLOB, 
	"SPENT_AT" TIMESTAMP (6) WITH TIME ZONE DEFAULT SYSTIMESTAMP
   )`
	wantRest := []string{
		"ALTER TABLE \"FINANCE_EXPENSE\" ADD CONSTRAINT \"FINANCE_EXPENSE_PK\" PRIMARY KEY (\"ID\")\n  USING INDEX  ENABLE",
		`ALTER TABLE "FINANCE_EXPENSE" ADD CONSTRAINT "FINANCE_EXPENSE_AMOUNT_CK" CHECK (amount >= 0 AND currency IN ('EUR', 'USD', 'GB;P')) ENABLE`,
		"ALTER TABLE \"FINANCE_EXPENSE\" ADD CONSTRAINT \"FINANCE_EXPENSE_UK\" UNIQUE (\"USER_ID\", \"SPENT_AT\")\n  USING INDEX  ENABLE",
	}
	if create != wantCreate {
		t.Errorf("create =\n%s\nwant\n%s", create, wantCreate)
	}
	if !reflect.DeepEqual(rest, wantRest) {
		t.Errorf("rest =\n%q\nwant\n%q", rest, wantRest)
	}

	// A table without constraints has nothing else; a global temporary table is a CREATE too.
	create, rest, err = SplitTableDDL("\n  CREATE GLOBAL TEMPORARY TABLE \"TMP\" \n   (\t\"X\" NUMBER\n   ) ON COMMIT PRESERVE ROWS ;\n")
	if err != nil || create != "CREATE GLOBAL TEMPORARY TABLE \"TMP\" \n   (\t\"X\" NUMBER\n   ) ON COMMIT PRESERVE ROWS" || rest != nil {
		t.Errorf("temporary table: %q, %q, %v", create, rest, err)
	}
	// Only the first CREATE is the table; a later one (an index) belongs to the rest.
	create, rest, err = SplitTableDDL("create table t (x number);\nCREATE UNIQUE INDEX \"T_UK\" ON \"T\" (\"X\");\n")
	if err != nil || create != "create table t (x number)" || !reflect.DeepEqual(rest, []string{`CREATE UNIQUE INDEX "T_UK" ON "T" ("X")`}) {
		t.Errorf("table then index: %q, %q, %v", create, rest, err)
	}
	for _, bad := range []string{"", "  \n", `ALTER TABLE "T" ADD CONSTRAINT "T_PK" PRIMARY KEY ("ID");`,
		`CREATE TABLE "T" ("S" VARCHAR2(5) DEFAULT 'unterminated);`} {
		if c, r, err := SplitTableDDL(bad); err == nil {
			t.Errorf("SplitTableDDL(%q) = %q, %q; want an error", bad, c, r)
		}
	}
}

func TestRenameCreateTable(t *testing.T) {
	tests := []struct{ in, newName, want string }{
		{`CREATE TABLE "FINANCE"."FINANCE_USER" ("ID" NUMBER)`, "FINANCE_USER_OLD",
			`CREATE TABLE "FINANCE_USER_OLD" ("ID" NUMBER)`},
		{`CREATE TABLE "FINANCE_USER" ("ID" NUMBER)`, "FINANCE_USER_OLD",
			`CREATE TABLE "FINANCE_USER_OLD" ("ID" NUMBER)`},
		{"\n  CREATE TABLE \"FINANCE_USER\" \n   (\t\"ID\" NUMBER(*,0) NOT NULL ENABLE\n   )", "Copy of users",
			"\n  CREATE TABLE \"Copy of users\" \n   (\t\"ID\" NUMBER(*,0) NOT NULL ENABLE\n   )"},
		{`create table finance_user (id number)`, "U2", `create table "U2" (id number)`},
		{`create table finance_user(id number)`, "U2", `create table "U2"(id number)`},
		{`CREATE TABLE finance.finance_user (id number)`, "U2", `CREATE TABLE "U2" (id number)`},
		{`CREATE TABLE FINANCE . FINANCE_USER (id number)`, "U2", `CREATE TABLE "U2" (id number)`},
		{`CREATE TABLE "finance"."Mixed Case" ("A" NUMBER)`, "U2", `CREATE TABLE "U2" ("A" NUMBER)`},
		{`CREATE TABLE "FINANCE".T$1#X ("A" NUMBER)`, "U2", `CREATE TABLE "U2" ("A" NUMBER)`},
		{`CREATE GLOBAL TEMPORARY TABLE "FINANCE"."TMP" ("X" NUMBER) ON COMMIT PRESERVE ROWS`, "TMP2",
			`CREATE GLOBAL TEMPORARY TABLE "TMP2" ("X" NUMBER) ON COMMIT PRESERVE ROWS`},
		{"CREATE  global\ttemporary  TABLE tmp (x number)", "TMP2", "CREATE  global\ttemporary  TABLE \"TMP2\" (x number)"},
		{`CREATE BLOCKCHAIN TABLE "LEDGER" ("X" NUMBER)`, "L2", `CREATE BLOCKCHAIN TABLE "L2" ("X" NUMBER)`},
		// Only the table's own name changes, not a column or check that repeats it.
		{`CREATE TABLE "T" ("T" NUMBER CHECK ("T" > 0), "S" VARCHAR2(9) DEFAULT 'T')`, "T_NEW",
			`CREATE TABLE "T_NEW" ("T" NUMBER CHECK ("T" > 0), "S" VARCHAR2(9) DEFAULT 'T')`},
	}
	for _, tt := range tests {
		got, err := RenameCreateTable(tt.in, tt.newName)
		if err != nil || got != tt.want {
			t.Errorf("RenameCreateTable(%q, %q) =\n %q, %v\nwant\n %q", tt.in, tt.newName, got, err, tt.want)
		}
	}
	bad := []struct{ in, newName string }{
		{`CREATE TABLE "T" ("X" NUMBER)`, `T"; DROP TABLE "U`},
		{`CREATE TABLE "T" ("X" NUMBER)`, ""},
		{`CREATE TABLE "T" ("X" NUMBER)`, strings.Repeat("N", 129)},
		{`ALTER TABLE "T" ADD ("Y" NUMBER)`, "U"},
		{`CREATE VIEW "T" AS SELECT 1 x FROM dual`, "U"},
		{`CREATE INDEX "T_IX" ON "T" ("X")`, "U"},
		{`-- CREATE TABLE "T"`, "U"},
	}
	for _, b := range bad {
		if got, err := RenameCreateTable(b.in, b.newName); err == nil {
			t.Errorf("RenameCreateTable(%q, %q) = %q, want an error", b.in, b.newName, got)
		}
	}
}

func TestGrantSQL(t *testing.T) {
	got, err := GrantSQL("FINANCE", Grant{Grantee: "REPORTING", Object: "FINANCE_USER", Privilege: "SELECT"})
	if want := `GRANT SELECT ON "FINANCE"."FINANCE_USER" TO "REPORTING"`; err != nil || got != want {
		t.Errorf("GrantSQL = %q, %v; want %q", got, err, want)
	}
	got, err = GrantSQL("FIN2", Grant{Grantee: "App Role", Object: "Mixed", Privilege: "ON COMMIT REFRESH", Grantable: true})
	if want := `GRANT ON COMMIT REFRESH ON "FIN2"."Mixed" TO "App Role" WITH GRANT OPTION`; err != nil || got != want {
		t.Errorf("GrantSQL = %q, %v; want %q", got, err, want)
	}
	for _, p := range []string{"SELECT", "INSERT", "UPDATE", "DELETE", "ALTER", "INDEX", "REFERENCES", "EXECUTE",
		"READ", "DEBUG", "FLASHBACK", "QUERY REWRITE", "UNDER", "WRITE"} {
		if _, err := GrantSQL("FINANCE", Grant{Grantee: "R", Object: "O", Privilege: p}); err != nil {
			t.Errorf("privilege %s: %v", p, err)
		}
	}
	bad := []Grant{
		{Grantee: "R", Object: "O", Privilege: "ALL"},
		{Grantee: "R", Object: "O", Privilege: "DBA"},
		{Grantee: "R", Object: "O", Privilege: "select"},
		{Grantee: "R", Object: "O", Privilege: "SELECT ON X TO PUBLIC; --"},
		{Grantee: "R", Object: "O", Privilege: ""},
		{Grantee: `R" WITH ADMIN OPTION --`, Object: "O", Privilege: "SELECT"},
		{Grantee: "", Object: "O", Privilege: "SELECT"},
		{Grantee: "R", Object: `O"`, Privilege: "SELECT"},
		{Grantee: "R", Object: "", Privilege: "SELECT"},
	}
	for _, g := range bad {
		if got, err := GrantSQL("FINANCE", g); err == nil {
			t.Errorf("GrantSQL(%+v) = %q, want an error", g, got)
		}
	}
	if got, err := GrantSQL(`FIN"`, Grant{Grantee: "R", Object: "O", Privilege: "SELECT"}); err == nil {
		t.Errorf("bad schema accepted: %q", got)
	}
}

func TestIdentityAndSchemaSQL(t *testing.T) {
	tests := []struct {
		got  func() (string, error)
		want string
	}{
		{func() (string, error) { return IdentityByDefaultSQL("FINANCE", "FINANCE_USER", "ID") },
			`ALTER TABLE "FINANCE"."FINANCE_USER" MODIFY "ID" GENERATED BY DEFAULT AS IDENTITY`},
		{func() (string, error) {
			return IdentityRestoreSQL("FINANCE", "FINANCE_USER", Identity{Column: "ID", Generation: "ALWAYS"})
		}, `ALTER TABLE "FINANCE"."FINANCE_USER" MODIFY "ID" GENERATED ALWAYS AS IDENTITY (START WITH LIMIT VALUE)`},
		{func() (string, error) {
			return IdentityRestoreSQL("FINANCE", "Expenses 2024", Identity{Column: "Row Id", Generation: "BY DEFAULT"})
		}, `ALTER TABLE "FINANCE"."Expenses 2024" MODIFY "Row Id" GENERATED BY DEFAULT AS IDENTITY (START WITH LIMIT VALUE)`},
		{func() (string, error) {
			return IdentityRestoreSQL("FINANCE", "T", Identity{Column: "ID", Generation: "BY DEFAULT ON NULL"})
		}, `ALTER TABLE "FINANCE"."T" MODIFY "ID" GENERATED BY DEFAULT ON NULL AS IDENTITY (START WITH LIMIT VALUE)`},
		{func() (string, error) { return DropTableSQL("FINANCE", "FINANCE_USER") },
			`DROP TABLE "FINANCE"."FINANCE_USER" CASCADE CONSTRAINTS PURGE`},
		{func() (string, error) { return CurrentSchemaSQL("FINANCE_RESTORE") },
			`ALTER SESSION SET CURRENT_SCHEMA = "FINANCE_RESTORE"`},
	}
	for i, tt := range tests {
		got, err := tt.got()
		if err != nil || got != tt.want {
			t.Errorf("%d: %q, %v; want %q", i, got, err, tt.want)
		}
	}
	bad := []func() (string, error){
		func() (string, error) {
			return IdentityRestoreSQL("FINANCE", "T", Identity{Column: "ID", Generation: "SOMETIMES"})
		},
		func() (string, error) {
			return IdentityRestoreSQL("FINANCE", "T", Identity{Column: "ID", Generation: ""})
		},
		func() (string, error) {
			return IdentityRestoreSQL("FINANCE", "T", Identity{Column: `ID" ; DROP`, Generation: "ALWAYS"})
		},
		func() (string, error) { return IdentityByDefaultSQL("FINANCE", `T"`, "ID") },
		func() (string, error) { return IdentityByDefaultSQL("", "T", "ID") },
		func() (string, error) { return DropTableSQL("FINANCE", "") },
		func() (string, error) { return CurrentSchemaSQL(`X" ; DROP USER "Y`) },
	}
	for i, f := range bad {
		if got, err := f(); err == nil {
			t.Errorf("bad %d: %q, want an error", i, got)
		}
	}
}

func TestSpecOfColumnOf(t *testing.T) {
	for typ := TypeNumber; typ < typeEnd; typ++ {
		c := Column{Name: "Col " + typ.String(), Type: typ, Precision: 9, Scale: -3, HasScale: true,
			Length: 4000, CharSemantics: true, Nullable: true}
		spec := SpecOf(c)
		if spec.Type != typ.String() {
			t.Errorf("%s: spec type %q", typ, spec.Type)
		}
		back, err := ColumnOf(spec)
		if err != nil || back != c {
			t.Errorf("%s: ColumnOf(SpecOf(c)) = %+v, %v; want %+v", typ, back, err, c)
		}
		// Through JSON, as schema.json stores it, zero values included.
		for _, c := range []Column{c, {Name: "Z", Type: typ}} {
			body, err := json.Marshal(SpecOf(c))
			if err != nil {
				t.Fatal(err)
			}
			var s ColumnSpec
			if err := json.Unmarshal(body, &s); err != nil {
				t.Fatal(err)
			}
			if back, err := ColumnOf(s); err != nil || back != c {
				t.Errorf("%s via JSON %s: %+v, %v", typ, body, back, err)
			}
		}
	}
	if c, err := ColumnOf(ColumnSpec{Name: "TS", Type: "TIMESTAMP(6) WITH TIME ZONE"}); err != nil || c.Type != TypeTimestampTZ {
		t.Errorf("dictionary spelling: %+v, %v", c, err)
	}
	for _, typ := range []string{"LONG", "XMLTYPE", "", "Type(0)", "BFILE"} {
		if c, err := ColumnOf(ColumnSpec{Name: "LEGACY", Type: typ}); err == nil || !strings.Contains(err.Error(), `"LEGACY"`) {
			t.Errorf("ColumnOf type %q = %+v, %v; want an error naming the column", typ, c, err)
		}
	}
}

func TestRowsFileName(t *testing.T) {
	if got := RowsFileName(3, "FINANCE_USER"); got != "0003 FINANCE_USER.rows" {
		t.Errorf("RowsFileName = %q", got)
	}
	odd := []string{
		"FINANCE_USER", `Quoted "name"`, "a/b", `..\..\etc`, "..", ".", "日本語の表", "Ünïcödé",
		strings.Repeat("A", 128), strings.Repeat("表", 42), " leading space", "tab\there", "new\nline",
		"semi;colon", "$DOLLAR#HASH", "-dash", "per%cent?", "BIN$abc==$0",
	}
	seen := map[string]string{}
	for i, name := range odd {
		for _, index := range []int{i, i + 10000} {
			f := RowsFileName(index, name)
			if err := repository.ValidateExportName(f); err != nil {
				t.Errorf("RowsFileName(%d, %q) = %q: %v", index, name, f, err)
			}
			if !strings.HasSuffix(f, ".rows") || strings.ContainsAny(f, "/\\\"\n\t") {
				t.Errorf("RowsFileName(%d, %q) = %q", index, name, f)
			}
			if prev, dup := seen[f]; dup {
				t.Errorf("RowsFileName(%d, %q) = %q, same as for %s", index, name, f, prev)
			}
			seen[f] = fmt.Sprintf("%d %q", index, name)
		}
	}
	// Names that map to the same text stay apart by their index.
	if RowsFileName(1, "a/b") == RowsFileName(2, "a_b") || RowsFileName(1, "T") == RowsFileName(2, "T") {
		t.Error("the index does not keep file names apart")
	}
}

// financeExport is the schema.json of a small finance schema: a user table, an expense table
// with a foreign key to it, a sequence and trigger feeding the expense id, a package spec and
// body, a view and an index.
const financeExport = `{
  "format": 1,
  "schema": "FINANCE",
  "scn": "48213377",
  "db_version": "Oracle Database 23ai Free Release 23.0.0.0.0",
  "ddl_stable": true,
  "objects": [
    {"kind": "TABLE", "name": "FINANCE_USER", "ddl": ["CREATE TABLE \"FINANCE_USER\" (\"ID\" NUMBER GENERATED ALWAYS AS IDENTITY, \"EMAIL\" VARCHAR2(200))"],
     "columns": [{"name": "ID", "type": "NUMBER", "length": 22}, {"name": "EMAIL", "type": "VARCHAR2", "length": 200, "nullable": true}],
     "identity": [{"column": "ID", "generation": "ALWAYS"}],
     "rows_file": "0000 FINANCE_USER.rows", "rows": 10, "digest": "rowsum-sha256:00"},
    {"kind": "CONSTRAINT", "name": "FINANCE_USER", "table": "FINANCE_USER", "ddl": ["ALTER TABLE \"FINANCE_USER\" ADD CONSTRAINT \"FINANCE_USER_PK\" PRIMARY KEY (\"ID\") USING INDEX ENABLE"]},
    {"kind": "TABLE", "name": "FINANCE_EXPENSE", "ddl": ["CREATE TABLE \"FINANCE_EXPENSE\" (\"ID\" NUMBER, \"USER_ID\" NUMBER, \"AMOUNT\" NUMBER(12,2))"],
     "columns": [{"name": "ID", "type": "NUMBER"}, {"name": "USER_ID", "type": "NUMBER"}, {"name": "AMOUNT", "type": "NUMBER", "precision": 12, "scale": 2, "has_scale": true}],
     "rows_file": "0002 FINANCE_EXPENSE.rows", "rows": 250},
    {"kind": "CONSTRAINT", "name": "FINANCE_EXPENSE", "table": "FINANCE_EXPENSE", "ddl": ["ALTER TABLE \"FINANCE_EXPENSE\" ADD CONSTRAINT \"FINANCE_EXPENSE_PK\" PRIMARY KEY (\"ID\") USING INDEX ENABLE"]},
    {"kind": "REF_CONSTRAINT", "name": "FINANCE_EXPENSE", "table": "FINANCE_EXPENSE",
     "ddl": ["ALTER TABLE \"FINANCE_EXPENSE\" ADD CONSTRAINT \"FINANCE_EXPENSE_USER_FK\" FOREIGN KEY (\"USER_ID\") REFERENCES \"FINANCE_USER\" (\"ID\") ENABLE"],
     "depends_on": [{"Kind": "TABLE", "Name": "FINANCE_USER"}]},
    {"kind": "INDEX", "name": "FINANCE_EXPENSE_USER_IX", "table": "FINANCE_EXPENSE", "ddl": ["CREATE INDEX \"FINANCE_EXPENSE_USER_IX\" ON \"FINANCE_EXPENSE\" (\"USER_ID\")"]},
    {"kind": "TRIGGER", "name": "FINANCE_EXPENSE_BI", "table": "FINANCE_EXPENSE",
     "ddl": ["CREATE OR REPLACE EDITIONABLE TRIGGER \"FINANCE_EXPENSE_BI\" BEFORE INSERT ON \"FINANCE_EXPENSE\" FOR EACH ROW\nBEGIN\n  :new.id := finance_expense_seq.nextval;\nEND;", "ALTER TRIGGER \"FINANCE_EXPENSE_BI\" ENABLE"],
     "depends_on": [{"Kind": "SEQUENCE", "Name": "FINANCE_EXPENSE_SEQ"}, {"Kind": "TABLE", "Name": "FINANCE_EXPENSE"}]},
    {"kind": "SEQUENCE", "name": "FINANCE_EXPENSE_SEQ", "ddl": ["CREATE SEQUENCE \"FINANCE_EXPENSE_SEQ\" MINVALUE 1 INCREMENT BY 1 START WITH 1 CACHE 20"], "last_number": "261"},
    {"kind": "PACKAGE BODY", "name": "FINANCE_API", "ddl": ["CREATE OR REPLACE EDITIONABLE PACKAGE BODY \"FINANCE_API\" AS\n  FUNCTION total(p_user NUMBER) RETURN NUMBER IS t NUMBER;\n  BEGIN SELECT SUM(amount) INTO t FROM finance_expense WHERE user_id = p_user; RETURN t; END;\nEND finance_api;"],
     "depends_on": [{"Kind": "PACKAGE", "Name": "FINANCE_API"}, {"Kind": "TABLE", "Name": "FINANCE_EXPENSE"}]},
    {"kind": "PACKAGE", "name": "FINANCE_API", "ddl": ["CREATE OR REPLACE EDITIONABLE PACKAGE \"FINANCE_API\" AS\n  FUNCTION total(p_user NUMBER) RETURN NUMBER;\nEND finance_api;"]},
    {"kind": "VIEW", "name": "FINANCE_USER_TOTALS", "ddl": ["CREATE OR REPLACE FORCE EDITIONABLE VIEW \"FINANCE_USER_TOTALS\" (\"EMAIL\", \"TOTAL\") AS SELECT u.email, SUM(e.amount) FROM finance_user u JOIN finance_expense e ON e.user_id = u.id GROUP BY u.email"],
     "depends_on": [{"Kind": "TABLE", "Name": "FINANCE_USER"}, {"Kind": "TABLE", "Name": "FINANCE_EXPENSE"}]}
  ],
  "grants": [{"grantee": "REPORTING", "object": "FINANCE_USER_TOTALS", "privilege": "SELECT"}]
}`

func parseFinance(t *testing.T) *SchemaExport {
	t.Helper()
	exp, err := ParseSchemaExport([]byte(financeExport))
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

func TestParseSchemaExport(t *testing.T) {
	exp := parseFinance(t)
	if exp.Schema != "FINANCE" || exp.SCN != "48213377" || !exp.DDLStable || len(exp.Objects) != 11 || len(exp.Grants) != 1 {
		t.Fatalf("parsed %+v", exp)
	}
	tables := exp.Tables()
	if len(tables) != 2 || tables[0].Name != "FINANCE_EXPENSE" || tables[1].Name != "FINANCE_USER" {
		t.Errorf("Tables = %+v", tables)
	}
	cols, err := tables[0].ColumnList()
	want := []Column{{Name: "ID", Type: TypeNumber}, {Name: "USER_ID", Type: TypeNumber},
		{Name: "AMOUNT", Type: TypeNumber, Precision: 12, Scale: 2, HasScale: true}}
	if err != nil || !reflect.DeepEqual(cols, want) {
		t.Errorf("ColumnList = %+v, %v", cols, err)
	}
	if o, ok := exp.Find(KindConstraint, "FINANCE_USER"); !ok || o.Table != "FINANCE_USER" {
		t.Errorf("Find constraint = %+v, %v", o, ok)
	}
	if _, ok := exp.Find(KindTable, "finance_user"); ok {
		t.Error("Find is not exact about case")
	}
	if _, ok := exp.Find(KindView, "FINANCE_USER"); ok {
		t.Error("Find ignores the kind")
	}

	// What Export writes, ParseSchemaExport reads back unchanged.
	body, err := json.MarshalIndent(exp, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseSchemaExport(body)
	if err != nil || !reflect.DeepEqual(again, exp) {
		t.Errorf("round trip: %v\n%+v\n%+v", err, again, exp)
	}
}

func TestParseSchemaExportRejects(t *testing.T) {
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(financeExport), &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	obj := func(m map[string]any, i int) map[string]any { return m["objects"].([]any)[i].(map[string]any) }
	tests := []struct {
		name, json, why string
	}{
		{"not json", `{"format": 1,`, "schema.json"},
		{"no format", edit(func(m map[string]any) { delete(m, "format") }), "format 0"},
		{"future format", edit(func(m map[string]any) { m["format"] = SchemaFormat + 1 }), "reads up to 1"},
		{"format as text", edit(func(m map[string]any) { m["format"] = "1" }), "schema.json"},
		{"no schema", edit(func(m map[string]any) { delete(m, "schema") }), "schema"},
		{"schema with quote", edit(func(m map[string]any) { m["schema"] = `FIN"ANCE` }), "invalid oracle identifier"},
		{"unknown kind", edit(func(m map[string]any) { obj(m, 5)["kind"] = "MATERIALIZED VIEW" }), `unknown kind "MATERIALIZED VIEW"`},
		{"lower-case kind", edit(func(m map[string]any) { obj(m, 5)["kind"] = "index" }), "unknown kind"},
		{"empty kind", edit(func(m map[string]any) { obj(m, 5)["kind"] = "" }), "unknown kind"},
		{"duplicate", edit(func(m map[string]any) {
			m["objects"] = append(m["objects"].([]any), obj(m, 7))
		}), "SEQUENCE FINANCE_EXPENSE_SEQ listed twice"},
		{"empty name", edit(func(m map[string]any) { obj(m, 5)["name"] = "" }), "invalid oracle identifier"},
		{"name with quote", edit(func(m map[string]any) { obj(m, 5)["name"] = `IX"; DROP` }), "invalid oracle identifier"},
		{"name too long", edit(func(m map[string]any) { obj(m, 5)["name"] = strings.Repeat("X", 129) }), "invalid oracle identifier"},
		{"name with newline", edit(func(m map[string]any) { obj(m, 5)["name"] = "IX\nDROP" }), "invalid oracle identifier"},
		{"table without columns", edit(func(m map[string]any) { delete(obj(m, 2), "columns") }), `table "FINANCE_EXPENSE" has no columns`},
		{"table with empty columns", edit(func(m map[string]any) { obj(m, 0)["columns"] = []any{} }), "has no columns"},
		{"unsupported column type", edit(func(m map[string]any) {
			obj(m, 0)["columns"].([]any)[1].(map[string]any)["type"] = "LONG"
		}), `unsupported oracle type "LONG"`},
		{"negative rows", edit(func(m map[string]any) { obj(m, 0)["rows"] = -1 }), "-1 rows"},
	}
	for _, tt := range tests {
		exp, err := ParseSchemaExport([]byte(tt.json))
		if err == nil {
			t.Errorf("%s: accepted: %+v", tt.name, exp)
			continue
		}
		if !strings.Contains(err.Error(), tt.why) {
			t.Errorf("%s: error %q, want it to say %q", tt.name, err, tt.why)
		}
	}
	// The same name under two kinds is fine (a table and its constraints share it).
	if _, err := ParseSchemaExport([]byte(edit(func(m map[string]any) { obj(m, 5)["name"] = "FINANCE_USER" }))); err != nil {
		t.Errorf("same name, other kind: %v", err)
	}
	if _, err := ParseSchemaExport([]byte(edit(func(m map[string]any) { delete(m, "objects") }))); err != nil {
		t.Errorf("a schema with no objects: %v", err)
	}
	var idErr error
	_, idErr = ParseSchemaExport([]byte(edit(func(m map[string]any) { obj(m, 5)["name"] = `X"` })))
	if !errors.Is(idErr, ErrIdentifier) {
		t.Errorf("bad name error %v does not wrap ErrIdentifier", idErr)
	}
}

func TestPlanObjectsFinance(t *testing.T) {
	exp := parseFinance(t)
	objs := exp.PlanObjects()
	steps, err := PlanRestore(objs)
	if err != nil {
		t.Fatal(err)
	}
	type s = struct {
		Phase Phase
		Obj   string
	}
	var got []s
	for _, st := range steps {
		name := ""
		if st.Object != (ObjectRef{}) {
			name = st.Object.String()
		}
		got = append(got, s{st.Phase, name})
	}
	want := []s{
		{PhaseSequences, "SEQUENCE FINANCE_EXPENSE_SEQ"},
		{PhaseTables, "TABLE FINANCE_EXPENSE"},
		{PhaseTables, "TABLE FINANCE_USER"},
		{PhaseConstraints, "CONSTRAINT FINANCE_EXPENSE"},
		{PhaseConstraints, "CONSTRAINT FINANCE_USER"},
		{PhaseData, "TABLE FINANCE_EXPENSE"},
		{PhaseData, "TABLE FINANCE_USER"},
		{PhaseCodeSpecs, "PACKAGE FINANCE_API"},
		{PhaseViews, "VIEW FINANCE_USER_TOTALS"},
		{PhaseIndexes, "INDEX FINANCE_EXPENSE_USER_IX"},
		{PhaseRefConstraints, "REF_CONSTRAINT FINANCE_EXPENSE"},
		{PhaseCodeBodies, "PACKAGE BODY FINANCE_API"},
		{PhaseTriggers, "TRIGGER FINANCE_EXPENSE_BI"},
		{PhaseCompile, ""},
		{PhaseSequenceReset, "SEQUENCE FINANCE_EXPENSE_SEQ"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plan:\n%v\nwant\n%v", got, want)
	}
	// Every step names an object of the export (Restore looks each one up).
	for _, st := range steps {
		if st.Phase == PhaseCompile {
			continue
		}
		kind := st.Object.Kind
		if _, ok := exp.Find(kind, st.Object.Name); !ok {
			t.Errorf("step %v names no object of the export", st)
		}
	}
	// An object that belongs to a table depends on it; declared dependencies are kept; the
	// export itself is not changed by PlanObjects.
	for _, o := range objs {
		switch {
		case o.Kind == KindTrigger:
			wantDeps := []ObjectRef{{KindSequence, "FINANCE_EXPENSE_SEQ"}, {KindTable, "FINANCE_EXPENSE"}, {KindTable, "FINANCE_EXPENSE"}}
			if !reflect.DeepEqual(o.DependsOn, wantDeps) {
				t.Errorf("trigger depends on %v", o.DependsOn)
			}
		case o.Kind == KindIndex:
			if !reflect.DeepEqual(o.DependsOn, []ObjectRef{{KindTable, "FINANCE_EXPENSE"}}) {
				t.Errorf("index depends on %v", o.DependsOn)
			}
		}
	}
	if trig, _ := exp.Find(KindTrigger, "FINANCE_EXPENSE_BI"); len(trig.DependsOn) != 2 {
		t.Errorf("PlanObjects changed the export's dependencies: %v", trig.DependsOn)
	}
	// Objects whose dependency lists share spare capacity must not write into each other.
	shared := make([]ObjectRef, 1, 4)
	shared[0] = ObjectRef{KindSequence, "S"}
	two := &SchemaExport{Objects: []SchemaObject{
		{Kind: KindIndex, Name: "IX1", Table: "T1", DependsOn: shared},
		{Kind: KindIndex, Name: "IX2", Table: "T2", DependsOn: shared},
	}}
	planned := two.PlanObjects()
	if !reflect.DeepEqual(planned[0].DependsOn, []ObjectRef{{KindSequence, "S"}, {KindTable, "T1"}}) ||
		!reflect.DeepEqual(planned[1].DependsOn, []ObjectRef{{KindSequence, "S"}, {KindTable, "T2"}}) {
		t.Errorf("dependencies overwrite each other: %v / %v", planned[0].DependsOn, planned[1].DependsOn)
	}
	if again := exp.PlanObjects(); !reflect.DeepEqual(again, objs) {
		t.Error("PlanObjects is not repeatable")
	}
	// The plan does not depend on the order of objects in schema.json.
	rev := *exp
	rev.Objects = nil
	for i := len(exp.Objects) - 1; i >= 0; i-- {
		rev.Objects = append(rev.Objects, exp.Objects[i])
	}
	steps2, err := PlanRestore(rev.PlanObjects())
	if err != nil || !reflect.DeepEqual(steps2, steps) {
		t.Errorf("reversed objects give another plan: %v, %v", steps2, err)
	}
}

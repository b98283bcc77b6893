package oraclesrc

import (
	"reflect"
	"testing"
)

func TestSplitDDL(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
		bad  bool
	}{
		{name: "empty", in: "  \n ", want: nil},
		{
			name: "table with constraints as alter",
			in: "\n  CREATE TABLE \"APP\".\"T\" \n   (\t\"ID\" NUMBER, \"S\" VARCHAR2(10) DEFAULT 'a;b'\n   ) ;\n" +
				"  ALTER TABLE \"T\" ADD CONSTRAINT \"T_PK\" PRIMARY KEY (\"ID\")\n  USING INDEX  ENABLE;\n",
			want: []string{
				"CREATE TABLE \"APP\".\"T\" \n   (\t\"ID\" NUMBER, \"S\" VARCHAR2(10) DEFAULT 'a;b'\n   )",
				"ALTER TABLE \"T\" ADD CONSTRAINT \"T_PK\" PRIMARY KEY (\"ID\")\n  USING INDEX  ENABLE",
			},
		},
		{
			name: "package spec and body",
			in: "CREATE OR REPLACE EDITIONABLE PACKAGE \"P\" AS\n  c CONSTANT VARCHAR2(5) := ';';\n  PROCEDURE x;\nEND p;\n/\n" +
				"CREATE OR REPLACE EDITIONABLE PACKAGE BODY \"P\" AS\n  PROCEDURE x IS\n  BEGIN\n    NULL; -- ; /\n    /* ;\n/\n*/\n  END;\nEND p;\n/\n",
			want: []string{
				"CREATE OR REPLACE EDITIONABLE PACKAGE \"P\" AS\n  c CONSTANT VARCHAR2(5) := ';';\n  PROCEDURE x;\nEND p;",
				"CREATE OR REPLACE EDITIONABLE PACKAGE BODY \"P\" AS\n  PROCEDURE x IS\n  BEGIN\n    NULL; -- ; /\n    /* ;\n/\n*/\n  END;\nEND p;",
			},
		},
		{
			name: "trigger then alter trigger",
			in:   "CREATE OR REPLACE EDITIONABLE TRIGGER \"TRG\" BEFORE INSERT ON \"T\" FOR EACH ROW\nBEGIN\n  :new.id := s.nextval;\nEND;\n/\nALTER TRIGGER \"TRG\" ENABLE;",
			want: []string{
				"CREATE OR REPLACE EDITIONABLE TRIGGER \"TRG\" BEFORE INSERT ON \"T\" FOR EACH ROW\nBEGIN\n  :new.id := s.nextval;\nEND;",
				"ALTER TRIGGER \"TRG\" ENABLE",
			},
		},
		{
			name: "slash line inside a string is not a terminator",
			in:   "CREATE PROCEDURE p IS s VARCHAR2(9) := 'a\n/\nb'; BEGIN NULL; END;\n/\n",
			want: []string{"CREATE PROCEDURE p IS s VARCHAR2(9) := 'a\n/\nb'; BEGIN NULL; END;"},
		},
		{
			name: "q-quotes with every delimiter",
			in:   "INSERT INTO t VALUES (q'[a;']b]', Q'{;}', nq'(;)', q'<;>', q'!it's;!');\nSELECT 1 FROM dual;",
			want: []string{"INSERT INTO t VALUES (q'[a;']b]', Q'{;}', nq'(;)', q'<;>', q'!it's;!')", "SELECT 1 FROM dual"},
		},
		{
			name: "doubled quotes and quoted identifiers",
			in:   "COMMENT ON TABLE \"A;B\" IS 'it''s; here';\nCOMMENT ON COLUMN \"T\".\"C\" IS '/';",
			want: []string{"COMMENT ON TABLE \"A;B\" IS 'it''s; here'", "COMMENT ON COLUMN \"T\".\"C\" IS '/'"},
		},
		{
			name: "word ending in q is not a q-quote",
			in:   "SELECT seq'x' FROM dual; SELECT 2 FROM dual;",
			want: []string{"SELECT seq'x' FROM dual", "SELECT 2 FROM dual"},
		},
		{
			name: "sql ended by slash line and division",
			in:   "SELECT 4\n/ 2 FROM dual\n/\nSELECT 1 FROM dual",
			want: []string{"SELECT 4\n/ 2 FROM dual", "SELECT 1 FROM dual"},
		},
		{
			name: "type spec and body; crlf",
			in:   "CREATE OR REPLACE TYPE \"PT\" AS OBJECT (x NUMBER);\r\n/\r\nCREATE OR REPLACE TYPE BODY \"PT\" AS END;\r\n  /  \r\n",
			want: []string{"CREATE OR REPLACE TYPE \"PT\" AS OBJECT (x NUMBER);", "CREATE OR REPLACE TYPE BODY \"PT\" AS END;"},
		},
		{
			name: "anonymous block and leading comment",
			in:   "-- setup\nBEGIN\n  x;\nEND;\n/\n/* c */ DECLARE a NUMBER; BEGIN NULL; END;\n/",
			want: []string{"BEGIN\n  x;\nEND;", "DECLARE a NUMBER; BEGIN NULL; END;"}, // comments before a statement are dropped
		},
		{
			name: "view stays sql",
			in:   "CREATE OR REPLACE FORCE EDITIONABLE VIEW \"V\" (\"A\") AS \n  SELECT 'BEGIN;' a FROM t;\n",
			want: []string{"CREATE OR REPLACE FORCE EDITIONABLE VIEW \"V\" (\"A\") AS \n  SELECT 'BEGIN;' a FROM t"},
		},
		{name: "only terminators", in: ";\n/\n;;", want: nil},
		{name: "unterminated string", in: "SELECT 'abc FROM dual;", bad: true},
		{name: "unterminated identifier", in: "SELECT \"abc FROM dual;", bad: true},
		{name: "unterminated comment", in: "SELECT 1 /* FROM dual;", bad: true},
		{name: "unterminated q-quote", in: "SELECT q'[abc]x FROM dual;", bad: true},
	}
	for _, tt := range tests {
		got, err := SplitDDL(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("%s: SplitDDL succeeded: %q", tt.name, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func FuzzSplitDDL(f *testing.F) {
	f.Add("CREATE PACKAGE p AS x; END;\n/\nSELECT 'a;' FROM dual;")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = SplitDDL(s) // must not panic
	})
}

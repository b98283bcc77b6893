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
	"regexp"
	"sort"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

var bindName = regexp.MustCompile(`:(\w+)`)

// placeholders lists the bind names in SQL or PL/SQL text in order, the way go-ora finds them
// (":name" outside 'strings', "identifiers" and comments).
func placeholders(t *testing.T, text string) []string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(text); i++ {
		switch {
		case text[i] == '\'' || text[i] == '"':
			j := strings.IndexByte(text[i+1:], text[i])
			if j < 0 {
				t.Fatalf("unterminated %c in %q", text[i], text)
			}
			i += j + 1
			b.WriteByte(' ')
		case strings.HasPrefix(text[i:], "--"):
			j := strings.IndexByte(text[i:], '\n')
			if j < 0 {
				j = len(text) - i
			}
			i += j
			b.WriteByte('\n')
		case strings.HasPrefix(text[i:], "/*"):
			j := strings.Index(text[i+2:], "*/")
			if j < 0 {
				t.Fatalf("unterminated comment in %q", text)
			}
			i += j + 3
			b.WriteByte(' ')
		default:
			b.WriteByte(text[i])
		}
	}
	var names []string
	for _, m := range bindName.FindAllStringSubmatch(b.String(), -1) {
		names = append(names, m[1])
	}
	return names
}

// checkBinds checks that every placeholder appears once in text and has exactly one bind of its
// name, and that every bind has its placeholder: go-ora binds a repeated name badly, and a bind
// without a placeholder, or a placeholder without a bind, fails only on a live database.
func checkBinds(t *testing.T, what, text string, binds []string) {
	t.Helper()
	count := map[string]int{}
	for _, n := range placeholders(t, text) {
		count[strings.ToLower(n)]++
	}
	for n, c := range count {
		if c != 1 {
			t.Errorf("%s: placeholder :%s appears %d times", what, n, c)
		}
	}
	bound := map[string]int{}
	for _, n := range binds {
		bound[strings.ToLower(n)]++
	}
	for n, c := range bound {
		if c != 1 {
			t.Errorf("%s: %d binds named %s", what, c, n)
		}
		if count[n] == 0 {
			t.Errorf("%s: bind %s has no placeholder", what, n)
		}
	}
	for n := range count {
		if bound[n] == 0 {
			t.Errorf("%s: placeholder :%s has no bind", what, n)
		}
	}
}

func bindNames(st Statement) []string {
	var out []string
	for _, b := range st.Binds {
		out = append(out, b.Name)
	}
	return out
}

func bindMap(st Statement) map[string]any {
	m := map[string]any{}
	for _, b := range st.Binds {
		m[b.Name] = b.Value
	}
	return m
}

func TestPlaceholdersHelper(t *testing.T) {
	// The checker must see what go-ora sees, or it proves nothing.
	got := placeholders(t, "BEGIN x := :a; -- :b\n y := ':c' || \":d\" || :e; /* :f */ :a2 := 1; END;")
	if want := []string{"a", "e", "a2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("placeholders = %q, want %q", got, want)
	}
}

func TestDataPumpExportBinds(t *testing.T) {
	st, err := DataPumpExport("BULWARK_EXP_1", "FINANCE", "DATA_PUMP_DIR", "bulwark_exp_1.dmp", "bulwark_exp_1.log", "48213377")
	if err != nil {
		t.Fatal(err)
	}
	checkBinds(t, "DataPumpExport", st.SQL, bindNames(st))
	m := bindMap(st)
	if m["directory"] != "DATA_PUMP_DIR" || m["log_directory"] != "DATA_PUMP_DIR" || m["schema_expr"] != "IN ('FINANCE')" {
		t.Errorf("binds = %v", st.Binds)
	}
}

func TestDataPumpImport(t *testing.T) {
	st, err := DataPumpImport("BULWARK_IMP_1", "FINANCE", "FINANCE_RESTORE", "DATA_PUMP_DIR", "bulwark_imp_1.dmp",
		"bulwark_imp_1.log", "REPLACE", []string{"FINANCE_USER", "Expenses 2024"})
	if err != nil {
		t.Fatal(err)
	}
	checkBinds(t, "DataPumpImport", st.SQL, bindNames(st))
	for _, want := range []string{"DBMS_DATAPUMP.OPEN(operation => 'IMPORT', job_mode => 'SCHEMA', job_name => :job)",
		"'TABLE_EXISTS_ACTION', value => :table_exists", "'REMAP_SCHEMA'", "'NAME_EXPR'", "object_path => 'TABLE'",
		"KU$_FILE_TYPE_DUMP_FILE", "KU$_FILE_TYPE_LOG_FILE", "START_JOB", "DETACH"} {
		if !strings.Contains(st.SQL, want) {
			t.Errorf("block lacks %q", want)
		}
	}
	for _, v := range []string{"FINANCE", "DATA_PUMP_DIR", "bulwark_imp_1", "Expenses", "REPLACE'"} {
		if strings.Contains(st.SQL, v) {
			t.Errorf("value %q written into the block instead of bound", v)
		}
	}
	nameExpr := sql.NullString{String: "IN ('FINANCE_USER', 'Expenses 2024')", Valid: true}
	remap := sql.NullString{String: "FINANCE_RESTORE", Valid: true}
	want := map[string]any{
		"job": "BULWARK_IMP_1", "dump_file": "bulwark_imp_1.dmp", "directory": "DATA_PUMP_DIR",
		"log_file": "bulwark_imp_1.log", "log_directory": "DATA_PUMP_DIR", "schema_expr": "IN ('FINANCE')",
		"name_expr": nameExpr, "name_expr2": nameExpr, "remap_to": remap, "old_schema": "FINANCE",
		"remap_to2": remap, "table_exists": "REPLACE",
	}
	if got := bindMap(st); !reflect.DeepEqual(got, want) {
		t.Errorf("binds =\n%v\nwant\n%v", got, want)
	}

	// Whole schema, no remap: the optional parts are bound NULL, never left out (the block
	// still names them).
	st, err = DataPumpImport("J", "FINANCE", "", "DIR", "a.dmp", "a.log", "SKIP", nil)
	if err != nil {
		t.Fatal(err)
	}
	checkBinds(t, "DataPumpImport without tables", st.SQL, bindNames(st))
	m := bindMap(st)
	for _, n := range []string{"name_expr", "name_expr2", "remap_to", "remap_to2"} {
		if v, ok := m[n].(sql.NullString); !ok || v.Valid {
			t.Errorf("%s = %#v, want a NULL", n, m[n])
		}
	}
	for _, a := range TableExistsActions {
		if _, err := DataPumpImport("J", "FINANCE", "", "DIR", "a.dmp", "a.log", a, nil); err != nil {
			t.Errorf("action %s: %v", a, err)
		}
	}
}

func TestDataPumpImportRejects(t *testing.T) {
	type args struct {
		job, schema, remap, dir, dump, log, action string
		tables                                     []string
	}
	ok := args{"J", "FINANCE", "FIN2", "DIR", "a.dmp", "a.log", "REPLACE", []string{"T"}}
	with := func(f func(a *args)) args { a := ok; a.tables = append([]string(nil), ok.tables...); f(&a); return a }
	tests := []struct {
		name string
		a    args
		why  string
	}{
		{"action lower case", with(func(a *args) { a.action = "replace" }), "table exists action"},
		{"action unknown", with(func(a *args) { a.action = "DROP" }), "not one of SKIP, APPEND, TRUNCATE, REPLACE"},
		{"action empty", with(func(a *args) { a.action = "" }), "table exists action"},
		{"remap quote", with(func(a *args) { a.remap = "FIN'2" }), "remap target"},
		{"remap double quote", with(func(a *args) { a.remap = `FIN"2` }), "remap target"},
		{"remap too long", with(func(a *args) { a.remap = strings.Repeat("R", 129) }), "remap target"},
		{"table quote", with(func(a *args) { a.tables = []string{"T", "O'BRIEN"} }), `table "O'BRIEN"`},
		{"table injection", with(func(a *args) { a.tables = []string{"T') OR 1=1 --"} }), "table"},
		{"table double quote", with(func(a *args) { a.tables = []string{`T"`} }), "table"},
		{"table empty", with(func(a *args) { a.tables = []string{""} }), "table"},
		{"schema quote", with(func(a *args) { a.schema = "FIN'" }), "contains a quote"},
		{"schema empty", with(func(a *args) { a.schema = "" }), "invalid oracle identifier"},
		{"job quote", with(func(a *args) { a.job = `J"` }), "invalid oracle identifier"},
		{"directory quote", with(func(a *args) { a.dir = "D'IR" }), "contains a quote"},
		{"dump path", with(func(a *args) { a.dump = "../a.dmp" }), "bad data pump file name"},
		{"dump backslash", with(func(a *args) { a.dump = `..\a.dmp` }), "bad data pump file name"},
		{"dump quote", with(func(a *args) { a.dump = "it's.dmp" }), "bad data pump file name"},
		{"dump nul", with(func(a *args) { a.dump = "a\x00.dmp" }), "bad data pump file name"},
		{"dump empty", with(func(a *args) { a.dump = "" }), "bad data pump file name"},
		{"log too long", with(func(a *args) { a.log = strings.Repeat("l", 256) }), "bad data pump file name"},
		{"log double quote", with(func(a *args) { a.log = `a".log` }), "bad data pump file name"},
	}
	for _, tt := range tests {
		a := tt.a
		st, err := DataPumpImport(a.job, a.schema, a.remap, a.dir, a.dump, a.log, a.action, a.tables)
		if err == nil {
			t.Errorf("%s: accepted: %q", tt.name, st.Binds)
			continue
		}
		if !strings.Contains(err.Error(), tt.why) {
			t.Errorf("%s: error %q, want it to say %q", tt.name, err, tt.why)
		}
	}
	// Names Data Pump takes as they are: mixed case and spaces, quoted in the IN list.
	st, err := DataPumpImport("J", "Fin Ance", "", "DIR", strings.Repeat("d", 255), "a.log", "APPEND", []string{"Mixed Case", "X$#_1"})
	if err != nil {
		t.Fatal(err)
	}
	if m := bindMap(st); m["schema_expr"] != "IN ('Fin Ance')" || m["name_expr"] != (sql.NullString{String: "IN ('Mixed Case', 'X$#_1')", Valid: true}) {
		t.Errorf("binds = %v", st.Binds)
	}
}

func TestUTLFileWriteSQL(t *testing.T) {
	q := UTLFileWriteSQL()
	want := []string{"directory", "file_name", "open_mode"}
	for i := 1; i <= utlFilePieces; i++ {
		want = append(want, fmt.Sprintf("p%d", i), fmt.Sprintf("q%d", i))
	}
	checkBinds(t, "UTLFileWriteSQL", q, want)
	if got := placeholders(t, q); len(got) != 3+2*utlFilePieces {
		t.Errorf("%d placeholders: %q", len(got), got)
	}
	for _, s := range []string{"UTL_FILE.FOPEN(:directory, :file_name, :open_mode, 32767)", "UTL_FILE.FCLOSE(f)",
		"IF :p16 IS NOT NULL THEN UTL_FILE.PUT_RAW(f, :q16, TRUE); END IF;"} {
		if !strings.Contains(q, s) {
			t.Errorf("block lacks %q", s)
		}
	}
	checkBinds(t, "UTLFileRemoveSQL", UTLFileRemoveSQL, []string{"directory", "file_name"})
	checkBinds(t, "DataPumpJobStateSQL", DataPumpJobStateSQL, []string{"job"})
}

// TestWriteDirectoryFile runs writeDirectoryFile over the fake wire and checks every call it
// makes: the bind names against the block's placeholders, the open modes, the pieces.
func TestWriteDirectoryFile(t *testing.T) {
	sizes := []int{0, 1, utlFileChunk - 1, utlFileChunk, utlFileChunk + 1, utlFilePieces * utlFileChunk,
		utlFilePieces*utlFileChunk + 1, 2*utlFilePieces*utlFileChunk + 5}
	for _, size := range sizes {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*7 + i/251)
		}
		w := &fakeWire{}
		conn := w.open(t)
		// A reader that returns short reads must not make short pieces in the middle.
		n, err := writeDirectoryFile(context.Background(), conn, "DATA_PUMP_DIR", "bulwark_imp_1.dmp", iotest.HalfReader(bytes.NewReader(data)))
		if err != nil || n != int64(size) {
			t.Fatalf("size %d: wrote %d, %v", size, n, err)
		}
		wantCalls := max(1, (size+utlFilePieces*utlFileChunk-1)/(utlFilePieces*utlFileChunk))
		if len(w.execs) != wantCalls {
			t.Errorf("size %d: %d calls, want %d", size, len(w.execs), wantCalls)
		}
		var got []byte
		for i, call := range w.execs {
			if call.query != UTLFileWriteSQL() {
				t.Fatalf("size %d call %d: query %q", size, i, call.query)
			}
			args := map[string]any{}
			var names []string
			for _, a := range call.args {
				args[a.Name] = a.Value
				names = append(names, a.Name)
			}
			checkBinds(t, fmt.Sprintf("size %d call %d", size, i), call.query, names)
			mode := "ab"
			if i == 0 {
				mode = "wb"
			}
			if args["directory"] != "DATA_PUMP_DIR" || args["file_name"] != "bulwark_imp_1.dmp" || args["open_mode"] != mode {
				t.Errorf("size %d call %d: directory %v, file %v, mode %v", size, i, args["directory"], args["file_name"], args["open_mode"])
			}
			ended := false
			for p := 1; p <= utlFilePieces; p++ {
				flag, _ := args[fmt.Sprintf("p%d", p)].(sql.NullString)
				piece, ok := args[fmt.Sprintf("q%d", p)].([]byte)
				if !ok {
					t.Fatalf("size %d call %d: q%d is %T", size, i, p, args[fmt.Sprintf("q%d", p)])
				}
				if flag.Valid != (piece != nil) {
					t.Errorf("size %d call %d: p%d valid %v, q%d %d bytes", size, i, p, flag.Valid, p, len(piece))
				}
				if piece != nil && len(piece) == 0 {
					t.Errorf("size %d call %d: empty piece %d", size, i, p)
				}
				if ended && piece != nil {
					t.Errorf("size %d call %d: piece %d after a NULL one", size, i, p)
				}
				if piece == nil {
					ended = true
				} else if len(piece) != utlFileChunk && len(got)+len(piece) != size {
					t.Errorf("size %d call %d: short piece %d of %d bytes in the middle", size, i, p, len(piece))
				}
				got = append(got, piece...)
			}
		}
		if !bytes.Equal(got, data) {
			t.Errorf("size %d: the pieces hold %d bytes, not the data", size, len(got))
		}
	}
}

func TestWriteDirectoryFileErrors(t *testing.T) {
	w := &fakeWire{exec: func(string, []driver.NamedValue) error {
		return errors.New("ORA-29289: directory access denied")
	}}
	if _, err := writeDirectoryFile(context.Background(), w.open(t), "D", "f.dmp", strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "ORA-29289") {
		t.Errorf("exec error: %v", err)
	}
	w = &fakeWire{}
	r := io.MultiReader(bytes.NewReader(make([]byte, 100)), iotest.ErrReader(errors.New("stream broke")))
	if _, err := writeDirectoryFile(context.Background(), w.open(t), "D", "f.dmp", r); err == nil || !strings.Contains(err.Error(), "stream broke") {
		t.Errorf("read error: %v", err)
	}
}

func TestWaitDataPump(t *testing.T) {
	states := func(seq ...string) *fakeWire {
		i := 0
		return &fakeWire{query: func(q string, args []driver.NamedValue) (*fakeResult, error) {
			if q != DataPumpJobStateSQL || len(args) != 1 || args[0].Name != "job" || args[0].Value != "BULWARK_EXP_1" {
				return nil, fmt.Errorf("unexpected query %q %v", q, args)
			}
			r := &fakeResult{width: 1}
			if i < len(seq) {
				r.rows = [][]driver.Value{{seq[i]}}
			}
			i++
			return r, nil
		}}
	}
	ctx := context.Background()
	if err := waitDataPump(ctx, states().open(t), "BULWARK_EXP_1"); err != nil {
		t.Errorf("finished job: %v", err)
	}
	for _, s := range []string{"NOT RUNNING", "STOPPED"} {
		if err := waitDataPump(ctx, states(s).open(t), "BULWARK_EXP_1"); err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("state %s: %v", s, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := waitDataPump(cctx, states("EXECUTING", "EXECUTING", "EXECUTING").open(t), "BULWARK_EXP_1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("running job with a deadline: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("waitDataPump ignored its context for %v", time.Since(start))
	}
	failing := &fakeWire{query: func(string, []driver.NamedValue) (*fakeResult, error) {
		return nil, errors.New("ORA-00942: table or view does not exist")
	}}
	if err := waitDataPump(ctx, failing.open(t), "BULWARK_EXP_1"); err == nil || !strings.Contains(err.Error(), "ORA-00942") {
		t.Errorf("poll error: %v", err)
	}
}

const exportLogOK = `Starting "FINANCE"."BULWARK_EXP_1":  
Processing object type SCHEMA_EXPORT/TABLE/TABLE_DATA
Processing object type SCHEMA_EXPORT/TABLE/INDEX/STATISTICS/INDEX_STATISTICS
Processing object type SCHEMA_EXPORT/TABLE/STATISTICS/TABLE_STATISTICS
Processing object type SCHEMA_EXPORT/SEQUENCE/SEQUENCE
Processing object type SCHEMA_EXPORT/TABLE/TABLE
Processing object type SCHEMA_EXPORT/TABLE/CONSTRAINT/CONSTRAINT
Processing object type SCHEMA_EXPORT/TABLE/CONSTRAINT/REF_CONSTRAINT
Processing object type SCHEMA_EXPORT/TABLE/TRIGGER
. . exported "FINANCE"."FINANCE_EXPENSE"                 12.34 KB     250 rows
. . exported "FINANCE"."FINANCE_USER"                    6.015 KB      10 rows
Master table "FINANCE"."BULWARK_EXP_1" successfully loaded/unloaded
******************************************************************************
Dump file set for FINANCE.BULWARK_EXP_1 is:
  /opt/oracle/admin/FREE/dpdump/0D7F3A2C/bulwark_exp_1.dmp
Job "FINANCE"."BULWARK_EXP_1" successfully completed at Tue Nov 26 03:09:12 2024 elapsed 0 00:00:21
`

const importLogErrors = `Master table "FINANCE"."BULWARK_IMP_1" successfully loaded/unloaded
Starting "FINANCE"."BULWARK_IMP_1":  
Processing object type SCHEMA_EXPORT/SEQUENCE/SEQUENCE
ORA-31684: Object type SEQUENCE:"FINANCE"."FINANCE_EXPENSE_SEQ" already exists
Processing object type SCHEMA_EXPORT/TABLE/TABLE
Table "FINANCE"."FINANCE_USER" exists. All dependent metadata and data will be skipped due to table_exists_action of skip
Processing object type SCHEMA_EXPORT/TABLE/TABLE_DATA
ORA-31693: Table data object "FINANCE"."FINANCE_EXPENSE" failed to load/unload and is being skipped due to error:
ORA-01653: unable to extend table FINANCE.FINANCE_EXPENSE by 128 in tablespace USERS
Job "FINANCE"."BULWARK_IMP_1" completed with 2 error(s) at Tue Nov 26 03:10:40 2024 elapsed 0 00:00:05
`

func TestCheckDataPumpLog(t *testing.T) {
	if err := checkDataPumpLog(exportLogOK); err != nil {
		t.Errorf("successful log: %v", err)
	}
	if err := checkDataPumpLog(strings.ReplaceAll(exportLogOK, "\n", "\r\n")); err != nil {
		t.Errorf("successful log with CRLF: %v", err)
	}
	err := checkDataPumpLog(importLogErrors)
	if err == nil {
		t.Fatal("a job that completed with errors passed")
	}
	for _, want := range []string{"ORA-31684: Object type SEQUENCE", "ORA-31693: Table data object", "ORA-01653: unable to extend"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Processing object type") || strings.Contains(err.Error(), "table_exists_action") {
		t.Errorf("error %q holds lines that are not errors", err)
	}
	if err := checkDataPumpLog(""); err == nil || !strings.Contains(err.Error(), "no log") {
		t.Errorf("empty log: %v", err)
	}
	stopped := "Starting \"FINANCE\".\"BULWARK_EXP_2\":\nJob \"FINANCE\".\"BULWARK_EXP_2\" stopped due to fatal error at Tue Nov 26 03:11:00 2024 elapsed 0 00:00:01\n"
	if err := checkDataPumpLog(stopped); err == nil {
		t.Error("a stopped job passed")
	}
	var many strings.Builder
	for i := 0; i < 9; i++ {
		fmt.Fprintf(&many, "ORA-3968%d: error %d\n", i, i)
	}
	many.WriteString("Job \"F\".\"J\" completed with 9 error(s) at Tue Nov 26 03:12:00 2024\n")
	err = checkDataPumpLog(many.String())
	if err == nil || !strings.Contains(err.Error(), "ORA-39684") || strings.Contains(err.Error(), "ORA-39685") || !strings.Contains(err.Error(), "… 4 more") {
		t.Errorf("long error list: %v", err)
	}
	six := strings.Join(strings.Split(many.String(), "\n")[:6], "\n")
	err = checkDataPumpLog(six)
	if err == nil || strings.Contains(err.Error(), "ORA-39685") || !strings.Contains(err.Error(), "… 1 more") {
		t.Errorf("six errors: %v", err)
	}
	five := strings.Join(strings.Split(many.String(), "\n")[:5], "\n")
	err = checkDataPumpLog(five)
	if err == nil || !strings.Contains(err.Error(), "ORA-39684") || strings.Contains(err.Error(), "more") {
		t.Errorf("five errors: %v", err)
	}
}

func TestTableExistsActions(t *testing.T) {
	// TableExistsActions is documented as DBMS_DATAPUMP's values; keep it exactly those.
	got := append([]string(nil), TableExistsActions...)
	sort.Strings(got)
	if want := []string{"APPEND", "REPLACE", "SKIP", "TRUNCATE"}; !reflect.DeepEqual(got, want) {
		t.Errorf("TableExistsActions = %v", TableExistsActions)
	}
}

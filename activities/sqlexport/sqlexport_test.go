package sqlexport

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// fixtureSQL builds a database with every shape of table and value the
// exports have to carry.
var fixtureSQL = []string{
	`PRAGMA foreign_keys=ON`,
	`PRAGMA user_version=7`,
	`PRAGMA application_id=1113`,
	`CREATE TABLE authors(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)`,
	// A rowid table without an INTEGER PRIMARY KEY, with rowid gaps.
	`CREATE TABLE notes(body, author_id INTEGER REFERENCES authors(id))`,
	`CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID`,
	`CREATE TABLE measurements(id INTEGER PRIMARY KEY, reading REAL NOT NULL, label TEXT, raw BLOB, n INTEGER, a ANY) STRICT`,
	`CREATE TABLE events(id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT)`,
	`CREATE TABLE boxes(w REAL, h REAL, area REAL GENERATED ALWAYS AS (w*h) STORED, perimeter GENERATED ALWAYS AS (2*(w+h)) VIRTUAL)`,
	// Columns without a declared type hold any storage class.
	`CREATE TABLE mixed(v, note)`,
	// modernc.org/sqlite turns text in these columns into time.Time.
	`CREATE TABLE dates(d DATETIME, t TIMESTAMP, day DATE)`,
	// A column named rowid: the rowid is written as _rowid_.
	`CREATE TABLE "odd ""name"""("rowid" TEXT, "select" INT)`,
	// All three rowid names taken: the rowid cannot be addressed.
	`CREATE TABLE shadowed(rowid, _rowid_, oid)`,
	// INTEGER PRIMARY KEY DESC is not the rowid.
	`CREATE TABLE desc_pk(id INTEGER PRIMARY KEY DESC, v)`,
	`CREATE TABLE audit(note)`,
	`CREATE TABLE empty(x)`,
	`CREATE INDEX notes_author ON notes(author_id)`,
	`CREATE UNIQUE INDEX events_what ON events(what)`,
	`CREATE INDEX mixed_expr ON mixed(typeof(v), note)`,
	`CREATE TRIGGER notes_audit AFTER INSERT ON notes BEGIN INSERT INTO audit(note) VALUES('note ' || new.rowid); END`,
	`CREATE VIEW note_authors AS SELECT n.body, a.name FROM notes n JOIN authors a ON a.id = n.author_id`,
	`CREATE VIRTUAL TABLE docs USING fts5(title, body)`,

	`INSERT INTO authors VALUES(1, 'Zoë'), (2, 'O''Brien'), (5, 'Ünïcödé 🎉')`,
	`INSERT INTO notes(body, author_id) VALUES('first', 1), ('second', 2), ('third', 5), ('fourth', 1), ('fifth', NULL), ('sixth', 2)`,
	`DELETE FROM notes WHERE rowid IN (2, 5)`,
	`INSERT INTO notes(rowid, body, author_id) VALUES(1000, 'far', 5)`,
	`INSERT INTO kv VALUES('a', 1), ('b', 'two'), ('c', X'03'), ('d', NULL), ('e', 4.5), ('', '')`,
	`INSERT INTO measurements VALUES
		(1, 0.1, 'tenth', X'00', 1, 1),
		(2, -0.0, '', X'', -1, -0.0),
		(3, 1e308, NULL, NULL, 9007199254740993, 'text'),
		(4, 5e-324, 'subnormal', randomblob(100000), 9223372036854775807, X'ff'),
		(5, 1e999, 'inf', NULL, -9223372036854775808, NULL),
		(6, -1e999, '-inf', NULL, 0, 2.2250738585072014e-308),
		(7, 1.0, 'one', NULL, NULL, 1.0),
		(8, 123456789.125, 'exact', NULL, NULL, 0.00749915)`,
	`INSERT INTO events(what) VALUES('boot'), ('run'), ('crash')`,
	`DELETE FROM events WHERE what = 'crash'`,
	`INSERT INTO boxes(w, h) VALUES(2, 3), (1.5, NULL), (0.1, 0.2)`,
	`INSERT INTO mixed VALUES
		(42, 'integer'),
		(9007199254740993, '2^53+1'),
		(-9223372036854775808, 'min int64'),
		(0.1, 'real'),
		(-0.0, 'negative zero'),
		(1e308, 'large'),
		(5e-324, 'smallest subnormal'),
		(1e-300, 'tiny normal'),
		(2.2250738585072014e-308, 'smallest normal'),
		(1e999, '+Inf'),
		(-1e999, '-Inf'),
		(1.0, 'real one'),
		(1e20, 'real 1e20'),
		('123', 'text that looks like an integer'),
		('1.5', 'text that looks like a real'),
		('', 'empty text'),
		(NULL, 'null'),
		(X'', 'empty blob'),
		(X'00ff10', 'blob'),
		(zeroblob(100000), '100k zero blob'),
		('it''s "quoted"', 'quotes'),
		('line1' || char(10) || 'line2' || char(13) || char(10) || 'line3', 'newlines'),
		(CAST(X'61006200' AS TEXT), 'embedded and trailing NUL'),
		(CAST(X'00' AS TEXT), 'only NUL'),
		(CAST(X'fffe41' AS TEXT), 'invalid UTF-8'),
		('Café Zoë', 'accents'),
		('£', 'pound'),
		('👩‍👩‍👧 🎉', 'emoji'),
		('e' || char(769) || 'a' || char(776), 'combining characters'),
		('\x00ff', 'text that looks like a CSV blob'),
		('X''00''', 'text that looks like an SQL blob'),
		('NULL', 'text NULL'),
		('Inf', 'text Inf'),
		(',', 'comma'),
		('"', 'one quote')`,
	`INSERT INTO dates VALUES('2020-01-01 00:00:00', '2021-02-03T04:05:06Z', '2022-03-04'), (1700000000, 'not a date', 2.5)`,
	`INSERT INTO "odd ""name"""(_rowid_, "rowid", "select") VALUES(7, 'seven', 1), (3, 'three', NULL), (-5, 'negative rowid', 3)`,
	`INSERT INTO shadowed VALUES(1, 2, 3), ('a', 'b', 'c')`,
	`INSERT INTO desc_pk VALUES(10, 'ten'), (3, 'three'), (7, 'seven')`,
	`INSERT INTO docs(title, body) VALUES('Backup', 'page-level backups of SQLite'), ('Export', 'logical exports: SQL and CSV')`,
	`ANALYZE`,
}

// buildFixture creates the fixture database at path.
func buildFixture(t testing.TB, path string) {
	t.Helper()
	db := openDB(t, path)
	for _, stmt := range fixtureSQL {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	// One connection: PRAGMA foreign_keys and the dump's transaction are
	// per connection.
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// readTx opens a read transaction on the database at path.
func readTx(t testing.TB, path string) *sql.Tx {
	t.Helper()
	tx, err := openDB(t, path).BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	return tx
}

func dumpFile(t testing.TB, src, out string) DumpStats {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := Dump(context.Background(), readTx(t, src), f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return stats
}

// loadWithCLI replays a dump with the sqlite3 shell, as a user would.
func loadWithCLI(t *testing.T, dump, target string) {
	t.Helper()
	if _, err := exec.LookPath("sqlite3"); err != nil {
		// CI installs the shell (.ci/run), so there a missing one is a
		// failure, not a reason to leave the round trip unproven.
		if os.Getenv("BULWARK_REQUIRE_SQLITE3") != "" {
			t.Fatal("the sqlite3 shell is required (BULWARK_REQUIRE_SQLITE3 is set) but not installed")
		}
		t.Skip("sqlite3 shell not installed")
	}
	in, err := os.Open(dump)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cmd := exec.Command("sqlite3", "-bail", target)
	cmd.Stdin = in
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("sqlite3 %s < %s: %v\n%s", target, dump, err, out)
	}
}

func loadWithDriver(t *testing.T, dump, target string) {
	t.Helper()
	script, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openDB(t, target).Exec(string(script)); err != nil {
		t.Fatalf("load %s: %v", dump, err)
	}
}

// content describes a database: every schema object and every row of
// every table, with rowids and the storage class of each value, written
// independently of the package's own code.
func content(t *testing.T, path string) []string {
	t.Helper()
	db := openDB(t, path)
	var out []string
	query := func(q string, fn func(vals []any)) {
		t.Helper()
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fn(vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, p := range []string{"user_version", "application_id"} {
		query("PRAGMA "+p, func(v []any) { out = append(out, fmt.Sprintf("pragma %s=%v", p, v[0])) })
	}
	var schema []string
	type tbl struct {
		name  string
		rowid string // "" for none
	}
	var tables []tbl
	query(`SELECT s.type, s.name, s.tbl_name, s.sql, l.type, l.wr FROM sqlite_schema s
		LEFT JOIN pragma_table_list l ON l.schema = 'main' AND l.name = s.name`, func(v []any) {
		if strings.HasPrefix(v[1].(string), "sqlite_stat") {
			return // statistics are not dumped: ANALYZE makes them again
		}
		schema = append(schema, fmt.Sprintf("schema %v|%v|%v|%v", v[0], v[1], v[2], v[3]))
		if v[0] == "table" {
			tb := tbl{name: v[1].(string)}
			if v[5] == int64(0) && !strings.HasPrefix(tb.name, "sqlite_") {
				tb.rowid = "rowid"
			}
			tables = append(tables, tb)
		}
	})
	slices.Sort(schema)
	out = append(out, schema...)
	for _, tb := range tables {
		var cols []string
		query(fmt.Sprintf(`SELECT name FROM pragma_table_xinfo('%s') WHERE hidden != 1`, strings.ReplaceAll(tb.name, "'", "''")), func(v []any) {
			cols = append(cols, v[0].(string))
		})
		if tb.rowid != "" {
			tb.rowid = ""
			for _, alias := range []string{"rowid", "_rowid_", "oid"} {
				if !slices.ContainsFunc(cols, func(c string) bool { return strings.EqualFold(c, alias) }) {
					tb.rowid = alias
					break
				}
			}
		}
		sel := []string{}
		if tb.rowid != "" {
			sel = append(sel, "'integer'", tb.rowid, "NULL")
		}
		for _, c := range cols {
			qc := `"` + strings.ReplaceAll(c, `"`, `""`) + `"`
			sel = append(sel, "typeof("+qc+")", "+"+qc, "hex("+qc+")")
		}
		var rows []string
		query("SELECT "+strings.Join(sel, ", ")+` FROM "`+strings.ReplaceAll(tb.name, `"`, `""`)+`"`, func(v []any) {
			var row []string
			for i := 0; i < len(v); i += 3 {
				switch typ := v[i].(string); typ {
				case "null":
					row = append(row, "null")
				case "integer":
					row = append(row, fmt.Sprintf("integer:%d", v[i+1]))
				case "real":
					row = append(row, fmt.Sprintf("real:%016x", math.Float64bits(v[i+1].(float64))))
				default: // text and blob: their bytes, NULs included
					row = append(row, typ+":"+v[i+2].(string))
				}
			}
			rows = append(rows, strings.Join(row, " "))
		})
		slices.Sort(rows) // rows of a table without a rowid alias come back in any order
		for _, r := range rows {
			out = append(out, tb.name+": "+r)
		}
	}
	query("PRAGMA integrity_check", func(v []any) { out = append(out, fmt.Sprint("integrity_check ", v[0])) })
	query("PRAGMA foreign_key_check", func(v []any) { out = append(out, fmt.Sprint("foreign_key_check ", v)) })
	return out
}

func TestDumpRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	buildFixture(t, src)
	dump := filepath.Join(dir, "dump.sql")
	stats := dumpFile(t, src, dump)

	want := content(t, src)
	for _, s := range []string{"integrity_check ok", "events: integer:2 integer:2 text:72756E", "sqlite_sequence: text:6576656E7473 integer:3"} {
		if !slices.Contains(want, s) {
			t.Fatalf("fixture lacks %q: %q", s, want)
		}
	}
	for _, load := range []struct {
		name string
		fn   func(*testing.T, string, string)
	}{{"sqlite3", loadWithCLI}, {"driver", loadWithDriver}} {
		t.Run(load.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "new.db")
			load.fn(t, dump, target)
			got := content(t, target)
			if !slices.Equal(got, want) {
				for _, line := range diff(want, got) {
					t.Error(line)
				}
			}
			// The FTS index must work, not only hold the same rows.
			var title string
			if err := openDB(t, target).QueryRow(`SELECT title FROM docs WHERE docs MATCH 'logical'`).Scan(&title); err != nil || title != "Export" {
				t.Errorf("full-text query: %q, %v", title, err)
			}
		})
	}

	counts := map[string]int64{}
	for _, tr := range stats.Tables {
		counts[tr.Name] = tr.Rows
	}
	for name, n := range map[string]int64{"notes": 5, "mixed": 35, "measurements": 8, "events": 2, "empty": 0, "docs_content": 2, "kv": 6} {
		if counts[name] != n {
			t.Errorf("stats: %s has %d rows, want %d (%+v)", name, counts[name], n, stats.Tables)
		}
	}
	for _, name := range []string{"docs", "sqlite_sequence", "sqlite_stat1"} {
		if _, ok := counts[name]; ok {
			t.Errorf("stats count %s, which is not dumped as rows", name)
		}
	}
	if info, err := os.Stat(dump); err != nil || info.Size() != stats.Bytes {
		t.Errorf("stats.Bytes = %d, file: %v %v", stats.Bytes, info, err)
	}
}

// diff lists the lines only in want or only in got.
func diff(want, got []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			out = append(out, "missing: "+truncate(w))
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			out = append(out, "extra:   "+truncate(g))
		}
	}
	return out
}

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// TestDumpLayout checks the statements that matter for loading: rowids,
// column lists, and data before sqlite_sequence, indexes and triggers.
func TestDumpLayout(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	buildFixture(t, src)
	var buf bytes.Buffer
	if _, err := Dump(context.Background(), readTx(t, src), &buf); err != nil {
		t.Fatal(err)
	}
	dump := buf.String()
	in := func(s string) int {
		t.Helper()
		i := strings.Index(dump, s)
		if i < 0 {
			t.Fatalf("dump lacks %q", s)
		}
		return i
	}
	if !strings.HasPrefix(dump, "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nPRAGMA user_version=7;\nPRAGMA application_id=1113;\n") {
		t.Errorf("dump starts %q", dump[:100])
	}
	if !strings.HasSuffix(dump, "PRAGMA writable_schema=OFF;\nCOMMIT;\n") {
		t.Errorf("dump ends %q", dump[len(dump)-100:])
	}
	in(`INSERT INTO "authors"("id","name") VALUES(2,'O''Brien');`)
	in(`INSERT INTO "notes"(rowid,"body","author_id") VALUES(1000,'far',5);`)
	in(`INSERT INTO "odd ""name"""(_rowid_,"rowid","select") VALUES(-5,'negative rowid',3);`)
	in(`INSERT INTO "shadowed"("rowid","_rowid_","oid") VALUES(1,2,3);`)
	in(`INSERT INTO "desc_pk"(rowid,"id","v") VALUES(`)
	in(`INSERT INTO "kv"("k","v") VALUES('','');`)
	in(`INSERT INTO "boxes"(rowid,"w","h") VALUES(1,2.0,3.0);`)
	in(`INSERT INTO "mixed"(rowid,"v","note") VALUES(3,-9223372036854775808,'min int64');`)
	in(`VALUES(5,-0.0,'negative zero');`)
	in(`VALUES(4,0.10000000000000001,'real');`)
	in(`VALUES(7,(1.0507614211323843e-286/4611686018427387904.0/4611686018427387904.0),'smallest subnormal');`)
	in(`VALUES(10,1e999,'+Inf');`)
	in(`VALUES(11,-1e999,'-Inf');`)
	in(`VALUES(13,1e+20,'real 1e20');`)
	in(`VALUES(18,X'','empty blob');`)
	in(`VALUES(23,'a'||char(0)||'b'||char(0)||'','embedded and trailing NUL');`)
	in(`VALUES(25,CAST(X'fffe41' AS TEXT),'invalid UTF-8');`)
	in("VALUES(22,'line1\nline2'||char(13)||'\nline3','newlines');")
	in(`INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql) VALUES('table','docs','docs',0,'CREATE VIRTUAL TABLE docs USING fts5(title, body)');`)
	if strings.Contains(dump, "sqlite_stat1") {
		t.Error("dump holds sqlite_stat1")
	}
	lastData := strings.LastIndex(dump, `INSERT INTO "`)
	seq := in("DELETE FROM sqlite_sequence;\nINSERT INTO sqlite_sequence(name,seq) VALUES('events',3);\n")
	index := in("CREATE INDEX notes_author ON notes(author_id);\n")
	trigger := in("CREATE TRIGGER notes_audit AFTER INSERT ON notes BEGIN")
	view := in("CREATE VIEW note_authors")
	if !(lastData < seq && seq < index && index < trigger && trigger < view) {
		t.Errorf("order: last data %d, sqlite_sequence %d, index %d, trigger %d, view %d", lastData, seq, index, trigger, view)
	}
}

// TestRealLiterals checks that the REAL text of the dump evaluates to the
// same bits in the sqlite3 shell and in the driver, for edge values and for
// random ones (of which shortest round-trip text loses about 1% in the shell
// of SQLite 3.40).
func TestRealLiterals(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), 0.1, 0.2, 0.3, 1, -1, 1.5, 1e20, 1e21, 1e308, math.MaxFloat64, -math.MaxFloat64,
		5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308, 1e-290, 9.999999999999999e-291, 1e-300,
		1 << 53, 1<<53 + 2, 0.00749915, 4.929e-13, 3.739208422e-15, math.Pi, math.Inf(1), math.Inf(-1)}
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		if v := math.Float64frombits(r.Uint64()); !math.IsNaN(v) {
			vals = append(vals, v)
		}
		vals = append(vals, math.Float64frombits(r.Uint64N(1<<52)))          // subnormal
		vals = append(vals, float64(r.Int64N(1e9))/math.Pow10(r.IntN(20)))   // short decimal
		vals = append(vals, math.Float64frombits(r.Uint64N(1<<62)>>8|1<<62)) // around 1
	}
	var script strings.Builder
	script.WriteString("CREATE TABLE f(x);\nBEGIN;\n")
	for _, v := range vals {
		fmt.Fprintf(&script, "INSERT INTO f VALUES(%s);\n", appendSQLReal(nil, v))
	}
	script.WriteString("COMMIT;\n")
	dir := t.TempDir()
	dump := filepath.Join(dir, "reals.sql")
	if err := os.WriteFile(dump, []byte(script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, path string) {
		rows, err := openDB(t, path).Query(`SELECT typeof(x), x FROM f ORDER BY rowid`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		i, bad := 0, 0
		for ; rows.Next(); i++ {
			var typ string
			var got float64
			if err := rows.Scan(&typ, &got); err != nil {
				t.Fatal(err)
			}
			if typ != "real" || math.Float64bits(got) != math.Float64bits(vals[i]) {
				if bad++; bad < 10 {
					t.Errorf("%s loads as %s %v, want %v", appendSQLReal(nil, vals[i]), typ, got, vals[i])
				}
			}
		}
		if i != len(vals) {
			t.Errorf("%d values, want %d", i, len(vals))
		}
	}
	t.Run("sqlite3", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "new.db")
		loadWithCLI(t, dump, target)
		check(t, target)
	})
	t.Run("driver", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "new.db")
		loadWithDriver(t, dump, target)
		check(t, target)
	})
}

func TestTables(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src.db")
	buildFixture(t, src)
	got, err := Tables(context.Background(), readTx(t, src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"audit", "authors", "boxes", "dates", "desc_pk", "empty", "events", "kv", "measurements", "mixed", "notes", `odd "name"`, "shadowed"}
	if !slices.Equal(got, want) {
		t.Errorf("Tables = %q, want %q", got, want)
	}
}

// typedRows reads a table's exported columns as the driver gives them.
func typedRows(t *testing.T, q Querier, table string) (cols []string, rows [][]any) {
	t.Helper()
	tb, err := loadTable(context.Background(), q, table, false)
	if err != nil {
		t.Fatal(err)
	}
	var sel []string
	for _, c := range tb.cols {
		qc := quoteIdent(c)
		sel = append(sel, "+"+qc, "typeof("+qc+")")
	}
	r, err := q.QueryContext(context.Background(), "SELECT "+strings.Join(sel, ",")+" FROM "+quoteIdent(table))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		vals := make([]any, 2*len(tb.cols))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var row []any
		for i := 0; i < len(vals); i += 2 {
			v := vals[i]
			if vals[i+1] == "blob" && v == nil {
				v = []byte{}
			}
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return tb.cols, rows
}

// sameValue compares values by type and exact content (REAL by bits).
func sameValue(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case int64:
		b, ok := b.(int64)
		return ok && a == b
	case float64:
		b, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(b)
	case string:
		b, ok := b.(string)
		return ok && a == b
	case []byte:
		b, ok := b.([]byte)
		return ok && b != nil && bytes.Equal(a, b)
	}
	return false
}

func TestCSVRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src.db")
	buildFixture(t, src)
	tx := readTx(t, src)
	tables, err := Tables(context.Background(), tx)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range append(tables, "note_authors") {
		t.Run(table, func(t *testing.T) {
			var buf bytes.Buffer
			n, err := WriteCSV(context.Background(), tx, table, &buf)
			if err != nil {
				t.Fatal(err)
			}
			cols, want := typedRows(t, tx, table)
			if n != int64(len(want)) {
				t.Errorf("WriteCSV counted %d rows, table has %d", n, len(want))
			}
			r, err := NewCSVReader(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Header(), cols) {
				t.Errorf("header %q, want %q", r.Header(), cols)
			}
			for i := 0; ; i++ {
				got, err := r.Read()
				if err == io.EOF {
					if i != len(want) {
						t.Errorf("%d records, want %d", i, len(want))
					}
					break
				}
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if i >= len(want) {
					t.Fatalf("extra record %v", got)
				}
				for j := range got {
					if !sameValue(want[i][j], got[j]) {
						t.Errorf("row %d %s: got %T %.60v, want %T %.60v", i, cols[j], got[j], got[j], want[i][j], want[i][j])
					}
				}
			}
		})
	}
}

// TestCSVFormat pins the text of the conventions in the package
// documentation.
func TestCSVFormat(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src.db")
	db := openDB(t, src)
	for _, stmt := range []string{
		`CREATE TABLE t("a ""b""", c, d REAL, g GENERATED ALWAYS AS (c) VIRTUAL)`,
		`INSERT INTO t VALUES(NULL, '', 1), ('x,y', 'say "hi"', 2.5), (-42, X'00ff', -0.0), (1e300, X'', 1e999),
			(0.1, 'two' || char(13) || char(10) || 'lines', -1e999), ('\x00', 3, NULL)`,
		`CREATE TABLE one(x)`,
		`INSERT INTO one VALUES(NULL), (''), (NULL)`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	tx := readTx(t, src)
	for table, want := range map[string]string{
		"t": `"a ""b""","c","d"` + "\r\n" +
			`,"",1.0` + "\r\n" +
			`"x,y","say ""hi""",2.5` + "\r\n" +
			`-42,\x00ff,0.0` + "\r\n" + // a REAL column stores -0.0 as integer 0
			`1e+300,\x,Inf` + "\r\n" +
			`0.1,"two` + "\r\n" + `lines",-Inf` + "\r\n" +
			`"\x00",3,` + "\r\n",
		"one": `"x"` + "\r\n\r\n" + `""` + "\r\n\r\n",
	} {
		var buf bytes.Buffer
		if _, err := WriteCSV(context.Background(), tx, table, &buf); err != nil {
			t.Fatal(err)
		}
		if buf.String() != want {
			t.Errorf("%s:\n got %q\nwant %q", table, buf.String(), want)
		}
	}
}

func TestCSVReaderAccepts(t *testing.T) {
	// Line feeds without carriage returns, no final line end, 'E' exponents.
	r, err := NewCSVReader(strings.NewReader("\"a\",\"b\"\n1,\"x\"\n2.5E3,\n,\\xAB"))
	if err != nil {
		t.Fatal(err)
	}
	want := [][]any{{int64(1), "x"}, {2500.0, nil}, {nil, []byte{0xab}}}
	for i := 0; ; i++ {
		rec, err := r.Read()
		if err == io.EOF {
			if i != len(want) {
				t.Errorf("%d records, want %d", i, len(want))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		for j := range rec {
			if !sameValue(want[i][j], rec[j]) {
				t.Errorf("record %d field %d: %#v, want %#v", i, j, rec[j], want[i][j])
			}
		}
	}
}

func TestCSVReaderRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"a\r\n",            // unquoted header
		"\"a\"\r\nabc\r\n", // unquoted text
		"\"a\"\r\n\"x\r\n", // unclosed quote
		"\"a\"\r\n\"x\"y\r\n",
		"\"a\"\r\nx\"y\r\n",
		"\"a\"\r\n1\rx\r\n",
		"\"a\"\r\n1,2\r\n",     // too many fields
		"\"a\",\"b\"\r\n1\r\n", // too few
		"\"a\"\r\n\\xabc\r\n",  // odd hex
		"\"a\"\r\n\\xzz\r\n",   // not hex
		"\"a\"\r\n99999999999999999999\r\n",
		"\"a\"\r\n1e400\r\n",
		"\"a\"\r\nNaN\r\n",
		"\"a\"\r\n+\r\n",
		"\"a\"\r\n1-2\r\n",
		"\"a\"\r\n0x10\r\n",
	} {
		r, err := NewCSVReader(strings.NewReader(in))
		for err == nil {
			_, err = r.Read()
		}
		if !errors.Is(err, ErrMalformedCSV) {
			t.Errorf("%q: %v, want ErrMalformedCSV", in, err)
		}
	}
}

// TestErrorsStopExport checks that a failing destination or a cancelled
// context ends an export with its error.
func TestErrorsStopExport(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src.db")
	buildFixture(t, src)
	tx := readTx(t, src)
	errDisk := errors.New("disk full")
	w := &failingWriter{after: 100 << 10, err: errDisk}
	if _, err := Dump(context.Background(), tx, w); !errors.Is(err, errDisk) {
		t.Errorf("Dump to failing writer: %v", err)
	}
	w = &failingWriter{after: 10, err: errDisk}
	if _, err := WriteCSV(context.Background(), tx, "mixed", w); !errors.Is(err, errDisk) {
		t.Errorf("WriteCSV to failing writer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dump(ctx, tx, io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("Dump with cancelled context: %v", err)
	}
	if _, err := WriteCSV(ctx, tx, "mixed", io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteCSV with cancelled context: %v", err)
	}
	if _, err := WriteCSV(context.Background(), tx, "missing", io.Discard); err == nil {
		t.Error("WriteCSV of a missing table succeeded")
	}
}

type failingWriter struct {
	after int
	err   error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		n := w.after
		w.after = 0
		return n, w.err
	}
	w.after -= len(p)
	return len(p), nil
}

// TestDriverTextToTime checks that a connection that turns text into
// time.Time makes exports fail instead of changing values.
func TestDriverTextToTime(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src.db")
	db := openDB(t, src)
	if _, err := db.Exec(`CREATE TABLE t(x); INSERT INTO t VALUES('2020-01-01 00:00:00')`); err != nil {
		t.Fatal(err)
	}
	conv := openDB(t, "file:"+src+"?_texttotime=1")
	if _, err := WriteCSV(context.Background(), conv, "t", io.Discard); !errors.Is(err, errValueType) {
		t.Errorf("WriteCSV through _texttotime: %v", err)
	}
}

// heapSampler is a destination that records the largest heap it sees.
type heapSampler struct {
	writes  int
	maxHeap uint64
	bytes   int64
}

func (h *heapSampler) Write(p []byte) (int, error) {
	if h.writes%64 == 0 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		h.maxHeap = max(h.maxHeap, m.HeapAlloc)
	}
	h.writes++
	h.bytes += int64(len(p))
	return len(p), nil
}

// TestExportMemory checks that exports stream: exporting a table much
// larger than the heap bound keeps the heap small.
func TestExportMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 150 MB database")
	}
	src := filepath.Join(t.TempDir(), "big.db")
	db := openDB(t, src)
	if _, err := db.Exec(`CREATE TABLE big(id INTEGER PRIMARY KEY, s TEXT, b BLOB, r REAL);
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 60000)
		INSERT INTO big(s, b, r) SELECT hex(randomblob(1000)), randomblob(500), random() / 7.0 FROM n`); err != nil {
		t.Fatal(err)
	}
	const bound = 48 << 20
	tx := readTx(t, src)
	runtime.GC()
	h := &heapSampler{}
	if _, err := Dump(context.Background(), tx, h); err != nil {
		t.Fatal(err)
	}
	if h.bytes < 150<<20 || h.maxHeap > bound {
		t.Errorf("Dump wrote %d MB with the heap at up to %d MB", h.bytes>>20, h.maxHeap>>20)
	}
	runtime.GC()
	h = &heapSampler{}
	if _, err := WriteCSV(context.Background(), tx, "big", h); err != nil {
		t.Fatal(err)
	}
	if h.bytes < 150<<20 || h.maxHeap > bound {
		t.Errorf("WriteCSV wrote %d MB with the heap at up to %d MB", h.bytes>>20, h.maxHeap>>20)
	}
	t.Logf("wrote %d MB of CSV, heap at most %d MB", h.bytes>>20, h.maxHeap>>20)
}

// FuzzCSVReader feeds arbitrary input to the reader: it must not panic, and
// what it accepts must come back the same through the writer.
func FuzzCSVReader(f *testing.F) {
	f.Add([]byte("\"a\",\"b\"\r\n1,\"x\"\r\n"))
	f.Add([]byte("\"x\"\r\n\r\n\"\"\r\n"))
	f.Add([]byte("\"a\",\"b\",\"c\"\r\n-0.0,\\x00ff,\"say \"\"hi\"\"\"\r\nInf,-Inf,1e+300\r\n"))
	f.Add([]byte("\"a\"\n\"multi\r\nline\"\n5e-324"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewCSVReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		var records [][]any
		for {
			rec, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
			records = append(records, rec)
		}
		var buf bytes.Buffer
		o := newOutput(&buf)
		writeRecord := func(rec []any) {
			for i, v := range rec {
				if i > 0 {
					o.WriteByte(',')
				}
				if err := writeCSVValue(o, v); err != nil {
					t.Fatal(err)
				}
			}
			o.WriteString("\r\n")
		}
		header := make([]any, len(r.Header()))
		for i, h := range r.Header() {
			header[i] = h
		}
		writeRecord(header)
		for _, rec := range records {
			writeRecord(rec)
		}
		if _, err := o.finish(); err != nil {
			t.Fatal(err)
		}
		r2, err := NewCSVReader(&buf)
		if err != nil {
			t.Fatalf("rewritten %q: %v", buf.String(), err)
		}
		if !slices.Equal(r2.Header(), r.Header()) {
			t.Fatalf("header %q became %q", r.Header(), r2.Header())
		}
		for _, rec := range records {
			rec2, err := r2.Read()
			if err != nil {
				t.Fatalf("rewritten %q: %v", buf.String(), err)
			}
			for i := range rec {
				if !sameValue(rec[i], rec2[i]) {
					t.Fatalf("%#v became %#v", rec[i], rec2[i])
				}
			}
		}
		if _, err := r2.Read(); err != io.EOF {
			t.Fatalf("rewritten input has more records: %v", err)
		}
	})
}

// Package sqlexport writes logical exports of an SQLite database: an SQL
// script that replays into an equal database, and one CSV file per table.
// Both stream: they hold one row at a time, whatever the size of a table.
//
// # SQL dump
//
// [Dump] writes what `sqlite3 new.db < dump.sql` turns back into the same
// schema and rows, modelled on the sqlite3 shell's .dump:
//
//	PRAGMA foreign_keys=OFF;
//	BEGIN TRANSACTION;
//	PRAGMA user_version=…; PRAGMA application_id=…;   (when not zero)
//	CREATE TABLE …; INSERT INTO … VALUES(…); …         (each table, then its rows)
//	DELETE FROM sqlite_sequence; INSERT INTO sqlite_sequence …
//	CREATE INDEX / CREATE TRIGGER / CREATE VIEW …       (after the data, so triggers do not fire)
//	COMMIT;
//
// Objects come in sqlite_schema order. Values keep their storage class:
//
//   - INTEGER as decimal.
//   - REAL as 17 significant digits, always with a '.' or an exponent so that
//     it stays REAL; ±Inf as ±1e999; magnitudes below 1e-290 as a normal
//     number divided by 2^62 once or twice. Shortest round-trip text is not
//     enough: SQLite before 3.43 or so (Debian 12's sqlite3 is 3.40) misreads
//     decimals that lie near the midpoint between two doubles, which shortest
//     text can (0.00749915 loads as 0.0074991499999999996), and every number
//     below about 1e-290 is at risk there.
//   - TEXT as a quoted literal with ' doubled; NUL and carriage return are
//     concatenated in as ||char(0)|| and ||char(13)|| (a literal ends at NUL,
//     and the sqlite3 shell drops a carriage return before a line feed); text
//     that is not valid UTF-8 as CAST(X'…' AS TEXT), which assumes a UTF-8
//     database, the default.
//   - BLOB as X'…'; NULL as NULL.
//
// Rowids are kept: through the INTEGER PRIMARY KEY when there is one,
// otherwise by naming rowid (or _rowid_ or oid, the first that is not a
// column name) in the INSERT. A table whose columns take all three names has
// no addressable rowid, and the load numbers its rows afresh. Generated
// columns are left out of the INSERTs; the load computes them again.
//
// Virtual tables are restored the way the shell restores them: their
// sqlite_schema row is inserted under PRAGMA writable_schema, and their
// shadow tables are dumped as ordinary tables. The dump leaves out
// sqlite_stat* (run ANALYZE after loading) and what is a property of the
// file rather than of the data: page size, encoding, auto_vacuum, journal mode.
//
// # CSV
//
// [WriteCSV] writes one table as RFC 4180 CSV: a header row of column
// names, then one record per row, comma separated, CRLF terminated. The
// quoting carries the storage class, so that [CSVReader] gives back exactly
// what was written:
//
//	NULL     empty unquoted field                 ,,
//	TEXT     always quoted, " doubled             "", "Café", "say ""hi"""
//	INTEGER  unquoted decimal                     -42
//	REAL     unquoted shortest round-trip text,   0.1, 1.0, -0.0, 1e+300, 5e-324
//	         always with '.' or 'e'; ±Inf as      Inf, -Inf
//	BLOB     unquoted \x and lowercase hex        \x00ff, and \x for an empty blob
//
// Header names are quoted like TEXT. Text is written byte for byte, NULs and
// newlines included, inside its quotes. Generated columns and rowids that are
// not columns are not exported: the SQL dump is the exact copy, the CSV is the
// table's columns. In a one-column table a NULL row is an empty line, which
// some CSV readers skip.
package sqlexport

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Querier runs queries against one database. Dump and WriteCSV read with
// several queries, so q should be a *sql.Tx, or a *sql.Conn inside BEGIN,
// for them to see a single snapshot.
//
// Values must arrive with their storage class, as modernc.org/sqlite
// delivers them by default: int64, float64, string, []byte or nil. A
// connection opened with _texttotime, which turns text into time.Time,
// makes exports fail rather than change values.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Tables lists the tables of the main schema whose rows can be exported,
// ordered by name: not sqlite_* tables, virtual tables, or the shadow tables
// in which virtual tables keep their data. A shadow table of a module that
// the driver does not have (FTS3/4 in modernc.org/sqlite) looks like an
// ordinary table and is listed.
func Tables(ctx context.Context, q Querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM pragma_table_list
		WHERE schema = 'main' AND type = 'table' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		if !reserved(name) {
			names = append(names, name)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return names, nil
}

// reserved reports whether name is one of SQLite's own objects, which every
// database creates for itself.
func reserved(name string) bool {
	return len(name) >= 7 && strings.EqualFold(name[:7], "sqlite_")
}

// quoteIdent quotes an SQLite identifier.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// table says how to read the rows of one table.
type table struct {
	name string
	cols []string // stored columns in declaration order, generated ones left out
	// rowid is the name under which the rowid is read and written back when
	// it is not already a column, or "".
	rowid string
}

// loadTable reads the columns of a table (or view) from its schema. With
// keepRowid, a rowid that is not an INTEGER PRIMARY KEY column is added.
func loadTable(ctx context.Context, q Querier, name string, keepRowid bool) (table, error) {
	t := table{name: name}
	rows, err := q.QueryContext(ctx, `SELECT name, type, pk, hidden FROM pragma_table_xinfo(?, 'main') ORDER BY cid`, name)
	if err != nil {
		return t, fmt.Errorf("read columns of %s: %w", name, err)
	}
	defer rows.Close()
	var (
		all    []string // every column name, for rowid alias clashes
		pkCols int
		pkType string
	)
	for rows.Next() {
		var col, typ string
		var pk, hidden int
		if err := rows.Scan(&col, &typ, &pk, &hidden); err != nil {
			return t, fmt.Errorf("read columns of %s: %w", name, err)
		}
		all = append(all, col)
		if pk > 0 {
			pkCols++
			pkType = typ
		}
		// hidden is 1 for hidden columns of virtual tables, 2 and 3 for
		// generated columns: none of them can be inserted.
		if hidden == 0 {
			t.cols = append(t.cols, col)
		}
	}
	if err := rows.Err(); err != nil {
		return t, fmt.Errorf("read columns of %s: %w", name, err)
	}
	if err := rows.Close(); err != nil {
		return t, fmt.Errorf("read columns of %s: %w", name, err)
	}
	if len(all) == 0 {
		return t, fmt.Errorf("read columns of %s: no such table", name)
	}
	if !keepRowid {
		return t, nil
	}
	if pkCols == 1 && strings.EqualFold(pkType, "INTEGER") {
		// An INTEGER PRIMARY KEY is the rowid, except when declared DESC
		// in the column definition (an old quirk SQLite keeps); then it
		// is an ordinary column with its own index of origin "pk".
		ok, err := hasPKIndex(ctx, q, name)
		if err != nil {
			return t, err
		}
		if !ok {
			return t, nil
		}
	}
	for _, alias := range []string{"rowid", "_rowid_", "oid"} {
		taken := false
		for _, col := range all {
			if strings.EqualFold(col, alias) {
				taken = true
				break
			}
		}
		if !taken {
			t.rowid = alias
			break
		}
	}
	return t, nil
}

// hasPKIndex reports whether the primary key of table has an index of its
// own, which an INTEGER PRIMARY KEY that is the rowid never has.
func hasPKIndex(ctx context.Context, q Querier, name string) (bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT 1 FROM pragma_index_list(?, 'main') WHERE origin = 'pk'`, name)
	if err != nil {
		return false, fmt.Errorf("read indexes of %s: %w", name, err)
	}
	defer rows.Close()
	found := rows.Next()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("read indexes of %s: %w", name, err)
	}
	return found, nil
}

// selectSQL reads the table's values in scan order. The unary + makes each
// result an expression, without a declared type, because modernc.org/sqlite
// turns TEXT in DATE, DATETIME and TIMESTAMP columns into time.Time; + does
// not change a value or its storage class.
func (t table) selectSQL() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	if t.rowid != "" {
		b.WriteString("+" + t.rowid + ", ")
	}
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("+" + quoteIdent(c))
	}
	b.WriteString(" FROM main." + quoteIdent(t.name))
	return b.String()
}

// scanRows runs query and calls fn with each row's values, reusing one slice,
// and returns the number of rows. It stops at the first error of fn or of
// the destination of o.
func scanRows(ctx context.Context, q Querier, query string, n int, o *output, fn func([]any) error) (int64, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var count int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return count, err
		}
		if err := fn(vals); err != nil {
			return count, err
		}
		count++
		// The destination failing (disk full, upload aborted) ends the scan
		// now rather than after reading the rest of a large table.
		if o.cw.err != nil {
			return count, o.cw.err
		}
	}
	if err := rows.Err(); err != nil {
		return count, err
	}
	return count, rows.Close()
}

// errValueType reports a value that is not one of SQLite's storage classes.
var errValueType = errors.New("driver returned a value that is not an SQLite storage class")

func badValue(v any) error {
	return fmt.Errorf("%w: %T", errValueType, v)
}

// output buffers writes to w and remembers how much reached it and its first
// error.
type output struct {
	*bufio.Writer
	cw  *countingWriter
	num []byte // scratch for numbers
	hex []byte // scratch for hex encoding
}

func newOutput(w io.Writer) *output {
	cw := &countingWriter{w: w}
	return &output{
		Writer: bufio.NewWriterSize(cw, 64<<10),
		cw:     cw,
		num:    make([]byte, 0, 64),
		hex:    make([]byte, 0, 2*hexChunk),
	}
}

// hexChunk is how many bytes are hex-encoded at a time, so that a large blob
// does not need a second copy of twice its size.
const hexChunk = 4096

// writeHex writes the lowercase hex digits of b.
func writeHex[T string | []byte](o *output, b T) {
	const digits = "0123456789abcdef"
	for len(b) > 0 {
		n := min(len(b), hexChunk)
		o.hex = o.hex[:0]
		for i := 0; i < n; i++ {
			o.hex = append(o.hex, digits[b[i]>>4], digits[b[i]&0x0f])
		}
		o.Write(o.hex)
		b = b[n:]
	}
}

// finish flushes the buffer and returns the bytes written to the destination.
func (o *output) finish() (int64, error) {
	err := o.Flush()
	return o.cw.n, err
}

type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

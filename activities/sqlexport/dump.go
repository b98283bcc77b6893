package sqlexport

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DumpStats describes a finished dump.
type DumpStats struct {
	// Tables lists every table whose rows the dump holds, in dump order.
	Tables []TableRows `json:"tables"`
	// Bytes is the size of the script.
	Bytes int64 `json:"bytes"`
}

// TableRows is the number of rows dumped from one table.
type TableRows struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
}

// schemaObject is one row of sqlite_schema.
type schemaObject struct {
	typ, name, tblName, sql string // sql is "" where sqlite_schema has NULL
}

// Dump writes an SQL script that recreates the main schema of the database
// read through q: its tables with their rows, indexes, triggers and views.
// See the package documentation for the layout and value encodings.
//
// Dump buffers its writes and flushes them before returning; it stops at the
// first error of w. Only one row is in memory at a time.
func Dump(ctx context.Context, q Querier, w io.Writer) (DumpStats, error) {
	var stats DumpStats
	objects, err := readSchema(ctx, q)
	if err != nil {
		return stats, err
	}
	kinds, err := tableKinds(ctx, q)
	if err != nil {
		return stats, err
	}
	var userVersion, appID int64
	if err := queryInt(ctx, q, "PRAGMA main.user_version", &userVersion); err != nil {
		return stats, fmt.Errorf("read user_version: %w", err)
	}
	if err := queryInt(ctx, q, "PRAGMA main.application_id", &appID); err != nil {
		return stats, fmt.Errorf("read application_id: %w", err)
	}

	o := newOutput(w)
	o.WriteString("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
	if userVersion != 0 {
		fmt.Fprintf(o, "PRAGMA user_version=%d;\n", userVersion)
	}
	if appID != 0 {
		fmt.Fprintf(o, "PRAGMA application_id=%d;\n", appID)
	}

	writableSchema, hasSequence := false, false
	for _, obj := range objects {
		if obj.typ != "table" || obj.sql == "" {
			continue
		}
		if reserved(obj.name) {
			// sqlite_sequence comes after the data, which bumps it;
			// sqlite_stat* is left to ANALYZE.
			hasSequence = hasSequence || strings.EqualFold(obj.name, "sqlite_sequence")
			continue
		}
		if kinds[obj.name].virtual {
			// CREATE VIRTUAL TABLE would create empty shadow tables,
			// which the CREATE TABLEs of the dumped ones then collide
			// with: like the shell, write the schema row itself.
			if !writableSchema {
				o.WriteString("PRAGMA writable_schema=ON;\n")
				writableSchema = true
			}
			o.WriteString("INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql) VALUES('table',")
			writeSQLText(o, obj.name)
			o.WriteByte(',')
			writeSQLText(o, obj.tblName)
			o.WriteString(",0,")
			writeSQLText(o, obj.sql)
			o.WriteString(");\n")
			continue
		}
		o.WriteString(obj.sql)
		o.WriteString(";\n")
		n, err := dumpRows(ctx, q, o, obj.name, kinds[obj.name].rowid)
		if err != nil {
			return stats, fmt.Errorf("dump table %s: %w", obj.name, err)
		}
		stats.Tables = append(stats.Tables, TableRows{Name: obj.name, Rows: n})
	}
	if hasSequence {
		if err := dumpSequence(ctx, q, o); err != nil {
			return stats, fmt.Errorf("dump sqlite_sequence: %w", err)
		}
	}
	for _, obj := range objects {
		switch obj.typ {
		case "index", "trigger", "view":
			// Automatic indexes have no SQL; the CREATE TABLE makes them.
			if obj.sql != "" {
				o.WriteString(obj.sql)
				o.WriteString(";\n")
			}
		}
	}
	if writableSchema {
		o.WriteString("PRAGMA writable_schema=OFF;\n")
	}
	o.WriteString("COMMIT;\n")
	n, err := o.finish()
	stats.Bytes = n
	if err != nil {
		return stats, fmt.Errorf("write dump: %w", err)
	}
	return stats, nil
}

// readSchema lists sqlite_schema in creation order, which is an order in
// which each object can be created again.
func readSchema(ctx context.Context, q Querier) ([]schemaObject, error) {
	rows, err := q.QueryContext(ctx, `SELECT type, name, tbl_name, coalesce(sql, '') FROM main.sqlite_schema ORDER BY rowid`)
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	defer rows.Close()
	var objects []schemaObject
	for rows.Next() {
		var obj schemaObject
		if err := rows.Scan(&obj.typ, &obj.name, &obj.tblName, &obj.sql); err != nil {
			return nil, fmt.Errorf("read schema: %w", err)
		}
		objects = append(objects, obj)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	return objects, nil
}

// tableKind is what PRAGMA table_list says of a table.
type tableKind struct {
	virtual bool
	rowid   bool // a rowid table, not WITHOUT ROWID
}

// tableKinds describes each table of the main schema.
func tableKinds(ctx context.Context, q Querier) (map[string]tableKind, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main'`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	kinds := make(map[string]tableKind)
	for rows.Next() {
		var name, typ string
		var withoutRowid bool
		if err := rows.Scan(&name, &typ, &withoutRowid); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		kinds[name] = tableKind{virtual: typ == "virtual", rowid: !withoutRowid && typ != "view"}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return kinds, nil
}

func queryInt(ctx context.Context, q Querier, query string, v *int64) error {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(v); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// dumpRows writes an INSERT for each row of a table.
func dumpRows(ctx context.Context, q Querier, o *output, name string, hasRowid bool) (int64, error) {
	t, err := loadTable(ctx, q, name, hasRowid)
	if err != nil {
		return 0, err
	}
	var prefix strings.Builder
	prefix.WriteString("INSERT INTO " + quoteIdent(name) + "(")
	if t.rowid != "" {
		prefix.WriteString(t.rowid + ",")
	}
	for i, c := range t.cols {
		if i > 0 {
			prefix.WriteByte(',')
		}
		prefix.WriteString(quoteIdent(c))
	}
	prefix.WriteString(") VALUES(")
	insert := prefix.String()
	n := len(t.cols)
	if t.rowid != "" {
		n++
	}
	return scanRows(ctx, q, t.selectSQL(), n, o, func(vals []any) error {
		o.WriteString(insert)
		if err := writeValues(o, vals, writeSQLValue); err != nil {
			return err
		}
		o.WriteString(");\n")
		return nil
	})
}

// writeValues writes one row's values separated by commas, each with
// encode: SQL literals for the dump, CSV fields for CSV files.
func writeValues(o *output, vals []any, encode func(*output, any) error) error {
	for i, v := range vals {
		if i > 0 {
			o.WriteByte(',')
		}
		if err := encode(o, v); err != nil {
			return err
		}
	}
	return nil
}

// dumpSequence restores sqlite_sequence after the data, whose inserts have
// moved it, when there is anything to restore. (Rows in it imply an
// AUTOINCREMENT table, so the load has one too.)
func dumpSequence(ctx context.Context, q Querier, o *output) error {
	first := true
	_, err := scanRows(ctx, q, `SELECT name, seq FROM main.sqlite_sequence`, 2, o, func(vals []any) error {
		if first {
			// Clear what the inserts left.
			o.WriteString("DELETE FROM sqlite_sequence;\n")
			first = false
		}
		o.WriteString("INSERT INTO sqlite_sequence(name,seq) VALUES(")
		if err := writeSQLValue(o, vals[0]); err != nil {
			return err
		}
		o.WriteByte(',')
		if err := writeSQLValue(o, vals[1]); err != nil {
			return err
		}
		o.WriteString(");\n")
		return nil
	})
	return err
}

// writeSQLValue writes v as an SQL expression of the same value and storage
// class.
func writeSQLValue(o *output, v any) error {
	switch v := v.(type) {
	case nil:
		o.WriteString("NULL")
	case int64:
		o.num = strconv.AppendInt(o.num[:0], v, 10)
		o.Write(o.num)
	case float64:
		o.num = appendSQLReal(o.num[:0], v)
		o.Write(o.num)
	case string:
		writeSQLText(o, v)
	case []byte:
		// modernc.org/sqlite returns a zero-length BLOB as a nil []byte,
		// distinct from the untyped nil of NULL.
		o.WriteString("X'")
		writeHex(o, v)
		o.WriteByte('\'')
	default:
		return badValue(v)
	}
	return nil
}

// writeSQLText writes s as a TEXT expression. NUL and carriage return are
// concatenated in with char(): a literal cannot hold NUL (SQLite would end
// the text there), and the sqlite3 shell drops a carriage return before a
// line feed as it reads its input. Text that is not valid UTF-8 is written as
// bytes so that the script stays valid UTF-8.
func writeSQLText(o *output, s string) {
	if !utf8.ValidString(s) {
		o.WriteString("CAST(X'")
		writeHex(o, s)
		o.WriteString("' AS TEXT)")
		return
	}
	for {
		i := strings.IndexAny(s, "\x00\r")
		seg := s
		if i >= 0 {
			seg = s[:i]
		}
		o.WriteByte('\'')
		for {
			j := strings.IndexByte(seg, '\'')
			if j < 0 {
				break
			}
			o.WriteString(seg[:j+1])
			o.WriteByte('\'')
			seg = seg[j+1:]
		}
		o.WriteString(seg)
		o.WriteByte('\'')
		if i < 0 {
			return
		}
		if s[i] == 0 {
			o.WriteString("||char(0)||")
		} else {
			o.WriteString("||char(13)||")
		}
		s = s[i+1:]
	}
}

// tinyReal is the magnitude below which a REAL is written as a division (see
// appendSQLReal).
const tinyReal = 1e-290

// appendSQLReal appends an SQL expression that SQLite evaluates to exactly f,
// as a REAL, in any version (see the package documentation). Seventeen
// significant digits stay within 0.45 ulp of f, far enough from the midpoint
// between two doubles for the long double conversion of SQLite before 3.43.
// Below 1e-290 that conversion also divides by an inexact 1e308, so tiny
// values and subnormals are scaled into the normal range by 2^62 and divided
// back, which is exact.
func appendSQLReal(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "1e999"...)
	case math.IsInf(f, -1):
		return append(b, "-1e999"...)
	case math.IsNaN(f):
		// SQLite stores NaN as NULL, so no column holds one.
		return append(b, "NULL"...)
	case f != 0 && math.Abs(f) < tinyReal:
		n := 0
		for math.Abs(f) < tinyReal {
			f = math.Ldexp(f, 62)
			n++
		}
		b = append(b, '(')
		b = appendReal17(b, f)
		for range n {
			b = append(b, "/4611686018427387904.0"...)
		}
		return append(b, ')')
	}
	return appendReal17(b, f)
}

// appendReal17 appends f with 17 significant digits and at least a '.' or an
// exponent, without which SQLite would read an INTEGER.
func appendReal17(b []byte, f float64) []byte {
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', 17, 64)
	if !bytes.ContainsAny(b[start:], ".e") {
		b = append(b, ".0"...)
	}
	return b
}

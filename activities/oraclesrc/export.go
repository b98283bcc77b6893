package oraclesrc

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// FileSink stores the files of a logical backup. The activity backs it with the repository's
// sealed, compressed export parts, so rows stream from Oracle to storage with bounded memory.
type FileSink interface {
	Create(name string) (io.WriteCloser, error)
}

// ExportOptions choose what a logical export reads.
type ExportOptions struct {
	Schema string   // dictionary form (NormalizeIdent)
	Tables []string // empty: every table; else only these (their dependent objects come along)
	// Progress is called after each table with the rows written so far.
	Progress func(table string, rows int64)
}

// Catalog queries: ALL_* views filtered by owner, so a user with the right grants can export
// another schema and the schema owner can export its own.
const (
	catalogTablesSQL = `SELECT table_name FROM all_tables
 WHERE owner = :schema AND dropped = 'NO' AND nested = 'NO' AND secondary = 'N' AND temporary = 'N'
   AND (iot_type IS NULL OR iot_type = 'IOT') AND table_name NOT LIKE 'BULWARK$DP%'
   AND table_name NOT IN (SELECT job_name FROM user_datapump_jobs)
 ORDER BY table_name`
	catalogColumnsSQL = `SELECT column_name, data_type, NVL(data_precision, 0), data_scale, data_length,
       NVL(char_length, 0), NVL(char_used, 'B'), nullable
  FROM all_tab_cols
 WHERE owner = :schema AND table_name = :table_name AND hidden_column = 'NO' AND virtual_column = 'NO'
 ORDER BY column_id`
	catalogIdentitySQL = `SELECT table_name, column_name, generation_type FROM all_tab_identity_cols
 WHERE owner = :schema ORDER BY table_name, column_name`
	catalogObjectsSQL = `SELECT object_type, object_name FROM all_objects
 WHERE owner = :schema AND generated = 'N' AND object_name NOT LIKE 'BIN$%' AND object_name NOT LIKE 'ISEQ$$%'
   AND object_type IN ('SEQUENCE', 'VIEW', 'PACKAGE', 'PACKAGE BODY', 'FUNCTION', 'PROCEDURE',
                       'TYPE', 'TYPE BODY', 'SYNONYM')
 ORDER BY object_type, object_name`
	catalogIndexesSQL = `SELECT i.index_name, i.table_name FROM all_indexes i
 WHERE i.owner = :schema AND i.table_owner = :owner AND i.generated = 'N'
   AND i.index_type NOT IN ('LOB', 'IOT - TOP', 'CLUSTER')
   AND NOT EXISTS (SELECT 1 FROM all_constraints c
                    WHERE c.owner = i.owner AND c.index_name = i.index_name AND c.constraint_type IN ('P', 'U'))
 ORDER BY i.index_name`
	catalogTriggersSQL = `SELECT trigger_name, table_name FROM all_triggers
 WHERE owner = :schema AND base_object_type = 'TABLE' AND table_owner = :owner ORDER BY trigger_name`
	catalogDependenciesSQL = `SELECT type, name, referenced_type, referenced_name FROM all_dependencies
 WHERE owner = :schema AND referenced_owner = :owner AND referenced_type <> 'NON-EXISTENT'
 ORDER BY type, name, referenced_type, referenced_name`
	catalogSequencesSQL = `SELECT sequence_name, TO_CHAR(last_number, 'TM9') FROM all_sequences
 WHERE sequence_owner = :schema`
	catalogGrantsSQL = `SELECT grantee, table_name, privilege, grantable FROM all_tab_privs
 WHERE grantor = :schema AND table_schema = :owner ORDER BY table_name, grantee, privilege`
	catalogLastDDLSQL = `SELECT TO_CHAR(MAX(last_ddl_time), 'YYYY-MM-DD HH24:MI:SS') FROM all_objects WHERE owner = :schema`
	versionSQL        = `SELECT banner FROM v$version WHERE ROWNUM = 1`
)

// dependencyKinds maps ALL_DEPENDENCIES types to plan kinds.
var dependencyKinds = map[string]Kind{
	"TABLE": KindTable, "VIEW": KindView, "SEQUENCE": KindSequence, "PACKAGE": KindPackage,
	"PACKAGE BODY": KindPackageBody, "FUNCTION": KindFunction, "PROCEDURE": KindProcedure,
	"TRIGGER": KindTrigger, "TYPE": KindType, "TYPE BODY": KindTypeBody, "SYNONYM": KindSynonym,
}

// Export writes a consistent logical backup of a schema into sink: schema.json and one row stream
// per table, every table read AS OF one SCN. It returns the schema description it stored.
func Export(ctx context.Context, db *sql.DB, opts ExportOptions, sink FileSink) (*SchemaExport, error) {
	if _, err := QuoteIdent(opts.Schema); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	conn, err := pinSession(ctx, db)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	sch := sql.Named("schema", opts.Schema)
	// go-ora binds by position as well as name: a name used twice in one statement is written
	// twice with different names.
	own := sql.Named("owner", opts.Schema)

	exp := &SchemaExport{Format: SchemaFormat, Schema: opts.Schema}
	_ = conn.QueryRowContext(ctx, versionSQL).Scan(&exp.DBVersion) // informative only
	var ddlBefore, ddlAfter sql.NullString
	if err := conn.QueryRowContext(ctx, catalogLastDDLSQL, sch).Scan(&ddlBefore); err != nil {
		return nil, fmt.Errorf("read last DDL time: %w", err)
	}
	if exp.SCN, err = CurrentSCN(ctx, conn); err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, MetadataTransformSQL()); err != nil {
		return nil, fmt.Errorf("set DBMS_METADATA transforms: %w", err)
	}

	tables, err := queryStrings(ctx, conn, catalogTablesSQL, sch)
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", opts.Schema, err)
	}
	if len(opts.Tables) > 0 {
		for _, t := range opts.Tables {
			if !slices.Contains(tables, t) {
				return nil, fmt.Errorf("table %q is not a table of schema %s (tables: %s)", t, opts.Schema, strings.Join(tables, ", "))
			}
		}
		tables = append([]string(nil), opts.Tables...)
		slices.Sort(tables)
	}
	chosen := func(table string) bool { return slices.Contains(tables, table) }

	identity := map[string][]Identity{}
	if err := eachRow(ctx, conn, catalogIdentitySQL, []any{sch}, func(scan func(...any) error) error {
		var t, c, g string
		if err := scan(&t, &c, &g); err != nil {
			return err
		}
		identity[t] = append(identity[t], Identity{Column: c, Generation: g})
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list identity columns: %w", err)
	}

	// Tables: DDL split into CREATE (tables phase) and ALTER … ADD CONSTRAINT (constraints
	// phase), foreign keys separately; columns from the dictionary.
	for _, t := range tables {
		ddl, err := getDDL(ctx, conn, "TABLE", opts.Schema, t)
		if err != nil {
			return nil, err
		}
		create, rest, err := SplitTableDDL(ddl)
		if err != nil {
			return nil, fmt.Errorf("DDL of table %s: %w", t, err)
		}
		cols, err := tableColumns(ctx, conn, opts.Schema, t)
		if err != nil {
			return nil, err
		}
		specs := make([]ColumnSpec, len(cols))
		for i, c := range cols {
			specs[i] = SpecOf(c)
		}
		exp.Objects = append(exp.Objects, SchemaObject{Kind: KindTable, Name: t, DDL: []string{create},
			Columns: specs, Identity: identity[t]})
		if len(rest) > 0 {
			exp.Objects = append(exp.Objects, SchemaObject{Kind: KindConstraint, Name: t, Table: t, DDL: rest})
		}
		fks, err := getDependentDDL(ctx, conn, "REF_CONSTRAINT", opts.Schema, t)
		if err != nil {
			return nil, err
		}
		if len(fks) > 0 {
			exp.Objects = append(exp.Objects, SchemaObject{Kind: KindRefConstraint, Name: t, Table: t, DDL: fks})
		}
	}

	// Indexes and triggers of the chosen tables.
	type owned struct{ name, table string }
	var indexes, triggers []owned
	for _, q := range []struct {
		sql  string
		into *[]owned
	}{{catalogIndexesSQL, &indexes}, {catalogTriggersSQL, &triggers}} {
		if err := eachRow(ctx, conn, q.sql, []any{sch, own}, func(scan func(...any) error) error {
			var o owned
			if err := scan(&o.name, &o.table); err != nil {
				return err
			}
			if chosen(o.table) {
				*q.into = append(*q.into, o)
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("list indexes and triggers: %w", err)
		}
	}
	for _, ix := range indexes {
		stmts, err := getDDLStatements(ctx, conn, "INDEX", opts.Schema, ix.name)
		if err != nil {
			return nil, err
		}
		exp.Objects = append(exp.Objects, SchemaObject{Kind: KindIndex, Name: ix.name, Table: ix.table, DDL: stmts})
	}
	for _, tr := range triggers {
		stmts, err := getDDLStatements(ctx, conn, "TRIGGER", opts.Schema, tr.name)
		if err != nil {
			return nil, err
		}
		exp.Objects = append(exp.Objects, SchemaObject{Kind: KindTrigger, Name: tr.name, Table: tr.table, DDL: stmts})
	}

	// Sequences, views, code, types and synonyms belong to the schema: a backup of chosen tables
	// still takes them (they are small, and a table's trigger usually needs its sequence).
	lastNumbers := map[string]string{}
	if err := eachRow(ctx, conn, catalogSequencesSQL, []any{sch}, func(scan func(...any) error) error {
		var n, v string
		if err := scan(&n, &v); err != nil {
			return err
		}
		lastNumbers[n] = v
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list sequences: %w", err)
	}
	var others []ObjectRef
	if err := eachRow(ctx, conn, catalogObjectsSQL, []any{sch}, func(scan func(...any) error) error {
		var typ, name string
		if err := scan(&typ, &name); err != nil {
			return err
		}
		others = append(others, ObjectRef{Kind: dependencyKinds[typ], Name: name})
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list schema objects: %w", err)
	}
	for _, o := range others {
		objType := string(o.Kind)
		stmts, err := getDDLStatements(ctx, conn, objType, opts.Schema, o.Name)
		if err != nil {
			return nil, err
		}
		so := SchemaObject{Kind: o.Kind, Name: o.Name, DDL: stmts}
		if o.Kind == KindSequence {
			so.LastNumber = lastNumbers[o.Name]
		}
		exp.Objects = append(exp.Objects, so)
	}

	deps := map[ObjectRef][]ObjectRef{}
	if err := eachRow(ctx, conn, catalogDependenciesSQL, []any{sch, own}, func(scan func(...any) error) error {
		var typ, name, rtyp, rname string
		if err := scan(&typ, &name, &rtyp, &rname); err != nil {
			return err
		}
		k, rk := dependencyKinds[typ], dependencyKinds[rtyp]
		if k != "" && rk != "" {
			r := ObjectRef{Kind: k, Name: name}
			deps[r] = append(deps[r], ObjectRef{Kind: rk, Name: rname})
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list dependencies: %w", err)
	}
	for i := range exp.Objects {
		exp.Objects[i].DependsOn = deps[ObjectRef{exp.Objects[i].Kind, exp.Objects[i].Name}]
	}

	if err := eachRow(ctx, conn, catalogGrantsSQL, []any{sch, own}, func(scan func(...any) error) error {
		var g Grant
		var grantable string
		if err := scan(&g.Grantee, &g.Object, &g.Privilege, &grantable); err != nil {
			return err
		}
		g.Grantable = grantable == "YES"
		exp.Grants = append(exp.Grants, g)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	if err := conn.QueryRowContext(ctx, catalogLastDDLSQL, sch).Scan(&ddlAfter); err != nil {
		return nil, fmt.Errorf("read last DDL time: %w", err)
	}
	exp.DDLStable = ddlBefore == ddlAfter

	// Rows, table by table, at the SCN.
	for i := range exp.Objects {
		o := &exp.Objects[i]
		if o.Kind != KindTable {
			continue
		}
		o.RowsFile = RowsFileName(i, o.Name)
		rows, digest, err := exportTable(ctx, conn, opts.Schema, exp.SCN, *o, sink)
		if err != nil {
			return nil, err
		}
		o.Rows, o.Digest = rows, digest
		if opts.Progress != nil {
			opts.Progress(o.Name, rows)
		}
	}

	body, err := json.MarshalIndent(exp, "", "  ")
	if err != nil {
		return nil, err
	}
	w, err := sink.Create(SchemaFile)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(body); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("store %s: %w", SchemaFile, err)
	}
	return exp, nil
}

// exportTable streams one table's rows at scn into its row stream and returns the count and
// digest.
func exportTable(ctx context.Context, conn *sql.Conn, schema, scn string, o SchemaObject, sink FileSink) (int64, string, error) {
	cols, err := o.ColumnList()
	if err != nil {
		return 0, "", err
	}
	query, err := SelectAsOfSCN(schema, o.Name, cols)
	if err != nil {
		return 0, "", err
	}
	rows, err := conn.QueryContext(ctx, query, sql.Named("scn", scn))
	if err != nil {
		if code := oraCode(err); code == 1555 || code == 1466 || code == 8181 {
			return 0, "", fmt.Errorf("read table %s as of SCN %s: %w (undo no longer holds the SCN, or the table changed shape after it: take the backup again)", o.Name, scn, err)
		}
		return 0, "", fmt.Errorf("read table %s as of SCN %s: %w", o.Name, scn, err)
	}
	defer rows.Close()
	w, err := sink.Create(o.RowsFile)
	if err != nil {
		return 0, "", err
	}
	n, digest, err := streamRows(rows, cols, w)
	if err != nil {
		w.Close()
		return 0, "", fmt.Errorf("table %s: %w", o.Name, err)
	}
	if err := w.Close(); err != nil {
		return 0, "", fmt.Errorf("store rows of %s: %w", o.Name, err)
	}
	return n, digest, nil
}

// scanner is the part of *sql.Rows streamRows uses; tests drive it with canned rows.
type scanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// streamRows encodes every row of rows (read with SelectAsOfSCN's select list for cols) into w
// and digests it.
func streamRows(rows scanner, cols []Column, w io.Writer) (int64, string, error) {
	enc, err := NewEncoder(w, cols)
	if err != nil {
		return 0, "", err
	}
	digest := NewTableDigest(cols)
	dest, parts := scanDestinations(cols)
	row := make([]any, len(cols))
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return 0, "", err
		}
		k := 0
		for i, c := range cols {
			width := SelectWidth(c)
			vals := make([]any, width)
			for j := 0; j < width; j++ {
				vals[j] = parts[k+j]()
			}
			k += width
			v, err := ValueFromScan(c, vals)
			if err != nil {
				return 0, "", err
			}
			row[i] = v
		}
		if err := enc.WriteRow(row); err != nil {
			return 0, "", err
		}
		if err := digest.Add(row); err != nil {
			return 0, "", err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, "", err
	}
	if err := enc.Close(); err != nil {
		return 0, "", err
	}
	return int64(enc.Rows()), digest.String(), nil
}

// scanDestinations returns typed scan targets for the select list of cols and, for each, a
// function giving the scanned value as ValueFromScan takes it (nil for NULL). Typed targets
// keep NULL apart from empty (a *[]byte is nil only for NULL).
func scanDestinations(cols []Column) ([]any, []func() any) {
	var dest []any
	var get []func() any
	for _, c := range cols {
		for j := 0; j < SelectWidth(c); j++ {
			switch c.Type {
			case TypeBinaryFloat:
				// go-ora yields float32; database/sql converts between float kinds through
				// decimal text, so a float64 target would get 0.1 for float32(0.1), which is not
				// a BINARY_FLOAT value. A float32 target gets the exact value back.
				var f sql.Null[float32]
				dest = append(dest, &f)
				get = append(get, func() any {
					if !f.Valid {
						return nil
					}
					return f.V
				})
			case TypeBinaryDouble:
				var f sql.NullFloat64
				dest = append(dest, &f)
				get = append(get, func() any {
					if !f.Valid {
						return nil
					}
					return f.Float64
				})
			case TypeRaw, TypeBLOB:
				var b []byte
				dest = append(dest, &b)
				get = append(get, func() any {
					if b == nil {
						return nil
					}
					return b
				})
			default:
				var s sql.NullString
				dest = append(dest, &s)
				get = append(get, func() any {
					if !s.Valid {
						return nil
					}
					return s.String
				})
			}
		}
	}
	return dest, get
}

func tableColumns(ctx context.Context, q queryer, schema, table string) ([]Column, error) {
	var cols []Column
	err := eachRow(ctx, q, catalogColumnsSQL, []any{sql.Named("schema", schema), sql.Named("table_name", table)}, func(scan func(...any) error) error {
		var name, dataType, charUsed, nullable string
		var precision, dataLength, charLength int
		var scale sql.NullInt64
		if err := scan(&name, &dataType, &precision, &scale, &dataLength, &charLength, &charUsed, &nullable); err != nil {
			return err
		}
		c, err := ColumnFromDictionary(name, dataType, precision, scale, dataLength, charLength, charUsed, nullable)
		if err != nil {
			return fmt.Errorf("table %s: %w", table, err)
		}
		cols = append(cols, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("table %s.%s has no columns Bulwark can read", schema, table)
	}
	return cols, nil
}

// ColumnFromDictionary builds a Column from one ALL_TAB_COLS row.
func ColumnFromDictionary(name, dataType string, precision int, scale sql.NullInt64, dataLength, charLength int, charUsed, nullable string) (Column, error) {
	t, err := ParseType(dataType)
	if err != nil {
		return Column{}, fmt.Errorf("column %s: %w", name, err)
	}
	c := Column{Name: name, Type: t, Precision: precision, Scale: int(scale.Int64), HasScale: scale.Valid,
		Length: dataLength, Nullable: nullable == "Y"}
	if charUsed == "C" {
		c.CharSemantics, c.Length = true, charLength
	}
	return c, nil
}

func getDDL(ctx context.Context, q queryer, objType, schema, name string) (string, error) {
	st, err := GetDDL(objType, schema, name)
	if err != nil {
		return "", err
	}
	ddl, err := queryCLOB(ctx, q, st)
	if err != nil {
		return "", fmt.Errorf("DDL of %s %s: %w", objType, name, err)
	}
	return ddl, nil
}

func getDDLStatements(ctx context.Context, q queryer, objType, schema, name string) ([]string, error) {
	ddl, err := getDDL(ctx, q, objType, schema, name)
	if err != nil {
		return nil, err
	}
	stmts, err := SplitDDL(ddl)
	if err != nil {
		return nil, fmt.Errorf("DDL of %s %s: %w", objType, name, err)
	}
	return stmts, nil
}

// getDependentDDL returns nil when there is nothing (ORA-31608).
func getDependentDDL(ctx context.Context, q queryer, depType, schema, table string) ([]string, error) {
	st, err := GetDependentDDL(depType, schema, table)
	if err != nil {
		return nil, err
	}
	ddl, err := queryCLOB(ctx, q, st)
	if oraCode(err) == 31608 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s DDL of table %s: %w", depType, table, err)
	}
	stmts, err := SplitDDL(ddl)
	if err != nil {
		return nil, fmt.Errorf("%s DDL of table %s: %w", depType, table, err)
	}
	return stmts, nil
}

func queryStrings(ctx context.Context, q queryer, query string, args ...any) ([]string, error) {
	var out []string
	err := eachRow(ctx, q, query, args, func(scan func(...any) error) error {
		var s string
		if err := scan(&s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

func eachRow(ctx context.Context, q queryer, query string, args []any, f func(scan func(...any) error) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows.Scan); err != nil {
			return err
		}
	}
	return errors.Join(rows.Err(), rows.Close())
}

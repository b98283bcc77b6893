package oraclesrc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	go_ora "github.com/sijms/go-ora/v2"
)

// FileSource opens the files of a logical backup (the activity reads them from the repository,
// checking each part's seal).
type FileSource interface {
	Open(name string) (io.ReadCloser, error)
}

// Table restore modes.
const (
	ModeReplace = "replace"  // drop the table (after an emergency copy) and recreate it
	ModeAppend  = "append"   // insert the rows into the existing table
	ModeNewName = "new-name" // create the table under another name
	ModeCreate  = "create"   // whole schema: every object must be absent
)

// ErrRestoreRefused is a restore that would overwrite something without being asked to.
var ErrRestoreRefused = errors.New("restore refused")

// RestoreOptions choose what a logical restore does.
type RestoreOptions struct {
	// TargetSchema receives the objects ("" = the schema of the backup).
	TargetSchema string
	// Tables restores only these tables; empty restores the whole schema.
	Tables []string
	// Mode: for the whole schema "create" (default; refuses if objects exist) or "replace"
	// (drops the existing ones first); for tables "replace" (default), "append" or "new-name".
	Mode    string
	NewName string // the new name, ModeNewName with one table
	// Done lists tables already loaded by an earlier attempt with the rows committed; they are
	// skipped (resume after a worker dies).
	Done map[string]int64
	// Progress is called after each committed batch with the rows committed for the table.
	Progress func(table string, rows int64)
	// Batch bounds array-bind batches.
	Batch BatchLimits
	// MaxLOB bounds a LOB value held in memory for binding.
	MaxLOB int64
}

// RestoreReport says what a restore did and what it found afterwards.
type RestoreReport struct {
	Schema   string        `json:"schema"`
	Tables   []TableResult `json:"tables"`
	Objects  int           `json:"objects"` // DDL statements run
	Invalid  []string      `json:"invalid,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
}

// TableResult is one table's outcome, checked against the backup.
type TableResult struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Rows     int64  `json:"rows"`
	Digest   string `json:"digest"`
	Verified bool   `json:"verified"`
	Problem  string `json:"problem,omitempty"`
}

// PlanTableRestore checks options against the backup and returns the tables to restore.
func PlanTableRestore(exp *SchemaExport, opts RestoreOptions) ([]SchemaObject, error) {
	var out []SchemaObject
	if len(opts.Tables) == 0 {
		switch opts.Mode {
		case "", ModeCreate, ModeReplace:
		default:
			return nil, fmt.Errorf("%w: mode %q is for single tables; a schema restore is create or replace", ErrRestoreRefused, opts.Mode)
		}
		return exp.Tables(), nil
	}
	switch opts.Mode {
	case "", ModeReplace, ModeAppend:
	case ModeNewName:
		if len(opts.Tables) != 1 {
			return nil, fmt.Errorf("%w: a new name needs exactly one table, not %d", ErrRestoreRefused, len(opts.Tables))
		}
		if _, err := QuoteIdent(opts.NewName); err != nil {
			return nil, fmt.Errorf("new table name: %w", err)
		}
	default:
		return nil, fmt.Errorf("%w: table restore mode %q is not replace, append or new-name", ErrRestoreRefused, opts.Mode)
	}
	for _, t := range opts.Tables {
		o, ok := exp.Find(KindTable, t)
		if !ok {
			var names []string
			for _, x := range exp.Tables() {
				names = append(names, x.Name)
			}
			return nil, fmt.Errorf("%w: the backup has no table %q (it has %s)", ErrRestoreRefused, t, strings.Join(names, ", "))
		}
		out = append(out, o)
	}
	return out, nil
}

// Restore replays a logical backup into a live schema in dependency order and checks every
// table it loaded by row count and digest.
func Restore(ctx context.Context, db *sql.DB, exp *SchemaExport, src FileSource, opts RestoreOptions) (*RestoreReport, error) {
	tables, err := PlanTableRestore(exp, opts)
	if err != nil {
		return nil, err
	}
	target := opts.TargetSchema
	if target == "" {
		target = exp.Schema
	}
	if _, err := QuoteIdent(target); err != nil {
		return nil, fmt.Errorf("target schema: %w", err)
	}
	conn, err := pinSession(ctx, db)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cs, _ := CurrentSchemaSQL(target)
	if _, err := conn.ExecContext(ctx, cs); err != nil {
		return nil, fmt.Errorf("switch to schema %s: %w", target, err)
	}
	rep := &RestoreReport{Schema: target}
	exec := func(stmt string) error {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%w\n  in: %s", err, truncate(stmt, 300))
		}
		rep.Objects++
		return nil
	}
	existing, err := existingTables(ctx, conn, target)
	if err != nil {
		return nil, err
	}

	if len(opts.Tables) > 0 {
		return rep, restoreTables(ctx, conn, exp, src, opts, tables, target, existing, rep, exec)
	}

	// Whole schema.
	var clash []string
	for _, t := range tables {
		if existing[t.Name] {
			clash = append(clash, t.Name)
		}
	}
	if len(clash) > 0 && opts.Mode != ModeReplace {
		return nil, fmt.Errorf("%w: schema %s already has tables %s; restore with mode replace (an emergency copy is taken first) or into another schema", ErrRestoreRefused, target, strings.Join(clash, ", "))
	}
	if opts.Mode == ModeReplace {
		if err := dropSchemaObjects(ctx, conn, exp, target, existing, exec); err != nil {
			return nil, err
		}
	}
	steps, err := PlanRestore(exp.PlanObjects())
	if err != nil {
		return nil, err
	}
	for _, st := range steps {
		switch st.Phase {
		case PhaseData:
			o, _ := exp.Find(KindTable, st.Object.Name)
			res, err := loadTable(ctx, conn, src, target, o, o.Name, opts)
			if err != nil {
				return nil, err
			}
			rep.Tables = append(rep.Tables, res)
		case PhaseCompile:
			inv, err := compileSchema(ctx, conn, target)
			if err != nil {
				return nil, err
			}
			rep.Invalid = inv
		case PhaseSequenceReset:
			o, _ := exp.Find(KindSequence, st.Object.Name)
			if err := resetSequence(ctx, conn, target, o, exec); err != nil {
				rep.Warnings = append(rep.Warnings, err.Error())
			}
		default:
			o, ok := exp.Find(st.Object.Kind, st.Object.Name)
			if !ok {
				continue
			}
			for _, stmt := range o.DDL {
				if err := exec(stmt); err != nil {
					if st.Phase >= PhaseCodeSpecs && st.Phase != PhaseIndexes && st.Phase != PhaseRefConstraints {
						// Code that fails to compile is created INVALID (ORA-24344): reported after
						// COMPILE_SCHEMA, not a failure here.
						if oraCode(err) == 24344 {
							continue
						}
					}
					return nil, fmt.Errorf("restore %s: %w", st.Object, err)
				}
			}
		}
	}
	for _, o := range tables {
		for _, id := range o.Identity {
			if s, err := IdentityRestoreSQL(target, o.Name, id); err == nil {
				if err := exec(s); err != nil {
					rep.Warnings = append(rep.Warnings, err.Error())
				}
			}
		}
	}
	for _, g := range exp.Grants {
		s, err := GrantSQL(target, g)
		if err == nil {
			err = exec(s)
		}
		if err != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("grant %s on %s to %s: %v", g.Privilege, g.Object, g.Grantee, err))
		}
	}
	return rep, verifyTables(ctx, conn, target, rep)
}

func restoreTables(ctx context.Context, conn *sql.Conn, exp *SchemaExport, src FileSource, opts RestoreOptions, tables []SchemaObject, target string, existing map[string]bool, rep *RestoreReport, exec func(string) error) error {
	// loadTable switches ALWAYS identity columns to BY DEFAULT: every mode puts them back and
	// starts them past the loaded values.
	restoreIdentity := func(o SchemaObject, name string) {
		for _, id := range o.Identity {
			if s, err := IdentityRestoreSQL(target, name, id); err == nil {
				if err := exec(s); err != nil {
					rep.Warnings = append(rep.Warnings, err.Error())
				}
			}
		}
	}
	for _, o := range tables {
		name := o.Name
		switch opts.Mode {
		case ModeAppend:
			if !existing[name] {
				return fmt.Errorf("%w: table %s does not exist in %s to append to", ErrRestoreRefused, name, target)
			}
			before, err := countRows(ctx, conn, target, name)
			if err != nil {
				return err
			}
			res, err := loadTable(ctx, conn, src, target, o, name, opts)
			if err != nil {
				return err
			}
			restoreIdentity(o, name)
			after, err := countRows(ctx, conn, target, name)
			if err != nil {
				return err
			}
			res.Verified = after-before == o.Rows
			if !res.Verified {
				res.Problem = fmt.Sprintf("%d rows before, %d after: %d appended, the backup holds %d", before, after, after-before, o.Rows)
			}
			rep.Tables = append(rep.Tables, res)
			continue
		case ModeNewName:
			name = opts.NewName
			if existing[name] {
				return fmt.Errorf("%w: table %s already exists in %s", ErrRestoreRefused, name, target)
			}
			create, err := RenameCreateTable(o.DDL[0], name)
			if err != nil {
				return fmt.Errorf("table %s: %w", o.Name, err)
			}
			if err := exec(create); err != nil {
				return err
			}
		default: // replace
			if existing[name] {
				drop, _ := DropTableSQL(target, name)
				if err := exec(drop); err != nil {
					return err
				}
			}
			if err := execAll(o.DDL, exec); err != nil {
				return err
			}
			if c, ok := exp.Find(KindConstraint, name); ok {
				if err := execAll(c.DDL, exec); err != nil {
					return err
				}
			}
		}
		res, err := loadTable(ctx, conn, src, target, o, name, opts)
		if err != nil {
			return err
		}
		rep.Tables = append(rep.Tables, res)
		restoreIdentity(o, name)
		if opts.Mode == ModeNewName {
			continue
		}
		// Indexes, foreign keys and triggers of a replaced table; a foreign key whose parent rows
		// are gone is a warning, the table's data is still what the backup held.
		for _, ob := range exp.Objects {
			if ob.Table != name || ob.Kind == KindConstraint {
				continue
			}
			for _, stmt := range ob.DDL {
				if err := exec(stmt); err != nil {
					rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s %s: %v", ob.Kind, ob.Name, err))
				}
			}
		}
		for _, g := range exp.Grants {
			if g.Object != name {
				continue
			}
			s, err := GrantSQL(target, g)
			if err == nil {
				err = exec(s)
			}
			if err != nil {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("grant %s on %s to %s: %v", g.Privilege, g.Object, g.Grantee, err))
			}
		}
	}
	return verifyTables(ctx, conn, target, rep)
}

func execAll(stmts []string, exec func(string) error) error {
	for _, s := range stmts {
		if err := exec(s); err != nil {
			return err
		}
	}
	return nil
}

// loadTable inserts a table's rows from its row stream in array-bound batches, committing each.
func loadTable(ctx context.Context, conn *sql.Conn, src FileSource, schema string, o SchemaObject, name string, opts RestoreOptions) (TableResult, error) {
	res := TableResult{Name: o.Name, Target: name}
	cols, err := o.ColumnList()
	if err != nil {
		return res, err
	}
	for _, id := range o.Identity {
		if id.Generation == "ALWAYS" {
			s, err := IdentityByDefaultSQL(schema, name, id.Column)
			if err != nil {
				return res, err
			}
			if _, err := conn.ExecContext(ctx, s); err != nil {
				return res, fmt.Errorf("table %s: allow explicit identity values: %w", name, err)
			}
		}
	}
	r, err := src.Open(o.RowsFile)
	if err != nil {
		return res, fmt.Errorf("open rows of %s: %w", o.Name, err)
	}
	defer r.Close()
	dec, err := NewDecoder(r)
	if err != nil {
		return res, fmt.Errorf("rows of %s: %w", o.Name, err)
	}
	if got := dec.Columns(); !sameColumns(got, cols) {
		return res, fmt.Errorf("rows of %s: the row stream's columns differ from schema.json's", o.Name)
	}
	batcher, err := NewBatcher(cols, opts.Batch)
	if err != nil {
		return res, err
	}
	insert, err := InsertSQL(schema, name, batcher.Columns())
	if err != nil {
		return res, err
	}
	skip := opts.Done[o.Name]
	maxLOB := opts.MaxLOB
	if maxLOB <= 0 {
		maxLOB = 256 << 20
	}
	committed := skip
	var read int64
	run := func(b *Batch) error {
		if b == nil {
			return nil
		}
		if _, err := conn.ExecContext(ctx, insert, lobArgs(batcher.Columns(), b.Args)...); err != nil {
			return fmt.Errorf("insert into %s (rows %d-%d): %w", name, committed+1, committed+int64(b.Rows), err)
		}
		committed += int64(b.Rows)
		if opts.Progress != nil {
			opts.Progress(o.Name, committed)
		}
		return nil
	}
	for {
		err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, fmt.Errorf("rows of %s: %w", o.Name, err)
		}
		row, err := dec.Row(maxLOB)
		if err != nil {
			return res, fmt.Errorf("rows of %s: %w", o.Name, err)
		}
		read++
		if read <= skip {
			continue
		}
		b, err := batcher.Add(row)
		if err != nil {
			return res, fmt.Errorf("rows of %s, row %d: %w", o.Name, read, err)
		}
		if err := run(b); err != nil {
			return res, err
		}
	}
	if err := run(batcher.Flush()); err != nil {
		return res, err
	}
	res.Rows = committed
	res.Digest = o.Digest
	return res, nil
}

// lobArgs wraps LOB columns' slices in go-ora's LOB types so that values over 32 KB bind.
func lobArgs(cols []Column, args []any) []any {
	out := make([]any, 0, len(args))
	k := 0
	for _, c := range cols {
		width := 1
		if c.Type == TypeTimestampTZ {
			width = 2
		}
		for j := 0; j < width; j++ {
			a := args[k]
			k++
			switch c.Type {
			case TypeCLOB, TypeNCLOB:
				if s, ok := a.([]sql.NullString); ok {
					if c.Type == TypeCLOB {
						v := make([]go_ora.Clob, len(s))
						for i, x := range s {
							v[i] = go_ora.Clob{String: x.String, Valid: x.Valid}
						}
						a = v
					} else {
						v := make([]go_ora.NClob, len(s))
						for i, x := range s {
							v[i] = go_ora.NClob{String: x.String, Valid: x.Valid}
						}
						a = v
					}
				}
			case TypeBLOB:
				if b, ok := a.([][]byte); ok {
					v := make([]go_ora.Blob, len(b))
					for i, x := range b {
						v[i] = go_ora.Blob{Data: x}
					}
					a = v
				}
			}
			out = append(out, a)
		}
	}
	return out
}

func sameColumns(a, b []Column) bool {
	return slices.EqualFunc(a, b, func(x, y Column) bool { return x.Name == y.Name && x.Type == y.Type })
}

func existingTables(ctx context.Context, conn *sql.Conn, schema string) (map[string]bool, error) {
	names, err := queryStrings(ctx, conn, `SELECT table_name FROM all_tables WHERE owner = :schema`, sql.Named("schema", schema))
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", schema, err)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// dropSchemaObjects drops what a whole-schema replace recreates: tables (with their constraints,
// indexes and triggers) and every other object of the backup that exists.
func dropSchemaObjects(ctx context.Context, conn *sql.Conn, exp *SchemaExport, schema string, existing map[string]bool, exec func(string) error) error {
	present := map[ObjectRef]bool{}
	if err := eachRow(ctx, conn, `SELECT object_type, object_name FROM all_objects WHERE owner = :schema`, []any{sql.Named("schema", schema)}, func(scan func(...any) error) error {
		var t, n string
		if err := scan(&t, &n); err != nil {
			return err
		}
		present[ObjectRef{Kind(t), n}] = true
		return nil
	}); err != nil {
		return err
	}
	for _, o := range exp.Objects {
		switch o.Kind {
		case KindTable:
			if existing[o.Name] {
				s, _ := DropTableSQL(schema, o.Name)
				if err := exec(s); err != nil {
					return err
				}
			}
		case KindSequence, KindView, KindPackage, KindFunction, KindProcedure, KindType, KindSynonym:
			if !present[ObjectRef{o.Kind, o.Name}] {
				continue
			}
			qn, err := QualifiedName(schema, o.Name)
			if err != nil {
				return err
			}
			s := "DROP " + string(o.Kind) + " " + qn
			if o.Kind == KindType {
				s += " FORCE"
			}
			if err := exec(s); err != nil {
				return err
			}
		}
	}
	return nil
}

func resetSequence(ctx context.Context, conn *sql.Conn, schema string, o SchemaObject, exec func(string) error) error {
	if o.LastNumber == "" {
		return nil
	}
	var next int64
	if _, err := fmt.Sscan(o.LastNumber, &next); err != nil {
		return fmt.Errorf("sequence %s: last number %q: %w", o.Name, o.LastNumber, err)
	}
	s, err := RestartSequence(schema, o.Name, next)
	if err != nil {
		return err
	}
	if err := exec(s); err != nil {
		return fmt.Errorf("move sequence %s to %d: %w", o.Name, next, err)
	}
	return nil
}

func compileSchema(ctx context.Context, conn *sql.Conn, schema string) ([]string, error) {
	if _, err := conn.ExecContext(ctx, CompileSchema, sql.Named("schema", schema)); err != nil {
		return nil, fmt.Errorf("compile schema %s: %w", schema, err)
	}
	var out []string
	err := eachRow(ctx, conn, InvalidObjectsSQL, []any{sql.Named("schema", schema)}, func(scan func(...any) error) error {
		var t, n string
		var e sql.NullString
		if err := scan(&t, &n, &e); err != nil {
			return err
		}
		out = append(out, strings.TrimSpace(t+" "+n+": "+e.String))
		return nil
	})
	return out, err
}

func countRows(ctx context.Context, conn *sql.Conn, schema, table string) (int64, error) {
	qn, err := QualifiedName(schema, table)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+qn).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows of %s: %w", table, err)
	}
	return n, nil
}

// verifyTables reads back every restored table (except appends, checked by count) and compares
// its row count and digest with the backup's.
func verifyTables(ctx context.Context, conn *sql.Conn, schema string, rep *RestoreReport) error {
	var bad []string
	for i := range rep.Tables {
		t := &rep.Tables[i]
		if t.Problem != "" || (t.Verified && t.Digest == "") {
			if t.Problem != "" {
				bad = append(bad, t.Target+": "+t.Problem)
			}
			continue
		}
		if t.Verified {
			continue
		}
		cols, err := tableColumns(ctx, conn, schema, t.Target)
		if err != nil {
			return err
		}
		n, digest, err := digestTable(ctx, conn, schema, t.Target, cols)
		if err != nil {
			return err
		}
		if n != t.Rows || digest != t.Digest {
			t.Problem = fmt.Sprintf("read back %d rows with digest %s, the backup holds %d with %s", n, digest, t.Rows, t.Digest)
			bad = append(bad, t.Target+": "+t.Problem)
			continue
		}
		t.Verified = true
	}
	if len(bad) > 0 {
		return fmt.Errorf("restored tables differ from the backup: %s", strings.Join(bad, "; "))
	}
	return nil
}

// DigestTable reads a live table and returns its row count and digest, as a backup records them.
func digestTable(ctx context.Context, conn *sql.Conn, schema, table string, cols []Column) (int64, string, error) {
	query, err := SelectAll(schema, table, cols)
	if err != nil {
		return 0, "", err
	}
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return 0, "", fmt.Errorf("read back %s: %w", table, err)
	}
	defer rows.Close()
	n, d, err := streamRows(rows, cols, io.Discard)
	if err != nil {
		return 0, "", fmt.Errorf("read back %s: %w", table, err)
	}
	return n, d, nil
}

// SelectAll is SelectAsOfSCN without the SCN: the current contents, for checking a restore.
func SelectAll(schema, table string, cols []Column) (string, error) {
	q, err := SelectAsOfSCN(schema, table, cols)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(q, " AS OF SCN :scn"), nil
}

// SchemaState is what AssessSchema finds in a live schema.
type SchemaState struct {
	Tables     int
	Rows       int64
	Invalid    []string // "TYPE NAME: first error"
	Unreadable []string // tables whose COUNT(*) failed, with the error
}

// AssessSchema counts a schema's tables and rows and lists its invalid
// objects. An error means the database could not be asked at all.
func AssessSchema(ctx context.Context, db *sql.DB, schema string) (SchemaState, error) {
	var st SchemaState
	conn, err := pinSession(ctx, db)
	if err != nil {
		return st, err
	}
	defer conn.Close()
	tables, err := queryStrings(ctx, conn, `SELECT table_name FROM all_tables WHERE owner = :schema AND dropped = 'NO' AND temporary = 'N' ORDER BY table_name`, sql.Named("schema", schema))
	if err != nil {
		return st, err
	}
	st.Tables = len(tables)
	for _, t := range tables {
		n, err := countRows(ctx, conn, schema, t)
		if err != nil {
			st.Unreadable = append(st.Unreadable, fmt.Sprintf("%s: %v", t, err))
			continue
		}
		st.Rows += n
	}
	err = eachRow(ctx, conn, InvalidObjectsSQL, []any{sql.Named("schema", schema)}, func(scan func(...any) error) error {
		var t, n string
		var e sql.NullString
		if err := scan(&t, &n, &e); err != nil {
			return err
		}
		st.Invalid = append(st.Invalid, strings.TrimSpace(t+" "+n+": "+e.String))
		return nil
	})
	return st, err
}

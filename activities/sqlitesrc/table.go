package sqlitesrc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Table restore modes.
const (
	// TableReplace drops the live table and recreates it, with its indexes
	// and triggers, from the backup.
	TableReplace = "replace"
	// TableAppend inserts the backup's rows whose primary key (or rowid) is
	// not in the live table: the way back from deleted rows. Rows present in
	// both are left as they are live.
	TableAppend = "append"
	// TableNewName creates <table>_restored with the backup's rows and
	// indexes next to the live table. Triggers are not copied: they would
	// act on the live tables.
	TableNewName = "new-name"
)

// ErrTableRestore marks a table restore refused by the database's own
// rules (schema mismatch, foreign keys, constraints); nothing was changed.
var ErrTableRestore = errors.New("table restore refused")

// TableRestoreOptions describes restoring one table from a staged image into
// a live database.
type TableRestoreOptions struct {
	Image string // the backup's image, staged in a scratch file
	Live  string // the live database
	Table string
	Mode  string
	// EmergencyCopy is where a consistent copy of the live database is made
	// before it is changed.
	EmergencyCopy string
}

// TableRestoreResult says what a table restore did.
type TableRestoreResult struct {
	Table         string `json:"table"`
	Into          string `json:"into"` // the table written: Table, or Table_restored
	Mode          string `json:"mode"`
	RowsInBackup  int64  `json:"rows_in_backup"`
	RowsWritten   int64  `json:"rows_written"`
	RowsSkipped   int64  `json:"rows_skipped,omitempty"` // append: already present
	Indexes       int    `json:"indexes"`
	Triggers      int    `json:"triggers"`
	EmergencyCopy string `json:"emergency_copy"`
}

// RestoreTable restores one table from a staged backup image into a live
// database in one transaction. Readers of the live database see the table
// before or after, never in between (WAL mode: they are not blocked). A
// consistent copy of the live database is made first. Foreign key
// violations that the restore would introduce are reported, and the
// transaction is rolled back.
func RestoreTable(ctx context.Context, opts TableRestoreOptions) (TableRestoreResult, error) {
	res := TableRestoreResult{Table: opts.Table, Mode: opts.Mode, Into: opts.Table}
	switch opts.Mode {
	case TableReplace, TableAppend:
	case TableNewName:
		res.Into = opts.Table + "_restored"
	default:
		return res, fmt.Errorf("%w: mode %q is not one of replace, append, new-name", ErrTableRestore, opts.Mode)
	}
	if err := CheckHeader(opts.Live); err != nil {
		return res, err
	}
	db, err := sql.Open("sqlite", dsn(opts.Live, "rw"))
	if err != nil {
		return res, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return res, err
	}
	defer conn.Close()

	// The emergency copy: VACUUM INTO reads one consistent snapshot and
	// works while the application keeps the database open.
	if _, err := os.Stat(opts.EmergencyCopy); err == nil {
		return res, targetErrorf("emergency copy %s already exists; refusing to overwrite it", opts.EmergencyCopy)
	}
	if _, err := conn.ExecContext(ctx, "VACUUM INTO ?", opts.EmergencyCopy); err != nil {
		return res, targetError("make emergency copy", opts.EmergencyCopy, err)
	}
	res.EmergencyCopy = opts.EmergencyCopy

	// Foreign keys are checked explicitly before commit instead of enforced
	// statement by statement: a replace drops and recreates the table, which
	// enforcement would refuse half-way with a less useful message.
	if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return res, err
	}
	if _, err := conn.ExecContext(ctx, "ATTACH DATABASE ? AS backup", "file:"+opts.Image+"?mode=ro&immutable=1"); err != nil {
		return res, fmt.Errorf("attach staged backup: %w", err)
	}
	defer conn.ExecContext(context.Background(), "DETACH DATABASE backup")

	objs, err := schemaObjects(ctx, conn, "backup", opts.Table)
	if err != nil {
		return res, err
	}
	if objs.table == "" {
		return res, fmt.Errorf("%w: the backup has no table %q", ErrTableRestore, opts.Table)
	}
	before, err := fkViolations(ctx, conn)
	if err != nil {
		return res, err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return res, fmt.Errorf("begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	q := QuoteIdent(opts.Table)
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM backup."+q).Scan(&res.RowsInBackup); err != nil {
		return res, err
	}
	live, err := schemaObjects(ctx, conn, "main", opts.Table)
	if err != nil {
		return res, err
	}
	switch opts.Mode {
	case TableReplace:
		err = replaceTable(ctx, conn, opts.Table, objs, live, &res)
	case TableAppend:
		err = appendRows(ctx, conn, opts.Table, live, &res)
	case TableNewName:
		err = copyUnderNewName(ctx, conn, opts.Table, res.Into, objs, &res)
	}
	if err != nil {
		return res, err
	}
	after, err := fkViolations(ctx, conn)
	if err != nil {
		return res, err
	}
	if added := newViolations(before, after); len(added) > 0 {
		return res, fmt.Errorf("%w: restoring %s would break foreign keys (%s); nothing was changed", ErrTableRestore, opts.Table, strings.Join(added, "; "))
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	committed = true
	return res, nil
}

// tableObjects is a table's schema: its CREATE TABLE and the indexes and
// triggers defined on it.
type tableObjects struct {
	table    string
	columns  []string
	indexes  []string // CREATE INDEX statements (automatic indexes excluded)
	triggers []string
	rowid    bool
}

func schemaObjects(ctx context.Context, conn *sql.Conn, schema, table string) (tableObjects, error) {
	var o tableObjects
	rows, err := conn.QueryContext(ctx, "SELECT type, coalesce(sql, '') FROM "+schema+".sqlite_schema WHERE tbl_name = ? AND type IN ('table', 'index', 'trigger') ORDER BY rowid", table)
	if err != nil {
		return o, fmt.Errorf("read %s schema of %s: %w", schema, table, err)
	}
	for rows.Next() {
		var typ, text string
		if err := rows.Scan(&typ, &text); err != nil {
			rows.Close()
			return o, err
		}
		switch {
		case typ == "table":
			o.table = text
		case typ == "index" && text != "":
			o.indexes = append(o.indexes, text)
		case typ == "trigger":
			o.triggers = append(o.triggers, text)
		}
	}
	rows.Close()
	if o.table == "" {
		return o, rows.Err()
	}
	cols, err := conn.QueryContext(ctx, "SELECT name, hidden FROM pragma_table_xinfo(?, ?)", table, schema)
	if err != nil {
		return o, err
	}
	defer cols.Close()
	for cols.Next() {
		var name string
		var hidden int
		if err := cols.Scan(&name, &hidden); err != nil {
			return o, err
		}
		if hidden == 0 { // generated columns (2, 3) cannot be inserted
			o.columns = append(o.columns, name)
		}
	}
	o.rowid = !strings.Contains(strings.ToUpper(o.table), "WITHOUT ROWID")
	return o, cols.Err()
}

func columnList(cols []string, rowid bool) string {
	q := make([]string, 0, len(cols)+1)
	if rowid {
		q = append(q, "rowid")
	}
	for _, c := range cols {
		q = append(q, QuoteIdent(c))
	}
	return strings.Join(q, ", ")
}

func replaceTable(ctx context.Context, conn *sql.Conn, table string, b, live tableObjects, res *TableRestoreResult) error {
	q := QuoteIdent(table)
	if live.table != "" {
		if _, err := conn.ExecContext(ctx, "DROP TABLE main."+q); err != nil {
			return fmt.Errorf("%w: drop live %s: %v", ErrTableRestore, table, err)
		}
	}
	if _, err := conn.ExecContext(ctx, b.table); err != nil {
		return fmt.Errorf("%w: recreate %s: %v", ErrTableRestore, table, err)
	}
	cols := columnList(b.columns, b.rowid && !hasColumn(b.columns, "rowid"))
	r, err := conn.ExecContext(ctx, "INSERT INTO main."+q+"("+cols+") SELECT "+cols+" FROM backup."+q)
	if err != nil {
		return fmt.Errorf("%w: copy rows of %s: %v", ErrTableRestore, table, err)
	}
	res.RowsWritten, _ = r.RowsAffected()
	for _, stmt := range b.indexes {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%w: recreate index: %v", ErrTableRestore, err)
		}
	}
	for _, stmt := range b.triggers {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%w: recreate trigger: %v", ErrTableRestore, err)
		}
	}
	res.Indexes, res.Triggers = len(b.indexes), len(b.triggers)
	return nil
}

func appendRows(ctx context.Context, conn *sql.Conn, table string, live tableObjects, res *TableRestoreResult) error {
	if live.table == "" {
		return fmt.Errorf("%w: the live database has no table %q to append to; use --mode replace or new-name", ErrTableRestore, table)
	}
	b, err := schemaObjects(ctx, conn, "backup", table)
	if err != nil {
		return err
	}
	if strings.Join(b.columns, ",") != strings.Join(live.columns, ",") {
		return fmt.Errorf("%w: %s has columns (%s) in the backup and (%s) live; use --mode new-name to compare them side by side",
			ErrTableRestore, table, strings.Join(b.columns, ", "), strings.Join(live.columns, ", "))
	}
	key, err := primaryKey(ctx, conn, table, live.rowid)
	if err != nil {
		return err
	}
	q := QuoteIdent(table)
	match := make([]string, len(key))
	for i, k := range key {
		match[i] = "l." + k + " IS b." + k
	}
	cols := columnList(live.columns, live.rowid && len(key) == 1 && key[0] == "rowid")
	bcols := strings.ReplaceAll(", "+cols, ", ", ", b.")[2:]
	r, err := conn.ExecContext(ctx, "INSERT INTO main."+q+"("+cols+") SELECT "+bcols+" FROM backup."+q+" AS b WHERE NOT EXISTS (SELECT 1 FROM main."+q+" AS l WHERE "+strings.Join(match, " AND ")+")")
	if err != nil {
		return fmt.Errorf("%w: append rows to %s: %v", ErrTableRestore, table, err)
	}
	res.RowsWritten, _ = r.RowsAffected()
	res.RowsSkipped = res.RowsInBackup - res.RowsWritten
	return nil
}

// primaryKey returns the quoted columns identifying a row: the declared
// primary key, or rowid.
func primaryKey(ctx context.Context, conn *sql.Conn, table string, rowid bool) ([]string, error) {
	rows, err := conn.QueryContext(ctx, "SELECT name, pk FROM pragma_table_info(?, 'main') WHERE pk > 0 ORDER BY pk", table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var key []string
	for rows.Next() {
		var name string
		var pk int
		if err := rows.Scan(&name, &pk); err != nil {
			return nil, err
		}
		key = append(key, QuoteIdent(name))
	}
	if len(key) == 0 && rowid {
		key = []string{"rowid"}
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: %s has no primary key to match rows by", ErrTableRestore, table)
	}
	return key, rows.Err()
}

func copyUnderNewName(ctx context.Context, conn *sql.Conn, table, newName string, b tableObjects, res *TableRestoreResult) error {
	var exists int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM main.sqlite_schema WHERE name = ?", newName).Scan(&exists); err != nil {
		return err
	}
	if exists > 0 {
		return fmt.Errorf("%w: %s already exists in the live database; rename or drop it first", ErrTableRestore, newName)
	}
	ddl, err := renameCreate(b.table, "TABLE", newName)
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("%w: create %s: %v", ErrTableRestore, newName, err)
	}
	q, nq := QuoteIdent(table), QuoteIdent(newName)
	cols := columnList(b.columns, b.rowid && !hasColumn(b.columns, "rowid"))
	r, err := conn.ExecContext(ctx, "INSERT INTO main."+nq+"("+cols+") SELECT "+cols+" FROM backup."+q)
	if err != nil {
		return fmt.Errorf("%w: copy rows into %s: %v", ErrTableRestore, newName, err)
	}
	res.RowsWritten, _ = r.RowsAffected()
	for i, stmt := range b.indexes {
		idx, err := renameIndex(stmt, fmt.Sprintf("%s_idx%d", newName, i+1), newName)
		if err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, idx); err != nil {
			return fmt.Errorf("%w: create index on %s: %v", ErrTableRestore, newName, err)
		}
	}
	res.Indexes = len(b.indexes)
	return nil
}

// renameCreate replaces the object name in a CREATE TABLE statement.
func renameCreate(stmt, kind, newName string) (string, error) {
	rest, ok := cutKeywords(stmt, "CREATE", kind)
	if !ok {
		return "", fmt.Errorf("%w: cannot parse %q", ErrTableRestore, firstLine(stmt))
	}
	after, err := cutObjectName(rest)
	if err != nil {
		return "", err
	}
	return "CREATE " + kind + " " + QuoteIdent(newName) + after, nil
}

// cutObjectName strips an optional IF NOT EXISTS and the object's name from
// the rest of a CREATE statement.
func cutObjectName(rest string) (string, error) {
	if r, ok := cutKeywords(rest, "IF", "NOT", "EXISTS"); ok {
		rest = r
	}
	_, after, err := cutIdent(rest)
	return after, err
}

// renameIndex rewrites CREATE [UNIQUE] INDEX name ON table(...) to a new
// index name on a new table.
func renameIndex(stmt, newName, newTable string) (string, error) {
	rest, unique := cutKeywords(stmt, "CREATE", "UNIQUE", "INDEX")
	if !unique {
		var ok bool
		if rest, ok = cutKeywords(stmt, "CREATE", "INDEX"); !ok {
			return "", fmt.Errorf("%w: cannot parse %q", ErrTableRestore, firstLine(stmt))
		}
	}
	rest, err := cutObjectName(rest)
	if err != nil {
		return "", err
	}
	rest, ok := cutKeywords(rest, "ON")
	if !ok {
		return "", fmt.Errorf("%w: cannot parse %q", ErrTableRestore, firstLine(stmt))
	}
	_, rest, err = cutIdent(rest)
	if err != nil {
		return "", err
	}
	head := "CREATE INDEX "
	if unique {
		head = "CREATE UNIQUE INDEX "
	}
	return head + QuoteIdent(newName) + " ON " + QuoteIdent(newTable) + rest, nil
}

// cutKeywords strips leading keywords (case-insensitive, whitespace
// between them) from s.
func cutKeywords(s string, words ...string) (string, bool) {
	for _, w := range words {
		s = strings.TrimLeft(s, " \t\r\n")
		if len(s) < len(w) || !strings.EqualFold(s[:len(w)], w) || (len(s) > len(w) && isIdentChar(s[len(w)])) {
			return s, false
		}
		s = s[len(w):]
	}
	return s, true
}

// cutIdent splits a leading identifier, quoted in any of SQLite's styles or
// bare, from s.
func cutIdent(s string) (string, string, error) {
	s = strings.TrimLeft(s, " \t\r\n")
	if s == "" {
		return "", "", fmt.Errorf("%w: missing identifier", ErrTableRestore)
	}
	closer := map[byte]byte{'"': '"', '`': '`', '[': ']', '\'': '\''}
	if c, ok := closer[s[0]]; ok {
		for i := 1; i < len(s); i++ {
			if s[i] == c {
				if c != ']' && i+1 < len(s) && s[i+1] == c {
					i++ // doubled quote
					continue
				}
				return s[:i+1], s[i+1:], nil
			}
		}
		return "", "", fmt.Errorf("%w: unterminated identifier", ErrTableRestore)
	}
	i := 0
	for i < len(s) && (isIdentChar(s[i]) || s[i] == '.') {
		i++
	}
	return s[:i], s[i:], nil
}

func isIdentChar(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func hasColumn(cols []string, name string) bool {
	for _, c := range cols {
		if strings.EqualFold(c, name) {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// fkViolations lists foreign key violations in the main database.
func fkViolations(ctx context.Context, conn *sql.Conn) ([]string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT "table", coalesce(rowid, 0), parent, fkid FROM pragma_foreign_key_check`)
	if err != nil {
		return nil, fmt.Errorf("foreign_key_check: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var table, parent string
		var rowid, fkid int64
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("%s row %d references a missing %s", table, rowid, parent))
	}
	return out, rows.Err()
}

// newViolations returns the violations in after that were not in before, at
// most 10 of them.
func newViolations(before, after []string) []string {
	seen := map[string]bool{}
	for _, v := range before {
		seen[v] = true
	}
	var added []string
	for _, v := range after {
		if !seen[v] {
			added = append(added, v)
		}
	}
	sort.Strings(added)
	if len(added) > 10 {
		added = append(added[:10], fmt.Sprintf("and %d more", len(added)-10))
	}
	return added
}

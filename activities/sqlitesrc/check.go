package sqlitesrc

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// CheckResult is what SQLite says about a database file.
type CheckResult struct {
	Integrity   string // "ok" or the first problems integrity_check reports
	ForeignKeys string // "ok" or the violations foreign_key_check reports
	Tables      []TableCount
	SchemaHash  string
}

// OK reports whether both checks passed.
func (r CheckResult) OK() bool { return r.Integrity == "ok" && r.ForeignKeys == "ok" }

// CheckFile runs integrity_check and foreign_key_check on a database file
// that nothing else has open (a restored or staged image) and counts its
// rows. It opens the file immutable, so it never writes -wal or -shm files.
func CheckFile(ctx context.Context, path string) (CheckResult, error) {
	var res CheckResult
	if err := CheckHeader(path); err != nil {
		return res, err
	}
	db, err := sql.Open("sqlite", dsn(path, "ro")+"&immutable=1")
	if err != nil {
		return res, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	res.Integrity, err = collect(ctx, db, "PRAGMA integrity_check(20)", 20)
	if err != nil {
		return res, classify(path, "integrity_check", err)
	}
	fk, err := collect(ctx, db, "SELECT \"table\" || ' row ' || coalesce(rowid, '?') || ' → ' || parent FROM pragma_foreign_key_check", 20)
	if err != nil {
		return res, classify(path, "foreign_key_check", err)
	}
	res.ForeignKeys = fk
	if fk == "" {
		res.ForeignKeys = "ok"
	}
	if res.Tables, err = tableRows(ctx, db, path); err != nil {
		return res, err
	}
	if res.SchemaHash, err = schemaHash(ctx, db, path); err != nil {
		return res, err
	}
	return res, nil
}

func collect(ctx context.Context, db *sql.DB, query string, limit int) (string, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var out []string
	for rows.Next() && len(out) < limit {
		var s string
		if err := rows.Scan(&s); err != nil {
			return "", err
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return strings.Join(out, "; "), nil
}

// String summarises the result on one line.
func (r CheckResult) String() string {
	return fmt.Sprintf("integrity_check: %s; foreign_key_check: %s", r.Integrity, r.ForeignKeys)
}

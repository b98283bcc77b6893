package demodb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrInconsistent is wrapped by CheckConsistent's error when the database
// is not one committed state of a demodb database.
var ErrInconsistent = errors.New("database is not consistent")

// CheckConsistent opens the database file at path read-only and verifies
// that it holds one committed state: PRAGMA integrity_check reports "ok",
// PRAGMA foreign_key_check reports nothing, writer_state's counts and sums
// match the expenses and incomes tables, and every active or achieved
// savings goal has the status its amounts imply. All checks read one
// snapshot, so the database may be checked while RunWriter writes to it.
//
// A failed check, or a file SQLite finds corrupt or not a database, returns
// an error wrapping ErrInconsistent; any other error means the check itself
// could not run (no such file, permissions, I/O). Either way the file is not
// known to be good.
//
// Like any read-only connection to a WAL database, it may leave empty -wal
// and -shm files beside the database.
func CheckConsistent(ctx context.Context, path string) (err error) {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	db, conn, err := openConn(ctx, path, "ro", "query_only(1)")
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	defer func() {
		if cerr := closeConn(db, conn); err == nil && cerr != nil {
			err = fmt.Errorf("check %s: close database: %w", path, cerr)
		}
	}()

	// One read transaction: every check sees the same snapshot.
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("check %s: begin: %w", path, err)
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") // read-only: nothing to lose
	}()
	for _, check := range []struct {
		name string
		fn   func(context.Context, *sql.Conn) error
	}{
		{"integrity check", checkIntegrity},
		{"foreign key check", checkForeignKeys},
		{"writer state", checkWriterState},
		{"savings goal status", checkGoalStatus},
	} {
		if err := check.fn(ctx, conn); err != nil {
			if isCorrupt(err) && !errors.Is(err, ErrInconsistent) {
				err = fmt.Errorf("%w: %w", ErrInconsistent, err)
			}
			return fmt.Errorf("check %s: %s: %w", path, check.name, err)
		}
	}
	return nil
}

func checkIntegrity(ctx context.Context, conn *sql.Conn) error {
	// At most a few messages: enough to say what is wrong.
	rows, err := conn.QueryContext(ctx, "PRAGMA integrity_check(5)")
	if err != nil {
		return err
	}
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return err
		}
		msgs = append(msgs, m)
	}
	if err := closeRows(rows); err != nil {
		return err
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		return fmt.Errorf("%w: %s", ErrInconsistent, strings.Join(msgs, "; "))
	}
	return nil
}

func checkForeignKeys(ctx context.Context, conn *sql.Conn) error {
	rows, err := conn.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return err
	}
	var (
		violations int
		first      string
	)
	for rows.Next() {
		var (
			table, parent string
			rowid         sql.NullInt64
			fkid          int64
		)
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			rows.Close()
			return err
		}
		if violations == 0 {
			first = fmt.Sprintf("%s row %d references a missing %s row", table, rowid.Int64, parent)
		}
		violations++
	}
	if err := closeRows(rows); err != nil {
		return err
	}
	if violations > 0 {
		return fmt.Errorf("%w: %d violations, first: %s", ErrInconsistent, violations, first)
	}
	return nil
}

func checkWriterState(ctx context.Context, conn *sql.Conn) error {
	var tables int
	err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'writer_state'`).Scan(&tables)
	if err != nil {
		return err
	}
	if tables == 0 {
		return fmt.Errorf("%w: no writer_state table", ErrInconsistent)
	}
	var recorded, actual delta
	err = conn.QueryRowContext(ctx,
		`SELECT expense_rows, expense_pence, income_rows, income_pence FROM writer_state WHERE id = 1`).
		Scan(&recorded.expenseRows, &recorded.expensePence, &recorded.incomeRows, &recorded.incomePence)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: writer_state has no row", ErrInconsistent)
	}
	if err != nil {
		return err
	}
	err = conn.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM expenses), (SELECT coalesce(sum(amount_pence), 0) FROM expenses),
		(SELECT count(*) FROM incomes), (SELECT coalesce(sum(amount_pence), 0) FROM incomes)`).
		Scan(&actual.expenseRows, &actual.expensePence, &actual.incomeRows, &actual.incomePence)
	if err != nil {
		return err
	}
	if recorded != actual {
		return fmt.Errorf("%w: writer_state records %d expenses of %d pence and %d incomes of %d pence, tables hold %d of %d and %d of %d",
			ErrInconsistent,
			recorded.expenseRows, recorded.expensePence, recorded.incomeRows, recorded.incomePence,
			actual.expenseRows, actual.expensePence, actual.incomeRows, actual.incomePence)
	}
	return nil
}

func checkGoalStatus(ctx context.Context, conn *sql.Conn) error {
	var wrong int64
	err := conn.QueryRowContext(ctx, `SELECT count(*) FROM savings_goals
		WHERE status IN ('active', 'achieved')
		  AND status <> CASE WHEN current_pence >= target_pence THEN 'achieved' ELSE 'active' END`).Scan(&wrong)
	if err != nil {
		return err
	}
	if wrong > 0 {
		return fmt.Errorf("%w: %d savings goals with a status their amounts contradict", ErrInconsistent, wrong)
	}
	return nil
}

// isCorrupt reports whether err is SQLite finding the file damaged.
func isCorrupt(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

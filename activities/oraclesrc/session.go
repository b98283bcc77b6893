package oraclesrc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	go_ora "github.com/sijms/go-ora/v2"
)

// Everything from here on talks to a live Oracle through go-ora. It is compiled and vetted here
// but exercised only by the testcontainers suite in integration/ (see the package doc and the
// README for what has met a real database).

// Conn says how to reach a database. The password comes from the worker's environment or a
// secret file (config), never from argv or workflow history.
type Conn struct {
	Host     string
	Port     int
	Service  string
	User     string
	Password string
}

// String is safe to log: it never holds the password.
func (c Conn) String() string {
	return fmt.Sprintf("%s@%s:%d/%s", c.User, c.Host, c.Port, c.Service)
}

// GoString keeps %#v (and so test failures and panics that print the
// struct) from showing the password.
func (c Conn) GoString() string { return "oraclesrc.Conn(" + c.String() + ")" }

// Open returns a pool for c. go-ora's socket deadline is turned off (TIMEOUT=0): Data Pump waits
// and large reads are bounded by contexts instead.
func Open(c Conn) (*sql.DB, error) {
	if c.Host == "" || c.Port <= 0 || c.Service == "" || c.User == "" {
		return nil, fmt.Errorf("oracle connection %s: host, port, service and user are required", c)
	}
	url := go_ora.BuildUrl(c.Host, c.Port, c.Service, c.User, c.Password, map[string]string{
		"TIMEOUT": "0",
	})
	db := sql.OpenDB(go_ora.NewConnector(url))
	db.SetMaxOpenConns(4)
	return db, nil
}

// sessionSetup makes text conversions independent of the server's and client's NLS settings:
// NUMBER text uses '.' whatever the territory, and TIMESTAMP WITH LOCAL TIME ZONE is read in UTC.
var sessionSetup = []string{
	`ALTER SESSION SET NLS_NUMERIC_CHARACTERS = '.,'`,
	`ALTER SESSION SET TIME_ZONE = 'UTC'`,
	`ALTER SESSION SET NLS_LENGTH_SEMANTICS = 'BYTE'`,
}

// pinSession takes one connection from db (metadata transforms, Data Pump handles and CURRENT_SCHEMA
// live in a session) and prepares it.
func pinSession(ctx context.Context, db *sql.DB) (*sql.Conn, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	for _, s := range sessionSetup {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			conn.Close()
			return nil, fmt.Errorf("session setup %q: %w", s, err)
		}
	}
	return conn, nil
}

// scnQueries are tried in order: V$DATABASE needs SELECT_CATALOG_ROLE, DBMS_FLASHBACK an
// EXECUTE grant; TIMESTAMP_TO_SCN needs nothing and gives an SCN a few seconds old, which is as
// consistent (every table is read at that one SCN) if a little earlier.
var scnQueries = []string{
	`SELECT TO_CHAR(CURRENT_SCN) FROM V$DATABASE`,
	`SELECT TO_CHAR(DBMS_FLASHBACK.GET_SYSTEM_CHANGE_NUMBER) FROM dual`,
	`SELECT TO_CHAR(TIMESTAMP_TO_SCN(SYSTIMESTAMP)) FROM dual`,
}

// CurrentSCN returns the database's system change number as decimal text.
func CurrentSCN(ctx context.Context, q queryer) (string, error) {
	var errs []error
	for _, s := range scnQueries {
		var scn string
		if err := q.QueryRowContext(ctx, s).Scan(&scn); err != nil {
			errs = append(errs, err)
			continue
		}
		scn = strings.TrimSpace(scn)
		if c, err := CanonicalNumber(scn); err != nil || c != scn || strings.ContainsAny(scn, "-.") {
			return "", fmt.Errorf("database returned SCN %q", scn)
		}
		return scn, nil
	}
	return "", fmt.Errorf("read the current SCN: %w", errors.Join(errs...))
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// oraCode returns the ORA-nnnnn code of err, or 0.
func oraCode(err error) int {
	if err == nil {
		return 0
	}
	s := err.Error()
	i := strings.Index(s, "ORA-")
	if i < 0 || len(s) < i+9 {
		return 0
	}
	n := 0
	for _, c := range s[i+4 : i+9] {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func binds(st Statement) []any {
	out := make([]any, len(st.Binds))
	for i, b := range st.Binds {
		out[i] = sql.Named(b.Name, b.Value)
	}
	return out
}

// clobText reads a CLOB query result (DBMS_METADATA); go-ora inlines it by default.
func queryCLOB(ctx context.Context, q queryer, st Statement) (string, error) {
	var s sql.NullString
	if err := q.QueryRowContext(ctx, st.SQL, binds(st)...).Scan(&s); err != nil {
		return "", err
	}
	return s.String, nil
}

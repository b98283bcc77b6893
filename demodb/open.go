package demodb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// openConn opens a single connection to the database file at path. mode is
// SQLite's URI open mode ("ro", "rw"); it never includes "c", so a missing
// file is an error rather than a new empty database. pragmas run on the
// connection before it is returned.
func openConn(ctx context.Context, path, mode string, pragmas ...string) (*sql.DB, *sql.Conn, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve path: %w", err)
	}
	q := url.Values{"mode": {mode}}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	// A file: URI, so SQLite honours mode=; the path is escaped so that
	// names containing '?' or '#' still point at the right file.
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close() // the connection error is the one worth reporting
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	return db, conn, nil
}

// closeConn closes conn and its pool, returning the first error.
func closeConn(db *sql.DB, conn *sql.Conn) error {
	err := conn.Close()
	if e := db.Close(); err == nil {
		err = e
	}
	return err
}

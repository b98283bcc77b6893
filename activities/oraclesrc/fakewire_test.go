package oraclesrc

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
)

// fakeWire is a database/sql driver whose answers come from Go functions. It replaces the
// network, never Oracle's behaviour: code that takes *sql.Rows or *sql.Conn then runs through
// database/sql's real argument handling and scan conversions (float32 to a float64 target goes
// through decimal text there, for one), with the driver values go-ora delivers (string,
// float32, float64, []byte, nil).
type fakeWire struct {
	mu    sync.Mutex
	query func(q string, args []driver.NamedValue) (*fakeResult, error)
	exec  func(q string, args []driver.NamedValue) error
	execs []fakeCall
}

// fakeResult is a canned result set: width columns, rows of driver values.
type fakeResult struct {
	width int
	rows  [][]driver.Value
}

// fakeCall records one ExecContext.
type fakeCall struct {
	query string
	args  []driver.NamedValue
}

// open returns a pinned connection on w, closed when the test ends.
func (w *fakeWire) open(t *testing.T) *sql.Conn {
	t.Helper()
	db := sql.OpenDB(w)
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// rows runs a query on a fresh connection and returns the *sql.Rows.
func (w *fakeWire) rows(t *testing.T, q string) *sql.Rows {
	t.Helper()
	rows, err := w.open(t).QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rows.Close() })
	return rows
}

func (w *fakeWire) Connect(context.Context) (driver.Conn, error) { return &fakeConn{w}, nil }
func (w *fakeWire) Driver() driver.Driver                        { return fakeDriver{} }

type fakeDriver struct{}

func (fakeDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("fake: use the connector")
}

type fakeConn struct{ w *fakeWire }

func (c *fakeConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("fake: prepare not supported")
}
func (c *fakeConn) Close() error              { return nil }
func (c *fakeConn) Begin() (driver.Tx, error) { return nil, errors.New("fake: no transactions") }

// CheckNamedValue accepts every argument as given, so tests see sql.NullString and []byte
// exactly as the code passed them (go-ora does its own conversions too).
func (c *fakeConn) CheckNamedValue(*driver.NamedValue) error { return nil }

func (c *fakeConn) QueryContext(_ context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	if c.w.query == nil {
		return nil, errors.New("fake: no queries expected")
	}
	r, err := c.w.query(q, args)
	if err != nil {
		return nil, err
	}
	for i, row := range r.rows {
		if len(row) != r.width {
			return nil, fmt.Errorf("fake: row %d has %d values, want %d", i, len(row), r.width)
		}
	}
	return &fakeDriverRows{r: r}, nil
}

func (c *fakeConn) ExecContext(_ context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.w.mu.Lock()
	c.w.execs = append(c.w.execs, fakeCall{q, append([]driver.NamedValue(nil), args...)})
	c.w.mu.Unlock()
	if c.w.exec != nil {
		if err := c.w.exec(q, args); err != nil {
			return nil, err
		}
	}
	return driver.RowsAffected(0), nil
}

type fakeDriverRows struct {
	r *fakeResult
	i int
}

func (r *fakeDriverRows) Columns() []string {
	cols := make([]string, r.r.width)
	for i := range cols {
		cols[i] = fmt.Sprintf("C%d", i+1)
	}
	return cols
}

func (r *fakeDriverRows) Close() error { return nil }

func (r *fakeDriverRows) Next(dest []driver.Value) error {
	if r.i >= len(r.r.rows) {
		return io.EOF
	}
	copy(dest, r.r.rows[r.i])
	r.i++
	return nil
}

// fakeScanner implements streamRows' scanner interface the way database/sql fills typed
// destinations: a sql.Scanner gets the driver value (sql.NullString, sql.NullFloat64,
// sql.Null[T] convert as database/sql does), a *[]byte gets a copy or nil.
type fakeScanner struct {
	rows    [][]any
	i       int
	err     error // returned by Err after the rows
	scanErr error // returned by Scan
}

func (f *fakeScanner) Next() bool {
	if f.i < len(f.rows) {
		f.i++
		return true
	}
	return false
}

func (f *fakeScanner) Scan(dest ...any) error {
	if f.scanErr != nil {
		return f.scanErr
	}
	row := f.rows[f.i-1]
	if len(dest) != len(row) {
		return fmt.Errorf("fake scan: %d destinations for %d values", len(dest), len(row))
	}
	for i, d := range dest {
		switch d := d.(type) {
		case sql.Scanner:
			if err := d.Scan(row[i]); err != nil {
				return fmt.Errorf("fake scan column %d: %w", i, err)
			}
		case *[]byte:
			switch v := row[i].(type) {
			case nil:
				*d = nil
			case []byte:
				*d = append([]byte{}, v...) // database/sql clones: empty stays non-nil
			case string:
				*d = []byte(v)
			default:
				return fmt.Errorf("fake scan column %d: %T into *[]byte", i, v)
			}
		default:
			return fmt.Errorf("fake scan column %d: unsupported destination %T", i, d)
		}
	}
	return nil
}

func (f *fakeScanner) Err() error { return f.err }

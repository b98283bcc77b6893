// Package sqlitesrc reads consistent page images of live SQLite databases and
// writes restored ones back. It knows SQLite; it knows nothing of Temporal.
package sqlitesrc

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Sentinel errors; the activity boundary classifies them.
var (
	// ErrNoDatabase marks a database path that does not exist.
	ErrNoDatabase = errors.New("database file does not exist")
	// ErrNotSQLite marks a file that is not an SQLite database.
	ErrNotSQLite = errors.New("not an SQLite database")
	// ErrDamaged marks a source database that SQLite itself reports as damaged.
	ErrDamaged = errors.New("source database is damaged")
)

const sqliteHeaderMagic = "SQLite format 3\x00"

// Snapshot is a read transaction held open on a live database. Every read
// through it sees the same committed state. In WAL mode writers carry on
// unhindered while it is open; in rollback-journal mode they wait for it.
type Snapshot struct {
	db          *sql.DB
	conn        *sql.Conn
	tx          *sql.Tx
	Path        string
	PageSize    int
	PageCount   int64
	JournalMode string
	Version     string
	AppID       int64
	UserVersion int64
}

// dsn builds a modernc DSN that never creates the file.
func dsn(path string, mode string) string {
	q := url.Values{}
	q.Set("mode", mode)
	q.Add("_pragma", "busy_timeout(10000)")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// CheckHeader reports whether path exists and starts with the SQLite header,
// with an error that names the problem.
func CheckHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNoDatabase, path)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if info.IsDir() {
		return fmt.Errorf("%w: %s is a directory", ErrNotSQLite, path)
	}
	hdr := make([]byte, 100)
	n, err := io.ReadFull(f, hdr)
	if n < len(sqliteHeaderMagic) || string(hdr[:len(sqliteHeaderMagic)]) != sqliteHeaderMagic {
		return fmt.Errorf("%w: %s does not start with the SQLite header", ErrNotSQLite, path)
	}
	if err != nil {
		return fmt.Errorf("%w: %s is %d bytes, shorter than the 100-byte SQLite header (truncated)", ErrDamaged, path, n)
	}
	pageSize := int(hdr[16])<<8 | int(hdr[17])
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize&(pageSize-1) != 0 {
		return fmt.Errorf("%w: %s has invalid page size %d in its header", ErrDamaged, path, pageSize)
	}
	if info.Size()%int64(pageSize) != 0 {
		return fmt.Errorf("%w: %s is %d bytes, not a whole number of %d-byte pages (truncated)", ErrDamaged, path, info.Size(), pageSize)
	}
	return nil
}

// OpenSnapshot opens a read transaction on the database at path.
func OpenSnapshot(ctx context.Context, path string) (*Snapshot, error) {
	if err := CheckHeader(path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(path, "rw"))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	s := &Snapshot{db: db, Path: path}
	if err := s.begin(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Snapshot) begin(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", s.Path, err)
	}
	s.conn = conn
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin read transaction on %s: %w", s.Path, err)
	}
	s.tx = tx
	// The first read starts the snapshot; everything after sees the same state.
	var schemaObjects int64
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&schemaObjects); err != nil {
		return classify(s.Path, "read schema", err)
	}
	for _, q := range []struct {
		pragma string
		dst    any
	}{
		{"page_size", &s.PageSize},
		{"page_count", &s.PageCount},
		{"journal_mode", &s.JournalMode},
		{"application_id", &s.AppID},
		{"user_version", &s.UserVersion},
	} {
		if err := tx.QueryRowContext(ctx, "PRAGMA "+q.pragma).Scan(q.dst); err != nil {
			return classify(s.Path, "PRAGMA "+q.pragma, err)
		}
	}
	if err := tx.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&s.Version); err != nil {
		return err
	}
	return nil
}

// Pages calls fn for every page of the snapshot in page order. data is only
// valid during the call.
func (s *Snapshot) Pages(ctx context.Context, fn func(pgno uint32, data []byte) error) error {
	if mappedReads {
		// Only this scan reads through the map, releasing as it goes; the
		// row counts after it walk whole b-trees in one query each, which
		// through the map would hold a table's size in the process.
		if _, err := s.tx.ExecContext(ctx, fmt.Sprintf("PRAGMA mmap_size=%d", int64(mmapLimit))); err != nil {
			return classify(s.Path, "PRAGMA mmap_size", err)
		}
		defer func() {
			_, _ = s.tx.ExecContext(context.Background(), "PRAGMA mmap_size=0")
			releaseMapped(s.Path, s.PageCount*int64(s.PageSize))
		}()
	}
	return s.guarded(func() error { return s.pages(ctx, fn) })
}

// guarded runs a read of the snapshot. With the file mapped, a read error
// of the disk arrives as a fault (SIGBUS) in SQLite's code on this
// goroutine: it becomes an error of this backup instead of a crash of the
// worker.
func (s *Snapshot) guarded(read func() error) (err error) {
	if !mappedReads {
		return read()
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			// A memory fault panics with an error that knows the faulting
			// address; anything else is a bug and goes on panicking.
			fault, ok := r.(interface {
				runtime.Error
				Addr() uintptr
			})
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%w: %s: reading the database through its memory map failed (the file was cut short or the disk failed): %v", ErrDamaged, s.Path, fault)
		}
	}()
	return read()
}

// releaseEvery is how much of the mapped file is read before the pages
// already read are released from the process.
const releaseEvery = 8 << 20

func (s *Snapshot) pages(ctx context.Context, fn func(pgno uint32, data []byte) error) error {
	rows, err := s.tx.QueryContext(ctx, "SELECT pgno, data FROM sqlite_dbpage")
	if err != nil {
		return classify(s.Path, "read pages", err)
	}
	defer rows.Close()
	var (
		pgno uint32
		data sql.RawBytes
		want uint32 = 1
	)
	for rows.Next() {
		if err := rows.Scan(&pgno, &data); err != nil {
			return classify(s.Path, "read page", err)
		}
		if pgno != want || len(data) != s.PageSize {
			return fmt.Errorf("%w: %s: page %d has %d bytes (expected page %d of %d bytes)", ErrDamaged, s.Path, pgno, len(data), want, s.PageSize)
		}
		if err := fn(pgno, data); err != nil {
			return err
		}
		if mappedReads && int64(pgno)*int64(s.PageSize)%releaseEvery == 0 {
			releaseMapped(s.Path, int64(pgno)*int64(s.PageSize))
		}
		want++
	}
	if err := rows.Err(); err != nil {
		return classify(s.Path, "read pages", err)
	}
	if int64(want-1) != s.PageCount {
		return fmt.Errorf("%w: %s: read %d pages, page_count says %d", ErrDamaged, s.Path, want-1, s.PageCount)
	}
	return nil
}

// TableRows counts the rows of every table in the snapshot. Counting walks
// each table's b-tree, so it also catches most damage a byte copy would not.
func (s *Snapshot) TableRows(ctx context.Context) (counts []TableCount, err error) {
	err = s.guarded(func() error {
		counts, err = tableRows(ctx, s.tx, s.Path)
		return err
	})
	return counts, err
}

// SchemaHash is the SHA-256 of the schema (every object's type, name and SQL).
func (s *Snapshot) SchemaHash(ctx context.Context) (sum string, err error) {
	err = s.guarded(func() error {
		sum, err = schemaHash(ctx, s.tx, s.Path)
		return err
	})
	return sum, err
}

// Close ends the read transaction and closes the connection. In WAL mode
// it then checkpoints the WAL that grew while the snapshot held it back:
// otherwise the application's next commit would run that checkpoint itself
// (SQLite's auto-checkpoint) and stall for it. A PASSIVE checkpoint never
// blocks writers; while it runs, their auto-checkpoints find it busy and
// skip.
func (s *Snapshot) Close() error {
	if s.tx != nil {
		_ = s.tx.Rollback()
		s.tx = nil
		if strings.EqualFold(s.JournalMode, "wal") && s.conn != nil {
			_, _ = s.conn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
	if s.conn != nil {
		_ = s.conn.Close()
	}
	return s.db.Close()
}

// TableCount is a table's row count.
type TableCount struct {
	Name string
	Rows int64
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func tableRows(ctx context.Context, q querier, path string) ([]TableCount, error) {
	rows, err := q.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
	if err != nil {
		return nil, classify(path, "list tables", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, classify(path, "list tables", err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, classify(path, "list tables", err)
	}
	counts := make([]TableCount, 0, len(names))
	for _, n := range names {
		var c int64
		if err := q.QueryRowContext(ctx, "SELECT count(*) FROM "+QuoteIdent(n)).Scan(&c); err != nil {
			if isVirtualTableError(err) {
				continue // virtual tables whose module is not loaded here
			}
			return nil, classify(path, "count rows of "+n, err)
		}
		counts = append(counts, TableCount{Name: n, Rows: c})
	}
	return counts, nil
}

func schemaHash(ctx context.Context, q querier, path string) (string, error) {
	rows, err := q.QueryContext(ctx, "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name")
	if err != nil {
		return "", classify(path, "read schema", err)
	}
	defer rows.Close()
	h := sha256.New()
	for rows.Next() {
		var typ, name, tbl, text string
		if err := rows.Scan(&typ, &name, &tbl, &text); err != nil {
			return "", classify(path, "read schema", err)
		}
		fmt.Fprintf(h, "%d:%s%d:%s%d:%s%d:%s", len(typ), typ, len(name), name, len(tbl), tbl, len(text), text)
	}
	if err := rows.Err(); err != nil {
		return "", classify(path, "read schema", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// QuoteIdent quotes an SQLite identifier.
func QuoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

func isVirtualTableError(err error) bool {
	return strings.Contains(err.Error(), "no such module")
}

// classify turns SQLite's corruption and not-a-database errors into the
// package's sentinels so that callers can stop retrying.
func classify(path, op string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "file is not a database") || strings.Contains(msg, "(26)"):
		return fmt.Errorf("%w: %s: %s: %v", ErrNotSQLite, path, op, err)
	case strings.Contains(msg, "malformed") || strings.Contains(msg, "(11)") || strings.Contains(msg, "disk image"):
		return fmt.Errorf("%w: %s: %s: %v", ErrDamaged, path, op, err)
	}
	return fmt.Errorf("%s: %s: %w", path, op, err)
}

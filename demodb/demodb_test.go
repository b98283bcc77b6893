package demodb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

var appTables = []string{"users", "categories", "expenses", "incomes", "budgets", "savings_goals"}

func generate(t *testing.T, opts Options) Stats {
	t.Helper()
	st, err := Generate(context.Background(), filepath.Join(t.TempDir(), "finance.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// queryInt runs a single-value query against the database at path.
func queryInt(t *testing.T, path, query string) int64 {
	t.Helper()
	db, conn, err := openConn(context.Background(), path, "ro")
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn(db, conn)
	var n int64
	if err := conn.QueryRowContext(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// execSQL runs statements against the database at path, foreign keys off.
func execSQL(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, conn, err := openConn(context.Background(), path, "rw")
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn(db, conn)
	for _, s := range stmts {
		if _, err := conn.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// contentDigest hashes the schema and every row of every table, in key
// order: two databases with the same digest hold the same data.
func contentDigest(t *testing.T, path string) string {
	t.Helper()
	ctx := context.Background()
	db, conn, err := openConn(ctx, path, "ro")
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn(db, conn)
	h := sha256.New()
	rows, err := conn.QueryContext(ctx, "SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var typ, name, sql string
		if err := rows.Scan(&typ, &name, &sql); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %s %s\n", typ, name, sql)
		if typ == "table" {
			tables = append(tables, name)
		}
	}
	if err := closeRows(rows); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		rows, err := conn.QueryContext(ctx, fmt.Sprintf("SELECT * FROM %q ORDER BY 1, 2", table))
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		n := 0
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				fmt.Fprintf(h, "%T:%v|", v, v)
			}
			h.Write([]byte{'\n'})
			n++
		}
		if err := closeRows(rows); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "table %s: %d rows\n", table, n)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestGenerateDefault(t *testing.T) {
	st := generate(t, Options{})
	t.Logf("default database: %d bytes in %v, rows %v", st.Bytes, st.Duration, st.Rows)

	// Checked first: the read-only connections below may create them.
	for _, p := range []string{st.Path + "-wal", st.Path + "-shm", st.Path + "-journal"} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}
	fi, err := os.Stat(st.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != st.Bytes {
		t.Errorf("Stats.Bytes = %d, file has %d", st.Bytes, fi.Size())
	}
	if st.Bytes < 2<<20 || st.Bytes > 6<<20 {
		t.Errorf("default database is %d bytes, want a few MB", st.Bytes)
	}
	for _, table := range appTables {
		got := queryInt(t, st.Path, "SELECT count(*) FROM "+table)
		if got == 0 || got != st.Rows[table] {
			t.Errorf("%s: %d rows, Stats.Rows says %d", table, got, st.Rows[table])
		}
	}
	if got := st.Rows["expenses"]; got != DefaultUsers*DefaultExpensesPerUser {
		t.Errorf("expenses = %d, want %d", got, DefaultUsers*DefaultExpensesPerUser)
	}
	if got := st.Rows["users"]; got != DefaultUsers {
		t.Errorf("users = %d, want %d", got, DefaultUsers)
	}

	// The file header says WAL (read and write versions 2) and the page
	// size, whichever connection opens it next.
	header := make([]byte, 20)
	f, err := os.Open(st.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(header, 0); err != nil {
		t.Fatal(err)
	}
	if header[18] != 2 || header[19] != 2 {
		t.Errorf("file format versions %d/%d, want 2/2 (WAL)", header[18], header[19])
	}
	if size := int(header[16])<<8 | int(header[17]); size != pageSize {
		t.Errorf("page size %d, want %d", size, pageSize)
	}

	for kind, min := range map[string]int64{"trigger": 2, "view": 1, "index": 4} {
		if n := queryInt(t, st.Path, "SELECT count(*) FROM sqlite_schema WHERE type = '"+kind+"'"); n < min {
			t.Errorf("%d %ss, want at least %d", n, kind, min)
		}
	}
	if n := queryInt(t, st.Path, "SELECT count(*) FROM pragma_foreign_key_check"); n != 0 {
		t.Errorf("foreign_key_check: %d violations", n)
	}
	if n := queryInt(t, st.Path, "SELECT count(*) FROM users WHERE full_name GLOB '*[^ -~]*'"); n == 0 {
		t.Error("no user name with a non-ASCII character")
	}
	if n := queryInt(t, st.Path, "SELECT count(DISTINCT payment_method) FROM expenses"); n < 5 {
		t.Errorf("%d payment methods, want variety", n)
	}
	// Ids follow the date of entry, as in the application.
	if n := queryInt(t, st.Path, `SELECT count(*) FROM expenses AS a JOIN expenses AS b ON b.expense_id = a.expense_id + 1
		WHERE b.created_at < date(a.created_at, '-1 day')`); n != 0 {
		t.Errorf("%d expenses entered more than a day before their predecessor", n)
	}
	if err := CheckConsistent(context.Background(), st.Path); err != nil {
		t.Error(err)
	}
}

func TestGenerateDeterministic(t *testing.T) {
	opts := Options{Users: 8, ExpensesPerUser: 200, Seed: 42}
	a := generate(t, opts)
	b := generate(t, opts)
	if da, db := contentDigest(t, a.Path), contentDigest(t, b.Path); da != db {
		t.Errorf("same seed, different contents: %s != %s", da, db)
	}
	opts.Seed++
	c := generate(t, opts)
	if da, dc := contentDigest(t, a.Path), contentDigest(t, c.Path); da == dc {
		t.Error("different seeds, same contents")
	}
}

func TestGenerateRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "finance.db")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Generate(context.Background(), path, Options{})
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Generate over an existing file: %v, want fs.ErrExist", err)
	}
	t.Log(err)
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Errorf("existing file changed to %q", b)
	}

	// A stale WAL would be replayed into the new database.
	path = filepath.Join(dir, "other.db")
	if err := os.WriteFile(path+"-wal", []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(context.Background(), path, Options{}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Generate beside a stale WAL: %v, want fs.ErrExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("database created despite the stale WAL (%v)", err)
	}
}

func TestGenerateTargetBytes(t *testing.T) {
	const target = 12 << 20
	st := generate(t, Options{Users: 5, ExpensesPerUser: 10, TargetBytes: target})
	t.Logf("%d bytes in %v, rows %v", st.Bytes, st.Duration, st.Rows)
	if st.Bytes < target || st.Bytes > target+target/20 {
		t.Errorf("size %d, want just over %d", st.Bytes, target)
	}
	if ratio := float64(st.Rows["expenses"]) / float64(st.Rows["incomes"]); ratio < 12 || ratio > 22 {
		t.Errorf("%d expenses for %d incomes, want about 16 to 1", st.Rows["expenses"], st.Rows["incomes"])
	}
	// The history is spread over the whole period, not piled at one end.
	if n := queryInt(t, st.Path, "SELECT count(DISTINCT substr(expense_date, 1, 7)) FROM expenses"); n < 35 {
		t.Errorf("expenses fall in %d months, want about 36", n)
	}
	if err := CheckConsistent(context.Background(), st.Path); err != nil {
		t.Error(err)
	}
}

func TestGenerateCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	path := filepath.Join(t.TempDir(), "finance.db")
	if _, err := Generate(ctx, path, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate with a cancelled context: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("partial database left behind (%v)", err)
	}
}

func TestRunWriterConsistent(t *testing.T) {
	st := generate(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()

	var (
		wg     sync.WaitGroup
		ws     WriterStats
		runErr error
	)
	wg.Go(func() { ws, runErr = RunWriter(ctx, st.Path, WriterOptions{Seed: 7}) })
	// Checks of the live database each see one committed state.
	checks := 0
	for ctx.Err() == nil {
		if err := CheckConsistent(context.Background(), st.Path); err != nil {
			t.Errorf("check during writes: %v", err)
			break
		}
		checks++
	}
	wg.Wait()
	if runErr != nil {
		t.Fatal(runErr)
	}
	t.Logf("writer: %+v; %d checks while it ran", ws, checks)
	if ws.Commits == 0 || ws.Errors != 0 {
		t.Errorf("writer stats %+v, want commits and no errors", ws)
	}
	if ws.P99CommitLatency <= 0 || ws.P99CommitLatency > ws.MaxCommitLatency {
		t.Errorf("p99 %v, max %v", ws.P99CommitLatency, ws.MaxCommitLatency)
	}
	if err := CheckConsistent(context.Background(), st.Path); err != nil {
		t.Fatal(err)
	}
	if got := queryInt(t, st.Path, "SELECT commits FROM writer_state"); got != ws.Commits {
		t.Errorf("writer_state.commits = %d, writer reports %d", got, ws.Commits)
	}
	if n := queryInt(t, st.Path, "SELECT count(*) FROM deleted_rows"); n == 0 {
		t.Error("writer deleted nothing")
	}
	if got := queryInt(t, st.Path, "SELECT count(*) FROM expenses"); got <= st.Rows["expenses"] {
		t.Errorf("expenses went from %d to %d, want growth", st.Rows["expenses"], got)
	}
}

func TestRunWriterPause(t *testing.T) {
	st := generate(t, Options{Users: 3, ExpensesPerUser: 20})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	ws, err := RunWriter(ctx, st.Path, WriterOptions{Pause: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Commits at 0, 50, ... 250 ms; fewer if the machine is slow.
	if ws.Commits < 1 || ws.Commits > 7 {
		t.Errorf("%d commits in 300ms with 50ms pauses", ws.Commits)
	}
}

func TestRunWriterMissingDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.db")
	if _, err := RunWriter(context.Background(), path, WriterOptions{}); err == nil {
		t.Fatal("RunWriter on a missing file succeeded")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RunWriter created %s", path)
	}
}

func TestCheckConsistentDetectsDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper []string
	}{
		{"writer state sum", []string{"UPDATE writer_state SET expense_pence = expense_pence + 1"}},
		{"writer state count", []string{"UPDATE writer_state SET income_rows = income_rows - 1"}},
		{"row without state", []string{"DELETE FROM expenses WHERE expense_id = 17"}},
		{"missing writer state", []string{"DELETE FROM writer_state"}},
		{"foreign key", []string{
			"UPDATE expenses SET user_id = 999999 WHERE expense_id = 3",
		}},
		{"goal status", []string{
			"DROP TRIGGER savings_goals_status",
			"UPDATE savings_goals SET current_pence = target_pence, status = 'active' WHERE goal_id = 1",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := generate(t, Options{Users: 4, ExpensesPerUser: 50})
			if err := CheckConsistent(context.Background(), st.Path); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			execSQL(t, st.Path, tc.tamper...)
			err := CheckConsistent(context.Background(), st.Path)
			if !errors.Is(err, ErrInconsistent) {
				t.Fatalf("CheckConsistent = %v, want ErrInconsistent", err)
			}
			t.Log(err)
		})
	}

	t.Run("not a database", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "junk.db")
		if err := os.WriteFile(path, slices.Repeat([]byte("not sqlite "), 1000), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := CheckConsistent(context.Background(), path); !errors.Is(err, ErrInconsistent) {
			t.Fatalf("CheckConsistent = %v, want ErrInconsistent", err)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		err := CheckConsistent(context.Background(), filepath.Join(t.TempDir(), "missing.db"))
		if err == nil || errors.Is(err, ErrInconsistent) || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("CheckConsistent = %v, want fs.ErrNotExist", err)
		}
	})
}

func TestLatencyHistogram(t *testing.T) {
	var h latencyHistogram
	if h.quantile(0.99) != 0 {
		t.Error("empty histogram has a p99")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	for range 100_000 {
		d := time.Duration(lognormal(rng, float64(300*time.Microsecond), 1.2))
		h.record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	exact := all[int(0.99*float64(len(all)))-1]
	got := h.quantile(0.99)
	if got < exact || float64(got) > float64(exact)*(1+1.0/histSub) {
		t.Errorf("p99 %v, exact %v", got, exact)
	}
	if h.max != all[len(all)-1] || h.quantile(1) != h.max {
		t.Errorf("max %v / q(1) %v, want %v", h.max, h.quantile(1), all[len(all)-1])
	}
	for _, v := range []uint64{0, 1, 31, 32, 33, 63, 64, 65, 1000, 1 << 40, 1<<63 + 12345} {
		b := histBucket(v)
		if histUpper(b) < v || (b > 0 && histUpper(b-1) >= v) {
			t.Errorf("value %d in bucket %d [%d, %d]", v, b, histUpper(b-1)+1, histUpper(b))
		}
	}
}

func BenchmarkGenerateDefault(b *testing.B) {
	dir := b.TempDir()
	var bytes int64
	for i := range b.N {
		st, err := Generate(context.Background(), filepath.Join(dir, fmt.Sprintf("%d.db", i)), Options{Seed: uint64(i)})
		if err != nil {
			b.Fatal(err)
		}
		bytes += st.Bytes
	}
	b.SetBytes(bytes / int64(b.N))
}

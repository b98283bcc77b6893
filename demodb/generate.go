// Package demodb builds and exercises a realistic SQLite database of the
// personal-finance application that Bulwark protects: users, categories,
// expenses, incomes, budgets and savings goals, with the triggers and views
// the application relies on.
//
// Generate creates a database of a chosen size; RunWriter keeps committing
// to it the way the application does; CheckConsistent tells whether a copy
// (a backup, a restore) holds one committed state of it. The last works
// because every writer transaction also updates the single row of
// writer_state, whose counts and sums of expenses and incomes a torn copy
// would contradict.
package demodb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Defaults used by Generate for zero Options fields.
const (
	DefaultUsers           = 50
	DefaultExpensesPerUser = 600
)

const (
	// pageSize is the database page size Generate uses.
	pageSize = 4096
	// rowsPerCommit bounds a generation transaction: large enough that
	// commits cost nothing, small enough to notice cancellation promptly.
	rowsPerCommit = 50_000
	// minRowsPerCheck bounds how often the file size is checked while
	// growing towards Options.TargetBytes.
	minRowsPerCheck = 512
	// incomeOdds is one income for every incomeOdds-1 expenses, roughly a
	// monthly salary and a few extras against daily spending.
	incomeOdds = 17
	// historyDays is how far back generated activity goes.
	historyDays = 3 * 365
)

// historyEnd is the (exclusive) end of generated activity. It is fixed, not
// time.Now, so that the contents depend on the seed alone.
var historyEnd = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// Options sizes a generated database. Zero Users and ExpensesPerUser take
// the Default* values.
type Options struct {
	// Users is the number of users.
	Users int
	// ExpensesPerUser is the average number of expenses per user; incomes
	// are added in proportion (about one for every 16 expenses).
	ExpensesPerUser int
	// Seed selects the contents: the same Options give the same rows.
	Seed uint64
	// TargetBytes, when positive, keeps adding expenses and incomes past
	// Users*ExpensesPerUser until the database file is at least this large.
	TargetBytes int64
}

// Stats describes a generated database.
type Stats struct {
	Path     string           `json:"path"`
	Bytes    int64            `json:"bytes"`
	Rows     map[string]int64 `json:"rows"` // row count per application table
	Duration time.Duration    `json:"duration_ns"`
}

// Generate creates a new database at path and fills it as opts says. It
// never overwrites: if path (or a leftover -wal or -journal file that SQLite
// would replay into it) exists, it returns an error wrapping fs.ErrExist.
// The result is in WAL mode, with 4096-byte pages, checkpointed and synced.
// On failure the partial file is removed.
func Generate(ctx context.Context, path string, opts Options) (_ Stats, err error) {
	start := time.Now()
	if opts.Users == 0 {
		opts.Users = DefaultUsers
	}
	if opts.ExpensesPerUser == 0 {
		opts.ExpensesPerUser = DefaultExpensesPerUser
	}
	if opts.Users < 0 || opts.ExpensesPerUser < 0 || opts.TargetBytes < 0 {
		return Stats{}, fmt.Errorf("generate %s: negative option in %+v", path, opts)
	}

	if err := createExclusive(path); err != nil {
		return Stats{}, fmt.Errorf("generate: %w", err)
	}
	defer func() {
		if err != nil {
			// The file is ours (created exclusively above); a half-built
			// database is worse than none.
			for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
				_ = os.Remove(p)
			}
		}
	}()

	db, conn, err := openConn(ctx, path, "rw")
	if err != nil {
		return Stats{}, fmt.Errorf("generate: %w", err)
	}
	g := newGenerator(opts, conn)
	err = g.run(ctx)
	if cerr := closeConn(db, conn); err == nil && cerr != nil {
		err = fmt.Errorf("close database: %w", cerr)
	}
	if err == nil {
		err = syncFile(path)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("generate %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Stats{}, fmt.Errorf("generate: %w", err)
	}
	return Stats{Path: path, Bytes: fi.Size(), Rows: g.rows, Duration: time.Since(start)}, nil
}

// createExclusive creates an empty file at path, failing if it or a journal
// that SQLite would apply to it already exists. SQLite treats an empty file
// as a new database.
func createExclusive(path string) error {
	for _, p := range []string{path + "-wal", path + "-journal"} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("refuse to create %s beside existing %s: %w", path, p, fs.ErrExist)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("refuse to overwrite existing %s: %w", path, fs.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	return nil
}

// syncFile flushes path, and its directory entry, to stable storage:
// generation runs with synchronous=OFF, so nothing has been synced yet.
func syncFile(path string) error {
	for _, p := range []string{path, filepath.Dir(path)} {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("sync %s: %w", p, err)
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("sync %s: %w", p, err)
		}
	}
	return nil
}

// catRef is an expense category a user can spend in.
type catRef struct {
	id      int64
	profile *expenseCategory
}

// generator holds the state of one Generate call. Its memory is bounded by
// the number of users and categories, never by the number of rows.
type generator struct {
	opts Options
	conn *sql.Conn
	rng  *rand.Rand
	days []string // YYYY-MM-DD for each day of history, oldest first

	builtinExpense   []catRef
	builtinCumWeight []int
	incomeCatID      []int64 // parallel to incomeSources
	incomeCumWeight  []int
	custom           [][]catRef // per user (index user_id-1)

	insExpense, insIncome *batchInsert

	rows          map[string]int64
	expensePence  int64
	incomePence   int64
	expenseTarget int64

	// Progress of the activity stream, see today.
	streamed        int64 // expenses and incomes inserted
	streamedAtCheck int64 // streamed when the size was last read
	sizeAtCheck     int64 // database size then
	bytesPerRow     int64 // average so far
	lastDay         int
}

func newGenerator(opts Options, conn *sql.Conn) *generator {
	g := &generator{
		opts: opts,
		conn: conn,
		// Two words of PCG state from one seed; the constant only keeps
		// the second word from mirroring the first.
		rng:           rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		rows:          map[string]int64{},
		expenseTarget: int64(opts.Users) * int64(opts.ExpensesPerUser),
		// A measured average, good enough until the first size check.
		bytesPerRow: 128,
	}
	first := historyEnd.AddDate(0, 0, -historyDays)
	for d := range historyDays {
		g.days = append(g.days, first.AddDate(0, 0, d).Format(time.DateOnly))
	}
	return g
}

func (g *generator) exec(query string, args ...any) error {
	_, err := g.conn.ExecContext(context.Background(), query, args...)
	return err
}

func (g *generator) run(ctx context.Context) error {
	// Speed over safety while building: nothing is worth keeping if the
	// process dies halfway, and Generate removes the file on failure.
	// journal_mode=OFF writes each page once, where WAL would write it to
	// the log and again at checkpoint.
	for _, p := range []string{
		"PRAGMA page_size = " + strconv.Itoa(pageSize),
		"PRAGMA locking_mode = EXCLUSIVE",
		"PRAGMA journal_mode = OFF",
		"PRAGMA synchronous = OFF",
		"PRAGMA cache_size = -65536", // 64 MiB: the pages being written, and then some
		"PRAGMA temp_store = MEMORY",
		"PRAGMA user_version = " + strconv.Itoa(schemaVersion),
	} {
		if err := g.exec(p); err != nil {
			return fmt.Errorf("configure: %w", err)
		}
	}
	if err := g.exec("BEGIN"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := g.exec(schemaSQL); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	for _, step := range []struct {
		name string
		fn   func() error
	}{
		{"insert categories", g.insertBuiltinCategories},
		{"insert users", g.insertUsers},
		{"insert budgets", g.insertBudgets},
		{"insert savings goals", g.insertSavingsGoals},
	} {
		if err := step.fn(); err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
	}
	if err := g.exec("COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}

	if err := g.insertActivity(ctx); err != nil {
		return err
	}

	if err := g.exec(`INSERT INTO writer_state
		(id, commits, expense_rows, expense_pence, income_rows, income_pence, modified_at)
		VALUES (1, 0, ?, ?, ?, ?, ?)`,
		g.rows["expenses"], g.expensePence, g.rows["incomes"], g.incomePence, g.days[len(g.days)-1]+" 23:59:59"); err != nil {
		return fmt.Errorf("insert writer state: %w", err)
	}

	// Leave exclusive locking before entering WAL: a connection that enters
	// WAL in exclusive mode keeps the WAL index in private memory and stays
	// exclusive until it leaves WAL. Leaving takes effect at the next
	// access, hence the query.
	if err := g.exec("PRAGMA locking_mode = NORMAL"); err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	if err := g.exec("SELECT count(*) FROM users"); err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	var mode string
	if err := g.conn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("switch to WAL: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("switch to WAL: journal_mode is %q", mode)
	}
	for _, p := range []string{"PRAGMA synchronous = NORMAL", "PRAGMA wal_checkpoint(TRUNCATE)"} {
		if err := g.exec(p); err != nil {
			return fmt.Errorf("finish: %w", err)
		}
	}
	return nil
}

func (g *generator) insertBuiltinCategories() error {
	ins, err := g.conn.PrepareContext(context.Background(),
		`INSERT INTO categories (user_id, name, kind, icon, created_at, modified_at) VALUES (NULL, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	// Built in when the application was installed, before any user.
	created := historyEnd.AddDate(0, 0, -historyDays-400).Format(time.DateTime)
	sum := 0
	for i := range expenseCategories {
		c := &expenseCategories[i]
		res, err := ins.Exec(c.name, "expense", c.icon, created, created)
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId() // the driver always provides it
		g.builtinExpense = append(g.builtinExpense, catRef{id, c})
		sum += c.weight
		g.builtinCumWeight = append(g.builtinCumWeight, sum)
	}
	sum = 0
	for _, s := range incomeSources {
		res, err := ins.Exec(s.category, "income", nil, created, created)
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		g.incomeCatID = append(g.incomeCatID, id)
		sum += s.weight
		g.incomeCumWeight = append(g.incomeCumWeight, sum)
	}
	g.rows["categories"] += int64(len(expenseCategories) + len(incomeSources))
	return nil
}

func (g *generator) insertUsers() error {
	insUser, err := g.conn.PrepareContext(context.Background(),
		`INSERT INTO users (user_id, username, email, password_hash, full_name, currency, created_at, modified_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer insUser.Close()
	insCat, err := g.conn.PrepareContext(context.Background(),
		`INSERT INTO categories (user_id, name, kind, icon, created_at, modified_at) VALUES (?, ?, 'expense', NULL, ?, ?)`)
	if err != nil {
		return err
	}
	defer insCat.Close()

	g.custom = make([][]catRef, g.opts.Users)
	for u := 1; u <= g.opts.Users; u++ {
		first := pick(g.rng, firstNames)
		last := pick(g.rng, lastNames)
		var username string
		switch g.rng.IntN(3) {
		case 0:
			username = fold(first) + "." + fold(last)
		case 1:
			username = fold(first) + "_" + fold(last)[:1]
		default:
			username = fold(first)[:1] + fold(last)
		}
		// The id suffix keeps usernames and emails unique without a set.
		username += strconv.Itoa(u)
		email := username + "@" + pick(g.rng, emailDomains)
		// Users (and their own categories) predate the activity history.
		created := historyEnd.AddDate(0, 0, -historyDays-1-g.rng.IntN(365)).
			Add(time.Duration(g.rng.IntN(86400)) * time.Second).Format(time.DateTime)
		modified := created
		if g.rng.IntN(4) == 0 {
			modified = g.stamp(g.rng.IntN(historyDays))
		}
		var fullName any = first + " " + last
		if g.rng.IntN(20) == 0 {
			fullName = nil
		}
		if _, err := insUser.Exec(u, username, email, g.passwordHash(), fullName, pick(g.rng, currencies), created, modified); err != nil {
			return err
		}
		g.rows["users"]++

		// A few users keep their own categories too.
		for _, i := range g.rng.Perm(len(customCategoryNames))[:g.rng.IntN(4)] {
			res, err := insCat.Exec(u, customCategoryNames[i], created, created)
			if err != nil {
				return err
			}
			id, _ := res.LastInsertId()
			g.custom[u-1] = append(g.custom[u-1], catRef{id, &genericExpense})
			g.rows["categories"]++
		}
	}
	return nil
}

func (g *generator) insertBudgets() error {
	ins, err := g.conn.PrepareContext(context.Background(),
		`INSERT INTO budgets (user_id, category_id, amount_limit_pence, period, start_date, end_date, created_at, modified_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	for u := 1; u <= g.opts.Users; u++ {
		for _, i := range g.rng.Perm(len(g.builtinExpense))[:2+g.rng.IntN(4)] {
			c := g.builtinExpense[i]
			period, perMonth := "monthly", 1.0
			if c.profile.weight >= 20 && g.rng.IntN(2) == 0 {
				period, perMonth = "weekly", 12.0/52
			}
			// About a month's typical spend in the category, rounded to £5.
			limit := c.profile.medianPence * float64(c.profile.weight) * 1.5 * perMonth * (0.7 + 0.6*g.rng.Float64())
			limitPence := max(500, int64(math.Round(limit/500))*500)
			startDay := g.rng.IntN(historyDays - 60)
			var end any
			if g.rng.IntN(3) == 0 {
				end = g.days[startDay+30+g.rng.IntN(historyDays-startDay-30)]
			}
			stamp := g.stamp(startDay)
			if _, err := ins.Exec(u, c.id, limitPence, period, g.days[startDay], end, stamp, stamp); err != nil {
				return err
			}
			g.rows["budgets"]++
		}
	}
	return nil
}

func (g *generator) insertSavingsGoals() error {
	ins, err := g.conn.PrepareContext(context.Background(),
		`INSERT INTO savings_goals (user_id, name, target_pence, current_pence, target_date, status, created_at, modified_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	for u := 1; u <= g.opts.Users; u++ {
		for _, i := range g.rng.Perm(len(goalNames))[:1+g.rng.IntN(4)] {
			target := int64(math.Round(lognormal(g.rng, 300_000, 1.0)/5000)) * 5000
			target = max(target, 20_000)
			current := int64(float64(target) * 1.2 * g.rng.Float64())
			status := "active"
			switch {
			case g.rng.IntN(10) == 0:
				status = pick(g.rng, []string{"paused", "cancelled"})
			case current >= target:
				status = "achieved"
			}
			createdDay := g.rng.IntN(historyDays - 1)
			targetDate := historyEnd.AddDate(0, 0, g.rng.IntN(900)-200).Format(time.DateOnly)
			if _, err := ins.Exec(u, goalNames[i], target, current, targetDate, status,
				g.stamp(createdDay), g.stamp(createdDay+g.rng.IntN(historyDays-createdDay))); err != nil {
				return err
			}
			g.rows["savings_goals"]++
		}
	}
	return nil
}

// insertActivity streams expenses and incomes in transactions of up to
// rowsPerCommit rows until both the row and the size targets are met.
//
// Rows go in the order the application would have written them: the
// simulated date advances with the stream's progress towards its targets.
// Besides looking like real data (ids grow with time), that makes every
// index insert land at the end of its user's or category's range, so the
// pages being written stay few and cached however large the file grows.
func (g *generator) insertActivity(ctx context.Context) error {
	var err error
	g.insExpense, err = newBatchInsert(g.conn,
		`INSERT INTO expenses (user_id, category_id, amount_pence, expense_date, description, payment_method, created_at, modified_at) VALUES `, 8)
	if err != nil {
		return fmt.Errorf("prepare expense insert: %w", err)
	}
	defer g.insExpense.close()
	g.insIncome, err = newBatchInsert(g.conn,
		`INSERT INTO incomes (user_id, category_id, source, amount_pence, income_date, frequency, description, created_at, modified_at) VALUES `, 9)
	if err != nil {
		return fmt.Errorf("prepare income insert: %w", err)
	}
	defer g.insIncome.close()

	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := int64(rowsPerCommit)
		if left := g.expenseTarget - g.rows["expenses"]; left > 0 {
			batch = min(batch, left+left/(incomeOdds-1)+1)
		} else if g.opts.TargetBytes > g.sizeAtCheck {
			// Shrink batches near the target so as not to overshoot it.
			batch = min(batch, max(minRowsPerCheck, (g.opts.TargetBytes-g.sizeAtCheck)/g.bytesPerRow))
		} else {
			return nil
		}

		if err := g.exec("BEGIN"); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		for range batch {
			if g.rng.IntN(incomeOdds) == 0 {
				err = g.insertIncome()
			} else {
				err = g.insertExpense()
			}
			if err != nil {
				return err
			}
			g.streamed++
			if g.opts.TargetBytes <= 0 && g.rows["expenses"] >= g.expenseTarget {
				break
			}
		}
		if err := g.insExpense.flush(); err != nil {
			return fmt.Errorf("insert expenses: %w", err)
		}
		if err := g.insIncome.flush(); err != nil {
			return fmt.Errorf("insert incomes: %w", err)
		}
		if err := g.exec("COMMIT"); err != nil {
			return fmt.Errorf("commit: %w", err)
		}

		var pages int64
		if err := g.conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
			return fmt.Errorf("read page count: %w", err)
		}
		g.sizeAtCheck, g.streamedAtCheck = pages*pageSize, g.streamed
		g.bytesPerRow = max(1, g.sizeAtCheck/g.streamed)
	}
}

// today returns the simulated day on which the next row is entered: the
// fraction of history matching the stream's progress towards whichever
// target it is furthest from. It never goes back.
func (g *generator) today() int {
	progress := float64(g.rows["expenses"]) / float64(g.expenseTarget)
	if g.opts.TargetBytes > 0 {
		size := g.sizeAtCheck + (g.streamed-g.streamedAtCheck)*g.bytesPerRow
		progress = min(progress, float64(size)/float64(g.opts.TargetBytes))
	}
	g.lastDay = min(max(int(progress*historyDays), g.lastDay), historyDays-1)
	return g.lastDay
}

// batchRows is how many rows one INSERT statement carries.
const batchRows = 32

// batchInsert inserts rows into one table batchRows at a time. Executing one
// statement per batch rather than per row removes most of the per-call cost
// of database/sql and the driver, which dominates generation time.
type batchInsert struct {
	batch, single *sql.Stmt
	width         int   // values per row
	args          []any // pending rows, at most batchRows
}

// newBatchInsert prepares prefix ("INSERT INTO t (a, b) VALUES ") for one
// row and for batchRows rows of width values each.
func newBatchInsert(conn *sql.Conn, prefix string, width int) (*batchInsert, error) {
	row := "(" + strings.Repeat("?, ", width-1) + "?)"
	single, err := conn.PrepareContext(context.Background(), prefix+row)
	if err != nil {
		return nil, err
	}
	batch, err := conn.PrepareContext(context.Background(), prefix+strings.Repeat(row+", ", batchRows-1)+row)
	if err != nil {
		_ = single.Close() // the prepare error is the one to report
		return nil, err
	}
	return &batchInsert{batch: batch, single: single, width: width, args: make([]any, 0, width*batchRows)}, nil
}

// add queues one row of b.width values, inserting the batch once it is full.
func (b *batchInsert) add(row ...any) error {
	b.args = append(b.args, row...)
	if len(b.args) < cap(b.args) {
		return nil
	}
	_, err := b.batch.Exec(b.args...)
	b.args = b.args[:0]
	return err
}

// flush inserts the queued rows.
func (b *batchInsert) flush() error {
	for i := 0; i < len(b.args); i += b.width {
		if _, err := b.single.Exec(b.args[i : i+b.width]...); err != nil {
			return err
		}
	}
	b.args = b.args[:0]
	return nil
}

func (b *batchInsert) close() {
	// Statements close with their connection anyway; an error here would
	// say nothing about the database.
	_ = b.batch.Close()
	_ = b.single.Close()
}

func (g *generator) size() (int64, error) {
	var pages int64
	if err := g.conn.QueryRowContext(context.Background(), "PRAGMA page_count").Scan(&pages); err != nil {
		return 0, fmt.Errorf("read page count: %w", err)
	}
	return pages * pageSize, nil
}

func (g *generator) insertExpense() error {
	// Some users are far more active than others.
	u := 1 + int(float64(g.opts.Users)*math.Pow(g.rng.Float64(), 1.4))
	c := g.pickExpenseCategory(u)
	p := c.profile
	amount := max(1, int64(math.Round(min(lognormal(g.rng, p.medianPence, p.sigma), 80*p.medianPence))))
	day := g.today()
	spent := day
	if g.rng.IntN(6) == 0 {
		// Entered a few days after the purchase.
		spent = max(0, day-1-g.rng.IntN(6))
	}
	var description any = pick(g.rng, p.merchants)
	switch r := g.rng.IntN(20); {
	case r == 0:
		description = nil
	case r < 10:
		if note := pick(g.rng, p.notes); note != "" {
			description = description.(string) + " – " + note
		}
	}
	created, modified := g.entryStamps(day)
	if err := g.insExpense.add(u, c.id, amount, g.days[spent], description, pick(g.rng, p.payments), created, modified); err != nil {
		return fmt.Errorf("insert expenses: %w", err)
	}
	g.rows["expenses"]++
	g.expensePence += amount
	return nil
}

func (g *generator) insertIncome() error {
	u := 1 + int(float64(g.opts.Users)*math.Pow(g.rng.Float64(), 1.4))
	k := pickWeighted(g.rng, g.incomeCumWeight)
	s := &incomeSources[k]
	amount := max(1, int64(math.Round(lognormal(g.rng, s.medianPence, s.sigma))))
	day := g.today()
	date := g.days[max(0, day-g.rng.IntN(3))]
	if s.payday > 0 {
		// The latest payday on or before the day it is entered.
		t := historyEnd.AddDate(0, 0, day-historyDays)
		if t.Day() < s.payday {
			t = t.AddDate(0, 0, -t.Day())
		}
		date = time.Date(t.Year(), t.Month(), s.payday, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	}
	var description any
	if g.rng.IntN(3) > 0 {
		description = s.category + " " + date[:7]
	}
	created, modified := g.entryStamps(day)
	if err := g.insIncome.add(u, g.incomeCatID[k], pick(g.rng, s.source), amount, date, s.frequency, description, created, modified); err != nil {
		return fmt.Errorf("insert incomes: %w", err)
	}
	g.rows["incomes"]++
	g.incomePence += amount
	return nil
}

func (g *generator) pickExpenseCategory(user int) catRef {
	if own := g.custom[user-1]; len(own) > 0 && g.rng.IntN(12) == 0 {
		return pick(g.rng, own)
	}
	return g.builtinExpense[pickWeighted(g.rng, g.builtinCumWeight)]
}

// entryStamps returns created_at and modified_at for a record entered on
// day; some records are edited later.
func (g *generator) entryStamps(day int) (created, modified string) {
	created = g.stamp(day)
	modified = created
	if g.rng.IntN(12) == 0 {
		modified = g.stamp(day + g.rng.IntN(30))
	}
	return created, modified
}

// stamp returns a timestamp on day (clamped to history) at a random time,
// in SQLite's datetime() format so that it compares with the triggers' values.
func (g *generator) stamp(day int) string {
	day = min(max(day, 0), historyDays-1)
	s := g.rng.IntN(86400)
	b := make([]byte, 0, 19)
	b = append(b, g.days[day]...)
	b = append(b, ' ')
	b = append2(b, s/3600)
	b = append(b, ':')
	b = append2(b, s/60%60)
	b = append(b, ':')
	b = append2(b, s%60)
	return string(b)
}

// passwordHash returns a hash in the format Werkzeug (Flask) stores.
func (g *generator) passwordHash() string {
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	const hex = "0123456789abcdef"
	b := []byte("pbkdf2:sha256:600000$")
	for range 16 {
		b = append(b, alnum[g.rng.IntN(len(alnum))])
	}
	b = append(b, '$')
	for range 64 {
		b = append(b, hex[g.rng.IntN(len(hex))])
	}
	return string(b)
}

func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

func pick[T any](rng *rand.Rand, s []T) T {
	return s[rng.IntN(len(s))]
}

// pickWeighted returns an index into cum, a running sum of weights.
func pickWeighted(rng *rand.Rand, cum []int) int {
	r := rng.IntN(cum[len(cum)-1])
	for i, c := range cum {
		if r < c {
			return i
		}
	}
	return len(cum) - 1
}

// lognormal draws from a log-normal distribution with the given median:
// mostly modest values with a long tail of large ones, like real spending.
func lognormal(rng *rand.Rand, median, sigma float64) float64 {
	return median * math.Exp(sigma*rng.NormFloat64())
}

// fold lower-cases s and reduces it to ASCII letters for usernames.
func fold(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r < unicode.MaxASCII && unicode.IsLetter(r):
			b.WriteRune(r)
		case asciiFold[r] != "":
			b.WriteString(asciiFold[r])
		}
	}
	if b.Len() == 0 {
		return "user"
	}
	return b.String()
}

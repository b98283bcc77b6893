package demodb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// WriterOptions configures RunWriter.
type WriterOptions struct {
	// Seed selects the sequence of changes.
	Seed uint64
	// Pause is slept between commits; zero commits as fast as possible.
	Pause time.Duration
}

// WriterStats summarises a RunWriter session. A commit's latency runs from
// BEGIN IMMEDIATE to COMMIT returning, so it includes any wait for the write
// lock, which is where a backup that blocks writers shows up.
type WriterStats struct {
	Commits          int64         `json:"commits"`
	MaxCommitLatency time.Duration `json:"max_commit_latency_ns"`
	// P99CommitLatency is read from a histogram and is within about 3% of
	// the exact value.
	P99CommitLatency time.Duration `json:"p99_commit_latency_ns"`
	// Errors counts transactions abandoned because the database stayed
	// locked for longer than the 5 s busy timeout.
	Errors int64 `json:"errors"`
}

const (
	writerBusyTimeout = 5000 // ms
	incomeEvery       = 7    // commits
	deleteEvery       = 10   // commits
	goalEvery         = 13   // commits
	incomeDeleteEvery = 50   // commits
)

// RunWriter changes the database at path the way the finance application
// does, one transaction after another, until ctx is done; it then returns
// the session's statistics and a nil error. Each transaction, under BEGIN
// IMMEDIATE, inserts an expense and corrects the amount of an existing one;
// some also delete an expense or income, record an income or add to a
// savings goal. Every transaction updates writer_state to match, so each
// committed state passes CheckConsistent.
//
// RunWriter opens its own connection (WAL, busy_timeout 5000, synchronous
// NORMAL, foreign keys on) and may run in its own process beside a backup
// (see cmd/finance-writer). A transaction that times out waiting for the
// lock is rolled back and counted in WriterStats.Errors; any other failure
// ends RunWriter with an error, along with the statistics so far.
func RunWriter(ctx context.Context, path string, opts WriterOptions) (WriterStats, error) {
	db, conn, err := openConn(ctx, path, "rw",
		fmt.Sprintf("busy_timeout(%d)", writerBusyTimeout),
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"foreign_keys(1)",
	)
	if err != nil {
		return WriterStats{}, fmt.Errorf("run writer: %w", err)
	}
	w := &writer{conn: conn, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x6a09e667f3bcc909))}
	err = w.run(ctx, opts.Pause)
	if cerr := closeConn(db, conn); err == nil && cerr != nil {
		err = fmt.Errorf("close database: %w", cerr)
	}
	st := WriterStats{
		Commits:          w.hist.n,
		MaxCommitLatency: w.hist.max,
		P99CommitLatency: w.hist.quantile(0.99),
		Errors:           w.busyErrors,
	}
	if err != nil {
		return st, fmt.Errorf("run writer on %s: %w", path, err)
	}
	return st, nil
}

// writer is one RunWriter session. Its memory is bounded by the number of
// users, categories and goals, never by the number of commits.
type writer struct {
	conn *sql.Conn
	rng  *rand.Rand

	users         []int64
	builtin       []catRef
	builtinCum    []int
	custom        map[int64][]catRef
	incomeCats    []int64 // parallel to incomeSources, 0 when missing
	incomeCum     []int
	goals         []int64
	stmts         map[string]*sql.Stmt
	commitCount   int64 // attempts, to schedule the occasional operations
	lastExpenseID int64
	busyErrors    int64
	hist          latencyHistogram
}

// delta is what one transaction changes in writer_state.
type delta struct {
	expenseRows, expensePence, incomeRows, incomePence int64
}

var writerStatements = map[string]string{
	"insertExpense": `INSERT INTO expenses (user_id, category_id, amount_pence, expense_date, description, payment_method, created_at, modified_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
	"insertIncome": `INSERT INTO incomes (user_id, category_id, source, amount_pence, income_date, frequency, description, created_at, modified_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	"findExpense":   `SELECT expense_id, amount_pence FROM expenses WHERE expense_id >= ? ORDER BY expense_id LIMIT 1`,
	"firstExpense":  `SELECT expense_id, amount_pence FROM expenses ORDER BY expense_id LIMIT 1`,
	"updateExpense": `UPDATE expenses SET amount_pence = ?, modified_at = ? WHERE expense_id = ?`,
	"deleteExpense": `DELETE FROM expenses WHERE expense_id = ?`,
	"findIncome":    `SELECT income_id, amount_pence FROM incomes WHERE income_id >= ? ORDER BY income_id LIMIT 1`,
	"maxIncome":     `SELECT max(income_id) FROM incomes`,
	"deleteIncome":  `DELETE FROM incomes WHERE income_id = ?`,
	"contribute":    `UPDATE savings_goals SET current_pence = current_pence + ?, modified_at = ? WHERE goal_id = ?`,
	"updateState": `UPDATE writer_state SET commits = commits + 1,
		expense_rows = expense_rows + ?, expense_pence = expense_pence + ?,
		income_rows = income_rows + ?, income_pence = income_pence + ?, modified_at = ?
		WHERE id = 1`,
}

func (w *writer) run(ctx context.Context, pause time.Duration) error {
	if err := w.load(ctx); err != nil {
		return err
	}
	w.stmts = map[string]*sql.Stmt{}
	defer func() {
		for _, st := range w.stmts {
			_ = st.Close() // closing the connection finalizes them anyway
		}
	}()
	for name, q := range writerStatements {
		st, err := w.conn.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %s: %w", name, err)
		}
		w.stmts[name] = st
	}

	var timer *time.Timer
	for ctx.Err() == nil {
		w.commitCount++
		start := time.Now()
		err := w.transaction(ctx)
		switch {
		case err == nil:
			w.hist.record(time.Since(start))
		case ctx.Err() != nil:
			// Stopped while waiting for the lock: the normal way out.
			return nil
		case isBusy(err):
			w.busyErrors++
		default:
			return fmt.Errorf("transaction %d: %w", w.commitCount, err)
		}
		if pause > 0 {
			if timer == nil {
				timer = time.NewTimer(pause)
			} else {
				timer.Reset(pause)
			}
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
		}
	}
	return nil
}

// transaction runs and commits one transaction, or rolls it back.
func (w *writer) transaction(ctx context.Context) (err error) {
	// Only the wait for the write lock watches ctx: once the transaction
	// holds the lock it is short, and is better finished than interrupted.
	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	bg := context.WithoutCancel(ctx)
	defer func() {
		if err != nil {
			// The transaction may already be gone (SQLite rolls back on
			// some errors); the original error is the one to report.
			_, _ = w.conn.ExecContext(bg, "ROLLBACK")
		}
	}()
	now := time.Now().UTC()
	stamp := now.Format(time.DateTime)
	var d delta
	if err := w.insertExpense(now, stamp, &d); err != nil {
		return err
	}
	if err := w.correctExpense(stamp, &d); err != nil {
		return err
	}
	if w.commitCount%deleteEvery == 0 {
		if err := w.deleteExpense(&d); err != nil {
			return err
		}
	}
	if w.commitCount%incomeEvery == 0 {
		if err := w.insertIncome(now, stamp, &d); err != nil {
			return err
		}
	}
	if w.commitCount%incomeDeleteEvery == 0 {
		if err := w.deleteIncome(&d); err != nil {
			return err
		}
	}
	if w.commitCount%goalEvery == 0 && len(w.goals) > 0 {
		if _, err := w.stmts["contribute"].Exec(1000*(1+w.rng.Int64N(20)), stamp, pick(w.rng, w.goals)); err != nil {
			return fmt.Errorf("contribute to goal: %w", err)
		}
	}
	res, err := w.stmts["updateState"].Exec(d.expenseRows, d.expensePence, d.incomeRows, d.incomePence, stamp)
	if err != nil {
		return fmt.Errorf("update writer state: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("update writer state: %d rows updated (%v)", n, err)
	}
	if _, err := w.conn.ExecContext(bg, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (w *writer) insertExpense(now time.Time, stamp string, d *delta) error {
	u := pick(w.rng, w.users)
	c := w.pickCategory(u)
	p := c.profile
	amount := max(1, int64(math.Round(min(lognormal(w.rng, p.medianPence, p.sigma), 80*p.medianPence))))
	description := pick(w.rng, p.merchants)
	if note := pick(w.rng, p.notes); note != "" && w.rng.IntN(2) == 0 {
		description += " – " + note
	}
	date := now.AddDate(0, 0, -w.rng.IntN(3)).Format(time.DateOnly)
	res, err := w.stmts["insertExpense"].Exec(u, c.id, amount, date, description, pick(w.rng, p.payments), stamp, stamp)
	if err != nil {
		return fmt.Errorf("insert expense: %w", err)
	}
	if w.lastExpenseID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("insert expense: %w", err)
	}
	d.expenseRows++
	d.expensePence += amount
	return nil
}

// correctExpense changes the amount of a random existing expense, as a user
// fixing a typo would.
func (w *writer) correctExpense(stamp string, d *delta) error {
	id, old, err := w.randomExpense()
	if err != nil || id == 0 {
		return err
	}
	amount := max(1, old+w.rng.Int64N(old+1)-old/2)
	if _, err := w.stmts["updateExpense"].Exec(amount, stamp, id); err != nil {
		return fmt.Errorf("update expense %d: %w", id, err)
	}
	d.expensePence += amount - old
	return nil
}

func (w *writer) deleteExpense(d *delta) error {
	id, old, err := w.randomExpense()
	if err != nil || id == 0 {
		return err
	}
	if _, err := w.stmts["deleteExpense"].Exec(id); err != nil {
		return fmt.Errorf("delete expense %d: %w", id, err)
	}
	d.expenseRows--
	d.expensePence -= old
	return nil
}

// randomExpense returns the id and amount of an expense chosen at random,
// or a zero id if there is none.
func (w *writer) randomExpense() (id, amount int64, err error) {
	// The expense inserted earlier in the transaction has the largest id.
	err = w.stmts["findExpense"].QueryRow(1+w.rng.Int64N(max(1, w.lastExpenseID))).Scan(&id, &amount)
	if errors.Is(err, sql.ErrNoRows) {
		err = w.stmts["firstExpense"].QueryRow().Scan(&id, &amount)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("pick expense: %w", err)
	}
	return id, amount, nil
}

func (w *writer) insertIncome(now time.Time, stamp string, d *delta) error {
	k := pickWeighted(w.rng, w.incomeCum)
	s := &incomeSources[k]
	amount := max(1, int64(math.Round(lognormal(w.rng, s.medianPence, s.sigma))))
	var category any
	if w.incomeCats[k] != 0 {
		category = w.incomeCats[k]
	}
	date := now.Format(time.DateOnly)
	if _, err := w.stmts["insertIncome"].Exec(pick(w.rng, w.users), category, pick(w.rng, s.source), amount, date,
		s.frequency, s.category+" "+date[:7], stamp, stamp); err != nil {
		return fmt.Errorf("insert income: %w", err)
	}
	d.incomeRows++
	d.incomePence += amount
	return nil
}

func (w *writer) deleteIncome(d *delta) error {
	var maxID sql.NullInt64
	if err := w.stmts["maxIncome"].QueryRow().Scan(&maxID); err != nil {
		return fmt.Errorf("read last income id: %w", err)
	}
	if !maxID.Valid {
		return nil
	}
	var id, amount int64
	if err := w.stmts["findIncome"].QueryRow(1+w.rng.Int64N(maxID.Int64)).Scan(&id, &amount); err != nil {
		return fmt.Errorf("pick income: %w", err)
	}
	if _, err := w.stmts["deleteIncome"].Exec(id); err != nil {
		return fmt.Errorf("delete income %d: %w", id, err)
	}
	d.incomeRows--
	d.incomePence -= amount
	return nil
}

func (w *writer) pickCategory(user int64) catRef {
	if own := w.custom[user]; len(own) > 0 && w.rng.IntN(12) == 0 {
		return pick(w.rng, own)
	}
	return w.builtin[pickWeighted(w.rng, w.builtinCum)]
}

// load reads the reference data the writer picks from and makes sure
// writer_state exists, creating it from the tables if need be.
func (w *writer) load(ctx context.Context) error {
	rows, err := w.conn.QueryContext(ctx, "SELECT user_id FROM users ORDER BY user_id")
	if err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("read users: %w", err)
		}
		w.users = append(w.users, id)
	}
	if err := closeRows(rows); err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	if len(w.users) == 0 {
		return errors.New("read users: no users to write for")
	}

	profiles := map[string]*expenseCategory{}
	for i := range expenseCategories {
		profiles[expenseCategories[i].name] = &expenseCategories[i]
	}
	incomeIndex := map[string]int{}
	for i, s := range incomeSources {
		incomeIndex[s.category] = i
	}
	w.custom = map[int64][]catRef{}
	w.incomeCats = make([]int64, len(incomeSources))
	rows, err = w.conn.QueryContext(ctx, "SELECT category_id, user_id, name, kind FROM categories ORDER BY category_id")
	if err != nil {
		return fmt.Errorf("read categories: %w", err)
	}
	sum := 0
	for rows.Next() {
		var (
			id         int64
			user       sql.NullInt64
			name, kind string
		)
		if err := rows.Scan(&id, &user, &name, &kind); err != nil {
			rows.Close()
			return fmt.Errorf("read categories: %w", err)
		}
		switch {
		case kind == "income":
			if i, ok := incomeIndex[name]; ok && !user.Valid {
				w.incomeCats[i] = id
			}
		case user.Valid:
			w.custom[user.Int64] = append(w.custom[user.Int64], catRef{id, &genericExpense})
		default:
			p := profiles[name]
			if p == nil {
				p = &genericExpense
			}
			w.builtin = append(w.builtin, catRef{id, p})
			sum += p.weight
			w.builtinCum = append(w.builtinCum, sum)
		}
	}
	if err := closeRows(rows); err != nil {
		return fmt.Errorf("read categories: %w", err)
	}
	if len(w.builtin) == 0 {
		// Users without a category of their own could not spend.
		return errors.New("read categories: no shared expense categories")
	}
	sum = 0
	for _, s := range incomeSources {
		sum += s.weight
		w.incomeCum = append(w.incomeCum, sum)
	}

	rows, err = w.conn.QueryContext(ctx, "SELECT goal_id FROM savings_goals ORDER BY goal_id")
	if err != nil {
		return fmt.Errorf("read savings goals: %w", err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("read savings goals: %w", err)
		}
		w.goals = append(w.goals, id)
	}
	if err := closeRows(rows); err != nil {
		return fmt.Errorf("read savings goals: %w", err)
	}
	return w.ensureState(ctx)
}

// ensureState creates writer_state for a database that Generate did not
// make, from the current contents of the tables.
func (w *writer) ensureState(ctx context.Context) (err error) {
	var n int
	err = w.conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'writer_state'").Scan(&n)
	if err != nil || n == 1 {
		return err
	}
	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("create writer state: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = w.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") // report the cause
		}
	}()
	if _, err := w.conn.ExecContext(ctx, writerStateSQL); err != nil {
		return fmt.Errorf("create writer state: %w", err)
	}
	if _, err := w.conn.ExecContext(ctx, `INSERT OR IGNORE INTO writer_state
		SELECT 1, 0,
		       (SELECT count(*) FROM expenses), (SELECT coalesce(sum(amount_pence), 0) FROM expenses),
		       (SELECT count(*) FROM incomes), (SELECT coalesce(sum(amount_pence), 0) FROM incomes),
		       strftime('%Y-%m-%d %H:%M:%S', 'now')`); err != nil {
		return fmt.Errorf("create writer state: %w", err)
	}
	if _, err := w.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("create writer state: %w", err)
	}
	return nil
}

func closeRows(rows *sql.Rows) error {
	if err := rows.Err(); err != nil {
		rows.Close()
		return err
	}
	return rows.Close()
}

// isBusy reports whether err means the database stayed locked.
func isBusy(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// latencyHistogram counts durations in log-linear buckets: each power of two
// is split into histSub buckets, so any quantile is read to within
// 1/histSub of its value, in constant memory however long the writer runs.
type latencyHistogram struct {
	counts [64 * histSub]int64
	n      int64
	max    time.Duration
}

const (
	histSubBits = 5
	histSub     = 1 << histSubBits
)

func (h *latencyHistogram) record(d time.Duration) {
	d = max(d, 0)
	h.counts[histBucket(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

// quantile returns the upper bound of the bucket holding the q-quantile,
// capped at the largest value recorded.
func (h *latencyHistogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return min(time.Duration(histUpper(i)), h.max)
		}
	}
	return h.max
}

// histBucket maps v to its bucket: values below histSub have their own;
// above, a bucket covers 1/histSub of a power of two.
func histBucket(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	return (shift+1)*histSub + int(v>>shift) - histSub
}

// histUpper is the largest value in bucket i.
func histUpper(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	shift := i/histSub - 1
	mantissa := uint64(i%histSub + histSub)
	return (mantissa+1)<<shift - 1
}

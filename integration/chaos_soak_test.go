package integration

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, for the writer and the checks

	"github.com/bulwark-dr/bulwark/workflows"
)

// Issue #7, part 4: a live writer soak. A writer process runs a continuous
// mixed workload on a WAL-mode SQLite ledger while backups (full,
// incremental and differential in rotation) are taken every few seconds
// through the real stack. Every backup is then restored and must be a state
// the writer committed: integrity_check ok, the ledger's invariants hold,
// its commit counter is one the writer logged as committed (with the same
// nonce: a rolled-back attempt at the same counter value is told apart),
// and counters never go back in backup order.
//
// In `make test` the soak writes for soakSmokeDuration; with
// BULWARK_CHAOS=full for 10 minutes (BULWARK_SOAK_DURATION overrides both;
// a full run needs `go test -timeout 30m`).

const (
	soakSmokeDuration = 12 * time.Second
	soakFullDuration  = 10 * time.Minute
	// soakWriterEnv holds the database path when the test binary runs as
	// the writer process (TestChaosSoakWriter).
	soakWriterEnv     = "BULWARK_SOAK_WRITER_DB"
	soakWriterLogEnv  = "BULWARK_SOAK_WRITER_LOG"
	soakWriterSeedEnv = "BULWARK_SOAK_WRITER_SEED" // 16 hex digits
	soakAccounts      = 64
	// soakLiveTxns bounds the ledger: beyond it the oldest transactions are
	// archived (deleted, their postings folded into accounts.archived), so
	// the file churns at a steady size instead of only growing.
	soakLiveTxns    = 20000
	soakAttachments = 120
	soakWarmup      = 400 // commits before the writer says it is ready
)

const ledgerSchema = `
CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, archived INTEGER NOT NULL DEFAULT 0);
CREATE TABLE txns (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, nonce INTEGER NOT NULL,
	n_postings INTEGER NOT NULL, memo TEXT NOT NULL);
CREATE TABLE postings (id INTEGER PRIMARY KEY, txn_id INTEGER NOT NULL REFERENCES txns(id),
	account_id INTEGER NOT NULL REFERENCES accounts(id), amount INTEGER NOT NULL);
CREATE INDEX postings_txn ON postings(txn_id);
CREATE INDEX postings_account ON postings(account_id);
CREATE TABLE attachments (id INTEGER PRIMARY KEY, txn_id INTEGER NOT NULL REFERENCES txns(id),
	data BLOB NOT NULL, sha256 TEXT NOT NULL);
CREATE INDEX attachments_txn ON attachments(txn_id);
-- seq counts committed writer transactions; each inserts one txns row, so
-- seq = count(txns) + archived_txns, and the txns row with the highest seq
-- carries the nonce of the last commit.
CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL,
	nonce INTEGER NOT NULL, archived_txns INTEGER NOT NULL);
INSERT INTO meta VALUES (1, 0, 0, 0);
`

func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	d := soakSmokeDuration
	if chaosFull() {
		d = soakFullDuration
	}
	if s := os.Getenv("BULWARK_SOAK_DURATION"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			t.Fatalf("BULWARK_SOAK_DURATION=%q is not a positive duration such as 10m", s)
		}
		d = v
	}
	// Restoring and checking every backup takes about half the soak again.
	if deadline, ok := t.Deadline(); ok && d > time.Minute && time.Until(deadline) < d*3/2+2*time.Minute {
		t.Fatalf("a %s soak does not fit in the test timeout (%s left): run go test with -timeout %s",
			d, time.Until(deadline).Round(time.Second), (d*2 + 5*time.Minute).Round(time.Minute))
	}
	return d
}

// soakBackup is one backup taken during the soak, in the order taken.
type soakBackup struct {
	ID, Type, Parent, ImageHash string
}

func TestChaosSoak(t *testing.T) {
	part := newChaosPart("soak", "TestChaosSoak")
	defer part.record(t)
	dur := soakDuration(t)
	interval := time.Second
	if chaosFull() {
		interval = 3 * time.Second
	}
	// The seed decides the writer's workload (BULWARK_CHAOS_SEED replays
	// it; the interleaving with the backups is the machine's).
	seed := chaosSeeds(t, 1)[0]
	c := newCluster(t, "")
	dbPath := filepath.Join(c.dir, "ledger.db")
	logPath := filepath.Join(c.dir, "writer.log")
	cfg := fmt.Sprintf(`destination: %[1]s/backups
keeper: keyfile://%[1]s/keys/bulwark.key
host: soak
databases:
  - name: ledger
    path: %[2]s
`, c.dir, dbPath)
	if err := os.WriteFile(c.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	createLedger(t, dbPath)
	c.startWorker()

	// The writer is this test binary again, in its own process: a backup
	// must cope with a writer it shares nothing with but the file.
	t.Setenv(soakWriterEnv, dbPath)
	t.Setenv(soakWriterLogEnv, logPath)
	t.Setenv(soakWriterSeedEnv, seed)
	writer := start(t, "soak writer: ready", os.Args[0], "-test.run=^TestChaosSoakWriter$", "-test.v")
	t.Logf("soak: %s of backups every %s under a writer (seed %s)", dur, interval, seed)

	var (
		backups  []soakBackup
		failed   = map[string][]string{} // backup id → what is wrong with it
		rotation = []string{"full", "incremental", "incremental", "differential", "incremental", "differential"}
	)
	problem := func(b *soakBackup, format string, args ...any) {
		failed[b.ID] = append(failed[b.ID], fmt.Sprintf(format, args...))
	}
	began := time.Now()
	for i := 0; time.Since(began) < dur; i++ {
		next := time.Now().Add(interval)
		typ := rotation[i%len(rotation)]
		out, errOut, code := c.cli("backup", "ledger", "--type", typ, "--json")
		var res workflows.BackupResult
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.BackupID == "" {
			part.failed(t, seed, fmt.Errorf("backup #%d (%s) failed (exit %d): %s %s", i, typ, code, strings.TrimSpace(out), strings.TrimSpace(errOut)))
			continue
		}
		b := soakBackup{ID: res.BackupID, Type: res.Type, Parent: res.Parent, ImageHash: res.ImageHash}
		if res.Verify == nil || !res.Verify.OK {
			problem(&b, "%s backup did not verify: %+v", typ, res.Verify)
		}
		if typ != "full" && (b.Type != typ || b.Parent == "") {
			problem(&b, "asked for %s, got %s with parent %q (%s)", typ, b.Type, b.Parent, res.FullBecause)
		}
		backups = append(backups, b)
		time.Sleep(time.Until(next))
	}
	soaked := time.Since(began)
	writer.stop()
	if st := writer.cmd.ProcessState; st == nil || !st.Success() {
		t.Fatalf("writer process failed (%v):\n%s", st, writer.out.String())
	}
	stats := writerSummary(writer.out.String())
	committed := readWriterLog(t, logPath)
	if int64(len(committed)) != stats["commits"] {
		t.Fatalf("writer log has %d commits, the writer counted %d", len(committed), stats["commits"])
	}

	// Every backup, in the order taken, restores to a committed state.
	var lastSeq int64 = -1
	var distinct []int64
	restoreDir := filepath.Join(c.dir, "restored")
	restoring := time.Now()
	for i := range backups {
		b := &backups[i]
		target := filepath.Join(restoreDir, b.ID+".db")
		seq, err := restoreAndCheck(c, b, target, committed)
		removeSoakDB(target)
		switch {
		case err != nil:
			problem(b, "%v", err)
		case seq < lastSeq:
			problem(b, "counter went back: %d after %d", seq, lastSeq)
		default:
			if seq != lastSeq {
				distinct = append(distinct, seq)
			}
			lastSeq = seq
		}
		if msgs := failed[b.ID]; len(msgs) > 0 {
			part.failed(t, seed, fmt.Errorf("%s backup %s: %s", b.Type, b.ID, strings.Join(msgs, "; ")))
		} else {
			part.survived()
		}
	}
	types := map[string]int{}
	for _, b := range backups {
		types[b.Type]++
	}
	part.note("%s soak, %d writer commits (%d rolled back on purpose, %d busy)", soaked.Round(time.Second), len(committed), stats["rollbacks"], stats["busy"])
	part.note("%d backups (%d full, %d incremental, %d differential) every %s, each restored and checked (integrity_check, ledger invariants, counter committed and monotonic)",
		len(backups), types["full"], types["incremental"], types["differential"], interval)
	part.note("%d distinct counters restored, the last %d; restores took %s; writer seed %s", len(distinct), lastSeq, time.Since(restoring).Round(time.Second), seed)
	if len(backups) < 3 || len(committed) < 100 {
		t.Fatalf("%d backups of %d commits: the soak proves nothing", len(backups), len(committed))
	}
	if len(distinct) < 2 {
		t.Errorf("every backup restored the same counter: the writer was not running during the backups")
	}
}

// restoreAndCheck restores b to target with the CLI and checks that it is a
// state the writer committed; it returns the restored commit counter.
func restoreAndCheck(c *cluster, b *soakBackup, target string, committed map[int64]int64) (int64, error) {
	out, errOut, code := c.cli("restore", "ledger", b.ID, "--to", target, "--json")
	var rr workflows.RestoreResult
	if code != 0 || json.Unmarshal([]byte(out), &rr) != nil {
		return 0, fmt.Errorf("restore failed (exit %d): %s %s", code, strings.TrimSpace(out), strings.TrimSpace(errOut))
	}
	if rr.ImageHash != b.ImageHash {
		return 0, fmt.Errorf("restored image %s, the backup's is %s", rr.ImageHash, b.ImageHash)
	}
	seq, nonce, err := checkLedger(context.Background(), target)
	if err != nil {
		return 0, fmt.Errorf("restores to a state that is not consistent: %w", err)
	}
	if seq == 0 {
		return 0, nil // the empty ledger, before the first commit
	}
	want, logged := committed[seq]
	if !logged {
		return 0, fmt.Errorf("restored counter %d is not in the writer's log of commits", seq)
	}
	if want != nonce {
		return 0, fmt.Errorf("restored counter %d carries nonce %d, the commit the writer logged carries %d: a rolled-back attempt", seq, nonce, want)
	}
	return seq, nil
}

func removeSoakDB(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
}

// createLedger creates the soak database: WAL mode, the schema, the accounts.
func createLedger(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", ledgerDSN(path, "rwc"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ledgerSchema); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= soakAccounts; i++ {
		if _, err := db.Exec(`INSERT INTO accounts (id, balance) VALUES (?, 0)`, i); err != nil {
			t.Fatal(err)
		}
	}
}

func ledgerDSN(path, mode string) string {
	q := url.Values{"mode": {mode}}
	for _, p := range []string{"busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}).String()
}

// checkLedger checks a restored ledger and returns its commit counter and
// nonce. The file is opened immutable: a restored file has no WAL.
func checkLedger(ctx context.Context, path string) (seq, nonce int64, err error) {
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: "mode=ro&immutable=1"}).String())
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var integrity string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&integrity); err != nil {
		return 0, 0, fmt.Errorf("integrity_check: %w", err)
	}
	if integrity != "ok" {
		return 0, 0, fmt.Errorf("integrity_check: %s", integrity)
	}
	var fk int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&fk); err != nil || fk != 0 {
		return 0, 0, fmt.Errorf("foreign_key_check: %d violations (%v)", fk, err)
	}
	var archived int64
	if err := db.QueryRowContext(ctx, `SELECT seq, nonce, archived_txns FROM meta WHERE id = 1`).Scan(&seq, &nonce, &archived); err != nil {
		return 0, 0, fmt.Errorf("meta: %w", err)
	}
	// Each check is a query that must return 0.
	checks := []struct{ name, query string }{
		{"accounts sum to zero", `SELECT coalesce(sum(balance), 0) FROM accounts`},
		{"balance = archived + postings", `SELECT count(*) FROM accounts a
			WHERE a.balance != a.archived + (SELECT coalesce(sum(p.amount), 0) FROM postings p WHERE p.account_id = a.id)`},
		{"transactions balance", `SELECT count(*) FROM (SELECT txn_id FROM postings GROUP BY txn_id HAVING sum(amount) != 0)`},
		{"postings per transaction", `SELECT count(*) FROM txns t WHERE t.n_postings != (SELECT count(*) FROM postings p WHERE p.txn_id = t.id)`},
		{"counter = live + archived transactions", fmt.Sprintf(`SELECT %d - (SELECT count(*) FROM txns) - %d`, seq, archived)},
		{"newest transaction is the counter's", fmt.Sprintf(`SELECT CASE WHEN %[1]d = 0 THEN 0
			ELSE (SELECT count(*) = 0 FROM txns WHERE seq = %[1]d AND nonce = %[2]d) + (SELECT max(seq) != %[1]d FROM txns) END`, seq, nonce)},
	}
	for _, ch := range checks {
		var n int64
		if err := db.QueryRowContext(ctx, ch.query).Scan(&n); err != nil {
			return seq, nonce, fmt.Errorf("%s: %w", ch.name, err)
		}
		if n != 0 {
			return seq, nonce, fmt.Errorf("%s: off by %d (counter %d)", ch.name, n, seq)
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT id, data, sha256 FROM attachments`)
	if err != nil {
		return seq, nonce, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var data []byte
		var sum string
		if err := rows.Scan(&id, &data, &sum); err != nil {
			return seq, nonce, err
		}
		if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != sum {
			return seq, nonce, fmt.Errorf("attachment %d (%d bytes) does not match its hash", id, len(data))
		}
	}
	return seq, nonce, rows.Err()
}

// readWriterLog returns counter → nonce of every commit the writer logged.
func readWriterLog(t *testing.T, path string) map[int64]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[int64]int64{}
	sc := bufio.NewScanner(f)
	var last int64
	for sc.Scan() {
		var seq, nonce int64
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &seq, &nonce); err != nil {
			t.Fatalf("writer log line %q: %v", sc.Text(), err)
		}
		if seq != last+1 {
			t.Fatalf("writer log: commit %d after %d", seq, last)
		}
		out[seq], last = nonce, seq
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// writerSummary parses the writer's last line: "soak writer: done k=v …".
func writerSummary(out string) map[string]int64 {
	m := map[string]int64{}
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, "soak writer: done ")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(rest) {
			k, v, _ := strings.Cut(f, "=")
			m[k], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return m
}

// TestChaosSoakWriter is the writer process of TestChaosSoak (the test
// binary run again with the database in the environment); on its own it
// skips. Until SIGTERM it commits, one transaction after another, a
// mixed workload on the ledger: a new transaction of 2-5 postings that
// sum to zero, a correction of an older one, archiving of the oldest ones
// (deletes), attachments of 4-64 KiB added and removed; one attempt in
// fifteen is rolled back after doing all that. Each commit is appended to
// the log as "<counter> <nonce>" once COMMIT has returned.
func TestChaosSoakWriter(t *testing.T) {
	path := os.Getenv(soakWriterEnv)
	if path == "" {
		t.Skip("the writer process of TestChaosSoak")
	}
	seed := os.Getenv(soakWriterSeedEnv)
	if _, err := parseSeed(seed); err != nil {
		t.Fatalf("%s=%q: %v", soakWriterSeedEnv, seed, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logf, err := os.OpenFile(os.Getenv(soakWriterLogEnv), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := logf.Close(); err != nil {
			t.Error(err)
		}
	}()
	db, err := sql.Open("sqlite", ledgerDSN(path, "rw"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w := &ledgerWriter{conn: conn, rng: seedRand(seed)}
	var commits, rollbacks, busy int64
	for ctx.Err() == nil {
		// A commit in progress finishes even after SIGTERM: the context
		// only stops the loop, so that a commit and its log line go together.
		seq, nonce, committed, err := w.step(context.WithoutCancel(ctx))
		switch {
		case soakBusy(err):
			busy++
			continue
		case err != nil:
			t.Fatalf("writer: %v", err)
		case !committed:
			rollbacks++
			continue
		}
		if _, err := fmt.Fprintf(logf, "%d %d\n", seq, nonce); err != nil {
			t.Fatal(err)
		}
		commits++
		if commits == soakWarmup {
			fmt.Println("soak writer: ready")
		}
		if commits > soakWarmup {
			time.Sleep(time.Duration(1+w.rng.IntN(3)) * time.Millisecond)
		}
	}
	fmt.Printf("soak writer: done commits=%d rollbacks=%d busy=%d\n", commits, rollbacks, busy)
}

func soakBusy(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked"))
}

type ledgerWriter struct {
	conn *sql.Conn
	rng  *rand.Rand
}

// step runs one writer transaction; committed is false when it was rolled
// back on purpose.
func (w *ledgerWriter) step(ctx context.Context) (seq, nonce int64, committed bool, err error) {
	if _, err := w.conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return 0, 0, false, err
	}
	defer func() {
		if err != nil || !committed {
			_, _ = w.conn.ExecContext(ctx, `ROLLBACK`)
		}
	}()
	var archived int64
	if err := w.conn.QueryRowContext(ctx, `SELECT seq, archived_txns FROM meta WHERE id = 1`).Scan(&seq, &archived); err != nil {
		return 0, 0, false, err
	}
	seq++
	nonce = w.rng.Int64()
	r := w.rng
	exec := func(q string, args ...any) (int64, error) {
		res, err := w.conn.ExecContext(ctx, q, args...)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", strings.Fields(q)[0], err)
		}
		return res.LastInsertId()
	}

	// Insert: a transaction of 2-5 postings that sum to zero.
	n := 2 + r.IntN(4)
	memo := strings.Repeat(fmt.Sprintf("txn %d ", seq), 1+r.IntN(40))
	id, err := exec(`INSERT INTO txns (seq, nonce, n_postings, memo) VALUES (?, ?, ?, ?)`, seq, nonce, n, memo)
	if err != nil {
		return 0, 0, false, err
	}
	var sum int64
	for i := 0; i < n; i++ {
		amount := r.Int64N(200001) - 100000
		if i == n-1 {
			amount = -sum
		}
		sum += amount
		acct := 1 + r.IntN(soakAccounts)
		if _, err := exec(`INSERT INTO postings (txn_id, account_id, amount) VALUES (?, ?, ?)`, id, acct, amount); err != nil {
			return 0, 0, false, err
		}
		if _, err := exec(`UPDATE accounts SET balance = balance + ? WHERE id = ?`, amount, acct); err != nil {
			return 0, 0, false, err
		}
	}

	// Update: move an amount between two postings of an older transaction.
	if r.IntN(2) == 0 && id > 1 {
		var old int64
		err := w.conn.QueryRowContext(ctx, `SELECT id FROM txns WHERE id >= ? ORDER BY id LIMIT 1`, 1+r.Int64N(id-1)).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, 0, false, err
		}
		rows, err := w.conn.QueryContext(ctx, `SELECT id, account_id FROM postings WHERE txn_id = ? ORDER BY id LIMIT 2`, old)
		if err != nil {
			return 0, 0, false, err
		}
		var pid, acct [2]int64
		k := 0
		for ; rows.Next() && k < 2; k++ {
			if err := rows.Scan(&pid[k], &acct[k]); err != nil {
				rows.Close()
				return 0, 0, false, err
			}
		}
		if err := rows.Close(); err != nil {
			return 0, 0, false, err
		}
		if k == 2 {
			d := r.Int64N(20001) - 10000
			for j, delta := range []int64{d, -d} {
				if _, err := exec(`UPDATE postings SET amount = amount + ? WHERE id = ?`, delta, pid[j]); err != nil {
					return 0, 0, false, err
				}
				if _, err := exec(`UPDATE accounts SET balance = balance + ? WHERE id = ?`, delta, acct[j]); err != nil {
					return 0, 0, false, err
				}
			}
			if _, err := exec(`UPDATE txns SET memo = memo || ? WHERE id = ?`, fmt.Sprintf(" corrected by %d", seq), old); err != nil {
				return 0, 0, false, err
			}
		}
	}

	// Delete: archive the oldest transactions, folding their postings into
	// accounts.archived so that balances stay explained.
	if live := seq - archived; live > 16 && (live > soakLiveTxns || r.IntN(6) == 0) {
		k := int64(1 + r.IntN(3))
		rows, err := w.conn.QueryContext(ctx, `SELECT id FROM txns ORDER BY id LIMIT ?`, k)
		if err != nil {
			return 0, 0, false, err
		}
		var ids []int64
		for rows.Next() {
			var x int64
			if err := rows.Scan(&x); err != nil {
				rows.Close()
				return 0, 0, false, err
			}
			ids = append(ids, x)
		}
		if err := rows.Close(); err != nil {
			return 0, 0, false, err
		}
		for _, x := range ids {
			for _, q := range []string{
				`UPDATE accounts SET archived = archived + (SELECT coalesce(sum(amount), 0) FROM postings WHERE txn_id = ?1 AND account_id = accounts.id)
					WHERE id IN (SELECT account_id FROM postings WHERE txn_id = ?1)`,
				`DELETE FROM postings WHERE txn_id = ?1`,
				`DELETE FROM attachments WHERE txn_id = ?1`,
				`DELETE FROM txns WHERE id = ?1`,
			} {
				if _, err := exec(q, x); err != nil {
					return 0, 0, false, err
				}
			}
		}
		archived += int64(len(ids))
	}

	// Attachments: blobs on overflow pages, added and removed.
	if r.IntN(30) == 0 {
		data := make([]byte, 4096+r.IntN(60*1024))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		sum := sha256.Sum256(data)
		if _, err := exec(`INSERT INTO attachments (txn_id, data, sha256) VALUES (?, ?, ?)`, id, data, hex.EncodeToString(sum[:])); err != nil {
			return 0, 0, false, err
		}
		if _, err := exec(`DELETE FROM attachments WHERE id IN (SELECT id FROM attachments ORDER BY id
			LIMIT max(0, (SELECT count(*) FROM attachments) - ?))`, soakAttachments); err != nil {
			return 0, 0, false, err
		}
	}

	if _, err := exec(`UPDATE meta SET seq = ?, nonce = ?, archived_txns = ? WHERE id = 1`, seq, nonce, archived); err != nil {
		return 0, 0, false, err
	}
	if r.IntN(15) == 0 {
		return seq, nonce, false, nil // rolled back by the deferred ROLLBACK
	}
	if _, err := w.conn.ExecContext(ctx, `COMMIT`); err != nil {
		return 0, 0, false, err
	}
	return seq, nonce, true, nil
}

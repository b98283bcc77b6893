package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	"go.temporal.io/sdk/testsuite"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/secrets/localsecrets"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/activities/oraclesrc"
	"github.com/bulwark-dr/bulwark/repository"
)

// The Oracle suite runs against a real Oracle Free in a container
// (gvenzl/oracle-free) where Docker exists, and skips at once where it does
// not. It drives the activities themselves (in Temporal's activity test
// environment) against the live database: the workflows around them are
// the same as SQLite's and are covered by the workflow tests.

const (
	oracleImage       = "gvenzl/oracle-free:23-slim-faststart"
	oracleAppUser     = "FINANCE"
	oracleDumpDirPath = "/opt/oracle/bulwark_dp"
)

// oracleFinanceSchema is the seed's central schema: the five FINANCE tables
// with keys and foreign keys, a sequence and trigger, a package with a body,
// a view, plus a table holding every type Bulwark keeps exactly.
var oracleFinanceSchema = []string{
	`CREATE SEQUENCE finance_seq START WITH 1000 CACHE 20`,
	`CREATE TABLE finance_user (
	   user_id NUMBER(10) PRIMARY KEY, email VARCHAR2(200) NOT NULL UNIQUE,
	   full_name NVARCHAR2(100), created_at TIMESTAMP(6) DEFAULT SYSTIMESTAMP NOT NULL)`,
	`CREATE TABLE finance_expense (
	   expense_id NUMBER(12) PRIMARY KEY, user_id NUMBER(10) NOT NULL REFERENCES finance_user,
	   amount NUMBER(12,2) NOT NULL CHECK (amount >= 0), category VARCHAR2(40), spent_on DATE NOT NULL,
	   note CLOB, receipt BLOB)`,
	`CREATE TABLE finance_income (
	   income_id NUMBER(12) GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id NUMBER(10) NOT NULL REFERENCES finance_user,
	   amount NUMBER(12,2) NOT NULL, source VARCHAR2(80), received_at TIMESTAMP(3) WITH TIME ZONE)`,
	`CREATE TABLE finance_budget (
	   budget_id NUMBER(10) PRIMARY KEY, user_id NUMBER(10) REFERENCES finance_user, category VARCHAR2(40),
	   monthly_limit NUMBER, period INTERVAL YEAR(2) TO MONTH)`,
	`CREATE TABLE finance_savings_goal (
	   goal_id NUMBER(10) PRIMARY KEY, user_id NUMBER(10) REFERENCES finance_user, name VARCHAR2(100),
	   target NUMBER(14,2), saved NUMBER(14,2), due TIMESTAMP WITH LOCAL TIME ZONE, tick INTERVAL DAY(3) TO SECOND(6))`,
	`CREATE TABLE finance_types (
	   id NUMBER PRIMARY KEY, n NUMBER, bf BINARY_FLOAT, bd BINARY_DOUBLE, c CHAR(5), nc NCHAR(3),
	   r RAW(16), nclob_col NCLOB, fl FLOAT(10))`,
	`CREATE INDEX finance_expense_by_user ON finance_expense (user_id, spent_on)`,
	`CREATE OR REPLACE VIEW finance_monthly AS
	   SELECT user_id, TRUNC(spent_on, 'MM') AS month, SUM(amount) AS total FROM finance_expense GROUP BY user_id, TRUNC(spent_on, 'MM')`,
	`CREATE OR REPLACE PACKAGE finance_api AS
	   FUNCTION balance(p_user NUMBER) RETURN NUMBER;
	 END finance_api;`,
	`CREATE OR REPLACE PACKAGE BODY finance_api AS
	   FUNCTION balance(p_user NUMBER) RETURN NUMBER IS
	     v NUMBER;
	   BEGIN
	     SELECT NVL(SUM(amount), 0) INTO v FROM finance_income WHERE user_id = p_user;
	     RETURN v;
	   END balance;
	 END finance_api;`,
	`CREATE OR REPLACE TRIGGER finance_expense_id BEFORE INSERT ON finance_expense FOR EACH ROW
	 WHEN (new.expense_id IS NULL)
	 BEGIN
	   :new.expense_id := finance_seq.NEXTVAL;
	 END;`,
}

var oracleFinanceData = []string{
	`INSERT INTO finance_user VALUES (1, 'ana@example.com', N'Ana Łukasiewicz', TIMESTAMP '2026-01-02 03:04:05.123456')`,
	`INSERT INTO finance_user VALUES (2, 'bo@example.com', NULL, TIMESTAMP '1999-12-31 23:59:59.999999')`,
	`INSERT INTO finance_expense (user_id, amount, category, spent_on, note, receipt)
	   SELECT MOD(LEVEL, 2) + 1, LEVEL * 1.25, 'food', DATE '2026-01-01' + LEVEL,
	          CASE WHEN MOD(LEVEL, 3) = 0 THEN NULL WHEN MOD(LEVEL, 3) = 1 THEN EMPTY_CLOB() ELSE TO_CLOB(RPAD('x', 4000, 'y')) END,
	          CASE WHEN MOD(LEVEL, 2) = 0 THEN HEXTORAW('DEADBEEF') ELSE EMPTY_BLOB() END
	     FROM dual CONNECT BY LEVEL <= 3000`,
	`INSERT INTO finance_income (user_id, amount, source, received_at) VALUES (1, 2500.5, 'salary', TIMESTAMP '2026-03-29 01:30:00.250 Europe/London')`,
	`INSERT INTO finance_income (user_id, amount, source, received_at) VALUES (2, 0.01, 'interest', TIMESTAMP '2026-03-29 01:30:00 -05:30')`,
	`INSERT INTO finance_budget VALUES (1, 1, 'food', 400, INTERVAL '1-2' YEAR TO MONTH)`,
	`INSERT INTO finance_budget VALUES (2, 2, 'rent', 99999999999999999999999999999999999999, INTERVAL '-0-11' YEAR TO MONTH)`,
	`INSERT INTO finance_savings_goal VALUES (1, 1, 'house', 250000, 1234.56, TIMESTAMP '2030-06-01 00:00:00 UTC', INTERVAL '12 03:04:05.000006' DAY TO SECOND)`,
	`INSERT INTO finance_types VALUES (1, -0.000000000000000000000000000000000000001, 1.5, 2.0E-300, 'ab', N'ž', HEXTORAW('00FF'), TO_NCLOB(N'ĉapelo'), 3.25)`,
	`INSERT INTO finance_types VALUES (2, 1E125, BINARY_FLOAT_INFINITY, BINARY_DOUBLE_NAN, NULL, NULL, NULL, NULL, NULL)`,
	`INSERT INTO finance_types VALUES (3, 0, -0, -1.7976931348623157E308, '     ', NULL, HEXTORAW('00'), EMPTY_CLOB(), 0)`,
}

type oracleFixture struct {
	system, app *sql.DB
	conn        oraclesrc.Conn
	password    string
}

func startOracle(t *testing.T) *oracleFixture {
	t.Helper()
	if os.Getenv("BULWARK_SKIP_ORACLE") != "" {
		t.Skip("BULWARK_SKIP_ORACLE is set")
	}
	testcontainers.SkipIfProviderIsNotHealthy(t)
	ctx := context.Background()
	password := "Bulwark-Test-" + fmt.Sprint(time.Now().UnixNano()%1_000_000)
	c, err := testcontainers.Run(ctx, oracleImage,
		testcontainers.WithExposedPorts("1521/tcp"),
		testcontainers.WithEnv(map[string]string{
			"ORACLE_PASSWORD": password, "APP_USER": oracleAppUser, "APP_USER_PASSWORD": password,
		}),
		testcontainers.WithWaitStrategy(wait.ForLog("DATABASE IS READY TO USE!").WithStartupTimeout(5*time.Minute)),
	)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("start %s: %v", oracleImage, err)
	}
	if code, _, err := c.Exec(ctx, []string{"mkdir", "-p", oracleDumpDirPath}); err != nil || code != 0 {
		t.Fatalf("mkdir dump directory: %d %v", code, err)
	}
	host, err := c.Host(ctx)
	if err != nil {
		t.Fatal(err)
	}
	port, err := c.MappedPort(ctx, "1521/tcp")
	if err != nil {
		t.Fatal(err)
	}
	f := &oracleFixture{password: password,
		conn: oraclesrc.Conn{Host: host, Port: int(port.Num()), Service: "FREEPDB1", User: oracleAppUser}}
	sys := f.conn
	sys.User, sys.Password = "SYSTEM", password
	if f.system, err = oraclesrc.Open(sys); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.system.Close() })
	app := f.conn
	app.Password = password
	if f.app, err = oraclesrc.Open(app); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.app.Close() })
	for _, s := range []string{
		`CREATE OR REPLACE DIRECTORY BULWARK_DP AS '` + oracleDumpDirPath + `'`,
		`GRANT READ, WRITE ON DIRECTORY BULWARK_DP TO ` + oracleAppUser,
		`GRANT EXECUTE ON SYS.UTL_FILE TO ` + oracleAppUser,
		`GRANT EXECUTE ON SYS.DBMS_FLASHBACK TO ` + oracleAppUser,
		`GRANT SELECT_CATALOG_ROLE TO ` + oracleAppUser,
		`GRANT CREATE VIEW, CREATE PROCEDURE, CREATE TRIGGER, CREATE SEQUENCE, CREATE TABLE TO ` + oracleAppUser,
		`ALTER USER ` + oracleAppUser + ` QUOTA UNLIMITED ON USERS`,
	} {
		mustExec(t, f.system, s)
	}
	for _, s := range append(append([]string(nil), oracleFinanceSchema...), oracleFinanceData...) {
		mustExec(t, f.app, s)
	}
	return f
}

func mustExec(t *testing.T, db *sql.DB, s string) {
	t.Helper()
	if _, err := db.Exec(s); err != nil {
		t.Fatalf("%v\n  in: %s", err, s)
	}
}

// tableFingerprints reads every table's rows as text, sorted, for a
// row-by-row comparison independent of Bulwark's own digest.
func tableFingerprints(t *testing.T, db *sql.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	tables := []string{"FINANCE_USER", "FINANCE_EXPENSE", "FINANCE_INCOME", "FINANCE_BUDGET", "FINANCE_SAVINGS_GOAL", "FINANCE_TYPES"}
	for _, table := range tables {
		q := `SELECT * FROM ` + table
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], fmt.Sprintf("%#v", vals))
		}
		rows.Close()
		sortStrings(out[table])
	}
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestOracleBackupRestoreDataPumpAndSingleTable(t *testing.T) {
	f := startOracle(t)
	bucket := memblob.OpenBucket(nil)
	key, err := localsecrets.NewRandomKey()
	if err != nil {
		t.Fatal(err)
	}
	keeper := localsecrets.NewKeeper(key)
	acts := &activities.OracleActivities{Bucket: bucket, Keeper: keeper, KeeperDescription: "test", Tool: "bulwark test",
		Databases: map[string]activities.OracleDatabase{"central": {
			Name: "central", Conn: f.conn, Password: func() (string, error) { return f.password, nil },
			Schema: oracleAppUser, DataPumpDirectory: "BULWARK_DP",
		}}}
	storage := &activities.StorageActivities{Bucket: bucket, Keeper: keeper, TempDir: t.TempDir(), Worker: "test",
		Destinations: []activities.Destination{{Name: "primary", Role: "primary", Bucket: bucket}}}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	env.RegisterActivity(storage)

	before := tableFingerprints(t, f.app)
	backupID := repository.NewBackupID(time.Now(), "0a0b0c0d")
	val, err := env.ExecuteActivity(acts.BackupOracle, activities.SnapshotInput{Database: "central", BackupID: backupID, StartedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var snap activities.SnapshotOutput
	val.Get(&snap)
	if snap.Tables != 6 || snap.Rows != 3000+2+2+2+1+3 {
		t.Fatalf("backup %+v", snap)
	}
	val, err = env.ExecuteActivity(storage.VerifyBackup, activities.VerifyInput{Database: "central", BackupID: backupID})
	if err != nil {
		t.Fatal(err)
	}
	var v activities.VerifyOutput
	val.Get(&v)
	if !v.OK {
		t.Fatalf("verify: %v", v.Problems)
	}

	// Whole schema: drop everything, restore, compare row by row.
	for _, s := range []string{"DROP VIEW finance_monthly", "DROP PACKAGE finance_api", "DROP SEQUENCE finance_seq"} {
		mustExec(t, f.app, s)
	}
	for _, tbl := range []string{"FINANCE_TYPES", "FINANCE_SAVINGS_GOAL", "FINANCE_BUDGET", "FINANCE_INCOME", "FINANCE_EXPENSE", "FINANCE_USER"} {
		mustExec(t, f.app, "DROP TABLE "+tbl+" CASCADE CONSTRAINTS PURGE")
	}
	val, err = env.ExecuteActivity(acts.RestoreOracle, activities.OracleRestoreInput{Database: "central", BackupID: backupID})
	if err != nil {
		t.Fatal(err)
	}
	var rep activities.OracleRestoreOutput
	val.Get(&rep)
	if len(rep.Tables) != 6 || len(rep.Invalid) != 0 {
		t.Fatalf("restore report %+v", rep)
	}
	for _, tr := range rep.Tables {
		if !tr.Verified {
			t.Errorf("table %s not verified: %s", tr.Name, tr.Problem)
		}
	}
	after := tableFingerprints(t, f.app)
	for table, rows := range before {
		if strings.Join(rows, "\n") != strings.Join(after[table], "\n") {
			t.Errorf("table %s differs after restore (%d rows before, %d after)", table, len(rows), len(after[table]))
		}
	}
	var balance string
	if err := f.app.QueryRow(`SELECT TO_CHAR(finance_api.balance(1)) FROM dual`).Scan(&balance); err != nil || balance != "2500.5" {
		t.Fatalf("package after restore: %q %v", balance, err)
	}
	var next int64
	if err := f.app.QueryRow(`SELECT finance_seq.NEXTVAL FROM dual`).Scan(&next); err != nil || next < 4000 {
		t.Fatalf("sequence after restore: %d %v (must be past the data)", next, err)
	}

	// Single table: lose rows, restore the table (replace), then under a new name.
	mustExec(t, f.app, "DELETE FROM finance_expense WHERE MOD(expense_id, 2) = 0")
	val, err = env.ExecuteActivity(acts.RestoreOracle, activities.OracleRestoreInput{Database: "central", BackupID: backupID, Tables: []string{"FINANCE_EXPENSE"}})
	if err != nil {
		t.Fatal(err)
	}
	val.Get(&rep)
	if len(rep.Tables) != 1 || !rep.Tables[0].Verified || rep.Tables[0].Rows != 3000 {
		t.Fatalf("table restore %+v", rep)
	}
	val, err = env.ExecuteActivity(acts.RestoreOracle, activities.OracleRestoreInput{Database: "central", BackupID: backupID,
		Tables: []string{"FINANCE_BUDGET"}, Mode: oraclesrc.ModeNewName, NewName: "FINANCE_BUDGET_COPY"})
	if err != nil {
		t.Fatal(err)
	}
	val.Get(&rep)
	if !rep.Tables[0].Verified {
		t.Fatalf("new-name restore %+v", rep)
	}

	// Data Pump round trip: the dump stored with the backup goes back in.
	mustExec(t, f.app, "DROP TABLE finance_savings_goal PURGE")
	val, err = env.ExecuteActivity(acts.RestoreOracle, activities.OracleRestoreInput{Database: "central", BackupID: backupID,
		Method: "datapump", TableExistsAction: "SKIP"})
	if err != nil {
		t.Fatal(err)
	}
	final := tableFingerprints(t, f.app)
	if strings.Join(final["FINANCE_SAVINGS_GOAL"], "\n") != strings.Join(before["FINANCE_SAVINGS_GOAL"], "\n") {
		t.Fatalf("FINANCE_SAVINGS_GOAL after the Data Pump import differs")
	}
}

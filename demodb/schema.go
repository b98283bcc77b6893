package demodb

// schemaVersion is stored in PRAGMA user_version so that tools can tell a
// demodb database (and its layout) from an arbitrary SQLite file.
const schemaVersion = 1

// schemaSQL is the finance application's schema. Amounts are integer pence so
// that sums round-trip exactly through backups, dumps and restores.
const schemaSQL = `
CREATE TABLE users (
    user_id       INTEGER PRIMARY KEY,
    username      TEXT UNIQUE NOT NULL,
    email         TEXT UNIQUE NOT NULL,
    password_hash TEXT NOT NULL,
    full_name     TEXT,
    currency      TEXT NOT NULL DEFAULT 'GBP',
    created_at    TEXT NOT NULL,
    modified_at   TEXT NOT NULL
);

-- A category with a NULL user_id is built in and shared by every user.
CREATE TABLE categories (
    category_id INTEGER PRIMARY KEY,
    user_id     INTEGER REFERENCES users(user_id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('expense', 'income')),
    icon        TEXT,
    created_at  TEXT NOT NULL,
    modified_at TEXT NOT NULL
);
-- An expression index: NULL owners would otherwise never collide.
CREATE UNIQUE INDEX categories_owner_kind_name ON categories (coalesce(user_id, 0), kind, name);

CREATE TABLE expenses (
    expense_id     INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    category_id    INTEGER NOT NULL REFERENCES categories(category_id),
    amount_pence   INTEGER NOT NULL CHECK (amount_pence > 0),
    expense_date   TEXT NOT NULL,
    description    TEXT,
    payment_method TEXT CHECK (payment_method IN ('card', 'credit card', 'cash', 'bank transfer',
                                                  'direct debit', 'standing order', 'mobile wallet', 'paypal')),
    created_at     TEXT NOT NULL,
    modified_at    TEXT NOT NULL
);
CREATE INDEX expenses_user_date ON expenses (user_id, expense_date);
CREATE INDEX expenses_category ON expenses (category_id);

CREATE TABLE incomes (
    income_id    INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    category_id  INTEGER REFERENCES categories(category_id),
    source       TEXT NOT NULL,
    amount_pence INTEGER NOT NULL CHECK (amount_pence > 0),
    income_date  TEXT NOT NULL,
    frequency    TEXT NOT NULL DEFAULT 'one-off' CHECK (frequency IN ('one-off', 'weekly', 'monthly', 'yearly')),
    description  TEXT,
    created_at   TEXT NOT NULL,
    modified_at  TEXT NOT NULL
);
CREATE INDEX incomes_user_date ON incomes (user_id, income_date);

CREATE TABLE budgets (
    budget_id          INTEGER PRIMARY KEY,
    user_id            INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    category_id        INTEGER NOT NULL REFERENCES categories(category_id),
    amount_limit_pence INTEGER NOT NULL CHECK (amount_limit_pence > 0),
    period             TEXT NOT NULL CHECK (period IN ('monthly', 'weekly')),
    start_date         TEXT NOT NULL,
    end_date           TEXT CHECK (end_date IS NULL OR end_date >= start_date),
    created_at         TEXT NOT NULL,
    modified_at        TEXT NOT NULL,
    UNIQUE (user_id, category_id, period, start_date)
);

CREATE TABLE savings_goals (
    goal_id       INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    target_pence  INTEGER NOT NULL CHECK (target_pence > 0),
    current_pence INTEGER NOT NULL DEFAULT 0 CHECK (current_pence >= 0),
    target_date   TEXT,
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'achieved', 'paused', 'cancelled')),
    created_at    TEXT NOT NULL,
    modified_at   TEXT NOT NULL
);
CREATE INDEX savings_goals_user ON savings_goals (user_id);

-- Tombstones: an incremental backup that selects rows by modified_at cannot
-- see deletions, so the application records them here.
CREATE TABLE deleted_rows (
    table_name TEXT NOT NULL,
    row_id     INTEGER NOT NULL,
    user_id    INTEGER,
    deleted_at TEXT NOT NULL,
    PRIMARY KEY (table_name, row_id)
) WITHOUT ROWID;

CREATE TRIGGER expenses_tombstone AFTER DELETE ON expenses
BEGIN
    INSERT OR REPLACE INTO deleted_rows (table_name, row_id, user_id, deleted_at)
    VALUES ('expenses', OLD.expense_id, OLD.user_id, strftime('%Y-%m-%d %H:%M:%S', 'now'));
END;

CREATE TRIGGER incomes_tombstone AFTER DELETE ON incomes
BEGIN
    INSERT OR REPLACE INTO deleted_rows (table_name, row_id, user_id, deleted_at)
    VALUES ('incomes', OLD.income_id, OLD.user_id, strftime('%Y-%m-%d %H:%M:%S', 'now'));
END;

-- Incremental exports select on modified_at, so an update that forgets to
-- bump it would silently drop out of the next incremental backup.
CREATE TRIGGER expenses_touch AFTER UPDATE ON expenses
WHEN NEW.modified_at IS OLD.modified_at
BEGIN
    UPDATE expenses SET modified_at = strftime('%Y-%m-%d %H:%M:%S', 'now')
    WHERE expense_id = NEW.expense_id;
END;

-- A goal is achieved exactly when its savings reach the target; paused and
-- cancelled goals keep the status the user gave them.
CREATE TRIGGER savings_goals_status AFTER UPDATE OF current_pence, target_pence ON savings_goals
WHEN NEW.status IN ('active', 'achieved')
 AND NEW.status <> CASE WHEN NEW.current_pence >= NEW.target_pence THEN 'achieved' ELSE 'active' END
BEGIN
    UPDATE savings_goals
    SET status = CASE WHEN NEW.current_pence >= NEW.target_pence THEN 'achieved' ELSE 'active' END
    WHERE goal_id = NEW.goal_id;
END;

CREATE VIEW monthly_spending AS
SELECT e.user_id,
       e.category_id,
       c.name                    AS category,
       substr(e.expense_date, 1, 7) AS month,
       count(*)                  AS expenses,
       sum(e.amount_pence)       AS total_pence
FROM expenses AS e
JOIN categories AS c ON c.category_id = e.category_id
GROUP BY e.user_id, e.category_id, month;

CREATE VIEW savings_progress AS
SELECT goal_id,
       user_id,
       name,
       current_pence,
       target_pence,
       round(100.0 * current_pence / target_pence, 1) AS percent,
       status
FROM savings_goals;
` + writerStateSQL

// writerStateSQL holds the invariants that RunWriter maintains and
// CheckConsistent verifies. It is updated in the same transaction as every
// change to expenses or incomes, so any committed state satisfies
//
//	expense_rows  = (SELECT count(*)          FROM expenses)
//	expense_pence = (SELECT sum(amount_pence) FROM expenses)
//	income_rows   = (SELECT count(*)          FROM incomes)
//	income_pence  = (SELECT sum(amount_pence) FROM incomes)
//
// and a copy that mixes pages from different commits almost certainly not.
const writerStateSQL = `
CREATE TABLE IF NOT EXISTS writer_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    commits       INTEGER NOT NULL,
    expense_rows  INTEGER NOT NULL,
    expense_pence INTEGER NOT NULL,
    income_rows   INTEGER NOT NULL,
    income_pence  INTEGER NOT NULL,
    modified_at   TEXT NOT NULL
);
`

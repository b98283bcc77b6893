package oraclesrc

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestOraCode(t *testing.T) {
	base := errors.New("ORA-31608: specified object of type REF_CONSTRAINT not found\nORA-06512: at \"SYS.DBMS_METADATA\", line 6781")
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{base, 31608},
		{fmt.Errorf("REF_CONSTRAINT DDL of table FINANCE_USER: %w", base), 31608},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", base)), 31608},
		{errors.Join(errors.New("first attempt failed"), errors.New("ORA-01555: snapshot too old: rollback segment number 9")), 1555},
		{errors.New("ORA-00942: table or view does not exist"), 942},
		{errors.New("ORA-24344: success with compilation error"), 24344},
		{errors.New("connection refused"), 0},
		{errors.New("RMAN-03009: failure of backup command"), 0},
		{errors.New("ORA-"), 0},
		{errors.New("ORA-1234"), 0},
		{errors.New("ORA-1234x: short"), 0},
		{errors.New("ORA-ABCDE"), 0},
	}
	for _, tt := range tests {
		if got := oraCode(tt.err); got != tt.want {
			t.Errorf("oraCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestConnString(t *testing.T) {
	const password = "s3cr3t-P@ss/w0rd#x"
	c := Conn{Host: "db.finance.internal", Port: 1521, Service: "FREEPDB1", User: "FINANCE", Password: password}
	if got := c.String(); got != "FINANCE@db.finance.internal:1521/FREEPDB1" {
		t.Errorf("String = %q", got)
	}
	type holder struct {
		Target Conn
		Note   string
	}
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%v %+v %s", c, c, c), fmt.Sprintf("%v %+v", holder{c, "x"}, &holder{c, "y"})} {
		if strings.Contains(s, password) || strings.Contains(s, "s3cr3t") {
			t.Errorf("%q holds the password", s)
		}
	}
	// Open checks the fields; its error names the connection without the password.
	for _, bad := range []Conn{{Password: password}, {Host: "h", Port: 1521, Service: "S", Password: password},
		{Host: "h", Port: 0, Service: "S", User: "U", Password: password}} {
		db, err := Open(bad)
		if err == nil {
			db.Close()
			t.Errorf("Open(%v) succeeded", bad)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("Open error %q holds the password", err)
		}
	}
	db, err := Open(c) // sql.OpenDB does not connect
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func TestBinds(t *testing.T) {
	st := Statement{SQL: "x", Binds: []Bind{{"schema", "FINANCE"}, {"name_expr", sql.NullString{}}}}
	want := []any{sql.Named("schema", "FINANCE"), sql.Named("name_expr", sql.NullString{})}
	if got := binds(st); !reflect.DeepEqual(got, want) {
		t.Errorf("binds = %#v", got)
	}
	if got := binds(Statement{}); len(got) != 0 {
		t.Errorf("binds of none = %#v", got)
	}
}

func TestCurrentSCN(t *testing.T) {
	answers := func(results ...any) *fakeWire {
		return &fakeWire{query: func(q string, _ []driver.NamedValue) (*fakeResult, error) {
			for i, s := range scnQueries {
				if q == s {
					switch r := results[i].(type) {
					case error:
						return nil, r
					case nil:
						return &fakeResult{width: 1}, nil // no row
					default:
						return &fakeResult{width: 1, rows: [][]driver.Value{{r}}}, nil
					}
				}
			}
			return nil, fmt.Errorf("unexpected query %q", q)
		}}
	}
	denied := errors.New("ORA-00942: table or view does not exist")
	noExec := errors.New("ORA-06550: PLS-00201: identifier 'DBMS_FLASHBACK' must be declared")
	ctx := context.Background()
	tests := []struct {
		name string
		w    *fakeWire
		want string
		why  string
	}{
		{"v$database", answers("48213377", "1", "1"), "48213377", ""},
		{"padded", answers(" 48213377 ", "1", "1"), "48213377", ""},
		{"falls back to DBMS_FLASHBACK", answers(denied, "48213400", "1"), "48213400", ""},
		{"falls back to TIMESTAMP_TO_SCN", answers(denied, noExec, "48213000"), "48213000", ""},
		{"no row falls back", answers(nil, "7", "1"), "7", ""},
		{"all fail", answers(denied, noExec, errors.New("ORA-08180: no snapshot found")), "", "ORA-08180"},
		{"fraction", answers("12.5", "1", "1"), "", `SCN "12.5"`},
		{"negative", answers("-1", "1", "1"), "", "SCN"},
		{"exponent", answers("1E+10", "1", "1"), "", "SCN"},
		{"text", answers("none", "1", "1"), "", "SCN"},
	}
	for _, tt := range tests {
		got, err := CurrentSCN(ctx, tt.w.open(t))
		if tt.why == "" {
			if err != nil || got != tt.want {
				t.Errorf("%s: %q, %v; want %q", tt.name, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("%s: %q, %v; want an error saying %q", tt.name, got, err, tt.why)
		}
	}
	// Every failure is reported, not just the last.
	_, err := CurrentSCN(ctx, answers(denied, noExec, errors.New("ORA-08180: no snapshot found")).open(t))
	if err == nil || !errors.Is(err, denied) || !errors.Is(err, noExec) {
		t.Errorf("errors lost: %v", err)
	}
}

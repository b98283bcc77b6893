package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const oracleDB = `databases:
  - name: central
    engine: oracle
    oracle:
      host: oracle.internal
      service: FREEPDB1
      user: finance
      password_env: BULWARK_TEST_ORACLE_PASSWORD
      tables: [finance_user, "FINANCE_EXPENSE"]
      datapump_directory: bulwark_dp
`

func TestOracleDatabase(t *testing.T) {
	c, _ := mustParse(t, minimal+oracleDB)
	d, err := c.Database("central")
	if err != nil {
		t.Fatal(err)
	}
	o := d.Oracle
	if !d.IsOracle() || o.Port != 1521 || o.Schema != "FINANCE" || o.DataPumpDirectory != "BULWARK_DP" ||
		strings.Join(o.Tables, ",") != "FINANCE_USER,FINANCE_EXPENSE" {
		t.Fatalf("oracle database %+v %+v", d, o)
	}
	if len(c.DatabasesOn(c.Host)) != 0 {
		t.Fatalf("an Oracle database was given to the SQLite activities: %v", c.DatabasesOn(c.Host))
	}
	t.Setenv("BULWARK_TEST_ORACLE_PASSWORD", "s3cret:@/#?")
	if pw, err := o.ReadPassword(); err != nil || pw != "s3cret:@/#?" {
		t.Fatalf("password %q %v", pw, err)
	}
	t.Setenv("BULWARK_TEST_ORACLE_PASSWORD", "")
	_, err = o.ReadPassword()
	if err == nil || !strings.Contains(err.Error(), "BULWARK_TEST_ORACLE_PASSWORD") {
		t.Fatalf("unset password: %v", err)
	}

	dir := t.TempDir()
	pwFile := filepath.Join(dir, "oracle.pw")
	os.WriteFile(pwFile, []byte("from-file\n"), 0o600)
	c, _ = mustParse(t, minimal+strings.Replace(oracleDB, "password_env: BULWARK_TEST_ORACLE_PASSWORD", "password_file: "+pwFile, 1))
	d, _ = c.Database("central")
	if pw, err := d.Oracle.ReadPassword(); err != nil || pw != "from-file" {
		t.Fatalf("password file: %q %v", pw, err)
	}
}

func TestInvalidOracleDatabases(t *testing.T) {
	cases := map[string]struct{ from, to, want string }{
		"literal password":  {"password_env: BULWARK_TEST_ORACLE_PASSWORD", "password: oracle123", "never written in the config"},
		"no password":       {"      password_env: BULWARK_TEST_ORACLE_PASSWORD\n", "", "password_env"},
		"both passwords":    {"password_env: BULWARK_TEST_ORACLE_PASSWORD", "password_env: X\n      password_file: /x", "not both"},
		"no host":           {"host: oracle.internal", "host: \"\"", "oracle.host"},
		"bad port":          {"service: FREEPDB1", "service: FREEPDB1\n      port: 70000", "TCP port"},
		"no service":        {"service: FREEPDB1", "service: \"\"", "service"},
		"bad table":         {"finance_user,", `"a; drop table x",`, "tables[0]"},
		"bad directory":     {"datapump_directory: bulwark_dp", "datapump_directory: ../dp", "datapump_directory"},
		"unknown engine":    {"engine: oracle", "engine: postgres", `"postgres" is not sqlite or oracle`},
		"oracle for sqlite": {"engine: oracle", "engine: sqlite\n    path: x.db", "add engine: oracle"},
		"path on oracle":    {"engine: oracle", "engine: oracle\n    path: x.db", "has no path"},
		"drill on oracle":   {"engine: oracle", "engine: oracle\n    drill: {cron: \"0 3 1 * *\"}", "drills restore SQLite files"},
	}
	for name, c := range cases {
		yaml := minimal + strings.Replace(oracleDB, c.from, c.to, 1)
		if !strings.Contains(oracleDB, c.from) {
			t.Fatalf("%s: the case edits nothing", name)
		}
		_, _, err := parse(t, yaml)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to name %q", name, err, c.want)
		}
	}
}

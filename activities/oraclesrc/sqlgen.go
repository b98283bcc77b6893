package oraclesrc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Statement is SQL or PL/SQL text with named binds (":name"); pass Binds as sql.Named values.
// Values never appear in the text. DDL cannot take binds: where DDL is generated, only quoted
// identifiers and validated integers are written into it.
type Statement struct {
	SQL   string
	Binds []Bind
}

// Bind is one named bind value.
type Bind struct {
	Name  string
	Value any
}

// ErrIdentifier reports a name that cannot be a safe Oracle identifier.
var ErrIdentifier = errors.New("invalid oracle identifier")

// QuoteIdent returns name as a quoted Oracle identifier. Names are taken exactly as the data
// dictionary stores them (already upper-case unless created quoted), and Bulwark always quotes:
// "ORDER" and "Mixed Case" then work like "EMP", and nothing in a name is ever read as SQL.
// Oracle forbids the double quote and NUL in identifiers; Bulwark also rejects control
// characters and names longer than 128 bytes (the 12.2+ limit).
func QuoteIdent(name string) (string, error) {
	if name == "" || len(name) > 128 {
		return "", fmt.Errorf("%w: %q: length %d, want 1..128", ErrIdentifier, truncate(name, 40), len(name))
	}
	for _, r := range name {
		if r == '"' || r < ' ' || r == 0x7f {
			return "", fmt.Errorf("%w: %q: contains %q", ErrIdentifier, truncate(name, 40), r)
		}
	}
	return `"` + name + `"`, nil
}

// NormalizeIdent turns a name as a user writes it in configuration into the dictionary form:
// `"Mixed"` keeps its exact case, an unquoted name must be a plain identifier (a letter, then
// letters, digits, _ $ #) and is upper-cased, as Oracle does.
func NormalizeIdent(s string) (string, error) {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		inner := s[1 : len(s)-1]
		if _, err := QuoteIdent(inner); err != nil {
			return "", err
		}
		return inner, nil
	}
	if s == "" || len(s) > 128 {
		return "", fmt.Errorf("%w: %q", ErrIdentifier, truncate(s, 40))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
		if i == 0 && !letter || !(letter || c >= '0' && c <= '9' || c == '_' || c == '$' || c == '#') {
			return "", fmt.Errorf("%w: %q: unquoted names are a letter then letters, digits, _ $ #", ErrIdentifier, truncate(s, 40))
		}
	}
	return strings.ToUpper(s), nil
}

// QualifiedName returns "SCHEMA"."NAME".
func QualifiedName(schema, name string) (string, error) {
	s, err := QuoteIdent(schema)
	if err != nil {
		return "", fmt.Errorf("schema: %w", err)
	}
	n, err := QuoteIdent(name)
	if err != nil {
		return "", fmt.Errorf("object: %w", err)
	}
	return s + "." + n, nil
}

// SCN queries. CurrentSCNSQL needs SELECT on V$DATABASE (SELECT_CATALOG_ROLE); FlashbackSCNSQL
// needs EXECUTE on DBMS_FLASHBACK. Both return the SCN as NUMBER: scan it into a string.
const (
	CurrentSCNSQL   = `SELECT TO_CHAR(current_scn) FROM v$database`
	FlashbackSCNSQL = `SELECT TO_CHAR(DBMS_FLASHBACK.GET_SYSTEM_CHANGE_NUMBER) FROM dual`
)

// SessionSetupSQL is run first on every pinned session Bulwark uses: it fixes the number and
// date text that implicit conversions would otherwise take from the client's NLS settings.
var SessionSetupSQL = []string{
	`ALTER SESSION SET NLS_NUMERIC_CHARACTERS = '.,'`,
	`ALTER SESSION SET NLS_DATE_FORMAT = 'SYYYY-MM-DD HH24:MI:SS'`,
	`ALTER SESSION SET NLS_TIMESTAMP_FORMAT = 'SYYYY-MM-DD HH24:MI:SS.FF9'`,
	`ALTER SESSION SET NLS_TIMESTAMP_TZ_FORMAT = 'SYYYY-MM-DD HH24:MI:SS.FF9 TZR'`,
	`ALTER SESSION SET TIME_ZONE = '+00:00'`,
}

// MetadataTransformSQL returns the PL/SQL block that sets DBMS_METADATA's session transforms
// for clean, portable DDL: no storage, segment attributes or tablespaces; no schema prefix
// (EMIT_SCHEMA, 12.2 and later) so restore can target another schema; a terminator after every
// statement (";" for SQL, "/" for PL/SQL) so SplitDDL can cut the output; constraints as
// separate ALTER TABLE statements; and foreign keys left out of table DDL
// (REF_CONSTRAINTS=false) because they are fetched with GET_DEPENDENT_DDL('REF_CONSTRAINT')
// and added after the data. The flags are PL/SQL BOOLEAN literals (FALSE/TRUE): BOOLEAN cannot
// be bound from go-ora before 23ai, and they are constants, not data.
func MetadataTransformSQL() string {
	params := []struct {
		name string
		on   bool
	}{
		{"PRETTY", true},
		{"SQLTERMINATOR", true},
		{"SEGMENT_ATTRIBUTES", false},
		{"STORAGE", false},
		{"TABLESPACE", false},
		{"EMIT_SCHEMA", false},
		{"CONSTRAINTS", true},
		{"CONSTRAINTS_AS_ALTER", true},
		{"REF_CONSTRAINTS", false},
	}
	var b strings.Builder
	b.WriteString("BEGIN\n")
	b.WriteString("  DBMS_METADATA.SET_TRANSFORM_PARAM(DBMS_METADATA.SESSION_TRANSFORM, 'DEFAULT');\n")
	for _, p := range params {
		v := "FALSE"
		if p.on {
			v = "TRUE"
		}
		fmt.Fprintf(&b, "  DBMS_METADATA.SET_TRANSFORM_PARAM(DBMS_METADATA.SESSION_TRANSFORM, '%s', %s);\n", p.name, v)
	}
	b.WriteString("END;")
	return b.String()
}

// metadataTypes maps USER_OBJECTS.OBJECT_TYPE to the DBMS_METADATA object type name.
var metadataTypes = map[string]string{
	"TABLE": "TABLE", "VIEW": "VIEW", "SEQUENCE": "SEQUENCE", "INDEX": "INDEX",
	"SYNONYM": "SYNONYM", "TRIGGER": "TRIGGER", "FUNCTION": "FUNCTION", "PROCEDURE": "PROCEDURE",
	"PACKAGE": "PACKAGE_SPEC", "PACKAGE BODY": "PACKAGE_BODY", "TYPE": "TYPE_SPEC",
	"TYPE BODY": "TYPE_BODY", "MATERIALIZED VIEW": "MATERIALIZED_VIEW",
}

// MetadataObjectType maps a USER_OBJECTS.OBJECT_TYPE ("PACKAGE BODY") to the name GET_DDL takes
// ("PACKAGE_BODY"; asking for "PACKAGE BODY" raises ORA-31600).
func MetadataObjectType(objectType string) (string, error) {
	if t, ok := metadataTypes[strings.ToUpper(strings.TrimSpace(objectType))]; ok {
		return t, nil
	}
	return "", fmt.Errorf("no DBMS_METADATA type for object type %q", objectType)
}

// GetDDL returns the query for one object's DDL (a CLOB that may hold several statements).
func GetDDL(objectType, schema, name string) (Statement, error) {
	t, err := MetadataObjectType(objectType)
	if err != nil {
		return Statement{}, err
	}
	if _, err := QualifiedName(schema, name); err != nil {
		return Statement{}, err
	}
	return Statement{
		SQL:   `SELECT DBMS_METADATA.GET_DDL(:object_type, :name, :schema) FROM dual`,
		Binds: []Bind{{"object_type", t}, {"name", name}, {"schema", schema}},
	}, nil
}

// GetDependentDDL returns the query for the objects of dependentType that belong to a table:
// "REF_CONSTRAINT", "INDEX", "TRIGGER", "COMMENT", "OBJECT_GRANT". ORA-31608 from it means there
// are none, not a failure.
func GetDependentDDL(dependentType, schema, table string) (Statement, error) {
	switch dependentType {
	case "REF_CONSTRAINT", "INDEX", "TRIGGER", "COMMENT", "OBJECT_GRANT", "CONSTRAINT":
	default:
		return Statement{}, fmt.Errorf("unsupported dependent type %q", dependentType)
	}
	if _, err := QualifiedName(schema, table); err != nil {
		return Statement{}, err
	}
	return Statement{
		SQL:   `SELECT DBMS_METADATA.GET_DEPENDENT_DDL(:dependent_type, :name, :schema) FROM dual`,
		Binds: []Bind{{"dependent_type", dependentType}, {"name", table}, {"schema", schema}},
	}, nil
}

// Text formats shared by export (TO_CHAR) and restore (TO_DATE/TO_TIMESTAMP); see oratext.go.
const (
	dateFormat      = `SYYYY-MM-DD HH24:MI:SS`
	timestampFormat = `SYYYY-MM-DD HH24:MI:SS.FF9`
)

// selectExprs returns the select-list expressions for one column, in the order ParseExport
// reads them: TIMESTAMP WITH TIME ZONE takes two (the UTC instant and the zone).
func selectExprs(c Column) ([]string, error) {
	q, err := QuoteIdent(c.Name)
	if err != nil {
		return nil, err
	}
	switch c.Type {
	case TypeNumber:
		return []string{"TO_CHAR(" + q + ", 'TM9')"}, nil
	case TypeDate:
		return []string{"TO_CHAR(" + q + ", '" + dateFormat + "')"}, nil
	case TypeTimestamp:
		return []string{"TO_CHAR(" + q + ", '" + timestampFormat + "')"}, nil
	case TypeTimestampTZ:
		return []string{
			"TO_CHAR(SYS_EXTRACT_UTC(" + q + "), '" + timestampFormat + "')",
			"TO_CHAR(" + q + ", 'TZR')",
		}, nil
	case TypeTimestampLTZ:
		return []string{"TO_CHAR(SYS_EXTRACT_UTC(CAST(" + q + " AS TIMESTAMP WITH TIME ZONE)), '" + timestampFormat + "')"}, nil
	case TypeIntervalYM, TypeIntervalDS:
		return []string{"TO_CHAR(" + q + ")"}, nil
	case TypeRowID:
		return []string{"CAST(" + q + " AS VARCHAR2(4000))"}, nil // ROWID and UROWID alike
	}
	return []string{q}, nil
}

// SelectAsOfSCN returns the query reading every column of schema.table as of one SCN, bind
// :scn (pass the SCN as the decimal string the SCN query returned). Columns are converted to
// exact text where the driver would lose information (see selectExprs).
func SelectAsOfSCN(schema, table string, cols []Column) (string, error) {
	qn, err := QualifiedName(schema, table)
	if err != nil {
		return "", err
	}
	if len(cols) == 0 {
		return "", errors.New("select: no columns")
	}
	var list []string
	for _, c := range cols {
		e, err := selectExprs(c)
		if err != nil {
			return "", err
		}
		list = append(list, e...)
	}
	return "SELECT " + strings.Join(list, ", ") + " FROM " + qn + " AS OF SCN :scn", nil
}

// bindExprs returns the VALUES expressions for one column with placeholders from next(); the
// bind values are what Batcher produces for the column (see batch.go).
func bindExprs(c Column, next func() string) []string {
	switch c.Type {
	case TypeDate:
		return []string{"TO_DATE(" + next() + ", '" + dateFormat + "')"}
	case TypeTimestamp:
		return []string{"TO_TIMESTAMP(" + next() + ", '" + timestampFormat + "')"}
	case TypeTimestampTZ:
		ts, zone := next(), next()
		return []string{"FROM_TZ(TO_TIMESTAMP(" + ts + ", '" + timestampFormat + "'), 'UTC') AT TIME ZONE " + zone}
	case TypeTimestampLTZ:
		return []string{"FROM_TZ(TO_TIMESTAMP(" + next() + ", '" + timestampFormat + "'), 'UTC')"}
	case TypeIntervalYM:
		return []string{"TO_YMINTERVAL(" + next() + ")"}
	case TypeIntervalDS:
		return []string{"TO_DSINTERVAL(" + next() + ")"}
	}
	return []string{next()}
}

// InsertSQL returns the INSERT for cols in the given order, with positional binds :1, :2, …
// (one per bind slot; TIMESTAMP WITH TIME ZONE takes two). Use Batcher.Columns for the order so
// LOB columns come last.
func InsertSQL(schema, table string, cols []Column) (string, error) {
	qn, err := QualifiedName(schema, table)
	if err != nil {
		return "", err
	}
	if len(cols) == 0 {
		return "", errors.New("insert: no columns")
	}
	n := 0
	next := func() string { n++; return ":" + strconv.Itoa(n) }
	var names, values []string
	for _, c := range cols {
		q, err := QuoteIdent(c.Name)
		if err != nil {
			return "", err
		}
		names = append(names, q)
		values = append(values, bindExprs(c, next)...)
	}
	return "INSERT INTO " + qn + " (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(values, ", ") + ")", nil
}

// DataPumpExport returns an anonymous block that starts a Data Pump schema export consistent
// at scn into directory/dumpFile (log next to it) and detaches; poll USER_DATAPUMP_JOBS by
// job name. The schema list is a bound value, never SQL text: Data Pump parses it itself, so the
// name is checked to hold no quote. PARALLEL stays 1 (Oracle Free has two cores).
func DataPumpExport(job, schema, directory, dumpFile, logFile, scn string) (Statement, error) {
	if err := checkDataPumpNames(job, schema, directory, dumpFile, logFile); err != nil {
		return Statement{}, err
	}
	if cs, err := CanonicalNumber(scn); err != nil || cs != scn || strings.ContainsAny(scn, "-.") || scn == "0" {
		return Statement{}, fmt.Errorf("bad scn %q", scn)
	}
	const block = `DECLARE
  h NUMBER;
BEGIN
  h := DBMS_DATAPUMP.OPEN(operation => 'EXPORT', job_mode => 'SCHEMA', job_name => :job);
  DBMS_DATAPUMP.ADD_FILE(handle => h, filename => :dump_file, directory => :directory,
    filetype => DBMS_DATAPUMP.KU$_FILE_TYPE_DUMP_FILE, reusefile => 1);
  DBMS_DATAPUMP.ADD_FILE(handle => h, filename => :log_file, directory => :log_directory,
    filetype => DBMS_DATAPUMP.KU$_FILE_TYPE_LOG_FILE, reusefile => 1);
  DBMS_DATAPUMP.METADATA_FILTER(handle => h, name => 'SCHEMA_EXPR', value => :schema_expr);
  DBMS_DATAPUMP.SET_PARAMETER(handle => h, name => 'FLASHBACK_SCN', value => TO_NUMBER(:scn));
  DBMS_DATAPUMP.SET_PARALLEL(handle => h, degree => 1);
  DBMS_DATAPUMP.START_JOB(handle => h);
  DBMS_DATAPUMP.DETACH(handle => h);
END;`
	return Statement{SQL: block, Binds: []Bind{
		{"job", job}, {"dump_file", dumpFile}, {"directory", directory}, {"log_file", logFile},
		{"log_directory", directory}, {"schema_expr", "IN ('" + schema + "')"}, {"scn", scn},
	}}, nil
}

// checkDataPumpNames checks what a Data Pump block takes as text: Data Pump
// parses the names itself, so none may hold a quote, and file names are
// plain names in the directory.
func checkDataPumpNames(job, schema, directory, dumpFile, logFile string) error {
	for _, n := range []string{job, schema, directory} {
		if _, err := QuoteIdent(n); err != nil {
			return err
		}
		if strings.ContainsAny(n, "'") {
			return fmt.Errorf("%w: %q contains a quote", ErrIdentifier, n)
		}
	}
	for _, f := range []string{dumpFile, logFile} {
		if f == "" || strings.ContainsAny(f, "/\\'\"\x00") || len(f) > 255 {
			return fmt.Errorf("bad data pump file name %q", f)
		}
	}
	return nil
}

// RestartSequence returns the DDL that moves a sequence so its next value is next.
// ALTER SEQUENCE … RESTART START WITH n is documented from Oracle 18c (it exists, undocumented,
// in 12.2); before that use RecreateSequence. DDL takes no binds: next is an integer, formatted
// here.
func RestartSequence(schema, name string, next int64) (string, error) {
	qn, err := QualifiedName(schema, name)
	if err != nil {
		return "", err
	}
	return "ALTER SEQUENCE " + qn + " RESTART START WITH " + strconv.FormatInt(next, 10), nil
}

// RecreateSequence is the pre-18c alternative: drop and create again from the original DDL with
// START WITH replaced. Grants on the sequence are lost and must be restored after it. createDDL
// is DBMS_METADATA's CREATE SEQUENCE text; its START WITH clause is replaced.
func RecreateSequence(schema, name, createDDL string, next int64) ([]string, error) {
	qn, err := QualifiedName(schema, name)
	if err != nil {
		return nil, err
	}
	stmts, err := SplitDDL(createDDL)
	if err != nil {
		return nil, err
	}
	if len(stmts) != 1 || !strings.HasPrefix(strings.ToUpper(stmts[0]), "CREATE SEQUENCE") {
		return nil, errors.New("recreate sequence: want exactly one CREATE SEQUENCE statement")
	}
	create := stmts[0]
	up := strings.ToUpper(create)
	i := strings.Index(up, " START WITH ")
	if i < 0 {
		create += " START WITH " + strconv.FormatInt(next, 10)
	} else {
		j := i + len(" START WITH ")
		k := j
		for k < len(create) && (create[k] >= '0' && create[k] <= '9' || create[k] == '-') {
			k++
		}
		if k == j {
			return nil, errors.New("recreate sequence: START WITH has no number")
		}
		create = create[:j] + strconv.FormatInt(next, 10) + create[k:]
	}
	return []string{"DROP SEQUENCE " + qn, create}, nil
}

// CompileSchema recompiles every invalid object of a schema; bind :schema.
const CompileSchema = `BEGIN DBMS_UTILITY.COMPILE_SCHEMA(schema => :schema, compile_all => FALSE); END;`

// InvalidObjectsSQL lists the objects still invalid after CompileSchema, with their first
// error, for the restore report; bind :schema.
const InvalidObjectsSQL = `SELECT o.object_type, o.object_name,
       (SELECT MIN(e.text) KEEP (DENSE_RANK FIRST ORDER BY e.sequence)
          FROM all_errors e
         WHERE e.owner = o.owner AND e.name = o.object_name AND e.type = o.object_type) AS first_error
  FROM all_objects o
 WHERE o.owner = :schema AND o.status = 'INVALID'
 ORDER BY o.object_type, o.object_name`

// MaxColumnValueSQL returns the query for the largest value of a sequence-fed column, to move the
// sequence past the restored data. The result is NULL for an empty table.
func MaxColumnValueSQL(schema, table, column string) (string, error) {
	qn, err := QualifiedName(schema, table)
	if err != nil {
		return "", err
	}
	qc, err := QuoteIdent(column)
	if err != nil {
		return "", err
	}
	return "SELECT TO_CHAR(MAX(" + qc + "), 'TM9') FROM " + qn, nil
}

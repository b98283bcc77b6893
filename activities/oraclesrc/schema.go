package oraclesrc

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// SchemaFile is the name of the schema description in a logical backup's export, next to one
// row stream per table ("<TABLE>.rows", see RowsFileName).
const SchemaFile = "schema.json"

// SchemaFormat is the version of SchemaExport's JSON layout.
const SchemaFormat = 1

// SchemaExport is everything a logical backup holds besides rows: the objects of the schema with
// the DDL that recreates them (DBMS_METADATA, split into statements, without the schema name so
// that it can be replayed into another schema), what each depends on, the tables' columns and
// figures, the sequences' positions and the grants the schema made.
type SchemaExport struct {
	Format int    `json:"format"`
	Schema string `json:"schema"`
	// SCN is the system change number every table was read at, as decimal text.
	SCN string `json:"scn"`
	// DBVersion is what the database reported (V$VERSION / PRODUCT_COMPONENT_VERSION).
	DBVersion string `json:"db_version,omitempty"`
	// DDLStable says that no DDL happened in the schema while its DDL was read
	// (MAX(LAST_DDL_TIME) was the same before and after): DDL is not read at the SCN.
	DDLStable bool           `json:"ddl_stable"`
	Objects   []SchemaObject `json:"objects"`
	Grants    []Grant        `json:"grants,omitempty"`
}

// SchemaObject is one object of the schema. Constraints, indexes and foreign keys name the Table
// they belong to. Tables carry their columns in table order, identity columns, the name of their
// row stream and its figures.
type SchemaObject struct {
	Kind      Kind        `json:"kind"`
	Name      string      `json:"name"`
	Table     string      `json:"table,omitempty"`
	DDL       []string    `json:"ddl"`
	DependsOn []ObjectRef `json:"depends_on,omitempty"`

	Columns  []ColumnSpec `json:"columns,omitempty"`
	Identity []Identity   `json:"identity,omitempty"`
	RowsFile string       `json:"rows_file,omitempty"`
	Rows     int64        `json:"rows,omitempty"`
	Digest   string       `json:"digest,omitempty"`

	// LastNumber is USER_SEQUENCES.LAST_NUMBER read after the SCN: a sequence restored to it
	// is past every value the data at the SCN can hold.
	LastNumber string `json:"last_number,omitempty"`
}

// ColumnSpec is Column as stored in schema.json.
type ColumnSpec struct {
	Name          string `json:"name"`
	Type          string `json:"type"`
	Precision     int    `json:"precision,omitempty"`
	Scale         int    `json:"scale,omitempty"`
	HasScale      bool   `json:"has_scale,omitempty"`
	Length        int    `json:"length,omitempty"`
	CharSemantics bool   `json:"char_semantics,omitempty"`
	Nullable      bool   `json:"nullable,omitempty"`
}

// Identity is an identity column: ALWAYS rejects explicit values, so restore switches it to BY
// DEFAULT while loading and back afterwards, starting past the data.
type Identity struct {
	Column     string `json:"column"`
	Generation string `json:"generation"` // ALWAYS, BY DEFAULT
}

// Grant is an object privilege the schema granted (USER_TAB_PRIVS_MADE).
type Grant struct {
	Grantee   string `json:"grantee"`
	Object    string `json:"object"`
	Privilege string `json:"privilege"`
	Grantable bool   `json:"grantable,omitempty"`
}

// SpecOf and ColumnOf convert between the stored and the working form of a column.
func SpecOf(c Column) ColumnSpec {
	return ColumnSpec{Name: c.Name, Type: c.Type.String(), Precision: c.Precision, Scale: c.Scale,
		HasScale: c.HasScale, Length: c.Length, CharSemantics: c.CharSemantics, Nullable: c.Nullable}
}

// ColumnOf is the inverse of SpecOf.
func ColumnOf(s ColumnSpec) (Column, error) {
	t, err := ParseType(s.Type)
	if err != nil {
		return Column{}, fmt.Errorf("column %q: %w", s.Name, err)
	}
	return Column{Name: s.Name, Type: t, Precision: s.Precision, Scale: s.Scale, HasScale: s.HasScale,
		Length: s.Length, CharSemantics: s.CharSemantics, Nullable: s.Nullable}, nil
}

// ColumnList returns a table object's columns in table order.
func (o SchemaObject) ColumnList() ([]Column, error) {
	cols := make([]Column, 0, len(o.Columns))
	for _, s := range o.Columns {
		c, err := ColumnOf(s)
		if err != nil {
			return nil, fmt.Errorf("table %q: %w", o.Name, err)
		}
		cols = append(cols, c)
	}
	return cols, nil
}

var rowsFileUnsafe = regexp.MustCompile(`[^A-Za-z0-9._ -]`)

// RowsFileName is the export file name of a table's rows: the name with anything outside the
// export name alphabet replaced, and the table's position to keep names unique ("0003 FINANCE_USER.rows").
func RowsFileName(index int, table string) string {
	name := rowsFileUnsafe.ReplaceAllString(table, "_")
	if len(name) > 150 {
		name = name[:150]
	}
	return fmt.Sprintf("%04d %s.rows", index, name)
}

// Tables returns the table objects in name order.
func (s *SchemaExport) Tables() []SchemaObject {
	var out []SchemaObject
	for _, o := range s.Objects {
		if o.Kind == KindTable {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Find returns the object of kind and name.
func (s *SchemaExport) Find(kind Kind, name string) (SchemaObject, bool) {
	for _, o := range s.Objects {
		if o.Kind == kind && o.Name == name {
			return o, true
		}
	}
	return SchemaObject{}, false
}

// ParseSchemaExport decodes and checks schema.json.
func ParseSchemaExport(data []byte) (*SchemaExport, error) {
	var s SchemaExport
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("schema.json: %w", err)
	}
	if s.Format < 1 || s.Format > SchemaFormat {
		return nil, fmt.Errorf("schema.json format %d, this Bulwark reads up to %d", s.Format, SchemaFormat)
	}
	if _, err := QuoteIdent(s.Schema); err != nil {
		return nil, fmt.Errorf("schema.json: schema: %w", err)
	}
	seen := map[ObjectRef]bool{}
	for _, o := range s.Objects {
		if _, ok := kindPhase[o.Kind]; !ok {
			return nil, fmt.Errorf("schema.json: object %q has unknown kind %q", o.Name, o.Kind)
		}
		if _, err := QuoteIdent(o.Name); err != nil {
			return nil, fmt.Errorf("schema.json: %s: %w", o.Kind, err)
		}
		r := ObjectRef{o.Kind, o.Name}
		if seen[r] {
			return nil, fmt.Errorf("schema.json: %s listed twice", r)
		}
		seen[r] = true
		if o.Kind == KindTable {
			if len(o.Columns) == 0 {
				return nil, fmt.Errorf("schema.json: table %q has no columns", o.Name)
			}
			if _, err := o.ColumnList(); err != nil {
				return nil, fmt.Errorf("schema.json: %w", err)
			}
			if o.Rows < 0 {
				return nil, fmt.Errorf("schema.json: table %q has %d rows", o.Name, o.Rows)
			}
		}
	}
	return &s, nil
}

// PlanObjects returns the objects in the form PlanRestore takes.
func (s *SchemaExport) PlanObjects() []Object {
	out := make([]Object, 0, len(s.Objects))
	for _, o := range s.Objects {
		deps := append([]ObjectRef(nil), o.DependsOn...)
		if o.Table != "" {
			deps = append(deps, ObjectRef{KindTable, o.Table})
		}
		out = append(out, Object{Kind: o.Kind, Name: o.Name, DependsOn: deps})
	}
	return out
}

// SplitTableDDL separates what DBMS_METADATA returns for a TABLE with CONSTRAINTS_AS_ALTER: the
// CREATE TABLE statement, and the ALTER TABLE … ADD CONSTRAINT statements (primary key, unique,
// check) and anything else that follows (COMMENT ON …), which run in the constraints phase.
func SplitTableDDL(ddl string) (create string, rest []string, err error) {
	stmts, err := SplitDDL(ddl)
	if err != nil {
		return "", nil, err
	}
	for _, s := range stmts {
		if create == "" && strings.HasPrefix(strings.ToUpper(strings.TrimSpace(s)), "CREATE") {
			create = s
			continue
		}
		rest = append(rest, s)
	}
	if create == "" {
		return "", nil, errors.New("table DDL has no CREATE statement")
	}
	return create, rest, nil
}

var createTableName = regexp.MustCompile(`(?is)^\s*CREATE\s+((GLOBAL\s+TEMPORARY\s+|PRIVATE\s+TEMPORARY\s+|SHARDED\s+|DUPLICATED\s+|IMMUTABLE\s+|BLOCKCHAIN\s+)*)TABLE\s+((?:"[^"]+"|[A-Za-z][A-Za-z0-9_$#]*)\s*\.\s*)?("[^"]+"|[A-Za-z][A-Za-z0-9_$#]*)`)

// RenameCreateTable rewrites a CREATE TABLE statement to create newName instead, for a restore
// of one table under a new name. Only the table's own name changes; constraints written inline
// keep their names, which would collide with the original's, so restore under a new name uses
// the CREATE statement alone (columns and NOT NULL), as documented.
func RenameCreateTable(create, newName string) (string, error) {
	q, err := QuoteIdent(newName)
	if err != nil {
		return "", err
	}
	m := createTableName.FindStringSubmatchIndex(create)
	if m == nil {
		return "", errors.New("not a CREATE TABLE statement")
	}
	start, end := m[2*3], m[2*4+1] // from the schema prefix (if any) to the end of the name
	if m[2*3] < 0 {
		start = m[2*4]
	}
	return create[:start] + q + create[end:], nil
}

// GrantSQL returns the GRANT statement for g on an object of the restored schema.
func GrantSQL(schema string, g Grant) (string, error) {
	obj, err := QualifiedName(schema, g.Object)
	if err != nil {
		return "", err
	}
	grantee, err := QuoteIdent(g.Grantee)
	if err != nil {
		return "", err
	}
	switch g.Privilege {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "ALTER", "INDEX", "REFERENCES", "EXECUTE",
		"READ", "DEBUG", "FLASHBACK", "ON COMMIT REFRESH", "QUERY REWRITE", "UNDER", "WRITE":
	default:
		return "", fmt.Errorf("grant of unknown privilege %q", g.Privilege)
	}
	s := "GRANT " + g.Privilege + " ON " + obj + " TO " + grantee
	if g.Grantable {
		s += " WITH GRANT OPTION"
	}
	return s, nil
}

// IdentityByDefaultSQL and IdentityRestoreSQL bracket the load of a table with identity columns:
// explicit values need BY DEFAULT, and afterwards the column goes back to its generation and
// starts past the largest value loaded (START WITH LIMIT VALUE).
func IdentityByDefaultSQL(schema, table, column string) (string, error) {
	return identitySQL(schema, table, column, "BY DEFAULT", false)
}

// IdentityRestoreSQL: see IdentityByDefaultSQL.
func IdentityRestoreSQL(schema, table string, id Identity) (string, error) {
	return identitySQL(schema, table, id.Column, id.Generation, true)
}

func identitySQL(schema, table, column, generation string, limit bool) (string, error) {
	qt, err := QualifiedName(schema, table)
	if err != nil {
		return "", err
	}
	qc, err := QuoteIdent(column)
	if err != nil {
		return "", err
	}
	switch generation {
	case "ALWAYS", "BY DEFAULT", "BY DEFAULT ON NULL":
	default:
		return "", fmt.Errorf("identity generation %q", generation)
	}
	s := "ALTER TABLE " + qt + " MODIFY " + qc + " GENERATED " + generation + " AS IDENTITY"
	if limit {
		s += " (START WITH LIMIT VALUE)"
	}
	return s, nil
}

// DropTableSQL drops a table before it is replaced; PURGE keeps the recycle bin from holding the
// old segment (the emergency copy Bulwark takes first is the way back).
func DropTableSQL(schema, table string) (string, error) {
	qn, err := QualifiedName(schema, table)
	if err != nil {
		return "", err
	}
	return "DROP TABLE " + qn + " CASCADE CONSTRAINTS PURGE", nil
}

// CurrentSchemaSQL points unqualified DDL at schema.
func CurrentSchemaSQL(schema string) (string, error) {
	q, err := QuoteIdent(schema)
	if err != nil {
		return "", err
	}
	return "ALTER SESSION SET CURRENT_SCHEMA = " + q, nil
}

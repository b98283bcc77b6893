package oraclesrc

import (
	"fmt"
	"strings"
	"time"
)

// Type is an Oracle column data type as Bulwark records it.
// The numeric values are part of the row format (see the package doc) and never change.
type Type byte

// Oracle column types. The values are written to row streams: append only.
const (
	TypeInvalid      Type = 0
	TypeNumber       Type = 1  // NUMBER, FLOAT, INTEGER: canonical decimal text
	TypeBinaryFloat  Type = 2  // BINARY_FLOAT: IEEE 754 binary32 bits
	TypeBinaryDouble Type = 3  // BINARY_DOUBLE: IEEE 754 binary64 bits
	TypeDate         Type = 4  // DATE: civil fields to the second
	TypeTimestamp    Type = 5  // TIMESTAMP(n): civil fields to the nanosecond
	TypeTimestampTZ  Type = 6  // TIMESTAMP(n) WITH TIME ZONE: UTC fields + zone text
	TypeTimestampLTZ Type = 7  // TIMESTAMP(n) WITH LOCAL TIME ZONE: UTC fields
	TypeIntervalYM   Type = 8  // INTERVAL YEAR TO MONTH: months
	TypeIntervalDS   Type = 9  // INTERVAL DAY TO SECOND: days + nanoseconds
	TypeVarchar2     Type = 10 // VARCHAR2
	TypeNVarchar2    Type = 11 // NVARCHAR2
	TypeChar         Type = 12 // CHAR
	TypeNChar        Type = 13 // NCHAR
	TypeRaw          Type = 14 // RAW
	TypeRowID        Type = 15 // ROWID, UROWID: text
	TypeCLOB         Type = 16 // CLOB: UTF-8 pieces
	TypeNCLOB        Type = 17 // NCLOB: UTF-8 pieces
	TypeBLOB         Type = 18 // BLOB: byte pieces
	typeEnd          Type = 19 // first unused value
)

var typeNames = map[Type]string{
	TypeNumber:       "NUMBER",
	TypeBinaryFloat:  "BINARY_FLOAT",
	TypeBinaryDouble: "BINARY_DOUBLE",
	TypeDate:         "DATE",
	TypeTimestamp:    "TIMESTAMP",
	TypeTimestampTZ:  "TIMESTAMP WITH TIME ZONE",
	TypeTimestampLTZ: "TIMESTAMP WITH LOCAL TIME ZONE",
	TypeIntervalYM:   "INTERVAL YEAR TO MONTH",
	TypeIntervalDS:   "INTERVAL DAY TO SECOND",
	TypeVarchar2:     "VARCHAR2",
	TypeNVarchar2:    "NVARCHAR2",
	TypeChar:         "CHAR",
	TypeNChar:        "NCHAR",
	TypeRaw:          "RAW",
	TypeRowID:        "UROWID",
	TypeCLOB:         "CLOB",
	TypeNCLOB:        "NCLOB",
	TypeBLOB:         "BLOB",
}

// String returns the Oracle name of t.
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("Type(%d)", byte(t))
}

// Valid reports whether t is a known type.
func (t Type) Valid() bool { return t > TypeInvalid && t < typeEnd }

// IsLOB reports whether values of t are streamed in pieces (CLOB, NCLOB, BLOB).
func (t Type) IsLOB() bool { return t == TypeCLOB || t == TypeNCLOB || t == TypeBLOB }

// ParseType maps a USER_TAB_COLUMNS.DATA_TYPE value to a Type. Fractional and leading
// precisions inside the name (TIMESTAMP(6), INTERVAL DAY(2) TO SECOND(6)) are ignored: they
// come from DATA_PRECISION and DATA_SCALE. Types Bulwark cannot keep exactly (LONG, LONG RAW,
// BFILE, XMLTYPE, object and collection types) are rejected.
func ParseType(dataType string) (Type, error) {
	s := strings.ToUpper(strings.TrimSpace(dataType))
	// Drop every "(n)" so TIMESTAMP(6) WITH TIME ZONE reads as TIMESTAMP WITH TIME ZONE.
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '(':
			depth++
		case r == ')':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	s = strings.Join(strings.Fields(b.String()), " ")
	switch s {
	case "NUMBER", "FLOAT", "INTEGER":
		return TypeNumber, nil
	case "ROWID", "UROWID":
		return TypeRowID, nil
	}
	for t, n := range typeNames {
		if n == s {
			return t, nil
		}
	}
	return TypeInvalid, fmt.Errorf("unsupported oracle type %q", dataType)
}

// Column describes one column of a table as USER_TAB_COLUMNS reports it.
type Column struct {
	Name string // exact dictionary name (case kept)
	Type Type
	// Precision is DATA_PRECISION: NUMBER precision, FLOAT binary precision, interval leading
	// field precision. Zero means none was declared.
	Precision int
	// Scale is DATA_SCALE: NUMBER scale (-84..127), fractional-seconds precision of TIMESTAMP and
	// INTERVAL DAY TO SECOND. HasScale distinguishes NUMBER(*,0) from NUMBER.
	Scale    int
	HasScale bool
	// Length is CHAR_LENGTH for character types with CharSemantics, else DATA_LENGTH in bytes.
	Length        int
	CharSemantics bool // CHAR_USED = 'C'
	Nullable      bool
}

// DateTime holds the civil fields of an Oracle DATE or TIMESTAMP exactly as Oracle prints them
// with the format 'SYYYY-MM-DD HH24:MI:SS.FF9'. It is not a time.Time on purpose: Oracle uses the
// Julian calendar before 1582-10-15 (1500-02-29 exists there, not in Go's proleptic Gregorian
// calendar) and has no year 0, so fields are kept as they are and never normalised.
type DateTime struct {
	Year                 int // -4712..9999, never 0
	Month, Day           int // 1..12, 1..31 (the calendar is Oracle's to check)
	Hour, Minute, Second int
	Nanosecond           int // 0..999999999; always 0 for DATE
}

func (d DateTime) valid() error {
	switch {
	case d.Year < -4712 || d.Year > 9999 || d.Year == 0:
		return fmt.Errorf("year %d out of range", d.Year)
	case d.Month < 1 || d.Month > 12:
		return fmt.Errorf("month %d out of range", d.Month)
	case d.Day < 1 || d.Day > 31:
		return fmt.Errorf("day %d out of range", d.Day)
	case d.Hour < 0 || d.Hour > 23, d.Minute < 0 || d.Minute > 59, d.Second < 0 || d.Second > 59:
		return fmt.Errorf("time %02d:%02d:%02d out of range", d.Hour, d.Minute, d.Second)
	case d.Nanosecond < 0 || d.Nanosecond > 999_999_999:
		return fmt.Errorf("nanosecond %d out of range", d.Nanosecond)
	}
	return nil
}

// DateTimeOf returns the civil fields of t in its own location. Years before 1 (Go's
// astronomical numbering) and dates before 1582-10-15 are not converted: use it for modern
// values only.
func DateTimeOf(t time.Time) DateTime {
	return DateTime{Year: t.Year(), Month: int(t.Month()), Day: t.Day(), Hour: t.Hour(),
		Minute: t.Minute(), Second: t.Second(), Nanosecond: t.Nanosecond()}
}

// TimestampTZ is a TIMESTAMP WITH TIME ZONE value: the instant as UTC civil fields and the zone
// exactly as Oracle printed it with TZR ("Europe/London", "+01:00", "-05:30", "UTC"). Keeping
// the instant in UTC avoids the hour that repeats when a region leaves summer time.
type TimestampTZ struct {
	UTC  DateTime
	Zone string
}

// IntervalYM is an INTERVAL YEAR TO MONTH value as a signed number of months.
type IntervalYM struct {
	Months int64
}

// IntervalDS is an INTERVAL DAY TO SECOND value: Days and Nanos carry the same sign (or are zero)
// and |Nanos| is less than one day.
type IntervalDS struct {
	Days  int64
	Nanos int64
}

const nanosPerDay = int64(24 * time.Hour)

func (v IntervalDS) valid() error {
	if v.Nanos <= -nanosPerDay || v.Nanos >= nanosPerDay {
		return fmt.Errorf("interval nanoseconds %d out of range", v.Nanos)
	}
	if (v.Days > 0 && v.Nanos < 0) || (v.Days < 0 && v.Nanos > 0) {
		return fmt.Errorf("interval days %d and nanoseconds %d differ in sign", v.Days, v.Nanos)
	}
	if v.Days > maxIntervalLeading || v.Days < -maxIntervalLeading {
		return fmt.Errorf("interval days %d out of range", v.Days)
	}
	return nil
}

// maxIntervalLeading is the largest leading field Oracle allows (precision 9).
const maxIntervalLeading = 999_999_999

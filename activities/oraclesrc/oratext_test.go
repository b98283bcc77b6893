package oraclesrc

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseDateTime(t *testing.T) {
	tests := []struct {
		in    string
		nanos bool
		want  DateTime
	}{
		// SYYYY prints "-" for BC and a space for AD.
		{"-4712-01-01 00:00:00", false, dt(-4712, 1, 1, 0, 0, 0, 0)},
		{" 9999-12-31 23:59:59", false, dt(9999, 12, 31, 23, 59, 59, 0)},
		{"9999-12-31 23:59:59", false, dt(9999, 12, 31, 23, 59, 59, 0)},
		{"+2024-02-29 12:34:56", false, dt(2024, 2, 29, 12, 34, 56, 0)},
		{"-0001-12-31 23:59:59", false, dt(-1, 12, 31, 23, 59, 59, 0)},
		{" 0001-01-01 00:00:00", false, dt(1, 1, 1, 0, 0, 0, 0)},
		// Dates Go's calendar would move are kept as Oracle's fields: the Julian leap day of
		// 1500 and a day of the 1582 Gregorian gap.
		{" 1500-02-29 00:00:00", false, dt(1500, 2, 29, 0, 0, 0, 0)},
		{" 1582-10-10 10:10:10", false, dt(1582, 10, 10, 10, 10, 10, 0)},
		{" 2024-03-31 00:59:59.000000000", true, dt(2024, 3, 31, 0, 59, 59, 0)},
		{" 2024-03-31 00:59:59.999999999", true, dt(2024, 3, 31, 0, 59, 59, 999999999)},
		{" 2024-03-31 00:59:59.000000001", true, dt(2024, 3, 31, 0, 59, 59, 1)},
		{"-4712-01-01 00:00:00.123456789", true, dt(-4712, 1, 1, 0, 0, 0, 123456789)},
	}
	for _, tt := range tests {
		got, err := ParseDateTime(tt.in, tt.nanos)
		if err != nil || got != tt.want {
			t.Errorf("ParseDateTime(%q, %v) = %+v, %v; want %+v", tt.in, tt.nanos, got, err, tt.want)
		}
	}
}

func TestParseDateTimeRoundTrip(t *testing.T) {
	values := []DateTime{
		dt(-4712, 1, 1, 0, 0, 0, 0), dt(-1, 12, 31, 23, 59, 59, 0), dt(1, 1, 1, 0, 0, 0, 0),
		dt(1500, 2, 29, 12, 0, 0, 0), dt(1582, 10, 10, 0, 0, 0, 0), dt(1582, 10, 15, 0, 0, 0, 0),
		dt(2024, 2, 29, 23, 59, 59, 0), dt(9999, 12, 31, 23, 59, 59, 0),
	}
	for _, d := range values {
		for _, text := range []string{FormatDate(d), oracleSign(FormatDate(d))} {
			if got, err := ParseDateTime(text, false); err != nil || got != d {
				t.Errorf("ParseDateTime(%q, false) = %+v, %v; want %+v", text, got, err, d)
			}
		}
		for _, ns := range []int{0, 1, 500_000_000, 999_999_999} {
			d := d
			d.Nanosecond = ns
			for _, text := range []string{FormatTimestamp(d), oracleSign(FormatTimestamp(d))} {
				if got, err := ParseDateTime(text, true); err != nil || got != d {
					t.Errorf("ParseDateTime(%q, true) = %+v, %v; want %+v", text, got, err, d)
				}
			}
		}
	}
}

// oracleSign turns FormatDate's text into what TO_CHAR's S format prints: a space before AD
// years.
func oracleSign(s string) string {
	if strings.HasPrefix(s, "-") {
		return s
	}
	return " " + s
}

func TestParseDateTimeRejects(t *testing.T) {
	tests := []struct {
		in    string
		nanos bool
		why   string // part of the error
	}{
		{"", false, "want YYYY-MM-DD HH:MI:SS"},
		{"   ", false, "want YYYY-MM-DD"},
		{"2024/01/01 00:00:00", false, "want YYYY-MM-DD"},
		{"2024-01-01T00:00:00", false, "want YYYY-MM-DD"},
		{"2024-01-01 00.00.00", false, "want YYYY-MM-DD"},
		{"2024/01-01 00:00:00", false, "want YYYY-MM-DD"},
		{"2024-01/01 00:00:00", false, "want YYYY-MM-DD"},
		{"2024-01-01_00:00:00", false, "want YYYY-MM-DD"},
		{"2024-01-01 00/00:00", false, "want YYYY-MM-DD"},
		{"2024-01-01 00:00/00", false, "want YYYY-MM-DD"},
		{"2024-1-01 00:00:00", false, "want YYYY-MM-DD"},
		{"12024-01-01 00:00:00", false, "want YYYY-MM-DD"},
		{"2024-01-0a 00:00:00", false, "not a number"},
		{"2024-01-01 0+:00:00", false, "not a number"},
		{"2024-13-01 00:00:00", false, "month 13"},
		{"2024-00-01 00:00:00", false, "month 0"},
		{"2024-01-32 00:00:00", false, "day 32"},
		{"2024-01-01 24:00:00", false, "time 24:00:00"},
		{"2024-01-01 23:60:00", false, "time 23:60:00"},
		{"2024-01-01 23:59:60", false, "time 23:59:60"},
		{"0000-01-01 00:00:00", false, "year 0"},
		{"-4713-01-01 00:00:00", false, "year -4713"},
		{"--2024-01-01 00:00:00", false, "want YYYY-MM-DD"},
		{"-+2024-01-01 00:00:00", false, "want YYYY-MM-DD"},
		{"- 2024-01-01 00:00:00", false, "want YYYY-MM-DD"},
		{"2024-01-01 00:00:00.000000000", false, "want YYYY-MM-DD HH:MI:SS"}, // DATE has no fraction
		{"2024-01-01 00:00:00", true, ".FFFFFFFFF"},                          // TIMESTAMP has one
		{"2024-01-01 00:00:00.1234567890", true, ".FFFFFFFFF"},               // ten digits
		{"2024-01-01 00:00:00.12345678", true, ".FFFFFFFFF"},                 // eight
		{"2024-01-01 00:00:00,123456789", true, "fraction is not nine digits"},
		{"2024-01-01 00:00:00.12345678x", true, "fraction is not nine digits"},
		{"2024-01-01 00:00:00.-12345678", true, "fraction is not nine digits"},
		{"2024-01-01 00:00:00 123456789", true, "fraction is not nine digits"},
	}
	for _, tt := range tests {
		got, err := ParseDateTime(tt.in, tt.nanos)
		if err == nil {
			t.Errorf("ParseDateTime(%q, %v) = %+v, want an error", tt.in, tt.nanos, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.why) || !strings.HasPrefix(err.Error(), "datetime ") {
			t.Errorf("ParseDateTime(%q, %v) error %q, want it to say %q", tt.in, tt.nanos, err, tt.why)
		}
	}
}

func TestParseIntervalYM(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"+000000001-02", 14},
		{"-000000001-02", -14},
		{"+01-02", 14},
		{"-01-11", -23},
		{"+00-00", 0},
		{"-00-00", 0},
		{"-00-01", -1},
		{"+1-2", 14},
		{"1-2", 14},
		{" +05-06 ", 66},
		{"+999999999-11", maxIntervalYMMo},
		{"-999999999-11", -maxIntervalYMMo},
	}
	for _, tt := range tests {
		got, err := ParseIntervalYM(tt.in)
		if err != nil || got.Months != tt.want {
			t.Errorf("ParseIntervalYM(%q) = %d, %v; want %d", tt.in, got.Months, err, tt.want)
		}
	}
	for _, m := range []int64{0, 1, -1, 11, -11, 12, -12, 13, 1200, maxIntervalYMMo, -maxIntervalYMMo} {
		s := FormatIntervalYM(IntervalYM{Months: m})
		if got, err := ParseIntervalYM(s); err != nil || got.Months != m {
			t.Errorf("ParseIntervalYM(FormatIntervalYM(%d) = %q) = %d, %v", m, s, got.Months, err)
		}
	}
	bad := []struct{ in, why string }{
		{"", "empty"},
		{"   ", "empty"},
		{"+1-12", "months above 11"},
		{"-0-99", "months above 11"},
		{"+1/2", "want [+-]Y-M"},
		{"+1", "want [+-]Y-M"},
		{"+1-", "want [+-]Y-M"},
		{"+-1", "want [+-]Y-M"},
		{"+-1-2", "want [+-]Y-M"},
		{"++1-2", "want [+-]Y-M"},
		{"+1-2-3", "want [+-]Y-M"},
		{"+1-123", "want [+-]Y-M"},
		{"+1000000000-00", "want [+-]Y-M"}, // ten leading digits
		{"+a-1", "want [+-]Y-M"},
		{"+1 -2", "want [+-]Y-M"},
	}
	for _, b := range bad {
		got, err := ParseIntervalYM(b.in)
		if err == nil || !strings.Contains(err.Error(), b.why) || !strings.Contains(err.Error(), "interval year to month") {
			t.Errorf("ParseIntervalYM(%q) = %d, %v; want an error saying %q", b.in, got.Months, err, b.why)
		}
	}
}

func TestParseIntervalDS(t *testing.T) {
	const sec = int64(time.Second)
	tests := []struct {
		in   string
		want IntervalDS
	}{
		{"+01 02:03:04.500000", IntervalDS{1, (2*3600+3*60+4)*sec + 500_000_000}},
		{"-01 02:03:04.500000", IntervalDS{-1, -((2*3600+3*60+4)*sec + 500_000_000)}},
		{"-000000001 00:00:00", IntervalDS{-1, 0}},
		{"+000000001 00:00:00.000000000", IntervalDS{1, 0}},
		{"+00 00:00:00.000000001", IntervalDS{0, 1}},
		{"-00 00:00:00.5", IntervalDS{0, -500_000_000}},
		{"-00 00:00:00", IntervalDS{}},
		{"+0 00:00:00", IntervalDS{}},
		{"3 00:00:01", IntervalDS{3, sec}},
		{" +02 23:59:59.1 ", IntervalDS{2, 86399*sec + 100_000_000}},
		{"+999999999 23:59:59.999999999", IntervalDS{maxIntervalLeading, nanosPerDay - 1}},
		{"-999999999 23:59:59.999999999", IntervalDS{-maxIntervalLeading, -(nanosPerDay - 1)}},
	}
	for _, tt := range tests {
		got, err := ParseIntervalDS(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseIntervalDS(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, v := range []IntervalDS{{}, {0, 1}, {0, -1}, {1, 0}, {-1, 0}, {1, 3723_500_000_000},
		{-7, -(nanosPerDay - 1)}, {maxIntervalLeading, nanosPerDay - 1}, {-maxIntervalLeading, -(nanosPerDay - 1)}} {
		s := FormatIntervalDS(v)
		if got, err := ParseIntervalDS(s); err != nil || got != v {
			t.Errorf("ParseIntervalDS(FormatIntervalDS(%+v) = %q) = %+v, %v", v, s, got, err)
		}
	}
	bad := []struct{ in, why string }{
		{"", "empty"},
		{"+1 24:00:00", "time of day out of range"},
		{"+1 00:60:00", "time of day out of range"},
		{"+1 00:00:60", "time of day out of range"},
		{"+1 00:00:00.1234567890", "fraction must be 1 to 9 digits"},
		{"+1 00:00:00.", "fraction must be 1 to 9 digits"},
		{"+1 00:00:00.12a", "fraction must be 1 to 9 digits"},
		{"+1 00:00:00.-1", "fraction must be 1 to 9 digits"},
		{"+1 0:00:00", "want HH:MI:SS"},
		{"+1 00-00-00", "want HH:MI:SS"},
		{"+1 00:00:00:00", "want HH:MI:SS"},
		{"+1 +0:00:00", "want HH:MI:SS"},
		{"+1T00:00:00", "want [+-]D HH:MI:SS"},
		{"+1000000000 00:00:00", "want [+-]D HH:MI:SS"},
		{"+-1 00:00:00", "want [+-]D HH:MI:SS"},
		{"+1  00:00:00", "want HH:MI:SS"},
		{"00:00:00", "want [+-]D HH:MI:SS"},
	}
	for _, b := range bad {
		got, err := ParseIntervalDS(b.in)
		if err == nil || !strings.Contains(err.Error(), b.why) || !strings.Contains(err.Error(), "interval day to second") {
			t.Errorf("ParseIntervalDS(%q) = %+v, %v; want an error saying %q", b.in, got, err, b.why)
		}
	}
}

func TestSelectWidthMatchesSelectExprs(t *testing.T) {
	for typ := TypeNumber; typ < typeEnd; typ++ {
		c := Column{Name: "C", Type: typ}
		e, err := selectExprs(c)
		if err != nil || len(e) != SelectWidth(c) {
			t.Errorf("%s: selectExprs gives %d items (%v), SelectWidth %d", typ, len(e), err, SelectWidth(c))
		}
	}
}

func TestValueFromScanNull(t *testing.T) {
	for typ := TypeNumber; typ < typeEnd; typ++ {
		c := Column{Name: "C", Type: typ}
		parts := make([]any, SelectWidth(c))
		if v, err := ValueFromScan(c, parts); v != nil || err != nil {
			t.Errorf("%s: NULL gives %#v, %v", typ, v, err)
		}
	}
}

func TestValueFromScan(t *testing.T) {
	col := func(typ Type) Column {
		return Column{Name: "COL_" + strings.ReplaceAll(typ.String(), " ", "_"), Type: typ}
	}
	negZero32 := float32(math.Copysign(0, -1))
	tests := []struct {
		name  string
		typ   Type
		parts []any
		want  any
	}{
		{"number", TypeNumber, []any{"-12.50"}, "-12.5"},
		{"number spaces", TypeNumber, []any{"  42 "}, "42"},
		{"number bytes", TypeNumber, []any{[]byte("0.0100")}, "0.01"},
		{"number minus zero", TypeNumber, []any{"-0"}, "0"},
		{"number minus zero fraction", TypeNumber, []any{"-0.000"}, "0"},
		{"number smallest", TypeNumber, []any{"1E-130"}, "0." + strings.Repeat("0", 129) + "1"},
		{"number largest", TypeNumber, []any{"-9.999999999999999999999999999999999999999E+125"},
			"-9999999999999999999999999999999999999999" + strings.Repeat("0", 86)},
		{"number 40 digits", TypeNumber, []any{".3333333333333333333333333333333333333333"},
			"0.3333333333333333333333333333333333333333"},

		{"float exact from float64", TypeBinaryFloat, []any{0.5}, float32(0.5)},
		{"float from float32", TypeBinaryFloat, []any{float32(0.1)}, float32(0.1)},
		{"float from float64 widened", TypeBinaryFloat, []any{float64(float32(0.1))}, float32(0.1)},
		{"float nan", TypeBinaryFloat, []any{math.NaN()}, float32(math.NaN())},
		{"float +inf", TypeBinaryFloat, []any{math.Inf(1)}, float32(math.Inf(1))},
		{"float -inf", TypeBinaryFloat, []any{math.Inf(-1)}, float32(math.Inf(-1))},
		{"float -0", TypeBinaryFloat, []any{math.Copysign(0, -1)}, negZero32},
		{"float int64", TypeBinaryFloat, []any{int64(16777216)}, float32(16777216)},
		{"float text", TypeBinaryFloat, []any{" 1.5 "}, float32(1.5)},
		{"double", TypeBinaryDouble, []any{0.1}, 0.1},
		{"double from float32", TypeBinaryDouble, []any{float32(0.1)}, float64(float32(0.1))},
		{"double -0", TypeBinaryDouble, []any{math.Copysign(0, -1)}, math.Copysign(0, -1)},
		{"double nan", TypeBinaryDouble, []any{math.NaN()}, math.NaN()},
		{"double -inf", TypeBinaryDouble, []any{math.Inf(-1)}, math.Inf(-1)},
		{"double int64", TypeBinaryDouble, []any{int64(-7)}, -7.0},
		{"double text", TypeBinaryDouble, []any{"-2.5e-300"}, -2.5e-300},

		{"date AD", TypeDate, []any{" 2024-02-29 13:14:15"}, dt(2024, 2, 29, 13, 14, 15, 0)},
		{"date BC", TypeDate, []any{"-4712-01-01 00:00:00"}, dt(-4712, 1, 1, 0, 0, 0, 0)},
		{"date bytes", TypeDate, []any{[]byte(" 1582-10-10 00:00:00")}, dt(1582, 10, 10, 0, 0, 0, 0)},
		{"timestamp", TypeTimestamp, []any{" 9999-12-31 23:59:59.999999999"}, dt(9999, 12, 31, 23, 59, 59, 999999999)},
		{"timestamp ltz", TypeTimestampLTZ, []any{" 2024-10-27 01:30:00.000000000"}, dt(2024, 10, 27, 1, 30, 0, 0)},
		{"timestamp tz region", TypeTimestampTZ, []any{" 2024-10-27 00:30:00.000000000", "Europe/London"},
			TimestampTZ{UTC: dt(2024, 10, 27, 0, 30, 0, 0), Zone: "Europe/London"}},
		{"timestamp tz offset", TypeTimestampTZ, []any{" 2024-03-31 00:30:00.123000000", "+05:30"},
			TimestampTZ{UTC: dt(2024, 3, 31, 0, 30, 0, 123000000), Zone: "+05:30"}},
		{"timestamp tz padded zone", TypeTimestampTZ, []any{"-0044-03-15 12:00:00.000000000", []byte(" -12:00 ")},
			TimestampTZ{UTC: dt(-44, 3, 15, 12, 0, 0, 0), Zone: "-12:00"}},
		{"timestamp tz three-part region", TypeTimestampTZ, []any{" 2000-01-01 00:00:00.000000000", "America/Argentina/Buenos_Aires"},
			TimestampTZ{UTC: dt(2000, 1, 1, 0, 0, 0, 0), Zone: "America/Argentina/Buenos_Aires"}},
		{"interval ym", TypeIntervalYM, []any{"-000000001-02"}, IntervalYM{Months: -14}},
		{"interval ds", TypeIntervalDS, []any{"+01 02:03:04.500000"}, IntervalDS{1, 7384_500_000_000}},

		{"varchar2", TypeVarchar2, []any{"héllo; '/'"}, "héllo; '/'"},
		{"varchar2 bytes", TypeVarchar2, []any{[]byte("x")}, "x"},
		{"nvarchar2", TypeNVarchar2, []any{"日本語"}, "日本語"},
		{"char keeps padding", TypeChar, []any{"ab   "}, "ab   "},
		{"nchar keeps padding", TypeNChar, []any{" x  "}, " x  "},
		{"rowid", TypeRowID, []any{"AAAR3sAAEAAAACXAAA"}, "AAAR3sAAEAAAACXAAA"},
		{"clob", TypeCLOB, []any{"clob ✓"}, "clob ✓"},
		{"clob empty", TypeCLOB, []any{""}, ""},
		{"nclob", TypeNCLOB, []any{[]byte("n")}, "n"},
		{"raw", TypeRaw, []any{[]byte{0, 1, 0xff}}, []byte{0, 1, 0xff}},
		{"raw from text", TypeRaw, []any{"ab"}, []byte("ab")},
		{"blob", TypeBLOB, []any{[]byte{0, 0}}, []byte{0, 0}},
		{"blob empty", TypeBLOB, []any{[]byte{}}, []byte{}},
	}
	for _, tt := range tests {
		got, err := ValueFromScan(col(tt.typ), tt.parts)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !sameValue(got, tt.want) {
			t.Errorf("%s: got %#v (%T), want %#v (%T)", tt.name, got, got, tt.want, tt.want)
		}
		// An empty BLOB must stay a value, never turn into NULL.
		if b, ok := got.([]byte); ok && b == nil {
			t.Errorf("%s: got a nil []byte, which reads as NULL", tt.name)
		}
	}
}

func TestValueFromScanRejects(t *testing.T) {
	tests := []struct {
		name  string
		typ   Type
		parts []any
		why   string
	}{
		{"number not text", TypeNumber, []any{1.5}, "driver gave float64, want text"},
		{"number time", TypeNumber, []any{time.Now()}, "want text"},
		{"number empty", TypeNumber, []any{""}, "empty"},
		{"number garbage", TypeNumber, []any{"12,5"}, "not an oracle number"},
		{"number too big", TypeNumber, []any{"1E126"}, "magnitude"},
		{"number nan", TypeNumber, []any{"~"}, "not an oracle number"},
		{"float inexact", TypeBinaryFloat, []any{0.1}, "not a BINARY_FLOAT value"},
		{"float overflow", TypeBinaryFloat, []any{1e39}, "not a BINARY_FLOAT value"},
		{"float underflow", TypeBinaryFloat, []any{1e-50}, "not a BINARY_FLOAT value"},
		{"float bad text", TypeBinaryFloat, []any{"one"}, "invalid syntax"},
		{"float bool", TypeBinaryFloat, []any{true}, "driver gave bool"},
		{"double bytes", TypeBinaryDouble, []any{[]byte("1")}, "driver gave []uint8"},
		{"date time.Time", TypeDate, []any{time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, "driver gave time.Time"},
		{"date with fraction", TypeDate, []any{" 2024-01-01 00:00:00.000000000"}, "want YYYY-MM-DD HH:MI:SS"},
		{"timestamp without fraction", TypeTimestamp, []any{" 2024-01-01 00:00:00"}, ".FFFFFFFFF"},
		{"timestamp hour 24", TypeTimestamp, []any{" 2024-01-01 24:00:00.000000000"}, "out of range"},
		{"tz missing zone", TypeTimestampTZ, []any{" 2024-01-01 00:00:00.000000000", nil}, "want text"},
		{"tz empty zone", TypeTimestampTZ, []any{" 2024-01-01 00:00:00.000000000", "  "}, "time zone"},
		{"tz offset too far", TypeTimestampTZ, []any{" 2024-01-01 00:00:00.000000000", "+15:00"}, "out of range"},
		{"tz offset form", TypeTimestampTZ, []any{" 2024-01-01 00:00:00.000000000", "+5:30"}, "want ±HH:MM"},
		{"tz abbreviation with space", TypeTimestampTZ, []any{" 2024-01-01 00:00:00.000000000", "Europe/London BST"}, "unexpected"},
		{"interval ym", TypeIntervalYM, []any{"+1-12"}, "months above 11"},
		{"interval ds", TypeIntervalDS, []any{"+1 24:00:00"}, "out of range"},
		{"varchar2 number", TypeVarchar2, []any{int64(1)}, "want text"},
		{"raw float", TypeRaw, []any{1.0}, "want bytes"},
		{"blob int", TypeBLOB, []any{int64(0)}, "want bytes"},
	}
	for _, tt := range tests {
		c := Column{Name: "BAD_COL", Type: tt.typ}
		got, err := ValueFromScan(c, tt.parts)
		if err == nil {
			t.Errorf("%s: got %#v, want an error", tt.name, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.why) || !strings.Contains(err.Error(), `"BAD_COL"`) {
			t.Errorf("%s: error %q, want it to name the column and say %q", tt.name, err, tt.why)
		}
	}
	if _, err := ValueFromScan(Column{Name: "N", Type: TypeNumber}, []any{"1E126"}); !errors.Is(err, ErrNumber) {
		t.Errorf("bad NUMBER error %v does not wrap ErrNumber", err)
	}
}

func TestValueFromScanWidth(t *testing.T) {
	tests := []struct {
		typ   Type
		parts []any
	}{
		{TypeTimestampTZ, []any{" 2024-01-01 00:00:00.000000000"}},
		{TypeTimestampTZ, []any{" 2024-01-01 00:00:00.000000000", "UTC", "UTC"}},
		{TypeTimestampTZ, []any{nil}},
		{TypeNumber, []any{"1", "2"}},
		{TypeNumber, nil},
		{TypeBLOB, []any{}},
		{TypeVarchar2, []any{nil, nil}},
	}
	for _, tt := range tests {
		v, err := ValueFromScan(Column{Name: "W", Type: tt.typ}, tt.parts)
		if err == nil || !strings.Contains(err.Error(), "values scanned") {
			t.Errorf("%s with %d parts: %#v, %v; want a width error", tt.typ, len(tt.parts), v, err)
		}
	}
}

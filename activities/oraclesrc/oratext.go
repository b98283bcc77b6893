package oraclesrc

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The export query (SelectAsOfSCN) asks Oracle for text wherever the driver would lose
// information; these functions read that text back into the row format's values. They are the
// inverse of the Format* functions that restore binds, and both sides are unit-tested as a pair.

// ParseDateTime reads what TO_CHAR(…, 'SYYYY-MM-DD HH24:MI:SS[.FF9]') prints: a sign column
// (a space for AD, "-" for BC), the civil fields, and nine fractional digits when nanos is set.
func ParseDateTime(s string, nanos bool) (DateTime, error) {
	bad := func(why string) (DateTime, error) {
		return DateTime{}, fmt.Errorf("datetime %q: %s", truncate(s, 40), why)
	}
	t := strings.TrimLeft(s, " ")
	neg := strings.HasPrefix(t, "-")
	if neg || strings.HasPrefix(t, "+") { // one sign only: "-+2024" is not a year
		t = t[1:]
	}
	// YYYY-MM-DD HH:MI:SS = 19 bytes, then ".FFFFFFFFF".
	want := 19
	if nanos {
		want = 29
	}
	if len(t) != want || t[4] != '-' || t[7] != '-' || t[10] != ' ' || t[13] != ':' || t[16] != ':' {
		return bad("want YYYY-MM-DD HH:MI:SS" + map[bool]string{true: ".FFFFFFFFF", false: ""}[nanos])
	}
	num := func(a, b int) (int, bool) {
		if !isDigits(t[a:b]) {
			return 0, false
		}
		n, err := strconv.Atoi(t[a:b])
		return n, err == nil
	}
	var d DateTime
	var ok [6]bool
	d.Year, ok[0] = num(0, 4)
	d.Month, ok[1] = num(5, 7)
	d.Day, ok[2] = num(8, 10)
	d.Hour, ok[3] = num(11, 13)
	d.Minute, ok[4] = num(14, 16)
	d.Second, ok[5] = num(17, 19)
	for _, o := range ok {
		if !o {
			return bad("a field is not a number")
		}
	}
	if nanos {
		if t[19] != '.' || !isDigits(t[20:]) {
			return bad("fraction is not nine digits")
		}
		d.Nanosecond, _ = strconv.Atoi(t[20:])
	}
	if neg {
		d.Year = -d.Year
	}
	if err := d.valid(); err != nil {
		return bad(err.Error())
	}
	return d, nil
}

// ParseIntervalYM reads TO_CHAR of an INTERVAL YEAR TO MONTH ("+000000001-02", "-01-11") or
// what FormatIntervalYM writes ("+1-2").
func ParseIntervalYM(s string) (IntervalYM, error) {
	bad := func(why string) (IntervalYM, error) {
		return IntervalYM{}, fmt.Errorf("interval year to month %q: %s", truncate(s, 40), why)
	}
	t, neg, err := intervalSign(s)
	if err != nil {
		return bad(err.Error())
	}
	y, m, found := strings.Cut(t, "-")
	if !found || !isDigits(y) || !isDigits(m) || len(y) > 9 || len(m) > 2 {
		return bad("want [+-]Y-M")
	}
	years, _ := strconv.ParseInt(y, 10, 64)
	months, _ := strconv.ParseInt(m, 10, 64)
	if months > 11 {
		return bad("months above 11")
	}
	v := years*12 + months
	if neg {
		v = -v
	}
	return IntervalYM{Months: v}, nil
}

// ParseIntervalDS reads TO_CHAR of an INTERVAL DAY TO SECOND ("+01 02:03:04.500000",
// "-000000001 00:00:00", any number of fractional digits up to nine) or FormatIntervalDS.
func ParseIntervalDS(s string) (IntervalDS, error) {
	bad := func(why string) (IntervalDS, error) {
		return IntervalDS{}, fmt.Errorf("interval day to second %q: %s", truncate(s, 40), why)
	}
	t, neg, err := intervalSign(s)
	if err != nil {
		return bad(err.Error())
	}
	day, clock, found := strings.Cut(t, " ")
	if !found || !isDigits(day) || len(day) > 9 {
		return bad("want [+-]D HH:MI:SS[.F]")
	}
	clock, frac, hasFrac := strings.Cut(clock, ".")
	if len(clock) != 8 || clock[2] != ':' || clock[5] != ':' || !isDigits(clock[0:2]) || !isDigits(clock[3:5]) || !isDigits(clock[6:8]) {
		return bad("want HH:MI:SS")
	}
	if hasFrac && (len(frac) == 0 || len(frac) > 9 || !isDigits(frac)) {
		return bad("fraction must be 1 to 9 digits")
	}
	h, _ := strconv.Atoi(clock[0:2])
	mi, _ := strconv.Atoi(clock[3:5])
	sec, _ := strconv.Atoi(clock[6:8])
	if h > 23 || mi > 59 || sec > 59 {
		return bad("time of day out of range")
	}
	ns := int64(0)
	if hasFrac {
		f, _ := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		ns = f
	}
	days, _ := strconv.ParseInt(day, 10, 64)
	v := IntervalDS{Days: days, Nanos: (int64(h)*3600+int64(mi)*60+int64(sec))*1e9 + ns}
	if neg {
		v.Days, v.Nanos = -v.Days, -v.Nanos
	}
	if err := v.valid(); err != nil {
		return bad(err.Error())
	}
	return v, nil
}

func intervalSign(s string) (string, bool, error) {
	t := strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(t, "-"):
		return t[1:], true, nil
	case strings.HasPrefix(t, "+"):
		return t[1:], false, nil
	case t == "":
		return "", false, errors.New("empty")
	}
	return t, false, nil
}

// SelectWidth is the number of select-list items SelectAsOfSCN reads for c.
func SelectWidth(c Column) int {
	if c.Type == TypeTimestampTZ {
		return 2
	}
	return 1
}

// ValueFromScan turns what database/sql scanned for column c (SelectWidth(c) items, each the
// driver's value: string, []byte, float32/float64, int64, time.Time) into the row format's
// value. NULL is nil. The select list made every type whose driver value loses information into
// text (see selectExprs), so only text, binary floats, RAW and LOBs arrive as driver types.
func ValueFromScan(c Column, parts []any) (any, error) {
	if len(parts) != SelectWidth(c) {
		return nil, fmt.Errorf("column %q: %d values scanned, want %d", c.Name, len(parts), SelectWidth(c))
	}
	if parts[0] == nil {
		return nil, nil
	}
	text := func(v any) (string, error) {
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		}
		return "", fmt.Errorf("column %q (%s): driver gave %T, want text", c.Name, c.Type, v)
	}
	wrap := func(v any, err error) (any, error) {
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		return v, nil
	}
	switch c.Type {
	case TypeNumber:
		s, err := text(parts[0])
		if err != nil {
			return nil, err
		}
		return wrap(CanonicalNumber(strings.TrimSpace(s)))
	case TypeBinaryFloat, TypeBinaryDouble:
		var f float64
		switch x := parts[0].(type) {
		case float32:
			if c.Type == TypeBinaryFloat {
				return x, nil
			}
			f = float64(x)
		case float64:
			f = x
		case int64:
			f = float64(x)
		case string:
			p, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", c.Name, err)
			}
			f = p
		default:
			return nil, fmt.Errorf("column %q (%s): driver gave %T", c.Name, c.Type, parts[0])
		}
		if c.Type == TypeBinaryFloat {
			if !math.IsNaN(f) && !math.IsInf(f, 0) && float64(float32(f)) != f {
				return nil, fmt.Errorf("column %q: %v is not a BINARY_FLOAT value", c.Name, f)
			}
			return float32(f), nil
		}
		return f, nil
	case TypeDate, TypeTimestamp, TypeTimestampLTZ:
		s, err := text(parts[0])
		if err != nil {
			return nil, err
		}
		return wrap(ParseDateTime(s, c.Type != TypeDate))
	case TypeTimestampTZ:
		s, err := text(parts[0])
		if err != nil {
			return nil, err
		}
		z, err := text(parts[1])
		if err != nil {
			return nil, err
		}
		d, err := ParseDateTime(s, true)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		z = strings.TrimSpace(z)
		if err := checkZone(z); err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		return TimestampTZ{UTC: d, Zone: z}, nil
	case TypeIntervalYM:
		s, err := text(parts[0])
		if err != nil {
			return nil, err
		}
		return wrap(ParseIntervalYM(s))
	case TypeIntervalDS:
		s, err := text(parts[0])
		if err != nil {
			return nil, err
		}
		return wrap(ParseIntervalDS(s))
	case TypeRaw, TypeBLOB:
		switch x := parts[0].(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
		return nil, fmt.Errorf("column %q (%s): driver gave %T, want bytes", c.Name, c.Type, parts[0])
	default: // character types, ROWID, CLOB, NCLOB
		return text(parts[0])
	}
}

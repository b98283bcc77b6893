package oraclesrc

import (
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCanonicalNumber(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "0", want: "0"},
		{in: "-0", want: "0"},
		{in: "+0.000", want: "0"},
		{in: "-0.0E5", want: "0"},
		{in: "123", want: "123"},
		{in: "00123.4500", want: "123.45"},
		{in: ".5", want: "0.5"},
		{in: "-.5", want: "-0.5"},
		{in: "5.", want: "5"},
		{in: "+7", want: "7"},
		{in: "1E+30", want: "1" + strings.Repeat("0", 30)},
		{in: "1.5e-10", want: "0.00000000015"},
		{in: "-1.0E-130", want: "-0." + strings.Repeat("0", 129) + "1"},
		{in: "9.99E125", want: "999" + strings.Repeat("0", 123)},
		{in: "12345678901234567890123456789012345678", want: "12345678901234567890123456789012345678"},
		// 1/3 as Oracle computes it: 40 digits in 20 base-100 pairs.
		{in: "." + strings.Repeat("3", 40), want: "0." + strings.Repeat("3", 40)},
		// 40 digits starting on an odd position need 21 pairs.
		{in: "1." + strings.Repeat("3", 39), bad: true},
		{in: "1." + strings.Repeat("3", 38), want: "1." + strings.Repeat("3", 38)},
		{in: "1E126", bad: true},
		{in: "1E-131", bad: true},
		{in: "", bad: true},
		{in: "-", bad: true},
		{in: ".", bad: true},
		{in: "1e", bad: true},
		{in: "1e+", bad: true},
		{in: " 1", bad: true},
		{in: "1 ", bad: true},
		{in: "1,5", bad: true},
		{in: "1.2.3", bad: true},
		{in: "~", bad: true},
		{in: "NaN", bad: true},
		{in: "Inf", bad: true},
		{in: "0x10", bad: true},
		{in: "--1", bad: true},
		{in: "1e99999", bad: true},
	}
	for _, tt := range tests {
		got, err := CanonicalNumber(tt.in)
		if tt.bad {
			if !errors.Is(err, ErrNumber) {
				t.Errorf("CanonicalNumber(%q) = %q, %v; want ErrNumber", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CanonicalNumber(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			continue
		}
		// Canonical text is a fixed point.
		if again, err := CanonicalNumber(got); err != nil || again != got {
			t.Errorf("CanonicalNumber(%q) = %q, %v; not a fixed point", got, again, err)
		}
	}
}

// allTypesColumns has one column of every type.
func allTypesColumns() []Column {
	return []Column{
		{Name: "N", Type: TypeNumber, Precision: 38, Scale: -84, HasScale: true, Length: 22},
		{Name: "BF", Type: TypeBinaryFloat, Length: 4, Nullable: true},
		{Name: "BD", Type: TypeBinaryDouble, Length: 8},
		{Name: "D", Type: TypeDate, Length: 7},
		{Name: "TS", Type: TypeTimestamp, Scale: 9, HasScale: true},
		{Name: "TSTZ", Type: TypeTimestampTZ, Scale: 6, HasScale: true},
		{Name: "TSLTZ", Type: TypeTimestampLTZ},
		{Name: "IYM", Type: TypeIntervalYM, Precision: 9},
		{Name: "IDS", Type: TypeIntervalDS, Precision: 9, Scale: 9, HasScale: true},
		{Name: "V", Type: TypeVarchar2, Length: 4000, CharSemantics: true},
		{Name: "NV", Type: TypeNVarchar2, Length: 100},
		{Name: "C", Type: TypeChar, Length: 5},
		{Name: "NC", Type: TypeNChar, Length: 5},
		{Name: "R", Type: TypeRaw, Length: 2000},
		{Name: "RID", Type: TypeRowID, Length: 4000},
		{Name: "CL", Type: TypeCLOB},
		{Name: "NCL", Type: TypeNCLOB},
		{Name: "BL", Type: TypeBLOB},
		{Name: "mixed Case \"", Type: TypeVarchar2, Length: 1},
	}
}

func dt(y, mo, d, h, mi, s, ns int) DateTime {
	return DateTime{Year: y, Month: mo, Day: d, Hour: h, Minute: mi, Second: s, Nanosecond: ns}
}

func TestRowCodecRoundTrip(t *testing.T) {
	cols := allTypesColumns()
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320 KB: several pieces
	nanBits := math.Float32frombits(0x7fc00001)
	rows := []struct {
		name string
		in   []any
		want []any // nil: same as in
	}{
		{name: "all null", in: make([]any, len(cols))},
		{
			name: "ordinary",
			in: []any{"-12.50", float32(1.5), 2.25, dt(2024, 2, 29, 23, 59, 59, 0),
				dt(2024, 3, 31, 0, 59, 59, 123456789),
				TimestampTZ{UTC: dt(2024, 3, 31, 0, 30, 0, 0), Zone: "Europe/London"},
				dt(1999, 12, 31, 23, 0, 0, 1), IntervalYM{Months: 14}, IntervalDS{Days: 1, Nanos: 3723_500_000_000},
				"héllo; '/'", "日本語", "ab   ", "x    ", []byte{0, 1, 0xff}, "AAAR3sAAEAAAACXAAA",
				"clob ✓", "nclob", []byte{0, 0, 0}, "z"},
			want: []any{"-12.5", float32(1.5), 2.25, dt(2024, 2, 29, 23, 59, 59, 0),
				dt(2024, 3, 31, 0, 59, 59, 123456789),
				TimestampTZ{UTC: dt(2024, 3, 31, 0, 30, 0, 0), Zone: "Europe/London"},
				dt(1999, 12, 31, 23, 0, 0, 1), IntervalYM{Months: 14}, IntervalDS{Days: 1, Nanos: 3723_500_000_000},
				"héllo; '/'", "日本語", "ab   ", "x    ", []byte{0, 1, 0xff}, "AAAR3sAAEAAAACXAAA",
				"clob ✓", "nclob", []byte{0, 0, 0}, "z"},
		},
		{
			name: "edges",
			in: []any{"1E-130", float32(math.Inf(-1)), math.NaN(), dt(-4712, 1, 1, 0, 0, 0, 0),
				dt(9999, 12, 31, 23, 59, 59, 999999999),
				TimestampTZ{UTC: dt(1500, 2, 29, 12, 0, 0, 0), Zone: "+01:00"},
				dt(-1, 1, 1, 0, 0, 0, 0), IntervalYM{Months: -maxIntervalYMMo},
				IntervalDS{Days: -maxIntervalLeading, Nanos: -(nanosPerDay - 1)},
				"", "", "", "", []byte{}, "*BAMAAJsCwQL+",
				"", strings.NewReader(""), bytes.NewReader(nil), ""},
			want: []any{"0." + strings.Repeat("0", 129) + "1", float32(math.Inf(-1)), math.NaN(),
				dt(-4712, 1, 1, 0, 0, 0, 0), dt(9999, 12, 31, 23, 59, 59, 999999999),
				TimestampTZ{UTC: dt(1500, 2, 29, 12, 0, 0, 0), Zone: "+01:00"},
				dt(-1, 1, 1, 0, 0, 0, 0), IntervalYM{Months: -maxIntervalYMMo},
				IntervalDS{Days: -maxIntervalLeading, Nanos: -(nanosPerDay - 1)},
				"", "", "", "", []byte{}, "*BAMAAJsCwQL+", "", "", []byte{}, ""},
		},
		{
			name: "nan payload, negative zero, big lobs",
			in: []any{"-99999999999999999999999999999999999999", nanBits, math.Copysign(0, -1),
				nil, nil, TimestampTZ{UTC: dt(2024, 10, 27, 1, 30, 0, 0), Zone: "-12:00"}, nil,
				IntervalYM{}, IntervalDS{}, nil, nil, nil, nil, nil, nil,
				iotest.OneByteReader(bytes.NewReader(big[:1000])), string(big), bytes.NewReader(big), nil},
			want: []any{"-99999999999999999999999999999999999999", nanBits, math.Copysign(0, -1),
				nil, nil, TimestampTZ{UTC: dt(2024, 10, 27, 1, 30, 0, 0), Zone: "-12:00"}, nil,
				IntervalYM{}, IntervalDS{}, nil, nil, nil, nil, nil, nil,
				string(big[:1000]), string(big), big, nil},
		},
	}
	var buf bytes.Buffer
	enc, err := NewEncoder(&buf, cols)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := enc.WriteRow(r.in); err != nil {
			t.Fatalf("%s: WriteRow: %v", r.name, err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got := dec.Columns(); !reflect.DeepEqual(got, cols) {
		t.Fatalf("columns = %+v\nwant %+v", got, cols)
	}
	for _, r := range rows {
		if err := dec.Next(); err != nil {
			t.Fatalf("%s: Next: %v", r.name, err)
		}
		got, err := dec.Row(1 << 30)
		if err != nil {
			t.Fatalf("%s: Row: %v", r.name, err)
		}
		want := r.want
		if want == nil {
			want = r.in
		}
		for i := range want {
			if !sameValue(got[i], want[i]) {
				t.Errorf("%s: column %s = %#v, want %#v", r.name, cols[i].Name, got[i], want[i])
			}
		}
	}
	if err := dec.Next(); err != io.EOF {
		t.Fatalf("Next after last row = %v, want io.EOF", err)
	}
	if dec.Rows() != uint64(len(rows)) {
		t.Errorf("Rows = %d", dec.Rows())
	}
}

// sameValue compares floats by bits, so NaN payloads and -0 must survive.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float32:
		y, ok := b.(float32)
		return ok && math.Float32bits(x) == math.Float32bits(y)
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	}
	return reflect.DeepEqual(a, b)
}

func TestDecoderStreamsLOBsAndSkips(t *testing.T) {
	cols := []Column{{Name: "ID", Type: TypeNumber}, {Name: "DOC", Type: TypeBLOB}, {Name: "T", Type: TypeVarchar2}}
	big := bytes.Repeat([]byte{7}, 3*lobWritePiece+5)
	var buf bytes.Buffer
	enc, _ := NewEncoder(&buf, cols)
	for _, row := range [][]any{{"1", bytes.NewReader(big), "a"}, {"2", nil, "b"}, {"3", big, "c"}} {
		if err := enc.WriteRow(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// Row 1: stream the LOB in small reads.
	if err := dec.Next(); err != nil {
		t.Fatal(err)
	}
	if v, _ := dec.Value(); v != "1" {
		t.Fatalf("id = %v", v)
	}
	v, err := dec.Value()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(iotest.OneByteReader(v.(io.Reader)))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("lob: %d bytes, %v", len(got), err)
	}
	if v, _ := dec.Value(); v != "a" {
		t.Fatalf("t = %v", v)
	}
	// Row 2: read nothing; Next skips it. Row 3: take a LOB reader and leave it unread.
	if err := dec.Next(); err != nil {
		t.Fatal(err)
	}
	if err := dec.Next(); err != nil {
		t.Fatal(err)
	}
	dec.Value()
	lob, _ := dec.Value()
	if v, err := dec.Value(); err != nil || v != "c" {
		t.Fatalf("value after unread lob = %v, %v", v, err)
	}
	if _, err := lob.(io.Reader).Read(make([]byte, 1)); err == nil {
		t.Error("stale lob reader still reads")
	}
	if err := dec.Next(); err != io.EOF {
		t.Fatalf("Next = %v, want EOF", err)
	}
	if _, err := dec.Value(); err == nil {
		t.Error("Value after EOF succeeded")
	}
}

func TestEncoderRejects(t *testing.T) {
	cols := allTypesColumns()
	base := func() []any { return make([]any, len(cols)) }
	idx := map[string]int{}
	for i, c := range cols {
		idx[c.Name] = i
	}
	tests := []struct {
		col string
		v   any
	}{
		{"N", "1E126"},
		{"N", 12},
		{"N", "abc"},
		{"BF", 1.5}, // float64 for BINARY_FLOAT
		{"BD", float32(1)},
		{"D", dt(2024, 1, 1, 0, 0, 0, 1)}, // DATE has no fraction
		{"D", dt(0, 1, 1, 0, 0, 0, 0)},    // no year 0
		{"D", dt(10000, 1, 1, 0, 0, 0, 0)},
		{"TS", dt(2024, 13, 1, 0, 0, 0, 0)},
		{"TS", dt(2024, 1, 32, 0, 0, 0, 0)},
		{"TS", dt(2024, 1, 1, 24, 0, 0, 0)},
		{"TS", dt(2024, 1, 1, 0, 0, 0, 1_000_000_000)},
		{"TSTZ", TimestampTZ{UTC: dt(2024, 1, 1, 0, 0, 0, 0)}},
		{"TSTZ", TimestampTZ{UTC: dt(2024, 1, 1, 0, 0, 0, 0), Zone: "+15:00"}},
		{"TSTZ", TimestampTZ{UTC: dt(2024, 1, 1, 0, 0, 0, 0), Zone: "-13:00"}},
		{"TSTZ", TimestampTZ{UTC: dt(2024, 1, 1, 0, 0, 0, 0), Zone: "+1:00"}},
		{"TSTZ", TimestampTZ{UTC: dt(2024, 1, 1, 0, 0, 0, 0), Zone: "Europe/London'; DROP"}},
		{"TSTZ", dt(2024, 1, 1, 0, 0, 0, 0)},
		{"IYM", IntervalYM{Months: maxIntervalYMMo + 1}},
		{"IDS", IntervalDS{Days: 1, Nanos: -1}},
		{"IDS", IntervalDS{Nanos: nanosPerDay}},
		{"V", []byte("x")},
		{"V", strings.Repeat("x", MaxInlineValue+1)},
		{"R", "x"},
		{"RID", ""},
		{"RID", "AAA BBB"},
		{"CL", 5},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		enc, err := NewEncoder(&buf, cols)
		if err != nil {
			t.Fatal(err)
		}
		row := base()
		row[idx[tt.col]] = tt.v
		if err := enc.WriteRow(row); err == nil {
			t.Errorf("WriteRow with %s = %#v succeeded", tt.col, tt.v)
			continue
		}
		// A rejected value leaves the stream usable.
		if err := enc.WriteRow(base()); err != nil {
			t.Errorf("%s: WriteRow after rejection: %v", tt.col, err)
		}
	}
	var buf bytes.Buffer
	enc, _ := NewEncoder(&buf, cols)
	if err := enc.WriteRow(make([]any, 3)); err == nil {
		t.Error("short row accepted")
	}
	for _, bad := range [][]Column{nil, {{Name: "", Type: TypeNumber}}, {{Name: "X"}}, {{Name: strings.Repeat("x", 129), Type: TypeRaw}}} {
		if _, err := NewEncoder(io.Discard, bad); err == nil {
			t.Errorf("NewEncoder(%v) succeeded", bad)
		}
	}
}

func TestEncoderLOBReadError(t *testing.T) {
	var buf bytes.Buffer
	enc, _ := NewEncoder(&buf, []Column{{Name: "B", Type: TypeBLOB}})
	boom := errors.New("boom")
	if err := enc.WriteRow([]any{iotest.ErrReader(boom)}); !errors.Is(err, boom) {
		t.Fatalf("WriteRow = %v, want boom", err)
	}
	if err := enc.Close(); err == nil {
		t.Error("Close after a failed LOB succeeded")
	}
}

// validStream encodes two rows covering most payload kinds.
func validStream(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	cols := allTypesColumns()
	enc, err := NewEncoder(&buf, cols)
	if err != nil {
		t.Fatal(err)
	}
	row := []any{"1.5", float32(1), 2.0, dt(2000, 1, 1, 0, 0, 0, 0), dt(2000, 1, 1, 0, 0, 0, 5),
		TimestampTZ{UTC: dt(2000, 1, 1, 0, 0, 0, 0), Zone: "UTC"}, dt(2000, 1, 1, 0, 0, 0, 0),
		IntervalYM{Months: 1}, IntervalDS{Days: 1}, "v", "nv", "c", "nc", []byte{1}, "AAAA",
		"clob", "nclob", []byte{1, 2}, "x"}
	for i := 0; i < 2; i++ {
		if err := enc.WriteRow(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(b []byte) error {
	dec, err := NewDecoder(bytes.NewReader(b))
	if err != nil {
		return err
	}
	for {
		if err := dec.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if _, err := dec.Row(1 << 20); err != nil {
			return err
		}
	}
}

func TestDecoderCorrupt(t *testing.T) {
	good := validStream(t)
	if err := readAll(good); err != nil {
		t.Fatalf("valid stream: %v", err)
	}
	// Every truncation must fail with ErrCorrupt.
	for n := 0; n < len(good); n++ {
		if err := readAll(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: err = %v, want ErrCorrupt", n, len(good), err)
		}
	}
	mutate := func(f func([]byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		data []byte
	}{
		{"bad magic", mutate(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"future version", mutate(func(b []byte) []byte { b[8] = 2; return b })},
		{"trailing data", append(append([]byte(nil), good...), 0)},
		{"wrong row count", mutate(func(b []byte) []byte { b[len(b)-1] = 3; return b })},
		{"rowid with a space", mutate(func(b []byte) []byte {
			return bytes.Replace(b, []byte("AAAA"), []byte("AA A"), 1)
		})},
		{"bad row marker", mutate(func(b []byte) []byte {
			i := bytes.LastIndexByte(b, markEnd)
			b[i] = 'X'
			return b
		})},
		{"bad value tag", mutate(func(b []byte) []byte {
			return bytes.Replace(b, []byte("\x01\x031.5"), []byte("\x02\x031.5"), 1)
		})},
		{"interval sign mismatch", mutate(func(b []byte) []byte {
			// IntervalDS{Days: 1} is varint 2, varint 0 after the months varint 2.
			return bytes.Replace(b, []byte("\x01\x02\x01\x02\x00"), []byte("\x01\x02\x01\x02\x01"), 1)
		})},
		{"non-canonical number", mutate(func(b []byte) []byte {
			return bytes.Replace(b, []byte("\x031.5"), []byte("\x031.0"), 1)
		})},
		{"unknown zone", mutate(func(b []byte) []byte {
			return bytes.Replace(b, []byte("\x03UTC"), []byte("\x03U;C"), 1)
		})},
		{"empty", nil},
	}
	for _, tt := range tests {
		if err := readAll(tt.data); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", tt.name, err)
		}
	}
}

func TestParseType(t *testing.T) {
	tests := []struct {
		in   string
		want Type
		bad  bool
	}{
		{in: "NUMBER", want: TypeNumber},
		{in: "FLOAT", want: TypeNumber},
		{in: "TIMESTAMP(6)", want: TypeTimestamp},
		{in: "TIMESTAMP(9) WITH TIME ZONE", want: TypeTimestampTZ},
		{in: "timestamp(3) with local time zone", want: TypeTimestampLTZ},
		{in: "INTERVAL DAY(2) TO SECOND(6)", want: TypeIntervalDS},
		{in: "INTERVAL YEAR(2) TO MONTH", want: TypeIntervalYM},
		{in: "ROWID", want: TypeRowID},
		{in: "UROWID", want: TypeRowID},
		{in: "NCLOB", want: TypeNCLOB},
		{in: "LONG", bad: true},
		{in: "BFILE", bad: true},
		{in: "XMLTYPE", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseType(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseType(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func FuzzDecoder(f *testing.F) {
	var buf bytes.Buffer
	enc, _ := NewEncoder(&buf, []Column{{Name: "A", Type: TypeNumber}, {Name: "B", Type: TypeCLOB}})
	enc.WriteRow([]any{"1", "x"})
	enc.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = readAll(b) // must not panic or allocate without bound
	})
}

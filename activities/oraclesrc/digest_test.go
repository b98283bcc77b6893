package oraclesrc

import (
	"bytes"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func digestOf(t *testing.T, cols []Column, rows ...[]any) string {
	t.Helper()
	d := NewTableDigest(cols)
	for _, r := range rows {
		if err := d.Add(r); err != nil {
			t.Fatalf("Add(%v): %v", r, err)
		}
	}
	if d.Rows() != uint64(len(rows)) {
		t.Fatalf("Rows = %d, want %d", d.Rows(), len(rows))
	}
	return d.String()
}

func TestTableDigestFormat(t *testing.T) {
	cols := []Column{{Name: "V", Type: TypeVarchar2}}
	empty := NewTableDigest(cols).String()
	if empty != DigestPrefix+strings.Repeat("0", 64) {
		t.Errorf("digest of no rows = %q", empty)
	}
	// The recorded digest is a stored format: pin it. A row's hash is SHA-256 over, per column,
	// the tag and the uvarint-length-prefixed payload; the digest is the sum of the row hashes
	// modulo 2^256.
	rowX := sha256.Sum256([]byte{tagValue, 1, 'x'})
	rowNull := sha256.Sum256([]byte{tagNull})
	if got, want := digestOf(t, cols, []any{"x"}), DigestPrefix+hex.EncodeToString(rowX[:]); got != want {
		t.Errorf("digest of one row = %s, want %s", got, want)
	}
	sum := new(big.Int).Add(new(big.Int).SetBytes(rowX[:]), new(big.Int).SetBytes(rowNull[:]))
	sum.Mod(sum, new(big.Int).Lsh(big.NewInt(1), 256))
	if got, want := digestOf(t, cols, []any{"x"}, []any{nil}), DigestPrefix+hex.EncodeToString(sum.FillBytes(make([]byte, 32))); got != want {
		t.Errorf("digest of two rows = %s, want %s", got, want)
	}
	// A LOB is hashed as the SHA-256 of its bytes; a DATE as FormatTimestamp's text.
	lob := sha256.Sum256([]byte("doc"))
	dateText := "2024-01-02 03:04:05.000000000"
	row := sha256.Sum256(append(append(append([]byte{tagValue, 32}, lob[:]...), tagValue, byte(len(dateText))), dateText...))
	got := digestOf(t, []Column{{Name: "L", Type: TypeCLOB}, {Name: "D", Type: TypeDate}}, []any{"doc", dt(2024, 1, 2, 3, 4, 5, 0)})
	if want := DigestPrefix + hex.EncodeToString(row[:]); got != want {
		t.Errorf("digest of LOB and DATE = %s, want %s", got, want)
	}
}

func TestTableDigestOrderAndDuplicates(t *testing.T) {
	cols := []Column{{Name: "ID", Type: TypeNumber}, {Name: "NAME", Type: TypeVarchar2}}
	a, b, c := []any{"1", "alice"}, []any{"2", "bob"}, []any{"3", nil}
	abc := digestOf(t, cols, a, b, c)
	if cab := digestOf(t, cols, c, a, b); cab != abc {
		t.Errorf("row order changes the digest: %s vs %s", abc, cab)
	}
	if bca := digestOf(t, cols, b, c, a); bca != abc {
		t.Errorf("row order changes the digest: %s vs %s", abc, bca)
	}
	one, two := digestOf(t, cols, a), digestOf(t, cols, a, a)
	if one == two {
		t.Error("a duplicate row does not change the digest")
	}
	if two == digestOf(t, cols, a, a, a) {
		t.Error("two and three copies of a row have the same digest")
	}
	if digestOf(t, cols, a, b) == digestOf(t, cols, a, a) {
		t.Error("{a, b} and {a, a} have the same digest")
	}
	// NUMBER is digested canonically: the driver's "1.50" and the stream's "1.5" agree.
	if digestOf(t, cols, []any{"1.50", "x"}) != digestOf(t, cols, []any{"1.5", "x"}) {
		t.Error("equal NUMBER values in different text give different digests")
	}
	if digestOf(t, cols, []any{"-0", "x"}) != digestOf(t, cols, []any{"0", "x"}) {
		t.Error("-0 and 0 give different digests")
	}
}

func TestTableDigestDistinguishes(t *testing.T) {
	lobs := []Column{{Name: "CL", Type: TypeCLOB}, {Name: "BL", Type: TypeBLOB}}
	texts := []Column{{Name: "A", Type: TypeVarchar2}, {Name: "B", Type: TypeVarchar2}}
	pairs := []struct {
		name string
		cols []Column
		x, y []any
	}{
		{"NULL vs empty CLOB", lobs, []any{nil, nil}, []any{"", nil}},
		{"NULL vs empty BLOB", lobs, []any{nil, nil}, []any{nil, []byte{}}},
		{"empty CLOB vs empty BLOB", lobs, []any{"", nil}, []any{nil, []byte{}}},
		{"NULL vs empty string", texts, []any{nil, "x"}, []any{"", "x"}},
		{"values swapped between columns", texts, []any{"a", "b"}, []any{"b", "a"}},
		{"bytes moved between columns", texts, []any{"ab", ""}, []any{"a", "b"}},
		{"NULL moved between columns", texts, []any{nil, "a"}, []any{"a", nil}},
		{"separator in value", texts, []any{"a\x01b", ""}, []any{"a", "b"}},
		{"CLOB content", lobs, []any{"a", nil}, []any{"b", nil}},
		{"float +0 vs -0", []Column{{Name: "F", Type: TypeBinaryFloat}}, []any{float32(0)}, []any{float32(math.Copysign(0, -1))}},
		{"double NaN payloads", []Column{{Name: "F", Type: TypeBinaryDouble}},
			[]any{math.Float64frombits(0x7ff8000000000001)}, []any{math.Float64frombits(0x7ff8000000000002)}},
		{"zone region vs offset", []Column{{Name: "T", Type: TypeTimestampTZ}},
			[]any{TimestampTZ{UTC: dt(2024, 1, 1, 0, 0, 0, 0), Zone: "UTC"}},
			[]any{TimestampTZ{UTC: dt(2024, 1, 1, 0, 0, 0, 0), Zone: "+00:00"}}},
		{"nanosecond", []Column{{Name: "T", Type: TypeTimestamp}},
			[]any{dt(2024, 1, 1, 0, 0, 0, 0)}, []any{dt(2024, 1, 1, 0, 0, 0, 1)}},
		{"interval sign", []Column{{Name: "I", Type: TypeIntervalDS}}, []any{IntervalDS{0, 1}}, []any{IntervalDS{0, -1}}},
		{"raw", []Column{{Name: "R", Type: TypeRaw}}, []any{[]byte{0}}, []any{[]byte{0, 0}}},
	}
	for _, p := range pairs {
		if digestOf(t, p.cols, p.x) == digestOf(t, p.cols, p.y) {
			t.Errorf("%s: same digest for %#v and %#v", p.name, p.x, p.y)
		}
	}
}

func TestTableDigestLOBForms(t *testing.T) {
	cols := []Column{{Name: "ID", Type: TypeNumber}, {Name: "CL", Type: TypeCLOB}, {Name: "BL", Type: TypeBLOB}}
	big := strings.Repeat("0123456789abcdef", 20000)
	for _, content := range []string{"", "x", big} {
		forms := [][]any{
			{"1", content, content},
			{"1", []byte(content), []byte(content)},
			{"1", strings.NewReader(content), bytes.NewReader([]byte(content))},
			{"1", iotest.OneByteReader(strings.NewReader(content)), iotest.HalfReader(strings.NewReader(content))},
		}
		want := digestOf(t, cols, forms[0])
		for i, f := range forms[1:] {
			if got := digestOf(t, cols, f); got != want {
				t.Errorf("LOB of %d bytes, form %d: digest %s, want %s", len(content), i+1, got, want)
			}
		}
	}
}

func TestTableDigestAddErrors(t *testing.T) {
	cols := []Column{{Name: "N", Type: TypeNumber}, {Name: "BL", Type: TypeBLOB}}
	d := NewTableDigest(cols)
	if err := d.Add([]any{"1", []byte("a")}); err != nil {
		t.Fatal(err)
	}
	before := d.String()
	bad := [][]any{
		{"1"},
		{"1", nil, nil},
		{1.0, nil},
		{"abc", nil},
		{"1", 42},
		{"1", iotest.ErrReader(errors.New("disk gone"))},
	}
	for _, r := range bad {
		if err := d.Add(r); err == nil {
			t.Errorf("Add(%#v) succeeded", r)
		}
	}
	if d.String() != before || d.Rows() != 1 {
		t.Errorf("failed Adds changed the digest: %s, %d rows", d.String(), d.Rows())
	}
	if err := d.Add([]any{"1", iotest.ErrReader(errors.New("disk gone"))}); err == nil || !strings.Contains(err.Error(), "disk gone") || !strings.Contains(err.Error(), `"BL"`) {
		t.Errorf("LOB read error = %v", err)
	}
}

// streamCols has one column of every type, with names selectExprs accepts.
func streamCols() []Column {
	return []Column{
		{Name: "N", Type: TypeNumber, Precision: 12, Scale: 2, HasScale: true},
		{Name: "BF", Type: TypeBinaryFloat, Nullable: true},
		{Name: "BD", Type: TypeBinaryDouble},
		{Name: "D", Type: TypeDate},
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
		{Name: "RID", Type: TypeRowID},
		{Name: "CL", Type: TypeCLOB},
		{Name: "NCL", Type: TypeNCLOB},
		{Name: "BL", Type: TypeBLOB},
	}
}

// scannedRows are what go-ora delivers for SelectAsOfSCN's select list over streamCols (19
// items: TIMESTAMP WITH TIME ZONE takes two), and want the row format values they stand for.
func scannedRows() (scanned [][]any, want [][]any) {
	bigText := strings.Repeat("ünïcode text, ", 12000) // > 64 KiB: several LOB pieces
	bigBytes := bytes.Repeat([]byte{0, 1, 2, 0xfe, 0xff}, 40000)
	nan32 := float32(math.NaN())
	ordinary := []any{"-12.5", float32(0.1), 0.1, " 2024-02-29 23:59:59", " 2024-03-31 00:59:59.123456789",
		" 2024-03-31 00:30:00.000000000", "Europe/London", " 1999-12-31 23:00:00.000000001", "+01-02",
		"+01 02:03:04.500000", "héllo; '/'", "日本語", "ab   ", "x    ", []byte{0, 1, 0xff},
		"AAAR3sAAEAAAACXAAA", "clob ✓", "nclob", []byte{0, 0, 0}}
	ordinaryWant := []any{"-12.5", float32(0.1), 0.1, dt(2024, 2, 29, 23, 59, 59, 0), dt(2024, 3, 31, 0, 59, 59, 123456789),
		TimestampTZ{UTC: dt(2024, 3, 31, 0, 30, 0, 0), Zone: "Europe/London"}, dt(1999, 12, 31, 23, 0, 0, 1),
		IntervalYM{Months: 14}, IntervalDS{Days: 1, Nanos: 7384_500_000_000}, "héllo; '/'", "日本語", "ab   ", "x    ",
		[]byte{0, 1, 0xff}, "AAAR3sAAEAAAACXAAA", "clob ✓", "nclob", []byte{0, 0, 0}}
	scanned = [][]any{
		ordinary,
		make([]any, 19), // every column NULL
		{"-0", nan32, math.Inf(-1), "-4712-01-01 00:00:00", " 9999-12-31 23:59:59.999999999",
			"-0001-01-01 00:00:00.000000000", "+14:00", " 1582-10-10 00:00:00.000000000", "-000000001-11",
			"-000000001 00:00:00.000000000", " ", "'", "a", "b", []byte{0}, "*BAMAAJsCwQL+",
			"", "", []byte{}}, // empty LOBs: values, not NULL
		ordinary, // a duplicate row
		{"1E-130", float32(math.Copysign(0, -1)), math.Copysign(0, -1), nil, nil, nil, nil, nil, nil, nil,
			nil, nil, nil, nil, nil, nil, bigText, nil, bigBytes},
		{"99999999999999999999999999999999999999", float32(math.MaxFloat32), math.SmallestNonzeroFloat64,
			" 2000-01-01 00:00:00", " 2000-01-01 00:00:00.000000000", " 2000-01-01 00:00:00.000000000", "-03:30",
			nil, "+999999999-11", "-999999999 23:59:59.999999999", nil, nil, nil, nil, nil, nil, nil, "x", nil},
	}
	want = [][]any{
		ordinaryWant,
		make([]any, 18),
		{"0", nan32, math.Inf(-1), dt(-4712, 1, 1, 0, 0, 0, 0), dt(9999, 12, 31, 23, 59, 59, 999999999),
			TimestampTZ{UTC: dt(-1, 1, 1, 0, 0, 0, 0), Zone: "+14:00"}, dt(1582, 10, 10, 0, 0, 0, 0),
			IntervalYM{Months: -23}, IntervalDS{Days: -1}, " ", "'", "a", "b", []byte{0}, "*BAMAAJsCwQL+",
			"", "", []byte{}},
		ordinaryWant,
		{"0." + strings.Repeat("0", 129) + "1", float32(math.Copysign(0, -1)), math.Copysign(0, -1), nil, nil, nil, nil,
			nil, nil, nil, nil, nil, nil, nil, nil, bigText, nil, bigBytes},
		{"99999999999999999999999999999999999999", float32(math.MaxFloat32), math.SmallestNonzeroFloat64,
			dt(2000, 1, 1, 0, 0, 0, 0), dt(2000, 1, 1, 0, 0, 0, 0),
			TimestampTZ{UTC: dt(2000, 1, 1, 0, 0, 0, 0), Zone: "-03:30"}, nil,
			IntervalYM{Months: maxIntervalYMMo}, IntervalDS{Days: -maxIntervalLeading, Nanos: -(nanosPerDay - 1)},
			nil, nil, nil, nil, nil, nil, nil, "x", nil},
	}
	return scanned, want
}

// equalValue compares floats by bits except that any NaN equals any NaN (database/sql turns
// floats into text and back, which keeps -0 and infinities but not NaN payloads).
func equalValue(a, b any) bool {
	switch x := a.(type) {
	case float32:
		y, ok := b.(float32)
		return ok && (math.Float32bits(x) == math.Float32bits(y) || x != x && y != y)
	case float64:
		y, ok := b.(float64)
		return ok && (math.Float64bits(x) == math.Float64bits(y) || x != x && y != y)
	}
	return reflect.DeepEqual(a, b)
}

// decodeStream reads a row stream back and digests the decoded rows.
func decodeStream(t *testing.T, stream []byte) ([]Column, [][]any, string) {
	t.Helper()
	dec, err := NewDecoder(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	digest := NewTableDigest(dec.Columns())
	var rows [][]any
	for {
		err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		row, err := dec.Row(1 << 30)
		if err != nil {
			t.Fatal(err)
		}
		if err := digest.Add(row); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	if digest.Rows() != dec.Rows() {
		t.Fatalf("digested %d rows, decoded %d", digest.Rows(), dec.Rows())
	}
	return dec.Columns(), rows, digest.String()
}

func checkStream(t *testing.T, cols []Column, n int64, digest string, stream []byte, want [][]any) {
	t.Helper()
	if n != int64(len(want)) {
		t.Errorf("streamRows wrote %d rows, want %d", n, len(want))
	}
	gotCols, rows, decoded := decodeStream(t, stream)
	if !reflect.DeepEqual(gotCols, cols) {
		t.Errorf("stream columns = %+v\nwant %+v", gotCols, cols)
	}
	if len(rows) != len(want) {
		t.Fatalf("decoded %d rows, want %d", len(rows), len(want))
	}
	for i := range want {
		for j := range want[i] {
			if !equalValue(rows[i][j], want[i][j]) {
				t.Errorf("row %d column %s = %#v, want %#v", i, cols[j].Name, truncateValue(rows[i][j]), truncateValue(want[i][j]))
			}
		}
	}
	// The digest a backup records while reading Oracle is the one a restore or verify computes
	// from the stored stream.
	if decoded != digest {
		t.Errorf("digest from the scanned rows %s, from the decoded stream %s", digest, decoded)
	}
	if direct := digestOf(t, cols, want...); direct != digest {
		t.Errorf("digest from the scanned rows %s, from the expected values %s", digest, direct)
	}
}

func truncateValue(v any) any {
	switch x := v.(type) {
	case string:
		return truncate(x, 40)
	case []byte:
		if len(x) > 40 {
			return x[:40]
		}
	}
	return v
}

func TestStreamRowsFakeScanner(t *testing.T) {
	cols := streamCols()
	scanned, want := scannedRows()
	var buf bytes.Buffer
	n, digest, err := streamRows(&fakeScanner{rows: scanned}, cols, &buf)
	if err != nil {
		t.Fatal(err)
	}
	checkStream(t, cols, n, digest, buf.Bytes(), want)

	// Another row order: another stream, the same digest.
	rev := append([][]any(nil), scanned...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	var buf2 bytes.Buffer
	n2, digest2, err := streamRows(&fakeScanner{rows: rev}, cols, &buf2)
	if err != nil {
		t.Fatal(err)
	}
	if n2 != n || digest2 != digest || bytes.Equal(buf.Bytes(), buf2.Bytes()) {
		t.Errorf("reversed rows: %d rows, digest %s (want %d, %s), stream differs: %v", n2, digest2, n, digest, !bytes.Equal(buf.Bytes(), buf2.Bytes()))
	}
	// Without the duplicate the digest changes.
	var buf3 bytes.Buffer
	_, digest3, err := streamRows(&fakeScanner{rows: scanned[:3]}, cols, &buf3)
	if err != nil || digest3 == digest {
		t.Errorf("fewer rows: digest %s, %v", digest3, err)
	}
}

// TestStreamRowsDatabaseSQL drives streamRows with a real *sql.Rows over the fake wire, so the
// scan destinations go through database/sql's own conversions from go-ora's driver values
// (float32 for BINARY_FLOAT, float64 for BINARY_DOUBLE, []byte for RAW and BLOB).
func TestStreamRowsDatabaseSQL(t *testing.T) {
	cols := streamCols()
	scanned, want := scannedRows()
	query, err := SelectAsOfSCN("FINANCE", "ALL_TYPES", cols)
	if err != nil {
		t.Fatal(err)
	}
	w := &fakeWire{query: func(q string, args []driver.NamedValue) (*fakeResult, error) {
		if q != query {
			t.Errorf("query %q", q)
		}
		r := &fakeResult{width: 19}
		for _, row := range scanned {
			vals := make([]driver.Value, len(row))
			for i, v := range row {
				vals[i] = v
			}
			r.rows = append(r.rows, vals)
		}
		return r, nil
	}}
	var buf bytes.Buffer
	n, digest, err := streamRows(w.rows(t, query), cols, &buf)
	if err != nil {
		t.Fatal(err)
	}
	checkStream(t, cols, n, digest, buf.Bytes(), want)

	var viaFake bytes.Buffer
	_, fakeDigest, err := streamRows(&fakeScanner{rows: scanned}, cols, &viaFake)
	if err != nil || fakeDigest != digest || !bytes.Equal(viaFake.Bytes(), buf.Bytes()) {
		t.Errorf("database/sql and the fake scanner disagree: %s vs %s, %v", digest, fakeDigest, err)
	}
}

func TestStreamRowsBinaryFloatIsExact(t *testing.T) {
	// Every float32 must come through database/sql exactly, whatever its decimal form.
	cols := []Column{{Name: "BF", Type: TypeBinaryFloat}}
	var scanned, want [][]any
	for _, bits := range []uint32{0x3dcccccd, 0x00000001, 0x007fffff, 0x7f7fffff, 0x3f800001, 0xc2f6e979, 0x4b7fffff, 0x33d6bf95} {
		f := math.Float32frombits(bits)
		scanned = append(scanned, []any{f})
		want = append(want, []any{f})
	}
	w := &fakeWire{query: func(string, []driver.NamedValue) (*fakeResult, error) {
		r := &fakeResult{width: 1}
		for _, row := range scanned {
			r.rows = append(r.rows, []driver.Value{row[0]})
		}
		return r, nil
	}}
	var buf bytes.Buffer
	n, digest, err := streamRows(w.rows(t, "q"), cols, &buf)
	if err != nil {
		t.Fatal(err)
	}
	checkStream(t, cols, n, digest, buf.Bytes(), want)
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("storage full") }

func TestStreamRowsErrors(t *testing.T) {
	cols := []Column{{Name: "ID", Type: TypeNumber}, {Name: "RID", Type: TypeRowID}}
	good := [][]any{{"1", "AAAR3sAAEAAAACXAAA"}}
	readErr := errors.New("ORA-01555: snapshot too old")
	tests := []struct {
		name string
		rows scanner
		cols []Column
		w    io.Writer
		why  string
	}{
		{"rows.Err", &fakeScanner{rows: good, err: readErr}, cols, io.Discard, "ORA-01555"},
		{"scan", &fakeScanner{rows: good, scanErr: errors.New("scan failed")}, cols, io.Discard, "scan failed"},
		{"bad number", &fakeScanner{rows: [][]any{{"12,5", nil}}}, cols, io.Discard, `"ID"`},
		{"bad rowid", &fakeScanner{rows: [][]any{{"1", "AB'C"}}}, cols, io.Discard, `"RID"`},
		{"no columns", &fakeScanner{}, nil, io.Discard, "columns"},
		{"wrong width", &fakeScanner{rows: [][]any{{"1"}}}, cols, io.Discard, "destinations"},
		{"writer", &fakeScanner{rows: good}, cols, failWriter{}, "storage full"},
	}
	for _, tt := range tests {
		n, digest, err := streamRows(tt.rows, tt.cols, tt.w)
		if err == nil || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("%s: %d, %q, %v; want an error saying %q", tt.name, n, digest, err, tt.why)
		}
		if n != 0 || digest != "" {
			t.Errorf("%s: failed streamRows returned %d rows, digest %q", tt.name, n, digest)
		}
	}
	if _, _, err := streamRows(&fakeScanner{rows: good, err: readErr}, cols, io.Discard); !errors.Is(err, readErr) {
		t.Errorf("rows.Err not wrapped: %v", err)
	}
}

// TestTableDigestValueByValue digests a stored stream the way verify does: Decoder.Value one
// column at a time, LOBs as readers valid only until the next value, fed to StartRow, Value and
// EndRow. It must agree with the digest recorded at export.
func TestTableDigestValueByValue(t *testing.T) {
	cols := streamCols()
	scanned, want := scannedRows()
	var buf bytes.Buffer
	_, recorded, err := streamRows(&fakeScanner{rows: scanned}, cols, &buf)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	d := NewTableDigest(dec.Columns())
	for {
		if err := dec.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		d.StartRow()
		for i := range cols {
			v, err := dec.Value()
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Value(i, v); err != nil {
				t.Fatal(err)
			}
		}
		d.EndRow()
	}
	if d.String() != recorded || d.Rows() != uint64(len(want)) {
		t.Errorf("value by value: %s over %d rows, recorded %s over %d", d.String(), d.Rows(), recorded, len(want))
	}
	for _, i := range []int{-1, len(cols)} {
		if err := d.Value(i, nil); err == nil {
			t.Errorf("Value(%d) accepted", i)
		}
	}
	// A row started but not ended does not count.
	before := d.String()
	d.StartRow()
	if err := d.Value(0, "1"); err != nil {
		t.Fatal(err)
	}
	if d.String() != before || d.Rows() != uint64(len(want)) {
		t.Error("an unfinished row changed the digest")
	}
}

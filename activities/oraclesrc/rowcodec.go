package oraclesrc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Row format constants; see the package doc.
const (
	rowMagic        = "BWORAROW"
	RowFormatV1     = 1 // RowFormatV1 is the version Encoder writes.
	maxColumns      = 4096
	maxNameLen      = 128
	maxZoneLen      = 64
	maxRowIDLen     = 4000
	MaxInlineValue  = 1 << 20 // MaxInlineValue bounds a non-LOB value in bytes.
	MaxLOBPiece     = 1 << 20 // MaxLOBPiece bounds one LOB piece in bytes.
	lobWritePiece   = 64 << 10
	tagNull         = 0x00
	tagValue        = 0x01
	markRow         = 'R'
	markEnd         = 'E'
	flagCharSem     = 1
	flagHasScale    = 2
	flagNullable    = 4
	flagKnown       = flagCharSem | flagHasScale | flagNullable
	maxIntervalYMMo = maxIntervalLeading*12 + 11
)

// ErrCorrupt reports a row stream that is truncated or does not follow the format.
var ErrCorrupt = errors.New("corrupt row stream")

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
}

// Encoder writes one row stream. Call WriteRow for each row, then Close. After any error the
// encoder refuses further writes: the stream is incomplete and must be discarded.
type Encoder struct {
	w    *bufio.Writer
	cols []Column
	rows uint64
	err  error
	buf  [binary.MaxVarintLen64]byte
}

// NewEncoder validates cols and writes the stream header to w.
func NewEncoder(w io.Writer, cols []Column) (*Encoder, error) {
	if err := validateColumns(cols); err != nil {
		return nil, err
	}
	e := &Encoder{w: bufio.NewWriterSize(w, 64<<10), cols: append([]Column(nil), cols...)}
	e.w.WriteString(rowMagic)
	e.w.WriteByte(RowFormatV1)
	e.uvarint(uint64(len(cols)))
	for _, c := range cols {
		e.bytes([]byte(c.Name))
		e.w.WriteByte(byte(c.Type))
		var f byte
		if c.CharSemantics {
			f |= flagCharSem
		}
		if c.HasScale {
			f |= flagHasScale
		}
		if c.Nullable {
			f |= flagNullable
		}
		e.w.WriteByte(f)
		e.varint(int64(c.Precision))
		e.varint(int64(c.Scale))
		e.uvarint(uint64(c.Length))
	}
	return e, nil
}

func validateColumns(cols []Column) error {
	if len(cols) == 0 || len(cols) > maxColumns {
		return fmt.Errorf("table has %d columns, want 1..%d", len(cols), maxColumns)
	}
	for i, c := range cols {
		if len(c.Name) == 0 || len(c.Name) > maxNameLen {
			return fmt.Errorf("column %d: name length %d, want 1..%d", i, len(c.Name), maxNameLen)
		}
		if !c.Type.Valid() {
			return fmt.Errorf("column %q: unknown type %d", c.Name, c.Type)
		}
		if c.Length < 0 {
			return fmt.Errorf("column %q: negative length", c.Name)
		}
	}
	return nil
}

// WriteRow writes one row. vals[i] is nil for NULL, else of the Go type for cols[i].Type:
// NUMBER string (any form CanonicalNumber accepts), BINARY_FLOAT float32, BINARY_DOUBLE
// float64, DATE/TIMESTAMP/TIMESTAMP WITH LOCAL TIME ZONE DateTime (UTC for the latter),
// TIMESTAMP WITH TIME ZONE TimestampTZ, intervals IntervalYM/IntervalDS, character types and
// ROWID string, RAW []byte, LOBs io.Reader (read to EOF), []byte or string.
func (e *Encoder) WriteRow(vals []any) error {
	if e.err != nil {
		return e.err
	}
	if len(vals) != len(e.cols) {
		return fmt.Errorf("row has %d values, table has %d columns", len(vals), len(e.cols))
	}
	// Check every inline value before writing anything, so a bad value leaves the stream intact.
	for i, v := range vals {
		if err := checkValue(e.cols[i], v); err != nil {
			return fmt.Errorf("row %d column %q: %w", e.rows, e.cols[i].Name, err)
		}
	}
	e.w.WriteByte(markRow)
	for i, v := range vals {
		if err := e.value(e.cols[i], v); err != nil {
			e.err = fmt.Errorf("row %d column %q: %w", e.rows, e.cols[i].Name, err)
			return e.err
		}
	}
	e.rows++
	return nil
}

// Close writes the trailer and flushes. It does not close the underlying writer.
func (e *Encoder) Close() error {
	if e.err != nil {
		return e.err
	}
	e.w.WriteByte(markEnd)
	e.uvarint(e.rows)
	if err := e.w.Flush(); err != nil {
		e.err = fmt.Errorf("flush row stream: %w", err)
		return e.err
	}
	e.err = errors.New("row stream closed")
	return nil
}

// Rows returns the number of rows written so far.
func (e *Encoder) Rows() uint64 { return e.rows }

func (e *Encoder) uvarint(v uint64) { e.w.Write(binary.AppendUvarint(e.buf[:0], v)) }
func (e *Encoder) varint(v int64)   { e.w.Write(binary.AppendVarint(e.buf[:0], v)) }
func (e *Encoder) bytes(b []byte) {
	e.uvarint(uint64(len(b)))
	e.w.Write(b)
}

func checkValue(c Column, v any) error {
	if v == nil {
		return nil
	}
	typeErr := fmt.Errorf("%s value of Go type %T", c.Type, v)
	switch c.Type {
	case TypeNumber:
		s, ok := v.(string)
		if !ok {
			return typeErr
		}
		_, err := CanonicalNumber(s)
		return err
	case TypeBinaryFloat:
		if _, ok := v.(float32); !ok {
			return typeErr
		}
	case TypeBinaryDouble:
		if _, ok := v.(float64); !ok {
			return typeErr
		}
	case TypeDate, TypeTimestamp, TypeTimestampLTZ:
		d, ok := v.(DateTime)
		if !ok {
			return typeErr
		}
		if c.Type == TypeDate && d.Nanosecond != 0 {
			return errors.New("DATE with fractional seconds")
		}
		return d.valid()
	case TypeTimestampTZ:
		t, ok := v.(TimestampTZ)
		if !ok {
			return typeErr
		}
		if err := t.UTC.valid(); err != nil {
			return err
		}
		return checkZone(t.Zone)
	case TypeIntervalYM:
		m, ok := v.(IntervalYM)
		if !ok {
			return typeErr
		}
		if m.Months > maxIntervalYMMo || m.Months < -maxIntervalYMMo {
			return fmt.Errorf("interval of %d months out of range", m.Months)
		}
	case TypeIntervalDS:
		d, ok := v.(IntervalDS)
		if !ok {
			return typeErr
		}
		return d.valid()
	case TypeVarchar2, TypeNVarchar2, TypeChar, TypeNChar:
		s, ok := v.(string)
		if !ok {
			return typeErr
		}
		if len(s) > MaxInlineValue {
			return fmt.Errorf("value of %d bytes exceeds %d", len(s), MaxInlineValue)
		}
	case TypeRaw:
		b, ok := v.([]byte)
		if !ok {
			return typeErr
		}
		if len(b) > MaxInlineValue {
			return fmt.Errorf("value of %d bytes exceeds %d", len(b), MaxInlineValue)
		}
	case TypeRowID:
		s, ok := v.(string)
		if !ok {
			return typeErr
		}
		return checkRowID(s)
	case TypeCLOB, TypeNCLOB, TypeBLOB:
		switch v.(type) {
		case io.Reader, []byte, string:
		default:
			return typeErr
		}
	default:
		return typeErr
	}
	return nil
}

// checkZone accepts what TO_CHAR(…, 'TZR') prints: an offset "+HH:MM"/"-HH:MM" or a region name
// ("Europe/London", "UTC", "America/Argentina/Buenos_Aires", "Etc/GMT+5").
func checkZone(z string) error {
	if len(z) == 0 || len(z) > maxZoneLen {
		return fmt.Errorf("time zone %q: length %d, want 1..%d", truncate(z, 70), len(z), maxZoneLen)
	}
	if z[0] == '+' || z[0] == '-' {
		if len(z) != 6 || z[3] != ':' || !isDigits(z[1:3]) || !isDigits(z[4:6]) {
			return fmt.Errorf("time zone offset %q: want ±HH:MM", z)
		}
		h := int(z[1]-'0')*10 + int(z[2]-'0')
		m := int(z[4]-'0')*10 + int(z[5]-'0')
		if m > 59 || h*60+m > 14*60 || (z[0] == '-' && h*60+m > 12*60) {
			return fmt.Errorf("time zone offset %q out of range", z)
		}
		return nil
	}
	for i := 0; i < len(z); i++ {
		c := z[i]
		ok := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '/' || c == '_' || c == '-' || c == '+'
		if !ok {
			return fmt.Errorf("time zone region %q: unexpected %q", z, c)
		}
	}
	if !(z[0] >= 'A' && z[0] <= 'Z' || z[0] >= 'a' && z[0] <= 'z') {
		return fmt.Errorf("time zone region %q must start with a letter", z)
	}
	return nil
}

func checkRowID(s string) error {
	if len(s) == 0 || len(s) > maxRowIDLen {
		return fmt.Errorf("rowid length %d, want 1..%d", len(s), maxRowIDLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == '\'' {
			return fmt.Errorf("rowid %q: unexpected byte %#x", truncate(s, 40), s[i])
		}
	}
	return nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

func (e *Encoder) value(c Column, v any) error {
	if v == nil {
		return e.w.WriteByte(tagNull)
	}
	e.w.WriteByte(tagValue)
	switch c.Type {
	case TypeNumber:
		s, _ := CanonicalNumber(v.(string))
		e.bytes([]byte(s))
	case TypeBinaryFloat:
		e.w.Write(binary.BigEndian.AppendUint32(e.buf[:0], math.Float32bits(v.(float32))))
	case TypeBinaryDouble:
		e.w.Write(binary.BigEndian.AppendUint64(e.buf[:0], math.Float64bits(v.(float64))))
	case TypeDate:
		e.datetime(v.(DateTime), false)
	case TypeTimestamp, TypeTimestampLTZ:
		e.datetime(v.(DateTime), true)
	case TypeTimestampTZ:
		t := v.(TimestampTZ)
		e.datetime(t.UTC, true)
		e.bytes([]byte(t.Zone))
	case TypeIntervalYM:
		e.varint(v.(IntervalYM).Months)
	case TypeIntervalDS:
		d := v.(IntervalDS)
		e.varint(d.Days)
		e.varint(d.Nanos)
	case TypeVarchar2, TypeNVarchar2, TypeChar, TypeNChar, TypeRowID:
		e.bytes([]byte(v.(string)))
	case TypeRaw:
		e.bytes(v.([]byte))
	case TypeCLOB, TypeNCLOB, TypeBLOB:
		return e.lob(v)
	}
	return nil
}

func (e *Encoder) datetime(d DateTime, nanos bool) {
	e.varint(int64(d.Year))
	e.w.Write([]byte{byte(d.Month), byte(d.Day), byte(d.Hour), byte(d.Minute), byte(d.Second)})
	if nanos {
		e.uvarint(uint64(d.Nanosecond))
	}
}

func (e *Encoder) lob(v any) error {
	var r io.Reader
	switch x := v.(type) {
	case []byte:
		return e.lobBytes(x)
	case string:
		return e.lobBytes([]byte(x))
	case io.Reader:
		r = x
	}
	buf := make([]byte, lobWritePiece)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			e.bytes(buf[:n])
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return e.w.WriteByte(0)
		}
		if err != nil {
			return fmt.Errorf("read lob: %w", err)
		}
	}
}

func (e *Encoder) lobBytes(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), lobWritePiece)
		e.bytes(b[:n])
		b = b[n:]
	}
	return e.w.WriteByte(0)
}

// Decoder reads one row stream with bounded memory.
//
// Use: Next to move to a row (io.EOF after the last row, once the trailer has been checked),
// then Value once per column in order, or Row for all of them. A LOB value is an io.Reader that
// stays valid until the next call to Value, Row or Next; unread LOB data and unread values are
// skipped. Errors for malformed input wrap ErrCorrupt.
type Decoder struct {
	r       *bufio.Reader
	cols    []Column
	col     int // next column to read in the current row; len(cols) when none
	rows    uint64
	inRow   bool
	done    bool
	lob     *lobReader
	err     error
	scratch []byte
}

// NewDecoder reads and checks the stream header.
func NewDecoder(r io.Reader) (*Decoder, error) {
	d := &Decoder{r: bufio.NewReaderSize(r, 64<<10)}
	magic := make([]byte, len(rowMagic)+1)
	if _, err := io.ReadFull(d.r, magic); err != nil {
		return nil, d.readErr("header", err)
	}
	if string(magic[:len(rowMagic)]) != rowMagic {
		return nil, corrupt("not a row stream (bad magic)")
	}
	if magic[len(rowMagic)] != RowFormatV1 {
		return nil, corrupt("unsupported row format version %d", magic[len(rowMagic)])
	}
	n, err := d.uvarint("column count")
	if err != nil {
		return nil, err
	}
	if n == 0 || n > maxColumns {
		return nil, corrupt("column count %d out of range", n)
	}
	d.cols = make([]Column, 0, n)
	for i := uint64(0); i < n; i++ {
		name, err := d.bytes("column name", maxNameLen)
		if err != nil {
			return nil, err
		}
		if len(name) == 0 {
			return nil, corrupt("column %d: empty name", i)
		}
		tf := make([]byte, 2)
		if _, err := io.ReadFull(d.r, tf); err != nil {
			return nil, d.readErr("column type", err)
		}
		c := Column{Name: string(name), Type: Type(tf[0])}
		if !c.Type.Valid() {
			return nil, corrupt("column %q: unknown type %d", c.Name, tf[0])
		}
		if tf[1]&^flagKnown != 0 {
			return nil, corrupt("column %q: unknown flags %#x", c.Name, tf[1])
		}
		c.CharSemantics = tf[1]&flagCharSem != 0
		c.HasScale = tf[1]&flagHasScale != 0
		c.Nullable = tf[1]&flagNullable != 0
		p, err := d.varint("precision")
		if err != nil {
			return nil, err
		}
		s, err := d.varint("scale")
		if err != nil {
			return nil, err
		}
		l, err := d.uvarint("length")
		if err != nil {
			return nil, err
		}
		if p < -1<<20 || p > 1<<20 || s < -1<<20 || s > 1<<20 || l > 1<<31 {
			return nil, corrupt("column %q: precision, scale or length out of range", c.Name)
		}
		c.Precision, c.Scale, c.Length = int(p), int(s), int(l)
		d.cols = append(d.cols, c)
	}
	d.col = len(d.cols)
	return d, nil
}

// Columns returns the column descriptors from the header.
func (d *Decoder) Columns() []Column { return append([]Column(nil), d.cols...) }

// Rows returns the number of rows read so far.
func (d *Decoder) Rows() uint64 { return d.rows }

func (d *Decoder) readErr(what string, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return corrupt("truncated in %s", what)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

func (d *Decoder) fail(err error) error {
	if d.err == nil {
		d.err = err
	}
	return err
}

// Next moves to the next row, skipping whatever of the current row was not read. It returns
// io.EOF after the last row when the trailer is intact and nothing follows it.
func (d *Decoder) Next() error {
	if d.err != nil {
		return d.err
	}
	if d.done {
		return io.EOF
	}
	for d.inRow && d.col < len(d.cols) {
		if _, err := d.Value(); err != nil {
			return err
		}
	}
	if err := d.drainLOB(); err != nil {
		return err
	}
	mark, err := d.r.ReadByte()
	if err != nil {
		return d.fail(d.readErr("row marker", err))
	}
	switch mark {
	case markRow:
		d.inRow = true
		d.col = 0
		d.rows++
		return nil
	case markEnd:
		n, err := d.uvarint("trailer")
		if err != nil {
			return d.fail(err)
		}
		if n != d.rows {
			return d.fail(corrupt("trailer says %d rows, stream has %d", n, d.rows))
		}
		if _, err := d.r.ReadByte(); err != io.EOF {
			if err == nil {
				return d.fail(corrupt("data after trailer"))
			}
			return d.fail(fmt.Errorf("read after trailer: %w", err))
		}
		d.done, d.inRow = true, false
		return io.EOF
	default:
		return d.fail(corrupt("bad row marker %#x after row %d", mark, d.rows))
	}
}

// Value returns the next value of the current row: nil for NULL, else the Go type WriteRow
// takes, with NUMBER in canonical form and LOBs as an io.Reader.
func (d *Decoder) Value() (any, error) {
	if d.err != nil {
		return nil, d.err
	}
	if !d.inRow || d.col >= len(d.cols) {
		return nil, errors.New("no value left in the current row (call Next)")
	}
	if err := d.drainLOB(); err != nil {
		return nil, err
	}
	c := d.cols[d.col]
	d.col++
	v, err := d.value(c)
	if err != nil {
		return nil, d.fail(fmt.Errorf("row %d column %q: %w", d.rows-1, c.Name, err))
	}
	return v, nil
}

// Row reads the remaining values of the current row. LOBs are read into memory, []byte for
// BLOB and string for CLOB/NCLOB, and a LOB longer than maxLOB bytes is an error.
func (d *Decoder) Row(maxLOB int64) ([]any, error) {
	out := make([]any, 0, len(d.cols)-min(d.col, len(d.cols)))
	for d.inRow && d.col < len(d.cols) {
		c := d.cols[d.col]
		v, err := d.Value()
		if err != nil {
			return nil, err
		}
		if r, ok := v.(io.Reader); ok {
			b, err := io.ReadAll(io.LimitReader(r, maxLOB+1))
			if err != nil {
				return nil, err
			}
			if int64(len(b)) > maxLOB {
				return nil, fmt.Errorf("column %q: lob larger than %d bytes", c.Name, maxLOB)
			}
			if c.Type == TypeBLOB {
				v = b
			} else {
				v = string(b)
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func (d *Decoder) drainLOB() error {
	if d.lob == nil {
		return nil
	}
	_, err := io.Copy(io.Discard, d.lob)
	d.lob = nil
	if err != nil {
		return d.fail(err)
	}
	return nil
}

func (d *Decoder) value(c Column) (any, error) {
	tag, err := d.r.ReadByte()
	if err != nil {
		return nil, d.readErr("value tag", err)
	}
	switch tag {
	case tagNull:
		return nil, nil
	case tagValue:
	default:
		return nil, corrupt("bad value tag %#x", tag)
	}
	switch c.Type {
	case TypeNumber:
		b, err := d.bytes("number", 200)
		if err != nil {
			return nil, err
		}
		s := string(b)
		if cs, err := CanonicalNumber(s); err != nil || cs != s {
			return nil, corrupt("number %q is not canonical", truncate(s, 64))
		}
		return s, nil
	case TypeBinaryFloat:
		b, err := d.fixed(4)
		if err != nil {
			return nil, err
		}
		return math.Float32frombits(binary.BigEndian.Uint32(b)), nil
	case TypeBinaryDouble:
		b, err := d.fixed(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	case TypeDate:
		return d.datetime(false)
	case TypeTimestamp, TypeTimestampLTZ:
		return d.datetime(true)
	case TypeTimestampTZ:
		t, err := d.datetime(true)
		if err != nil {
			return nil, err
		}
		z, err := d.bytes("time zone", maxZoneLen)
		if err != nil {
			return nil, err
		}
		if err := checkZone(string(z)); err != nil {
			return nil, corrupt("%v", err)
		}
		return TimestampTZ{UTC: t, Zone: string(z)}, nil
	case TypeIntervalYM:
		m, err := d.varint("interval")
		if err != nil {
			return nil, err
		}
		if m > maxIntervalYMMo || m < -maxIntervalYMMo {
			return nil, corrupt("interval of %d months out of range", m)
		}
		return IntervalYM{Months: m}, nil
	case TypeIntervalDS:
		days, err := d.varint("interval days")
		if err != nil {
			return nil, err
		}
		ns, err := d.varint("interval nanoseconds")
		if err != nil {
			return nil, err
		}
		v := IntervalDS{Days: days, Nanos: ns}
		if err := v.valid(); err != nil {
			return nil, corrupt("%v", err)
		}
		return v, nil
	case TypeVarchar2, TypeNVarchar2, TypeChar, TypeNChar:
		b, err := d.bytes("text", MaxInlineValue)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	case TypeRowID:
		b, err := d.bytes("rowid", maxRowIDLen)
		if err != nil {
			return nil, err
		}
		if err := checkRowID(string(b)); err != nil {
			return nil, corrupt("%v", err)
		}
		return string(b), nil
	case TypeRaw:
		b, err := d.bytes("raw", MaxInlineValue)
		if err != nil {
			return nil, err
		}
		return append([]byte{}, b...), nil
	case TypeCLOB, TypeNCLOB, TypeBLOB:
		d.lob = &lobReader{d: d}
		return d.lob, nil
	}
	return nil, corrupt("unknown type %d", c.Type)
}

func (d *Decoder) datetime(nanos bool) (DateTime, error) {
	y, err := d.varint("year")
	if err != nil {
		return DateTime{}, err
	}
	b, err := d.fixed(5)
	if err != nil {
		return DateTime{}, err
	}
	t := DateTime{Year: int(y), Month: int(b[0]), Day: int(b[1]), Hour: int(b[2]),
		Minute: int(b[3]), Second: int(b[4])}
	if y < -4712 || y > 9999 {
		return DateTime{}, corrupt("year %d out of range", y)
	}
	if nanos {
		ns, err := d.uvarint("nanoseconds")
		if err != nil {
			return DateTime{}, err
		}
		if ns > 999_999_999 {
			return DateTime{}, corrupt("nanoseconds %d out of range", ns)
		}
		t.Nanosecond = int(ns)
	}
	if err := t.valid(); err != nil {
		return DateTime{}, corrupt("%v", err)
	}
	return t, nil
}

func (d *Decoder) uvarint(what string) (uint64, error) {
	v, err := binary.ReadUvarint(d.r)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, corrupt("truncated in %s", what)
		}
		return 0, corrupt("%s: %v", what, err)
	}
	return v, nil
}

func (d *Decoder) varint(what string) (int64, error) {
	v, err := binary.ReadVarint(d.r)
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, corrupt("truncated in %s", what)
		}
		return 0, corrupt("%s: %v", what, err)
	}
	return v, nil
}

func (d *Decoder) fixed(n int) ([]byte, error) {
	if cap(d.scratch) < n {
		d.scratch = make([]byte, n)
	}
	b := d.scratch[:n]
	if _, err := io.ReadFull(d.r, b); err != nil {
		return nil, d.readErr("value", err)
	}
	return b, nil
}

// bytes reads a length-prefixed byte string of at most limit bytes. The result is valid until
// the next read.
func (d *Decoder) bytes(what string, limit int) ([]byte, error) {
	n, err := d.uvarint(what + " length")
	if err != nil {
		return nil, err
	}
	if n > uint64(limit) {
		return nil, corrupt("%s length %d exceeds %d", what, n, limit)
	}
	return d.fixed(int(n))
}

// lobReader yields one LOB value piece by piece from the decoder's stream.
type lobReader struct {
	d      *Decoder
	remain uint64 // bytes left in the current piece
	done   bool
	err    error
}

func (l *lobReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if l.d.lob != l && !l.done {
		return 0, errors.New("lob read after the decoder moved on")
	}
	for l.remain == 0 {
		if l.done {
			return 0, io.EOF
		}
		n, err := l.d.uvarint("lob piece length")
		if err != nil {
			l.err = l.d.fail(err)
			return 0, l.err
		}
		if n == 0 {
			l.done = true
			return 0, io.EOF
		}
		if n > MaxLOBPiece {
			l.err = l.d.fail(corrupt("lob piece of %d bytes exceeds %d", n, MaxLOBPiece))
			return 0, l.err
		}
		l.remain = n
	}
	if uint64(len(p)) > l.remain {
		p = p[:l.remain]
	}
	n, err := l.d.r.Read(p)
	l.remain -= uint64(n)
	if err == io.EOF {
		err = nil
		if n == 0 {
			l.err = l.d.fail(corrupt("truncated in lob piece"))
			return 0, l.err
		}
	} else if err != nil {
		l.err = l.d.fail(fmt.Errorf("read lob: %w", err))
		return n, l.err
	}
	return n, nil
}

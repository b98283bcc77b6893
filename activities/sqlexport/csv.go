package sqlexport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// ErrMalformedCSV marks input that CSVReader cannot read as what WriteCSV
// writes.
var ErrMalformedCSV = errors.New("malformed CSV")

// WriteCSV writes the rows of table (or view) as CSV with a header row, in
// the conventions of the package documentation, and returns the number of
// rows. Generated columns are left out.
//
// WriteCSV buffers its writes and flushes them before returning; it stops at
// the first error of w. Only one row is in memory at a time.
func WriteCSV(ctx context.Context, q Querier, table string, w io.Writer) (rows int64, err error) {
	t, err := loadTable(ctx, q, table, false)
	if err != nil {
		return 0, fmt.Errorf("export table %s: %w", table, err)
	}
	o := newOutput(w)
	for i, c := range t.cols {
		if i > 0 {
			o.WriteByte(',')
		}
		writeCSVText(o, c)
	}
	o.WriteString("\r\n")
	rows, err = scanRows(ctx, q, t.selectSQL(), len(t.cols), o, func(vals []any) error {
		if err := writeValues(o, vals, writeCSVValue); err != nil {
			return err
		}
		o.WriteString("\r\n")
		return nil
	})
	if err != nil {
		return rows, fmt.Errorf("export table %s: %w", table, err)
	}
	if _, err := o.finish(); err != nil {
		return rows, fmt.Errorf("export table %s: %w", table, err)
	}
	return rows, nil
}

// writeCSVValue writes one field.
func writeCSVValue(o *output, v any) error {
	switch v := v.(type) {
	case nil:
	case int64:
		o.num = strconv.AppendInt(o.num[:0], v, 10)
		o.Write(o.num)
	case float64:
		o.num = appendCSVReal(o.num[:0], v)
		o.Write(o.num)
	case string:
		writeCSVText(o, v)
	case []byte:
		o.WriteString(`\x`)
		writeHex(o, v)
	default:
		return badValue(v)
	}
	return nil
}

func writeCSVText(o *output, s string) {
	o.WriteByte('"')
	for {
		i := indexQuote(s)
		if i < 0 {
			break
		}
		o.WriteString(s[:i+1])
		o.WriteByte('"')
		s = s[i+1:]
	}
	o.WriteString(s)
	o.WriteByte('"')
}

func indexQuote(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			return i
		}
	}
	return -1
}

// appendCSVReal appends the shortest text that parses back to f, with a '.'
// or an exponent so that it reads as REAL and not INTEGER.
func appendCSVReal(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if !bytes.ContainsAny(b[start:], ".eN") { // N: NaN, which SQLite never stores
		b = append(b, ".0"...)
	}
	return b
}

// CSVReader reads what WriteCSV writes: a header row, then records of
// values typed by the package's conventions.
type CSVReader struct {
	r      *bufio.Reader
	header []string
	line   int // line on which the next record starts
	field  []byte
	eof    bool
	err    error // sticky: the first error of the input or its syntax
}

// NewCSVReader reads the header row from r and returns a reader for the
// records after it.
func NewCSVReader(r io.Reader) (*CSVReader, error) {
	cr := &CSVReader{r: bufio.NewReaderSize(r, 64<<10), line: 1}
	rec, err := cr.record()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: no header row", ErrMalformedCSV)
	}
	if err != nil {
		return nil, err
	}
	for i, v := range rec {
		name, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%w: line 1: header field %d is not quoted text", ErrMalformedCSV, i+1)
		}
		cr.header = append(cr.header, name)
	}
	return cr, nil
}

// Header returns the column names.
func (r *CSVReader) Header() []string { return r.header }

// Read returns the values of the next record: int64, float64, string,
// []byte (never nil) or nil for NULL. It returns io.EOF after the last
// record, and an error wrapping ErrMalformedCSV for input that WriteCSV would
// not have written, including a record with more or fewer fields than the
// header.
func (r *CSVReader) Read() ([]any, error) {
	line := r.line
	rec, err := r.record()
	if err != nil {
		return nil, err
	}
	if len(rec) != len(r.header) {
		return nil, fmt.Errorf("%w: line %d: %d fields, header has %d", ErrMalformedCSV, line, len(rec), len(r.header))
	}
	return rec, nil
}

// record reads one record. A record is a line, so an empty line is one NULL
// field; io.EOF comes only where a record would start.
func (r *CSVReader) record() ([]any, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.eof {
		return nil, io.EOF
	}
	if _, err := r.r.Peek(1); err == io.EOF {
		r.eof = true
		return nil, io.EOF
	} else if err != nil {
		r.err = fmt.Errorf("read csv line %d: %w", r.line, err)
		return nil, r.err
	}
	line := r.line
	var rec []any
	for {
		v, end, err := r.readField()
		if se, ok := err.(syntaxError); ok {
			// Where the next record starts is unknown: stop here.
			r.err = fmt.Errorf("%w: line %d: %s", ErrMalformedCSV, line, string(se))
			return nil, r.err
		}
		if err != nil {
			r.err = fmt.Errorf("read csv line %d: %w", line, err)
			return nil, r.err
		}
		rec = append(rec, v)
		if end {
			r.line++
			return rec, nil
		}
	}
}

// syntaxError is a problem with the input found by readField; record adds
// the line and ErrMalformedCSV.
type syntaxError string

func (e syntaxError) Error() string { return string(e) }

func errSyntax(format string, args ...any) error {
	return syntaxError(fmt.Sprintf(format, args...))
}

// readField reads one field and its terminator, reporting whether the
// terminator ended the record (a line end, or the end of the input).
func (r *CSVReader) readField() (v any, end bool, err error) {
	c, err := r.r.ReadByte()
	if err == io.EOF {
		r.eof = true
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	if c == '"' {
		s, err := r.readQuoted()
		if err != nil {
			return nil, false, err
		}
		end, err := r.readTerminator()
		return s, end, err
	}
	r.r.UnreadByte()
	r.field = r.field[:0]
	for {
		c, err := r.r.ReadByte()
		if err == io.EOF {
			r.eof = true
			v, err := parseUnquoted(r.field)
			return v, true, err
		}
		if err != nil {
			return nil, false, err
		}
		if c == ',' || c == '\n' || c == '\r' {
			r.r.UnreadByte()
			break
		}
		if c == '"' {
			return nil, false, errSyntax(`quote inside an unquoted field`)
		}
		r.field = append(r.field, c)
	}
	if v, err = parseUnquoted(r.field); err != nil {
		return nil, false, err
	}
	end, err = r.readTerminator()
	return v, end, err
}

// readQuoted reads a quoted field after its opening quote.
func (r *CSVReader) readQuoted() (string, error) {
	r.field = r.field[:0]
	for {
		chunk, err := r.r.ReadSlice('"')
		r.field = append(r.field, chunk...)
		r.line += bytes.Count(chunk, []byte{'\n'})
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return "", errSyntax("quoted field not closed")
		}
		if err != nil {
			return "", err
		}
		// A quote either doubles an escaped quote or closes the field.
		next, err := r.r.Peek(1)
		if len(next) == 1 && next[0] == '"' {
			r.r.ReadByte()
			continue
		}
		if err != nil && err != io.EOF {
			return "", err
		}
		return string(r.field[:len(r.field)-1]), nil
	}
}

// readTerminator reads what follows a field: a comma, a line end or the end
// of the input.
func (r *CSVReader) readTerminator() (end bool, err error) {
	c, err := r.r.ReadByte()
	switch {
	case err == io.EOF:
		r.eof = true
		return true, nil
	case err != nil:
		return false, err
	case c == ',':
		return false, nil
	case c == '\n':
		return true, nil
	case c == '\r':
		if c, err := r.r.ReadByte(); err == nil && c == '\n' {
			return true, nil
		}
		return false, errSyntax(`carriage return not followed by a line feed`)
	}
	return false, errSyntax("%q after a quoted field", c)
}

// parseUnquoted types an unquoted field: NULL, BLOB, INTEGER or REAL.
func parseUnquoted(f []byte) (any, error) {
	switch {
	case len(f) == 0:
		return nil, nil
	case bytes.HasPrefix(f, []byte(`\x`)):
		b := make([]byte, hex.DecodedLen(len(f)-2))
		if _, err := hex.Decode(b, f[2:]); err != nil {
			return nil, errSyntax("blob %.40q: %v", f, err)
		}
		return b, nil
	case string(f) == "Inf":
		return math.Inf(1), nil
	case string(f) == "-Inf":
		return math.Inf(-1), nil
	}
	isReal := false
	for i, c := range f {
		switch {
		case c >= '0' && c <= '9':
		case c == '-' && i == 0:
		case c == '.' || c == 'e' || c == 'E':
			isReal = true
		case (c == '-' || c == '+') && i > 0 && (f[i-1] == 'e' || f[i-1] == 'E'):
		default:
			return nil, errSyntax("%.40q is not NULL, a number or a blob (text must be quoted)", f)
		}
	}
	if isReal {
		v, err := strconv.ParseFloat(string(f), 64)
		if err != nil {
			return nil, errSyntax("real %.40q: %v", f, err)
		}
		return v, nil
	}
	v, err := strconv.ParseInt(string(f), 10, 64)
	if err != nil {
		return nil, errSyntax("integer %.40q: %v", f, err)
	}
	return v, nil
}

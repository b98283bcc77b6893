package oraclesrc

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// BatchLimits bound one array-bind batch. A row larger than MaxBytes on its own still makes a
// batch of one row.
type BatchLimits struct {
	MaxRows  int // rows per batch; DefaultBatchRows when 0
	MaxBytes int // approximate bytes of bound values per batch; DefaultBatchBytes when 0
}

// Default batch limits.
const (
	DefaultBatchRows  = 1000
	DefaultBatchBytes = 8 << 20
)

// Batch is one array-bind INSERT execution: Args[i] is a typed slice for bind :i+1 and every
// slice has exactly Rows elements, Rows > 0. Slices are []sql.NullString, []sql.NullFloat64,
// []sql.Null[float32] or [][]byte (nil element = NULL), so the bind type never depends on which
// elements are NULL. The go-ora adapter still has to wrap LOB slices (go_ora.Clob/Blob) and may
// swap NUMBER text for go_ora.Number.
type Batch struct {
	Args []any
	Rows int
}

// Batcher turns decoded rows into array-bind batches that avoid go-ora's traps: all slices have
// the same length (go-ora silently cuts to the shortest), no batch is ever empty (an empty slice
// panics), the element type is fixed per column (go-ora takes it from the last non-nil element),
// and LOB columns come last (ORA-01461/ORA-01483 otherwise).
type Batcher struct {
	cols   []Column // in insert order
	src    []int    // cols[i] is column src[i] of the rows given to Add
	limits BatchLimits
	args   []any
	rows   int
	bytes  int
}

// NewBatcher prepares batches for rows of table columns cols (in table order).
func NewBatcher(cols []Column, limits BatchLimits) (*Batcher, error) {
	if err := validateColumns(cols); err != nil {
		return nil, err
	}
	if limits.MaxRows < 0 || limits.MaxBytes < 0 {
		return nil, errors.New("negative batch limits")
	}
	if limits.MaxRows == 0 {
		limits.MaxRows = DefaultBatchRows
	}
	if limits.MaxBytes == 0 {
		limits.MaxBytes = DefaultBatchBytes
	}
	b := &Batcher{limits: limits}
	for pass := 0; pass < 2; pass++ {
		for i, c := range cols {
			if c.Type.IsLOB() == (pass == 1) {
				b.cols = append(b.cols, c)
				b.src = append(b.src, i)
			}
		}
	}
	b.reset()
	return b, nil
}

// Columns returns the columns in insert order (LOBs last): pass them to InsertSQL.
func (b *Batcher) Columns() []Column { return append([]Column(nil), b.cols...) }

func (b *Batcher) reset() {
	b.args = b.args[:0]
	for _, c := range b.cols {
		switch c.Type {
		case TypeBinaryFloat:
			b.args = append(b.args, []sql.Null[float32](nil))
		case TypeBinaryDouble:
			b.args = append(b.args, []sql.NullFloat64(nil))
		case TypeRaw, TypeBLOB:
			b.args = append(b.args, [][]byte(nil))
		case TypeTimestampTZ:
			b.args = append(b.args, []sql.NullString(nil), []sql.NullString(nil))
		default:
			b.args = append(b.args, []sql.NullString(nil))
		}
	}
	b.rows, b.bytes = 0, 0
}

// Add appends one row (values as Decoder.Row returns them, in table order; LOBs as []byte or
// string). When the pending batch is full it is returned, and the caller executes it; otherwise
// the result is nil. A row that would push the batch past MaxBytes first closes the pending
// batch.
func (b *Batcher) Add(row []any) (*Batch, error) {
	if len(row) != len(b.cols) {
		return nil, fmt.Errorf("row has %d values, table has %d columns", len(row), len(b.cols))
	}
	vals := make([]any, 0, len(b.args))
	size := 0
	for i, c := range b.cols {
		v := row[b.src[i]]
		if err := checkValue(c, v); err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		bv, n, err := bindValues(c, v)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", c.Name, err)
		}
		vals = append(vals, bv...)
		size += n
	}
	var full *Batch
	if b.rows > 0 && b.bytes+size > b.limits.MaxBytes {
		full = b.take()
	}
	for i, v := range vals {
		switch s := b.args[i].(type) {
		case []sql.NullString:
			b.args[i] = append(s, v.(sql.NullString))
		case []sql.NullFloat64:
			b.args[i] = append(s, v.(sql.NullFloat64))
		case []sql.Null[float32]:
			b.args[i] = append(s, v.(sql.Null[float32]))
		case [][]byte:
			b.args[i] = append(s, v.([]byte))
		}
	}
	b.rows++
	b.bytes += size
	if full == nil && (b.rows >= b.limits.MaxRows || b.bytes >= b.limits.MaxBytes) {
		full = b.take()
	}
	return full, nil
}

// Flush returns the pending rows as a batch, or nil when there are none.
func (b *Batcher) Flush() *Batch { return b.take() }

func (b *Batcher) take() *Batch {
	if b.rows == 0 {
		return nil
	}
	out := &Batch{Args: append([]any(nil), b.args...), Rows: b.rows}
	b.args = nil
	b.reset()
	return out
}

// bindValues returns the bind slot values for one column value and its approximate size.
func bindValues(c Column, v any) ([]any, int, error) {
	str := func(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }
	null := sql.NullString{}
	switch c.Type {
	case TypeBinaryFloat:
		if v == nil {
			return []any{sql.Null[float32]{}}, 4, nil
		}
		return []any{sql.Null[float32]{V: v.(float32), Valid: true}}, 4, nil
	case TypeBinaryDouble:
		if v == nil {
			return []any{sql.NullFloat64{}}, 8, nil
		}
		return []any{sql.NullFloat64{Float64: v.(float64), Valid: true}}, 8, nil
	case TypeRaw, TypeBLOB:
		switch x := v.(type) {
		case nil:
			return []any{[]byte(nil)}, 1, nil
		case []byte:
			if x == nil {
				x = []byte{} // keep an empty BLOB distinct from NULL
			}
			return []any{x}, len(x) + 1, nil
		case string:
			return []any{[]byte(x)}, len(x) + 1, nil
		default:
			return nil, 0, errors.New("batch needs LOB values in memory ([]byte or string), not a stream")
		}
	case TypeTimestampTZ:
		if v == nil {
			return []any{null, null}, 2, nil
		}
		t := v.(TimestampTZ)
		return []any{str(FormatTimestamp(t.UTC)), str(t.Zone)}, 40, nil
	}
	if v == nil {
		return []any{null}, 1, nil
	}
	var s string
	switch c.Type {
	case TypeNumber:
		s, _ = CanonicalNumber(v.(string))
	case TypeDate:
		s = FormatDate(v.(DateTime))
	case TypeTimestamp, TypeTimestampLTZ:
		s = FormatTimestamp(v.(DateTime))
	case TypeIntervalYM:
		s = FormatIntervalYM(v.(IntervalYM))
	case TypeIntervalDS:
		s = FormatIntervalDS(v.(IntervalDS))
	case TypeCLOB, TypeNCLOB:
		switch x := v.(type) {
		case string:
			s = x
		case []byte:
			s = string(x)
		case io.Reader:
			return nil, 0, errors.New("batch needs LOB values in memory ([]byte or string), not a stream")
		}
	default:
		s = v.(string)
	}
	return []any{str(s)}, len(s) + 1, nil
}

// FormatDate formats d as TO_DATE(…, 'SYYYY-MM-DD HH24:MI:SS') reads it.
func FormatDate(d DateTime) string {
	return formatYear(d.Year) + fmt.Sprintf("-%02d-%02d %02d:%02d:%02d", d.Month, d.Day, d.Hour, d.Minute, d.Second)
}

// FormatTimestamp formats d as TO_TIMESTAMP(…, 'SYYYY-MM-DD HH24:MI:SS.FF9') reads it.
func FormatTimestamp(d DateTime) string {
	return FormatDate(d) + fmt.Sprintf(".%09d", d.Nanosecond)
}

func formatYear(y int) string {
	if y < 0 {
		return fmt.Sprintf("-%04d", -y)
	}
	return fmt.Sprintf("%04d", y)
}

// FormatIntervalYM formats v as TO_YMINTERVAL reads it: "+Y-M" / "-Y-M".
func FormatIntervalYM(v IntervalYM) string {
	sign, m := "+", v.Months
	if m < 0 {
		sign, m = "-", -m
	}
	return sign + strconv.FormatInt(m/12, 10) + "-" + strconv.FormatInt(m%12, 10)
}

// FormatIntervalDS formats v as TO_DSINTERVAL reads it: "+D HH:MI:SS.FFFFFFFFF".
func FormatIntervalDS(v IntervalDS) string {
	sign, d, ns := "+", v.Days, v.Nanos
	if d < 0 || ns < 0 {
		sign, d, ns = "-", -d, -ns
	}
	s := ns / 1e9
	return fmt.Sprintf("%s%d %02d:%02d:%02d.%09d", sign, d, s/3600, s/60%60, s%60, ns%1e9)
}

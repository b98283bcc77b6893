package oraclesrc

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"math/big"
)

// TableDigest is the checksum of a table's contents that a manifest records and a restore
// checks: the sum, modulo 2^256, of the SHA-256 of every row. A sum, so that it does not depend on
// the order in which Oracle returns rows (a heap table restored by array inserts comes back in
// another order) and so that duplicate rows count twice. Each row's hash covers its values in
// column order, each as a tag and its canonical payload, a LOB as the SHA-256 of its bytes, so
// the digest is the same whether the rows come from a live query or from a stored row stream.
//
// Written as "rowsum-sha256:" and 64 hex digits.
type TableDigest struct {
	cols []Column
	sum  *big.Int
	rows uint64
	h    hash.Hash
	lob  hash.Hash
	buf  []byte
}

// DigestPrefix names the algorithm in a recorded digest.
const DigestPrefix = "rowsum-sha256:"

var two256 = new(big.Int).Lsh(big.NewInt(1), 256)

// NewTableDigest starts a digest of rows of cols.
func NewTableDigest(cols []Column) *TableDigest {
	return &TableDigest{cols: cols, sum: new(big.Int), h: sha256.New(), lob: sha256.New()}
}

// Add adds one row: values as WriteRow takes them (LOBs as string, []byte or io.Reader).
func (t *TableDigest) Add(row []any) error {
	if len(row) != len(t.cols) {
		return fmt.Errorf("digest: row of %d values for %d columns", len(row), len(t.cols))
	}
	t.StartRow()
	for i := range t.cols {
		if err := t.Value(i, row[i]); err != nil {
			return err
		}
	}
	t.EndRow()
	return nil
}

// StartRow, Value and EndRow add a row value by value, for a decoder whose
// LOB readers are only valid until the next value is read.
func (t *TableDigest) StartRow() { t.h.Reset() }

// Value adds the value of column i of the current row.
func (t *TableDigest) Value(i int, v any) error {
	if i < 0 || i >= len(t.cols) {
		return fmt.Errorf("digest: column %d of %d", i, len(t.cols))
	}
	if err := t.value(t.cols[i], v); err != nil {
		return fmt.Errorf("digest: column %q: %w", t.cols[i].Name, err)
	}
	return nil
}

// EndRow adds the current row to the sum.
func (t *TableDigest) EndRow() {
	t.sum.Add(t.sum, new(big.Int).SetBytes(t.h.Sum(nil)))
	t.sum.Mod(t.sum, two256)
	t.rows++
}

// Rows is the number of rows added.
func (t *TableDigest) Rows() uint64 { return t.rows }

// String is the recorded form.
func (t *TableDigest) String() string {
	b := t.sum.FillBytes(make([]byte, 32))
	return DigestPrefix + hex.EncodeToString(b)
}

func (t *TableDigest) put(tag byte, payload ...[]byte) {
	t.h.Write([]byte{tag})
	for _, p := range payload {
		t.buf = binary.AppendUvarint(t.buf[:0], uint64(len(p)))
		t.h.Write(t.buf)
		t.h.Write(p)
	}
}

func (t *TableDigest) value(c Column, v any) error {
	if v == nil {
		t.put(tagNull)
		return nil
	}
	if err := checkValue(c, v); err != nil {
		return err
	}
	dt := func(d DateTime) []byte {
		return []byte(FormatTimestamp(d))
	}
	switch c.Type {
	case TypeNumber:
		s, _ := CanonicalNumber(v.(string))
		t.put(tagValue, []byte(s))
	case TypeBinaryFloat:
		t.put(tagValue, binary.BigEndian.AppendUint32(nil, math.Float32bits(v.(float32))))
	case TypeBinaryDouble:
		t.put(tagValue, binary.BigEndian.AppendUint64(nil, math.Float64bits(v.(float64))))
	case TypeDate, TypeTimestamp, TypeTimestampLTZ:
		t.put(tagValue, dt(v.(DateTime)))
	case TypeTimestampTZ:
		x := v.(TimestampTZ)
		t.put(tagValue, dt(x.UTC), []byte(x.Zone))
	case TypeIntervalYM:
		t.put(tagValue, []byte(FormatIntervalYM(v.(IntervalYM))))
	case TypeIntervalDS:
		t.put(tagValue, []byte(FormatIntervalDS(v.(IntervalDS))))
	case TypeRaw:
		t.put(tagValue, v.([]byte))
	case TypeCLOB, TypeNCLOB, TypeBLOB:
		t.lob.Reset()
		switch x := v.(type) {
		case string:
			io.WriteString(t.lob, x)
		case []byte:
			t.lob.Write(x)
		case io.Reader:
			if _, err := io.Copy(t.lob, x); err != nil {
				return err
			}
		}
		t.put(tagValue, t.lob.Sum(nil))
	default: // character types and ROWID
		t.put(tagValue, []byte(v.(string)))
	}
	return nil
}

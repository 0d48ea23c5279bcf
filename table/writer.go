package table

import (
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/types"
)

// Writer buffers rows for one table and appends them as a batch when
// Flush is called or when MaxRows rows are buffered. Sources call Flush at
// least every 100 ms so that queries see fresh data. A Writer is safe for
// concurrent use.
type Writer struct {
	t       *Table
	mu      sync.Mutex
	b       *array.RecordBuilder
	n       int
	MaxRows int
	u128    [16]byte // scratch for UInt128 values
}

// NewWriter returns a writer for t.
func NewWriter(t *Table) *Writer {
	return &Writer{t: t, b: array.NewRecordBuilder(memory.DefaultAllocator, t.schema), MaxRows: 8192}
}

// AppendRow appends one row. Values are given in relation order as Go
// values: bool, int64 (also int), float64, string, types.UInt128Value, and
// int64 nanoseconds for TIME64NS.
func (w *Writer) AppendRow(vals ...any) error {
	if len(vals) != len(w.t.rel) {
		return fmt.Errorf("table %s: row has %d values, want %d", w.t.name, len(vals), len(w.t.rel))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// Check every value before appending any, so that a bad row leaves
	// the columns aligned.
	for i, v := range vals {
		if err := appendValue(nil, w.t.rel[i].Type, v); err != nil {
			return fmt.Errorf("table %s column %s: %w", w.t.name, w.t.rel[i].Name, err)
		}
	}
	for i, v := range vals {
		appendValue(w.b.Field(i), w.t.rel[i].Type, v)
	}
	w.n++
	if w.n >= w.MaxRows {
		return w.flushLocked()
	}
	return nil
}

// Flush appends the buffered rows to the table.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	if w.n == 0 {
		return nil
	}
	rows := w.n
	rec := w.b.NewRecord()
	w.n = 0
	// Size the next batch like this one, so that its buffers are
	// allocated once instead of regrown (and copied) as rows arrive.
	for i, f := range w.b.Fields() {
		f.Reserve(rows)
		if sb, ok := f.(*array.StringBuilder); ok {
			sb.ReserveData(len(rec.Column(i).(*array.String).ValueBytes()))
		}
	}
	err := w.t.Append(rec)
	rec.Release()
	return err
}

// appendValue appends v to a builder of type t; with a nil builder it only
// checks v's Go type.
func appendValue(b array.Builder, t types.DataType, v any) error {
	switch t {
	case types.Boolean:
		x, ok := v.(bool)
		if !ok {
			return fmt.Errorf("want bool, got %T", v)
		}
		if b != nil {
			b.(*array.BooleanBuilder).Append(x)
		}
	case types.Int64:
		switch x := v.(type) {
		case int64:
			if b != nil {
				b.(*array.Int64Builder).Append(x)
			}
		case int:
			if b != nil {
				b.(*array.Int64Builder).Append(int64(x))
			}
		default:
			return fmt.Errorf("want int64, got %T", v)
		}
	case types.Float64:
		x, ok := v.(float64)
		if !ok {
			return fmt.Errorf("want float64, got %T", v)
		}
		if b != nil {
			b.(*array.Float64Builder).Append(x)
		}
	case types.String:
		x, ok := v.(string)
		if !ok {
			return fmt.Errorf("want string, got %T", v)
		}
		if b != nil {
			appendString(b.(*array.StringBuilder), x)
		}
	case types.Time64NS:
		x, ok := v.(int64)
		if !ok {
			return fmt.Errorf("want int64 ns, got %T", v)
		}
		if b != nil {
			b.(*array.TimestampBuilder).Append(arrow.Timestamp(x))
		}
	case types.UInt128:
		x, ok := v.(types.UInt128Value)
		if !ok {
			return fmt.Errorf("want UInt128Value, got %T", v)
		}
		if b != nil {
			b.(*array.FixedSizeBinaryBuilder).Append(x.Bytes())
		}
	default:
		return fmt.Errorf("unsupported type %v", t)
	}
	return nil
}

// appendString appends s without the copy that StringBuilder.Append makes
// converting it to []byte (the builder only reads the bytes).
func appendString(b *array.StringBuilder, s string) {
	b.BinaryBuilder.Append(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// Value is one typed value for AppendValues. Unlike AppendRow's any, it
// needs no allocation to box the value, and a string can be given as the
// bytes that hold it (StrBytes), copied only into the column.
type Value struct {
	t types.DataType
	i int64 // Boolean (0 or 1), Int64, Time64NS, Float64 bits
	u types.UInt128Value
	s string
	b []byte
	// bytes says that a String value is b, not s.
	bytes bool
}

// Bool is a BOOLEAN value.
func Bool(v bool) Value {
	x := int64(0)
	if v {
		x = 1
	}
	return Value{t: types.Boolean, i: x}
}

// Int is an INT64 value.
func Int(v int64) Value { return Value{t: types.Int64, i: v} }

// Time is a TIME64NS value, ns since the epoch.
func Time(ns int64) Value { return Value{t: types.Time64NS, i: ns} }

// Float is a FLOAT64 value.
func Float(v float64) Value { return Value{t: types.Float64, i: int64(math.Float64bits(v))} }

// Str is a STRING value.
func Str(s string) Value { return Value{t: types.String, s: s} }

// StrBytes is a STRING value held in b. b is read only during the
// AppendValues call that takes it.
func StrBytes(b []byte) Value { return Value{t: types.String, b: b, bytes: true} }

// UInt128 is a UINT128 value.
func UInt128(v types.UInt128Value) Value { return Value{t: types.UInt128, u: v} }

// Any returns v as AppendRow takes it.
func (v Value) Any() any {
	switch v.t {
	case types.Boolean:
		return v.i != 0
	case types.Int64, types.Time64NS:
		return v.i
	case types.Float64:
		return math.Float64frombits(uint64(v.i))
	case types.String:
		if v.bytes {
			return string(v.b)
		}
		return v.s
	case types.UInt128:
		return v.u
	}
	return nil
}

// AppendValues appends one row of typed values, in relation order: the
// same row AppendRow appends from the values' Any, without boxing them or
// switching on their Go types. An INT64 value is accepted for a TIME64NS
// column, as in AppendRow.
func (w *Writer) AppendValues(vals []Value) error {
	if len(vals) != len(w.t.rel) {
		return fmt.Errorf("table %s: row has %d values, want %d", w.t.name, len(vals), len(w.t.rel))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// Check every value before appending any, so that a bad row leaves
	// the columns aligned.
	for i := range vals {
		ct, vt := w.t.rel[i].Type, vals[i].t
		if vt != ct && !(vt == types.Int64 && ct == types.Time64NS) {
			return fmt.Errorf("table %s column %s: want %v, got %v", w.t.name, w.t.rel[i].Name, ct, vt)
		}
	}
	for i := range vals {
		v := &vals[i]
		switch b := w.b.Field(i).(type) {
		case *array.BooleanBuilder:
			b.Append(v.i != 0)
		case *array.Int64Builder:
			b.Append(v.i)
		case *array.TimestampBuilder:
			b.Append(arrow.Timestamp(v.i))
		case *array.Float64Builder:
			b.Append(math.Float64frombits(uint64(v.i)))
		case *array.StringBuilder:
			if v.bytes {
				b.BinaryBuilder.Append(v.b)
			} else {
				appendString(b, v.s)
			}
		case *array.FixedSizeBinaryBuilder:
			types.PutUInt128(w.u128[:], v.u)
			b.Append(w.u128[:])
		}
	}
	w.n++
	if w.n >= w.MaxRows {
		return w.flushLocked()
	}
	return nil
}

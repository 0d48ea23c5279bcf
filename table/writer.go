package table

import (
	"fmt"
	"sync"

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
			b.(*array.StringBuilder).Append(x)
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

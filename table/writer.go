package table

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/bitutil"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/types"
)

// Writer buffers rows for one table and appends them as a batch when
// Flush is called or when MaxRows rows are buffered. Sources call Flush at
// least every 100 ms so that queries see fresh data. A Writer is safe for
// concurrent use.
//
// Sources write rows of their declared tables through Row (see Decl),
// which sets each value by its column's handle. AppendRow takes a row by
// position, for rows that already come in relation order (files, tests).
//
// Columns are built in plain Go slices that are reused from batch to batch
// and copied once into exact-size Arrow buffers at flush: Arrow's builders
// zero every buffer they grow and copy it on each regrowth, which was over
// a quarter of the socket tracer's time in a profile.
type Writer struct {
	t       *Table
	mu      sync.Mutex
	cols    []column
	strCols []int // indexes of the STRING columns
	n       int
	MaxRows int

	decl          *Decl // the declaration rows are built by, if any
	row           *Row
	rows, refused uint64
}

// column is one column's values for the next batch.
type column struct {
	typ  types.DataType
	dt   arrow.DataType
	vals []byte  // fixed-width values, little-endian; a BOOLEAN is one byte each
	offs []int32 // STRING: end offset of each value in data
	data []byte  // STRING: the values' bytes
}

// maxBatchData bounds a batch's string bytes (offsets are int32).
const maxBatchData = 1 << 30

// NewWriter returns a writer for t.
func NewWriter(t *Table) *Writer {
	w := &Writer{t: t, MaxRows: 8192, cols: make([]column, len(t.rel))}
	for i, c := range t.rel {
		w.cols[i] = column{typ: c.Type, dt: t.schema.Field(i).Type}
		if c.Type == types.String {
			w.strCols = append(w.strCols, i)
		}
	}
	return w
}

// AppendNamed appends one row given by column name; columns it does not
// name get their zero value (0, "", false). It is for tests and tools
// that write a few columns of a wide table; sources use Decl rows.
func (w *Writer) AppendNamed(vals map[string]any) error {
	row := make([]any, len(w.t.rel))
	for i, c := range w.t.rel {
		v, ok := vals[c.Name]
		if !ok {
			v = zeroValue(c.Type)
		}
		row[i] = v
	}
	for name := range vals {
		if w.t.rel.Index(name) < 0 {
			w.refuse()
			return fmt.Errorf("table %s has no column %q", w.t.name, name)
		}
	}
	return w.AppendRow(row...)
}

func zeroValue(t types.DataType) any {
	switch t {
	case types.Boolean:
		return false
	case types.Float64:
		return 0.0
	case types.String:
		return ""
	case types.UInt128:
		return types.UInt128Value{}
	}
	return int64(0)
}

// AppendRow appends one row. Values are given in relation order as Go
// values: bool, int64 (also int), float64, string, types.UInt128Value, and
// int64 nanoseconds for TIME64NS.
func (w *Writer) AppendRow(vals ...any) error {
	if len(vals) != len(w.t.rel) {
		w.refuse()
		return fmt.Errorf("table %s: row has %d values, want %d", w.t.name, len(vals), len(w.t.rel))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// Check every value before appending any, so that a bad row leaves
	// the columns aligned.
	for i, v := range vals {
		if err := checkValue(w.t.rel[i].Type, v); err != nil {
			w.refused++
			return fmt.Errorf("table %s column %s: %w", w.t.name, w.t.rel[i].Name, err)
		}
	}
	for i, v := range vals {
		c := &w.cols[i]
		switch x := v.(type) {
		case bool:
			c.appendBool(x)
		case int64:
			c.appendInt(x)
		case int:
			c.appendInt(int64(x))
		case float64:
			c.appendInt(int64(math.Float64bits(x)))
		case string:
			c.appendString(x)
		case types.UInt128Value:
			c.appendUInt128(x)
		}
	}
	return w.rowDone()
}

// checkValue reports whether v is a Go value AppendRow takes for type t.
func checkValue(t types.DataType, v any) error {
	ok := false
	want := ""
	switch t {
	case types.Boolean:
		_, ok = v.(bool)
		want = "bool"
	case types.Int64:
		switch v.(type) {
		case int64, int:
			ok = true
		}
		want = "int64"
	case types.Float64:
		_, ok = v.(float64)
		want = "float64"
	case types.String:
		_, ok = v.(string)
		want = "string"
	case types.Time64NS:
		_, ok = v.(int64)
		want = "int64 ns"
	case types.UInt128:
		_, ok = v.(types.UInt128Value)
		want = "UInt128Value"
	default:
		return fmt.Errorf("unsupported type %v", t)
	}
	if !ok {
		return fmt.Errorf("want %s, got %T", want, v)
	}
	return nil
}

func (c *column) appendBool(v bool) {
	b := byte(0)
	if v {
		b = 1
	}
	c.vals = append(c.vals, b)
}

func (c *column) appendInt(v int64) {
	c.vals = binary.LittleEndian.AppendUint64(c.vals, uint64(v))
}

func (c *column) appendString(s string) {
	c.data = append(c.data, s...)
	c.offs = append(c.offs, int32(len(c.data)))
}

func (c *column) appendBytes(b []byte) {
	c.data = append(c.data, b...)
	c.offs = append(c.offs, int32(len(c.data)))
}

func (c *column) appendUInt128(v types.UInt128Value) {
	var b [16]byte
	types.PutUInt128(b[:], v)
	c.vals = append(c.vals, b[:]...)
}

// rowDone counts a row and flushes a full batch.
func (w *Writer) rowDone() error {
	w.n++
	w.rows++
	if w.n >= w.MaxRows {
		return w.flushLocked()
	}
	for _, i := range w.strCols {
		if len(w.cols[i].data) > maxBatchData {
			return w.flushLocked()
		}
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
	n := w.n
	w.n = 0
	arrs := make([]arrow.Array, len(w.cols))
	for i := range w.cols {
		arrs[i] = w.cols[i].array(n)
	}
	rec := array.NewRecord(w.t.schema, arrs, int64(n))
	for _, a := range arrs {
		a.Release()
	}
	err := w.t.Append(rec)
	rec.Release()
	return err
}

// array copies the column's n values into an Arrow array, and keeps its
// slices for the next batch. The copy allocates each buffer at its exact
// size without zeroing it first (append to a nil slice does not clear what
// it copies over), so every byte is written once more, into memory that is
// exactly as large as the batch; the slices the rows are appended to stay
// allocated and warm from batch to batch instead of growing anew.
func (c *column) array(n int) arrow.Array {
	var bufs []*memory.Buffer
	switch c.typ {
	case types.Boolean:
		bits := make([]byte, bitutil.BytesForBits(int64(n)))
		for i, v := range c.vals {
			if v != 0 {
				bitutil.SetBit(bits, i)
			}
		}
		bufs = []*memory.Buffer{nil, memory.NewBufferBytes(bits)}
	case types.String:
		offs := make([]int32, 0, len(c.offs)+1)
		offs = append(append(offs, 0), c.offs...)
		bufs = []*memory.Buffer{nil,
			memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offs)),
			memory.NewBufferBytes(append([]byte(nil), c.data...))}
	default:
		bufs = []*memory.Buffer{nil, memory.NewBufferBytes(append([]byte(nil), c.vals...))}
	}
	c.vals, c.offs, c.data = c.vals[:0], c.offs[:0], c.data[:0]
	d := array.NewData(c.dt, n, bufs, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// appendValues appends a Row's values, complete and typed by their
// handles, in relation order.
func (w *Writer) appendValues(vals []value) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range vals {
		v := &vals[i]
		c := &w.cols[i]
		switch c.typ {
		case types.Boolean:
			c.appendBool(v.i != 0)
		case types.Int64, types.Time64NS, types.Float64:
			c.appendInt(v.i)
		case types.String:
			if v.bytes {
				c.appendBytes(v.b)
			} else {
				c.appendString(v.s)
			}
		case types.UInt128:
			c.appendUInt128(v.u)
		}
	}
	return w.rowDone()
}

// refuse counts a row that was not appended.
func (w *Writer) refuse() {
	w.mu.Lock()
	w.refused++
	w.mu.Unlock()
}

// Counts returns the rows appended since the writer was made and the rows
// it refused (bad values, or a Row that missed or repeated a column).
func (w *Writer) Counts() (rows, refused uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rows, w.refused
}

package exec

import (
	"encoding/binary"
	"fmt"
	mbits "math/bits"
	"sync/atomic"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/types"
)

// Helpers over record batches: selection (take) and growable typed
// columns. Arrays made here live in Go memory (see funcs.NewInt64Array).

// selection returns the indices of the rows where cond holds. all reports
// that every row holds (idx is then nil); cond may be a constant.
func selection(cond funcs.Value, n int, idx []int32) (sel []int32, all bool, err error) {
	if cond.IsConst() {
		b, err := funcs.ConstBool(cond.Const)
		if err != nil {
			return nil, false, err
		}
		if b {
			return nil, true, nil
		}
		return idx[:0], false, nil
	}
	if cond.Array.DataType().ID() != arrow.BOOL {
		return nil, false, fmt.Errorf("condition is %v, not BOOLEAN", cond.Array.DataType())
	}
	bits, off := funcs.Bits(cond.Array)
	sel = idx[:0]
	if off%8 == 0 {
		// A word of 64 rows at a time: most words of a selective
		// filter are zero, and a set bit costs one TrailingZeros.
		bb := bits[off/8:]
		full := n / 64
		for k := 0; k < full; k++ {
			w := binary.LittleEndian.Uint64(bb[8*k:])
			if w == 0 {
				continue
			}
			base := int32(64 * k)
			if w == ^uint64(0) {
				for i := int32(0); i < 64; i++ {
					sel = append(sel, base+i)
				}
				continue
			}
			for w != 0 {
				sel = append(sel, base+int32(mbits.TrailingZeros64(w)))
				w &= w - 1
			}
		}
		for i := full * 64; i < n; i++ {
			if funcs.BitAt(bb, i) {
				sel = append(sel, int32(i))
			}
		}
	} else {
		for i := 0; i < n; i++ {
			if funcs.BitAt(bits, off+i) {
				sel = append(sel, int32(i))
			}
		}
	}
	return sel, len(sel) == n, nil
}

// contiguous reports whether idx is one run lo, lo+1, …
func contiguous(idx []int32) bool {
	return len(idx) > 0 && int(idx[len(idx)-1]-idx[0]) == len(idx)-1
}

// takeRecord returns the rows idx of rec, in that order, with schema.
func takeRecord(schema *arrow.Schema, rec arrow.Record, idx []int32) arrow.Record {
	if contiguous(idx) {
		lo := int64(idx[0])
		return sliceRecord(schema, rec, lo, lo+int64(len(idx)))
	}
	cols := make([]arrow.Array, rec.NumCols())
	for i, c := range rec.Columns() {
		cols[i] = takeArray(c, idx)
	}
	return array.NewRecord(schema, cols, int64(len(idx)))
}

// sliceRecord returns rows [lo, hi) of rec without copying.
func sliceRecord(schema *arrow.Schema, rec arrow.Record, lo, hi int64) arrow.Record {
	if lo == 0 && hi == rec.NumRows() && rec.Schema() == schema {
		return rec
	}
	cols := make([]arrow.Array, rec.NumCols())
	for i, c := range rec.Columns() {
		if lo == 0 && hi == int64(c.Len()) {
			cols[i] = c
		} else {
			cols[i] = array.NewSlice(c, lo, hi)
		}
	}
	return array.NewRecord(schema, cols, hi-lo)
}

// sliceArray returns rows [lo, hi) of a without copying.
func sliceArray(a arrow.Array, lo, hi int64) arrow.Array {
	if lo == 0 && hi == int64(a.Len()) {
		return a
	}
	return array.NewSlice(a, lo, hi)
}

// takeArray returns a[idx[0]], a[idx[1]], …; an index below zero yields
// the zero value of the type (outer joins).
func takeArray(a arrow.Array, idx []int32) arrow.Array {
	n := len(idx)
	switch a.DataType().ID() {
	case arrow.INT64, arrow.TIMESTAMP:
		src := funcs.Int64s(a)
		out := make([]int64, n)
		for i, j := range idx {
			if j >= 0 {
				out[i] = src[j]
			}
		}
		if a.DataType().ID() == arrow.TIMESTAMP {
			return funcs.NewTimeArray(out)
		}
		return funcs.NewInt64Array(out)
	case arrow.FLOAT64:
		src := funcs.Float64s(a)
		out := make([]float64, n)
		for i, j := range idx {
			if j >= 0 {
				out[i] = src[j]
			}
		}
		return funcs.NewFloat64Array(out)
	case arrow.BOOL:
		bits, off := funcs.Bits(a)
		out := funcs.BoolBitmap(n)
		for i, j := range idx {
			if j >= 0 && funcs.BitAt(bits, off+int(j)) {
				out[i>>3] |= 1 << (uint(i) & 7)
			}
		}
		return funcs.NewBoolArray(out, n)
	case arrow.STRING:
		off, data := funcs.StringParts(a)
		size := 0
		for _, j := range idx {
			if j >= 0 {
				size += int(off[j+1] - off[j])
			}
		}
		outOff := make([]int32, n+1)
		outData := make([]byte, size)
		pos := int32(0)
		for i, j := range idx {
			if j >= 0 {
				lo, hi := off[j], off[j+1]
				if hi-lo <= 16 {
					for k := lo; k < hi; k++ {
						outData[pos] = data[k]
						pos++
					}
				} else {
					pos += int32(copy(outData[pos:], data[lo:hi]))
				}
			}
			outOff[i+1] = pos
		}
		return funcs.NewStringArray(outOff, outData)
	case arrow.FIXED_SIZE_BINARY:
		src := funcs.UInt128Bytes(a)
		out := make([]byte, 16*n)
		for i, j := range idx {
			if j >= 0 {
				copy(out[16*i:16*i+16], src[16*int(j):])
			}
		}
		return funcs.NewUInt128Array(out, n)
	}
	panic(fmt.Sprintf("exec: cannot take from %v", a.DataType()))
}

// colBuf is a growable column of one pxq type.
type colBuf struct {
	t     types.DataType
	i64   []int64
	f64   []float64
	bits  []byte
	n     int
	off   []int32
	data  []byte
	u128  []byte
	bytes int64
}

func newColBuf(t types.DataType) *colBuf {
	c := &colBuf{t: t}
	if t == types.String {
		c.off = []int32{0}
	}
	return c
}

// appendRows appends the rows idx of a (all rows when idx is nil).
func (c *colBuf) appendRows(a arrow.Array, idx []int32) {
	if idx == nil {
		idx = iota32(a.Len())
	}
	switch c.t {
	case types.Int64, types.Time64NS:
		src := funcs.Int64s(a)
		for _, j := range idx {
			c.i64 = append(c.i64, src[j])
		}
	case types.Float64:
		src := funcs.Float64s(a)
		for _, j := range idx {
			c.f64 = append(c.f64, src[j])
		}
	case types.Boolean:
		bits, off := funcs.Bits(a)
		for _, j := range idx {
			c.appendBool(funcs.BitAt(bits, off+int(j)))
		}
	case types.String:
		off, data := funcs.StringParts(a)
		for _, j := range idx {
			c.data = append(c.data, data[off[j]:off[j+1]]...)
			c.off = append(c.off, int32(len(c.data)))
		}
	case types.UInt128:
		src := funcs.UInt128Bytes(a)
		for _, j := range idx {
			c.u128 = append(c.u128, src[16*int(j):16*int(j)+16]...)
		}
	}
}

// appendRow appends row i of a.
func (c *colBuf) appendRow(a arrow.Array, i int) {
	switch c.t {
	case types.Int64, types.Time64NS:
		c.i64 = append(c.i64, funcs.Int64s(a)[i])
	case types.Float64:
		c.f64 = append(c.f64, funcs.Float64s(a)[i])
	case types.Boolean:
		bits, off := funcs.Bits(a)
		c.appendBool(funcs.BitAt(bits, off+i))
	case types.String:
		off, data := funcs.StringParts(a)
		c.data = append(c.data, data[off[i]:off[i+1]]...)
		c.off = append(c.off, int32(len(c.data)))
	case types.UInt128:
		src := funcs.UInt128Bytes(a)
		c.u128 = append(c.u128, src[16*i:16*i+16]...)
	}
}

func (c *colBuf) appendBool(v bool) {
	if c.n%8 == 0 {
		c.bits = append(c.bits, 0)
	}
	if v {
		c.bits[c.n>>3] |= 1 << (uint(c.n) & 7)
	}
	c.n++
}

// appendValue appends a Go value (as funcs.ValueAt returns).
func (c *colBuf) appendValue(v any) error {
	switch c.t {
	case types.Int64, types.Time64NS:
		x, err := funcs.ConstInt(v)
		if err != nil {
			return err
		}
		c.i64 = append(c.i64, x)
	case types.Float64:
		x, err := funcs.ConstFloat(v)
		if err != nil {
			return err
		}
		c.f64 = append(c.f64, x)
	case types.Boolean:
		x, err := funcs.ConstBool(v)
		if err != nil {
			return err
		}
		c.appendBool(x)
	case types.String:
		x, err := funcs.ConstString(v)
		if err != nil {
			return err
		}
		c.data = append(c.data, x...)
		c.off = append(c.off, int32(len(c.data)))
	case types.UInt128:
		x, err := funcs.ConstUInt128(v)
		if err != nil {
			return err
		}
		c.u128 = append(c.u128, x.Bytes()...)
	default:
		return fmt.Errorf("unsupported type %v", c.t)
	}
	return nil
}

// size returns the bytes the buffer holds.
func (c *colBuf) size() int64 {
	return int64(cap(c.i64)*8 + cap(c.f64)*8 + cap(c.bits) + cap(c.off)*4 + cap(c.data) + cap(c.u128))
}

// len returns the number of values.
func (c *colBuf) len() int {
	switch c.t {
	case types.Int64, types.Time64NS:
		return len(c.i64)
	case types.Float64:
		return len(c.f64)
	case types.Boolean:
		return c.n
	case types.String:
		return len(c.off) - 1
	case types.UInt128:
		return len(c.u128) / 16
	}
	return 0
}

// array returns the values as an array. The buffer must not be appended
// to afterwards.
func (c *colBuf) array() arrow.Array {
	switch c.t {
	case types.Int64:
		return funcs.NewInt64Array(c.i64)
	case types.Time64NS:
		return funcs.NewTimeArray(c.i64)
	case types.Float64:
		return funcs.NewFloat64Array(c.f64)
	case types.Boolean:
		return funcs.NewBoolArray(c.bits, c.n)
	case types.String:
		return funcs.NewStringArray(c.off, c.data)
	case types.UInt128:
		return funcs.NewUInt128Array(c.u128, len(c.u128)/16)
	}
	panic("exec: colBuf of unknown type")
}

var iotaBuf atomic.Pointer[[]int32]

// iota32 returns 0, 1, …, n-1 (shared between queries; do not modify).
func iota32(n int) []int32 {
	if p := iotaBuf.Load(); p != nil && len(*p) >= n {
		return (*p)[:n]
	}
	m := n
	if m < 1<<16 {
		m = 1 << 16
	}
	b := make([]int32, m)
	for i := range b {
		b[i] = int32(i)
	}
	iotaBuf.Store(&b)
	return b[:n]
}

// newRecord makes a record of columns; each column's type must be the
// schema's.
func newRecord(schema *arrow.Schema, cols []arrow.Array, n int64) arrow.Record {
	return array.NewRecord(schema, cols, n)
}

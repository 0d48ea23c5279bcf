package funcs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"unsafe"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/types"
)

// This file holds the bridge between Arrow arrays and plain Go slices that
// every kernel and operator uses. Arrays made here are backed by Go memory
// owned by the garbage collector (like the table store's), so nothing made
// here needs Release. pxq has no nulls: validity bitmaps are ignored on
// input and never written.

// Int64s returns the values of an INT64 or TIME64NS array without copying.
func Int64s(a arrow.Array) []int64 {
	d := a.Data()
	bufs := d.Buffers()
	if len(bufs) < 2 || bufs[1] == nil {
		return nil
	}
	vals := arrow.Int64Traits.CastFromBytes(bufs[1].Bytes())
	return vals[d.Offset() : d.Offset()+d.Len()]
}

// Float64s returns the values of a FLOAT64 array without copying.
func Float64s(a arrow.Array) []float64 {
	d := a.Data()
	bufs := d.Buffers()
	if len(bufs) < 2 || bufs[1] == nil {
		return nil
	}
	vals := arrow.Float64Traits.CastFromBytes(bufs[1].Bytes())
	return vals[d.Offset() : d.Offset()+d.Len()]
}

// Bits returns the value bitmap of a BOOLEAN array and the bit offset of
// its first row.
func Bits(a arrow.Array) ([]byte, int) {
	d := a.Data()
	b := d.Buffers()[1]
	if b == nil {
		return nil, 0
	}
	return b.Bytes(), d.Offset()
}

// BitAt reports whether bit i of a bitmap is set.
func BitAt(bits []byte, i int) bool { return bits[i>>3]&(1<<(uint(i)&7)) != 0 }

// UInt128Bytes returns the 16-byte values of a UINT128 array, row i at
// [16i, 16i+16).
func UInt128Bytes(a arrow.Array) []byte {
	d := a.Data()
	b := d.Buffers()[1]
	if b == nil {
		return nil
	}
	return b.Bytes()[d.Offset()*16 : (d.Offset()+d.Len())*16]
}

// StringParts returns the offsets (len n+1, not rebased to zero) and the
// value bytes of a STRING array: row i is data[off[i]:off[i+1]].
func StringParts(a arrow.Array) (off []int32, data []byte) {
	s := a.(*array.String)
	off = s.ValueOffsets()
	if b := a.Data().Buffers()[2]; b != nil {
		data = b.Bytes()
	}
	return off, data
}

func newFixed(t arrow.DataType, n int, b []byte) arrow.Array {
	return array.MakeFromData(array.NewData(t, n, []*memory.Buffer{nil, memory.NewBufferBytes(b)}, nil, 0, 0))
}

func int64Bytes(v []int64) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*8)
}

func float64Bytes(v []float64) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*8)
}

// NewInt64Array wraps v (not copied) as an INT64 array.
func NewInt64Array(v []int64) arrow.Array {
	return newFixed(arrow.PrimitiveTypes.Int64, len(v), int64Bytes(v))
}

// NewTimeArray wraps v (ns since the epoch, not copied) as a TIME64NS array.
func NewTimeArray(v []int64) arrow.Array {
	return newFixed(types.TimeType, len(v), int64Bytes(v))
}

// NewFloat64Array wraps v (not copied) as a FLOAT64 array.
func NewFloat64Array(v []float64) arrow.Array {
	return newFixed(arrow.PrimitiveTypes.Float64, len(v), float64Bytes(v))
}

// NewBoolArray wraps a bitmap of n bits (not copied) as a BOOLEAN array.
func NewBoolArray(bits []byte, n int) arrow.Array {
	return newFixed(arrow.FixedWidthTypes.Boolean, n, bits)
}

// NewUInt128Array wraps 16n bytes (not copied) as a UINT128 array.
func NewUInt128Array(b []byte, n int) arrow.Array {
	return newFixed(types.UInt128Type, n, b)
}

// NewStringArray builds a STRING array from offsets (len n+1, starting at
// 0) and value bytes, neither copied.
func NewStringArray(off []int32, data []byte) arrow.Array {
	n := len(off) - 1
	ob := unsafe.Slice((*byte)(unsafe.Pointer(&off[0])), len(off)*4)
	return array.MakeFromData(array.NewData(arrow.BinaryTypes.String, n,
		[]*memory.Buffer{nil, memory.NewBufferBytes(ob), memory.NewBufferBytes(data)}, nil, 0, 0))
}

// BoolBitmap returns a zeroed bitmap for n bits.
func BoolBitmap(n int) []byte { return make([]byte, (n+7)/8) }

// SetBit sets bit i of a bitmap when v holds.
func SetBit(bits []byte, i int, v bool) {
	if v {
		bits[i>>3] |= 1 << (uint(i) & 7)
	}
}

// StringsBuilder accumulates string values into one STRING array without
// a per-value allocation.
type StringsBuilder struct {
	off  []int32
	data []byte
}

// NewStringsBuilder returns a builder with room for n values of about
// avg bytes each.
func NewStringsBuilder(n, avg int) *StringsBuilder {
	b := &StringsBuilder{off: make([]int32, 1, n+1), data: make([]byte, 0, n*avg)}
	return b
}

// Append adds one value.
func (b *StringsBuilder) Append(s string) {
	b.data = append(b.data, s...)
	b.off = append(b.off, int32(len(b.data)))
}

// AppendBytes adds one value.
func (b *StringsBuilder) AppendBytes(s []byte) {
	b.data = append(b.data, s...)
	b.off = append(b.off, int32(len(b.data)))
}

// Buf returns the value bytes so far, to which a caller may append the
// bytes of the next value before calling Close.
func (b *StringsBuilder) Buf() []byte { return b.data }

// Close ends a value whose bytes were appended to Buf: data is the result
// of those appends.
func (b *StringsBuilder) Close(data []byte) {
	b.data = data
	b.off = append(b.off, int32(len(b.data)))
}

// Len returns the number of values appended.
func (b *StringsBuilder) Len() int { return len(b.off) - 1 }

// Finish returns the array of the values appended.
func (b *StringsBuilder) Finish() arrow.Array { return NewStringArray(b.off, b.data) }

// ZeroValue returns the zero value of a data type as a Value constant:
// what outer joins put into unmatched columns.
func ZeroValue(t types.DataType) any {
	switch t {
	case types.Boolean:
		return false
	case types.Int64, types.Time64NS:
		return int64(0)
	case types.Float64:
		return float64(0)
	case types.String:
		return ""
	case types.UInt128:
		return types.UInt128Value{}
	}
	return nil
}

// MakeArray returns v as an array of n rows of type t, broadcasting a
// constant.
func MakeArray(v Value, t types.DataType, n int) (arrow.Array, error) {
	if !v.IsConst() {
		if v.Array.Len() != n {
			return nil, fmt.Errorf("array of %d rows where %d were expected", v.Array.Len(), n)
		}
		return v.Array, nil
	}
	switch t {
	case types.Boolean:
		b, err := ConstBool(v.Const)
		if err != nil {
			return nil, err
		}
		bits := BoolBitmap(n)
		if b {
			for i := range bits {
				bits[i] = 0xff
			}
		}
		return NewBoolArray(bits, n), nil
	case types.Int64, types.Time64NS:
		x, err := ConstInt(v.Const)
		if err != nil {
			return nil, err
		}
		vals := make([]int64, n)
		if x != 0 {
			for i := range vals {
				vals[i] = x
			}
		}
		if t == types.Time64NS {
			return NewTimeArray(vals), nil
		}
		return NewInt64Array(vals), nil
	case types.Float64:
		x, err := ConstFloat(v.Const)
		if err != nil {
			return nil, err
		}
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = x
		}
		return NewFloat64Array(vals), nil
	case types.String:
		s, err := ConstString(v.Const)
		if err != nil {
			return nil, err
		}
		off := make([]int32, n+1)
		data := make([]byte, 0, len(s)*n)
		for i := 0; i < n; i++ {
			data = append(data, s...)
			off[i+1] = int32(len(data))
		}
		return NewStringArray(off, data), nil
	case types.UInt128:
		u, err := ConstUInt128(v.Const)
		if err != nil {
			return nil, err
		}
		b := make([]byte, 16*n)
		if n > 0 {
			types.PutUInt128(b, u)
			for i := 16; i < len(b); i *= 2 {
				copy(b[i:], b[:i])
			}
		}
		return NewUInt128Array(b, n), nil
	}
	return nil, fmt.Errorf("cannot make an array of type %v", t)
}

// ConstInt converts a constant to int64.
func ConstInt(c any) (int64, error) {
	switch x := c.(type) {
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case float64:
		return int64(x), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("constant %v (%T) is not an integer", c, c)
}

// ConstFloat converts a constant to float64.
func ConstFloat(c any) (float64, error) {
	switch x := c.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	case int:
		return float64(x), nil
	case float32:
		return float64(x), nil
	}
	return math.NaN(), fmt.Errorf("constant %v (%T) is not a number", c, c)
}

// ConstBool converts a constant to bool.
func ConstBool(c any) (bool, error) {
	switch x := c.(type) {
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	case int:
		return x != 0, nil
	}
	return false, fmt.Errorf("constant %v (%T) is not a boolean", c, c)
}

// ConstString converts a constant to string.
func ConstString(c any) (string, error) {
	switch x := c.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	}
	return "", fmt.Errorf("constant %v (%T) is not a string", c, c)
}

// ConstUInt128 converts a constant to a UINT128 value.
func ConstUInt128(c any) (types.UInt128Value, error) {
	switch x := c.(type) {
	case types.UInt128Value:
		return x, nil
	case *types.UInt128Value:
		return *x, nil
	}
	return types.UInt128Value{}, fmt.Errorf("constant %v (%T) is not a uint128", c, c)
}

// ValueAt returns row i of v as a Go value (bool, int64, float64, string,
// types.UInt128Value): the row-at-a-time view that tests and table
// functions use.
func ValueAt(v Value, i int) any {
	if v.IsConst() {
		return v.Const
	}
	return ArrayValue(v.Array, i)
}

// ArrayValue returns row i of an array of one of pxq's types as a Go value.
func ArrayValue(a arrow.Array, i int) any {
	switch x := a.(type) {
	case *array.Boolean:
		return x.Value(i)
	case *array.Int64:
		return x.Value(i)
	case *array.Timestamp:
		return int64(x.Value(i))
	case *array.Float64:
		return x.Value(i)
	case *array.String:
		return x.Value(i)
	case *array.FixedSizeBinary:
		return types.GetUInt128(x.Value(i))
	}
	panic(fmt.Sprintf("funcs: unsupported array type %v", a.DataType()))
}

// bytesString views b as a string without copying; the string must not
// outlive b's use.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// marshalJSON encodes v as JSON without HTML escaping (<, >, & stay as
// they are), as values in query results should read.
func marshalJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte("null")
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

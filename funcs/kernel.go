package funcs

import (
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/types"
)

// The generic helper layer. Most functions are written as a Go function
// of one row (func(A, B) R) and lifted into a Kernel by fn1/fn2/fn3,
// which read each argument through a typed getter, evaluate once when
// every argument is constant, and otherwise fill a result slice that
// becomes one Arrow array. Hot functions (arithmetic, comparisons,
// contains) have hand-written loops over the Arrow buffers instead; see
// numBinary and cmpKernel.

// getter reads row i of an argument.
type getter[T any] func(i int) T

// argReader makes a getter for an argument of one Go type.
type argReader[T any] func(v Value) (getter[T], error)

func getInt(v Value) (getter[int64], error) {
	if v.IsConst() {
		c, err := ConstInt(v.Const)
		return func(int) int64 { return c }, err
	}
	switch v.Array.DataType().ID() {
	case arrow.INT64, arrow.TIMESTAMP:
		vals := Int64s(v.Array)
		return func(i int) int64 { return vals[i] }, nil
	case arrow.FLOAT64:
		vals := Float64s(v.Array)
		return func(i int) int64 { return int64(vals[i]) }, nil
	case arrow.BOOL:
		bits, off := Bits(v.Array)
		return func(i int) int64 {
			if BitAt(bits, off+i) {
				return 1
			}
			return 0
		}, nil
	}
	return nil, fmt.Errorf("%v is not an integer column", v.Array.DataType())
}

func getFloat(v Value) (getter[float64], error) {
	if v.IsConst() {
		c, err := ConstFloat(v.Const)
		return func(int) float64 { return c }, err
	}
	switch v.Array.DataType().ID() {
	case arrow.FLOAT64:
		vals := Float64s(v.Array)
		return func(i int) float64 { return vals[i] }, nil
	case arrow.INT64, arrow.TIMESTAMP:
		vals := Int64s(v.Array)
		return func(i int) float64 { return float64(vals[i]) }, nil
	}
	return nil, fmt.Errorf("%v is not a numeric column", v.Array.DataType())
}

func getBool(v Value) (getter[bool], error) {
	if v.IsConst() {
		c, err := ConstBool(v.Const)
		return func(int) bool { return c }, err
	}
	switch v.Array.DataType().ID() {
	case arrow.BOOL:
		bits, off := Bits(v.Array)
		return func(i int) bool { return BitAt(bits, off+i) }, nil
	case arrow.INT64:
		vals := Int64s(v.Array)
		return func(i int) bool { return vals[i] != 0 }, nil
	}
	return nil, fmt.Errorf("%v is not a boolean column", v.Array.DataType())
}

func getString(v Value) (getter[string], error) {
	if v.IsConst() {
		c, err := ConstString(v.Const)
		return func(int) string { return c }, err
	}
	s, ok := v.Array.(*array.String)
	if !ok {
		return nil, fmt.Errorf("%v is not a string column", v.Array.DataType())
	}
	return s.Value, nil
}

func getUInt128(v Value) (getter[types.UInt128Value], error) {
	if v.IsConst() {
		c, err := ConstUInt128(v.Const)
		return func(int) types.UInt128Value { return c }, err
	}
	if v.Array.DataType().ID() != arrow.FIXED_SIZE_BINARY {
		return nil, fmt.Errorf("%v is not a uint128 column", v.Array.DataType())
	}
	b := UInt128Bytes(v.Array)
	return func(i int) types.UInt128Value { return types.GetUInt128(b[16*i:]) }, nil
}

// readerFor returns the argument reader of a pxq type.
func readerFor(t types.DataType) any {
	switch t {
	case types.Boolean:
		return argReader[bool](getBool)
	case types.Int64, types.Time64NS:
		return argReader[int64](getInt)
	case types.Float64:
		return argReader[float64](getFloat)
	case types.String:
		return argReader[string](getString)
	case types.UInt128:
		return argReader[types.UInt128Value](getUInt128)
	}
	panic("funcs: no reader for " + t.String())
}

func allConst(args []Value) bool {
	for _, a := range args {
		if !a.IsConst() {
			return false
		}
	}
	return true
}

// toArray turns a result slice into an array of type rt.
func toArray[R any](rt types.DataType, out []R) arrow.Array {
	switch o := any(out).(type) {
	case []int64:
		if rt == types.Time64NS {
			return NewTimeArray(o)
		}
		return NewInt64Array(o)
	case []float64:
		return NewFloat64Array(o)
	case []bool:
		bits := BoolBitmap(len(o))
		for i, v := range o {
			SetBit(bits, i, v)
		}
		return NewBoolArray(bits, len(o))
	case []string:
		size := 0
		for _, s := range o {
			size += len(s)
		}
		b := NewStringsBuilder(len(o), 0)
		b.data = make([]byte, 0, size)
		for _, s := range o {
			b.Append(s)
		}
		return b.Finish()
	case []types.UInt128Value:
		b := make([]byte, 16*len(o))
		for i, u := range o {
			types.PutUInt128(b[16*i:], u)
		}
		return NewUInt128Array(b, len(o))
	}
	panic(fmt.Sprintf("funcs: no array for %T", out))
}

// fn0 lifts a function of the context into a kernel yielding a constant.
func fn0[R any](f func(ctx *Context) R) Kernel {
	return func(ctx *Context, _ []Value, _ int) (Value, error) {
		return Value{Const: any(f(ctx))}, nil
	}
}

// fn1 lifts a row function of one argument into a kernel.
func fn1[A, R any](ra argReader[A], rt types.DataType, f func(A) R) Kernel {
	return func(ctx *Context, args []Value, n int) (Value, error) {
		ga, err := ra(args[0])
		if err != nil {
			return Value{}, err
		}
		if args[0].IsConst() {
			return Value{Const: any(f(ga(0)))}, nil
		}
		out := make([]R, n)
		for i := range out {
			out[i] = f(ga(i))
		}
		return Value{Array: toArray(rt, out)}, nil
	}
}

// fn2 lifts a row function of two arguments into a kernel.
func fn2[A, B, R any](ra argReader[A], rb argReader[B], rt types.DataType, f func(A, B) R) Kernel {
	return func(ctx *Context, args []Value, n int) (Value, error) {
		ga, err := ra(args[0])
		if err != nil {
			return Value{}, err
		}
		gb, err := rb(args[1])
		if err != nil {
			return Value{}, err
		}
		if allConst(args) {
			return Value{Const: any(f(ga(0), gb(0)))}, nil
		}
		out := make([]R, n)
		for i := range out {
			out[i] = f(ga(i), gb(i))
		}
		return Value{Array: toArray(rt, out)}, nil
	}
}

// fn3 lifts a row function of three arguments into a kernel.
func fn3[A, B, C, R any](ra argReader[A], rb argReader[B], rc argReader[C], rt types.DataType, f func(A, B, C) R) Kernel {
	return func(ctx *Context, args []Value, n int) (Value, error) {
		ga, err := ra(args[0])
		if err != nil {
			return Value{}, err
		}
		gb, err := rb(args[1])
		if err != nil {
			return Value{}, err
		}
		gc, err := rc(args[2])
		if err != nil {
			return Value{}, err
		}
		if allConst(args) {
			return Value{Const: any(f(ga(0), gb(0), gc(0)))}, nil
		}
		out := make([]R, n)
		for i := range out {
			out[i] = f(ga(i), gb(i), gc(i))
		}
		return Value{Array: toArray(rt, out)}, nil
	}
}

// num is the set of Go types behind pxq's numeric columns.
type num interface{ ~int64 | ~float64 }

// numSlice reads a numeric argument as a slice of T (converting INT64 to
// FLOAT64 when an integer column was widened), or as a constant.
func numSlice[T num](v Value) (vals []T, c T, isConst bool, err error) {
	var zero T
	_, wantFloat := any(zero).(float64)
	if v.IsConst() {
		if wantFloat {
			f, err := ConstFloat(v.Const)
			return nil, T(f), true, err
		}
		x, err := ConstInt(v.Const)
		return nil, T(x), true, err
	}
	switch v.Array.DataType().ID() {
	case arrow.INT64, arrow.TIMESTAMP:
		iv := Int64s(v.Array)
		if !wantFloat {
			return any(iv).([]T), zero, false, nil
		}
		out := make([]T, len(iv))
		for i, x := range iv {
			out[i] = T(x)
		}
		return out, zero, false, nil
	case arrow.FLOAT64:
		fv := Float64s(v.Array)
		if wantFloat {
			return any(fv).([]T), zero, false, nil
		}
		out := make([]T, len(fv))
		for i, x := range fv {
			out[i] = T(x)
		}
		return out, zero, false, nil
	}
	return nil, zero, false, fmt.Errorf("%v is not a numeric column", v.Array.DataType())
}

func numArray[R num](rt types.DataType, out []R) arrow.Array {
	switch o := any(out).(type) {
	case []int64:
		if rt == types.Time64NS {
			return NewTimeArray(o)
		}
		return NewInt64Array(o)
	case []float64:
		return NewFloat64Array(o)
	}
	panic("unreachable")
}

// numBinary lifts a numeric function of two numeric arguments into a
// kernel with one tight loop per constant/array combination.
func numBinary[A, B, R num](rt types.DataType, f func(A, B) R) Kernel {
	return func(ctx *Context, args []Value, n int) (Value, error) {
		a, ac, aConst, err := numSlice[A](args[0])
		if err != nil {
			return Value{}, err
		}
		b, bc, bConst, err := numSlice[B](args[1])
		if err != nil {
			return Value{}, err
		}
		switch {
		case aConst && bConst:
			return Value{Const: normNum(f(ac, bc))}, nil
		case aConst:
			out := make([]R, len(b))
			for i, y := range b {
				out[i] = f(ac, y)
			}
			return Value{Array: numArray(rt, out)}, nil
		case bConst:
			out := make([]R, len(a))
			for i, x := range a {
				out[i] = f(x, bc)
			}
			return Value{Array: numArray(rt, out)}, nil
		}
		out := make([]R, len(a))
		b = b[:len(a)]
		for i, x := range a {
			out[i] = f(x, b[i])
		}
		return Value{Array: numArray(rt, out)}, nil
	}
}

// numUnary lifts a numeric function of one numeric argument.
func numUnary[A, R num](rt types.DataType, f func(A) R) Kernel {
	return func(ctx *Context, args []Value, n int) (Value, error) {
		a, ac, aConst, err := numSlice[A](args[0])
		if err != nil {
			return Value{}, err
		}
		if aConst {
			return Value{Const: normNum(f(ac))}, nil
		}
		out := make([]R, len(a))
		for i, x := range a {
			out[i] = f(x)
		}
		return Value{Array: numArray(rt, out)}, nil
	}
}

// normNum returns a numeric constant as a plain int64 or float64.
func normNum[R num](r R) any {
	switch x := any(r).(type) {
	case int64:
		return x
	case float64:
		return x
	}
	return r
}

// cmpKernel lifts a comparison over values read by ra into a kernel that
// writes its bitmap directly.
func cmpKernel[T any](ra argReader[T], f func(a, b T) bool) Kernel {
	return func(ctx *Context, args []Value, n int) (Value, error) {
		ga, err := ra(args[0])
		if err != nil {
			return Value{}, err
		}
		gb, err := ra(args[1])
		if err != nil {
			return Value{}, err
		}
		if allConst(args) {
			return Value{Const: f(ga(0), gb(0))}, nil
		}
		bits := BoolBitmap(n)
		for i := 0; i < n; i++ {
			if f(ga(i), gb(i)) {
				bits[i>>3] |= 1 << (uint(i) & 7)
			}
		}
		return Value{Array: NewBoolArray(bits, n)}, nil
	}
}

// numCmpKernel is cmpKernel for numbers, looping over the value slices.
func numCmpKernel[T num](f func(a, b T) bool) Kernel {
	return func(ctx *Context, args []Value, n int) (Value, error) {
		a, ac, aConst, err := numSlice[T](args[0])
		if err != nil {
			return Value{}, err
		}
		b, bc, bConst, err := numSlice[T](args[1])
		if err != nil {
			return Value{}, err
		}
		if aConst && bConst {
			return Value{Const: f(ac, bc)}, nil
		}
		bits := BoolBitmap(n)
		switch {
		case aConst:
			for i, y := range b {
				if f(ac, y) {
					bits[i>>3] |= 1 << (uint(i) & 7)
				}
			}
		case bConst:
			for i, x := range a {
				if f(x, bc) {
					bits[i>>3] |= 1 << (uint(i) & 7)
				}
			}
		default:
			b = b[:len(a)]
			for i, x := range a {
				if f(x, b[i]) {
					bits[i>>3] |= 1 << (uint(i) & 7)
				}
			}
		}
		return Value{Array: NewBoolArray(bits, n)}, nil
	}
}

// Common argument type lists.
var (
	tB   = types.Boolean
	tI   = types.Int64
	tF   = types.Float64
	tS   = types.String
	tT   = types.Time64NS
	tU   = types.UInt128
	rInt = argReader[int64](getInt)
	rFlt = argReader[float64](getFloat)
	rStr = argReader[string](getString)
	rBol = argReader[bool](getBool)
	rU   = argReader[types.UInt128Value](getUInt128)
)

func sig(ret types.DataType, k Kernel, args ...types.DataType) Overload {
	return Overload{Args: args, Ret: ret, Kernel: k}
}

// register adds an immutable function: its value depends on its
// arguments only.
func register(name, doc string, overloads ...Overload) {
	RegisterScalar(&ScalarFunc{Name: name, Doc: doc, Volatility: Immutable, Overloads: overloads})
}

// registerPlaceBound adds a function whose value depends on where it runs
// (the executing agent, its host, its resolver).
func registerPlaceBound(name, doc string, overloads ...Overload) {
	RegisterScalar(&ScalarFunc{Name: name, Doc: doc, Volatility: PlaceBound, Overloads: overloads})
}

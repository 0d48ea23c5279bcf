package funcs

import (
	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/types"
)

// arithKernel is the kernel of + - * / over two numbers of one Go type
// (INT64 arguments of a FLOAT64 overload are converted first). The
// operator is switched on once per batch, so each loop body is a plain
// machine instruction rather than a call.
func arithKernel[T num](rt types.DataType, op byte) Kernel {
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
			return Value{Const: normNum(arith1(op, ac, bc))}, nil
		}
		// A converted argument is a fresh slice of this kernel's own: the
		// result overwrites it instead of taking another.
		var out []T
		switch {
		case !aConst && converted[T](args[0]):
			out = a[:n]
		case !bConst && converted[T](args[1]):
			out = b[:n]
		default:
			out = make([]T, n)
		}
		switch {
		case aConst:
			arithCA(op, ac, b[:n], out)
		case bConst:
			arithAC(op, a[:n], bc, out)
		default:
			arithAA(op, a[:n], b[:n], out)
		}
		return Value{Array: numArray(rt, out)}, nil
	}
}

// converted reports whether numSlice[T] of the array v made a new slice
// (INT64 or TIME64NS read as FLOAT64, and the reverse).
func converted[T num](v Value) bool {
	var zero T
	_, wantFloat := any(zero).(float64)
	return (v.Array.DataType().ID() == arrow.FLOAT64) != wantFloat
}

func arith1[T num](op byte, a, b T) T {
	switch op {
	case '+':
		return a + b
	case '-':
		return a - b
	case '*':
		return a * b
	}
	return a / b
}

func arithAA[T num](op byte, a, b, out []T) {
	b, out = b[:len(a)], out[:len(a)]
	switch op {
	case '+':
		for i := range a {
			out[i] = a[i] + b[i]
		}
	case '-':
		for i := range a {
			out[i] = a[i] - b[i]
		}
	case '*':
		for i := range a {
			out[i] = a[i] * b[i]
		}
	case '/':
		for i := range a {
			out[i] = a[i] / b[i]
		}
	}
}

func arithAC[T num](op byte, a []T, c T, out []T) {
	out = out[:len(a)]
	switch op {
	case '+':
		for i, x := range a {
			out[i] = x + c
		}
	case '-':
		for i, x := range a {
			out[i] = x - c
		}
	case '*':
		for i, x := range a {
			out[i] = x * c
		}
	case '/':
		for i, x := range a {
			out[i] = x / c
		}
	}
}

func arithCA[T num](op byte, c T, b []T, out []T) {
	out = out[:len(b)]
	switch op {
	case '+':
		for i, y := range b {
			out[i] = c + y
		}
	case '-':
		for i, y := range b {
			out[i] = c - y
		}
	case '*':
		for i, y := range b {
			out[i] = c * y
		}
	case '/':
		for i, y := range b {
			out[i] = c / y
		}
	}
}

package funcs

import (
	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/types"
)

// select(cond, a, b) is a where cond holds, else b, row by row; cond may
// be a constant (then the result is a or b as is).

func init() {
	var overloads []Overload
	for _, t := range []types.DataType{tB, tI, tF, tS, tT, tU} {
		overloads = append(overloads, sig(t, selectKernel(t), tB, t, t))
	}
	register("select", "a where cond holds, else b", overloads...)
}

func selectKernel(t types.DataType) Kernel {
	return func(ctx *Context, args []Value, n int) (Value, error) {
		cond := args[0]
		if cond.IsConst() {
			c, err := ConstBool(cond.Const)
			if err != nil {
				return Value{}, err
			}
			if c {
				return coerce(args[1], t)
			}
			return coerce(args[2], t)
		}
		if args[1].IsConst() && args[2].IsConst() && args[1].Const == args[2].Const {
			return coerce(args[1], t)
		}
		bits, off := Bits(cond.Array)
		at := func(i int) bool { return BitAt(bits, off+i) }
		switch t {
		case types.Int64, types.Time64NS, types.Float64:
			if t == types.Float64 {
				return selectNum[float64](t, at, args, n)
			}
			return selectNum[int64](t, at, args, n)
		case types.String:
			ga, err := getString(args[1])
			if err != nil {
				return Value{}, err
			}
			gb, err := getString(args[2])
			if err != nil {
				return Value{}, err
			}
			sb := NewStringsBuilder(n, 16)
			for i := 0; i < n; i++ {
				if at(i) {
					sb.Append(ga(i))
				} else {
					sb.Append(gb(i))
				}
			}
			return Value{Array: sb.Finish()}, nil
		case types.Boolean:
			ga, err := getBool(args[1])
			if err != nil {
				return Value{}, err
			}
			gb, err := getBool(args[2])
			if err != nil {
				return Value{}, err
			}
			out := BoolBitmap(n)
			for i := 0; i < n; i++ {
				if at(i) {
					SetBit(out, i, ga(i))
				} else {
					SetBit(out, i, gb(i))
				}
			}
			return Value{Array: NewBoolArray(out, n)}, nil
		case types.UInt128:
			ga, err := getUInt128(args[1])
			if err != nil {
				return Value{}, err
			}
			gb, err := getUInt128(args[2])
			if err != nil {
				return Value{}, err
			}
			out := make([]byte, 16*n)
			for i := 0; i < n; i++ {
				if at(i) {
					types.PutUInt128(out[16*i:], ga(i))
				} else {
					types.PutUInt128(out[16*i:], gb(i))
				}
			}
			return Value{Array: NewUInt128Array(out, n)}, nil
		}
		return Value{}, errType(t)
	}
}

func selectNum[T num](t types.DataType, at func(int) bool, args []Value, n int) (Value, error) {
	a, ac, aConst, err := numSlice[T](args[1])
	if err != nil {
		return Value{}, err
	}
	b, bc, bConst, err := numSlice[T](args[2])
	if err != nil {
		return Value{}, err
	}
	out := make([]T, n)
	for i := range out {
		if at(i) {
			if aConst {
				out[i] = ac
			} else {
				out[i] = a[i]
			}
		} else if bConst {
			out[i] = bc
		} else {
			out[i] = b[i]
		}
	}
	return Value{Array: numArray(t, out)}, nil
}

func errType(t types.DataType) error { return &typeError{t} }

type typeError struct{ t types.DataType }

func (e *typeError) Error() string { return "unsupported type " + e.t.String() }

// coerce returns v as type t where the registry let an INT64 argument
// stand for a FLOAT64 one.
func coerce(v Value, t types.DataType) (Value, error) {
	if t != types.Float64 {
		return v, nil
	}
	if v.IsConst() {
		f, err := ConstFloat(v.Const)
		return Value{Const: f}, err
	}
	if v.Array.DataType().ID() == arrow.FLOAT64 {
		return v, nil
	}
	f, _, _, err := numSlice[float64](v)
	if err != nil {
		return Value{}, err
	}
	return Value{Array: NewFloat64Array(f)}, nil
}

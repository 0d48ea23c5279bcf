package funcs

import (
	"math"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/types"
)

// Comparisons (== != < <= > >=, approxEqual) and the boolean operators
// (and, or, not). Strings compare bytewise; booleans order false < true.

func init() {
	type cmpOps struct {
		name string
		op   cmpOp
		i    func(a, b int64) bool
		f    func(a, b float64) bool
		s    func(a, b string) bool
	}
	ops := []cmpOps{
		{"equal", cmpEQ, func(a, b int64) bool { return a == b }, func(a, b float64) bool { return a == b }, func(a, b string) bool { return a == b }},
		{"notEqual", cmpNE, func(a, b int64) bool { return a != b }, func(a, b float64) bool { return a != b }, func(a, b string) bool { return a != b }},
		{"lessThan", cmpLT, func(a, b int64) bool { return a < b }, func(a, b float64) bool { return a < b }, func(a, b string) bool { return a < b }},
		{"lessThanEqual", cmpLE, func(a, b int64) bool { return a <= b }, func(a, b float64) bool { return a <= b }, func(a, b string) bool { return a <= b }},
		{"greaterThan", cmpGT, func(a, b int64) bool { return a > b }, func(a, b float64) bool { return a > b }, func(a, b string) bool { return a > b }},
		{"greaterThanEqual", cmpGE, func(a, b int64) bool { return a >= b }, func(a, b float64) bool { return a >= b }, func(a, b string) bool { return a >= b }},
	}
	for _, op := range ops {
		ki, kf := cmpOpKernel[int64](op.op), cmpOpKernel[float64](op.op)
		ks := strCmpKernel(op.s)
		ib := func(a, b bool) (int64, int64) {
			x, y := int64(0), int64(0)
			if a {
				x = 1
			}
			if b {
				y = 1
			}
			return x, y
		}
		opi := op.i
		kb := cmpKernel(rBol, func(a, b bool) bool { return opi(ib(a, b)) })
		overloads := []Overload{
			sig(tB, ki, tI, tI), sig(tB, kf, tF, tF), sig(tB, kf, tI, tF), sig(tB, kf, tF, tI),
			sig(tB, ki, tT, tT), sig(tB, ki, tT, tI), sig(tB, ki, tI, tT),
			sig(tB, ks, tS, tS), sig(tB, kb, tB, tB),
		}
		switch op.name {
		case "equal":
			overloads = append(overloads, sig(tB, cmpKernel(rU, func(a, b types.UInt128Value) bool { return a == b }), tU, tU))
		case "notEqual":
			overloads = append(overloads, sig(tB, cmpKernel(rU, func(a, b types.UInt128Value) bool { return a != b }), tU, tU))
		}
		register(op.name, "comparison", overloads...)
	}
	register("approxEqual", "float equality within a relative tolerance of 1e-9 (absolute near 0)",
		sig(tB, numCmpKernel(approxEqual), tF, tF))

	register("logicalAnd", "a and b", sig(tB, logicKernel(true), tB, tB), sig(tB, logicKernel(true), tI, tI))
	register("logicalOr", "a or b", sig(tB, logicKernel(false), tB, tB), sig(tB, logicKernel(false), tI, tI))
	register("logicalNot", "not a", sig(tB, notKernel, tB), sig(tB, notKernel, tI))
}

func approxEqual(a, b float64) bool {
	if a == b {
		return true
	}
	scale := math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
	return math.Abs(a-b) <= 1e-9*scale
}

// strCmpKernel compares strings straight on the value bytes.
func strCmpKernel(f func(a, b string) bool) Kernel {
	return func(ctx *Context, args []Value, n int) (Value, error) {
		if allConst(args) {
			a, err := ConstString(args[0].Const)
			if err != nil {
				return Value{}, err
			}
			b, err := ConstString(args[1].Const)
			if err != nil {
				return Value{}, err
			}
			return Value{Const: f(a, b)}, nil
		}
		bits := BoolBitmap(n)
		switch {
		case args[1].IsConst():
			c, err := ConstString(args[1].Const)
			if err != nil {
				return Value{}, err
			}
			off, data := StringParts(args[0].Array)
			for i := 0; i < n; i++ {
				if f(bytesString(data[off[i]:off[i+1]]), c) {
					bits[i>>3] |= 1 << (uint(i) & 7)
				}
			}
		case args[0].IsConst():
			c, err := ConstString(args[0].Const)
			if err != nil {
				return Value{}, err
			}
			off, data := StringParts(args[1].Array)
			for i := 0; i < n; i++ {
				if f(c, bytesString(data[off[i]:off[i+1]])) {
					bits[i>>3] |= 1 << (uint(i) & 7)
				}
			}
		default:
			ao, ad := StringParts(args[0].Array)
			bo, bd := StringParts(args[1].Array)
			for i := 0; i < n; i++ {
				if f(bytesString(ad[ao[i]:ao[i+1]]), bytesString(bd[bo[i]:bo[i+1]])) {
					bits[i>>3] |= 1 << (uint(i) & 7)
				}
			}
		}
		return Value{Array: NewBoolArray(bits, n)}, nil
	}
}

// logicKernel computes and (isAnd) or or over booleans (or ints, non-zero
// being true), a byte at a time when both are arrays starting on a byte.
func logicKernel(isAnd bool) Kernel {
	return func(ctx *Context, args []Value, n int) (Value, error) {
		ga, err := getBool(args[0])
		if err != nil {
			return Value{}, err
		}
		gb, err := getBool(args[1])
		if err != nil {
			return Value{}, err
		}
		if allConst(args) {
			if isAnd {
				return Value{Const: ga(0) && gb(0)}, nil
			}
			return Value{Const: ga(0) || gb(0)}, nil
		}
		// One constant: the result is the constant or the other side.
		for k := 0; k < 2; k++ {
			if !args[k].IsConst() {
				continue
			}
			c := ga(0)
			other := args[1]
			if k == 1 {
				c, other = gb(0), args[0]
			}
			if isAnd != c { // and False / or True
				return Value{Const: c}, nil
			}
			return asBool(other, n)
		}
		a, b := args[0].Array, args[1].Array
		bits := BoolBitmap(n)
		if isBoolArray(a) && isBoolArray(b) {
			ab, ao := Bits(a)
			bb, bo := Bits(b)
			if ao%8 == 0 && bo%8 == 0 {
				ab, bb = ab[ao/8:], bb[bo/8:]
				for i := range bits {
					if isAnd {
						bits[i] = ab[i] & bb[i]
					} else {
						bits[i] = ab[i] | bb[i]
					}
				}
				clearTail(bits, n)
				return Value{Array: NewBoolArray(bits, n)}, nil
			}
		}
		for i := 0; i < n; i++ {
			var v bool
			if isAnd {
				v = ga(i) && gb(i)
			} else {
				v = ga(i) || gb(i)
			}
			SetBit(bits, i, v)
		}
		return Value{Array: NewBoolArray(bits, n)}, nil
	}
}

func isBoolArray(a arrow.Array) bool { return a.DataType().ID() == arrow.BOOL }

func clearTail(bits []byte, n int) {
	if n%8 != 0 {
		bits[len(bits)-1] &= byte(1)<<(uint(n)%8) - 1
	}
}

// asBool returns v as a BOOLEAN value (ints: non-zero is true).
func asBool(v Value, n int) (Value, error) {
	if v.IsConst() {
		b, err := ConstBool(v.Const)
		return Value{Const: b}, err
	}
	if isBoolArray(v.Array) {
		return v, nil
	}
	g, err := getBool(v)
	if err != nil {
		return Value{}, err
	}
	bits := BoolBitmap(n)
	for i := 0; i < n; i++ {
		SetBit(bits, i, g(i))
	}
	return Value{Array: NewBoolArray(bits, n)}, nil
}

func notKernel(ctx *Context, args []Value, n int) (Value, error) {
	g, err := getBool(args[0])
	if err != nil {
		return Value{}, err
	}
	if args[0].IsConst() {
		return Value{Const: !g(0)}, nil
	}
	bits := BoolBitmap(n)
	if isBoolArray(args[0].Array) {
		ab, ao := Bits(args[0].Array)
		if ao%8 == 0 {
			ab = ab[ao/8:]
			for i := range bits {
				bits[i] = ^ab[i]
			}
			clearTail(bits, n)
			return Value{Array: NewBoolArray(bits, n)}, nil
		}
	}
	for i := 0; i < n; i++ {
		SetBit(bits, i, !g(i))
	}
	return Value{Array: NewBoolArray(bits, n)}, nil
}

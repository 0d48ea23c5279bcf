package funcs

// Arithmetic operators (+ - * / % unary - ~), bin and the time/int
// conversions. Integer arithmetic wraps around on overflow as Go's does;
// integer division by zero is not possible (divide yields FLOAT64, so
// IEEE rules apply) and modulo by zero yields 0.

func init() {
	addI := arithKernel[int64](tI, '+')
	addT := arithKernel[int64](tT, '+')
	addF := arithKernel[float64](tF, '+')
	register("add", "a+b; string concatenation; time ± int",
		sig(tI, addI, tI, tI),
		sig(tF, addF, tF, tF),
		sig(tF, addF, tF, tI),
		sig(tF, addF, tI, tF),
		sig(tT, addT, tT, tI),
		sig(tT, addT, tI, tT),
		sig(tS, concatKernel, tS, tS),
	)
	subI := arithKernel[int64](tI, '-')
	subT := arithKernel[int64](tT, '-')
	subF := arithKernel[float64](tF, '-')
	register("subtract", "a-b; time-time is an int (ns), time-int a time",
		sig(tI, subI, tI, tI),
		sig(tF, subF, tF, tF),
		sig(tF, subF, tF, tI),
		sig(tF, subF, tI, tF),
		sig(tI, subI, tT, tT),
		sig(tT, subT, tT, tI),
		sig(tI, subI, tI, tT),
	)
	mulI := arithKernel[int64](tI, '*')
	mulF := arithKernel[float64](tF, '*')
	register("multiply", "a*b",
		sig(tI, mulI, tI, tI),
		sig(tF, mulF, tF, tF),
		sig(tF, mulF, tF, tI),
		sig(tF, mulF, tI, tF),
	)
	div := arithKernel[float64](tF, '/')
	register("divide", "a/b, always FLOAT64 (IEEE: x/0 is ±Inf or NaN)",
		sig(tF, div, tI, tI),
		sig(tF, div, tF, tF),
		sig(tF, div, tF, tI),
		sig(tF, div, tI, tF),
	)
	mod := func(a, b int64) int64 {
		if b == 0 {
			return 0
		}
		return a % b
	}
	register("modulo", "a%b with the sign of a (as in C); 0 when b is 0",
		sig(tI, numBinary(tI, mod), tI, tI),
		sig(tI, numBinary(tI, mod), tT, tI),
		sig(tI, numBinary(tI, mod), tT, tT),
		sig(tI, numBinary(tI, mod), tI, tT),
	)
	binF := func(a, b int64) int64 {
		if b <= 0 {
			return a
		}
		r := a % b
		if r < 0 {
			r += b
		}
		return a - r
	}
	binFF := func(a float64, b int64) int64 { return binF(int64(a), b) }
	register("bin", "a - a mod b: a floored to a multiple of b (b <= 0 leaves a as is)",
		sig(tI, numBinary(tI, binF), tI, tI),
		sig(tT, numBinary(tT, binF), tT, tI),
		sig(tT, numBinary(tT, binF), tT, tT),
		sig(tI, numBinary(tI, binF), tI, tT),
		sig(tI, numBinary(tI, binFF), tF, tI),
	)
	register("negate", "-a",
		sig(tI, numUnary(tI, func(a int64) int64 { return -a }), tI),
		sig(tF, numUnary(tF, func(a float64) float64 { return -a }), tF),
	)
	register("invert", "bitwise NOT",
		sig(tI, numUnary(tI, func(a int64) int64 { return ^a }), tI),
	)
	id := func(a int64) int64 { return a }
	register("time_to_int64", "a time as ns since the epoch", sig(tI, numUnary(tI, id), tT))
	register("int64_to_time", "ns since the epoch as a time", sig(tT, numUnary(tT, id), tI))
}

// concatKernel concatenates two strings row by row.
func concatKernel(ctx *Context, args []Value, n int) (Value, error) {
	ga, err := getString(args[0])
	if err != nil {
		return Value{}, err
	}
	gb, err := getString(args[1])
	if err != nil {
		return Value{}, err
	}
	if allConst(args) {
		return Value{Const: ga(0) + gb(0)}, nil
	}
	b := NewStringsBuilder(n, 16)
	for i := 0; i < n; i++ {
		d := append(b.Buf(), ga(i)...)
		b.Close(append(d, gb(i)...))
	}
	return Value{Array: b.Finish()}, nil
}

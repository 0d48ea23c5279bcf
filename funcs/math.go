package funcs

import (
	"math"
	"strconv"
)

// Math functions. Results follow Go's math package (log of a negative is
// NaN, of zero -Inf); ceil and floor of a float outside the int64 range
// saturate as Go's conversion does on amd64.

func init() {
	logB := func(b, x float64) float64 { return math.Log(x) / math.Log(b) }
	register("log", "log of x (2nd argument) in base b (1st argument)",
		sig(tF, numBinary(tF, logB), tF, tF), sig(tF, numBinary(tF, logB), tF, tI),
		sig(tF, numBinary(tF, logB), tI, tF), sig(tF, numBinary(tF, logB), tI, tI))
	for name, f := range map[string]func(float64) float64{
		"ln": math.Log, "log2": math.Log2, "log10": math.Log10, "exp": math.Exp, "sqrt": math.Sqrt,
	} {
		register(name, name+" of a number, as FLOAT64",
			sig(tF, numUnary(tF, f), tF), sig(tF, numUnary(tF, f), tI))
	}
	register("pow", "x to the power y",
		sig(tF, numBinary(tF, math.Pow), tF, tF), sig(tF, numBinary(tF, math.Pow), tF, tI),
		sig(tF, numBinary(tF, math.Pow), tI, tF), sig(tF, numBinary(tF, math.Pow), tI, tI))
	register("abs", "absolute value",
		sig(tF, numUnary(tF, math.Abs), tF),
		sig(tI, numUnary(tI, func(a int64) int64 {
			if a < 0 {
				return -a
			}
			return a
		}), tI))
	register("ceil", "smallest integer not below x",
		sig(tI, numUnary(tI, func(a float64) int64 { return int64(math.Ceil(a)) }), tF))
	register("floor", "largest integer not above x",
		sig(tI, numUnary(tI, func(a float64) int64 { return int64(math.Floor(a)) }), tF))
	register("round", "x rounded to n decimals, formatted as a string",
		sig(tS, fn2(rFlt, rInt, tS, func(x float64, n int64) string {
			if n < 0 {
				n = 0
			}
			if n > 17 {
				n = 17
			}
			return strconv.FormatFloat(x, 'f', int(n), 64)
		}), tF, tI))
}

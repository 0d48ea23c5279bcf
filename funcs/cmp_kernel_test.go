package funcs

import (
	"math"
	"math/rand"
	"testing"
)

// The operator-switched comparison kernels against a comparison per row
// (numCmpKernel), on every operator, both argument orders with a
// constant and two arrays, lengths around the 8-row packing, and NaNs.
func TestCmpOpKernel(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	ops := []struct {
		op cmpOp
		i  func(a, b int64) bool
		f  func(a, b float64) bool
	}{
		{cmpEQ, func(a, b int64) bool { return a == b }, func(a, b float64) bool { return a == b }},
		{cmpNE, func(a, b int64) bool { return a != b }, func(a, b float64) bool { return a != b }},
		{cmpLT, func(a, b int64) bool { return a < b }, func(a, b float64) bool { return a < b }},
		{cmpLE, func(a, b int64) bool { return a <= b }, func(a, b float64) bool { return a <= b }},
		{cmpGT, func(a, b int64) bool { return a > b }, func(a, b float64) bool { return a > b }},
		{cmpGE, func(a, b int64) bool { return a >= b }, func(a, b float64) bool { return a >= b }},
	}
	for _, n := range []int{0, 1, 7, 8, 9, 16, 63, 100} {
		ia, ib := make([]int64, n), make([]int64, n)
		fa, fb := make([]float64, n), make([]float64, n)
		for i := 0; i < n; i++ {
			ia[i], ib[i] = int64(r.Intn(5)), int64(r.Intn(5))
			fa[i], fb[i] = float64(r.Intn(5)), float64(r.Intn(5))
			if r.Intn(6) == 0 {
				fa[i] = math.NaN()
			}
		}
		ints := []Value{{Array: NewInt64Array(ia)}, {Array: NewInt64Array(ib)}, {Const: int64(2)}}
		flts := []Value{{Array: NewFloat64Array(fa)}, {Array: NewFloat64Array(fb)}, {Const: 2.0}, {Const: math.NaN()}}
		for _, o := range ops {
			for _, c := range [][2]int{{0, 1}, {0, 2}, {2, 0}, {2, 2}} {
				check(t, n, o.op, cmpOpKernel[int64](o.op), numCmpKernel(o.i), []Value{ints[c[0]], ints[c[1]]})
			}
			for _, c := range [][2]int{{0, 1}, {0, 2}, {2, 0}, {0, 3}, {3, 0}, {1, 0}} {
				check(t, n, o.op, cmpOpKernel[float64](o.op), numCmpKernel(o.f), []Value{flts[c[0]], flts[c[1]]})
			}
		}
	}
}

func check(t *testing.T, n int, op cmpOp, got, want Kernel, args []Value) {
	t.Helper()
	g, err := got(nil, args, n)
	if err != nil {
		t.Fatal(err)
	}
	w, err := want(nil, args, n)
	if err != nil {
		t.Fatal(err)
	}
	if g.IsConst() || w.IsConst() {
		if g.Const != w.Const {
			t.Errorf("op %d, n %d: const %v, want %v", op, n, g.Const, w.Const)
		}
		return
	}
	gb, _ := Bits(g.Array)
	wb, _ := Bits(w.Array)
	for i := 0; i < n; i++ {
		if BitAt(gb, i) != BitAt(wb, i) {
			t.Errorf("op %d, n %d, args %v: row %d is %v, want %v", op, n, args, i, BitAt(gb, i), BitAt(wb, i))
		}
	}
}

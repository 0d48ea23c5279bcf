package exec

import (
	"math/rand"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/funcs"
)

// selection lists the set rows of a condition: densities from none to
// all, lengths around the 64-row words, sliced conditions (bit offsets).
func TestSelection(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	for trial := 0; trial < 500; trial++ {
		n := r.Intn(300)
		density := []float64{0, 0.02, 0.5, 0.98, 1}[trial%5]
		bits := funcs.BoolBitmap(n + 16)
		for i := 0; i < n+16; i++ {
			funcs.SetBit(bits, i, r.Float64() < density)
		}
		off := []int{0, 8, 3}[trial%3]
		if off+n > n+16 {
			off = 0
		}
		cond := array.NewSlice(funcs.NewBoolArray(bits, n+16), int64(off), int64(off+n))
		sel, all, err := selection(funcs.Value{Array: cond}, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		var want []int32
		for i := 0; i < n; i++ {
			if funcs.BitAt(bits, off+i) {
				want = append(want, int32(i))
			}
		}
		if all != (len(want) == n) || len(sel) != len(want) {
			t.Fatalf("trial %d (n %d, offset %d): %d rows (all %v), want %d", trial, n, off, len(sel), all, len(want))
		}
		for i := range want {
			if sel[i] != want[i] {
				t.Fatalf("trial %d: row %d is %d, want %d", trial, i, sel[i], want[i])
			}
		}
	}
}

package funcs

import (
	"math"
	"slices"
)

// sortFloats sorts a t-digest's buffer (at most tdBuffer values) in
// ascending order, as slices.Sort does. It sorts the values' bits as
// int64s, mapped so that integer order is numeric order: the integer
// sort compares without the NaN checks of the float one, which are most
// of its cost. With a NaN (whose place slices.Sort defines: first), or
// a buffer larger than tdBuffer, it leaves the work to slices.Sort.
func sortFloats(a []float64) {
	if len(a) > tdBuffer {
		slices.Sort(a)
		return
	}
	var buf [tdBuffer]int64
	keys := buf[:len(a)]
	for i, x := range a {
		if x != x {
			slices.Sort(a)
			return
		}
		// Negative values flip their 63 low bits: signed order of the
		// bits is then numeric order.
		u := int64(math.Float64bits(x))
		keys[i] = u ^ int64(uint64(u>>63)>>1)
	}
	slices.Sort(keys)
	for i, u := range keys {
		a[i] = math.Float64frombits(uint64(u ^ int64(uint64(u>>63)>>1)))
	}
}

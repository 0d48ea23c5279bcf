package funcs

import (
	"math"
	"math/rand"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/types"
)

// sum, mean and count of one group (an aggregate without keys) take a
// path of their own; their results must be those of the general path,
// bit for bit: the same values in group 0 of two groups, on int, float
// and bool columns, sliced at odd offsets, and constants.
func TestOneGroupAggregates(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	const n = 1000
	ints, flts, bits := make([]int64, n), make([]float64, n), BoolBitmap(n)
	for i := 0; i < n; i++ {
		ints[i] = r.Int63n(1e12) - 5e11
		flts[i] = r.NormFloat64() * 1e6
		SetBit(bits, i, r.Intn(3) == 0)
	}
	cols := map[types.DataType]ArrayT{tI: NewInt64Array(ints), tF: NewFloat64Array(flts), tB: NewBoolArray(bits, n)}
	for _, name := range []string{"sum", "mean", "count"} {
		for _, typ := range []types.DataType{tI, tF, tB} {
			o, err := ResolveAgg(name, []types.DataType{typ})
			if err != nil {
				t.Fatal(err)
			}
			one, two := o.New(), o.New()
			one.Resize(1)
			two.Resize(2)
			groups := make([]uint32, n)
			for _, cut := range [][2]int{{0, 3}, {3, 77}, {77, 500}, {500, 1000}} {
				v := Value{Array: array.NewSlice(cols[typ], int64(cut[0]), int64(cut[1]))}
				m := cut[1] - cut[0]
				for _, acc := range []Accumulator{one, two} {
					if err := acc.Update(nil, []Value{v}, groups, m); err != nil {
						t.Fatal(err)
					}
				}
			}
			var c Value
			switch typ {
			case tI:
				c = Value{Const: int64(7)}
			case tF:
				c = Value{Const: 0.1}
			case tB:
				c = Value{Const: true}
			}
			for _, acc := range []Accumulator{one, two} {
				if err := acc.Update(nil, []Value{c}, groups, 10); err != nil {
					t.Fatal(err)
				}
			}
			a, err := one.Finalize(nil, 1)
			if err != nil {
				t.Fatal(err)
			}
			b, err := two.Finalize(nil, 1)
			if err != nil {
				t.Fatal(err)
			}
			if ga, gb := value0(a), value0(b); ga != gb {
				t.Errorf("%s(%v): one group %v, general path %v", name, typ, ga, gb)
			}
		}
	}
}

func value0(v Value) uint64 {
	if v.Array.DataType().ID() == arrow.FLOAT64 {
		return math.Float64bits(Float64s(v.Array)[0])
	}
	return uint64(Int64s(v.Array)[0])
}

package funcs

import (
	"encoding/binary"
	"fmt"
	"math"
	bits64 "math/bits"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/types"
)

// The aggregates sum, mean, count, min, max, any and sample. Each keeps
// one typed slice per field of its state, indexed by group, so an update
// is one loop over the batch with no per-row boxing. Partial states are
// little-endian fixed-width fields (see each State method).

func init() {
	RegisterAgg(&AggFunc{Name: "sum", Doc: "sum; int and bool give INT64, float FLOAT64", Overloads: []AggOverload{
		{Args: []types.DataType{tI}, Ret: tI, New: func() Accumulator { return &sumAcc[int64]{} }},
		{Args: []types.DataType{tF}, Ret: tF, New: func() Accumulator { return &sumAcc[float64]{} }},
		{Args: []types.DataType{tB}, Ret: tI, New: func() Accumulator { return &sumAcc[int64]{} }},
	}})
	RegisterAgg(&AggFunc{Name: "mean", Doc: "arithmetic mean; of a boolean, the share of true values", Overloads: []AggOverload{
		{Args: []types.DataType{tF}, Ret: tF, New: func() Accumulator { return &meanAcc{} }},
		{Args: []types.DataType{tI}, Ret: tF, New: func() Accumulator { return &meanAcc{} }},
		{Args: []types.DataType{tB}, Ret: tF, New: func() Accumulator { return &meanAcc{} }},
	}})
	var countOverloads []AggOverload
	for _, t := range []types.DataType{tF, tI, tT, tB, tS, tU} {
		countOverloads = append(countOverloads, AggOverload{Args: []types.DataType{t}, Ret: tI, New: func() Accumulator { return &countAcc{} }})
	}
	RegisterAgg(&AggFunc{Name: "count", Doc: "number of rows in the group", Overloads: countOverloads})
	for _, isMax := range []bool{false, true} {
		name := "min"
		if isMax {
			name = "max"
		}
		m := isMax
		RegisterAgg(&AggFunc{Name: name, Doc: name + "imum of the group's values", Overloads: []AggOverload{
			{Args: []types.DataType{tF}, Ret: tF, New: func() Accumulator { return &extremeAcc[float64]{max: m, rt: tF} }},
			{Args: []types.DataType{tI}, Ret: tI, New: func() Accumulator { return &extremeAcc[int64]{max: m, rt: tI} }},
			{Args: []types.DataType{tT}, Ret: tT, New: func() Accumulator { return &extremeAcc[int64]{max: m, rt: tT} }},
		}})
	}
	var anyOverloads []AggOverload
	for _, t := range []types.DataType{tB, tI, tF, tS, tT, tU} {
		t := t
		anyOverloads = append(anyOverloads, AggOverload{Args: []types.DataType{t}, Ret: t, New: func() Accumulator { return &anyAcc{t: t} }})
	}
	RegisterAgg(&AggFunc{Name: "any", Doc: "some value of the group (the first one an agent saw)", Overloads: anyOverloads})
	RegisterAgg(&AggFunc{Name: "sample", Doc: "a value of the group chosen uniformly at random", Overloads: []AggOverload{
		{Args: []types.DataType{tS}, Ret: tS, New: func() Accumulator { return &sampleAcc{} }},
	}})
}

// numInput reads an aggregate's numeric argument as a slice of T (bool
// as 0/1), or as a constant.
func numInput[T num](v Value, n int) (vals []T, c T, isConst bool, err error) {
	if !v.IsConst() && v.Array.DataType().ID() == arrow.BOOL {
		bits, off := Bits(v.Array)
		out := make([]T, n)
		for i := range out {
			if BitAt(bits, off+i) {
				out[i] = 1
			}
		}
		return out, c, false, nil
	}
	if v.IsConst() {
		if b, ok := v.Const.(bool); ok {
			if b {
				return nil, 1, true, nil
			}
			return nil, 0, true, nil
		}
	}
	return numSlice[T](v)
}

func grow[T any](s []T, n int) []T {
	if n <= len(s) {
		return s
	}
	if n <= cap(s) {
		return s[:n]
	}
	c := 2 * cap(s)
	if c < n {
		c = n
	}
	out := make([]T, n, c)
	copy(out, s)
	return out
}

func putU64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

func errState(name string, b []byte) error {
	return fmt.Errorf("%s: malformed partial state of %d bytes", name, len(b))
}

// sumAcc sums ints (and bools) or floats.
type sumAcc[T num] struct{ v []T }

func (a *sumAcc[T]) Resize(n int) { a.v = grow(a.v, n) }
func (a *sumAcc[T]) Bytes() int64 { return int64(cap(a.v)) * 8 }
func (a *sumAcc[T]) Update(_ *Context, args []Value, groups []uint32, n int) error {
	if len(a.v) == 1 {
		// One group (an aggregate without keys): sum in a register, not
		// through memory, and count a bool column's set bits.
		if k, ok := trueCount(args[0], n); ok {
			a.v[0] += T(k)
			return nil
		}
	}
	vals, c, isConst, err := numInput[T](args[0], n)
	if err != nil {
		return err
	}
	s := a.v
	if len(s) == 1 && !isConst {
		t := s[0]
		for _, x := range vals[:n] {
			t += x
		}
		s[0] = t
		return nil
	}
	if isConst {
		for _, g := range groups[:n] {
			s[g] += c
		}
		return nil
	}
	vals = vals[:n]
	for i, g := range groups[:n] {
		s[g] += vals[i]
	}
	return nil
}
func (a *sumAcc[T]) State(g int) []byte { return putU64(nil, toBits(a.v[g])) }
func (a *sumAcc[T]) MergeState(g int, b []byte) error {
	if len(b) != 8 {
		return errState("sum", b)
	}
	a.v[g] += fromBits[T](binary.LittleEndian.Uint64(b))
	return nil
}
func (a *sumAcc[T]) Finalize(_ *Context, n int) (Value, error) {
	out := append([]T(nil), a.v[:n]...)
	var zero T
	if _, ok := any(zero).(float64); ok {
		return Value{Array: numArray(tF, out)}, nil
	}
	return Value{Array: numArray(tI, out)}, nil
}

func toBits[T num](v T) uint64 {
	switch x := any(v).(type) {
	case float64:
		return math.Float64bits(x)
	case int64:
		return uint64(x)
	}
	panic("unreachable")
}

func fromBits[T num](u uint64) T {
	var zero T
	if _, ok := any(zero).(float64); ok {
		return T(math.Float64frombits(u))
	}
	return T(int64(u))
}

// meanAcc keeps a float sum and a count.
type meanAcc struct {
	sum []float64
	cnt []int64
}

func (a *meanAcc) Resize(n int) { a.sum = grow(a.sum, n); a.cnt = grow(a.cnt, n) }
func (a *meanAcc) Bytes() int64 { return int64(cap(a.sum)) * 16 }
func (a *meanAcc) Update(_ *Context, args []Value, groups []uint32, n int) error {
	groups = groups[:n]
	sum, cnt := a.sum, a.cnt
	if len(sum) == 1 {
		return a.updateOne(args[0], n)
	}
	if !args[0].IsConst() && args[0].Array.DataType().ID() == arrow.INT64 {
		vals := Int64s(args[0].Array)[:n]
		for i, g := range groups {
			sum[g] += float64(vals[i])
			cnt[g]++
		}
		return nil
	}
	vals, c, isConst, err := numInput[float64](args[0], n)
	if err != nil {
		return err
	}
	if isConst {
		for _, g := range groups {
			sum[g] += c
			cnt[g]++
		}
		return nil
	}
	vals = vals[:n]
	for i, g := range groups {
		sum[g] += vals[i]
		cnt[g]++
	}
	return nil
}

// updateOne is Update for one group (an aggregate without keys): the
// sums run in registers, in row order as in Update, so the result is
// the same.
func (a *meanAcc) updateOne(v Value, n int) error {
	a.cnt[0] += int64(n)
	if k, ok := trueCount(v, n); ok {
		a.sum[0] += float64(k) // exact: a sum of ones below 2^53
		return nil
	}
	t := a.sum[0]
	if !v.IsConst() && v.Array.DataType().ID() == arrow.INT64 {
		for _, x := range Int64s(v.Array)[:n] {
			t += float64(x)
		}
		a.sum[0] = t
		return nil
	}
	vals, c, isConst, err := numInput[float64](v, n)
	if err != nil {
		return err
	}
	if isConst {
		for i := 0; i < n; i++ {
			t += c
		}
	} else {
		for _, x := range vals[:n] {
			t += x
		}
	}
	a.sum[0] = t
	return nil
}

// trueCount counts the set bits of the first n rows of a BOOLEAN
// column; ok is false for anything else.
func trueCount(v Value, n int) (k int, ok bool) {
	if v.IsConst() || v.Array.DataType().ID() != arrow.BOOL {
		return 0, false
	}
	bits, off := Bits(v.Array)
	i := 0
	for ; i < n && (off+i)&63 != 0; i++ {
		k += int(bits[(off+i)>>3] >> (uint(off+i) & 7) & 1)
	}
	for ; i+64 <= n; i += 64 {
		k += bits64.OnesCount64(binary.LittleEndian.Uint64(bits[(off+i)>>3:]))
	}
	for ; i < n; i++ {
		k += int(bits[(off+i)>>3] >> (uint(off+i) & 7) & 1)
	}
	return k, true
}

func (a *meanAcc) State(g int) []byte {
	return putU64(putU64(nil, math.Float64bits(a.sum[g])), uint64(a.cnt[g]))
}
func (a *meanAcc) MergeState(g int, b []byte) error {
	if len(b) != 16 {
		return errState("mean", b)
	}
	a.sum[g] += math.Float64frombits(binary.LittleEndian.Uint64(b))
	a.cnt[g] += int64(binary.LittleEndian.Uint64(b[8:]))
	return nil
}
func (a *meanAcc) Finalize(_ *Context, n int) (Value, error) {
	out := make([]float64, n)
	for g := range out {
		if a.cnt[g] > 0 {
			out[g] = a.sum[g] / float64(a.cnt[g])
		}
	}
	return Value{Array: NewFloat64Array(out)}, nil
}

// countAcc counts rows.
type countAcc struct{ cnt []int64 }

func (a *countAcc) Resize(n int) { a.cnt = grow(a.cnt, n) }
func (a *countAcc) Bytes() int64 { return int64(cap(a.cnt)) * 8 }
func (a *countAcc) Update(_ *Context, _ []Value, groups []uint32, n int) error {
	cnt := a.cnt
	if len(cnt) == 1 {
		cnt[0] += int64(n)
		return nil
	}
	for _, g := range groups[:n] {
		cnt[g]++
	}
	return nil
}
func (a *countAcc) State(g int) []byte { return putU64(nil, uint64(a.cnt[g])) }
func (a *countAcc) MergeState(g int, b []byte) error {
	if len(b) != 8 {
		return errState("count", b)
	}
	a.cnt[g] += int64(binary.LittleEndian.Uint64(b))
	return nil
}
func (a *countAcc) Finalize(_ *Context, n int) (Value, error) {
	return Value{Array: NewInt64Array(append([]int64(nil), a.cnt[:n]...))}, nil
}

// extremeAcc keeps the minimum or maximum; has[g] says whether group g
// has seen a value.
type extremeAcc[T num] struct {
	max bool
	rt  types.DataType
	v   []T
	has []bool
}

func (a *extremeAcc[T]) Resize(n int) { a.v = grow(a.v, n); a.has = grow(a.has, n) }
func (a *extremeAcc[T]) Bytes() int64 { return int64(cap(a.v)) * 9 }
func (a *extremeAcc[T]) Update(_ *Context, args []Value, groups []uint32, n int) error {
	vals, c, isConst, err := numInput[T](args[0], n)
	if err != nil {
		return err
	}
	groups = groups[:n]
	v, has := a.v, a.has
	if isConst {
		for _, g := range groups {
			a.put(g, c)
		}
		return nil
	}
	vals = vals[:n]
	if a.max {
		for i, g := range groups {
			x := vals[i]
			if !has[g] || x > v[g] {
				v[g], has[g] = x, true
			}
		}
	} else {
		for i, g := range groups {
			x := vals[i]
			if !has[g] || x < v[g] {
				v[g], has[g] = x, true
			}
		}
	}
	return nil
}
func (a *extremeAcc[T]) put(g uint32, x T) {
	if !a.has[g] || (a.max && x > a.v[g]) || (!a.max && x < a.v[g]) {
		a.v[g], a.has[g] = x, true
	}
}
func (a *extremeAcc[T]) State(g int) []byte {
	if !a.has[g] {
		return nil
	}
	return putU64(nil, toBits(a.v[g]))
}
func (a *extremeAcc[T]) MergeState(g int, b []byte) error {
	switch len(b) {
	case 0:
		return nil
	case 8:
		a.put(uint32(g), fromBits[T](binary.LittleEndian.Uint64(b)))
		return nil
	}
	return errState("min/max", b)
}
func (a *extremeAcc[T]) Finalize(_ *Context, n int) (Value, error) {
	return Value{Array: numArray(a.rt, append([]T(nil), a.v[:n]...))}, nil
}

// anyAcc keeps the first value each group saw, of any type, as Go
// values of the type's canonical form.
type anyAcc struct {
	t   types.DataType
	v   []any
	has []bool
}

func (a *anyAcc) Resize(n int) { a.v = grow(a.v, n); a.has = grow(a.has, n) }
func (a *anyAcc) Bytes() int64 {
	b := int64(cap(a.v)) * 24
	if a.t == types.String {
		for _, x := range a.v {
			if s, ok := x.(string); ok {
				b += int64(len(s))
			}
		}
	}
	return b
}
func (a *anyAcc) Update(_ *Context, args []Value, groups []uint32, n int) error {
	for i, g := range groups[:n] {
		if !a.has[g] {
			a.has[g] = true
			x := ValueAt(args[0], i)
			if s, ok := x.(string); ok {
				x = string([]byte(s)) // own a copy, not a view of the batch
			}
			a.v[g] = x
		}
	}
	return nil
}
func (a *anyAcc) State(g int) []byte {
	if !a.has[g] {
		return nil
	}
	return encodeValue(nil, a.t, a.v[g])
}
func (a *anyAcc) MergeState(g int, b []byte) error {
	if len(b) == 0 || a.has[g] {
		return nil
	}
	x, err := decodeValue(a.t, b)
	if err != nil {
		return fmt.Errorf("any: %w", err)
	}
	a.v[g], a.has[g] = x, true
	return nil
}
func (a *anyAcc) Finalize(_ *Context, n int) (Value, error) {
	return Value{Array: valuesArray(a.t, a.v[:n])}, nil
}

// encodeValue appends the binary form of a value of type t.
func encodeValue(b []byte, t types.DataType, x any) []byte {
	switch t {
	case types.Boolean:
		if x.(bool) {
			return append(b, 1)
		}
		return append(b, 0)
	case types.Int64, types.Time64NS:
		return putU64(b, uint64(x.(int64)))
	case types.Float64:
		return putU64(b, math.Float64bits(x.(float64)))
	case types.String:
		return append(append(b, 's'), x.(string)...)
	case types.UInt128:
		return append(b, x.(types.UInt128Value).Bytes()...)
	}
	panic("funcs: cannot encode " + t.String())
}

func decodeValue(t types.DataType, b []byte) (any, error) {
	switch t {
	case types.Boolean:
		if len(b) == 1 {
			return b[0] == 1, nil
		}
	case types.Int64, types.Time64NS:
		if len(b) == 8 {
			return int64(binary.LittleEndian.Uint64(b)), nil
		}
	case types.Float64:
		if len(b) == 8 {
			return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
		}
	case types.String:
		if len(b) >= 1 && b[0] == 's' {
			return string(b[1:]), nil
		}
	case types.UInt128:
		if len(b) == 16 {
			return types.GetUInt128(b), nil
		}
	}
	return nil, fmt.Errorf("malformed %v value of %d bytes", t, len(b))
}

// valuesArray builds an array of type t from Go values (nil = zero).
func valuesArray(t types.DataType, vals []any) arrow.Array {
	switch t {
	case types.Boolean:
		out := make([]bool, len(vals))
		for i, x := range vals {
			out[i], _ = x.(bool)
		}
		return toArray(t, out)
	case types.Int64, types.Time64NS:
		out := make([]int64, len(vals))
		for i, x := range vals {
			out[i], _ = x.(int64)
		}
		return toArray(t, out)
	case types.Float64:
		out := make([]float64, len(vals))
		for i, x := range vals {
			out[i], _ = x.(float64)
		}
		return toArray(t, out)
	case types.String:
		out := make([]string, len(vals))
		for i, x := range vals {
			out[i], _ = x.(string)
		}
		return toArray(t, out)
	case types.UInt128:
		out := make([]types.UInt128Value, len(vals))
		for i, x := range vals {
			out[i], _ = x.(types.UInt128Value)
		}
		return toArray(t, out)
	}
	panic("funcs: no array for " + t.String())
}

// sampleAcc keeps one value per group chosen uniformly at random from the
// values it saw (reservoir sampling of size one), and the number seen so
// that merged samples stay uniform.
type sampleAcc struct {
	v    []string
	n    []int64
	seed uint64
}

func (a *sampleAcc) Resize(n int) { a.v = grow(a.v, n); a.n = grow(a.n, n) }
func (a *sampleAcc) Bytes() int64 {
	b := int64(cap(a.v)) * 24
	for _, s := range a.v {
		b += int64(len(s))
	}
	return b
}

// rand returns a pseudo-random number in [0, n) (splitmix64).
func (a *sampleAcc) rand(n int64) int64 {
	a.seed += 0x9e3779b97f4a7c15
	z := a.seed
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return int64(z % uint64(n))
}

func (a *sampleAcc) Update(_ *Context, args []Value, groups []uint32, n int) error {
	get, err := getString(args[0])
	if err != nil {
		return err
	}
	for i, g := range groups[:n] {
		a.n[g]++
		if a.n[g] == 1 || a.rand(a.n[g]) == 0 {
			a.v[g] = string([]byte(get(i)))
		}
	}
	return nil
}
func (a *sampleAcc) State(g int) []byte {
	if a.n[g] == 0 {
		return nil
	}
	return append(putU64(nil, uint64(a.n[g])), a.v[g]...)
}
func (a *sampleAcc) MergeState(g int, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if len(b) < 8 {
		return errState("sample", b)
	}
	m := int64(binary.LittleEndian.Uint64(b))
	if m <= 0 {
		return errState("sample", b)
	}
	a.n[g] += m
	if a.n[g] == m || a.rand(a.n[g]) < m {
		a.v[g] = string(b[8:])
	}
	return nil
}
func (a *sampleAcc) Finalize(_ *Context, n int) (Value, error) {
	return Value{Array: toArray(tS, append([]string(nil), a.v[:n]...))}, nil
}

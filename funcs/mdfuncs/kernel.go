package mdfuncs

import (
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/types"
)

// provider returns the query's metadata provider, or one that knows
// nothing.
func provider(ctx *funcs.Context) metadata.Provider {
	if ctx == nil || ctx.Meta == nil {
		return metadata.None{}
	}
	return ctx.Meta
}

func allocator(ctx *funcs.Context) memory.Allocator {
	if ctx == nil || ctx.Mem == nil {
		return memory.DefaultAllocator
	}
	return ctx.Mem
}

// result is what a metadata function yields: a string or a time.
type result interface{ string | int64 }

// distinct resolves every row i < n to f(at(i)), calling f once per
// distinct key: a run of equal keys costs a comparison, any other repeat
// a map lookup. Row i's result is vals[idx[i]].
func distinct[K comparable, R any](n int, at func(int) K, f func(K) R) (idx []int32, vals []R) {
	idx = make([]int32, n)
	seen := make(map[K]int32)
	var lastK K
	last := int32(-1)
	for i := 0; i < n; i++ {
		k := at(i)
		if last >= 0 && k == lastK {
			idx[i] = last
			continue
		}
		j, ok := seen[k]
		if !ok {
			j = int32(len(vals))
			vals = append(vals, f(k))
			seen[k] = j
		}
		lastK, last = k, j
		idx[i] = j
	}
	return idx, vals
}

// stringColumn builds the string column whose row i is vals[idx[i]],
// writing offsets and bytes straight into two buffers.
func stringColumn(mem memory.Allocator, idx []int32, vals []string) arrow.Array {
	total := 0
	for _, j := range idx {
		total += len(vals[j])
	}
	offsets := memory.NewResizableBuffer(mem)
	offsets.Resize((len(idx) + 1) * arrow.Int32SizeBytes)
	data := memory.NewResizableBuffer(mem)
	data.Resize(total)
	offs := arrow.Int32Traits.CastFromBytes(offsets.Bytes())
	d := data.Bytes()
	pos := 0
	for i, j := range idx {
		offs[i] = int32(pos)
		pos += copy(d[pos:], vals[j])
	}
	offs[len(idx)] = int32(pos)
	ad := array.NewData(arrow.BinaryTypes.String, len(idx), []*memory.Buffer{nil, offsets, data}, nil, 0, 0)
	out := array.NewStringData(ad)
	ad.Release()
	offsets.Release()
	data.Release()
	return out
}

// timeColumn builds the TIME64NS column whose row i is vals[idx[i]].
func timeColumn(mem memory.Allocator, idx []int32, vals []int64) arrow.Array {
	b := array.NewTimestampBuilder(mem, types.TimeType)
	defer b.Release()
	b.Reserve(len(idx))
	for _, j := range idx {
		b.UnsafeAppend(arrow.Timestamp(vals[j]))
	}
	return b.NewArray()
}

// stringsAt returns a reader of string column a ("" for nulls).
func stringsAt(a arrow.Array) (func(int) string, error) {
	s, ok := a.(*array.String)
	if !ok {
		return nil, fmt.Errorf("want a string column, got %v", a.DataType())
	}
	if s.NullN() == 0 {
		return s.Value, nil
	}
	return func(i int) string {
		if s.IsNull(i) {
			return ""
		}
		return s.Value(i)
	}, nil
}

// upidsAt returns a reader of a UINT128 column.
func upidsAt(a arrow.Array) (func(int) types.UInt128Value, error) {
	b, ok := a.(*array.FixedSizeBinary)
	if !ok || b.DataType().(*arrow.FixedSizeBinaryType).ByteWidth != 16 {
		return nil, fmt.Errorf("want a UINT128 column, got %v", a.DataType())
	}
	return func(i int) types.UInt128Value {
		if b.IsNull(i) {
			return types.UInt128Value{}
		}
		return types.GetUInt128(b.Value(i))
	}, nil
}

// timesAt returns a reader of a TIME64NS (or INT64) column.
func timesAt(a arrow.Array) (func(int) int64, error) {
	switch t := a.(type) {
	case *array.Timestamp:
		return func(i int) int64 { return int64(t.Value(i)) }, nil
	case *array.Int64:
		return t.Value, nil
	}
	return nil, fmt.Errorf("want a time column, got %v", a.DataType())
}

// constOf reads a constant argument of Go type K.
func constOf[K any](v funcs.Value) (K, error) {
	k, ok := v.Const.(K)
	if !ok {
		var zero K
		return zero, fmt.Errorf("constant %v (%T) is not %T", v.Const, v.Const, zero)
	}
	return k, nil
}

// unary makes the kernel of a one-argument function: read an argument of
// key type K with reader, resolve each distinct key once with f, whose
// result is a string or a time (int64 ns).
func unary[K comparable, R result](reader func(arrow.Array) (func(int) K, error), f func(m metadata.Provider, k K) R) funcs.Kernel {
	return func(ctx *funcs.Context, args []funcs.Value, n int) (funcs.Value, error) {
		if len(args) != 1 {
			return funcs.Value{}, fmt.Errorf("want 1 argument, got %d", len(args))
		}
		m := provider(ctx)
		if args[0].IsConst() {
			k, err := constOf[K](args[0])
			if err != nil {
				return funcs.Value{}, err
			}
			return funcs.Value{Const: any(f(m, k))}, nil
		}
		at, err := reader(args[0].Array)
		if err != nil {
			return funcs.Value{}, err
		}
		switch g := any(f).(type) {
		case func(metadata.Provider, K) string:
			idx, vals := distinct(n, at, func(k K) string { return g(m, k) })
			return funcs.Value{Array: stringColumn(allocator(ctx), idx, vals)}, nil
		case func(metadata.Provider, K) int64:
			idx, vals := distinct(n, at, func(k K) int64 { return g(m, k) })
			return funcs.Value{Array: timeColumn(allocator(ctx), idx, vals)}, nil
		}
		return funcs.Value{}, fmt.Errorf("mdfuncs: unsupported result type %T", f)
	}
}

// ipAtTime is the kernel of ip_to_pod_id(ip, time): each distinct IP's
// lease history is fetched once, then each row's time is matched against
// it.
func ipAtTime(ctx *funcs.Context, args []funcs.Value, n int) (funcs.Value, error) {
	if len(args) != 2 {
		return funcs.Value{}, fmt.Errorf("want 2 arguments, got %d", len(args))
	}
	m := provider(ctx)
	var ipAt func(int) string
	var tAt func(int) int64
	if args[0].IsConst() {
		ip, err := constOf[string](args[0])
		if err != nil {
			return funcs.Value{}, err
		}
		ipAt = func(int) string { return ip }
	} else {
		var err error
		if ipAt, err = stringsAt(args[0].Array); err != nil {
			return funcs.Value{}, err
		}
	}
	if args[1].IsConst() {
		t, err := constOf[int64](args[1])
		if err != nil {
			return funcs.Value{}, err
		}
		if args[0].IsConst() {
			return funcs.Value{Const: metadata.PickLease(m.IPHistory(ipAt(0)), t)}, nil
		}
		tAt = func(int) int64 { return t }
	} else {
		var err error
		if tAt, err = timesAt(args[1].Array); err != nil {
			return funcs.Value{}, err
		}
	}
	// Each distinct IP's leases are fetched once, with the output slot of
	// each lease's pod; a row then costs a scan of its IP's (short) list.
	type ipLeases struct {
		leases []metadata.IPLease
		slots  []int32
	}
	idx := make([]int32, n)
	vals := []string{""}
	slot := map[string]int32{"": 0}
	byIP := make(map[string]*ipLeases)
	var lastIP string
	var cur *ipLeases
	for i := 0; i < n; i++ {
		if ip := ipAt(i); cur == nil || ip != lastIP {
			cur = byIP[ip]
			if cur == nil {
				cur = &ipLeases{leases: m.IPHistory(ip)}
				for _, l := range cur.leases {
					j, ok := slot[l.PodUID]
					if !ok {
						j = int32(len(vals))
						vals = append(vals, l.PodUID)
						slot[l.PodUID] = j
					}
					cur.slots = append(cur.slots, j)
				}
				byIP[ip] = cur
			}
			lastIP = ip
		}
		t := tAt(i)
		if t == 0 {
			idx[i] = slot[metadata.PickLease(cur.leases, 0)]
			continue
		}
		for k := len(cur.leases) - 1; k >= 0; k-- {
			if cur.leases[k].Covers(t) {
				idx[i] = cur.slots[k]
				break
			}
		}
	}
	return funcs.Value{Array: stringColumn(allocator(ctx), idx, vals)}, nil
}

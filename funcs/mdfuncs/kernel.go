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

// distinct calls emit with f(at(i)) for every row i < n, calling f once
// per distinct key: a run of equal keys costs a comparison, any other
// repeat a map lookup.
func distinct[K comparable, R any](n int, at func(int) K, f func(K) R, emit func(R)) {
	cache := make(map[K]R)
	var lastK K
	var lastR R
	have := false
	for i := 0; i < n; i++ {
		k := at(i)
		if have && k == lastK {
			emit(lastR)
			continue
		}
		r, ok := cache[k]
		if !ok {
			r = f(k)
			cache[k] = r
		}
		lastK, lastR, have = k, r, true
		emit(r)
	}
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

// stringBuilder returns a builder of n strings and its append function.
func stringBuilder(mem memory.Allocator, n int) (*array.StringBuilder, func(string)) {
	b := array.NewStringBuilder(mem)
	b.Reserve(n)
	return b, b.Append
}

// finish turns a builder into a result column.
func finish(b array.Builder) funcs.Value {
	a := b.NewArray()
	b.Release()
	return funcs.Value{Array: a}
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
		// A type switch, not a generic builder: boxing each row's result
		// in an interface would allocate per row.
		switch g := any(f).(type) {
		case func(metadata.Provider, K) string:
			b, add := stringBuilder(allocator(ctx), n)
			distinct(n, at, func(k K) string { return g(m, k) }, add)
			return finish(b), nil
		case func(metadata.Provider, K) int64:
			b := array.NewTimestampBuilder(allocator(ctx), types.TimeType)
			b.Reserve(n)
			distinct(n, at, func(k K) int64 { return g(m, k) }, func(t int64) { b.UnsafeAppend(arrow.Timestamp(t)) })
			return finish(b), nil
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
	b, add := stringBuilder(allocator(ctx), n)
	leases := make(map[string][]metadata.IPLease)
	lastIP, have := "", false
	var last []metadata.IPLease
	for i := 0; i < n; i++ {
		ip := ipAt(i)
		if !have || ip != lastIP {
			l, ok := leases[ip]
			if !ok {
				l = m.IPHistory(ip)
				leases[ip] = l
			}
			lastIP, last, have = ip, l, true
		}
		switch {
		case len(last) == 0:
			add("")
		case len(last) == 1 && last[0].Covers(tAt(i)):
			add(last[0].PodUID)
		default:
			add(metadata.PickLease(last, tAt(i)))
		}
	}
	return finish(b), nil
}

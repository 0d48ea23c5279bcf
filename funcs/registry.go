// Package funcs is the registry of PxL's scalar functions and aggregates:
// their names, overloaded signatures, and the vectorized kernels that
// evaluate them over Arrow arrays. The compiler resolves signatures here to
// type-check scripts; the executor runs the kernels.
package funcs

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/types"
)

// Context is what a kernel may read besides its arguments. One Context
// serves a whole query fragment.
type Context struct {
	Mem      memory.Allocator
	Now      int64             // the query's now, ns since the epoch
	Meta     metadata.Provider // never nil during execution (host mode at least)
	Hostname string            // of the node running the fragment
	NumCPU   int
	ASID     uint32
}

// Value is a kernel argument or result: a column of n rows, or a constant
// (Array == nil) that stands for every row. Const holds bool, int64 (also
// TIME64NS), float64, string or types.UInt128Value.
type Value struct {
	Array arrow.Array
	Const any
}

// IsConst reports whether v is a constant.
func (v Value) IsConst() bool { return v.Array == nil }

// Kernel evaluates a scalar function over a batch of n rows. When every
// argument is constant a kernel may return a constant.
type Kernel func(ctx *Context, args []Value, n int) (Value, error)

// Overload is one signature of a scalar function.
type Overload struct {
	Args   []types.DataType
	Ret    types.DataType
	RetSem types.SemanticType // semantic type of the result, if fixed
	// InitArgs is how many leading arguments must be constants known at
	// compile time (a regex pattern, say).
	InitArgs int
	Kernel   Kernel
}

// Volatility says when a function's value may be computed, which decides
// whether the planner may fold a call with constant arguments and where a
// distributed plan may run it.
type Volatility uint8

const (
	// Unset is no volatility: a registration mistake, caught by the
	// catalog test.
	Unset Volatility = iota
	// Immutable functions give the same result for the same arguments
	// anywhere, at any time: folded at plan time.
	Immutable
	// Stable functions are fixed for one query (they read its now): folded
	// with the plan's now, which every agent of a query shares.
	Stable
	// PlaceBound functions depend on where they run (the agent's ASID or
	// host, its metadata, its resolver): never folded, evaluated by the
	// fragment that holds the rows.
	PlaceBound
)

func (v Volatility) String() string {
	switch v {
	case Immutable:
		return "immutable"
	case Stable:
		return "stable"
	case PlaceBound:
		return "place-bound"
	}
	return "unset"
}

// ScalarFunc is a named scalar function with its overloads.
type ScalarFunc struct {
	Name       string
	Doc        string
	Volatility Volatility
	Overloads  []Overload
	// Variadic, when set, accepts any argument list the Check function
	// approves (used by _script_reference); Overloads is then ignored.
	Variadic func(args []types.DataType) (Overload, error)
}

// AggOverload is one signature of an aggregate.
type AggOverload struct {
	Args   []types.DataType
	Ret    types.DataType
	RetSem types.SemanticType
	// New returns an empty accumulator for this signature.
	New func() Accumulator
}

// AggFunc is a named aggregate with its overloads.
type AggFunc struct {
	Name      string
	Doc       string
	Overloads []AggOverload
}

var (
	mu      sync.RWMutex
	scalars = map[string]*ScalarFunc{}
	aggs    = map[string]*AggFunc{}
)

// RegisterScalar adds a scalar function, or adds overloads to an existing
// one of the same name.
func RegisterScalar(f *ScalarFunc) {
	mu.Lock()
	defer mu.Unlock()
	if old, ok := scalars[f.Name]; ok {
		old.Overloads = append(old.Overloads, f.Overloads...)
		if f.Doc != "" {
			old.Doc = f.Doc
		}
		if f.Variadic != nil {
			old.Variadic = f.Variadic
		}
		if f.Volatility != Unset {
			old.Volatility = f.Volatility
		}
		return
	}
	scalars[f.Name] = f
}

// Foldable reports whether a call of the named scalar function with
// constant arguments may be evaluated at plan time: it is registered and
// does not depend on where it runs.
func Foldable(name string) bool {
	f := Scalar(name)
	return f != nil && (f.Volatility == Immutable || f.Volatility == Stable)
}

// RegisterAgg adds an aggregate, or adds overloads to an existing one.
func RegisterAgg(f *AggFunc) {
	mu.Lock()
	defer mu.Unlock()
	if old, ok := aggs[f.Name]; ok {
		old.Overloads = append(old.Overloads, f.Overloads...)
		return
	}
	aggs[f.Name] = f
}

// Scalar returns the named scalar function, or nil.
func Scalar(name string) *ScalarFunc {
	mu.RLock()
	defer mu.RUnlock()
	return scalars[name]
}

// Agg returns the named aggregate, or nil.
func Agg(name string) *AggFunc {
	mu.RLock()
	defer mu.RUnlock()
	return aggs[name]
}

// ScalarNames and AggNames list registered names, sorted.
func ScalarNames() []string { mu.RLock(); defer mu.RUnlock(); return sortedKeys(scalars) }
func AggNames() []string    { mu.RLock(); defer mu.RUnlock(); return sortedKeys(aggs) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Resolve picks the overload of a scalar function for argument types. An
// exact match wins; otherwise INT64 arguments may widen to FLOAT64.
func Resolve(name string, args []types.DataType) (*Overload, error) {
	f := Scalar(name)
	if f == nil {
		return nil, fmt.Errorf("unknown function %s", name)
	}
	if f.Variadic != nil {
		o, err := f.Variadic(args)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return &o, nil
	}
	if o := match(f.Overloads, func(o *Overload) []types.DataType { return o.Args }, args); o != nil {
		return o, nil
	}
	return nil, fmt.Errorf("%s does not take (%s); it takes %s", name, typeList(args), signatures(f.Overloads, func(o *Overload) []types.DataType { return o.Args }))
}

// ResolveAgg picks the overload of an aggregate for argument types.
func ResolveAgg(name string, args []types.DataType) (*AggOverload, error) {
	f := Agg(name)
	if f == nil {
		return nil, fmt.Errorf("unknown aggregate %s", name)
	}
	if o := match(f.Overloads, func(o *AggOverload) []types.DataType { return o.Args }, args); o != nil {
		return o, nil
	}
	return nil, fmt.Errorf("aggregate %s does not take (%s); it takes %s", name, typeList(args), signatures(f.Overloads, func(o *AggOverload) []types.DataType { return o.Args }))
}

func match[O any](os []O, argsOf func(*O) []types.DataType, args []types.DataType) *O {
	for i := range os {
		if equalTypes(argsOf(&os[i]), args) {
			return &os[i]
		}
	}
	for i := range os {
		want := argsOf(&os[i])
		if len(want) != len(args) {
			continue
		}
		ok := true
		for j := range want {
			if want[j] != args[j] && !(want[j] == types.Float64 && args[j] == types.Int64) {
				ok = false
				break
			}
		}
		if ok {
			return &os[i]
		}
	}
	return nil
}

func equalTypes(a, b []types.DataType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func typeList(ts []types.DataType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ", ")
}

func signatures[O any](os []O, argsOf func(*O) []types.DataType) string {
	s := make([]string, len(os))
	for i := range os {
		s[i] = "(" + typeList(argsOf(&os[i])) + ")"
	}
	return strings.Join(s, " or ")
}

package lang

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/sources/pxtrace"
	"github.com/pxq-dev/pxq/types"
)

// Tracepoint is one pxtrace call of a script: an upsert of a dynamic
// tracepoint (a bpftrace program whose printf output fills Spec.Table),
// or a delete of Spec.Name. The compiler only records them; the query
// path deploys them before the script's plan runs.
type Tracepoint struct {
	Delete bool
	Spec   pxtrace.Spec
	Pos    plan.Pos
}

// Mutations receives the pxtrace calls of a compilation, in call order
// (Options.Mutations).
type Mutations struct {
	Tracepoints []Tracepoint
}

// pxtraceModule is the `pxtrace` module of one compilation.
type pxtraceModule struct {
	b     *builder
	attrs map[string]starlark.Value
}

func (m *pxtraceModule) String() string       { return "<module pxtrace>" }
func (m *pxtraceModule) Type() string         { return "module" }
func (m *pxtraceModule) Freeze()              {}
func (m *pxtraceModule) Truth() starlark.Bool { return starlark.True }
func (m *pxtraceModule) Hash() (uint32, error) {
	return 0, fmt.Errorf("module pxtrace is not hashable")
}

func (m *pxtraceModule) AttrNames() []string {
	names := make([]string, 0, len(m.attrs))
	for n := range m.attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (m *pxtraceModule) Attr(name string) (starlark.Value, error) {
	if v, ok := m.attrs[name]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("pxtrace has no function %q%s", name, didYouMean(name, m.AttrNames()))
}

func newPxtraceModule(b *builder) *pxtraceModule {
	m := &pxtraceModule{b: b, attrs: map[string]starlark.Value{}}
	add := func(name string, fn builtinFunc) {
		m.attrs[name] = starlark.NewBuiltin("pxtrace."+name, fn)
	}
	add("UpsertTracepoint", m.upsert)
	add("DeleteTracepoint", m.delete)
	add("TraceProgram", traceProgram)
	// Targets: bpftrace programs say what they attach to, so a target
	// is accepted and does not narrow where the program runs.
	for _, name := range []string{"kprobe", "SharedObject", "PodProcess", "LabelSelector"} {
		name := name
		add(name, func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			return &traceValue{kind: name}, nil
		})
	}
	// Pixie's tracing of Go functions by name (its own probe compiler)
	// is not bpftrace; say so where a script asks for it.
	for _, name := range []string{"probe", "ArgExpr", "RetExpr", "FunctionLatency"} {
		name := name
		add(name, func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			return nil, fmt.Errorf("pxtrace.%s (Pixie's tracing of Go functions by name) is not supported by pxq: "+
				"pass a bpftrace program to pxtrace.UpsertTracepoint (uprobe:BINARY:FUNCTION probes work)", name)
		})
	}
	return m
}

// traceValue is a value made by the module: a target, or a program of
// TraceProgram.
type traceValue struct {
	kind    string
	program pxtrace.Choice
}

func (v *traceValue) String() string        { return "pxtrace." + v.kind + "()" }
func (v *traceValue) Type() string          { return "pxtrace." + v.kind }
func (v *traceValue) Freeze()               {}
func (v *traceValue) Truth() starlark.Bool  { return starlark.True }
func (v *traceValue) Hash() (uint32, error) { return 0, fmt.Errorf("%s is not hashable", v.Type()) }

// traceProgram is pxtrace.TraceProgram(program, min_kernel=”,
// max_kernel=”): a program for a range of kernels.
func traceProgram(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var c pxtrace.Choice
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "program", &c.Text, "min_kernel?", &c.MinKernel, "max_kernel?", &c.MaxKernel); err != nil {
		return nil, err
	}
	return &traceValue{kind: "TraceProgram", program: c}, nil
}

// upsert is pxtrace.UpsertTracepoint(name, table_name, probe_fn, target,
// ttl): it records the tracepoint and makes its table known to the rest
// of the script, with the columns of the program's printf format.
func (m *pxtraceModule) upsert(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name, tableName string
	var probe, target, ttl starlark.Value
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "name", &name, "table_name", &tableName, "probe_fn", &probe, "target?", &target, "ttl?", &ttl); err != nil {
		return nil, err
	}
	if name == "" || tableName == "" {
		return nil, fmt.Errorf("%s: name and table_name must not be empty", fn.Name())
	}
	programs, err := tracePrograms(probe)
	if err != nil {
		return nil, fmt.Errorf("%s: probe_fn: %w", fn.Name(), err)
	}
	spec := pxtrace.Spec{Name: name, Table: tableName, Programs: programs}
	if ttl != nil && ttl != starlark.None {
		if spec.TTL, err = ttlOf(ttl); err != nil {
			return nil, fmt.Errorf("%s: ttl: %w", fn.Name(), err)
		}
	}
	var rel types.Relation
	for _, c := range programs {
		p, err := pxtrace.ParseProgram(c.Text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn.Name(), err)
		}
		if rel == nil {
			rel = p.Columns
		} else if rel.String() != p.Columns.String() {
			return nil, fmt.Errorf("%s: its programs print other columns (%s, %s): they fill one table", fn.Name(), rel, p.Columns)
		}
	}
	b := m.b
	ov, ok := b.catalog.(*traceCatalog)
	if !ok {
		ov = &traceCatalog{Catalog: b.catalog, tables: map[string]types.Relation{}}
		b.catalog = ov
	}
	ov.tables[tableName] = rel
	b.tracepoints = append(b.tracepoints, Tracepoint{Spec: spec, Pos: b.pos()})
	return starlark.None, nil
}

// delete is pxtrace.DeleteTracepoint(name).
func (m *pxtraceModule) delete(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "name", &name); err != nil {
		return nil, err
	}
	m.b.tracepoints = append(m.b.tracepoints, Tracepoint{Delete: true, Spec: pxtrace.Spec{Name: name}, Pos: m.b.pos()})
	return starlark.None, nil
}

// tracePrograms reads probe_fn: a bpftrace program, a TraceProgram, or a
// list of them.
func tracePrograms(v starlark.Value) ([]pxtrace.Choice, error) {
	switch v := v.(type) {
	case starlark.String:
		return []pxtrace.Choice{{Text: string(v)}}, nil
	case *traceValue:
		if v.kind == "TraceProgram" {
			return []pxtrace.Choice{v.program}, nil
		}
	case *starlark.List, starlark.Tuple:
		var out []pxtrace.Choice
		it := v.(starlark.Iterable).Iterate()
		defer it.Done()
		var x starlark.Value
		for it.Next(&x) {
			cs, err := tracePrograms(x)
			if err != nil {
				return nil, err
			}
			out = append(out, cs...)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("an empty list of programs")
		}
		return out, nil
	case *starlark.Function:
		return nil, fmt.Errorf("function %s: pxq runs bpftrace programs, not Pixie's Go function probes (pxtrace.probe)", v.Name())
	}
	return nil, fmt.Errorf("want a bpftrace program (a string) or pxtrace.TraceProgram, got %s", v.Type())
}

// ttlOf reads a TTL: a duration string ('10m') or seconds.
func ttlOf(v starlark.Value) (time.Duration, error) {
	switch v := v.(type) {
	case starlark.String:
		d, err := ParseDuration(string(v))
		if err != nil {
			return 0, err
		}
		if d <= 0 {
			return 0, fmt.Errorf("%q is not a positive duration", string(v))
		}
		return d, nil
	case starlark.Int:
		n, ok := v.Int64()
		if !ok || n <= 0 {
			return 0, fmt.Errorf("%s is not a positive number of seconds", v)
		}
		return time.Duration(n) * time.Second, nil
	}
	return 0, fmt.Errorf("want a duration such as '10m', got %s", v.Type())
}

// traceCatalog adds the tables of a script's tracepoints to the
// catalog it compiles against.
type traceCatalog struct {
	Catalog
	tables map[string]types.Relation
}

func (c *traceCatalog) Relation(name string) (types.Relation, bool) {
	if rel, ok := c.tables[name]; ok {
		return rel, true
	}
	if c.Catalog == nil {
		return nil, false
	}
	return c.Catalog.Relation(name)
}

func (c *traceCatalog) Tables() []string {
	var out []string
	if c.Catalog != nil {
		out = c.Catalog.Tables()
	}
	for n := range c.tables {
		if c.Catalog == nil {
			out = append(out, n)
		} else if _, ok := c.Catalog.Relation(n); !ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// TracepointError is the error of a tracepoint that could not be
// deployed, at the script's UpsertTracepoint call.
func TracepointError(tp Tracepoint, msg string) *Error {
	return &Error{File: tp.Pos.File, Line: int(tp.Pos.Line), Col: int(tp.Pos.Col), Msg: fmt.Sprintf("tracepoint %s: %s", tp.Spec.Name, strings.TrimSpace(msg))}
}

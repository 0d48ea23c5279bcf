package lang

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/funcs/tablefuncs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// pxModule is the `px` module of one compilation.
type pxModule struct {
	b     *builder
	attrs map[string]starlark.Value
}

var (
	_ starlark.HasAttrs    = (*pxModule)(nil)
	_ starlark.HasSetField = (*pxModule)(nil)
)

func (m *pxModule) String() string        { return "<module px>" }
func (m *pxModule) Type() string          { return "module" }
func (m *pxModule) Freeze()               {}
func (m *pxModule) Truth() starlark.Bool  { return starlark.True }
func (m *pxModule) Hash() (uint32, error) { return 0, fmt.Errorf("module px is not hashable") }

func (m *pxModule) AttrNames() []string {
	names := make([]string, 0, len(m.attrs))
	for n := range m.attrs {
		names = append(names, n)
	}
	for _, n := range funcs.ScalarNames() {
		names = append(names, n)
	}
	for _, n := range funcs.AggNames() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (m *pxModule) Attr(name string) (starlark.Value, error) {
	if v, ok := m.attrs[name]; ok {
		return v, nil
	}
	if funcs.Agg(name) != nil {
		return &aggFunc{name: name}, nil
	}
	if funcs.Scalar(name) != nil {
		return starlark.NewBuiltin("px."+name, scalarBuiltin(name)), nil
	}
	if tf := tablefuncs.Lookup(name); tf != nil {
		return starlark.NewBuiltin("px."+name, m.tableFunc(tf)), nil
	}
	return nil, fmt.Errorf("px has no function %q%s", name, didYouMean(name, m.AttrNames()))
}

// SetField allows scripts to assign into the module (`px.Pod = str`).
func (m *pxModule) SetField(name string, v starlark.Value) error {
	m.attrs[name] = v
	return nil
}

func newPxModule(b *builder) *pxModule {
	m := &pxModule{b: b, attrs: map[string]starlark.Value{}}
	add := func(name string, fn func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)) {
		m.attrs[name] = starlark.NewBuiltin("px."+name, fn)
	}
	add("DataFrame", m.dataFrame)
	add("display", m.display(false))
	add("debug", m.display(true))
	add("now", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := starlark.UnpackArgs(fn.Name(), args, kwargs); err != nil {
			return nil, err
		}
		return timeValue(b.now.UnixNano()), nil
	})
	for name, unit := range map[string]time.Duration{"nanoseconds": time.Nanosecond, "microseconds": time.Microsecond,
		"milliseconds": time.Millisecond, "seconds": time.Second, "minutes": time.Minute, "hours": time.Hour, "days": 24 * time.Hour} {
		unit := unit
		add(name, func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var n int64
			if err := starlark.UnpackPositionalArgs(fn.Name(), args, kwargs, 1, &n); err != nil {
				return nil, err
			}
			return starlark.MakeInt64(n * int64(unit)), nil
		})
	}
	add("parse_duration", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var s string
		if err := starlark.UnpackPositionalArgs(fn.Name(), args, kwargs, 1, &s); err != nil {
			return nil, err
		}
		d, err := ParseDuration(s)
		if err != nil {
			return nil, err
		}
		return starlark.MakeInt64(int64(d)), nil
	})
	add("parse_time", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var v starlark.Value
		if err := starlark.UnpackPositionalArgs(fn.Name(), args, kwargs, 1, &v); err != nil {
			return nil, err
		}
		t, err := b.resolveTime(v, "parse_time")
		if err != nil {
			return nil, err
		}
		return timeValue(t), nil
	})
	add("format_duration", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var n int64
		if err := starlark.UnpackPositionalArgs(fn.Name(), args, kwargs, 1, &n); err != nil {
			return nil, err
		}
		return starlark.String(FormatDuration(n)), nil
	})
	add("strptime", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var s, format string
		if err := starlark.UnpackPositionalArgs(fn.Name(), args, kwargs, 2, &s, &format); err != nil {
			return nil, err
		}
		t, err := time.Parse(strptimeLayout(format), s)
		if err != nil {
			return nil, fmt.Errorf("strptime: %v", err)
		}
		return timeValue(t.UnixNano()), nil
	})
	add("uint128", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var s string
		if err := starlark.UnpackPositionalArgs(fn.Name(), args, kwargs, 1, &s); err != nil {
			return nil, err
		}
		u, err := parseUInt128(s)
		if err != nil {
			return nil, err
		}
		return &Expr{e: &plan.Literal{Value: u, T: types.UInt128, Sem: types.STUPID}}, nil
	})
	add("make_upid", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var asid, pid, ts int64
		if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "asid", &asid, "pid", &pid, "ts_ns", &ts); err != nil {
			return nil, err
		}
		u := types.UPID(uint32(asid), uint32(pid), uint64(ts))
		return &Expr{e: &plan.Literal{Value: u, T: types.UInt128, Sem: types.STUPID}}, nil
	})
	add("equals_any", func(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var v, list starlark.Value
		if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "value", &v, "comparisons", &list); err != nil {
			return nil, err
		}
		it, ok := list.(starlark.Iterable)
		if !ok {
			return nil, fmt.Errorf("equals_any: comparisons must be a list")
		}
		var out starlark.Value = starlark.False
		iter := it.Iterate()
		defer iter.Done()
		var x starlark.Value
		for iter.Next(&x) {
			eq, err := compare(tokEQL, v, x)
			if err != nil {
				return nil, err
			}
			or, err := logical("logicalOr", out, eq)
			if out, err = checked(th, or, err); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
	add("script_reference", func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var label, script starlark.Value
		var refArgs *starlark.Dict
		if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "label", &label, "script", &script, "args?", &refArgs); err != nil {
			return nil, err
		}
		var exprs []plan.Expr
		for _, v := range []starlark.Value{label, script} {
			e, err := toPlanExpr(v)
			if err != nil {
				return nil, fmt.Errorf("script_reference: %v", err)
			}
			exprs = append(exprs, e)
		}
		if refArgs != nil {
			for _, kv := range refArgs.Items() {
				k, ok := kv[0].(starlark.String)
				if !ok {
					return nil, fmt.Errorf("script_reference: argument names must be strings, got %s", kv[0].Type())
				}
				v, err := toPlanExpr(kv[1])
				if err != nil {
					return nil, fmt.Errorf("script_reference argument %s: %v", k, err)
				}
				exprs = append(exprs, &plan.Literal{Value: string(k), T: types.String, Sem: types.STNone}, v)
			}
		}
		e, err := callFunc("_script_reference", exprs)
		if err != nil {
			return nil, err
		}
		return withSemantic(e, types.STScriptReference), nil
	})
	for name, sem := range semanticCasts {
		sem := sem
		add(name, func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var v starlark.Value
			if err := starlark.UnpackPositionalArgs(fn.Name(), args, kwargs, 1, &v); err != nil {
				return nil, err
			}
			e, err := toPlanExpr(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", fn.Name(), err)
			}
			return withSemantic(e, sem), nil
		})
	}
	add("export", m.export)
	m.attrs["otel"] = m.otelModule()
	m.attrs["plugin"] = m.pluginModule()
	// Legacy and unsupported submodules get a clear message.
	for _, name := range []string{"vis"} {
		m.attrs[name] = &unsupported{name: "px." + name}
	}
	return m
}

var tokEQL = syntax.EQL

// semanticCasts are px.T(expr): the same values with a semantic type.
var semanticCasts = map[string]types.SemanticType{
	"Time": types.STTimeNS, "Container": types.STContainerName, "Namespace": types.STNamespaceName,
	"Node": types.STNodeName, "Pod": types.STPodName, "Service": types.STServiceName,
	"Bytes": types.STBytes, "DurationNanos": types.STDurationNS, "UPID": types.STUPID,
	"Percent": types.STPercent, "Quantiles": types.STQuantiles, "Port": types.STPort,
	"IPAddress": types.STIPAddress, "Throughput": types.STThroughputPerNS, "ThroughputBytes": types.STThroughputBytesPerNS,
}

func withSemantic(e plan.Expr, sem types.SemanticType) *Expr {
	return &Expr{e: plan.WithSemantic(e, sem)}
}

func timeValue(ns int64) *Expr {
	return &Expr{e: &plan.Literal{Value: ns, T: types.Time64NS, Sem: types.STTimeNS}}
}

// scalarBuiltin calls a registered scalar function with positional
// arguments.
func scalarBuiltin(name string) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(th *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if len(kwargs) > 0 {
			return nil, fmt.Errorf("%s takes positional arguments only", fn.Name())
		}
		exprs := make([]plan.Expr, len(args))
		for i, a := range args {
			e, err := toPlanExpr(a)
			if err != nil {
				return nil, fmt.Errorf("%s argument %d: %v", fn.Name(), i+1, err)
			}
			exprs[i] = e
		}
		v, err := wrap(callFunc(name, exprs))
		return checked(th, v, err)
	}
}

// aggFunc is px.count, px.mean, …: only meaningful inside agg().
type aggFunc struct{ name string }

func (a *aggFunc) String() string        { return "px." + a.name }
func (a *aggFunc) Type() string          { return "aggregate" }
func (a *aggFunc) Freeze()               {}
func (a *aggFunc) Truth() starlark.Bool  { return starlark.True }
func (a *aggFunc) Hash() (uint32, error) { return starlark.String(a.name).Hash() }
func (a *aggFunc) Name() string          { return "px." + a.name }
func (a *aggFunc) CallInternal(*starlark.Thread, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return nil, fmt.Errorf("px.%s is an aggregate: use it in agg(), e.g. df.groupby('k').agg(out=('col', px.%s))", a.name, a.name)
}

type unsupported struct{ name string }

func (u *unsupported) String() string        { return u.name }
func (u *unsupported) Type() string          { return "module" }
func (u *unsupported) Freeze()               {}
func (u *unsupported) Truth() starlark.Bool  { return starlark.True }
func (u *unsupported) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable") }
func (u *unsupported) AttrNames() []string   { return nil }
func (u *unsupported) Attr(name string) (starlark.Value, error) {
	return nil, fmt.Errorf("%s.%s is not supported by pxq", u.name, name)
}

// dataFrame implements px.DataFrame(table, select=None, start_time=None,
// end_time=None).
func (m *pxModule) dataFrame(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var table string
	var sel, start, end starlark.Value
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "table", &table, "select?", &sel, "start_time?", &start, "end_time?", &end); err != nil {
		return nil, err
	}
	b := m.b
	rel, ok := b.catalog.Relation(table)
	if !ok {
		tables := b.catalog.Tables()
		return nil, fmt.Errorf("table %q not found%s; tables are: %s", table, didYouMean(table, tables), strings.Join(sortedCopy(tables), ", "))
	}
	cols := rel.Names()
	if sel != nil && sel != starlark.None {
		var err error
		if cols, err = stringList(sel, "select"); err != nil {
			return nil, err
		}
		for _, c := range cols {
			if rel.Index(c) < 0 {
				return nil, fmt.Errorf("table %s has no column %q%s; its columns are: %s", table, c, didYouMean(c, rel.Names()), columnList(rel.Names()))
			}
		}
	}
	scanRel := make(types.Relation, len(cols))
	for i, c := range cols {
		scanRel[i] = rel[rel.Index(c)]
	}
	s := &plan.Scan{Table: table, Columns: cols, Rel: scanRel, Pos: b.pos()}
	var err error
	if start != nil && start != starlark.None {
		if s.Start, err = b.resolveTime(start, "start_time"); err != nil {
			return nil, err
		}
	}
	if end != nil && end != starlark.None {
		if s.End, err = b.resolveTime(end, "end_time"); err != nil {
			return nil, err
		}
	}
	if err := b.count(); err != nil {
		return nil, err
	}
	return &DataFrame{node: s, b: b}, nil
}

// tableFunc implements px.GetTables() and the other table functions.
func (m *pxModule) tableFunc(tf *tablefuncs.Func) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		vals := make([]starlark.Value, len(tf.Args))
		var pairs []any
		for i, a := range tf.Args {
			pairs = append(pairs, a.Name+"?", &vals[i])
		}
		if err := starlark.UnpackArgs(fn.Name(), args, kwargs, pairs...); err != nil {
			return nil, err
		}
		lits := make([]*plan.Literal, len(tf.Args))
		for i, a := range tf.Args {
			lits[i] = &plan.Literal{Value: a.Default, T: a.Type, Sem: types.STNone}
			if vals[i] != nil {
				e, err := toPlanExpr(vals[i])
				if err != nil {
					return nil, err
				}
				l, ok := e.(*plan.Literal)
				if !ok || l.T != a.Type {
					return nil, fmt.Errorf("%s: argument %s must be a %s constant", fn.Name(), a.Name, a.Type)
				}
				lits[i] = l
			}
		}
		if err := m.b.count(); err != nil {
			return nil, err
		}
		return &DataFrame{node: &plan.TableFunc{Func: tf.Name, Args: lits, Rel: tf.Relation, Pos: m.b.pos()}, b: m.b}, nil
	}
}

// display implements px.display(df, name='output') and px.debug.
func (m *pxModule) display(debug bool) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var df *DataFrame
		name := "output"
		var cols starlark.Value
		if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "out", &df, "name?", &name, "cols?", &cols); err != nil {
			return nil, err
		}
		if cols != nil && cols != starlark.None {
			names, err := stringList(cols, "cols")
			if err != nil {
				return nil, err
			}
			if len(names) > 0 {
				if df, err = df.project(names); err != nil {
					return nil, err
				}
			}
		}
		if debug {
			name = "_" + name
		} else if m.b.visMode {
			return starlark.None, nil // vis specs decide the outputs
		}
		if err := m.b.addSink(df, name); err != nil {
			return nil, err
		}
		return starlark.None, nil
	}
}

// resolveTime turns a start_time/end_time argument into ns since the
// epoch: a relative duration string ('-5m'), an absolute time string
// (RFC 3339), an integer of ns (negative: relative to now) or a time
// expression (px.now() - px.minutes(5)).
func (b *builder) resolveTime(v starlark.Value, what string) (int64, error) {
	now := b.now.UnixNano()
	switch v := v.(type) {
	case starlark.String:
		s := strings.TrimSpace(string(v))
		if s == "now" || s == "" {
			return now, nil
		}
		if d, err := ParseDuration(s); err == nil {
			return now + int64(d), nil
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UnixNano(), nil
			}
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
		return 0, fmt.Errorf("%s %q is neither a relative duration like '-5m' nor an absolute time like '2024-01-02T15:04:05Z'", what, s)
	case starlark.Int:
		n, ok := v.Int64()
		if !ok {
			return 0, fmt.Errorf("%s out of range", what)
		}
		if n < 0 {
			return now + n, nil
		}
		return n, nil
	case *Expr:
		if n, ok := constInt(v.e, now); ok {
			if v.e.Type() == types.Int64 && n < 0 {
				return now + n, nil
			}
			return n, nil
		}
		return 0, fmt.Errorf("%s must be a constant time, got the column expression %s", what, v.e)
	}
	return 0, fmt.Errorf("%s must be a string like '-5m', an int of ns or a time, got %s", what, v.Type())
}

// constInt evaluates constant integer/time arithmetic (what time
// arguments are made of) when folding did not already do it.
func constInt(e plan.Expr, now int64) (int64, bool) {
	switch e := e.(type) {
	case *plan.Literal:
		switch v := e.Value.(type) {
		case int64:
			return v, true
		case float64:
			return int64(v), true
		}
	case *plan.Call:
		args := make([]int64, len(e.Args))
		for i, a := range e.Args {
			v, ok := constInt(a, now)
			if !ok {
				return 0, false
			}
			args[i] = v
		}
		switch {
		case e.Func == "add" && len(args) == 2:
			return args[0] + args[1], true
		case e.Func == "subtract" && len(args) == 2:
			return args[0] - args[1], true
		case e.Func == "multiply" && len(args) == 2:
			return args[0] * args[1], true
		case e.Func == "negate" && len(args) == 1:
			return -args[0], true
		}
	}
	return 0, false
}

// ParseDuration parses PxL durations: Go's syntax plus 'd' for days,
// e.g. '-5m', '30s', '-1h30m', '2d'.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	neg := strings.HasPrefix(t, "-")
	t = strings.TrimPrefix(strings.TrimPrefix(t, "-"), "+")
	var days int64
	if i := strings.Index(t, "d"); i > 0 {
		n, err := strconv.ParseInt(t[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		days = n
		t = t[i+1:]
	}
	var d time.Duration
	if t != "" {
		var err error
		if d, err = time.ParseDuration(t); err != nil {
			return 0, fmt.Errorf("invalid duration %q: use forms like '-5m', '30s', '-1h', '2d'", s)
		}
	}
	d += time.Duration(days) * 24 * time.Hour
	if neg {
		d = -d
	}
	return d, nil
}

// FormatDuration renders ns as PxL does: the largest whole unit, rounded
// down (d, h, m, s, ms), with its sign: -300000000000 → "-5m".
func FormatDuration(ns int64) string {
	sign := ""
	if ns < 0 {
		sign = "-"
		ns = -ns
	}
	units := []struct {
		n    int64
		name string
	}{{int64(24 * time.Hour), "d"}, {int64(time.Hour), "h"}, {int64(time.Minute), "m"}, {int64(time.Second), "s"}, {int64(time.Millisecond), "ms"}}
	for _, u := range units {
		if ns >= u.n {
			return fmt.Sprintf("%s%d%s", sign, ns/u.n, u.name)
		}
	}
	return fmt.Sprintf("%s%dns", sign, ns)
}

func strptimeLayout(f string) string {
	r := strings.NewReplacer("%Y", "2006", "%m", "01", "%d", "02", "%H", "15", "%M", "04", "%S", "05",
		"%z", "-0700", "%Z", "MST", "%y", "06", "%b", "Jan", "%B", "January", "%f", "000000", "%%", "%")
	return r.Replace(f)
}

func parseUInt128(s string) (types.UInt128Value, error) {
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 {
		return types.UInt128Value{}, fmt.Errorf("uint128 wants a UUID-like string of 32 hex digits, got %q", s)
	}
	hi, err1 := strconv.ParseUint(h[:16], 16, 64)
	lo, err2 := strconv.ParseUint(h[16:], 16, 64)
	if err1 != nil || err2 != nil {
		return types.UInt128Value{}, fmt.Errorf("uint128: %q is not hex", s)
	}
	return types.UInt128Value{High: hi, Low: lo}, nil
}

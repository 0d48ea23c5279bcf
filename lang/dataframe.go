package lang

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/funcs/mdfuncs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// DataFrame is a script's table value: a plan node and its columns.
// Frames are immutable; every operation returns a new frame.
type DataFrame struct {
	node plan.Node
	b    *builder
}

var (
	_ starlark.HasAttrs = (*DataFrame)(nil)
	_ starlark.Mapping  = (*DataFrame)(nil)
)

func (d *DataFrame) String() string {
	return fmt.Sprintf("DataFrame%s", d.node.Relation())
}
func (d *DataFrame) Type() string          { return "DataFrame" }
func (d *DataFrame) Freeze()               {}
func (d *DataFrame) Truth() starlark.Bool  { return starlark.True }
func (d *DataFrame) Hash() (uint32, error) { return 0, fmt.Errorf("a DataFrame is not hashable") }

func (d *DataFrame) rel() types.Relation { return d.node.Relation() }

var dfMethods = []string{"agg", "append", "ctx", "drop", "groupby", "head", "merge"}

// Attr returns a column (df.name), a method, or df.ctx.
func (d *DataFrame) Attr(name string) (starlark.Value, error) {
	switch name {
	case "ctx":
		return &ctxValue{df: d}, nil
	case "groupby":
		return d.method(name, d.groupby), nil
	case "agg":
		return d.method(name, d.aggAll), nil
	case "merge":
		return d.method(name, d.merge), nil
	case "head":
		return d.method(name, d.head), nil
	case "drop":
		return d.method(name, d.drop), nil
	case "append":
		return d.method(name, d.appendFrame), nil
	}
	return d.column(name)
}

func (d *DataFrame) AttrNames() []string {
	return append(append([]string(nil), dfMethods...), d.rel().Names()...)
}

func (d *DataFrame) method(name string, fn func(*starlark.Thread, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)) *starlark.Builtin {
	return starlark.NewBuiltin(name, func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return fn(th, args, kwargs)
	})
}

// column returns a reference to a column, or an error that lists the
// columns that exist.
func (d *DataFrame) column(name string) (*Expr, error) {
	rel := d.rel()
	i := rel.Index(name)
	if i < 0 {
		return nil, d.unknownColumn(name)
	}
	c := rel[i]
	return &Expr{e: &plan.Column{Name: c.Name, T: c.Type, Sem: c.Semantic}}, nil
}

func (d *DataFrame) unknownColumn(name string) error {
	names := d.rel().Names()
	return fmt.Errorf("column %q not found%s; the DataFrame has columns: %s", name, didYouMean(name, names), columnList(names))
}

// Get implements df[...]: a column by name, a projection by a list (or
// tuple) of names, or a filter by a boolean column expression.
func (d *DataFrame) Get(k starlark.Value) (starlark.Value, bool, error) {
	switch k := k.(type) {
	case starlark.String:
		c, err := d.column(string(k))
		if err != nil {
			return nil, false, err
		}
		return c, true, nil
	case *starlark.List, starlark.Tuple:
		names, err := stringList(k, "column list")
		if err != nil {
			return nil, false, err
		}
		df, err := d.project(names)
		return df, err == nil, err
	case *Expr:
		df, err := d.filter(k.e)
		return df, err == nil, err
	case starlark.Bool:
		if k {
			return d, true, nil
		}
		return nil, false, fmt.Errorf("df[False] would drop every row; use a column expression")
	}
	return nil, false, fmt.Errorf("a DataFrame is indexed by a column name, a list of names or a boolean column expression, not %s", k.Type())
}

func (d *DataFrame) derive(n plan.Node) (*DataFrame, error) {
	if err := d.b.count(); err != nil {
		return nil, err
	}
	if err := budgetOf(d.b.thread).chargeNode(n); err != nil {
		return nil, err
	}
	return &DataFrame{node: n, b: d.b}, nil
}

// check verifies that every column e reads exists in d with the same type.
func (d *DataFrame) check(e plan.Expr) error {
	if err := budgetOf(d.b.thread).checkExpr(e); err != nil {
		return err
	}
	rel := d.rel()
	for _, name := range plan.Columns(e) {
		i := rel.Index(name)
		if i < 0 {
			return d.unknownColumn(name)
		}
		var want types.DataType
		plan.WalkExpr(e, func(x plan.Expr) {
			if c, ok := x.(*plan.Column); ok && c.Name == name {
				want = c.T
			}
		})
		if rel[i].Type != want {
			return fmt.Errorf("column %q is %s in this DataFrame, but the expression uses it as %s", name, rel[i].Type, want)
		}
	}
	return nil
}

func (d *DataFrame) filter(cond plan.Expr) (*DataFrame, error) {
	if err := d.check(cond); err != nil {
		return nil, err
	}
	if cond.Type() != types.Boolean {
		return nil, fmt.Errorf("a filter needs a boolean expression, got %s %s", cond.Type(), cond)
	}
	return d.derive(&plan.Filter{Input: d.node, Cond: cond, Pos: d.b.pos()})
}

func (d *DataFrame) project(names []string) (*DataFrame, error) {
	rel := d.rel()
	exprs := make([]plan.NamedExpr, 0, len(names))
	seen := map[string]bool{}
	for _, n := range names {
		i := rel.Index(n)
		if i < 0 {
			return nil, d.unknownColumn(n)
		}
		if seen[n] {
			return nil, fmt.Errorf("column %q selected twice", n)
		}
		seen[n] = true
		exprs = append(exprs, plan.NamedExpr{Name: n, Expr: colRef(rel[i])})
	}
	return d.derive(&plan.Map{Input: d.node, Exprs: exprs, Pos: d.b.pos()})
}

func colRef(c types.Column) *plan.Column {
	return &plan.Column{Name: c.Name, T: c.Type, Sem: c.Semantic}
}

// setColumn returns d with column name set to v (replacing it in place if
// it exists, appending it otherwise).
func (d *DataFrame) setColumn(name string, v starlark.Value) (*DataFrame, error) {
	if name == "" {
		return nil, fmt.Errorf("a column needs a name")
	}
	e, err := toPlanExpr(v)
	if err != nil {
		return nil, err
	}
	if err := d.check(e); err != nil {
		return nil, err
	}
	rel := d.rel()
	exprs := make([]plan.NamedExpr, 0, len(rel)+1)
	replaced := false
	for _, c := range rel {
		if c.Name == name {
			exprs = append(exprs, plan.NamedExpr{Name: name, Expr: e})
			replaced = true
			continue
		}
		exprs = append(exprs, plan.NamedExpr{Name: c.Name, Expr: colRef(c)})
	}
	if !replaced {
		exprs = append(exprs, plan.NamedExpr{Name: name, Expr: e})
	}
	return d.derive(&plan.Map{Input: d.node, Exprs: exprs, Pos: d.b.pos()})
}

func (d *DataFrame) drop(_ *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var cols starlark.Value
	if err := starlark.UnpackArgs("drop", args, kwargs, "columns", &cols); err != nil {
		return nil, err
	}
	var names []string
	if s, ok := cols.(starlark.String); ok {
		names = []string{string(s)}
	} else {
		var err error
		if names, err = stringList(cols, "columns"); err != nil {
			return nil, err
		}
	}
	rel := d.rel()
	del := map[string]bool{}
	for _, n := range names {
		if rel.Index(n) < 0 {
			return nil, d.unknownColumn(n)
		}
		del[n] = true
	}
	var keep []string
	for _, c := range rel {
		if !del[c.Name] {
			keep = append(keep, c.Name)
		}
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("drop would remove every column")
	}
	return d.project(keep)
}

func (d *DataFrame) head(_ *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	n := 5
	if err := starlark.UnpackArgs("head", args, kwargs, "n?", &n); err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("head(n) needs n >= 0, got %d", n)
	}
	return d.derive(&plan.Limit{Input: d.node, N: int64(n), Pos: d.b.pos()})
}

func (d *DataFrame) appendFrame(_ *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var other *DataFrame
	if err := starlark.UnpackArgs("append", args, kwargs, "objs", &other); err != nil {
		return nil, err
	}
	a, b := d.rel(), other.rel()
	if len(a) != len(b) {
		return nil, fmt.Errorf("append needs frames with the same columns: %v and %v", a.Names(), b.Names())
	}
	for _, c := range a {
		i := b.Index(c.Name)
		if i < 0 || b[i].Type != c.Type {
			return nil, fmt.Errorf("append needs frames with the same columns: %s %v is missing from the other frame %v", c.Name, c.Type, b)
		}
	}
	return d.derive(&plan.Union{Inputs: []plan.Node{d.node, other.node}, Pos: d.b.pos()})
}

// GroupBy is the value of df.groupby(keys); its agg method aggregates.
type GroupBy struct {
	df   *DataFrame
	keys []string
}

func (g *GroupBy) String() string        { return fmt.Sprintf("GroupBy%v", g.keys) }
func (g *GroupBy) Type() string          { return "GroupBy" }
func (g *GroupBy) Freeze()               {}
func (g *GroupBy) Truth() starlark.Bool  { return starlark.True }
func (g *GroupBy) Hash() (uint32, error) { return 0, fmt.Errorf("GroupBy is not hashable") }
func (g *GroupBy) AttrNames() []string   { return []string{"agg"} }
func (g *GroupBy) Attr(name string) (starlark.Value, error) {
	if name != "agg" {
		return nil, fmt.Errorf("GroupBy has no attribute %q; call .agg(name=('column', px.fn), …)", name)
	}
	return starlark.NewBuiltin("agg", func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return g.df.aggregate(g.keys, args, kwargs)
	}), nil
}

func (d *DataFrame) groupby(_ *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var by starlark.Value
	if err := starlark.UnpackArgs("groupby", args, kwargs, "by", &by); err != nil {
		return nil, err
	}
	var keys []string
	if s, ok := by.(starlark.String); ok {
		keys = []string{string(s)}
	} else {
		var err error
		if keys, err = stringList(by, "groupby columns"); err != nil {
			return nil, err
		}
	}
	rel := d.rel()
	for _, k := range keys {
		if rel.Index(k) < 0 {
			return nil, d.unknownColumn(k)
		}
	}
	return &GroupBy{df: d, keys: keys}, nil
}

func (d *DataFrame) aggAll(_ *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	return d.aggregate(nil, args, kwargs)
}

// aggregate builds groupby(keys).agg(name=(column, px.fn), …).
func (d *DataFrame) aggregate(keys []string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) > 0 {
		return nil, fmt.Errorf("agg takes only named arguments: agg(name=('column', px.fn))")
	}
	rel := d.rel()
	var aggs []plan.AggExpr
	seen := map[string]bool{}
	for _, k := range keys {
		seen[k] = true
	}
	for _, kv := range kwargs {
		name := string(kv[0].(starlark.String))
		if seen[name] {
			return nil, fmt.Errorf("agg output %q is already a column of the result", name)
		}
		seen[name] = true
		t, ok := kv[1].(starlark.Tuple)
		if !ok || len(t) != 2 {
			return nil, fmt.Errorf("agg argument %s must be a tuple ('column', px.fn), got %s", name, kv[1].Type())
		}
		col, ok := t[0].(starlark.String)
		if !ok {
			return nil, fmt.Errorf("agg argument %s: the column must be a name (string), got %s", name, t[0].Type())
		}
		fn, ok := t[1].(*aggFunc)
		if !ok {
			return nil, fmt.Errorf("agg argument %s: %s is not an aggregate function; use one of px.%s", name, t[1], strings.Join(funcs.AggNames(), ", px."))
		}
		i := rel.Index(string(col))
		if i < 0 {
			return nil, d.unknownColumn(string(col))
		}
		c := rel[i]
		o, err := funcs.ResolveAgg(fn.name, []types.DataType{c.Type})
		if err != nil {
			return nil, fmt.Errorf("agg argument %s: %v", name, err)
		}
		aggs = append(aggs, plan.AggExpr{Name: name, Func: fn.name, Args: []plan.Expr{colRef(c)}, T: o.Ret, Sem: aggSemantic(fn.name, o, c)})
	}
	return d.derive(&plan.Aggregate{Input: d.node, Groups: keys, Aggs: aggs, Mode: plan.AggFull, Pos: d.b.pos()})
}

func aggSemantic(name string, o *funcs.AggOverload, c types.Column) types.SemanticType {
	switch name {
	case "quantiles":
		if c.Semantic == types.STDurationNS {
			return types.STDurationNSQuantiles
		}
		return types.STQuantiles
	case "mean", "sum", "min", "max", "any", "sample":
		if name == "mean" && c.Type == types.Boolean {
			return types.STNone
		}
		if c.Semantic != types.STUnspecified {
			return c.Semantic
		}
	}
	if o.RetSem != types.STUnspecified {
		return o.RetSem
	}
	return types.STNone
}

// merge builds a join. Output: all left columns then all right columns;
// names present on both sides (join keys included) get the suffixes.
func (d *DataFrame) merge(_ *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var right *DataFrame
	how := "inner"
	var leftOn, rightOn, suffixes starlark.Value
	if err := starlark.UnpackArgs("merge", args, kwargs, "right", &right, "how?", &how, "left_on?", &leftOn, "right_on?", &rightOn, "suffixes?", &suffixes); err != nil {
		return nil, err
	}
	jt, ok := map[string]plan.JoinType{"inner": plan.InnerJoin, "left": plan.LeftJoin, "right": plan.RightJoin, "outer": plan.OuterJoin}[how]
	if !ok {
		return nil, fmt.Errorf("merge: how must be 'inner', 'left', 'right' or 'outer', got %q", how)
	}
	lrel, rrel := d.rel(), right.rel()
	lon, err := keyList(leftOn, "left_on")
	if err != nil {
		return nil, err
	}
	ron, err := keyList(rightOn, "right_on")
	if err != nil {
		return nil, err
	}
	// Empty key lists, given explicitly, are a cross join: Pixie's scripts
	// use it to attach a one-row aggregate to every row.
	given := func(v starlark.Value) bool { return v != nil && v != starlark.None }
	if len(lon) == 0 && len(ron) == 0 && (!given(leftOn) || !given(rightOn)) {
		return nil, fmt.Errorf("merge needs left_on and right_on (empty lists for a cross join)")
	}
	if len(lon) != len(ron) {
		return nil, fmt.Errorf("merge: left_on has %d columns but right_on has %d", len(lon), len(ron))
	}
	for i := range lon {
		li, ri := lrel.Index(lon[i]), rrel.Index(ron[i])
		if li < 0 {
			return nil, fmt.Errorf("merge left_on: %v", d.unknownColumn(lon[i]))
		}
		if ri < 0 {
			return nil, fmt.Errorf("merge right_on: %v", right.unknownColumn(ron[i]))
		}
		if lrel[li].Type != rrel[ri].Type {
			return nil, fmt.Errorf("merge: key %s is %s on the left but %s is %s on the right", lon[i], lrel[li].Type, ron[i], rrel[ri].Type)
		}
	}
	sfx := []string{"_x", "_y"}
	if suffixes != nil && suffixes != starlark.None {
		if sfx, err = stringList(suffixes, "suffixes"); err != nil {
			return nil, err
		}
		if len(sfx) != 2 {
			return nil, fmt.Errorf("merge: suffixes needs two strings, got %d", len(sfx))
		}
	}
	var out []plan.JoinColumn
	seen := map[string]bool{}
	add := func(side int, rel, other types.Relation) error {
		for _, c := range rel {
			as := c.Name
			if other.Index(c.Name) >= 0 {
				as += sfx[side]
			}
			if seen[as] {
				return fmt.Errorf("merge: column %q appears twice in the result; pass other suffixes", as)
			}
			seen[as] = true
			out = append(out, plan.JoinColumn{Side: side, Name: c.Name, As: as})
		}
		return nil
	}
	if err := add(0, lrel, rrel); err != nil {
		return nil, err
	}
	if err := add(1, rrel, lrel); err != nil {
		return nil, err
	}
	return d.derive(&plan.Join{Left: d.node, Right: right.node, How: jt, LeftOn: lon, RightOn: ron, Output: out, Pos: d.b.pos()})
}

func keyList(v starlark.Value, what string) ([]string, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	if s, ok := v.(starlark.String); ok {
		return []string{string(s)}, nil
	}
	return stringList(v, what)
}

// stringList reads a list or tuple of strings.
func stringList(v starlark.Value, what string) ([]string, error) {
	it, ok := v.(starlark.Iterable)
	if !ok {
		return nil, fmt.Errorf("%s must be a list of strings, got %s", what, v.Type())
	}
	var out []string
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for iter.Next(&x) {
		s, ok := x.(starlark.String)
		if !ok {
			return nil, fmt.Errorf("%s must be a list of strings, found %s %s", what, x.Type(), x)
		}
		out = append(out, string(s))
	}
	return out, nil
}

// ctxValue is df.ctx: ctx['pod'] and friends resolve metadata of each
// row's process (its upid column) or pod (its pod_id column).
type ctxValue struct{ df *DataFrame }

func (c *ctxValue) String() string        { return "ctx" }
func (c *ctxValue) Type() string          { return "ctx" }
func (c *ctxValue) Freeze()               {}
func (c *ctxValue) Truth() starlark.Bool  { return starlark.True }
func (c *ctxValue) Hash() (uint32, error) { return 0, fmt.Errorf("ctx is not hashable") }

func (c *ctxValue) Get(k starlark.Value) (starlark.Value, bool, error) {
	key, ok := k.(starlark.String)
	if !ok {
		return nil, false, fmt.Errorf("ctx keys are strings, got %s", k.Type())
	}
	if _, known := mdfuncs.CtxKey(string(key), "upid"); !known {
		if _, known = mdfuncs.CtxKey(string(key), "pod_id"); !known {
			keys := mdfuncs.CtxKeys("")
			return nil, false, fmt.Errorf("unknown ctx key %q%s; keys are: %s", string(key), didYouMean(string(key), keys), strings.Join(keys, ", "))
		}
	}
	rel := c.df.rel()
	for _, col := range mdfuncs.CtxColumns {
		i := rel.Index(col)
		if i < 0 {
			continue
		}
		fn, ok := mdfuncs.CtxKey(string(key), col)
		if !ok {
			continue
		}
		if fn == "" {
			return &Expr{e: colRef(rel[i])}, true, nil
		}
		e, err := callFunc(fn, []plan.Expr{colRef(rel[i])})
		if err != nil {
			return nil, false, fmt.Errorf("ctx[%q]: %v", string(key), err)
		}
		return &Expr{e: e}, true, nil
	}
	return nil, false, fmt.Errorf("ctx[%q] needs a upid column (or pod_id) in the DataFrame; it has: %s", string(key), columnList(rel.Names()))
}

package exec

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// A row-at-a-time reference evaluator: plain Go over [][]any rows, run on
// random data sets and random plans against the vectorized engine.
// Scalar functions are evaluated per row through their kernels with
// constant arguments (funcs' own tests check that this agrees with the
// vectorized path); aggregates are recomputed in plain Go.

type refTable struct {
	rel  types.Relation
	rows [][]any
}

type refDB map[string]*refTable

// refEval evaluates n over db.
func refEval(t *testing.T, db refDB, n plan.Node) [][]any {
	switch n := n.(type) {
	case *plan.Scan:
		tb := db[n.Table]
		ti := tb.rel.Index("time_")
		var out [][]any
		for _, r := range tb.rows {
			if ti >= 0 {
				ts := r[ti].(int64)
				if (n.Start > 0 && ts < n.Start) || (n.End > 0 && ts >= n.End) {
					continue
				}
			}
			if n.Filter != nil && !refExpr(t, n.Filter, tb.rel, r).(bool) {
				continue
			}
			row := make([]any, len(n.Columns))
			for i, c := range n.Columns {
				row[i] = r[tb.rel.Index(c)]
			}
			out = append(out, row)
			if n.Limit > 0 && int64(len(out)) == n.Limit {
				break
			}
		}
		return out
	case *plan.Map:
		in := refEval(t, db, n.Input)
		rel := n.Input.Relation()
		out := make([][]any, len(in))
		for i, r := range in {
			row := make([]any, len(n.Exprs))
			for k, e := range n.Exprs {
				row[k] = refExpr(t, e.Expr, rel, r)
			}
			out[i] = row
		}
		return out
	case *plan.Filter:
		var out [][]any
		rel := n.Input.Relation()
		for _, r := range refEval(t, db, n.Input) {
			if refExpr(t, n.Cond, rel, r).(bool) {
				out = append(out, r)
			}
		}
		return out
	case *plan.Limit:
		in := refEval(t, db, n.Input)
		if int64(len(in)) > n.N {
			in = in[:n.N]
		}
		return in
	case *plan.Union:
		rel := n.Relation()
		var out [][]any
		for _, c := range n.Inputs {
			crel := c.Relation()
			for _, r := range refEval(t, db, c) {
				row := make([]any, len(rel))
				for i, col := range rel {
					row[i] = r[crel.Index(col.Name)]
				}
				out = append(out, row)
			}
		}
		return out
	case *plan.Aggregate:
		return refAggregate(t, db, n)
	case *plan.Join:
		return refJoin(t, db, n)
	case *plan.Sink:
		return refEval(t, db, n.Input)
	}
	t.Fatalf("reference: unsupported node %T", n)
	return nil
}

func refExpr(t *testing.T, e plan.Expr, rel types.Relation, row []any) any {
	switch e := e.(type) {
	case *plan.Column:
		return row[rel.Index(e.Name)]
	case *plan.Literal:
		return e.Value
	case *plan.Call:
		args := make([]funcs.Value, len(e.Args))
		ts := make([]types.DataType, len(e.Args))
		for i, a := range e.Args {
			args[i] = funcs.Value{Const: refExpr(t, a, rel, row)}
			ts[i] = a.Type()
		}
		o, err := funcs.Resolve(e.Func, ts)
		if err != nil {
			t.Fatal(err)
		}
		v, err := o.Kernel(&funcs.Context{}, args, 1)
		if err != nil {
			t.Fatal(err)
		}
		if e.T == types.Float64 {
			f, _ := funcs.ConstFloat(v.Const)
			return f
		}
		return v.Const
	}
	t.Fatalf("reference: unsupported expression %T", e)
	return nil
}

func keyOf(vals []any) string { return fmt.Sprintf("%#v", vals) }

func refAggregate(t *testing.T, db refDB, n *plan.Aggregate) [][]any {
	in := refEval(t, db, n.Input)
	rel := n.Input.Relation()
	type group struct {
		key  []any
		rows [][]any
	}
	var order []*group
	byKey := map[string]*group{}
	for _, r := range in {
		key := make([]any, len(n.Groups))
		for i, g := range n.Groups {
			key[i] = r[rel.Index(g)]
		}
		k := keyOf(key)
		g, ok := byKey[k]
		if !ok {
			g = &group{key: key}
			byKey[k] = g
			order = append(order, g)
		}
		g.rows = append(g.rows, r)
	}
	if len(n.Groups) == 0 && len(order) == 0 {
		order = append(order, &group{})
	}
	var out [][]any
	for _, g := range order {
		row := append([]any(nil), g.key...)
		for _, a := range n.Aggs {
			var vals []any
			for _, r := range g.rows {
				vals = append(vals, refExpr(t, a.Args[0], rel, r))
			}
			row = append(row, refAgg(a.Func, a.T, vals))
		}
		out = append(out, row)
	}
	return out
}

func refAgg(name string, rt types.DataType, vals []any) any {
	num := func(v any) float64 {
		switch x := v.(type) {
		case bool:
			if x {
				return 1
			}
			return 0
		case int64:
			return float64(x)
		case float64:
			return x
		}
		panic(v)
	}
	switch name {
	case "count":
		return int64(len(vals))
	case "sum":
		if rt == types.Float64 {
			s := 0.0
			for _, v := range vals {
				s += num(v)
			}
			return s
		}
		var s int64
		for _, v := range vals {
			if b, ok := v.(bool); ok {
				if b {
					s++
				}
				continue
			}
			s += v.(int64)
		}
		return s
	case "mean":
		if len(vals) == 0 {
			return 0.0
		}
		s := 0.0
		for _, v := range vals {
			s += num(v)
		}
		return s / float64(len(vals))
	case "min", "max":
		if len(vals) == 0 {
			return funcs.ZeroValue(rt)
		}
		best := vals[0]
		for _, v := range vals[1:] {
			if (name == "min") == (num(v) < num(best)) && num(v) != num(best) {
				best = v
			}
		}
		return best
	}
	panic("reference: aggregate " + name)
}

func refJoin(t *testing.T, db refDB, n *plan.Join) [][]any {
	left, right := refEval(t, db, n.Left), refEval(t, db, n.Right)
	lrel, rrel := n.Left.Relation(), n.Right.Relation()
	match := func(l, r []any) bool {
		for k := range n.LeftOn {
			if !reflect.DeepEqual(l[lrel.Index(n.LeftOn[k])], r[rrel.Index(n.RightOn[k])]) {
				return false
			}
		}
		return true
	}
	emit := func(l, r []any) []any {
		row := make([]any, len(n.Output))
		for i, c := range n.Output {
			if c.Side == 0 {
				if l == nil {
					row[i] = funcs.ZeroValue(lrel[lrel.Index(c.Name)].Type)
				} else {
					row[i] = l[lrel.Index(c.Name)]
				}
			} else {
				if r == nil {
					row[i] = funcs.ZeroValue(rrel[rrel.Index(c.Name)].Type)
				} else {
					row[i] = r[rrel.Index(c.Name)]
				}
			}
		}
		return row
	}
	var out [][]any
	if n.How == plan.RightJoin {
		for _, r := range right {
			found := false
			for _, l := range left {
				if match(l, r) {
					out = append(out, emit(l, r))
					found = true
				}
			}
			if !found {
				out = append(out, emit(nil, r))
			}
		}
		return out
	}
	matched := make([]bool, len(right))
	for _, l := range left {
		found := false
		for k, r := range right {
			if match(l, r) {
				out = append(out, emit(l, r))
				found, matched[k] = true, true
			}
		}
		if !found && n.How != plan.InnerJoin {
			out = append(out, emit(l, nil))
		}
	}
	if n.How == plan.OuterJoin {
		for k, r := range right {
			if !matched[k] {
				out = append(out, emit(nil, r))
			}
		}
	}
	return out
}

// rowsOf flattens records into rows of Go values.
func rowsOf(recs []Result) [][]any {
	var out [][]any
	for _, r := range recs {
		for _, rec := range r.Records {
			for i := 0; i < int(rec.NumRows()); i++ {
				row := make([]any, rec.NumCols())
				for k, c := range rec.Columns() {
					row[k] = funcs.ArrayValue(c, i)
				}
				out = append(out, row)
			}
		}
	}
	return out
}

func sameRows(got, want [][]any) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d rows, want %d", len(got), len(want))
	}
	for i := range got {
		for k := range got[i] {
			g, w := got[i][k], want[i][k]
			if gf, ok := g.(float64); ok {
				wf, _ := funcs.ConstFloat(w)
				if gf == wf || (math.IsNaN(gf) && math.IsNaN(wf)) || math.Abs(gf-wf) <= 1e-9*math.Max(1, math.Abs(wf)) {
					continue
				}
				return fmt.Errorf("row %d col %d: %v, want %v\n got %v\nwant %v", i, k, g, w, got[i], want[i])
			}
			if !reflect.DeepEqual(g, w) {
				return fmt.Errorf("row %d col %d: %v (%T), want %v (%T)\n got %v\nwant %v", i, k, g, g, w, w, got[i], want[i])
			}
		}
	}
	return nil
}

// testData makes a store and its reference copy: table t (events) and
// table d (a dimension to join).
func testData(r *rand.Rand, nrows int) (*table.Store, refDB) {
	st := table.NewStore(0)
	db := refDB{}
	trel := types.Relation{
		{Name: "time_", Type: types.Time64NS, Semantic: types.STTimeNS},
		{Name: "k1", Type: types.Int64},
		{Name: "k2", Type: types.String},
		{Name: "b", Type: types.Boolean},
		{Name: "f", Type: types.Float64},
		{Name: "v", Type: types.Int64, Semantic: types.STDurationNS},
		{Name: "u", Type: types.UInt128, Semantic: types.STUPID},
	}
	drel := types.Relation{
		{Name: "k1", Type: types.Int64},
		{Name: "k2", Type: types.String},
		{Name: "name", Type: types.String},
		{Name: "w", Type: types.Float64},
	}
	tt, _ := st.Create("t", trel, table.Options{})
	dt, _ := st.Create("d", drel, table.Options{})
	fill := func(tb *table.Table, rel types.Relation, rows [][]any, batch int) {
		w := table.NewWriter(tb)
		w.MaxRows = batch
		for _, row := range rows {
			if err := w.AppendRow(row...); err != nil {
				panic(err)
			}
		}
		w.Flush()
	}
	ts := int64(1000)
	k2s := []string{"", "a", "bb", "ccc", "/api/v1", "ü"}
	var trows [][]any
	for i := 0; i < nrows; i++ {
		ts += int64(r.Intn(3))
		trows = append(trows, []any{ts, int64(r.Intn(10)), k2s[r.Intn(len(k2s))], r.Intn(3) == 0,
			math.Round(r.NormFloat64()*1000) / 8, int64(r.Intn(100000)), types.UPID(1, uint32(r.Intn(4)), 7)})
	}
	var drows [][]any
	for i := 0; i < 14; i++ {
		drows = append(drows, []any{int64(r.Intn(12)), k2s[r.Intn(len(k2s))], fmt.Sprintf("n%d", i), float64(i) / 2})
	}
	fill(tt, trel, trows, 1+r.Intn(700))
	fill(dt, drel, drows, 5)
	db["t"] = &refTable{trel, trows}
	db["d"] = &refTable{drel, drows}
	return st, db
}

func col(rel types.Relation, name string) *plan.Column {
	c := rel[rel.Index(name)]
	return &plan.Column{Name: c.Name, T: c.Type, Sem: c.Semantic}
}

func lit(v any) *plan.Literal {
	switch v.(type) {
	case bool:
		return &plan.Literal{Value: v, T: types.Boolean}
	case int64:
		return &plan.Literal{Value: v, T: types.Int64}
	case float64:
		return &plan.Literal{Value: v, T: types.Float64}
	case string:
		return &plan.Literal{Value: v, T: types.String}
	case types.UInt128Value:
		return &plan.Literal{Value: v, T: types.UInt128}
	}
	panic(v)
}

func call(name string, args ...plan.Expr) *plan.Call {
	ts := make([]types.DataType, len(args))
	for i, a := range args {
		ts[i] = a.Type()
	}
	o, err := funcs.Resolve(name, ts)
	if err != nil {
		panic(err)
	}
	return &plan.Call{Func: name, Args: args, T: o.Ret}
}

// planGen makes random plans over the test tables.
type planGen struct {
	r *rand.Rand
	n int // for unique column names
}

func (g *planGen) scan() plan.Node {
	all := []string{"time_", "k1", "k2", "b", "f", "v", "u"}
	rel := types.Relation{}
	tr := (&refTable{}).rel
	_ = tr
	base := map[string]types.Column{}
	for _, c := range testRel() {
		base[c.Name] = c
	}
	var cols []string
	for _, c := range all {
		if g.r.Intn(5) > 0 || c == "k1" || c == "k2" || c == "v" || c == "f" || c == "b" {
			cols = append(cols, c)
			rel = append(rel, base[c])
		}
	}
	s := &plan.Scan{Table: "t", Columns: cols, Rel: rel}
	if g.r.Intn(3) == 0 {
		s.Start = 1000 + int64(g.r.Intn(2000))
	}
	if g.r.Intn(3) == 0 {
		s.End = 2000 + int64(g.r.Intn(4000))
	}
	if g.r.Intn(3) == 0 {
		s.Filter = g.pred(testRel())
	}
	if g.r.Intn(5) == 0 {
		s.Limit = int64(g.r.Intn(500))
	}
	return s
}

func testRel() types.Relation {
	_, db := testData(rand.New(rand.NewSource(0)), 0)
	return db["t"].rel
}

// pred returns a random boolean expression over rel.
func (g *planGen) pred(rel types.Relation) plan.Expr {
	var atoms []plan.Expr
	for _, c := range rel {
		switch c.Type {
		case types.Int64:
			ops := []string{"lessThan", "greaterThanEqual", "equal", "notEqual"}
			atoms = append(atoms, call(ops[g.r.Intn(4)], col(rel, c.Name), lit(int64(g.r.Intn(10)))))
			if c.Name == "v" {
				atoms = append(atoms, call("lessThan", col(rel, c.Name), lit(int64(g.r.Intn(100000)))))
			}
		case types.Float64:
			atoms = append(atoms, call("greaterThan", col(rel, c.Name), lit(g.r.NormFloat64()*100)))
		case types.String:
			atoms = append(atoms, call("contains", col(rel, c.Name), lit([]string{"a", "b", "/", ""}[g.r.Intn(4)])))
			atoms = append(atoms, call("equal", col(rel, c.Name), lit([]string{"a", "bb", ""}[g.r.Intn(3)])))
		case types.Boolean:
			atoms = append(atoms, col(rel, c.Name))
		case types.Time64NS:
			atoms = append(atoms, call("greaterThan", col(rel, c.Name), &plan.Literal{Value: int64(1000 + g.r.Intn(3000)), T: types.Time64NS}))
		}
	}
	if len(atoms) == 0 {
		return lit(true)
	}
	e := atoms[g.r.Intn(len(atoms))]
	switch g.r.Intn(4) {
	case 0:
		e = call("logicalAnd", e, atoms[g.r.Intn(len(atoms))])
	case 1:
		e = call("logicalOr", e, atoms[g.r.Intn(len(atoms))])
	case 2:
		e = call("logicalNot", e)
	}
	return e
}

// node returns a random plan of the given depth.
func (g *planGen) node(depth int) plan.Node {
	if depth == 0 {
		return g.scan()
	}
	in := g.node(depth - 1)
	rel := in.Relation()
	switch g.r.Intn(7) {
	case 0:
		return &plan.Filter{Input: in, Cond: g.pred(rel)}
	case 1:
		var exprs []plan.NamedExpr
		for _, c := range rel {
			if g.r.Intn(4) > 0 {
				exprs = append(exprs, plan.NamedExpr{Name: c.Name, Expr: col(rel, c.Name)})
			}
		}
		for i, c := range rel {
			var e plan.Expr
			switch c.Type {
			case types.Int64:
				e = call([]string{"add", "multiply", "divide", "bin", "modulo"}[g.r.Intn(5)], col(rel, c.Name), lit(int64(1+g.r.Intn(7))))
			case types.Float64:
				e = call("floor", call("multiply", col(rel, c.Name), lit(0.5)))
			case types.String:
				e = call("add", col(rel, c.Name), lit("!"))
			case types.Boolean:
				e = call("select", col(rel, c.Name), lit("yes"), lit("no"))
			case types.Time64NS:
				e = call("bin", col(rel, c.Name), lit(int64(100)))
			case types.UInt128:
				e = call("upid_to_pid", col(rel, c.Name))
			}
			g.n++
			exprs = append(exprs, plan.NamedExpr{Name: fmt.Sprintf("x%d_%d", g.n, i), Expr: e})
		}
		g.n++
		exprs = append(exprs, plan.NamedExpr{Name: fmt.Sprintf("c%d", g.n), Expr: lit(int64(5))})
		return &plan.Map{Input: in, Exprs: exprs}
	case 2:
		return &plan.Limit{Input: in, N: int64(g.r.Intn(300))}
	case 3:
		return &plan.Union{Inputs: []plan.Node{in, in}}
	case 4, 5:
		return g.agg(in, plan.AggFull)
	default:
		return g.join(in)
	}
}

func (g *planGen) agg(in plan.Node, mode plan.AggMode) *plan.Aggregate {
	rel := in.Relation()
	var groups []string
	for _, c := range rel {
		if c.Type != types.Float64 && g.r.Intn(3) == 0 && len(groups) < 3 {
			groups = append(groups, c.Name)
		}
	}
	var aggs []plan.AggExpr
	for _, c := range rel {
		var fs []string
		switch c.Type {
		case types.Int64, types.Float64:
			fs = []string{"sum", "mean", "min", "max", "count"}
		case types.Boolean:
			fs = []string{"mean", "sum", "count"}
		case types.Time64NS:
			fs = []string{"min", "max", "count"}
		default:
			fs = []string{"count"}
		}
		f := fs[g.r.Intn(len(fs))]
		o, err := funcs.ResolveAgg(f, []types.DataType{c.Type})
		if err != nil {
			panic(err)
		}
		aggs = append(aggs, plan.AggExpr{Name: "a_" + c.Name, Func: f, Args: []plan.Expr{col(rel, c.Name)}, T: o.Ret})
	}
	return &plan.Aggregate{Input: in, Groups: groups, Aggs: aggs, Mode: mode}
}

func (g *planGen) join(in plan.Node) plan.Node {
	rel := in.Relation()
	drel := testDRel()
	right := plan.Node(&plan.Scan{Table: "d", Columns: drel.Names(), Rel: drel})
	var lon, ron []string
	if rel.Index("k1") >= 0 && rel[rel.Index("k1")].Type == types.Int64 && g.r.Intn(3) > 0 {
		lon, ron = append(lon, "k1"), append(ron, "k1")
	}
	if rel.Index("k2") >= 0 && rel[rel.Index("k2")].Type == types.String && (len(lon) == 0 || g.r.Intn(2) == 0) {
		lon, ron = append(lon, "k2"), append(ron, "k2")
	}
	if len(lon) == 0 {
		return &plan.Filter{Input: in, Cond: g.pred(rel)}
	}
	j := &plan.Join{Left: in, Right: right, How: plan.JoinType(g.r.Intn(4)), LeftOn: lon, RightOn: ron}
	for _, c := range rel {
		j.Output = append(j.Output, plan.JoinColumn{Side: 0, Name: c.Name, As: c.Name})
	}
	for _, c := range drel {
		j.Output = append(j.Output, plan.JoinColumn{Side: 1, Name: c.Name, As: c.Name + "_r"})
	}
	return j
}

func testDRel() types.Relation {
	_, db := testData(rand.New(rand.NewSource(0)), 0)
	return db["d"].rel
}

// TestRandomPlansMatchReference runs hundreds of random plans over
// random data in the engine and in the reference evaluator.
func TestRandomPlansMatchReference(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	counts := map[string]int{}
	for trial := 0; trial < 400; trial++ {
		st, db := testData(r, r.Intn(3000))
		g := &planGen{r: r}
		root := g.node(1 + r.Intn(3))
		plan.Walk(&plan.Plan{Sinks: []*plan.Sink{{Input: root}}}, func(n plan.Node) {
			counts[strings.Fields(n.Describe())[0]]++
		})
		p := &plan.Plan{Sinks: []*plan.Sink{{Input: root, Name: "out"}}}
		opts := Options{Store: st, MaxRowsPerTable: -1, BatchSize: 1 + r.Intn(5000)}
		res, err := Collect(context.Background(), p, opts)
		if err != nil {
			t.Fatalf("trial %d: %v\n%s", trial, err, plan.Format(p))
		}
		want := refEval(t, db, root)
		if err := sameRows(rowsOf(res), want); err != nil {
			t.Fatalf("trial %d: %v\n%s", trial, err, plan.Format(p))
		}
	}
	var kinds []string
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%s×%d", k, n))
	}
	sort.Strings(kinds)
	t.Logf("operators exercised: %s", strings.Join(kinds, " "))
}

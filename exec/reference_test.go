package exec

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/internal/plantest"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// Random plans over random data, run by the engine and by plantest's
// row-at-a-time reference evaluator.

// testRel is the columns of table t, the events.
func testRel() types.Relation {
	return types.Relation{
		{Name: "time_", Type: types.Time64NS, Semantic: types.STTimeNS},
		{Name: "k1", Type: types.Int64},
		{Name: "k2", Type: types.String},
		{Name: "b", Type: types.Boolean},
		{Name: "f", Type: types.Float64},
		{Name: "v", Type: types.Int64, Semantic: types.STDurationNS},
		{Name: "u", Type: types.UInt128, Semantic: types.STUPID},
	}
}

// testDRel is the columns of table d, a dimension to join.
func testDRel() types.Relation {
	return types.Relation{
		{Name: "k1", Type: types.Int64},
		{Name: "k2", Type: types.String},
		{Name: "name", Type: types.String},
		{Name: "w", Type: types.Float64},
	}
}

// testData makes a store and its reference copy: nrows rows of table t
// and 14 of table d.
func testData(r *rand.Rand, nrows int) (*table.Store, plantest.DB) {
	st := table.NewStore(0)
	ts := int64(1000)
	k2s := []string{"", "a", "bb", "ccc", "/api/v1", "ü"}
	t := &plantest.Table{Rel: testRel()}
	for i := 0; i < nrows; i++ {
		ts += int64(r.Intn(3))
		t.Rows = append(t.Rows, []any{ts, int64(r.Intn(10)), k2s[r.Intn(len(k2s))], r.Intn(3) == 0,
			math.Round(r.NormFloat64()*1000) / 8, int64(r.Intn(100000)), types.UPID(1, uint32(r.Intn(4)), 7)})
	}
	d := &plantest.Table{Rel: testDRel()}
	for i := 0; i < 14; i++ {
		d.Rows = append(d.Rows, []any{int64(r.Intn(12)), k2s[r.Intn(len(k2s))], fmt.Sprintf("n%d", i), float64(i) / 2})
	}
	fill(st, "t", t, 1+r.Intn(700))
	fill(st, "d", d, 5)
	return st, plantest.DB{"t": t, "d": d}
}

// fill creates table name in st with t's rows, in batches of batch rows.
func fill(st *table.Store, name string, t *plantest.Table, batch int) {
	tb, err := st.Create(name, t.Rel, table.Options{})
	if err != nil {
		panic(err)
	}
	w := table.NewWriter(tb)
	w.MaxRows = batch
	for _, row := range t.Rows {
		if err := w.AppendRow(row...); err != nil {
			panic(err)
		}
	}
	w.Flush()
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

func keyOf(vals []any) string { return fmt.Sprintf("%#v", vals) }

// planGen makes random plans over the test tables.
type planGen struct {
	r *rand.Rand
	n int // for unique column names
}

func (g *planGen) scan() plan.Node {
	var cols []string
	for _, c := range testRel() {
		always := c.Name == "k1" || c.Name == "k2" || c.Name == "v" || c.Name == "f" || c.Name == "b"
		if g.r.Intn(5) > 0 || always {
			cols = append(cols, c.Name)
		}
	}
	s := plantest.Scan("t", testRel(), cols...)
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

// pred returns a random boolean expression over rel.
func (g *planGen) pred(rel types.Relation) plan.Expr {
	call, lit := plantest.Call, plantest.Lit
	var atoms []plan.Expr
	for _, c := range rel {
		col := plantest.Col(rel, c.Name)
		switch c.Type {
		case types.Int64:
			ops := []string{"lessThan", "greaterThanEqual", "equal", "notEqual"}
			atoms = append(atoms, call(ops[g.r.Intn(4)], col, lit(int64(g.r.Intn(10)))))
			if c.Name == "v" {
				atoms = append(atoms, call("lessThan", col, lit(int64(g.r.Intn(100000)))))
			}
		case types.Float64:
			atoms = append(atoms, call("greaterThan", col, lit(g.r.NormFloat64()*100)))
		case types.String:
			atoms = append(atoms, call("contains", col, lit([]string{"a", "b", "/", ""}[g.r.Intn(4)])))
			atoms = append(atoms, call("equal", col, lit([]string{"a", "bb", ""}[g.r.Intn(3)])))
		case types.Boolean:
			atoms = append(atoms, col)
		case types.Time64NS:
			atoms = append(atoms, call("greaterThan", col, &plan.Literal{Value: int64(1000 + g.r.Intn(3000)), T: types.Time64NS}))
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
		return plantest.Filter(in, g.pred(rel))
	case 1:
		return g.mapNode(in)
	case 2:
		return plantest.Limit(in, int64(g.r.Intn(300)))
	case 3:
		return &plan.Union{Inputs: []plan.Node{in, in}}
	case 4, 5:
		return g.agg(in, plan.AggFull)
	default:
		return g.join(in)
	}
}

// mapNode keeps some columns of in and computes one more from each.
func (g *planGen) mapNode(in plan.Node) *plan.Map {
	call, lit := plantest.Call, plantest.Lit
	rel := in.Relation()
	m := &plan.Map{Input: in}
	for _, c := range rel {
		if g.r.Intn(4) > 0 {
			m.Exprs = append(m.Exprs, plan.NamedExpr{Name: c.Name, Expr: plantest.Col(rel, c.Name)})
		}
	}
	for i, c := range rel {
		col := plantest.Col(rel, c.Name)
		var e plan.Expr
		switch c.Type {
		case types.Int64:
			e = call([]string{"add", "multiply", "divide", "bin", "modulo"}[g.r.Intn(5)], col, lit(int64(1+g.r.Intn(7))))
		case types.Float64:
			e = call("floor", call("multiply", col, lit(0.5)))
		case types.String:
			e = call("add", col, lit("!"))
		case types.Boolean:
			e = call("select", col, lit("yes"), lit("no"))
		case types.Time64NS:
			e = call("bin", col, lit(int64(100)))
		case types.UInt128:
			e = call("upid_to_pid", col)
		}
		g.n++
		m.Exprs = append(m.Exprs, plan.NamedExpr{Name: fmt.Sprintf("x%d_%d", g.n, i), Expr: e})
	}
	g.n++
	m.Exprs = append(m.Exprs, plan.NamedExpr{Name: fmt.Sprintf("c%d", g.n), Expr: lit(int64(5))})
	return m
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
		aggs = append(aggs, plantest.Agg("a_"+c.Name, fs[g.r.Intn(len(fs))], plantest.Col(rel, c.Name)))
	}
	return &plan.Aggregate{Input: in, Groups: groups, Aggs: aggs, Mode: mode}
}

func (g *planGen) join(in plan.Node) plan.Node {
	rel := in.Relation()
	drel := testDRel()
	var lon, ron []string
	if rel.Index("k1") >= 0 && rel[rel.Index("k1")].Type == types.Int64 && g.r.Intn(3) > 0 {
		lon, ron = append(lon, "k1"), append(ron, "k1")
	}
	if rel.Index("k2") >= 0 && rel[rel.Index("k2")].Type == types.String && (len(lon) == 0 || g.r.Intn(2) == 0) {
		lon, ron = append(lon, "k2"), append(ron, "k2")
	}
	if len(lon) == 0 {
		return plantest.Filter(in, g.pred(rel))
	}
	j := &plan.Join{Left: in, Right: plantest.Scan("d", drel), How: plan.JoinType(g.r.Intn(4)), LeftOn: lon, RightOn: ron}
	for _, c := range rel {
		j.Output = append(j.Output, plan.JoinColumn{Side: 0, Name: c.Name, As: c.Name})
	}
	for _, c := range drel {
		j.Output = append(j.Output, plan.JoinColumn{Side: 1, Name: c.Name, As: c.Name + "_r"})
	}
	return j
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
		p := &plan.Plan{Sinks: []*plan.Sink{{Input: root, Name: "out"}}}
		plan.Walk(p, func(n plan.Node) {
			counts[strings.Fields(n.Describe())[0]]++
		})
		opts := Options{Store: st, MaxRowsPerTable: -1, BatchSize: 1 + r.Intn(5000)}
		res, err := Collect(context.Background(), p, opts)
		if err != nil {
			t.Fatalf("trial %d: %v\n%s", trial, err, plan.Format(p))
		}
		if err := plantest.SameRows(rowsOf(res), plantest.Eval(t, db, root)); err != nil {
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

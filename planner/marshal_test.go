package planner

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/pxq-dev/pxq/funcs/tablefuncs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/schema"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/types"
)

// corpus returns hand-written plans covering every node and expression
// kind, literals of every type, positions and shared nodes.
func corpus() []*plan.Plan {
	http := scan(tables.All["http_events"], "time_", "upid", "req_path", "resp_status", "latency")
	http.Start, http.End, http.Limit, http.Pos = 100, 200, 5, plan.Pos{File: "s.pxl", Line: 3, Col: 7}
	http.Filter = cmp(fnEq, col(http, "upid"), lit(types.UInt128Value{High: math.MaxUint64, Low: 7}))
	conn := scan(tables.All["conn_stats"], "time_", "upid", "bytes_sent")
	m := &plan.Map{Input: http, Pos: plan.Pos{File: "s.pxl", Line: 4, Col: 1}, Exprs: []plan.NamedExpr{
		{Name: "upid", Expr: col(http, "upid")},
		{Name: "ms", Expr: call("divide", types.Float64, col(http, "latency"), lit(1e6))},
		{Name: "t", Expr: timeLit(-1)},
		{Name: "s", Expr: lit("quo\"te\n")},
		{Name: "b", Expr: lit(false)},
		{Name: "nil", Expr: &plan.Literal{T: types.String}},
		{Name: "nan", Expr: lit(math.Inf(-1))},
	}}
	f := filter(m, cmp(fnGt, col(m, "ms"), lit(2.5)))
	agg := &plan.Aggregate{Input: f, Groups: []string{"upid"}, Mode: plan.AggPartial, Aggs: []plan.AggExpr{
		{Name: "n", Func: "count", Args: []plan.Expr{col(f, "ms")}, T: types.Int64, Sem: types.STNone},
		{Name: "q", Func: "quantiles", Args: []plan.Expr{col(f, "ms")}, T: types.String, Sem: types.STDurationNSQuantiles}}}
	j := &plan.Join{Left: f, Right: conn, How: plan.OuterJoin, LeftOn: []string{"upid"}, RightOn: []string{"upid"},
		Output: []plan.JoinColumn{{Side: 0, Name: "upid", As: "upid"}, {Side: 1, Name: "upid", As: "upid_x"}}}
	u := &plan.Union{Inputs: []plan.Node{project(conn, "upid"), project(j, "upid")}}
	tf := &plan.TableFunc{Func: "GetAgentStatus", Args: []*plan.Literal{lit(true)}, Rel: tablefuncs.Lookup("GetAgentStatus").Relation}
	src := &plan.BridgeSource{ID: 3, Rel: agg.Relation()}
	final := &plan.Aggregate{Input: src, Groups: []string{"upid"}, Mode: plan.AggFinal, Aggs: agg.Aggs}
	everything := sinks(limit(f, 10), &plan.BridgeSink{Input: agg, ID: 3}, u, tf, final, f)
	everything.Sinks[0].Pos = plan.Pos{File: "s.pxl", Line: 9, Col: 2}

	out := []*plan.Plan{everything, {Now: 1}, sinks(http)}
	if d, err := Split(sinks(limit(f, 10), j, &plan.Aggregate{Input: f, Aggs: agg.Aggs})); err == nil {
		out = append(out, d.Node, d.Merge)
	}
	return out
}

// randomPlan builds a random but well-formed plan DAG.
func randomPlan(r *rand.Rand) *plan.Plan {
	tables := []schema.Table{tables.All["http_events"], tables.All["conn_stats"], tables.All["process_stats"]}
	var nodes []plan.Node
	pick := func() plan.Node { return nodes[r.Intn(len(nodes))] }
	anyExpr := func(in plan.Node, depth int) plan.Expr {
		var gen func(depth int) plan.Expr
		gen = func(depth int) plan.Expr {
			rel := in.Relation()
			switch k := r.Intn(8); {
			case k < 3 && len(rel) > 0:
				c := rel[r.Intn(len(rel))]
				return &plan.Column{Name: c.Name, T: c.Type, Sem: c.Semantic}
			case k < 6 || depth > 3:
				switch r.Intn(6) {
				case 0:
					return lit(r.Intn(2) == 0)
				case 1:
					return lit(r.Int63() - r.Int63())
				case 2:
					return lit(r.NormFloat64())
				case 3:
					return lit(fmt.Sprintf("s%d", r.Intn(100)))
				case 4:
					return lit(types.UInt128Value{High: r.Uint64(), Low: r.Uint64()})
				default:
					return timeLit(r.Int63())
				}
			default:
				args := make([]plan.Expr, r.Intn(3))
				for i := range args {
					args[i] = gen(depth + 1)
				}
				return &plan.Call{Func: fmt.Sprintf("f%d", r.Intn(5)), Args: args, T: types.DataType(1 + r.Intn(6)), Sem: types.STBytes}
			}
		}
		return gen(depth)
	}
	pos := func() plan.Pos {
		if r.Intn(2) == 0 {
			return plan.Pos{}
		}
		return plan.Pos{File: "r.pxl", Line: int32(r.Intn(50)), Col: int32(r.Intn(50))}
	}
	for i := 0; i < 3+r.Intn(12); i++ {
		var n plan.Node
		switch k := r.Intn(9); {
		case k == 0 || len(nodes) == 0:
			s := scan(tables[r.Intn(len(tables))])
			s.Start, s.End, s.Limit, s.Pos = r.Int63n(1000), r.Int63n(1000), r.Int63n(3), pos()
			if r.Intn(2) == 0 {
				s.Filter = anyExpr(s, 0)
			}
			n = s
		case k == 1:
			in := pick()
			m := &plan.Map{Input: in, Pos: pos()}
			for j := 0; j < 1+r.Intn(4); j++ {
				m.Exprs = append(m.Exprs, plan.NamedExpr{Name: fmt.Sprintf("c%d", j), Expr: anyExpr(in, 0)})
			}
			n = m
		case k == 2:
			in := pick()
			n = &plan.Filter{Input: in, Cond: anyExpr(in, 0), Pos: pos()}
		case k == 3:
			in := pick()
			rel := in.Relation()
			a := &plan.Aggregate{Input: in, Mode: plan.AggMode(r.Intn(3)), Pos: pos()}
			if len(rel) > 0 && r.Intn(2) == 0 {
				a.Groups = []string{rel[0].Name}
			}
			a.Aggs = []plan.AggExpr{{Name: "agg", Func: "sum", Args: []plan.Expr{anyExpr(in, 0)}, T: types.Float64, Sem: types.STPercent}}
			n = a
		case k == 4:
			l, rt := pick(), pick()
			lr, rr := l.Relation(), rt.Relation()
			j := &plan.Join{Left: l, Right: rt, How: plan.JoinType(r.Intn(4)), Pos: pos()}
			if len(lr) > 0 && len(rr) > 0 {
				j.LeftOn, j.RightOn = []string{lr[0].Name}, []string{rr[0].Name}
				j.Output = []plan.JoinColumn{{Side: 0, Name: lr[0].Name, As: "l"}, {Side: 1, Name: rr[len(rr)-1].Name, As: "r"}}
			}
			n = j
		case k == 5:
			n = &plan.Limit{Input: pick(), N: r.Int63n(100), Pos: pos()}
		case k == 6:
			n = &plan.Union{Inputs: []plan.Node{pick(), pick()}, Pos: pos()}
		case k == 7:
			n = &plan.TableFunc{Func: "GetTables", Args: []*plan.Literal{lit(r.Int63())}, Rel: tablefuncs.Lookup("GetTables").Relation, Pos: pos()}
		default:
			if r.Intn(2) == 0 {
				n = &plan.BridgeSource{ID: r.Intn(9), Rel: pick().Relation()}
			} else {
				n = &plan.BridgeSink{Input: pick(), ID: r.Intn(9)}
			}
		}
		nodes = append(nodes, n)
	}
	p := &plan.Plan{Now: r.Int63()}
	for i := 0; i < 1+r.Intn(3); i++ {
		p.Sinks = append(p.Sinks, &plan.Sink{Input: pick(), Name: fmt.Sprintf("o%d", i), Pos: pos()})
	}
	return p
}

// roundTrip checks that p survives Marshal and Unmarshal: the same text,
// the same sharing, and the same bytes when marshaled again.
func roundTrip(t *testing.T, p *plan.Plan) {
	t.Helper()
	b, err := Marshal(p)
	if err != nil {
		t.Fatalf("marshal: %v\n%s", err, plan.Format(p))
	}
	q, err := Unmarshal(b)
	if err != nil {
		t.Fatalf("unmarshal: %v\n%s", err, plan.Format(p))
	}
	if got, want := plan.Format(q), plan.Format(p); got != want {
		t.Fatalf("round trip changed the plan:\n%s\nwant:\n%s", got, want)
	}
	if got, want := nodeCount(q), nodeCount(p); got != want {
		t.Fatalf("round trip has %d distinct nodes, want %d", got, want)
	}
	b2, err := Marshal(q)
	if err != nil {
		t.Fatalf("marshal again: %v", err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("marshal(unmarshal(b)) differs from b")
	}
}

func nodeCount(p *plan.Plan) int {
	n := 0
	plan.Walk(p, func(plan.Node) { n++ })
	return n
}

func TestMarshalRoundTripCorpus(t *testing.T) {
	for i, p := range corpus() {
		t.Run(fmt.Sprint(i), func(t *testing.T) { roundTrip(t, p) })
	}
}

func TestMarshalRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 500; i++ {
		roundTrip(t, randomPlan(r))
	}
}

func TestMarshalDistributed(t *testing.T) {
	ps := corpus()
	d := &Distributed{Node: ps[len(ps)-2], Merge: ps[len(ps)-1]}
	b, err := MarshalDistributed(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalDistributed(b)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Format(got.Node) != plan.Format(d.Node) || plan.Format(got.Merge) != plan.Format(d.Merge) {
		t.Fatalf("distributed round trip changed the fragments")
	}
}

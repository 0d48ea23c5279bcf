// Package workload generates http_events-shaped data for pxq and DuckDB
// and defines the benchmark queries as pxq plans and as SQL.
package workload

import (
	"fmt"
	"math"
	"math/rand"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/internal/plantest"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// Relation is the benchmark table's schema: a subset of http_events plus
// a service column.
var Relation = types.Relation{
	{Name: "time_", Type: types.Time64NS, Semantic: types.STTimeNS},
	{Name: "upid", Type: types.UInt128, Semantic: types.STUPID},
	{Name: "req_path", Type: types.String},
	{Name: "resp_status", Type: types.Int64, Semantic: types.STHTTPRespStatus},
	{Name: "latency", Type: types.Int64, Semantic: types.STDurationNS},
	{Name: "req_body_size", Type: types.Int64, Semantic: types.STBytes},
	{Name: "service", Type: types.String, Semantic: types.STServiceName},
}

// DimRelation is the service → team table that the join query uses.
var DimRelation = types.Relation{
	{Name: "service", Type: types.String},
	{Name: "team", Type: types.String},
}

// NumServices is the number of distinct services.
const NumServices = 20

// Paths is the number of distinct request paths.
const Paths = 1000

// Generate returns n rows in record batches of batch rows, deterministic
// for a seed.
func Generate(n, batch int, seed int64) []arrow.Record {
	r := rand.New(rand.NewSource(seed))
	zipf := rand.NewZipf(r, 1.1, 4, Paths-1)
	paths := make([]string, Paths)
	resources := []string{"users", "orders", "carts", "items", "payments", "sessions", "search", "reviews"}
	for i := range paths {
		paths[i] = fmt.Sprintf("/api/v%d/%s/%d", 1+i%3, resources[i%len(resources)], i)
	}
	services := make([]string, NumServices)
	for i := range services {
		services[i] = fmt.Sprintf("default/svc-%02d", i)
	}
	schema := Relation.ArrowSchema()
	var out []arrow.Record
	ts := int64(1_700_000_000_000_000_000)
	for lo := 0; lo < n; lo += batch {
		m := batch
		if lo+m > n {
			m = n - lo
		}
		times := make([]int64, m)
		upids := make([]byte, 16*m)
		path := funcs.NewStringsBuilder(m, 24)
		status := make([]int64, m)
		lat := make([]int64, m)
		size := make([]int64, m)
		svc := funcs.NewStringsBuilder(m, 16)
		for i := 0; i < m; i++ {
			ts += 100_000
			times[i] = ts
			types.PutUInt128(upids[16*i:], types.UPID(1, uint32(r.Intn(200)), 1))
			p := int(zipf.Uint64())
			path.Append(paths[p])
			switch x := r.Intn(100); {
			case x < 2:
				status[i] = 500
			case x < 5:
				status[i] = 404
			case x < 6:
				status[i] = 301
			default:
				status[i] = 200
			}
			lat[i] = int64(math.Exp(13 + r.NormFloat64()))
			size[i] = int64(r.ExpFloat64() * 800)
			svc.Append(services[p%NumServices])
		}
		cols := []arrow.Array{funcs.NewTimeArray(times), funcs.NewUInt128Array(upids, m), path.Finish(),
			funcs.NewInt64Array(status), funcs.NewInt64Array(lat), funcs.NewInt64Array(size), svc.Finish()}
		out = append(out, array.NewRecord(schema, cols, int64(m)))
	}
	return out
}

// Dim returns the service → team rows.
func Dim() arrow.Record {
	s := funcs.NewStringsBuilder(NumServices, 16)
	t := funcs.NewStringsBuilder(NumServices, 8)
	for i := 0; i < NumServices; i++ {
		s.Append(fmt.Sprintf("default/svc-%02d", i))
		t.Append(fmt.Sprintf("team-%d", i%4))
	}
	return array.NewRecord(DimRelation.ArrowSchema(), []arrow.Array{s.Finish(), t.Finish()}, NumServices)
}

// Store loads the batches into a new table store as tables http_events
// and services.
func Store(recs []arrow.Record) (*table.Store, error) {
	st := table.NewStore(0)
	tb, err := st.Create("http_events", Relation, table.Options{})
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		if err := tb.Append(rec); err != nil {
			return nil, err
		}
	}
	dt, err := st.Create("services", DimRelation, table.Options{})
	if err != nil {
		return nil, err
	}
	return st, dt.Append(Dim())
}

// Query is one benchmark query.
type Query struct {
	Name string
	Desc string
	Plan func() *plan.Plan
	SQL  string
}

func scan(table string, rel types.Relation, cols ...string) *plan.Scan {
	var r types.Relation
	for _, c := range cols {
		r = append(r, rel[rel.Index(c)])
	}
	return &plan.Scan{Table: table, Columns: cols, Rel: r}
}

func c(name string) *plan.Column {
	all := append(append(types.Relation{}, Relation...), DimRelation...)
	col := all[all.Index(name)]
	return &plan.Column{Name: name, T: col.Type, Sem: col.Semantic}
}

func sink(n plan.Node) *plan.Plan {
	return &plan.Plan{Sinks: []*plan.Sink{{Input: n, Name: "output"}}}
}

// Queries are the benchmark's queries.
var Queries = []Query{
	{
		Name: "filter",
		Desc: "rows with resp_status >= 500 and latency > 1 ms (≈0.4%), 3 columns",
		Plan: func() *plan.Plan {
			s := scan("http_events", Relation, "time_", "req_path", "resp_status", "latency")
			f := &plan.Filter{Input: s, Cond: plantest.Call("logicalAnd",
				plantest.Call("greaterThanEqual", c("resp_status"), plantest.Lit(int64(500))),
				plantest.Call("greaterThan", c("latency"), plantest.Lit(int64(1_000_000))))}
			return sink(&plan.Map{Input: f, Exprs: []plan.NamedExpr{{Name: "time_", Expr: c("time_")}, {Name: "req_path", Expr: c("req_path")}, {Name: "latency", Expr: c("latency")}}})
		},
		SQL: `SELECT time_, req_path, latency FROM http_events WHERE resp_status >= 500 AND latency > 1000000`,
	},
	{
		Name: "map",
		Desc: "latency/1e6, req_body_size > 1000, length(req_path) on every row, summed",
		Plan: func() *plan.Plan {
			s := scan("http_events", Relation, "req_path", "latency", "req_body_size")
			m := &plan.Map{Input: s, Exprs: []plan.NamedExpr{
				{Name: "latency_ms", Expr: plantest.Call("divide", c("latency"), plantest.Lit(1e6))},
				{Name: "big", Expr: plantest.Call("greaterThan", c("req_body_size"), plantest.Lit(int64(1000)))},
				{Name: "path_len", Expr: plantest.Call("length", c("req_path"))},
			}}
			lm := &plan.Column{Name: "latency_ms", T: types.Float64}
			big := &plan.Column{Name: "big", T: types.Boolean}
			pl := &plan.Column{Name: "path_len", T: types.Int64}
			return sink(&plan.Aggregate{Input: m, Mode: plan.AggFull, Aggs: []plan.AggExpr{plantest.Agg("ms", "sum", lm), plantest.Agg("big_share", "mean", big), plantest.Agg("chars", "sum", pl)}})
		},
		SQL: `SELECT sum(latency / 1e6), avg(CASE WHEN req_body_size > 1000 THEN 1.0 ELSE 0.0 END), sum(length(req_path)) FROM http_events`,
	},
	{
		Name: "groupby_path",
		Desc: "group by req_path (1000 groups): count, mean(latency)",
		Plan: func() *plan.Plan {
			s := scan("http_events", Relation, "req_path", "latency")
			return sink(&plan.Aggregate{Input: s, Mode: plan.AggFull, Groups: []string{"req_path"},
				Aggs: []plan.AggExpr{plantest.Agg("n", "count", c("latency")), plantest.Agg("mean_latency", "mean", c("latency"))}})
		},
		SQL: `SELECT req_path, count(latency), avg(latency) FROM http_events GROUP BY req_path`,
	},
	{
		Name: "groupby_quantiles",
		Desc: "group by req_path: count, mean(latency), quantiles(latency) (DuckDB: approx_quantile, 7 points)",
		Plan: func() *plan.Plan {
			s := scan("http_events", Relation, "req_path", "latency")
			return sink(&plan.Aggregate{Input: s, Mode: plan.AggFull, Groups: []string{"req_path"},
				Aggs: []plan.AggExpr{plantest.Agg("n", "count", c("latency")), plantest.Agg("mean_latency", "mean", c("latency")), plantest.Agg("q", "quantiles", c("latency"))}})
		},
		SQL: `SELECT req_path, count(latency), avg(latency), approx_quantile(latency, [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]) FROM http_events GROUP BY req_path`,
	},
	{
		Name: "groupby_2keys",
		Desc: "group by service, resp_status (80 groups): count, mean, max of latency",
		Plan: func() *plan.Plan {
			s := scan("http_events", Relation, "service", "resp_status", "latency")
			return sink(&plan.Aggregate{Input: s, Mode: plan.AggFull, Groups: []string{"service", "resp_status"},
				Aggs: []plan.AggExpr{plantest.Agg("n", "count", c("latency")), plantest.Agg("mean_latency", "mean", c("latency")), plantest.Agg("max_latency", "max", c("latency"))}})
		},
		SQL: `SELECT service, resp_status, count(latency), avg(latency), max(latency) FROM http_events GROUP BY service, resp_status`,
	},
	{
		Name: "groupby_int",
		Desc: "group by resp_status (4 groups): count, sum(req_body_size), mean(latency)",
		Plan: func() *plan.Plan {
			s := scan("http_events", Relation, "resp_status", "req_body_size", "latency")
			return sink(&plan.Aggregate{Input: s, Mode: plan.AggFull, Groups: []string{"resp_status"},
				Aggs: []plan.AggExpr{plantest.Agg("n", "count", c("latency")), plantest.Agg("bytes", "sum", c("req_body_size")), plantest.Agg("mean_latency", "mean", c("latency"))}})
		},
		SQL: `SELECT resp_status, count(latency), sum(req_body_size), avg(latency) FROM http_events GROUP BY resp_status`,
	},
	{
		Name: "join",
		Desc: "join every row to services (20 rows) on service, then group by team: count, mean(latency)",
		Plan: func() *plan.Plan {
			l := scan("http_events", Relation, "service", "latency")
			r := scan("services", DimRelation, "service", "team")
			j := &plan.Join{Left: l, Right: r, How: plan.InnerJoin, LeftOn: []string{"service"}, RightOn: []string{"service"},
				Output: []plan.JoinColumn{{Side: 0, Name: "latency", As: "latency"}, {Side: 1, Name: "team", As: "team"}}}
			return sink(&plan.Aggregate{Input: j, Mode: plan.AggFull, Groups: []string{"team"},
				Aggs: []plan.AggExpr{plantest.Agg("n", "count", c("latency")), plantest.Agg("mean_latency", "mean", c("latency"))}})
		},
		SQL: `SELECT team, count(latency), avg(latency) FROM http_events JOIN services USING (service) GROUP BY team`,
	},
	{
		Name: "head",
		Desc: "first 100 rows with resp_status == 200",
		Plan: func() *plan.Plan {
			s := scan("http_events", Relation, "time_", "req_path", "resp_status", "latency")
			f := &plan.Filter{Input: s, Cond: plantest.Call("equal", c("resp_status"), plantest.Lit(int64(200)))}
			return sink(&plan.Limit{Input: f, N: 100})
		},
		SQL: `SELECT time_, req_path, resp_status, latency FROM http_events WHERE resp_status = 200 LIMIT 100`,
	},
}

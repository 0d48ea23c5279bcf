package duck

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// Differential tests of pxq's aggregates and joins against DuckDB on
// random data.

var factRel = types.Relation{
	{Name: "k1", Type: types.Int64},
	{Name: "k2", Type: types.String},
	{Name: "b", Type: types.Boolean},
	{Name: "i", Type: types.Int64},
	{Name: "f", Type: types.Float64},
}

var dimRel = types.Relation{
	{Name: "k1", Type: types.Int64},
	{Name: "k2", Type: types.String},
	{Name: "name", Type: types.String},
	{Name: "w", Type: types.Float64},
}

func randomRecords(r *rand.Rand, rel types.Relation, n, batch int, card int) []arrow.Record {
	var out []arrow.Record
	strs := []string{"", "a", "b", "ab", "/x/y", "ünï", "z z"}
	for lo := 0; lo < n; lo += batch {
		m := min(batch, n-lo)
		cols := make([]arrow.Array, len(rel))
		for k, c := range rel {
			vals := make([]any, m)
			for i := range vals {
				switch c.Type {
				case types.Int64:
					if c.Name == "k1" {
						vals[i] = int64(r.Intn(card))
					} else {
						vals[i] = int64(r.Intn(2_000_000) - 1_000_000)
					}
				case types.String:
					if c.Name == "name" {
						vals[i] = fmt.Sprintf("n%d", r.Intn(1000))
					} else {
						vals[i] = strs[r.Intn(min(card, len(strs)))]
					}
				case types.Boolean:
					vals[i] = r.Intn(3) == 0
				case types.Float64:
					vals[i] = math.Round(r.NormFloat64()*1e4) / 16
				}
			}
			b := newBuilder(c.Type)
			for _, v := range vals {
				b.append(v)
			}
			cols[k] = b.array()
		}
		out = append(out, array.NewRecord(rel.ArrowSchema(), cols, int64(m)))
	}
	return out
}

// builder is a tiny column builder for the test's types.
type builder struct {
	t    types.DataType
	vals []any
}

func newBuilder(t types.DataType) *builder { return &builder{t: t} }
func (b *builder) append(v any)            { b.vals = append(b.vals, v) }
func (b *builder) array() arrow.Array {
	switch b.t {
	case types.Int64:
		x := make([]int64, len(b.vals))
		for i, v := range b.vals {
			x[i] = v.(int64)
		}
		return funcs.NewInt64Array(x)
	case types.Float64:
		x := make([]float64, len(b.vals))
		for i, v := range b.vals {
			x[i] = v.(float64)
		}
		return funcs.NewFloat64Array(x)
	case types.String:
		s := funcs.NewStringsBuilder(len(b.vals), 4)
		for _, v := range b.vals {
			s.Append(v.(string))
		}
		return s.Finish()
	case types.Boolean:
		bits := funcs.BoolBitmap(len(b.vals))
		for i, v := range b.vals {
			funcs.SetBit(bits, i, v.(bool))
		}
		return funcs.NewBoolArray(bits, len(b.vals))
	}
	panic(b.t)
}

func column(rel types.Relation, name string) *plan.Column {
	c := rel[rel.Index(name)]
	return &plan.Column{Name: name, T: c.Type}
}

func aggExpr(name, fn string, arg *plan.Column) plan.AggExpr {
	o, err := funcs.ResolveAgg(fn, []types.DataType{arg.T})
	if err != nil {
		panic(err)
	}
	return plan.AggExpr{Name: name, Func: fn, Args: []plan.Expr{arg}, T: o.Ret}
}

// canon turns a value into a comparable string (floats to 9 significant
// digits, so that summation order does not matter).
func canon(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case float64:
		if x == 0 {
			return "0"
		}
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.9g", x), "0"), ".")
	case float32:
		return canon(float64(x))
	case int32:
		return fmt.Sprint(int64(x))
	case time.Time:
		return fmt.Sprint(x.UnixNano())
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

func canonRows(rows [][]any) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		parts := make([]string, len(r))
		for k, v := range r {
			parts[k] = canon(v)
		}
		out[i] = strings.Join(parts, "|")
	}
	sort.Strings(out)
	return out
}

func pxqRows(t *testing.T, res []exec.Result) [][]any {
	var out [][]any
	for _, rec := range res[0].Records {
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]any, rec.NumCols())
			for k, c := range rec.Columns() {
				row[k] = funcs.ArrayValue(c, i)
			}
			out = append(out, row)
		}
	}
	return out
}

func compare(t *testing.T, what string, got, want [][]any) {
	t.Helper()
	g, w := canonRows(got), canonRows(want)
	if len(g) != len(w) {
		t.Fatalf("%s: pxq %d rows, DuckDB %d", what, len(g), len(w))
	}
	for i := range g {
		if g[i] != w[i] {
			t.Fatalf("%s: row %d differs:\n  pxq    %s\n  DuckDB %s", what, i, g[i], w[i])
		}
	}
}

func setup(t *testing.T, r *rand.Rand, n, card int) (*table.Store, *DB) {
	ctx := context.Background()
	db, err := Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	st := table.NewStore(0)
	for _, tb := range []struct {
		name string
		rel  types.Relation
		recs []arrow.Record
	}{
		{"fact", factRel, randomRecords(r, factRel, n, 1+r.Intn(3000), card)},
		{"dim", dimRel, randomRecords(r, dimRel, 1+r.Intn(60), 17, card+2)},
	} {
		x, err := st.Create(tb.name, tb.rel, table.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range tb.recs {
			if err := x.Append(rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Load(ctx, tb.name, tb.rel, tb.recs); err != nil {
			t.Fatal(err)
		}
	}
	return st, db
}

func scanAll(name string, rel types.Relation) *plan.Scan {
	return &plan.Scan{Table: name, Columns: rel.Names(), Rel: rel}
}

// TestAggregatesAgainstDuckDB groups random data by random keys and
// compares count, sum, mean, min, max (and mean of a boolean) with
// DuckDB's, in full mode and as partial states merged by a final
// aggregate.
func TestAggregatesAgainstDuckDB(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	ctx := context.Background()
	keySets := [][]string{nil, {"k1"}, {"k2"}, {"k1", "k2"}, {"b", "k2"}}
	for trial := 0; trial < 10; trial++ {
		st, db := setup(t, r, r.Intn(60000), 1+r.Intn(50))
		for _, keys := range keySets {
			aggs := []plan.AggExpr{
				aggExpr("n", "count", column(factRel, "i")),
				aggExpr("si", "sum", column(factRel, "i")),
				aggExpr("sf", "sum", column(factRel, "f")),
				aggExpr("mi", "mean", column(factRel, "i")),
				aggExpr("mf", "mean", column(factRel, "f")),
				aggExpr("mb", "mean", column(factRel, "b")),
				aggExpr("sb", "sum", column(factRel, "b")),
				aggExpr("lo", "min", column(factRel, "i")),
				aggExpr("hi", "max", column(factRel, "f")),
			}
			sel := "count(i), sum(i)::BIGINT, sum(f), avg(i), avg(f), avg(b::INT), sum(b::INT)::BIGINT, min(i), max(f)"
			q := "SELECT " + strings.Join(append(append([]string{}, keys...), sel), ", ") + " FROM fact"
			if len(keys) > 0 {
				q += " GROUP BY " + strings.Join(keys, ", ")
			}
			want, err := db.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			// DuckDB gives NULL for sums, means and extremes of no rows; pxq zero.
			for _, row := range want {
				for k, v := range row {
					if v == nil {
						row[k] = 0
					}
				}
			}
			full := &plan.Aggregate{Input: scanAll("fact", factRel), Groups: keys, Aggs: aggs, Mode: plan.AggFull}
			res, err := exec.Collect(ctx, &plan.Plan{Sinks: []*plan.Sink{{Input: full, Name: "o"}}}, exec.Options{Store: st, MaxRowsPerTable: -1})
			if err != nil {
				t.Fatal(err)
			}
			compare(t, fmt.Sprintf("trial %d full by %v", trial, keys), pxqRows(t, res), want)

			part := &plan.Aggregate{Input: scanAll("fact", factRel), Groups: keys, Aggs: aggs, Mode: plan.AggPartial}
			u := &plan.Union{Inputs: []plan.Node{part, &plan.Filter{Input: part, Cond: &plan.Literal{Value: false, T: types.Boolean}}, part}}
			final := &plan.Aggregate{Input: u, Groups: keys, Aggs: aggs, Mode: plan.AggFinal}
			res, err = exec.Collect(ctx, &plan.Plan{Sinks: []*plan.Sink{{Input: final, Name: "o"}}}, exec.Options{Store: st, MaxRowsPerTable: -1})
			if err != nil {
				t.Fatal(err)
			}
			// The union reads the data twice: counts and sums double,
			// means, minima and maxima stay.
			doubled := make([][]any, len(want))
			for i, row := range want {
				d := append([]any(nil), row...)
				for k := len(keys); k < len(d); k++ {
					switch name := aggs[k-len(keys)].Name; name {
					case "n", "si", "sb":
						d[k] = toInt(d[k]) * 2
					case "sf":
						d[k] = toFloat(d[k]) * 2
					}
				}
				doubled[i] = d
			}
			compare(t, fmt.Sprintf("trial %d partial+final by %v", trial, keys), pxqRows(t, res), doubled)
		}
	}
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case float64:
		return int64(x)
	}
	panic(fmt.Sprintf("%T", v))
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case int:
		return float64(x)
	}
	panic(fmt.Sprintf("%T", v))
}

// TestJoinsAgainstDuckDB joins random tables of random key cardinality
// on one or two keys, every join type, and compares with DuckDB (pxq's
// unmatched columns are zero values where DuckDB has NULL).
func TestJoinsAgainstDuckDB(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	ctx := context.Background()
	hows := map[plan.JoinType]string{plan.InnerJoin: "INNER", plan.LeftJoin: "LEFT", plan.RightJoin: "RIGHT", plan.OuterJoin: "FULL OUTER"}
	for trial := 0; trial < 8; trial++ {
		st, db := setup(t, r, r.Intn(5000), 1+r.Intn(15))
		for _, keys := range [][]string{{"k1"}, {"k2"}, {"k1", "k2"}} {
			for how, sqlHow := range hows {
				var on []string
				for _, k := range keys {
					on = append(on, "fact."+k+" = dim."+k)
				}
				q := fmt.Sprintf(`SELECT COALESCE(fact.k1, 0), COALESCE(fact.k2, ''), COALESCE(fact.i, 0), COALESCE(fact.f, 0),
					COALESCE(dim.k1, 0), COALESCE(dim.name, ''), COALESCE(dim.w, 0)
					FROM fact %s JOIN dim ON %s`, sqlHow, strings.Join(on, " AND "))
				want, err := db.Query(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				j := &plan.Join{Left: scanAll("fact", factRel), Right: scanAll("dim", dimRel), How: how, LeftOn: keys, RightOn: keys,
					Output: []plan.JoinColumn{{Side: 0, Name: "k1", As: "k1"}, {Side: 0, Name: "k2", As: "k2"}, {Side: 0, Name: "i", As: "i"}, {Side: 0, Name: "f", As: "f"}, {Side: 1, Name: "k1", As: "k1_y"}, {Side: 1, Name: "name", As: "name"}, {Side: 1, Name: "w", As: "w"}}}
				res, err := exec.Collect(ctx, &plan.Plan{Sinks: []*plan.Sink{{Input: j, Name: "o"}}}, exec.Options{Store: st, MaxRowsPerTable: -1, BatchSize: 1 + r.Intn(3000)})
				if err != nil {
					t.Fatal(err)
				}
				compare(t, fmt.Sprintf("trial %d %s join on %v", trial, sqlHow, keys), pxqRows(t, res), want)
			}
		}
	}
}

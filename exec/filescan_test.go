package exec

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/compress"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"
	"go.uber.org/goleak"

	"github.com/pxq-dev/pxq/internal/plantest"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// Scans of tables held in files, against the reference evaluator and
// counting what they read.

// records turns rows of rel into one record.
func records(t testing.TB, rel types.Relation, rows [][]any) arrow.Record {
	st := table.NewStore(0)
	tb, err := st.Create("x", rel, table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := table.NewWriter(tb)
	w.MaxRows = len(rows) + 1
	for _, r := range rows {
		if err := w.AppendRow(r...); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	var recs []arrow.Record
	for _, b := range tb.Snapshot(0, 0) {
		recs = append(recs, b.Record)
	}
	if len(recs) == 0 {
		return array.NewRecord(rel.ArrowSchema(), emptyColumns(rel), 0)
	}
	return recs[0]
}

func emptyColumns(rel types.Relation) []arrow.Array {
	st := table.NewStore(0)
	tb, _ := st.Create("x", rel, table.Options{})
	w := table.NewWriter(tb)
	zero := map[types.DataType]any{types.Int64: int64(0), types.Time64NS: int64(0), types.Float64: 0.0, types.String: "",
		types.Boolean: false, types.UInt128: types.UInt128Value{}}
	row := make([]any, len(rel))
	for i, c := range rel {
		row[i] = zero[c.Type]
	}
	w.AppendRow(row...)
	w.Flush()
	return tb.Snapshot(0, 0)[0].Record.NewSlice(0, 0).Columns()
}

// writeFile writes rows of rel to path: Parquet in row groups of group
// rows, or an Arrow IPC file in batches of group rows.
func writeFile(t testing.TB, path string, rel types.Relation, rows [][]any, group int) {
	t.Helper()
	if strings.HasSuffix(path, ".arrow") {
		var recs []arrow.Record
		for lo := 0; lo < len(rows); lo += group {
			recs = append(recs, records(t, rel, rows[lo:min(lo+group, len(rows))]))
		}
		if err := table.WriteFile(path, rel, recs); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// Snappy: zstd's encoder costs more to start than these files take
	// to write (the table package's tests read zstd).
	props := parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(int64(group)), parquet.WithCompression(compress.Codecs.Snappy))
	w, err := pqarrow.NewFileWriter(rel.ArrowSchema(), f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(records(t, rel, rows)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// fileStore returns a store whose table t holds rows in files (split in
// nfiles, units of group rows), the last memRows of them in memory, and
// whose table d holds d's rows in memory.
func fileStore(t testing.TB, dir string, db plantest.DB, nfiles, group, memRows int, ipc bool) (*table.Store, *table.FileTable) {
	st := table.NewStore(0)
	rows := db["t"].Rows
	onDisk := rows[:len(rows)-memRows]
	var paths []string
	per := (len(onDisk) + nfiles - 1) / max(nfiles, 1)
	for i := 0; i < nfiles; i++ {
		lo, hi := min(i*per, len(onDisk)), min((i+1)*per, len(onDisk))
		ext := ".parquet"
		if ipc && i%2 == 1 {
			ext = ".arrow"
		}
		p := filepath.Join(dir, fmt.Sprintf("t-%03d%s", i, ext))
		writeFile(t, p, testRel(), onDisk[lo:hi], group)
		paths = append(paths, p)
	}
	ft, err := table.OpenFiles(paths, testRel())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AttachFiles("t", ft); err != nil {
		t.Fatal(err)
	}
	fill(st, "t", &plantest.Table{Rel: testRel(), Rows: rows[len(onDisk):]}, 1+memRows/3)
	fill(st, "d", db["d"], 5)
	return st, ft
}

// TestRandomPlansOverFiles runs random plans over a table held in files
// (Parquet, Arrow IPC, and some rows in memory), with 1 to 4 goroutines,
// against the reference evaluator.
func TestRandomPlansOverFiles(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r := rand.New(rand.NewSource(21))
	parallel := 0
	for trial := 0; trial < 200; trial++ {
		_, db := testData(r, 1+r.Intn(3000))
		if r.Intn(2) == 0 {
			// Sorted by k1, row groups have narrow k1 ranges that
			// filters skip.
			rows := db["t"].Rows
			sort.SliceStable(rows, func(i, j int) bool { return rows[i][1].(int64) < rows[j][1].(int64) })
		}
		memRows := 0
		if r.Intn(4) == 0 {
			memRows = r.Intn(len(db["t"].Rows))
		}
		st, ft := fileStore(t, t.TempDir(), db, 1+r.Intn(3), 16+r.Intn(500), memRows, r.Intn(3) == 0)
		g := &planGen{r: r}
		root := g.node(1 + r.Intn(3))
		p := &plan.Plan{Sinks: []*plan.Sink{{Input: root, Name: "out"}}}
		opts := Options{Store: st, MaxRowsPerTable: -1, BatchSize: 1 + r.Intn(2000), Parallelism: 1 + r.Intn(4)}
		if opts.Parallelism > 1 {
			parallel++
		}
		res, err := Collect(context.Background(), p, opts)
		if err != nil {
			t.Fatalf("trial %d: %v\n%s", trial, err, plan.Format(p))
		}
		if err := plantest.SameRows(rowsOf(res), plantest.Eval(t, db, root)); err != nil {
			t.Fatalf("trial %d (parallelism %d, %d units): %v\n%s", trial, opts.Parallelism, len(ft.Units()), err, plan.Format(p))
		}
		ft.Close()
	}
	t.Logf("%d trials with several goroutines", parallel)
}

// TestFileScanReadsOnlyWhatItNeeds counts the units and column chunks
// scans decode: filters and time ranges skip row groups by their
// statistics, limits stop early, counts read none.
func TestFileScanReadsOnlyWhatItNeeds(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r := rand.New(rand.NewSource(3))
	_, db := testData(r, 2000)
	rows := db["t"].Rows
	sort.SliceStable(rows, func(i, j int) bool { return rows[i][1].(int64) < rows[j][1].(int64) })
	const group = 100
	// The row groups whose rows satisfy ok, from the rows themselves.
	groupsWhere := func(rows [][]any, ok func(row []any) bool) int64 {
		var n int64
		for lo := 0; lo < len(rows); lo += group {
			for _, row := range rows[lo:min(lo+group, len(rows))] {
				if ok(row) {
					n++
					break
				}
			}
		}
		return n
	}
	run := func(name string, st *table.Store, ft *table.FileTable, db plantest.DB, root plan.Node, units, chunks int64) {
		t.Helper()
		for _, par := range []int{1, 3} {
			before := ft.Reads()
			p := &plan.Plan{Sinks: []*plan.Sink{{Input: root, Name: "out"}}}
			res, err := Collect(context.Background(), p, Options{Store: st, MaxRowsPerTable: -1, Parallelism: par})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if err := plantest.SameRows(rowsOf(res), plantest.Eval(t, db, root)); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got := ft.Reads()
			if u, c := got.Units-before.Units, got.Chunks-before.Chunks; u != units || c != chunks {
				t.Errorf("%s (parallelism %d): read %d units, %d chunks; want %d, %d", name, par, u, c, units, chunks)
			}
		}
	}
	st, ft := fileStore(t, t.TempDir(), db, 1, group, 0, false)
	defer ft.Close()
	if n := len(ft.Units()); n != 20 {
		t.Fatalf("%d units, want 20", n)
	}
	rel := testRel()
	k1, v := plantest.Col(rel, "k1"), plantest.Col(rel, "v")

	s := plantest.Scan("t", rel, "k1", "v")
	s.Filter = plantest.Call("equal", k1, plantest.Lit(int64(3)))
	n := groupsWhere(rows, func(row []any) bool { return row[1] == int64(3) })
	run("k1 == 3", st, ft, db, s, n, 2*n)

	s = plantest.Scan("t", rel, "v")
	s.Filter = plantest.Call("logicalOr", plantest.Call("lessThan", k1, plantest.Lit(int64(2))), plantest.Call("greaterThan", k1, plantest.Lit(int64(8))))
	n = groupsWhere(rows, func(row []any) bool { return row[1].(int64) < 2 || row[1].(int64) > 8 })
	run("k1 < 2 or k1 > 8", st, ft, db, s, n, 2*n)

	// A filter that holds everywhere skips nothing and reads its column.
	s = plantest.Scan("t", rel, "v")
	s.Filter = plantest.Call("greaterThanEqual", k1, plantest.Lit(int64(0)))
	run("k1 >= 0", st, ft, db, s, 20, 40)

	s = plantest.Scan("t", rel, "k2")
	s.Limit = 10
	run("limit 10", st, ft, db, s, 1, 1)

	count := &plan.Aggregate{Input: plantest.Scan("t", rel, "k1"), Mode: plan.AggFull,
		Aggs: []plan.AggExpr{plantest.Agg("n", "count", k1), plantest.Agg("m", "count", k1)}}
	run("count", st, ft, db, count, 0, 0)

	// Sorted by time: a time range reads the row groups it overlaps, and
	// time_ only of those it cuts.
	_, db = testData(r, 2000)
	rows = db["t"].Rows
	st, ft = fileStore(t, t.TempDir(), db, 1, group, 0, false)
	defer ft.Close()
	start, end := rows[250][0].(int64), rows[1130][0].(int64)
	s = plantest.Scan("t", rel, "v")
	s.Start, s.End = start, end
	n = groupsWhere(rows, func(row []any) bool { ts := row[0].(int64); return ts >= start && ts < end })
	run("time range", st, ft, db, s, n, 2*n)

	// Counting, the row groups the range cuts read time_, those inside
	// it none.
	count = &plan.Aggregate{Input: s, Mode: plan.AggFull, Aggs: []plan.AggExpr{plantest.Agg("n", "count", v)}}
	var cut int64
	for lo := 0; lo < len(rows); lo += group {
		in, out := false, false
		for _, row := range rows[lo:min(lo+group, len(rows))] {
			ts := row[0].(int64)
			in, out = in || ts >= start && ts < end, out || ts < start || ts >= end
		}
		if in && out {
			cut++
		}
	}
	if cut == 0 {
		t.Fatal("the time range cuts no row group")
	}
	run("count over a time range", st, ft, db, count, cut, cut)

	// A group-by over every row group, on several goroutines.
	agg := &plan.Aggregate{Input: plantest.Filter(plantest.Scan("t", rel, "k2", "v", "f"), plantest.Call("lessThan", v, plantest.Lit(int64(90000)))),
		Mode: plan.AggFull, Groups: []string{"k2"},
		Aggs: []plan.AggExpr{plantest.Agg("n", "count", v), plantest.Agg("s", "sum", plantest.Col(rel, "f")), plantest.Agg("x", "max", v)}}
	run("group by", st, ft, db, agg, 20, 60)
}

// TestExplainScans shows the columns and row groups a scan will read.
func TestExplainScans(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	_, db := testData(r, 2000)
	rows := db["t"].Rows
	sort.SliceStable(rows, func(i, j int) bool { return rows[i][1].(int64) < rows[j][1].(int64) })
	st, ft := fileStore(t, t.TempDir(), db, 2, 100, 0, false)
	defer ft.Close()
	rel := testRel()
	s := plantest.Scan("t", rel, "k1", "v")
	s.Filter = plantest.Call("equal", plantest.Col(rel, "k1"), plantest.Lit(int64(3)))
	text, err := ExplainScans(&plan.Plan{Sinks: []*plan.Sink{{Input: s, Name: "out"}}}, st)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text, "Scan(t): 2 of 7 columns (k1, v), ") || !strings.Contains(text, " of 20 units") || !strings.Contains(text, "t-000.parquet: ") {
		t.Errorf("explain:\n%s", text)
	}
}

// TestCodedGroupKeys: a group-by on string columns of a file scan, passed
// through a map and a filter, counted, with rows in memory too, groups
// by codes (keysOp on top) and gives the reference's rows, with one
// goroutine or several.
func TestCodedGroupKeys(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r := rand.New(rand.NewSource(8))
	_, db := testData(r, 3000)
	st, ft := fileStore(t, t.TempDir(), db, 2, 400, 500, true)
	defer ft.Close()
	rel := testRel()
	s := plantest.Scan("t", rel, "k1", "k2", "v")
	s.Filter = plantest.Call("lessThan", plantest.Col(rel, "v"), plantest.Lit(int64(80000)))
	m := &plan.Map{Input: s, Exprs: []plan.NamedExpr{{Name: "key", Expr: plantest.Col(rel, "k2")}, {Name: "k1", Expr: plantest.Col(rel, "k1")},
		{Name: "v2", Expr: plantest.Call("multiply", plantest.Col(rel, "v"), plantest.Lit(int64(2)))}}}
	f := plantest.Filter(m, plantest.Call("greaterThan", plantest.Col(m.Relation(), "k1"), plantest.Lit(int64(1))))
	mrel := f.Relation()
	agg := &plan.Aggregate{Input: f, Mode: plan.AggFull, Groups: []string{"key", "k1"},
		Aggs: []plan.AggExpr{plantest.Agg("n", "count", plantest.Col(mrel, "key")), plantest.Agg("s", "sum", plantest.Col(mrel, "v2"))}}
	p := &plan.Plan{Sinks: []*plan.Sink{{Input: agg, Name: "out"}}}
	for _, par := range []int{1, 3} {
		q := newQuery(0, Options{Store: st, Parallelism: par})
		q.countParents(p.Sinks[0])
		op, err := q.buildNode(agg)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := op.(*guard).op.(*keysOp); !ok {
			t.Errorf("parallelism %d: %T, not a coded aggregate", par, op.(*guard).op)
		}
		op.close()
		res, err := Collect(context.Background(), p, Options{Store: st, MaxRowsPerTable: -1, Parallelism: par})
		if err != nil {
			t.Fatal(err)
		}
		if err := plantest.SameRows(rowsOf(res), plantest.Eval(t, db, agg)); err != nil {
			t.Fatalf("parallelism %d: %v", par, err)
		}
	}
}

// TestParallelJoinChain: an aggregate over a join whose probe side scans
// files and whose build side is a small table runs per part: the build
// side is built for each part, the aggregate split partial/final.
func TestParallelJoinChain(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r := rand.New(rand.NewSource(9))
	_, db := testData(r, 4000)
	st, ft := fileStore(t, t.TempDir(), db, 2, 500, 300, false)
	defer ft.Close()
	rel, drel := testRel(), testDRel()
	for _, how := range []plan.JoinType{plan.InnerJoin, plan.LeftJoin} {
		j := &plan.Join{Left: plantest.Scan("t", rel, "k1", "v"), Right: plantest.Scan("d", drel, "k1", "name"), How: how,
			LeftOn: []string{"k1"}, RightOn: []string{"k1"},
			Output: []plan.JoinColumn{{Side: 0, Name: "v", As: "v"}, {Side: 1, Name: "name", As: "name"}}}
		agg := &plan.Aggregate{Input: j, Mode: plan.AggFull, Groups: []string{"name"},
			Aggs: []plan.AggExpr{plantest.Agg("n", "count", plantest.Col(j.Relation(), "v")), plantest.Agg("s", "sum", plantest.Col(j.Relation(), "v"))}}
		p := &plan.Plan{Sinks: []*plan.Sink{{Input: agg, Name: "out"}}}
		q := newQuery(0, Options{Store: st, Parallelism: 3})
		q.countParents(p.Sinks[0])
		op, err := q.buildNode(agg)
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := op.(*guard).op.(*aggregateOp); !ok || a.node.Mode != plan.AggFinal {
			t.Errorf("%v join: %T, not a final aggregate over parts", how, op.(*guard).op)
		}
		op.close()
		for _, par := range []int{1, 3} {
			res, err := Collect(context.Background(), p, Options{Store: st, MaxRowsPerTable: -1, Parallelism: par})
			if err != nil {
				t.Fatal(err)
			}
			if err := plantest.SameRows(rowsOf(res), plantest.Eval(t, db, agg)); err != nil {
				t.Fatalf("%v join, parallelism %d: %v", how, par, err)
			}
		}
	}
}

package exec

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// A scan of a table whose rows are in files (table.FileTable: `pxq run
// --table`, captures) reads, of the units of its files (Parquet row
// groups, Arrow record batches), only those its time range and filter
// may keep by the units' statistics, and of those only the columns the
// plan needs; then it reads the table's in-memory batches, if any. It
// streams: batches flow on as units decode. Without a limit, units
// decode on several goroutines (Options.Parallelism) and their batches
// come out in unit order, so the rows are those of a sequential scan in
// the same order; with a limit it reads one unit at a time, page by page,
// and stops when the limit is reached.

// filePlan is what a scan of a table with files reads, decided when the
// operator is built (Explain shows the same).
type filePlan struct {
	scan  *plan.Scan
	table *table.Table
	out   types.Relation // the scan's output
	// codes are the string columns that come as codes (dictkeys.go);
	// strOut is out with those columns as strings.
	codes   map[string]*table.Dict
	strOut  types.Relation
	readRel types.Relation // the columns decoded from files, in table order
	readIdx []int          // their indices in the table's relation
	parts   []filePart
	// For Explain: the units of the files, and bytes of the columns read
	// of the units read, and of the files.
	units, fileCount int
	bytes, size      int64
}

// filePart is one piece a file scan reads: a unit of a file, or (after
// those) a run of the table's in-memory batches.
type filePart struct {
	ft          *table.FileTable
	unit        int   // index into ft.Units()
	minT, maxT  int64 // time_ range (unknownMin/Max when not known)
	filterHolds bool  // the filter holds on every row of the unit
	mem         []table.Batch
}

func (q *query) planFileScan(n *plan.Scan, t *table.Table) (*filePlan, error) {
	trel := t.Relation()
	_, out, err := scanColumns(n, trel)
	if err != nil {
		return nil, err
	}
	fp := &filePlan{scan: n, table: t, out: out, strOut: out, codes: q.coded[n]}
	if fp.codes != nil {
		fp.out = retype(out, codedNames(fp.codes))
	}
	need := map[string]bool{}
	for _, c := range out {
		need[c.Name] = true
	}
	if n.Filter != nil {
		for _, c := range plan.Columns(n.Filter) {
			need[c] = true
		}
	}
	timeIdx := trel.Index("time_")
	if timeIdx >= 0 && trel[timeIdx].Type != types.Time64NS {
		timeIdx = -1
	}
	cutByTime := false // some unit read holds rows outside [Start, End)
	for _, ft := range t.Files() {
		fp.fileCount += ft.Files()
		fp.size += ft.Size()
		for ui, u := range ft.Units() {
			fp.units++
			if u.Rows == 0 {
				continue
			}
			part := filePart{ft: ft, unit: ui, minT: unknownMin, maxT: unknownMax}
			if timeIdx >= 0 && u.Stats[timeIdx].Known {
				part.minT, part.maxT = u.Stats[timeIdx].Min.(int64), u.Stats[timeIdx].Max.(int64)
				if (n.Start > 0 && part.maxT < n.Start) || (n.End > 0 && part.minT >= n.End) {
					continue
				}
			}
			if n.Filter != nil {
				stats := func(col string) (table.ColumnStats, types.DataType, bool) {
					i := trel.Index(col)
					if i < 0 {
						return table.ColumnStats{}, 0, false
					}
					return u.Stats[i], trel[i].Type, true
				}
				canTrue, canFalse := outcomes(n.Filter, stats)
				if !canTrue {
					continue
				}
				part.filterHolds = !canFalse
			}
			if timeIdx >= 0 && ((n.Start > 0 && part.minT < n.Start) || (n.End > 0 && part.maxT >= n.End)) {
				cutByTime = true
			}
			fp.parts = append(fp.parts, part)
		}
	}
	if cutByTime {
		need["time_"] = true
	}
	for i, c := range trel {
		if need[c.Name] {
			if fp.codes[c.Name] != nil {
				c.Type = types.Int64
			}
			fp.readRel = append(fp.readRel, c)
			fp.readIdx = append(fp.readIdx, i)
		}
	}
	for _, p := range fp.parts {
		u := p.ft.Units()[p.unit]
		for _, i := range fp.readIdx {
			if u.Bytes != nil {
				fp.bytes += u.Bytes[i]
			}
		}
	}
	// The in-memory batches, in parts of about memPartRows, which a
	// parallel chain runs on several goroutines.
	mem := t.Snapshot(n.Start, n.End)
	for len(mem) > 0 {
		k, rows := 0, int64(0)
		for k < len(mem) && rows < memPartRows {
			rows += mem[k].Record.NumRows()
			k++
		}
		fp.parts = append(fp.parts, filePart{mem: mem[:k:k]})
		mem = mem[k:]
	}
	return fp, nil
}

// memPartRows is about the rows of a part of a table's in-memory
// batches: as many as a row group of pxq's files (its Parquet writer's
// and the benchmark's), so that a part's partial aggregate is worth its
// merge.
var memPartRows int64 = 1 << 20 // a variable for tests

// scanKit is what one goroutine needs to read parts of a file scan:
// evaluators keep scratch space, so each goroutine has its own.
type scanKit struct {
	q        *query
	fp       *filePlan
	filePick *rowPicker // over fp.readRel
	memPick  *rowPicker // over the table's relation
	opts     table.ReadOptions
	// outSchema is the scan's output with its coded columns (when it
	// has some).
	outSchema *arrow.Schema
}

func (q *query) newScanKit(fp *filePlan) (*scanKit, error) {
	k := &scanKit{q: q, fp: fp}
	var err error
	if k.filePick, err = q.newRowPicker(fp.scan, fp.readRel, fp.out); err != nil {
		return nil, err
	}
	if k.memPick, err = q.newRowPicker(fp.scan, fp.table.Relation(), fp.strOut); err != nil {
		return nil, err
	}
	k.opts = table.ReadOptions{BatchRows: q.opts.BatchSize, Incremental: fp.scan.Limit > 0}
	if fp.codes != nil {
		k.opts.Codes = make([]*table.Dict, len(fp.readRel))
		for i, c := range fp.readRel {
			k.opts.Codes[i] = fp.codes[c.Name]
		}
		k.outSchema = fp.out.ArrowSchema()
	}
	return k, nil
}

// code turns the coded columns of an in-memory batch's rows (picked as
// strings) into codes.
func (k *scanKit) code(rec arrow.Record) arrow.Record {
	cols := append([]arrow.Array(nil), rec.Columns()...)
	for i, c := range k.fp.out {
		if d := k.fp.codes[c.Name]; d != nil {
			cols[i] = d.CodeArray(cols[i])
		}
	}
	return newRecord(k.outSchema, cols, rec.NumRows())
}

func codedNames(codes map[string]*table.Dict) map[string]bool {
	out := map[string]bool{}
	for name := range codes {
		out[name] = true
	}
	return out
}

// partReader is the operator reading one part of a file scan.
type partReader struct {
	kit  *scanKit
	part *filePart
	r    table.UnitReader
	mem  int // next in-memory batch
}

func (k *scanKit) reader(p *filePart) *partReader { return &partReader{kit: k, part: p} }

func (p *partReader) next(ctx context.Context) (arrow.Record, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if p.part.mem != nil {
			if p.mem >= len(p.part.mem) {
				return nil, nil
			}
			b := p.part.mem[p.mem]
			p.mem++
			rec, err := p.kit.memPick.pick(b.Record, b.MinTime, b.MaxTime, false)
			if err != nil {
				return nil, err
			}
			if rec != nil && rec.NumRows() > 0 {
				if p.kit.fp.codes != nil {
					rec = p.kit.code(rec)
				}
				return rec, nil
			}
			continue
		}
		if p.r == nil {
			r, err := p.part.ft.Open(p.part.unit, p.kit.fp.readIdx, p.kit.opts)
			if err != nil {
				return nil, err
			}
			p.r = r
		}
		rec, err := p.r.Next()
		if err != nil || rec == nil {
			return nil, err
		}
		out, err := p.kit.filePick.pick(rec, p.part.minT, p.part.maxT, p.part.filterHolds)
		if err != nil {
			return nil, err
		}
		if out != nil && out.NumRows() > 0 {
			return out, nil
		}
	}
}

func (p *partReader) close() {
	if p.r != nil {
		p.r.Close()
		p.r = nil
	}
	p.part = &filePart{mem: []table.Batch{}}
}

// fileScanOp reads the parts of a file scan in order: one at a time
// under a limit, through a pump otherwise.
type fileScanOp struct {
	name   string
	kit    *scanKit
	pump   *pump // nil: one part at a time
	parts  []filePart
	pos    int
	cur    *partReader
	left   int64 // rows still allowed by Limit (-1: no limit)
	schema *arrow.Schema
}

func (q *query) newFileScan(n *plan.Scan, t *table.Table) (operator, error) {
	fp, err := q.planFileScan(n, t)
	if err != nil {
		return nil, err
	}
	kit, err := q.newScanKit(fp)
	if err != nil {
		return nil, err
	}
	s := &fileScanOp{name: opName(n), kit: kit, parts: fp.parts, left: -1, schema: fp.out.ArrowSchema()}
	if n.Limit > 0 {
		s.left = n.Limit
		return s, nil
	}
	if w := min(q.workers, len(fp.parts)); w > 1 {
		kits := []*scanKit{kit}
		for len(kits) < w {
			k, err := q.newScanKit(fp)
			if err != nil {
				return nil, err
			}
			kits = append(kits, k)
		}
		s.pump = newPump(len(fp.parts), w, func(ctx context.Context, w, i int, emit func(arrow.Record) error) error {
			r := kits[w].reader(&fp.parts[i])
			defer r.close()
			for {
				rec, err := r.next(ctx)
				if err != nil || rec == nil {
					return err
				}
				if err := emit(rec); err != nil {
					return err
				}
			}
		})
	}
	return s, nil
}

func (s *fileScanOp) next(ctx context.Context) (arrow.Record, error) {
	if s.pump != nil {
		rec, err := s.pump.next(ctx)
		if err != nil {
			return nil, fmt.Errorf("exec: %s: %w", s.name, err)
		}
		return rec, nil
	}
	for s.left != 0 {
		if s.cur == nil {
			if s.pos >= len(s.parts) {
				return nil, nil
			}
			s.cur = s.kit.reader(&s.parts[s.pos])
			s.pos++
		}
		rec, err := s.cur.next(ctx)
		if err != nil {
			return nil, fmt.Errorf("exec: %s: %w", s.name, err)
		}
		if rec == nil {
			s.cur.close()
			s.cur = nil
			continue
		}
		if s.left > 0 {
			if rec.NumRows() > s.left {
				rec = sliceRecord(s.schema, rec, 0, s.left)
			}
			s.left -= rec.NumRows()
		}
		return rec, nil
	}
	return nil, nil
}

func (s *fileScanOp) close() {
	if s.pump != nil {
		s.pump.close()
	}
	if s.cur != nil {
		s.cur.close()
		s.cur = nil
	}
	s.pos = len(s.parts)
}

// countOnly returns the scan under a full aggregate that only counts rows
// of a table with files, when the files' row counts can answer it.
func (q *query) countOnly(a *plan.Aggregate) *plan.Scan {
	if a.Mode != plan.AggFull || len(a.Groups) > 0 || len(a.Aggs) == 0 {
		return nil
	}
	for _, x := range a.Aggs {
		if x.Func != "count" || len(x.Args) != 1 || x.T != types.Int64 {
			return nil
		}
		if _, ok := x.Args[0].(*plan.Column); !ok {
			return nil
		}
	}
	s, ok := a.Input.(*plan.Scan)
	if !ok || s.Filter != nil || s.Limit > 0 || q.parents[s] > 1 || q.opts.Store == nil {
		return nil
	}
	if t := q.opts.Store.Table(s.Table); t == nil || len(t.Files()) == 0 {
		return nil
	}
	return s
}

// newFileCount answers an aggregate of counts over a scan (countOnly)
// from the units' row counts, reading only time_, and only of the units
// the time range cuts.
func (q *query) newFileCount(a *plan.Aggregate, s *plan.Scan) (operator, error) {
	t, err := q.scanTable(s)
	if err != nil {
		return nil, err
	}
	// Count the rows of a scan of time_ alone (or of nothing).
	cs := *s
	cs.Columns, cs.Rel = nil, nil
	if i := t.Relation().Index("time_"); i >= 0 {
		cs.Columns, cs.Rel = []string{"time_"}, t.Relation()[i:i+1]
	}
	fp, err := q.planFileScan(&cs, t)
	if err != nil {
		return nil, err
	}
	return &countOp{q: q, name: opName(a), fp: fp, schema: a.Relation().ArrowSchema()}, nil
}

type countOp struct {
	q      *query
	name   string
	fp     *filePlan
	schema *arrow.Schema
	done   bool
}

func (c *countOp) next(ctx context.Context) (arrow.Record, error) {
	if c.done {
		return nil, nil
	}
	c.done = true
	kit, err := c.q.newScanKit(c.fp)
	if err != nil {
		return nil, err
	}
	n := c.fp.scan
	timed := c.fp.table.Relation().Index("time_") >= 0
	var rows int64
	for i := range c.fp.parts {
		p := &c.fp.parts[i]
		inside := !timed || (n.Start <= 0 || p.minT >= n.Start) && (n.End <= 0 || p.maxT < n.End)
		if p.mem == nil && inside {
			rows += p.ft.Units()[p.unit].Rows
			continue
		}
		r := kit.reader(p)
		for {
			rec, err := r.next(ctx)
			if err != nil {
				r.close()
				return nil, fmt.Errorf("exec: %s: %w", c.name, err)
			}
			if rec == nil {
				break
			}
			rows += rec.NumRows()
		}
		r.close()
	}
	cols := make([]arrow.Array, c.schema.NumFields())
	for i := range cols {
		cols[i] = constInt64(rows)
	}
	return newRecord(c.schema, cols, 1), nil
}

func (c *countOp) close() { c.done = true }

func constInt64(v int64) arrow.Array { return funcs.NewInt64Array([]int64{v}) }

// ExplainScans describes, for every scan of p over a table of store with
// files, what it reads: which columns of how many units, how many bytes.
// It returns "" when p scans no files.
func ExplainScans(p *plan.Plan, store *table.Store) (string, error) {
	q := newQuery(p.Now, Options{Store: store})
	for _, s := range p.Sinks {
		q.countParents(s)
	}
	var b strings.Builder
	var err error
	plan.Walk(p, func(n plan.Node) {
		if err != nil {
			return
		}
		if a, ok := n.(*plan.Aggregate); ok {
			if s := q.countOnly(a); s != nil {
				fmt.Fprintf(&b, "%s: counts rows from the files' row counts (reads time_ only of the units its time range cuts)\n", opName(a))
			}
			return
		}
		s, ok := n.(*plan.Scan)
		if !ok {
			return
		}
		t := store.Table(s.Table)
		if t == nil || len(t.Files()) == 0 {
			return
		}
		var fp *filePlan
		if fp, err = q.planFileScan(s, t); err != nil {
			return
		}
		fp.describe(&b, opName(s))
	})
	return b.String(), err
}

// describe writes what the scan reads, in a line or two.
func (fp *filePlan) describe(b *strings.Builder, name string) {
	read := 0
	byFile := map[string][]int{}
	var paths []string
	for _, p := range fp.parts {
		if p.mem != nil {
			continue
		}
		read++
		u := p.ft.Units()[p.unit]
		if _, ok := byFile[u.File]; !ok {
			paths = append(paths, u.File)
		}
		byFile[u.File] = append(byFile[u.File], u.Index)
	}
	names := fp.readRel.Names()
	if len(names) > 8 {
		names = append(names[:8:8], "…")
	}
	files := "1 file"
	if fp.fileCount != 1 {
		files = fmt.Sprintf("%d files", fp.fileCount)
	}
	fmt.Fprintf(b, "%s: %d of %d columns (%s), %d of %d units (row groups or record batches) of %s, %s of %s",
		name, len(fp.readRel), len(fp.table.Relation()), strings.Join(names, ", "),
		read, fp.units, files, byteSize(fp.bytes), byteSize(fp.size))
	if fp.scan.Limit > 0 {
		fmt.Fprintf(b, " at most: it reads page by page and stops after %d rows", fp.scan.Limit)
	}
	b.WriteString("\n")
	if read < fp.units {
		sort.Strings(paths)
		for _, f := range paths {
			fmt.Fprintf(b, "  %s: %s\n", f, ranges(byFile[f]))
		}
	}
}

// ranges renders sorted indices as "0-3 7 9-10".
func ranges(xs []int) string {
	var parts []string
	for i := 0; i < len(xs); {
		j := i
		for j+1 < len(xs) && xs[j+1] == xs[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, fmt.Sprint(xs[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", xs[i], xs[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, " ")
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

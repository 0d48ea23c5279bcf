package exec

import (
	"context"
	"fmt"
	"math"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// scanOp reads a table's in-memory batches, from a snapshot taken when
// the operator is built: rows of [Start, End) on time_, where the
// pushed-down filter holds, at most Limit of them, with the plan's
// columns in the plan's order. A table whose rows are (also) in files
// is read by a fileScanOp (filescan.go).
type scanOp struct {
	name    string
	batches []table.Batch
	pos     int
	pick    *rowPicker
	left    int64 // rows still allowed by Limit (-1: no limit)
}

func (q *query) newScan(n *plan.Scan) (operator, error) {
	name := opName(n)
	t, err := q.scanTable(n)
	if err != nil {
		return nil, err
	}
	if len(t.Files()) > 0 {
		return q.newFileScan(n, t)
	}
	trel := t.Relation()
	_, out, err := scanColumns(n, trel)
	if err != nil {
		return nil, err
	}
	pick, err := q.newRowPicker(n, trel, out)
	if err != nil {
		return nil, err
	}
	s := &scanOp{name: name, pick: pick, left: -1}
	if n.Limit > 0 {
		s.left = n.Limit
	}
	s.batches = t.Snapshot(n.Start, n.End)
	return s, nil
}

// scanTable returns the table a scan reads.
func (q *query) scanTable(n *plan.Scan) (*table.Table, error) {
	name := opName(n)
	if q.opts.Store == nil {
		return nil, fmt.Errorf("exec: %s: no table store", name)
	}
	t := q.opts.Store.Table(n.Table)
	if t == nil {
		var names []string
		for _, t := range q.opts.Store.Tables() {
			names = append(names, t.Name())
		}
		return nil, fmt.Errorf("exec: %s: no table %q (tables: %v)", name, n.Table, names)
	}
	return t, nil
}

// scanColumns returns the columns a scan outputs: their names and their
// relation (the table's types with the plan's semantic types).
func scanColumns(n *plan.Scan, trel types.Relation) ([]string, types.Relation, error) {
	names := n.Columns
	if len(names) == 0 {
		names = n.Rel.Names()
	}
	if len(names) == 0 {
		names = trel.Names()
	}
	out := make(types.Relation, len(names))
	for i, c := range names {
		j := trel.Index(c)
		if j < 0 {
			return nil, nil, fmt.Errorf("exec: %s: table %s has no column %q (it has %v)", opName(n), n.Table, c, trel.Names())
		}
		out[i] = trel[j]
		if k := n.Rel.Index(c); k >= 0 {
			out[i].Semantic = n.Rel[k].Semantic
		}
	}
	return names, out, nil
}

func (s *scanOp) next(ctx context.Context) (arrow.Record, error) {
	for s.pos < len(s.batches) && s.left != 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := s.batches[s.pos]
		s.pos++
		rec, err := s.pick.pick(b.Record, b.MinTime, b.MaxTime, false)
		if err != nil {
			return nil, fmt.Errorf("exec: %s: %w", s.name, err)
		}
		if rec == nil || rec.NumRows() == 0 {
			continue
		}
		if s.left > 0 {
			if rec.NumRows() > s.left {
				rec = sliceRecord(s.pick.schema, rec, 0, s.left)
			}
			s.left -= rec.NumRows()
		}
		return rec, nil
	}
	return nil, nil
}

func (s *scanOp) close() { s.batches, s.pos = nil, 0 }

// rowPicker selects a scan's rows and columns out of records of a
// relation rel: the table's, or the columns a file scan decoded.
type rowPicker struct {
	q          *query
	start, end int64
	timeCol    int       // in rel, -1 when there is none
	filter     evaluator // over rel
	cols       []int     // output column i is rel's column cols[i]
	schema     *arrow.Schema
	sel        []int32
	fsel       []int32 // the filter's selection, reused across batches
}

// newRowPicker makes the picker of scan n over records of rel, whose
// output is out (columns of rel, by name).
func (q *query) newRowPicker(n *plan.Scan, rel, out types.Relation) (*rowPicker, error) {
	p := &rowPicker{q: q, start: n.Start, end: n.End, timeCol: -1, schema: out.ArrowSchema()}
	for _, c := range out {
		p.cols = append(p.cols, rel.Index(c.Name))
	}
	if i := rel.Index("time_"); i >= 0 && rel[i].Type == types.Time64NS {
		p.timeCol = i
	}
	if n.Filter != nil {
		f, err := compileExpr(n.Filter, rel)
		if err != nil {
			return nil, fmt.Errorf("exec: %s: filter: %w", opName(n), err)
		}
		p.filter = f
	}
	return p, nil
}

// unknownTimes are the bounds to give pick for rows whose time_ range is
// not known.
const unknownMin, unknownMax = math.MinInt64, math.MaxInt64

// pick returns the rows of full (a record of the picker's relation) that
// the scan keeps, with its columns, or nil for none. minT and maxT bound
// full's time_ values; filterHolds says that the filter is known to
// hold on every row.
func (p *rowPicker) pick(full arrow.Record, minT, maxT int64, filterHolds bool) (arrow.Record, error) {
	n := int(full.NumRows())
	var sel []int32
	all := true
	start, end := p.start, p.end
	if p.timeCol >= 0 && ((start > 0 && minT < start) || (end > 0 && maxT >= end)) {
		ts := funcs.Int64s(full.Column(p.timeCol))
		sel = p.sel[:0]
		for i, t := range ts {
			if (start <= 0 || t >= start) && (end <= 0 || t < end) {
				sel = append(sel, int32(i))
			}
		}
		p.sel = sel
		all = len(sel) == n
		if len(sel) == 0 {
			return nil, nil
		}
	}
	if p.filter != nil && !filterHolds {
		in := full
		if !all {
			in = takeRecord(full.Schema(), full, sel)
		}
		cond, err := p.filter.eval(p.q.fctx, in)
		if err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		sel2, all2, err := selection(cond, int(in.NumRows()), p.fsel)
		if err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		p.fsel = sel2
		if !all2 {
			if len(sel2) == 0 {
				return nil, nil
			}
			full, all = in, false
			sel = sel2
		} else {
			full, all = in, true
		}
	}
	cols := make([]arrow.Array, len(p.cols))
	for i, j := range p.cols {
		cols[i] = full.Column(j)
	}
	rec := newRecord(p.schema, cols, full.NumRows())
	if all {
		return rec, nil
	}
	return takeRecord(p.schema, rec, sel), nil
}

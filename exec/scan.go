package exec

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// scanOp reads a table's snapshot, taken when the operator is built:
// rows of [Start, End) on time_, where the pushed-down filter holds, at
// most Limit of them, with the plan's columns in the plan's order.
type scanOp struct {
	q       *query
	name    string
	node    *plan.Scan
	batches []table.Batch
	pos     int
	cols    []int // table column of each output column
	timeCol int
	filter  evaluator // over the table's full relation
	left    int64     // rows still allowed by Limit (-1: no limit)
	schema  *arrow.Schema
	sel     []int32
}

func (q *query) newScan(n *plan.Scan) (operator, error) {
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
	trel := t.Relation()
	colNames := n.Columns
	if len(colNames) == 0 {
		colNames = n.Rel.Names()
	}
	if len(colNames) == 0 {
		colNames = trel.Names()
	}
	s := &scanOp{q: q, name: name, node: n, left: -1, timeCol: -1}
	outRel := make(types.Relation, len(colNames))
	for i, c := range colNames {
		j := trel.Index(c)
		if j < 0 {
			return nil, fmt.Errorf("exec: %s: table %s has no column %q (it has %v)", name, n.Table, c, trel.Names())
		}
		s.cols = append(s.cols, j)
		outRel[i] = trel[j]
		if k := n.Rel.Index(c); k >= 0 {
			outRel[i].Semantic = n.Rel[k].Semantic
		}
	}
	s.schema = outRel.ArrowSchema()
	if i := trel.Index("time_"); i >= 0 && trel[i].Type == types.Time64NS {
		s.timeCol = i
	}
	if n.Filter != nil {
		f, err := compileExpr(n.Filter, trel)
		if err != nil {
			return nil, fmt.Errorf("exec: %s: filter: %w", name, err)
		}
		s.filter = f
	}
	if n.Limit > 0 {
		s.left = n.Limit
	}
	s.batches = t.Snapshot(n.Start, n.End)
	return s, nil
}

func (s *scanOp) next(ctx context.Context) (arrow.Record, error) {
	for s.pos < len(s.batches) && s.left != 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := s.batches[s.pos]
		s.pos++
		rec, err := s.read(b)
		if err != nil {
			return nil, fmt.Errorf("exec: %s: %w", s.name, err)
		}
		if rec == nil || rec.NumRows() == 0 {
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

// read selects the rows and columns of one stored batch.
func (s *scanOp) read(b table.Batch) (arrow.Record, error) {
	full := b.Record
	n := int(full.NumRows())
	var sel []int32
	all := true
	start, end := s.node.Start, s.node.End
	if s.timeCol >= 0 && ((start > 0 && b.MinTime < start) || (end > 0 && b.MaxTime >= end)) {
		ts := funcs.Int64s(full.Column(s.timeCol))
		sel = s.sel[:0]
		for i, t := range ts {
			if (start <= 0 || t >= start) && (end <= 0 || t < end) {
				sel = append(sel, int32(i))
			}
		}
		s.sel = sel
		all = len(sel) == n
		if len(sel) == 0 {
			return nil, nil
		}
	}
	if s.filter != nil {
		in := full
		if !all {
			in = takeRecord(full.Schema(), full, sel)
		}
		cond, err := s.filter.eval(s.q.fctx, in)
		if err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		sel2, all2, err := selection(cond, int(in.NumRows()), nil)
		if err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
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
	cols := make([]arrow.Array, len(s.cols))
	for i, j := range s.cols {
		cols[i] = full.Column(j)
	}
	rec := newRecord(s.schema, cols, full.NumRows())
	if all {
		return rec, nil
	}
	return takeRecord(s.schema, rec, sel), nil
}

func (s *scanOp) close() { s.batches, s.pos = nil, 0 }

package exec

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/plan"
)

// filterOp keeps the rows of each batch where its condition holds;
// batches left empty are skipped.
type filterOp struct {
	q      *query
	name   string
	in     operator
	cond   evaluator
	schema *arrow.Schema
	sel    []int32
}

func (q *query) newFilter(n *plan.Filter) (operator, error) {
	name := opName(n)
	in, err := q.build(n.Input)
	if err != nil {
		return nil, err
	}
	cond, err := compileExpr(n.Cond, n.Input.Relation())
	if err != nil {
		in.close()
		return nil, fmt.Errorf("exec: %s: %w", name, err)
	}
	return &filterOp{q: q, name: name, in: in, cond: cond, schema: n.Relation().ArrowSchema()}, nil
}

func (f *filterOp) next(ctx context.Context) (arrow.Record, error) {
	for {
		rec, err := f.in.next(ctx)
		if rec == nil || err != nil {
			return nil, err
		}
		n := int(rec.NumRows())
		cond, err := f.cond.eval(f.q.fctx, rec)
		if err != nil {
			return nil, fmt.Errorf("exec: %s: %w", f.name, err)
		}
		sel, all, err := selection(cond, n, f.sel)
		if err != nil {
			return nil, fmt.Errorf("exec: %s: %w", f.name, err)
		}
		if all {
			return sliceRecord(f.schema, rec, 0, int64(n)), nil
		}
		f.sel = sel
		if len(sel) > 0 {
			return takeRecord(f.schema, rec, sel), nil
		}
	}
}

func (f *filterOp) close() { f.in.close() }

package exec

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/plan"
)

// mapOp computes its output columns from each input batch. Column
// references pass through without copying; constants are broadcast.
type mapOp struct {
	q      *query
	name   string
	in     operator
	exprs  []evaluator
	names  []string
	bcast  []broadcaster
	schema *arrow.Schema
}

func (q *query) newMap(n *plan.Map) (operator, error) {
	name := opName(n)
	in, err := q.build(n.Input)
	if err != nil {
		return nil, err
	}
	rel := n.Input.Relation()
	out := n.Relation()
	m := &mapOp{q: q, name: name, in: in, schema: out.ArrowSchema(), bcast: make([]broadcaster, len(n.Exprs))}
	for i, e := range n.Exprs {
		ev, err := compileExpr(e.Expr, rel)
		if err != nil {
			in.close()
			return nil, fmt.Errorf("exec: %s: column %s: %w", name, e.Name, err)
		}
		m.exprs = append(m.exprs, ev)
		m.names = append(m.names, e.Name)
		m.bcast[i].t = out[i].Type
	}
	return m, nil
}

func (m *mapOp) next(ctx context.Context) (arrow.Record, error) {
	rec, err := m.in.next(ctx)
	if rec == nil || err != nil {
		return nil, err
	}
	n := int(rec.NumRows())
	cols := make([]arrow.Array, len(m.exprs))
	for i, e := range m.exprs {
		v, err := e.eval(m.q.fctx, rec)
		if err != nil {
			return nil, fmt.Errorf("exec: %s: column %s: %w", m.name, m.names[i], err)
		}
		a, err := m.bcast[i].array(v, n)
		if err != nil {
			return nil, fmt.Errorf("exec: %s: column %s: %w", m.name, m.names[i], err)
		}
		if !arrow.TypeEqual(a.DataType(), m.schema.Field(i).Type) {
			return nil, fmt.Errorf("exec: %s: column %s is %v, the plan says %v", m.name, m.names[i], a.DataType(), m.schema.Field(i).Type)
		}
		cols[i] = a
	}
	return newRecord(m.schema, cols, int64(n)), nil
}

func (m *mapOp) close() { m.in.close() }
